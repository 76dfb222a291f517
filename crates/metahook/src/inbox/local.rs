//! The inbox writer for the embedded store (SQLite), on two threads of its own.
//!
//! The writer thread takes what is waiting, inserts it and commits without a sync, and hands
//! the batch to the sync thread; the sync thread syncs the store's log once for everything
//! handed to it since its last sync, then answers those requests. A sync covers every commit
//! made before it started, so while one is on the disk the writer commits the next batch, and
//! the disk's sync time is no longer added to the time each batch holds the write lock.
//!
//! Few written batches wait for the sync thread (`WRITTEN_AHEAD`): the writer then waits before
//! it takes the next batch, so under load the batches grow with the sync time instead of the
//! commits multiplying. Neither thread is a task on the request runtime, so a busy runtime
//! does not delay a commit, and answering a request is one wake-up of its task.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{Notify, mpsc};

use super::{Crowding, InboxError, Message, Receipt, Reply, Shared, gather};
use crate::metrics::Metrics;
use crate::store::{DeliveryId, NewDelivery, SqliteStore};

/// A committed batch on its way to being synced.
struct Written {
    started: Instant,
    replies: Vec<(Reply, DeliveryId)>,
}

pub(super) struct LocalWriter {
    pub store: SqliteStore,
    pub metrics: Metrics,
    pub shared: Arc<Shared>,
    pub batch_max: usize,
    pub committed: Arc<Notify>,
    pub crowding: Arc<Crowding>,
}

impl LocalWriter {
    /// Starts the writer and sync threads; the returned receiver completes once both have
    /// finished, after [`Message::Close`] or when every sender is gone.
    pub fn start(
        self,
        rx: mpsc::Receiver<Message>,
    ) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
        let (done, finished) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("metahook-inbox".into()).spawn(move || {
            self.run(rx);
            let _ = done.send(());
        })?;
        Ok(finished)
    }

    fn run(self, mut rx: mpsc::Receiver<Message>) {
        let handoff = Arc::new(Handoff::default());
        let syncer = Syncer {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            shared: self.shared.clone(),
            handoff: handoff.clone(),
        };
        let sync_thread = std::thread::Builder::new()
            .name("metahook-sync".into())
            .spawn(move || syncer.run())
            .expect("the sync thread starts");
        let mut open = true;
        while open && let Some(first) = rx.blocking_recv() {
            let (batch, waiters) = gather(first, &mut rx, self.batch_max, &mut open);
            if let Some(written) = self.write(batch, waiters) {
                handoff.push(written);
            }
        }
        // Closed, or every sender is gone: write the last rejections counted.
        if let Some(written) = self.write(Vec::new(), Vec::new()) {
            handoff.push(written);
        }
        handoff.close();
        if sync_thread.join().is_err() {
            tracing::error!("the inbox sync thread panicked");
        }
        tracing::info!("inbox closed");
    }

    /// Commits `batch` and the rejections counted so far; returns what waits for a sync.
    fn write(&self, batch: Vec<NewDelivery>, waiters: Vec<Reply>) -> Option<Written> {
        let rejected = self.shared.unflushed_rejections.swap(0, Ordering::Relaxed);
        if batch.is_empty() && rejected == 0 {
            return None;
        }
        let started = Instant::now();
        match self.store.write_deliveries(&batch, rejected) {
            Ok(_) if batch.is_empty() => None,
            Ok(ids) => {
                self.metrics.commit_batch_size.observe(batch.len() as f64);
                self.crowding.observe(batch.len());
                // The pipeline may read the batch before it is synced: whatever it records is
                // written to the log after the batch, so no crash keeps the one without the
                // other.
                self.committed.notify_one();
                Some(Written { started, replies: waiters.into_iter().zip(ids).collect() })
            }
            Err(error) => {
                self.shared.healthy.store(false, Ordering::Relaxed);
                self.shared.unflushed_rejections.fetch_add(rejected, Ordering::Relaxed);
                self.metrics.commit_failures.inc();
                tracing::error!(%error, deliveries = batch.len(), "inbox commit failed");
                for waiter in waiters {
                    let _ = waiter.send(Err(InboxError::Unavailable));
                }
                None
            }
        }
    }
}

/// Committed batches that may wait for the sync thread before the writer waits too. The sync
/// thread takes all of them at once, so two let the writer commit again while a sync runs
/// without the commits multiplying when a sync stalls: the requests that arrive meanwhile
/// wait in the queue and form one large batch.
const WRITTEN_AHEAD: usize = 2;

/// Committed batches waiting for a sync, passed from the writer thread to the sync thread.
#[derive(Default)]
struct Handoff {
    state: Mutex<Pending>,
    changed: Condvar,
}

#[derive(Default)]
struct Pending {
    batches: Vec<Written>,
    closed: bool,
}

impl Handoff {
    /// Adds a committed batch; waits while `WRITTEN_AHEAD` batches already wait.
    fn push(&self, written: Written) {
        let mut state = self.lock();
        state.batches.push(written);
        self.changed.notify_all();
        while state.batches.len() >= WRITTEN_AHEAD {
            state = self.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Takes every batch committed so far, waiting for one; `None` once closed and empty.
    fn take(&self) -> Option<Vec<Written>> {
        let mut state = self.lock();
        while state.batches.is_empty() && !state.closed {
            state = self.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let batches = std::mem::take(&mut state.batches);
        self.changed.notify_all();
        (!batches.is_empty()).then_some(batches)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Syncer {
    store: SqliteStore,
    metrics: Metrics,
    shared: Arc<Shared>,
    handoff: Arc<Handoff>,
}

impl Syncer {
    fn run(self) {
        while let Some(batches) = self.handoff.take() {
            let result = self.store.sync_log();
            let answer = match &result {
                Ok(()) => {
                    self.shared.healthy.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Err(error) => {
                    // Committed but maybe not on disk: refused, so Meta sends it again, and
                    // the copy stored twice is split into the same events.
                    self.shared.healthy.store(false, Ordering::Relaxed);
                    self.metrics.commit_failures.inc();
                    tracing::error!(%error, "cannot sync the inbox");
                    Err(InboxError::Unavailable)
                }
            };
            for batch in batches {
                self.metrics.commit_duration.observe(batch.started.elapsed().as_secs_f64());
                for (reply, id) in batch.replies {
                    // The requester may have gone away; the delivery is stored all the same.
                    let _ = reply.send(answer.clone().map(|()| Receipt::Stored(id)));
                }
            }
        }
    }
}
