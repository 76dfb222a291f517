//! The admin API under `/api`: lists of deliveries, events and the domain tables, and
//! replay. Every route needs `Authorization: Bearer <admin_token>`; with no admin token
//! configured the whole API answers 404, as if it did not exist.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::{ApiError, AppState};
use crate::pipeline::ReplayFilter;
use crate::store::ListQuery;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub fn router(state: AppState) -> Router<AppState> {
    let list = |resource: &'static str| {
        get(move |state: State<AppState>, query: Query<HashMap<String, String>>| {
            list(state, resource, query)
        })
    };
    Router::new()
        .route("/deliveries", list("deliveries"))
        .route("/events", list("events"))
        .route("/events/retry", post(retry_many))
        .route("/events/{id}/retry", post(retry_one))
        .route("/messages", list("messages"))
        .route("/conversations", list("conversations"))
        .route("/comments", list("comments"))
        .route("/mentions", list("mentions"))
        .route("/story-insights", list("story-insights"))
        .route("/feed", list("feed"))
        .route("/optins", list("optins"))
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::middleware::from_fn_with_state(state, authorize))
}

/// 404 without an admin token, 401 without the right one, compared in constant time.
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = state.inner.admin_token.as_ref() else {
        return ApiError::not_found().into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer_token(v.as_bytes()))
        .unwrap_or_default();
    if token.matches(presented) {
        next.run(request).await
    } else {
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
            .into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
        response
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme's name is matched in
/// any case, as HTTP says of authentication schemes (RFC 9110, 11.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

async fn list(
    State(state): State<AppState>,
    resource: &'static str,
    Query(mut params): Query<HashMap<String, String>>,
) -> Response {
    let limit = match params.remove("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return ApiError::bad_request(format!("limit must be 1 to {MAX_LIMIT}"))
                .into_response();
        }
    };
    let after = match params.remove("cursor").map(|c| c.parse::<i64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return ApiError::bad_request("cursor is not one this API gave").into_response();
        }
    };
    let query = ListQuery { after, limit, filters: params };
    match state.inner.store.list(resource, query).await {
        Ok(page) => Json(json!({
            "items": page.items,
            "next_cursor": page.next_cursor.map(|c| c.to_string()),
        }))
        .into_response(),
        Err(error) => internal(error),
    }
}

/// A malformed id gets the API's JSON error, not the extractor's plain text.
async fn retry_one(
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return ApiError::bad_request("an event id is a number").into_response();
    };
    let filter = ReplayFilter { id: Some(id), ..ReplayFilter::default() };
    match state.inner.store.replay(filter).await {
        Ok(0) => ApiError::not_found().into_response(),
        Ok(n) => replayed(&state, n),
        Err(error) => internal(error),
    }
}

async fn retry_many(
    State(state): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
) -> Response {
    let filter = ReplayFilter {
        id: None,
        status: Some(params.remove("status").unwrap_or_else(|| "dead".into())),
        kind: params.remove("kind"),
        platform: params.remove("platform"),
    };
    if let Err(message) = filter.validate() {
        return ApiError::bad_request(message).into_response();
    }
    match state.inner.store.replay(filter).await {
        Ok(n) => replayed(&state, n),
        Err(error) => internal(error),
    }
}

fn replayed(state: &AppState, n: usize) -> Response {
    state.inner.pipeline_wake.notify_one();
    tracing::info!(events = n, "events queued for replay");
    Json(json!({ "replayed": n })).into_response()
}

fn internal(error: crate::store::StoreError) -> Response {
    tracing::error!(%error, "admin query failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}
