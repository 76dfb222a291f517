//! What operators read: status, health, readiness, metrics; and the 503 path.

use std::time::Duration;

use crate::helpers::{TestApp, db_path, messenger_text};

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.get("/nowhere").await.status(), 404);
}

#[tokio::test]
async fn metrics_count_requests_deliveries_rejections_bytes_batches_and_latency() {
    let app = TestApp::spawn().await;
    let body = messenger_text(1);
    assert_eq!(app.post_signed(body.clone()).await.status(), 200);
    assert_eq!(app.post_with(body.clone(), &[]).await.status(), 401);
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for line in [
        r#"metahook_http_requests_total{route="/meta/webhook",method="POST",status="200"} 1"#,
        r#"metahook_http_requests_total{route="/meta/webhook",method="POST",status="401"} 1"#,
        "metahook_deliveries_accepted_total 1",
        r#"metahook_signature_rejections_total{reason="missing"} 1"#,
        &format!("metahook_received_bytes_total {}", 2 * body.len()),
        "metahook_inbox_commit_batch_size_count 1",
        "metahook_ack_latency_seconds_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("metahook_ack_latency_seconds_bucket{le="));
}

#[tokio::test]
async fn rejections_are_counted_in_the_store() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        assert_eq!(app.post_with(messenger_text(1), &[]).await.status(), 401);
    }
    // Rejections reach the store within about a second, with or without other commits.
    let mut rejected = 0;
    for _ in 0..50 {
        rejected = app.status().await["counters"]["rejected"].as_u64().unwrap();
        if rejected == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rejected, 3);
}

#[tokio::test]
async fn a_store_that_cannot_commit_gets_503_with_retry_after_and_nothing_is_acknowledged() {
    // A PostgreSQL store that cannot commit falls back to the spool instead (see spool.rs).
    if crate::helpers::postgres_server().is_some() {
        return;
    }
    let app = TestApp::spawn().await;
    assert_eq!(app.post_signed(messenger_text(0)).await.status(), 200);

    // Another process holding the write lock past the busy timeout makes commits fail.
    let blocker = rusqlite::Connection::open(db_path(app.dir.path())).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let response = app.post_signed(messenger_text(1)).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(app.status().await["webhook"]["status"], "degraded");
    assert_eq!(app.get("/readyz").await.status(), 503);
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);

    assert_eq!(app.post_signed(messenger_text(2)).await.status(), 200);
    assert_eq!(app.status().await["webhook"]["status"], "active");
    let bodies: Vec<Vec<u8>> = app.stored().await.into_iter().map(|d| d.body).collect();
    assert_eq!(bodies, vec![messenger_text(0), messenger_text(2)]);
}
