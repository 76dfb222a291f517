//! The one place where failures become HTTP responses.
//!
//! Client faults get a precise status and a short JSON reason. Nothing in a body ever
//! repeats a signature, a secret, a token or the request body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer: status, a reason for the client, and optionally `Retry-After`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
    retry_after_secs: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into(), retry_after_secs: None }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    /// The request cannot be taken now (the store, or a limit); retry after `secs`.
    pub fn unavailable(reason: impl Into<String>, secs: u32) -> Self {
        Self::retry_after(StatusCode::SERVICE_UNAVAILABLE, reason, secs)
    }

    /// The client sent too much of what gets refused; it may try again after `secs`.
    pub fn too_many_requests(reason: impl Into<String>, secs: u32) -> Self {
        Self::retry_after(StatusCode::TOO_MANY_REQUESTS, reason, secs)
    }

    fn retry_after(status: StatusCode, reason: impl Into<String>, secs: u32) -> Self {
        Self { retry_after_secs: Some(secs), ..Self::new(status, reason) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.reason }))).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
