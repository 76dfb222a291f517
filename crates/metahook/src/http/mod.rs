//! The HTTP surface: the accept loop and its limits, the webhook route Meta calls, and the
//! routes operators read.

mod admin;
mod connections;
mod error;
pub mod limits;
mod observe;
mod serve;
mod webhook;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use meta_webhooks::{Secret, Verifier};
use tokio::sync::Notify;

pub use error::ApiError;
pub use serve::{ConnectionLimits, bind, serve};

use self::limits::RequestLimits;
use crate::inbox::Inbox;
use crate::metrics::{Metrics, RequestLabels};
use crate::store::Store;

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Verifier,
    verify_token: Option<Secret>,
    body_limit: usize,
    body_timeout: std::time::Duration,
    retry_after_secs: u32,
    admin_token: Option<Secret>,
    limits: RequestLimits,
    inbox: Inbox,
    store: Store,
    metrics: Metrics,
    pipeline_wake: Arc<Notify>,
}

/// What [`AppState::new`] is built from.
pub struct Parts {
    pub app_secrets: Vec<Secret>,
    pub verify_token: Option<Secret>,
    pub body_limit: usize,
    /// Longest time a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    pub retry_after_secs: u32,
    pub admin_token: Option<Secret>,
    /// Most requests handled at once (past it, 503).
    pub max_concurrent_requests: usize,
    /// Rejections per client address per second before 429; 0 for no cap.
    pub reject_limit_per_address: u32,
    pub inbox: Inbox,
    pub store: Store,
    pub metrics: Metrics,
    /// Woken when replayed events are due.
    pub pipeline_wake: Arc<Notify>,
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        let inner = Inner {
            verifier: Verifier::new(&parts.app_secrets),
            verify_token: parts.verify_token,
            body_limit: parts.body_limit,
            body_timeout: parts.body_timeout,
            retry_after_secs: parts.retry_after_secs,
            admin_token: parts.admin_token,
            limits: RequestLimits::new(
                parts.max_concurrent_requests,
                parts.reject_limit_per_address,
                parts.retry_after_secs,
            ),
            inbox: parts.inbox,
            store: parts.store,
            metrics: parts.metrics,
            pipeline_wake: parts.pipeline_wake,
        };
        Self { inner: Arc::new(inner) }
    }
}

/// The application's routes. The ones that do work for a client pass the request limits;
/// liveness, readiness and metrics answer even while those limits bite, so that operators
/// can watch them biting.
pub fn router(state: AppState) -> Router {
    let limited = Router::new()
        .route("/meta/webhook", get(webhook::handshake).post(webhook::receive))
        .route("/meta/webhook/status", get(observe::status))
        .nest("/api", admin::router(state.clone()))
        .route_layer(middleware::from_fn_with_state(state.clone(), limits::admit));
    Router::new()
        .merge(limited)
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .route("/metrics", get(observe::metrics))
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

/// Counts every request by route template, method and status.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = match request.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        Some("/meta/webhook") => "/meta/webhook",
        Some("/meta/webhook/status") => "/meta/webhook/status",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        Some(path) if path.starts_with("/api/") => "/api",
        _ => "unmatched",
    };
    let method = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.inner.metrics.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    tracing::debug!(
        route,
        method,
        status,
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}
