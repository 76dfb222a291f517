//! Limits that keep the server answering under abuse: header read timeout and connection cap;
//! each counted when it bites, none storing anything.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, TestApp, client, messenger_text, send_post_head};

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
