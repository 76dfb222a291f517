//! `GET /meta/webhook` answers Meta's handshake; `POST /meta/webhook` verifies a delivery over
//! its raw bytes, stores it durably, and only then answers 200.

use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use meta_webhooks::signature::{SIGNATURE_256_HEADER, SignatureError};
use meta_webhooks::{Envelope, Handshake};

use super::limits::{self, Limit};
use super::{ApiError, AppState};
use crate::clock;
use crate::inbox::{InboxError, Receipt};
use crate::metrics::ReasonLabels;
use crate::store::NewDelivery;

/// The body Meta gets for every accepted delivery.
const RECEIVED: &str = r#"{"status":"received"}"#;

pub async fn handshake(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let outcome = Handshake::from_query(&query)
        .and_then(|h| h.verify(state.inner.verify_token.as_ref()).map(str::to_owned));
    match outcome {
        Ok(challenge) => {
            tracing::info!("webhook handshake verified");
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge).into_response()
        }
        Err(error) => {
            tracing::warn!(reason = %error, "webhook handshake refused");
            let status = if error.is_bad_request() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::FORBIDDEN
            };
            ApiError::new(status, error.to_string()).into_response()
        }
    }
}

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let app = &state.inner;
    match accept(&state, &headers, body).await {
        Ok(()) => {
            app.metrics.deliveries_accepted.inc();
            app.metrics.ack_latency.observe(started.elapsed().as_secs_f64());
            ([(header::CONTENT_TYPE, "application/json")], RECEIVED).into_response()
        }
        Err(refusal) => {
            if refusal.reason == "timeout" {
                limits::bitten(&app.metrics, Limit::BodyTimeout);
            }
            app.metrics.rejected.get_or_create(&ReasonLabels { reason: refusal.reason }).inc();
            if refusal.reason != "unavailable" {
                app.inbox.count_rejection();
            }
            refusal.error.into_response()
        }
    }
}

/// A POST that was not stored: the answer, and a bounded label for the metric.
struct Refusal {
    reason: &'static str,
    error: ApiError,
}

impl Refusal {
    fn new(reason: &'static str, error: ApiError) -> Self {
        Self { reason, error }
    }
}

async fn accept(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), Refusal> {
    let app = &state.inner;
    let body = read_body(body, headers, app.body_limit, app.body_timeout).await?;
    app.metrics.bytes_received.inc_by(body.len() as u64);

    let signature = headers.get(SIGNATURE_256_HEADER).map(|v| v.as_bytes());
    let secret = app.verifier.verify(signature, &body).map_err(|error| {
        let reason = match error {
            SignatureError::Missing => "missing",
            SignatureError::Malformed => "malformed",
            SignatureError::Mismatch => "mismatch",
        };
        app.metrics.signature_rejections.get_or_create(&ReasonLabels { reason }).inc();
        warn_throttled(reason, body.len());
        Refusal::new("signature", ApiError::new(StatusCode::UNAUTHORIZED, error.to_string()))
    })?;

    // Only a verified body is parsed.
    let envelope = Envelope::parse(&body)
        .map_err(|e| Refusal::new("not_a_delivery", ApiError::bad_request(e.to_string())))?;
    let delivery = NewDelivery {
        received_at: clock::now_ms(),
        object: envelope.object,
        entries: envelope.entries,
        secret_index: secret.0,
        body,
    };
    let (object, bytes) = (delivery.object.clone(), delivery.body.len());
    match app.inbox.append(delivery).await {
        Ok(Receipt::Stored(id)) => {
            tracing::debug!(delivery = id.0, object, bytes, secret = secret.0, "delivery stored");
            Ok(())
        }
        Ok(Receipt::Spooled) => {
            tracing::debug!(object, bytes, secret = secret.0, "delivery spooled");
            Ok(())
        }
        Err(error) => {
            let reason = match error {
                InboxError::Unavailable => "the store cannot take deliveries right now",
                InboxError::Closed => "the server is shutting down",
            };
            Err(Refusal::new("unavailable", ApiError::unavailable(reason, app.retry_after_secs)))
        }
    }
}

/// Reads the whole body within `timeout`, refusing it as soon as it is known to exceed
/// `limit`. A client that trickles its body is cut off with 408 instead of holding a
/// connection and a request slot for as long as it likes.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            "too_large",
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds {limit} bytes")),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    let Ok(read) = read else {
        let message = format!("the body did not arrive within {} ms", timeout.as_millis());
        return Err(Refusal::new("timeout", ApiError::new(StatusCode::REQUEST_TIMEOUT, message)));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => {
            tracing::debug!(error = %e, "could not read request body");
            Err(Refusal::new(
                "unreadable",
                ApiError::bad_request("could not read the request body"),
            ))
        }
    }
}

/// Logs a signature refusal at most once a second: a flood of forged requests must not
/// flood the log, while one misconfigured secret must still be visible.
fn warn_throttled(reason: &'static str, bytes: usize) {
    static LAST_SECOND: AtomicI64 = AtomicI64::new(0);
    if clock::first_this_second(&LAST_SECOND) {
        tracing::warn!(reason, bytes, "refused a POST without a valid signature");
    }
}
