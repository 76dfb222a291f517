//! Durable acceptance with group commit.
//!
//! Request handlers hand verified deliveries to [`Inbox::append`] and wait. One writer task
//! takes everything that is waiting (up to `inbox_batch_max`), writes it in one transaction
//! and one sync, and only then answers each waiter. While a commit is on disk, new requests
//! queue up and form the next batch, so durability costs one sync per batch rather than one
//! per request. A failed commit answers every waiter of that batch with an error (503
//! upstream): nothing is acknowledged that is not on disk.
//!
//! With the embedded store (SQLite), the writer is a thread of its own that commits, syncs and
//! answers each batch (see [`local`]).
//!
//! With a [`Spool`] (PostgreSQL), a batch the database cannot take is appended to a local file
//! and synced instead, and acknowledged; while the spool holds anything, new deliveries go
//! behind it, and the writer drains it into the database, oldest first, as soon as it can.

mod local;
pub mod spool;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::clock;
use crate::metrics::Metrics;
use crate::store::{DeliveryId, NewDelivery, Store, StoreError};

pub use spool::Spool;

/// How often rejections counted in memory are written to the store when nothing else is.
const REJECTION_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Deliveries drained from the spool into the database per commit.
const DRAIN_CHUNK: usize = 256;

/// Chunks drained in a row before waiting requests are served.
const DRAIN_ROUNDS: usize = 16;

/// How long after the last commit the inbox still counts as crowded.
const CROWDING_MEMORY_MS: i64 = 50;

/// How crowded the inbox's recent commits were. Requests that arrive while a commit is on its
/// way wait for the next one together, so commits of many deliveries each mean requests are
/// queuing for the store: the pipeline then gives way to them (see
/// [`crate::pipeline::Yielding`]).
#[derive(Debug, Default)]
pub struct Crowding {
    /// A moving average of the deliveries per commit over about the last eight commits, in
    /// sixteenths of a delivery; the first commit sets it.
    average: AtomicU64,
    /// When the last commit of deliveries was made, unix milliseconds.
    last_commit_ms: AtomicI64,
}

impl Crowding {
    /// Counts a commit of `deliveries`. Only the writer calls it.
    fn observe(&self, deliveries: usize) {
        let sample = (deliveries as u64).saturating_mul(16);
        let average = match self.average.load(Ordering::Relaxed) {
            0 => sample,
            average => average - average / 8 + sample / 8,
        };
        self.average.store(average, Ordering::Relaxed);
        self.last_commit_ms.store(clock::now_ms(), Ordering::Relaxed);
    }

    /// Whether the recent commits averaged at least `deliveries` each and the last of them
    /// was made within the last moments before `now_ms`.
    pub fn is_crowded(&self, deliveries: usize, now_ms: i64) -> bool {
        now_ms - self.last_commit_ms.load(Ordering::Relaxed) <= CROWDING_MEMORY_MS
            && self.average.load(Ordering::Relaxed) >= (deliveries as u64).saturating_mul(16)
    }
}

/// Where an acknowledged delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// In the database, under this id.
    Stored(DeliveryId),
    /// In the local spool, to be drained into the database.
    Spooled,
}

/// Why a delivery was not made durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InboxError {
    /// The commit failed; the cause has been logged.
    #[error("the store could not commit the delivery")]
    Unavailable,
    /// The inbox is shutting down.
    #[error("the inbox is closed")]
    Closed,
}

type Reply = oneshot::Sender<Result<Receipt, InboxError>>;

enum Message {
    Append(NewDelivery, Reply),
    Flush,
    Close,
}

/// Handle through which requests append deliveries. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    /// Longest wait for an answer, where the writer does not bound it itself.
    deadline: Option<Duration>,
}

/// The writer task; await it after [`Inbox::close`].
pub struct Writer {
    task: JoinHandle<()>,
}

struct Shared {
    /// Rejections counted since the last commit.
    unflushed_rejections: AtomicU64,
    /// False after a failed commit, true again after a successful one.
    healthy: AtomicBool,
    /// Deliveries and bytes waiting in the spool.
    spooled: AtomicU64,
    spooled_bytes: AtomicU64,
}

/// How the inbox batches.
#[derive(Debug, Clone, Copy)]
pub struct InboxLimits {
    /// Most deliveries in one commit.
    pub batch_max: usize,
    /// Most deliveries waiting before requests wait for room.
    pub queue: usize,
    /// Longest wait for one commit before its deliveries are spooled or refused.
    pub commit_timeout: Duration,
    /// Commits a database server may have in progress at once: while one waits for the
    /// server's sync, the next batch is already on its way.
    pub in_flight: usize,
}

impl Inbox {
    /// Starts the writer on `store`; `committed` is notified after every commit that stored
    /// deliveries, and `crowding` counts those commits.
    pub fn start(
        store: Store,
        metrics: Metrics,
        limits: InboxLimits,
        committed: Arc<Notify>,
        crowding: Arc<Crowding>,
        spool: Option<Spool>,
    ) -> (Self, Writer) {
        let (tx, rx) = mpsc::channel(limits.queue);
        let shared = Arc::new(Shared {
            unflushed_rejections: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            spooled: AtomicU64::new(0),
            spooled_bytes: AtomicU64::new(0),
        });
        let (task, deadline) = match store {
            Store::Sqlite(store) => {
                let writer = local::LocalWriter {
                    store,
                    metrics,
                    shared: shared.clone(),
                    batch_max: limits.batch_max,
                    committed,
                    crowding,
                };
                let task = match writer.start(rx) {
                    Ok(finished) => tokio::spawn(async move {
                        let _ = finished.await;
                    }),
                    Err(error) => {
                        // Every append then fails with `Closed`: 503, nothing acknowledged.
                        tracing::error!(%error, "cannot start the inbox writer");
                        tokio::spawn(async {})
                    }
                };
                (task, Some(limits.commit_timeout))
            }
            store => {
                let state = WriterState {
                    store,
                    metrics,
                    shared: shared.clone(),
                    batch_max: limits.batch_max,
                    committed,
                    crowding,
                    spool,
                    commit_timeout: limits.commit_timeout,
                    in_flight: limits.in_flight.max(1),
                };
                state.publish_spool();
                (tokio::spawn(state.run(rx)), None)
            }
        };
        let inbox = Self { tx, shared, deadline };
        inbox.spawn_rejection_flusher();
        (inbox, Writer { task })
    }

    /// Makes `delivery` durable; returns once it is committed (or spooled).
    pub async fn append(&self, delivery: NewDelivery) -> Result<Receipt, InboxError> {
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            self.tx.send(Message::Append(delivery, reply)).await.map_err(|_| InboxError::Closed)?;
            answer.await.map_err(|_| InboxError::Closed)?
        };
        let Some(deadline) = self.deadline else { return exchange.await };
        tokio::time::timeout(deadline, exchange).await.unwrap_or_else(|_| {
            // The commit may still land; a delivery refused and stored is sent again by Meta
            // and split into the same events.
            self.shared.healthy.store(false, Ordering::Relaxed);
            tracing::error!(deadline_ms = deadline.as_millis() as u64, "inbox commit too slow");
            Err(InboxError::Unavailable)
        })
    }

    /// Asks the writer to commit what is queued and stop; later appends fail with
    /// [`InboxError::Closed`].
    pub async fn close(&self) {
        let _ = self.tx.send(Message::Close).await;
    }

    /// Counts one refused POST; it reaches the store with the next commit.
    pub fn count_rejection(&self) {
        self.shared.unflushed_rejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the last commit succeeded and nothing waits in the spool.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed) && self.spooled().0 == 0
    }

    /// Deliveries and bytes waiting in the spool.
    pub fn spooled(&self) -> (u64, u64) {
        (
            self.shared.spooled.load(Ordering::Relaxed),
            self.shared.spooled_bytes.load(Ordering::Relaxed),
        )
    }

    fn spawn_rejection_flusher(&self) {
        // A weak sender, so that this task does not keep the inbox open at shutdown.
        let tx = self.tx.downgrade();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REJECTION_FLUSH_INTERVAL);
            loop {
                tick.tick().await;
                let Some(tx) = tx.upgrade() else { break };
                let spooling = shared.spooled.load(Ordering::Relaxed) > 0;
                if spooling || shared.unflushed_rejections.load(Ordering::Relaxed) > 0 {
                    // A full queue means a commit is coming anyway.
                    let _ = tx.try_send(Message::Flush);
                }
            }
        });
    }
}

impl Writer {
    /// Waits until the writer has committed everything queued and stopped.
    pub async fn join(self) {
        if let Err(error) = self.task.await {
            tracing::error!(%error, "inbox writer task failed");
        }
    }
}

struct WriterState {
    store: Store,
    metrics: Metrics,
    shared: Arc<Shared>,
    batch_max: usize,
    committed: Arc<Notify>,
    crowding: Arc<Crowding>,
    spool: Option<Spool>,
    commit_timeout: Duration,
    in_flight: usize,
}

/// A commit sent to the database, and what its outcome is for.
struct Commit {
    result: Result<Vec<DeliveryId>, StoreError>,
    /// The batch, kept for the spool where there is one.
    kept: Option<Vec<NewDelivery>>,
    waiters: Vec<Reply>,
    size: usize,
    rejected: u64,
    started: Instant,
}

/// Takes `first` and whatever else is waiting, up to `batch_max` deliveries; a `Close` among
/// them clears `open`.
fn gather(
    first: Message,
    rx: &mut mpsc::Receiver<Message>,
    batch_max: usize,
    open: &mut bool,
) -> (Vec<NewDelivery>, Vec<Reply>) {
    let mut batch = Vec::with_capacity(batch_max);
    let mut waiters = Vec::with_capacity(batch_max);
    let mut next = Some(first);
    while let Some(message) = next {
        match message {
            Message::Append(delivery, reply) => {
                batch.push(delivery);
                waiters.push(reply);
            }
            Message::Flush => {}
            Message::Close => *open = false,
        }
        next = if *open && batch.len() < batch_max { rx.try_recv().ok() } else { None };
    }
    (batch, waiters)
}

impl WriterState {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut commits: JoinSet<Commit> = JoinSet::new();
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                Some(done) = commits.join_next() => match done {
                    Ok(commit) => self.finish(commit).await,
                    // Its waiters are dropped with it: their requests get 503.
                    Err(error) => tracing::error!(%error, "inbox commit task failed"),
                },
                message = rx.recv(), if open && commits.len() < self.in_flight => {
                    let Some(first) = message else {
                        open = false;
                        continue;
                    };
                    let (batch, waiters) = gather(first, &mut rx, self.batch_max, &mut open);
                    self.start(batch, waiters, &mut commits).await;
                }
                else => break,
            }
            if commits.is_empty() {
                self.drain().await;
            }
        }
        // Closed, or every sender is gone: write the last rejections counted.
        self.start(Vec::new(), Vec::new(), &mut commits).await;
        while let Some(done) = commits.join_next().await {
            if let Ok(commit) = done {
                self.finish(commit).await;
            }
        }
        self.drain().await;
        tracing::info!("inbox closed");
    }

    async fn start(
        &mut self,
        batch: Vec<NewDelivery>,
        mut waiters: Vec<Reply>,
        commits: &mut JoinSet<Commit>,
    ) {
        let rejected = self.shared.unflushed_rejections.swap(0, Ordering::Relaxed);
        if batch.is_empty() && rejected == 0 {
            return;
        }
        // Behind a spool that still holds deliveries, new ones queue in the spool too, so
        // that the database receives them in arrival order.
        if self.spool.as_ref().is_some_and(Spool::is_active) && !batch.is_empty() {
            self.shared.unflushed_rejections.fetch_add(rejected, Ordering::Relaxed);
            return self.spool_or_refuse(batch, &mut waiters).await;
        }
        let size = batch.len();
        // The batch is kept for the spool only where there is one: the common path does not
        // copy it.
        let kept = self.spool.as_ref().map(|_| batch.clone());
        let (store, timeout) = (self.store.clone(), self.commit_timeout);
        commits.spawn(async move {
            let started = Instant::now();
            // A database that hangs must not hold requests past what Meta waits for: past
            // the timeout the batch counts as failed (and is spooled, where there is a
            // spool). The commit may still land later; a delivery stored twice is applied
            // once all the same.
            let result = match tokio::time::timeout(timeout, store.append(batch, rejected)).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Task(format!(
                    "commit took longer than {} ms",
                    timeout.as_millis()
                ))),
            };
            Commit { result, kept, waiters, size, rejected, started }
        });
    }

    /// Answers the waiters of a commit that returned, spooling its batch if it failed.
    async fn finish(&mut self, commit: Commit) {
        let Commit { result, kept, mut waiters, size, rejected, started } = commit;
        self.metrics.commit_duration.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(ids) => {
                self.shared.healthy.store(true, Ordering::Relaxed);
                if size > 0 {
                    self.metrics.commit_batch_size.observe(size as f64);
                    self.crowding.observe(size);
                    self.committed.notify_one();
                }
                for (waiter, id) in waiters.drain(..).zip(ids) {
                    // The requester may have gone away; the delivery is stored all the same.
                    let _ = waiter.send(Ok(Receipt::Stored(id)));
                }
            }
            Err(error) => {
                self.shared.healthy.store(false, Ordering::Relaxed);
                self.shared.unflushed_rejections.fetch_add(rejected, Ordering::Relaxed);
                self.metrics.commit_failures.inc();
                tracing::error!(%error, deliveries = size, "inbox commit failed");
                if let Some(batch) = kept.filter(|_| size > 0) {
                    return self.spool_or_refuse(batch, &mut waiters).await;
                }
                for waiter in waiters.drain(..) {
                    let _ = waiter.send(Err(InboxError::Unavailable));
                }
            }
        }
    }

    /// Appends `batch` to the spool and answers its waiters: acknowledged once synced, 503
    /// if the spool cannot take it.
    async fn spool_or_refuse(&mut self, batch: Vec<NewDelivery>, waiters: &mut Vec<Reply>) {
        let Some(mut spool) = self.spool.take() else { return };
        let (spool, result) = tokio::task::spawn_blocking(move || {
            let result = spool.append(&batch);
            (spool, result)
        })
        .await
        .expect("the spool task does not panic");
        self.spool = Some(spool);
        self.publish_spool();
        let answer = match result {
            Ok(()) => {
                self.metrics.spooled.inc_by(waiters.len() as u64);
                Ok(Receipt::Spooled)
            }
            Err(error) => {
                tracing::error!(%error, deliveries = waiters.len(), "cannot spool deliveries");
                Err(InboxError::Unavailable)
            }
        };
        for waiter in waiters.drain(..) {
            let _ = waiter.send(answer.clone());
        }
    }

    /// Moves spooled deliveries into the database while it takes them, a chunk per commit,
    /// for at most `DRAIN_ROUNDS` chunks before requests get their turn again.
    async fn drain(&mut self) {
        for _ in 0..DRAIN_ROUNDS {
            if !self.drain_chunk().await {
                break;
            }
        }
    }

    /// Moves one chunk; returns whether there may be more to move now.
    async fn drain_chunk(&mut self) -> bool {
        let Some(mut spool) = self.spool.take() else { return false };
        if !spool.is_active() {
            self.spool = Some(spool);
            return false;
        }
        let (mut spool, chunk) = tokio::task::spawn_blocking(move || {
            let chunk = spool.peek(DRAIN_CHUNK);
            (spool, chunk)
        })
        .await
        .expect("the spool task does not panic");
        let more = match chunk {
            Ok(chunk) if !chunk.is_empty() => {
                let n = chunk.len();
                match self.store.append_spooled(chunk).await {
                    Ok(()) => {
                        self.shared.healthy.store(true, Ordering::Relaxed);
                        self.committed.notify_one();
                        match spool.advance(n) {
                            Ok(()) if !spool.is_active() => {
                                tracing::info!("spool drained into the database");
                                false
                            }
                            Ok(()) => true,
                            Err(error) => {
                                // Drained again later; the spool ids make that harmless.
                                tracing::error!(%error, "cannot advance the spool");
                                false
                            }
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%error, "database still unavailable; spool kept");
                        false
                    }
                }
            }
            Ok(_) => false,
            Err(error) => {
                tracing::error!(%error, "cannot read the spool");
                false
            }
        };
        self.spool = Some(spool);
        self.publish_spool();
        more
    }

    fn publish_spool(&self) {
        let (deliveries, bytes) = self.spool.as_ref().map(Spool::figures).unwrap_or((0, 0));
        self.shared.spooled.store(deliveries, Ordering::Relaxed);
        self.shared.spooled_bytes.store(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowding_follows_the_recent_batch_sizes_and_fades_when_commits_stop() {
        let crowding = Crowding::default();
        assert!(!crowding.is_crowded(1, clock::now_ms()), "nothing committed yet");
        crowding.observe(10);
        assert!(crowding.is_crowded(10, clock::now_ms()), "the first commit sets the average");
        for _ in 0..40 {
            crowding.observe(10);
        }
        let now = clock::now_ms();
        assert!(crowding.is_crowded(6, now) && crowding.is_crowded(9, now));
        assert!(!crowding.is_crowded(11, now));
        // A few single deliveries are not enough to call a crowd over; many are.
        for _ in 0..2 {
            crowding.observe(1);
        }
        assert!(crowding.is_crowded(6, clock::now_ms()));
        for _ in 0..40 {
            crowding.observe(1);
        }
        assert!(!crowding.is_crowded(2, clock::now_ms()));
        for _ in 0..40 {
            crowding.observe(10);
        }
        // Without commits, the crowd is over however large the last batches were.
        assert!(!crowding.is_crowded(6, clock::now_ms() + CROWDING_MEMORY_MS + 1));
    }
}
