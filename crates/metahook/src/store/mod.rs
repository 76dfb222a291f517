//! Durable storage: the inbox of raw deliveries, counters, and (later) events and domain
//! tables. [`Store`] is a cheap handle; the backend behind it owns the database.

mod listing;
mod postgres;
mod sqlite;
pub mod work;

use std::path::Path;

use bytes::Bytes;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A verified delivery on its way into the inbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// When the request arrived, unix milliseconds.
    pub received_at: i64,
    /// The envelope's `object`.
    pub object: String,
    /// Length of the envelope's `entry`.
    pub entries: usize,
    /// Position of the app secret that verified it.
    pub secret_index: usize,
    /// The raw body, exactly as received and signed.
    pub body: Bytes,
}

/// Row id of a stored delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId(pub i64);

/// Figures read from the store for the status endpoint; they survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub deliveries: u64,
    pub events: u64,
    pub pending: u64,
    pub dead: u64,
    pub received: u64,
    pub rejected: u64,
    pub processed: u64,
    pub errors: u64,
    pub duplicates: u64,
    /// Arrival of the newest delivery, unix milliseconds.
    pub last_received_at: Option<i64>,
}

/// A stored delivery, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub id: DeliveryId,
    pub received_at: i64,
    pub object: String,
    pub entries: usize,
    pub secret_index: usize,
    pub body: Vec<u8>,
}

/// A store operation that failed; the cause is kept for the log, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create {path}: {source}")]
    Create { path: String, source: std::io::Error },
    #[error("cannot sync {path}: {source}")]
    Sync { path: String, source: std::io::Error },
    #[error("{0}")]
    Layout(String),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("no such list: {0}")]
    Unknown(String),
    #[error("postgres: {}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres connection pool: {0}")]
    Pool(String),
    #[error(
        "the database has schema version {0}, newer than this build knows ({1}): upgrade metahook"
    )]
    Schema(usize, usize),
}

/// A page request for an admin list: items after the cursor, up to `limit`, matching every
/// filter (parameter name to exact value; names the list does not know are ignored).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub after: i64,
    pub limit: usize,
    pub filters: std::collections::HashMap<String, String>,
}

/// One page of a list, and the cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<serde_json::Value>,
    pub next_cursor: Option<i64>,
}

/// The store the service runs on.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens (creating if needed) and migrates the SQLite store at `path`.
    pub fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::Sqlite(SqliteStore::open(path)?))
    }

    /// Connects to and migrates the PostgreSQL database at `url`; `owner` names this
    /// instance in the rows it leases and the counters it keeps.
    pub async fn open_postgres(
        url: &str,
        pool_size: usize,
        owner: String,
    ) -> Result<Self, StoreError> {
        Ok(Self::Postgres(PostgresStore::open(url, pool_size, owner).await?))
    }

    /// Name of the backend, as shown in the status.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Appends deliveries and adds `rejected` to the rejection counter in one durable commit;
    /// returns their ids in order once the commit is on disk.
    pub async fn append(
        &self,
        batch: Vec<NewDelivery>,
        rejected: u64,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.append(&batch, rejected)).await
            }
            Self::Postgres(p) => p.append(&batch, rejected).await,
        }
    }

    /// Stores deliveries drained from the spool, each at most once (by its spool id), in one
    /// commit. Only PostgreSQL has a spool: the SQLite store is the local disk already.
    pub async fn append_spooled(
        &self,
        batch: Vec<crate::inbox::spool::Spooled>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(_) => Err(StoreError::Task("the SQLite store has no spool".into())),
            Self::Postgres(p) => p.append_spooled(&batch).await,
        }
    }

    /// Whether the database runs inside this process (and on its cores).
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }

    /// Whether deliveries the store cannot take may wait in a local spool.
    pub fn supports_spool(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Reads the status figures.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.stats()).await
            }
            Self::Postgres(p) => p.stats().await,
        }
    }

    /// Housekeeping to run about once a second: SQLite checkpoints its write-ahead log here,
    /// off the path of any request.
    pub async fn maintain(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.checkpoint(false)).await
            }
            Self::Postgres(_) => Ok(()),
        }
    }

    /// Completes when the store has housekeeping to do before the next regular round (the
    /// SQLite inbox file's log is due for a checkpoint); never for PostgreSQL.
    pub async fn housekeeping_due(&self) {
        match self {
            Self::Sqlite(s) => s.checkpoint_due().await,
            Self::Postgres(_) => std::future::pending().await,
        }
    }

    /// The housekeeping [`Self::housekeeping_due`] asked for.
    pub async fn maintain_due(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.checkpoint_inbox()).await
            }
            Self::Postgres(_) => Ok(()),
        }
    }

    /// Leaves the store tidy at shutdown (SQLite folds its log into the database file).
    pub async fn close(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.checkpoint(true)).await
            }
            Self::Postgres(_) => Ok(()),
        }
    }

    /// Checks that the store answers and can take a write lock.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.check_writable()).await
            }
            Self::Postgres(p) => p.check_writable().await,
        }
    }

    /// Reads deliveries with an id greater than `after`, oldest first.
    pub async fn deliveries_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.deliveries_after(after, limit)).await
            }
            Self::Postgres(p) => p.deliveries_after(after, limit).await,
        }
    }
}

/// Pipeline work. Backends shared by several instances lease what they hand out to the
/// instance that opened the store, so that work held by an instance that died is taken over
/// when its lease expires; SQLite, used by one process, does not need to.
impl Store {
    /// Deliveries not yet split, oldest first, leased for `lease_ms`. SQLite, which leases
    /// nothing, starts after `after` when given: a batch being recorded holds those before.
    pub async fn claim_deliveries(
        &self,
        limit: usize,
        after: Option<DeliveryId>,
        lease_ms: i64,
    ) -> Result<Vec<work::UnsplitDelivery>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.unsplit(limit, after)).await
            }
            Self::Postgres(p) => p.claim_deliveries(limit, crate::clock::now_ms(), lease_ms).await,
        }
    }

    /// Failed or replayed events due at `now`, leased for `lease_ms`.
    pub async fn claim_due_events(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<work::DueEvent>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.due_events(now, limit)).await
            }
            Self::Postgres(p) => p.claim_due_events(now, limit, lease_ms).await,
        }
    }

    pub async fn delivery_body(&self, id: DeliveryId) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.delivery_body(id)).await
            }
            Self::Postgres(p) => p.delivery_body(id).await,
        }
    }

    pub async fn oldest_pending(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.oldest_pending()).await
            }
            Self::Postgres(p) => p.oldest_pending().await,
        }
    }

    /// Records a batch in one commit; `seed` drives the retry jitter.
    pub async fn record(
        &self,
        batch: work::Batch,
        policy: work::RetryPolicy,
        now: i64,
        seed: u64,
    ) -> Result<Vec<work::Applied>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.record(&batch, policy, now, &mut work::Jitter::new(seed))).await
            }
            Self::Postgres(p) => p.record(&batch, policy, now, &mut work::Jitter::new(seed)).await,
        }
    }
}

impl Store {
    /// One page of the admin list named `resource` (`messages`, `events`, ...).
    pub async fn list(&self, resource: &'static str, query: ListQuery) -> Result<Page, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.list(resource, &query)).await
            }
            Self::Postgres(p) => p.list(resource, &query).await,
        }
    }

    /// Makes the selected events due again; returns how many.
    pub async fn replay(&self, filter: crate::pipeline::ReplayFilter) -> Result<usize, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.replay(&filter, crate::clock::now_ms())).await
            }
            Self::Postgres(p) => p.replay(&filter, crate::clock::now_ms()).await,
        }
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Task(e.to_string()))?
}
