//! Limits that keep the server answering under abuse: header read timeout, connection cap,
//! concurrency cap, rejections per address; each counted when it bites, none storing anything.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, Options, TestApp, client, messenger_text, send_post_head};

fn limit(name: &str) -> String {
    format!(r#"metahook_limit_rejections_total{{limit="{name}"}}"#)
}

/// Waits until the server closes `stream` (end of file or reset), without an answer, and
/// says after how long; panics after `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    match tokio::time::timeout(within, stream.read(&mut buffer)).await {
        Ok(Ok(0) | Err(_)) => started.elapsed(),
        Ok(Ok(n)) => panic!("answered: {}", String::from_utf8_lossy(&buffer[..n])),
        Err(_) => panic!("still open after {within:?}"),
    }
}

/// The body of every held request.
fn held_body() -> Vec<u8> {
    messenger_text(1)
}

/// Opens `n` connections that each send the head of a signed delivery but hold back its
/// body, and waits a moment for the server to be handling them all.
async fn hold_requests(app: &TestApp, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(send_post_head(app.socket_address(), &held_body()).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    held
}

/// Sends the bodies of held requests and checks that each is acknowledged.
async fn release(held: Vec<TcpStream>) {
    for mut stream in held {
        stream.write_all(&held_body()).await.unwrap();
        let mut answer = vec![0u8; 512];
        let n = stream.read(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
}

#[tokio::test]
async fn a_client_sending_its_head_a_byte_a_second_is_cut_off_while_others_are_served() {
    let options = Options::default().with("METAHOOK_HEADER_TIMEOUT_MS", "2000");
    let app = TestApp::spawn_with(options).await;
    let opened = Instant::now();
    let mut silent = TcpStream::connect(app.socket_address()).await.unwrap();
    let slow = TcpStream::connect(app.socket_address()).await.unwrap();
    let (mut reader, mut writer) = slow.into_split();
    let head = format!("POST /meta/webhook HTTP/1.1\r\nHost: {}\r\n\r\n", app.socket_address());
    let trickle = tokio::spawn(async move {
        for byte in head.into_bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    // While both hold their connections, a delivery on another one is served at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    assert_eq!(app.post_signed(messenger_text(1)).await.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    let mut buffer = [0u8; 256];
    let cut = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buffer)).await;
    assert!(matches!(cut, Ok(Ok(0) | Err(_))), "{cut:?}");
    let slow_after = opened.elapsed();
    closed_by_server(&mut silent, Duration::from_secs(5)).await;
    let silent_after = opened.elapsed();
    trickle.abort();
    for after in [slow_after, silent_after] {
        assert!(
            after >= Duration::from_millis(1900) && after < Duration::from_secs(4),
            "{after:?}"
        );
    }
    assert_eq!(app.metric(&limit("header_timeout")).await, 2.0);
    assert_eq!(app.stored().await.len(), 1);
}

#[tokio::test]
async fn thousands_of_connections_opened_at_once_do_not_keep_a_delivery_from_being_acknowledged() {
    let app = TestApp::spawn_with(Options::default().with("METAHOOK_MAX_CONNECTIONS", "500")).await;
    let address = app.socket_address().to_owned();
    let opening: Vec<_> = (0..2000)
        .map(|_| {
            let address = address.clone();
            tokio::spawn(async move { TcpStream::connect(address).await })
        })
        .collect();
    let mut crowd = Vec::with_capacity(opening.len());
    for connecting in opening {
        crowd.push(connecting.await.unwrap().expect("the kernel accepts the connection"));
    }

    // A client that sends its request at once takes the place of one that sends nothing.
    let started = Instant::now();
    let delivered = app.post_signed_from(&client(), messenger_text(1)).await;
    assert_eq!(delivered.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    assert!(app.metric(&limit("connections")).await >= 1500.0);
    assert!(app.metric("metahook_open_connections").await <= 500.0);
    drop(crowd);
    assert_eq!(app.stored().await.len(), 1);
}

#[tokio::test]
async fn a_connection_past_the_limit_is_closed_at_once_when_every_other_is_handling_a_request() {
    let options = Options::default().with("METAHOOK_MAX_CONNECTIONS", "2");
    let app = TestApp::spawn_with(options).await;
    // Two deliveries whose bodies have not arrived yet hold both places.
    let held = hold_requests(&app, 2).await;

    let mut newcomer = TcpStream::connect(app.socket_address()).await.unwrap();
    let after = closed_by_server(&mut newcomer, Duration::from_secs(2)).await;
    assert!(after < Duration::from_millis(500), "{after:?}");

    // The two held requests are still served when their bodies arrive.
    release(held).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The second held delivery took the place of the connection the app's client kept idle
    // since start-up; the newcomer was refused.
    assert_eq!(app.metric(&limit("connections")).await, 2.0);
    assert_eq!(app.stored().await.len(), 2);
}

#[tokio::test]
async fn requests_past_the_concurrency_cap_get_503_with_retry_after_and_are_not_stored() {
    let options = Options::default()
        .with("METAHOOK_MAX_CONCURRENT_REQUESTS", "2")
        .with("METAHOOK_RETRY_AFTER_SECS", "7");
    let app = TestApp::spawn_with(options).await;
    let held = hold_requests(&app, 2).await;

    let started = Instant::now();
    let refused = app.post_signed(messenger_text(2)).await;
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "7");
    // Operators can still see what happens.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.metric(&limit("concurrency")).await, 1.0);

    release(held).await;
    assert_eq!(app.post_signed(messenger_text(3)).await.status(), 200);
    let requests = r#"metahook_http_requests_total{route="/meta/webhook",method="POST",status="#;
    assert_eq!(app.metric(&format!(r#"{requests}"503"}}"#)).await, 1.0);
    assert_eq!(app.metric(&format!(r#"{requests}"200"}}"#)).await, 3.0);
    let stored: Vec<Vec<u8>> = app.stored().await.into_iter().map(|d| d.body).collect();
    assert_eq!(stored, [held_body(), held_body(), messenger_text(3)]);
}

/// Waits for the start of the next wall-clock second, the window the per-address cap counts
/// in, so that what follows fits in one window.
async fn next_second() {
    let ms = metahook::clock::now_ms();
    tokio::time::sleep(Duration::from_millis((1000 - ms.rem_euclid(1000)) as u64 + 20)).await;
}

/// A client whose connections come from `ip` (any of 127.0.0.0/8 reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    crate::helpers::client_builder().local_address(ip.parse().ok()).build().unwrap()
}

#[tokio::test]
async fn an_address_rejected_too_often_gets_429_for_the_rest_of_the_second_and_others_do_not() {
    let options = Options::default().with("METAHOOK_REJECT_LIMIT_PER_ADDRESS", "3");
    let app = TestApp::spawn_with(options).await;
    let (forger, meta) = (client_from("127.0.0.1"), client_from("127.0.0.2"));

    next_second().await;
    for _ in 0..3 {
        assert_eq!(forged(&app, &forger).await.status(), 401);
    }
    let capped = forged(&app, &forger).await;
    assert_eq!(capped.status(), 429);
    assert_eq!(capped.headers()["retry-after"], "1");
    // Even a valid delivery from that address must wait; one from another address need not.
    assert_eq!(app.post_signed_from(&forger, messenger_text(1)).await.status(), 429);
    assert_eq!(app.post_signed_from(&meta, messenger_text(2)).await.status(), 200);
    assert_eq!(app.metric(&limit("per_address")).await, 2.0);

    // The next second starts afresh; wrong admin tokens count as rejections too.
    next_second().await;
    for _ in 0..3 {
        let guess = forger.get(app.url("/api/events")).bearer_auth("guess").send().await.unwrap();
        assert_eq!(guess.status(), 401);
    }
    let admin = forger.get(app.url("/api/events")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(admin.status(), 429);
    let requests = r#"metahook_http_requests_total{route="/meta/webhook",method="POST",status="#;
    assert_eq!(app.metric(&format!(r#"{requests}"429"}}"#)).await, 2.0);
    assert_eq!(app.metric(&limit("per_address")).await, 3.0);
    assert_eq!(app.stored().await.len(), 1);
}

/// A POST with a well-formed signature that matches nothing.
async fn forged(app: &TestApp, client: &reqwest::Client) -> reqwest::Response {
    let signature = format!("sha256={}", "0".repeat(64));
    app.post_from(client, messenger_text(9), &[("x-hub-signature-256", &signature)]).await
}
