//! The SQLite backend: two files in WAL mode, each with its own write lock.
//!
//! The inbox file (the path configured) holds the deliveries, and only the inbox writes to it.
//! The domain file beside it (the same path with [`DOMAIN_SUFFIX`]) holds everything the
//! pipeline derives from them: events, their log, the domain tables. So the pipeline's
//! transactions never hold up an acknowledgement, and the reading connections attach the
//! domain file to query both as one database.
//!
//! The inbox commits without a sync of its own (`synchronous=NORMAL`), and
//! [`SqliteStore::sync_log`] then makes the commit durable with one sync of the write-ahead
//! log's data (`fdatasync`), after the write lock is released, so that nothing else waiting
//! for the lock (`readyz`'s check, an operator's shell) waits for the disk too. The domain file
//! needs no sync per commit: what it holds is derived again from durable deliveries after a
//! crash.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

mod facts;
mod pipeline;
mod queries;

use super::{DeliveryId, NewDelivery, StoreError, StoreStats, StoredDelivery};

/// What the domain file's name adds to the inbox file's.
pub const DOMAIN_SUFFIX: &str = "-domain";

/// The inbox file's migrations in order; the position plus one is its schema version.
const INBOX_MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/inbox/0001_inbox.sql")];

/// The domain file's migrations, versioned in that file.
const DOMAIN_MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/domain/0001_pipeline.sql")];

/// Page cache of the domain file's writer, in KiB as SQLite takes it (negative): the events'
/// and domain tables' indexes are written at random keys, and a miss costs a read.
const DOMAIN_CACHE_KIB: i64 = -32 * 1024;

/// Longest wait of an inbox commit for a lock held by another process.
const INBOX_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Pages in the domain file's log after which the pipeline's commit checkpoints it (SQLite's
/// default is 1,000).
const DOMAIN_CHECKPOINT_PAGES: i64 = 8_000;

/// Pages in the inbox file's log after which the housekeeping task checkpoints it.
const INBOX_CHECKPOINT_PAGES: i64 = 1_000;

/// Handle to one SQLite store: its inbox and domain files.
#[derive(Clone)]
pub struct SqliteStore {
    /// The inbox file's one writing connection.
    writer: Arc<tokio::sync::Mutex<Connection>>,
    /// The domain file's one writing connection, shared by the pipeline and replays. Its lock
    /// is FIFO (tokio's, taken from blocking threads).
    domain: Arc<tokio::sync::Mutex<Connection>>,
    /// Reads for the status and the admin API, with the domain file attached.
    reader: Arc<Mutex<Connection>>,
    /// The pipeline's own reads, so that status and admin queries never hold up its claims.
    claimer: Arc<Mutex<Connection>>,
    checkpointer: Arc<Mutex<Connection>>,
    log: Arc<Log>,
    domain_log: Arc<Log>,
    backfill: Arc<Backfill>,
}

/// How the inbox file's log is checkpointed without holding up acknowledgements.
///
/// A checkpoint copies the log into the database file and syncs it: about a thousand pages
/// and several milliseconds. Made by the inbox writer after the commit that crosses the
/// threshold (SQLite's automatic checkpoint), it held up every request for that long, about
/// one time in a hundred and forty at saturation, 12% of the time. So the housekeeping task
/// makes it, on a connection of its own, while the writer goes on committing. The log can be
/// reused from its start only once all of it has been copied, which a checkpoint beside
/// a writer that keeps appending never achieves, and a log that only grows makes each sync
/// write the file's inode too. So after a background checkpoint the writer copies what was
/// committed during it, a few dozen pages, between two commits, and the next commit starts
/// the log again from its start.
#[derive(Default)]
struct Backfill {
    /// [`WRITING`], [`DUE`] or [`FINISHING`].
    stage: AtomicU8,
    /// Pages in the log after the writer's last commit.
    pages: AtomicI32,
    /// Woken when the stage becomes [`DUE`].
    due: Notify,
}

/// The writer appends to the log; its commit that leaves more than [`INBOX_CHECKPOINT_PAGES`]
/// in it makes a checkpoint [`DUE`].
const WRITING: u8 = 0;
/// The housekeeping task checkpoints the log, and then makes the stage [`FINISHING`].
const DUE: u8 = 1;
/// The writer copies what the background checkpoint left after its next commit, and the stage
/// is [`WRITING`] again.
const FINISHING: u8 = 2;

/// A write-ahead log file, opened beside SQLite's own handle so that it can be synced
/// without the write lock. Syncing a file through any descriptor writes out every change made
/// to it through all of them.
struct Log {
    path: PathBuf,
    /// The open log and its inode number.
    file: Mutex<(File, u64)>,
}

impl SqliteStore {
    /// The domain file that goes with the inbox file at `path`.
    pub fn domain_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(DOMAIN_SUFFIX);
        PathBuf::from(name)
    }

    /// Opens both files, creating them and their directory if missing, and migrates them.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::Create { path: dir.display().to_string(), source })?;
        }
        let domain_path = Self::domain_path(path);
        let mut writer = connect(path)?;
        refuse_single_file_layout(&writer)?;
        migrate(&mut writer, INBOX_MIGRATIONS)?;
        let mut domain = connect(&domain_path)?;
        migrate(&mut domain, DOMAIN_MIGRATIONS)?;
        for conn in [&writer, &domain] {
            // Commits become durable through `sync_log`, never on their own.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        // Only another process can hold the inbox file's lock (a backup, an operator's
        // shell). The inbox gives up on it well before its commit deadline, so that a request
        // refused with 503 is one whose delivery was not stored.
        writer.busy_timeout(INBOX_BUSY_TIMEOUT)?;
        // The inbox writer never checkpoints by itself (see [`Backfill`]).
        let backfill = Arc::new(Backfill::default());
        let hook = backfill.clone();
        writer.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
            hook.after_commit(wal, pages);
            Ok(())
        }))?;
        // The pipeline checkpoints the domain file after the commit that crosses a threshold:
        // its commits do not hold up requests. It rewrites the same index pages over and
        // over, so a larger threshold than SQLite's copies each of them once.
        domain.pragma_update(None, "wal_autocheckpoint", DOMAIN_CHECKPOINT_PAGES)?;
        // The pipeline's savepoints journal in memory, and its indexes stay cached.
        domain.pragma_update(None, "temp_store", "MEMORY")?;
        domain.pragma_update(None, "cache_size", DOMAIN_CACHE_KIB)?;
        let with_domain = || -> Result<Connection, StoreError> {
            let conn = connect(path)?;
            conn.execute("ATTACH DATABASE ?1 AS domain", [domain_path.to_string_lossy()])?;
            Ok(conn)
        };
        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            domain: Arc::new(tokio::sync::Mutex::new(domain)),
            reader: Arc::new(Mutex::new(with_domain()?)),
            claimer: Arc::new(Mutex::new(with_domain()?)),
            checkpointer: Arc::new(Mutex::new(with_domain()?)),
            log: Arc::new(Log::open(path)?),
            domain_log: Arc::new(Log::open(&domain_path)?),
            backfill,
        })
    }

    /// Applied schema versions of the inbox and domain files.
    pub fn schema_version(&self) -> Result<(usize, usize), StoreError> {
        let conn = lock(&self.reader);
        let domain = conn.query_row(
            "SELECT coalesce(max(version), 0) FROM domain.schema_migrations",
            [],
            |r| r.get::<_, i64>(0),
        )?;
        Ok((schema_version(&conn)?, domain as usize))
    }

    /// Appends deliveries and counts rejections in one durable commit.
    pub(crate) fn append(
        &self,
        batch: &[NewDelivery],
        rejected: u64,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let ids = self.write_deliveries(batch, rejected)?;
        self.sync_log()?;
        Ok(ids)
    }

    /// Appends deliveries and counts rejections in one commit that is durable only after the
    /// next [`Self::sync_log`].
    fn write_deliveries(
        &self,
        batch: &[NewDelivery],
        rejected: u64,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let conn = self.writer.blocking_lock();
        // The statements that open and close the transaction are kept prepared too: a commit
        // per batch, thousands a second, need not parse them each time.
        conn.prepare_cached("BEGIN")?.execute([])?;
        let written = insert_deliveries(&conn, batch, rejected)
            .and_then(|ids| conn.prepare_cached("COMMIT")?.execute([]).map(|_| ids));
        if written.is_err()
            && !conn.is_autocommit()
            && let Err(error) = conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(%error, "could not roll back a failed inbox commit");
        }
        Ok(written?)
    }
}

/// Inserts `batch` in the open transaction and counts `rejected`. The number of deliveries
/// received is not counted here: nothing deletes deliveries and every insert takes the next
/// id, so it is the last id (see [`SqliteStore::stats`]), and a commit writes one page fewer.
fn insert_deliveries(
    conn: &Connection,
    batch: &[NewDelivery],
    rejected: u64,
) -> rusqlite::Result<Vec<DeliveryId>> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (received_at, object, entries, bytes, secret_index, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ids = Vec::with_capacity(batch.len());
    for d in batch {
        insert.execute(params![
            d.received_at,
            d.object,
            d.entries as i64,
            d.body.len() as i64,
            d.secret_index as i64,
            &d.body[..],
        ])?;
        ids.push(DeliveryId(conn.last_insert_rowid()));
    }
    if rejected > 0 {
        conn.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?
            .execute(params!["rejected", rejected as i64])?;
    }
    Ok(ids)
}

impl SqliteStore {
    /// Makes every commit made so far durable: one sync of the write-ahead log, which holds
    /// every commit since the last checkpoint (a checkpoint syncs the log before it copies
    /// the log into the database file, and the database file before the log is reused).
    fn sync_log(&self) -> Result<(), StoreError> {
        self.log.sync()
    }

    /// The same for the domain file, for the few changes to it that are not derived from
    /// deliveries (an operator's replay).
    fn sync_domain_log(&self) -> Result<(), StoreError> {
        self.domain_log.sync()
    }

    pub(super) fn stats(&self) -> Result<StoreStats, StoreError> {
        let conn = lock(&self.reader);
        let tx = conn.unchecked_transaction()?;
        // Each file keeps its own counters under their own names.
        let counter = |name: &str| -> rusqlite::Result<u64> {
            tx.query_row(
                "SELECT value FROM main.counters WHERE name = ?1
                 UNION ALL SELECT value FROM domain.counters WHERE name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0) as u64)
        };
        // Counting whole tables takes seconds once they hold millions of rows. Deliveries take
        // ids 1, 2, 3... and nothing deletes them: the last id is how many were received, and
        // those after the pipeline's position are the ones not yet split. Event totals come
        // from counters kept in the same commits as the rows, the rest through partial
        // indexes.
        let last: Option<(i64, i64)> = tx
            .query_row("SELECT id, received_at FROM deliveries ORDER BY id DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let received = last.map_or(0, |(id, _)| id);
        let count = |sql: &str| tx.query_row(sql, [], |r| r.get::<_, i64>(0));
        let unsplit = (received - count("SELECT split_through FROM progress")?).max(0);
        let waiting = count("SELECT count(*) FROM events WHERE status IN ('pending', 'error')")?;
        let dead = count("SELECT count(*) FROM events WHERE status = 'dead'")?;
        let stats = StoreStats {
            deliveries: received as u64,
            events: counter("events")?,
            pending: (unsplit + waiting) as u64,
            dead: dead as u64,
            received: received as u64,
            rejected: counter("rejected")?,
            processed: counter("processed")?,
            errors: counter("errors")?,
            duplicates: counter("duplicates")?,
            last_received_at: last.map(|(_, at)| at),
        };
        tx.finish()?;
        Ok(stats)
    }

    /// Copies what the domain file's log holds into it without blocking readers or writers
    /// (`PASSIVE`), so that the log stays short; the inbox file's log is checkpointed when
    /// it is due (see [`Backfill`]). With `truncate`, at shutdown, both logs are copied and
    /// emptied.
    pub(super) fn checkpoint(&self, truncate: bool) -> Result<(), StoreError> {
        let conn = lock(&self.checkpointer);
        if truncate {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        } else {
            conn.query_row("PRAGMA domain.wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Copies the inbox file's log into it beside the writer, which copies the rest after its
    /// next commit (see [`Backfill`]).
    pub(super) fn checkpoint_inbox(&self) -> Result<(), StoreError> {
        let conn = lock(&self.checkpointer);
        let result = conn.query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        // Whatever the outcome, the writer's own attempt copies what is left.
        self.backfill.stage.store(FINISHING, Ordering::Relaxed);
        Ok(result?)
    }

    /// Completes once the inbox file's log is due for [`Self::checkpoint_inbox`].
    pub(super) async fn checkpoint_due(&self) {
        while self.backfill.stage.load(Ordering::Relaxed) != DUE {
            self.backfill.due.notified().await;
        }
    }

    pub(super) fn check_writable(&self) -> Result<(), StoreError> {
        let conn = lock(&self.reader);
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
        Ok(())
    }

    pub(super) fn deliveries_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id, received_at, object, entries, secret_index, body FROM deliveries
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(StoredDelivery {
                id: DeliveryId(r.get(0)?),
                received_at: r.get(1)?,
                object: r.get(2)?,
                entries: r.get::<_, i64>(3)? as usize,
                secret_index: r.get::<_, i64>(4)? as usize,
                body: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Backfill {
    /// Called by SQLite on the inbox writer's connection after each commit, with the pages
    /// now in the log.
    fn after_commit(&self, wal: &mut rusqlite::hooks::Wal, pages: i32) {
        self.pages.store(pages, Ordering::Relaxed);
        match self.stage.load(Ordering::Relaxed) {
            WRITING if i64::from(pages) > INBOX_CHECKPOINT_PAGES => {
                self.stage.store(DUE, Ordering::Relaxed);
                self.due.notify_one();
            }
            // Never waits: with another checkpoint running, this one fails at once, and the
            // next commit tries again. A reader still using the log's older pages can keep
            // it from being copied whole; the log then goes on from where it is, and the
            // next round of checkpoints copies it.
            FINISHING => match wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                Ok(_) => self.stage.store(WRITING, Ordering::Relaxed),
                Err(error) => tracing::debug!(%error, "cannot finish the inbox log checkpoint"),
            },
            _ => {}
        }
    }
}

impl Log {
    /// Opens the log of the database at `path`, which an open connection in WAL mode keeps in
    /// place.
    fn open(path: &Path) -> Result<Self, StoreError> {
        let mut name = path.as_os_str().to_owned();
        name.push("-wal");
        let path = PathBuf::from(name);
        let file = Self::open_file(&path)?;
        Ok(Self { path, file: Mutex::new(file) })
    }

    fn open_file(path: &Path) -> Result<(File, u64), StoreError> {
        let file = File::open(path).map_err(|source| Self::error(path, source))?;
        let inode = inode_number(&file, Path::new(""), rustix::fs::AtFlags::EMPTY_PATH)
            .map_err(|source| Self::error(path, source))?;
        Ok((file, inode))
    }

    fn sync(&self) -> Result<(), StoreError> {
        let mut open = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // SQLite keeps its log file while any connection is open, but a sync of a file it had
        // replaced would make nothing durable: check, and follow it if it ever does.
        let now = inode_number(rustix::fs::CWD, &self.path, rustix::fs::AtFlags::empty())
            .map_err(|source| Self::error(&self.path, source))?;
        if now != open.1 {
            tracing::warn!(path = %self.path.display(), "the write-ahead log was replaced");
            *open = Self::open_file(&self.path)?;
        }
        // The data and what reading it back needs (its length), not the times of change.
        open.0.sync_data().map_err(|source| Self::error(&self.path, source))
    }

    fn error(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Sync { path: path.display().to_string(), source }
    }
}

/// The inode number of the file at `path` under `dir` (or of `dir` itself, with
/// `AtFlags::EMPTY_PATH` and an empty path), asked for alone. A full `stat` also asks for the
/// times of change, and on Linux 6.13 and later a file whose change time has been asked for
/// gets a finer one at its next write: every write then changes the inode, and each sync of
/// the log wrote the inode too (three device operations per acknowledgement batch instead of
/// two, measured on ext4). Kernels without `statx` get a full `stat`.
fn inode_number(
    dir: impl rustix::fd::AsFd,
    path: &Path,
    flags: rustix::fs::AtFlags,
) -> std::io::Result<u64> {
    use rustix::fs::{StatxFlags, statat, statx};
    match statx(&dir, path, flags, StatxFlags::INO) {
        Ok(stat) => Ok(stat.stx_ino),
        Err(rustix::io::Errno::NOSYS) => Ok(statat(&dir, path, flags)?.st_ino),
        Err(error) => Err(error.into()),
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL lets readers run beside the writer. FULL makes a commit sync the log; the writing
    // connection turns that off and syncs through `sync_log` instead.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Refuses a database from development builds that kept everything in one file.
fn refuse_single_file_layout(conn: &Connection) -> Result<(), StoreError> {
    let events: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match events {
        Some(_) => Err(StoreError::Layout(
            "this SQLite database keeps events in the inbox file, as development builds before \
             the domain file did; start from a new database file"
                .into(),
        )),
        None => Ok(()),
    }
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current = schema_version(&tx)?;
    if current > migrations.len() {
        return Err(StoreError::Schema(current, migrations.len()));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![i as i64 + 1, crate::clock::now_ms()],
        )?;
        tracing::info!(version = i + 1, "applied migration");
    }
    tx.commit()?;
    Ok(())
}

fn schema_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|v| v as usize)
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves no half-done transaction behind: rusqlite rolls
    // back on drop, so the connection is still usable.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(store: &SqliteStore, deliveries: usize) {
        let delivery = |n: usize| NewDelivery {
            received_at: n as i64,
            object: "page".into(),
            entries: 1,
            secret_index: 0,
            body: format!("{n:>4000}").into_bytes().into(),
        };
        let batch: Vec<_> = (0..deliveries).map(delivery).collect();
        store.append(&batch, 0).unwrap();
    }

    #[test]
    fn the_writer_finishes_a_checkpoint_that_a_reader_cut_short_and_the_log_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metahook.db");
        let store = SqliteStore::open(&path).unwrap();
        // Past the threshold: a background checkpoint is due.
        for _ in 0..12 {
            append(&store, 100);
        }
        assert_eq!(store.backfill.stage.load(Ordering::Relaxed), DUE);
        // A reader still on the log's pages keeps the background checkpoint from copying the
        // commit made after it started reading.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        reader.query_row("SELECT count(*) FROM deliveries", [], |_| Ok(())).unwrap();
        append(&store, 10);
        store.checkpoint_inbox().unwrap();
        assert_eq!(store.backfill.stage.load(Ordering::Relaxed), FINISHING);
        reader.execute_batch("COMMIT").unwrap();
        // The writer's next commit copies the rest, and the one after starts the log again.
        append(&store, 1);
        let before = store.backfill.pages.load(Ordering::Relaxed);
        assert_eq!(store.backfill.stage.load(Ordering::Relaxed), WRITING);
        append(&store, 1);
        let after = store.backfill.pages.load(Ordering::Relaxed);
        assert!(i64::from(before) > INBOX_CHECKPOINT_PAGES, "{before} pages before");
        assert!(after < 10, "{after} pages after the log started again");
    }
}
