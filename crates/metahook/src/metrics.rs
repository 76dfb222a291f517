//! Every metric the service exposes, declared in one place with bounded labels (route
//! template, method, status, reason): never an id.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `concurrency`, `connections`, `per_address`, `header_timeout` or `body_timeout`.
    pub limit: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub platform: &'static str,
    pub kind: &'static str,
    /// `processed`, `duplicate`, `error` or `dead`.
    pub outcome: &'static str,
}

/// Handles to the metrics; cloning shares them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub deliveries_accepted: Counter,
    pub signature_rejections: Family<ReasonLabels, Counter>,
    pub rejected: Family<ReasonLabels, Counter>,
    pub bytes_received: Counter,
    pub commit_batch_size: Histogram,
    pub commit_duration: Histogram,
    pub commit_failures: Counter,
    pub ack_latency: Histogram,
    pub events: Family<EventLabels, Counter>,
    pub duplicates: Counter,
    pub pipeline_retries: Counter,
    pub dead_events: Counter,
    pub processing_duration: Histogram,
    pub pipeline_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub pipeline_yielded: Counter<f64, std::sync::atomic::AtomicU64>,
    pub spooled: Counter,
    pub limit_rejections: Family<LimitLabels, Counter>,
    pub open_connections: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("metahook");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let deliveries_accepted = Counter::default();
        registry.register(
            "deliveries_accepted",
            "Deliveries stored durably and acknowledged with 200",
            deliveries_accepted.clone(),
        );
        let signature_rejections = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "signature_rejections",
            "POSTs refused with 401 because the signature was missing, malformed or wrong",
            signature_rejections.clone(),
        );
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "deliveries_rejected",
            "POSTs not stored, by reason (signature, not_a_delivery, too_large, timeout, unreadable, unavailable)",
            rejected.clone(),
        );
        let bytes_received = Counter::default();
        registry.register(
            "received_bytes",
            "Bytes of request bodies read on the webhook route",
            bytes_received.clone(),
        );
        let commit_batch_size =
            Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0]);
        registry.register(
            "inbox_commit_batch_size",
            "Deliveries written per inbox commit",
            commit_batch_size.clone(),
        );
        let commit_duration = Histogram::new(latency_buckets());
        registry.register(
            "inbox_commit_duration_seconds",
            "Time to write and sync one inbox commit",
            commit_duration.clone(),
        );
        let commit_failures = Counter::default();
        registry.register(
            "inbox_commit_failures",
            "Inbox commits that failed (answered 503)",
            commit_failures.clone(),
        );
        let ack_latency = Histogram::new(latency_buckets());
        registry.register(
            "ack_latency_seconds",
            "Time from request headers to the 200 of an accepted delivery",
            ack_latency.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register("events", "Events by platform, kind and outcome", events.clone());
        let duplicates = Counter::default();
        registry.register(
            "event_duplicates",
            "Events already stored under the same key: counted, not applied again",
            duplicates.clone(),
        );
        let pipeline_retries = Counter::default();
        registry.register(
            "event_retries",
            "Attempts after the first to apply an event",
            pipeline_retries.clone(),
        );
        let dead_events = Counter::default();
        registry.register(
            "dead_events",
            "Events parked as dead after their last attempt",
            dead_events.clone(),
        );
        let processing_duration = Histogram::new(latency_buckets());
        registry.register(
            "event_processing_duration_seconds",
            "Time to apply one event to the domain tables",
            processing_duration.clone(),
        );
        let pipeline_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "pipeline_lag_seconds",
            "Now minus the arrival of the oldest delivery with work still pending",
            pipeline_lag.clone(),
        );
        let pipeline_yielded = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "pipeline_yield_seconds",
            "Time the pipeline rested to give way to requests crowding the inbox",
            pipeline_yielded.clone(),
        );
        let spooled = Counter::default();
        registry.register(
            "deliveries_spooled",
            "Deliveries acknowledged from the local spool while the database was unavailable",
            spooled.clone(),
        );
        let limit_rejections = Family::<LimitLabels, Counter>::default();
        registry.register(
            "limit_rejections",
            "Requests refused and connections closed because a limit was reached, by limit",
            limit_rejections.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "HTTP connections open now (at most max_connections)",
            open_connections.clone(),
        );
        Self {
            registry: Arc::new(registry),
            limit_rejections,
            open_connections,
            spooled,
            events,
            duplicates,
            pipeline_retries,
            dead_events,
            processing_duration,
            pipeline_lag,
            pipeline_yielded,
            requests,
            deliveries_accepted,
            signature_rejections,
            rejected,
            bytes_received,
            commit_batch_size,
            commit_duration,
            commit_failures,
            ack_latency,
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// From 100 microseconds to 10 seconds.
fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
    .into_iter()
}
