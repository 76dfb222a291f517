//! The PostgreSQL backend, for several instances sharing one database. Commits are
//! synchronous (the server's default), so an inbox commit is durable when it returns. Work is
//! handed out with `FOR UPDATE SKIP LOCKED` and a lease, counters are kept per instance and
//! summed, and event keys are unique, so any number of instances apply each event once.

mod facts;
mod pipeline;
mod queries;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{DeliveryId, NewDelivery, StoreError, StoreStats, StoredDelivery};

/// Migrations in order; the position plus one is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_inbox.sql"),
    include_str!("../migrations/postgres/0002_pipeline.sql"),
    include_str!("../migrations/postgres/0003_spool_id_partial.sql"),
];

/// Any number taken for `pg_advisory_xact_lock`, so that instances starting together migrate
/// one after the other.
const MIGRATION_LOCK: i64 = 0x6d65_7461_686f_6f6b;

/// Handle to one PostgreSQL database; clones share the connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Names this instance in per-instance rows (counters, leases).
    owner: String,
}

impl PostgresStore {
    /// Connects (lazily, through a pool of `pool_size`) and migrates.
    pub async fn open(url: &str, pool_size: usize, owner: String) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = Self { pool, owner };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             )",
        )
        .await?;
        let current: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])
            .await?
            .get(0);
        if current as usize > MIGRATIONS.len() {
            return Err(StoreError::Schema(current as usize, MIGRATIONS.len()));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&(i as i64 + 1), &crate::clock::now_ms()],
            )
            .await?;
            tracing::info!(version = i + 1, "applied migration");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends deliveries and counts them and `rejected` in one statement: one round trip,
    /// atomic on its own (every part of a statement commits or none does), durable once it
    /// returns.
    pub(super) async fn append(
        &self,
        batch: &[NewDelivery],
        rejected: u64,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let client = self.client().await?;
        let received: Vec<i64> = batch.iter().map(|d| d.received_at).collect();
        let objects: Vec<&str> = batch.iter().map(|d| d.object.as_str()).collect();
        let entries: Vec<i64> = batch.iter().map(|d| d.entries as i64).collect();
        let bytes: Vec<i64> = batch.iter().map(|d| d.body.len() as i64).collect();
        let secrets: Vec<i64> = batch.iter().map(|d| d.secret_index as i64).collect();
        let bodies: Vec<&[u8]> = batch.iter().map(|d| &d.body[..]).collect();
        let statement = client
            .prepare_cached(
                "WITH inserted AS (
                     INSERT INTO deliveries (received_at, object, entries, bytes, secret_index, body)
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[],
                                          $5::bigint[], $6::bytea[])
                     RETURNING id
                 ), counted AS (
                     INSERT INTO counters AS c (name, owner, value)
                     SELECT name, $7, value
                     FROM (VALUES ('received', $8::bigint), ('rejected', $9::bigint)) AS n (name, value)
                     WHERE value > 0
                     ON CONFLICT (name, owner) DO UPDATE SET value = c.value + excluded.value
                 )
                 SELECT id FROM inserted",
            )
            .await?;
        let (count, rejected) = (batch.len() as i64, rejected as i64);
        let rows = client
            .query(
                &statement,
                &[
                    &received,
                    &objects,
                    &entries,
                    &bytes,
                    &secrets,
                    &bodies,
                    &self.owner,
                    &count,
                    &rejected,
                ],
            )
            .await?;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        // Ids come from one sequence in insertion order: sorted, they match the batch.
        ids.sort_unstable();
        Ok(ids.into_iter().map(DeliveryId).collect())
    }

    pub(super) async fn append_spooled(
        &self,
        batch: &[crate::inbox::spool::Spooled],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let statement = tx
            .prepare_cached(
                "INSERT INTO deliveries (received_at, object, entries, bytes, secret_index, body,
                     spool_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (spool_id) WHERE spool_id IS NOT NULL DO NOTHING",
            )
            .await?;
        let mut inserted = 0;
        for spooled in batch {
            let d = &spooled.delivery;
            inserted += tx
                .execute(
                    &statement,
                    &[
                        &d.received_at,
                        &d.object,
                        &(d.entries as i64),
                        &(d.body.len() as i64),
                        &(d.secret_index as i64),
                        &&d.body[..],
                        &spooled.spool_id,
                    ],
                )
                .await?;
        }
        if inserted > 0 {
            bump(&tx, &self.owner, "received", inserted as i64).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn stats(&self) -> Result<StoreStats, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                // Totals come from the counters (nothing deletes deliveries or events); the
                // rest through partial indexes, so the status stays cheap on large tables.
                "SELECT
                     (SELECT received_at FROM deliveries ORDER BY id DESC LIMIT 1),
                     (SELECT count(*) FROM deliveries WHERE split_at IS NULL),
                     (SELECT count(*) FROM events WHERE status IN ('pending', 'error')),
                     (SELECT count(*) FROM events WHERE status = 'dead')",
                &[],
            )
            .await?;
        let counters = client
            .query("SELECT name, sum(value)::bigint FROM counters GROUP BY name", &[])
            .await?;
        let counter = |name: &str| {
            counters
                .iter()
                .find(|r| r.get::<_, &str>(0) == name)
                .map(|r| r.get::<_, i64>(1))
                .unwrap_or(0) as u64
        };
        let (unsplit, waiting): (i64, i64) = (row.get(1), row.get(2));
        Ok(StoreStats {
            deliveries: counter("received"),
            events: counter("events"),
            pending: (unsplit + waiting) as u64,
            dead: row.get::<_, i64>(3) as u64,
            received: counter("received"),
            rejected: counter("rejected"),
            processed: counter("processed"),
            errors: counter("errors"),
            duplicates: counter("duplicates"),
            last_received_at: row.get(0),
        })
    }

    pub(super) async fn check_writable(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.query_one("SELECT NOT pg_is_in_recovery()", &[]).await?;
        Ok(())
    }

    pub(super) async fn deliveries_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, received_at, object, entries, secret_index, body FROM deliveries
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StoredDelivery {
                id: DeliveryId(r.get(0)),
                received_at: r.get(1),
                object: r.get(2),
                entries: r.get::<_, i64>(3) as usize,
                secret_index: r.get::<_, i64>(4) as usize,
                body: r.get(5),
            })
            .collect())
    }
}

/// Adds `n` to this instance's row of counter `name`.
async fn bump(
    tx: &deadpool_postgres::Transaction<'_>,
    owner: &str,
    name: &str,
    n: i64,
) -> Result<(), StoreError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO counters AS c (name, owner, value) VALUES ($1, $2, $3)
             ON CONFLICT (name, owner) DO UPDATE SET value = c.value + excluded.value",
        )
        .await?;
    tx.execute(&statement, &[&name, &owner, &n]).await?;
    Ok(())
}

/// The database's own message for a failed statement (tokio-postgres' `Display` says only
/// "db error").
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}
