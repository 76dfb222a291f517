//! The open connections, at most `max_connections` of them, and what each is doing: handling a
//! request, or waiting for one (and since when).
//!
//! When a new connection finds them all taken, the one that has waited longest for a request
//! is told to close and the new one takes its place: a crowd of connections that send nothing
//! cannot keep a client that sends its request at once from being served, and no connection
//! is closed while it handles a request. Only when every connection is handling one is the
//! new connection closed instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Every open connection, by id.
pub struct Connections {
    max: usize,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    metrics: Metrics,
}

/// What became of a new connection.
pub enum Admission {
    /// There was room.
    Admitted(Slot),
    /// There was room once the connection that had waited longest was told to close.
    Replaced(Slot),
    /// Every open connection is handling a request: the new one must be closed.
    Refused,
}

/// One connection's place among the open ones; dropping it gives the place back.
pub struct Slot {
    id: u64,
    connections: Arc<Connections>,
    pub activity: Arc<Activity>,
}

/// What one connection is doing, updated as its requests begin and end.
pub struct Activity {
    /// Milliseconds since the epoch of [`Connections`], plus one, at which the connection
    /// began waiting for its next request; 0 while it is handling one.
    waiting_since: AtomicU64,
    /// Whether a request has begun on it.
    served: AtomicBool,
    close: Notify,
}

impl Connections {
    pub fn new(max: usize, metrics: Metrics) -> Arc<Self> {
        let open = Mutex::new(HashMap::with_capacity(max));
        Arc::new(Self { max, epoch: Instant::now(), next_id: AtomicU64::new(0), open, metrics })
    }

    /// Finds a place for a connection just accepted.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut open = self.lock();
        let replaced = open.len() >= self.max;
        if replaced {
            // A linear scan, but only when full; a few microseconds for thousands.
            let longest_waiting = open
                .iter()
                .filter_map(|(id, a)| match a.waiting_since.load(Ordering::Relaxed) {
                    0 => None,
                    since => Some((since, *id)),
                })
                .min();
            let Some((_, id)) = longest_waiting else {
                return Admission::Refused;
            };
            // It leaves the table now, so that it is not chosen twice while it closes.
            if let Some(activity) = open.remove(&id) {
                activity.close.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            waiting_since: AtomicU64::new(self.now()),
            served: AtomicBool::new(false),
            close: Notify::new(),
        });
        open.insert(id, activity.clone());
        self.metrics.open_connections.set(open.len() as i64);
        let slot = Slot { id, connections: self.clone(), activity };
        if replaced { Admission::Replaced(slot) } else { Admission::Admitted(slot) }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        open.remove(&self.id);
        self.connections.metrics.open_connections.set(open.len() as i64);
    }
}

impl Slot {
    /// A request has begun on this connection.
    pub fn begin(&self) {
        self.activity.served.store(true, Ordering::Relaxed);
        self.activity.waiting_since.store(0, Ordering::Relaxed);
    }

    /// The response is ready: the connection waits for its next request.
    pub fn end(&self) {
        self.activity.waiting_since.store(self.connections.now(), Ordering::Relaxed);
    }

    /// Whether any request has begun on this connection.
    pub fn has_served(&self) -> bool {
        self.activity.served.load(Ordering::Relaxed)
    }

    /// Completes when this connection was chosen to make room for a new one.
    pub async fn told_to_close(&self) {
        self.activity.close.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(admission: Admission) -> Slot {
        match admission {
            Admission::Admitted(slot) | Admission::Replaced(slot) => slot,
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn a_full_table_replaces_the_longest_waiting_connection_and_never_a_busy_one() {
        let connections = Connections::new(2, Metrics::new());
        let busy = admitted(connections.admit());
        busy.begin();
        let waiting = admitted(connections.admit());
        let newcomer = connections.admit();
        assert!(matches!(newcomer, Admission::Replaced(_)));
        assert!(!connections.lock().values().any(|a| Arc::ptr_eq(a, &waiting.activity)));
        assert!(connections.lock().values().any(|a| Arc::ptr_eq(a, &busy.activity)));

        let mut newcomer = admitted(newcomer);
        newcomer.begin();
        assert!(matches!(connections.admit(), Admission::Refused));
        newcomer.end();
        newcomer = admitted(connections.admit());
        drop((busy, newcomer));
        assert!(connections.lock().is_empty());
    }
}
