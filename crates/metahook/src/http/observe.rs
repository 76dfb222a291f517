//! Routes for operators: status, liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::status::{SpoolSection, StatusReport};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn status(State(state): State<AppState>) -> Response {
    let app = &state.inner;
    let (deliveries, bytes) = app.inbox.spooled();
    let spool = SpoolSection { deliveries, bytes };
    match StatusReport::gather(&app.store, app.inbox.is_healthy(), spool).await {
        Ok(report) => Json(report).into_response(),
        Err(error) => {
            // The database is away: say so, with what this instance knows by itself.
            tracing::warn!(%error, "cannot read status from the store");
            let body = serde_json::json!({
                "webhook": { "status": "degraded" },
                "store": { "backend": app.store.backend(), "available": false },
                "spool": { "deliveries": deliveries, "bytes": bytes },
                "error": "the store cannot be read",
            });
            Json(body).into_response()
        }
    }
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let app = &state.inner;
    match app.store.check_writable().await {
        Ok(()) if app.inbox.is_healthy() => "ready".into_response(),
        Ok(()) => ApiError::unavailable("the last inbox commit failed", app.retry_after_secs)
            .into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "store is not writable");
            ApiError::unavailable("the store is not writable", app.retry_after_secs).into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // The text is OpenMetrics, which Prometheus' classic text parser also reads (`# EOF` and
    // `# UNIT` are comments to it); say which one the scraper asked for.
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let content_type = if wants_openmetrics { OPENMETRICS } else { PROMETHEUS_TEXT };
    ([(header::CONTENT_TYPE, content_type)], state.inner.metrics.render()).into_response()
}
