//! Durable acceptance with group commit.
//!
//! Request handlers hand verified deliveries to [`Inbox::append`] and wait. One writer task
//! takes everything that is waiting (up to `inbox_batch_max`), writes it in one transaction
//! and one sync, and only then answers each waiter. While a commit is on disk, new requests
//! queue up and form the next batch, so durability costs one sync per batch rather than one
//! per request. A failed commit answers every waiter of that batch with an error (503
//! upstream): nothing is acknowledged that is not on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{DeliveryId, NewDelivery, Store};

/// How often rejections counted in memory are written to the store when nothing else is.
const REJECTION_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

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

type Reply = oneshot::Sender<Result<DeliveryId, InboxError>>;

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
}

/// How the inbox batches.
#[derive(Debug, Clone, Copy)]
pub struct InboxLimits {
    /// Most deliveries in one commit.
    pub batch_max: usize,
    /// Most deliveries waiting before requests wait for room.
    pub queue: usize,
}

impl Inbox {
    /// Starts the writer on `store`; `committed` is notified after every commit that stored
    /// deliveries.
    pub fn start(
        store: Store,
        metrics: Metrics,
        limits: InboxLimits,
        committed: Arc<Notify>,
    ) -> (Self, Writer) {
        let (tx, rx) = mpsc::channel(limits.queue);
        let shared = Arc::new(Shared {
            unflushed_rejections: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
        });
        let state = WriterState {
            store,
            metrics,
            shared: shared.clone(),
            batch_max: limits.batch_max,
            committed,
        };
        let task = tokio::spawn(state.run(rx));
        let inbox = Self { tx, shared };
        inbox.spawn_rejection_flusher();
        (inbox, Writer { task })
    }

    /// Makes `delivery` durable; returns once it is committed.
    pub async fn append(&self, delivery: NewDelivery) -> Result<DeliveryId, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Message::Append(delivery, reply)).await.map_err(|_| InboxError::Closed)?;
        answer.await.map_err(|_| InboxError::Closed)?
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

    /// Whether the last commit succeeded.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
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
                if shared.unflushed_rejections.load(Ordering::Relaxed) > 0 {
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
}

impl WriterState {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(self.batch_max);
        let mut waiters = Vec::with_capacity(self.batch_max);
        let mut open = true;
        while open && let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(message) = next {
                match message {
                    Message::Append(delivery, reply) => {
                        batch.push(delivery);
                        waiters.push(reply);
                    }
                    Message::Flush => {}
                    Message::Close => open = false,
                }
                next = if open && batch.len() < self.batch_max { rx.try_recv().ok() } else { None };
            }
            self.commit(std::mem::take(&mut batch), &mut waiters).await;
        }
        // Closed, or every sender is gone: write the last rejections counted.
        self.commit(Vec::new(), &mut waiters).await;
        tracing::info!("inbox closed");
    }

    async fn commit(&self, batch: Vec<NewDelivery>, waiters: &mut Vec<Reply>) {
        let rejected = self.shared.unflushed_rejections.swap(0, Ordering::Relaxed);
        if batch.is_empty() && rejected == 0 {
            return;
        }
        let size = batch.len();
        let started = Instant::now();
        let result = self.store.append(batch, rejected).await;
        self.metrics.commit_duration.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(ids) => {
                self.shared.healthy.store(true, Ordering::Relaxed);
                if size > 0 {
                    self.metrics.commit_batch_size.observe(size as f64);
                    self.committed.notify_one();
                }
                for (waiter, id) in waiters.drain(..).zip(ids) {
                    // The requester may have gone away; the delivery is stored all the same.
                    let _ = waiter.send(Ok(id));
                }
            }
            Err(error) => {
                self.shared.healthy.store(false, Ordering::Relaxed);
                self.shared.unflushed_rejections.fetch_add(rejected, Ordering::Relaxed);
                self.metrics.commit_failures.inc();
                tracing::error!(%error, deliveries = size, "inbox commit failed");
                for waiter in waiters.drain(..) {
                    let _ = waiter.send(Err(InboxError::Unavailable));
                }
            }
        }
    }
}
