//! The webhook route: handshake, signature, envelope, limits, durability.

use crate::helpers::{
    Options, SECRET, TestApp, Undisclosed, VERIFY_TOKEN, messenger_text, send_post_head, sign,
};

fn handshake_path(mode: &str, token: &str, challenge: &str) -> String {
    format!("/meta/webhook?hub.mode={mode}&hub.verify_token={token}&hub.challenge={challenge}")
}

#[tokio::test]
async fn handshake_returns_the_challenge_as_plain_text() {
    let app = TestApp::spawn().await;
    let response = app.get(&handshake_path("subscribe", VERIFY_TOKEN, "1158201444")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "1158201444");
}

#[tokio::test]
async fn handshake_with_a_wrong_token_is_forbidden() {
    let app = TestApp::spawn().await;
    let response = app.get(&handshake_path("subscribe", "not-the-token", "1")).await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(!body.contains(VERIFY_TOKEN) && !body.contains("not-the-token"), "{body}");
}

#[tokio::test]
async fn handshake_with_a_wrong_mode_is_forbidden() {
    let app = TestApp::spawn().await;
    let response = app.get(&handshake_path("unsubscribe", VERIFY_TOKEN, "1")).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn each_missing_handshake_parameter_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let token = format!("hub.verify_token={VERIFY_TOKEN}");
    for query in [
        format!("hub.challenge=1&{token}"),
        "hub.mode=subscribe&hub.challenge=1".to_string(),
        format!("hub.mode=subscribe&{token}"),
        String::new(),
    ] {
        let response = app.get(&format!("/meta/webhook?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
    }
}

#[tokio::test]
async fn handshake_is_refused_when_no_verify_token_is_configured() {
    let app = TestApp::spawn_with(Options::default().without("METAHOOK_VERIFY_TOKEN")).await;
    let response = app.get(&handshake_path("subscribe", "", "1")).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn signed_messenger_message_is_received() {
    let app = TestApp::spawn().await;
    let body = std::fs::read(crate::fixtures::dir().join("01-fb-text-real-2017.json")).unwrap();
    let response = app.post_signed(body.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"received"}"#);
    let stored = app.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].body.as_slice(), stored[0].object.as_str()), (body.as_slice(), "page"));
}

#[tokio::test]
async fn signed_instagram_event_is_received() {
    let app = TestApp::spawn().await;
    let body = std::fs::read(crate::fixtures::dir().join("38-ig-image-real.json")).unwrap();
    let response = app.post_signed(body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"received"}"#);
    assert_eq!(app.stored().await[0].object, "instagram");
}

#[tokio::test]
async fn three_events_in_one_entry_are_stored_whole() {
    let app = TestApp::spawn().await;
    let event = |n: u64| {
        format!(
            r#"{{"sender":{{"id":"USER"}},"recipient":{{"id":"PAGE"}},"timestamp":{},"message":{{"mid":"m_{n}","text":"part {n} \u00e4\ud83e\udd70"}}}}"#,
            1_700_000_000_000 + n
        )
    };
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"PAGE","time":1700000000000,"messaging":[{},{},{}]}}]}}"#,
        event(1),
        event(2),
        event(3)
    );
    let response = app.post_signed(body.clone()).await;
    assert_eq!(response.status(), 200);
    let stored = app.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, body.as_bytes());
    assert_eq!(stored[0].entries, 1);
}

#[tokio::test]
async fn status_reports_an_active_webhook() {
    let app = TestApp::spawn().await;
    let status = app.status().await;
    assert_eq!(status["webhook"]["status"], "active");
    let backend = if crate::helpers::postgres_server().is_some() { "postgres" } else { "sqlite" };
    assert_eq!(status["store"]["backend"], backend);
    assert_eq!(status["store"]["deliveries"], 0);
    assert!(status["last_event_time"].is_null());
    for key in ["received", "rejected", "processed", "errors"] {
        assert_eq!(status["counters"][key], 0, "{key}");
    }
    for key in ["events", "pending", "dead"] {
        assert!(status["store"][key].is_u64(), "{key}");
    }
}

#[tokio::test]
async fn missing_malformed_or_wrong_signatures_are_unauthorized_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let body = messenger_text(1);
    let right = sign(SECRET, &body);
    let other_body = sign(SECRET, &messenger_text(2));
    let other_secret = sign("another-secret", &body);
    let sha1_only = "sha1=74432bfe572675092cc81b5ac903ff3f971b04e5".to_string();
    let truncated = right[..right.len() - 1].to_string();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("missing", vec![]),
        ("legacy sha1 only", vec![("x-hub-signature", &sha1_only)]),
        ("no prefix", vec![("x-hub-signature-256", &right[7..])]),
        ("truncated", vec![("x-hub-signature-256", &truncated)]),
        ("empty", vec![("x-hub-signature-256", "")]),
        ("for another body", vec![("x-hub-signature-256", &other_body)]),
        ("another secret", vec![("x-hub-signature-256", &other_secret)]),
    ];
    for (case, headers) in cases {
        let response = app.post_with(body.clone(), &headers).await;
        assert_eq!(response.status(), 401, "{case}");
        let sent = headers.first().map(|(_, value)| *value);
        let text = response.text().await.unwrap();
        Undisclosed::configured().request(&body, sent).assert_absent(case, &text);
    }
    assert!(app.stored().await.is_empty());
    assert_eq!(app.status().await["store"]["deliveries"], 0);
}

#[tokio::test]
async fn uppercase_signature_hex_is_accepted() {
    let app = TestApp::spawn().await;
    let body = messenger_text(1);
    let signature = format!("sha256={}", sign(SECRET, &body)[7..].to_uppercase());
    let response = app.post_with(body, &[("x-hub-signature-256", &signature)]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn any_configured_secret_is_accepted_and_its_position_recorded() {
    let options = Options::default().with("METAHOOK_APP_SECRET", "old-secret,new-secret");
    let app = TestApp::spawn_with(options).await;
    for secret in ["new-secret", "old-secret"] {
        let body = messenger_text(secret.len());
        let signature = sign(secret, &body);
        let response = app.post_with(body, &[("x-hub-signature-256", &signature)]).await;
        assert_eq!(response.status(), 200, "{secret}");
    }
    let positions: Vec<usize> = app.stored().await.iter().map(|d| d.secret_index).collect();
    assert_eq!(positions, vec![1, 0]);
}

#[tokio::test]
async fn without_app_secrets_every_post_is_unauthorized() {
    let app = TestApp::spawn_with(Options::default().without("METAHOOK_APP_SECRET")).await;
    let body = messenger_text(1);
    assert_eq!(app.post_signed(body.clone()).await.status(), 401);
    let empty_key = sign("", &body);
    assert_eq!(app.post_with(body, &[("x-hub-signature-256", &empty_key)]).await.status(), 401);
    assert!(app.stored().await.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = TestApp::spawn_with(Options::default().with("METAHOOK_BODY_LIMIT", "1KiB")).await;
    let pad = "x".repeat(1024);
    let body = format!(r#"{{"object":"page","entry":[],"pad":"{pad}"}}"#).into_bytes();
    assert_eq!(app.post_signed(body.clone()).await.status(), 413);

    // Streamed without a Content-Length, the limit is enforced while reading.
    let signature = sign(SECRET, &body);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(100).map(|c| Ok(c.to_vec())).collect();
    let response = app
        .client
        .post(app.url("/meta/webhook"))
        .header("x-hub-signature-256", signature)
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let fits = format!(r#"{{"object":"page","entry":[],"pad":"{}"}}"#, &pad[..900]);
    assert_eq!(app.post_signed(fits).await.status(), 200);
    assert_eq!(app.stored().await.len(), 1);
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_delivery_is_a_bad_request() {
    let app = TestApp::spawn().await;
    for body in [
        "",
        "not json",
        "[]",
        "null",
        r#"{"object":"page"}"#,
        r#"{"entry":[]}"#,
        r#"{"object":42,"entry":[]}"#,
        r#"{"object":"page","entry":{}}"#,
        r#"{"object":"page","entry":[]}{"object":"page","entry":[]}"#,
        r#"{"object":"page","entry":[{"id":"\ud800"}]}"#,
    ] {
        let response = app.post_signed(body).await;
        assert_eq!(response.status(), 400, "{body}");
    }
    let deep = format!(r#"{{"object":"page","entry":[{}{}]}}"#, "[".repeat(5000), "]".repeat(5000));
    assert_eq!(app.post_signed(deep).await.status(), 400);
    let invalid_utf8 = b"{\"object\":\"page\",\"entry\":[\"\xff\"]}".to_vec();
    assert_eq!(app.post_signed(invalid_utf8).await.status(), 400);
    assert!(app.stored().await.is_empty());
}

#[tokio::test]
async fn unknown_objects_are_stored_and_acknowledged() {
    let app = TestApp::spawn().await;
    let body = r#"{"object":"permissions","entry":[{"id":"1","time":1,"changes":[{"field":"x","value":{}}]}]}"#;
    assert_eq!(app.post_signed(body).await.status(), 200);
    assert_eq!(app.stored().await[0].object, "permissions");
}

#[tokio::test]
async fn deliveries_survive_a_restart() {
    let app = TestApp::spawn().await;
    for n in 0..5 {
        assert_eq!(app.post_signed(messenger_text(n)).await.status(), 200);
    }
    assert_eq!(app.post_with(messenger_text(9), &[]).await.status(), 401);
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, Options::default()).await;
    let status = app.status().await;
    assert_eq!(status["store"]["deliveries"], 5);
    assert_eq!(status["counters"]["received"], 5);
    assert_eq!(status["counters"]["rejected"], 1);
    assert!(status["last_event_time"].is_string());
    let bodies: Vec<Vec<u8>> = app.stored().await.into_iter().map(|d| d.body).collect();
    assert_eq!(bodies, (0..5).map(messenger_text).collect::<Vec<_>>());
}

#[tokio::test]
async fn other_methods_are_not_allowed() {
    let app = TestApp::spawn().await;
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response =
            app.client.request(method.clone(), app.url("/meta/webhook")).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method}");
    }
}

#[tokio::test]
async fn concurrent_deliveries_are_all_stored() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move { app.post_signed(messenger_text(n)).await.status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let mut bodies: Vec<Vec<u8>> = app.stored().await.into_iter().map(|d| d.body).collect();
    bodies.sort();
    let mut expected: Vec<Vec<u8>> = (0..200).map(messenger_text).collect();
    expected.sort();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn a_body_trickled_slower_than_the_timeout_is_cut_off_with_408_and_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn_with(Options::default().with("METAHOOK_BODY_TIMEOUT_MS", "500")).await;
    let body = messenger_text(1);
    let slow = send_post_head(app.socket_address(), &body).await;
    let (mut reader, mut writer) = slow.into_split();
    let started = std::time::Instant::now();
    // One byte every 200 ms: the whole body would take over a minute.
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    // A valid delivery from another client is served while the slow one trickles.
    assert_eq!(app.post_signed(messenger_text(2)).await.status(), 200);
    let mut answer = vec![0u8; 1024];
    let read = reader.read(&mut answer);
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), read).await.expect("cut off");
    let text = String::from_utf8_lossy(&answer[..n.unwrap()]).into_owned();
    trickle.abort();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(app.stored().await.len(), 1);
    assert_eq!(app.metric(r#"metahook_limit_rejections_total{limit="body_timeout"}"#).await, 1.0);
}

#[tokio::test]
async fn the_sqlite_inbox_log_is_copied_and_reused_while_deliveries_keep_coming() {
    if crate::helpers::postgres_server().is_some() {
        return;
    }
    let options = Options::default().with("METAHOOK_PIPELINE", "false");
    let app = std::sync::Arc::new(TestApp::spawn_with(options).await);
    let mut log = crate::helpers::db_path(app.dir.path()).into_os_string();
    log.push("-wal");
    // About 6 KiB each: 1,504 of them are 9 MiB, twice the log length (1,000 pages of 4 KiB)
    // at which the housekeeping task copies the log into the inbox file.
    let body = |n: usize| {
        let text = "x".repeat(6_000);
        format!(
            r#"{{"object":"page","entry":[{{"id":"1","time":1,"messaging":[{{"sender":{{"id":"2"}},"recipient":{{"id":"1"}},"timestamp":1,"message":{{"mid":"m.{n}","text":"{text}"}}}}]}}]}}"#
        )
        .into_bytes()
    };
    // Sixteen clients posting one after another, so that commits keep coming while the log
    // is checkpointed, and the log's length watched meanwhile.
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let app = app.clone();
            tokio::spawn(async move {
                for n in 0..94 {
                    assert_eq!(app.post_signed(body(client * 100 + n)).await.status(), 200);
                }
            })
        })
        .collect();
    let mut longest = 0;
    while !clients.iter().all(|c| c.is_finished()) {
        longest = longest.max(std::fs::metadata(&log).unwrap().len());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(app.stored().await.len(), 16 * 94);
    // It reaches about 4 MiB here. Without checkpoints, or with a log that is never started
    // again from its beginning, it holds every page written: 19 MiB.
    assert!(longest < 12 << 20, "the log grew to {longest} bytes");
}
