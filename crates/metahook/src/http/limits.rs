//! Limits that keep the server answering under abuse, and the one place that counts and logs
//! each time one of them bites.
//!
//! Per connection, in [`super::serve`]: the header read timeout and `max_connections`. The
//! body timeout is enforced where the webhook route reads the body.

use std::sync::atomic::AtomicI64;

use crate::clock;
use crate::metrics::{LimitLabels, Metrics};

/// A limit that refused a request or closed a connection.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// More connections than `max_connections`: an idle one, or the new one, was closed.
    Connections,
    /// No whole request head within `header_timeout_ms`: the connection was closed.
    HeaderTimeout,
    /// No whole body within `body_timeout_ms`: 408.
    BodyTimeout,
}

impl Limit {
    fn label(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
        }
    }
}

/// Counts one bite of `limit`, and logs it at most once a second per limit: the requests
/// that trip a limit usually come in floods, and the log must not become one.
pub fn bitten(metrics: &Metrics, limit: Limit) {
    static LAST_SECOND: [AtomicI64; 3] = [const { AtomicI64::new(0) }; 3];
    let label = limit.label();
    metrics.limit_rejections.get_or_create(&LimitLabels { limit: label }).inc();
    if clock::first_this_second(&LAST_SECOND[limit as usize]) {
        tracing::warn!(limit = label, "limit reached (logged at most once a second)");
    }
}
