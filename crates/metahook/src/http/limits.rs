//! Limits that keep the server answering under abuse, and the one place that counts and logs
//! each time one of them bites.
//!
//! Per request, here: at most `max_concurrent_requests` are handled at once (503 beyond, never
//! a queue), and a client address that has been rejected `reject_limit_per_address` times in
//! the current second gets 429 for the rest of it, before its signature is checked or its
//! body read. Per connection, in [`super::serve`]: the header read timeout and
//! `max_connections`. The body timeout is enforced where the webhook route reads the body.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::{ApiError, AppState};
use crate::clock;
use crate::metrics::{LimitLabels, Metrics};

/// A limit that refused a request or closed a connection.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// More requests at once than `max_concurrent_requests`: 503.
    Concurrency,
    /// More connections than `max_connections`: an idle one, or the new one, was closed.
    Connections,
    /// An address rejected too often this second: 429.
    PerAddress,
    /// No whole request head within `header_timeout_ms`: the connection was closed.
    HeaderTimeout,
    /// No whole body within `body_timeout_ms`: 408.
    BodyTimeout,
}

impl Limit {
    fn label(self) -> &'static str {
        match self {
            Self::Concurrency => "concurrency",
            Self::Connections => "connections",
            Self::PerAddress => "per_address",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
        }
    }
}

/// Counts one bite of `limit`, and logs it at most once a second per limit: the requests
/// that trip a limit usually come in floods, and the log must not become one.
pub fn bitten(metrics: &Metrics, limit: Limit) {
    static LAST_SECOND: [AtomicI64; 5] = [const { AtomicI64::new(0) }; 5];
    let label = limit.label();
    metrics.limit_rejections.get_or_create(&LimitLabels { limit: label }).inc();
    if clock::first_this_second(&LAST_SECOND[limit as usize]) {
        tracing::warn!(limit = label, "limit reached (logged at most once a second)");
    }
}

/// The per-request limits, shared by every connection.
pub struct RequestLimits {
    in_flight: Semaphore,
    rejections: RejectionsPerAddress,
    retry_after_secs: u32,
}

impl RequestLimits {
    pub fn new(max_concurrent: usize, rejections_per_address: u32, retry_after_secs: u32) -> Self {
        Self {
            in_flight: Semaphore::new(max_concurrent),
            rejections: RejectionsPerAddress::new(rejections_per_address),
            retry_after_secs,
        }
    }
}

/// Middleware in front of the routes that do work: refuses an address that keeps being
/// rejected, then a request past the concurrency cap, and counts what the route rejected.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let app = &state.inner;
    let limits = &app.limits;
    // Present whenever the server is ours (see serve.rs); a router driven another way has
    // no address and no per-address cap.
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if address.is_some_and(|ip| limits.rejections.is_over(ip)) {
        bitten(&app.metrics, Limit::PerAddress);
        let reason = "too many rejected requests from this address; retry in a second";
        return ApiError::too_many_requests(reason, 1).into_response();
    }
    let Ok(_permit) = limits.in_flight.try_acquire() else {
        bitten(&app.metrics, Limit::Concurrency);
        let reason = "too many requests at once; retry later";
        return ApiError::unavailable(reason, limits.retry_after_secs).into_response();
    };
    let response = next.run(request).await;
    if let Some(ip) = address
        && is_rejection(response.status())
    {
        limits.rejections.count(ip);
    }
    response
}

/// The answers that blame the client: what a forger, a token guesser or a slow client gets.
fn is_rejection(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 401 | 403 | 408 | 413)
}

/// Most addresses the table holds in one second. Each entry takes about 50 bytes with the
/// hash table's slack, so the table never holds more than about 200 KiB. Addresses past
/// the bound in a second are not counted in it, so they are not capped: a flood from more
/// addresses than this is left to the concurrency cap.
const MAX_ADDRESSES: usize = 4096;

/// Rejections per client address in the current wall-clock second. The table is emptied
/// when the second changes, so it only ever describes one second.
struct RejectionsPerAddress {
    limit: u32,
    window: Mutex<Window>,
}

struct Window {
    second: i64,
    counts: HashMap<IpAddr, u32>,
}

impl RejectionsPerAddress {
    fn new(limit: u32) -> Self {
        let window = Window { second: 0, counts: HashMap::new() };
        Self { limit, window: Mutex::new(window) }
    }

    /// Whether `ip` has used up its rejections for this second.
    fn is_over(&self, ip: IpAddr) -> bool {
        if self.limit == 0 {
            return false;
        }
        let window = self.current();
        window.counts.get(&client(ip)).is_some_and(|n| *n >= self.limit)
    }

    fn count(&self, ip: IpAddr) {
        if self.limit == 0 {
            return;
        }
        let mut window = self.current();
        let room = window.counts.len() < MAX_ADDRESSES;
        match window.counts.get_mut(&client(ip)) {
            Some(n) => *n = n.saturating_add(1),
            None if room => {
                window.counts.insert(client(ip), 1);
            }
            None => {}
        }
    }

    /// The window, emptied first if it describes an earlier second.
    fn current(&self) -> std::sync::MutexGuard<'_, Window> {
        let second = clock::now_ms() / 1000;
        let mut window = self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if window.second != second {
            window.second = second;
            window.counts.clear();
        }
        window
    }
}

/// The address one client is counted under. IPv6 clients usually hold a whole /64, so they
/// are counted by it; an IPv4 address mapped into IPv6 counts as the IPv4 address.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_over_after_its_limit_and_others_are_not() {
        let table = RejectionsPerAddress::new(2);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        table.count(a);
        assert!(!table.is_over(a));
        table.count(a);
        assert!(table.is_over(a) && !table.is_over(b));
    }

    #[test]
    fn a_zero_limit_caps_nothing() {
        let table = RejectionsPerAddress::new(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            table.count(a);
        }
        assert!(!table.is_over(a));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client(one), client(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_table_holds_at_most_its_bound_of_addresses() {
        let table = RejectionsPerAddress::new(1);
        for n in 0..(MAX_ADDRESSES as u32 + 100) {
            table.count(IpAddr::V4(n.into()));
        }
        assert!(table.current().counts.len() <= MAX_ADDRESSES);
    }
}
