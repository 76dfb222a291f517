//! The status report: what `GET /meta/webhook/status` and `metahook status` print. Store
//! figures come from the store, so they survive restarts and are shared by every instance.

use serde::Serialize;

use crate::clock;
use crate::store::{Store, StoreError};

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub webhook: WebhookStatus,
    pub store: StoreSection,
    pub counters: Counters,
    /// Arrival of the newest delivery, RFC 3339, or null before the first one.
    pub last_event_time: Option<String>,
    /// Deliveries acknowledged while the database was unavailable, waiting in the local
    /// spool to be drained into it.
    pub spool: SpoolSection,
}

#[derive(Debug, Serialize, Default)]
pub struct SpoolSection {
    pub deliveries: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct WebhookStatus {
    /// `active` while deliveries are being made durable, `degraded` when they cannot be.
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct StoreSection {
    pub backend: &'static str,
    pub deliveries: u64,
    pub events: u64,
    pub pending: u64,
    pub dead: u64,
}

#[derive(Debug, Serialize)]
pub struct Counters {
    pub received: u64,
    pub rejected: u64,
    pub processed: u64,
    pub errors: u64,
}

impl StatusReport {
    /// Reads the figures from `store`; `healthy` is whether the inbox's last commit worked
    /// and nothing waits in the spool, whose figures `spool` gives.
    pub async fn gather(
        store: &Store,
        healthy: bool,
        spool: SpoolSection,
    ) -> Result<Self, StoreError> {
        let stats = store.stats().await?;
        Ok(Self {
            spool,
            webhook: WebhookStatus { status: if healthy { "active" } else { "degraded" } },
            store: StoreSection {
                backend: store.backend(),
                deliveries: stats.deliveries,
                events: stats.events,
                pending: stats.pending,
                dead: stats.dead,
            },
            counters: Counters {
                received: stats.received,
                rejected: stats.rejected,
                processed: stats.processed,
                errors: stats.errors,
            },
            last_event_time: stats.last_received_at.and_then(clock::rfc3339),
        })
    }
}
