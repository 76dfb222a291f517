//! `metahook simulate`: in-process against `TestApp`, and as the built binary against
//! metahook, a capturing peer, a flaky peer and deliberately wrong handshake endpoints.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use clap::Parser;
use meta_webhooks::generate::CATALOG;
use meta_webhooks::{Secret, Verifier};
use metahook::config::Config;
use serde_json::Value;

use crate::helpers::{SECRET, TestApp, VERIFY_TOKEN};

const AT: &str = "1767225600000";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: metahook::simulate::Args,
}

/// Runs `simulate` in this process with these arguments.
async fn simulate(line: &[&str]) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(std::iter::once("simulate").chain(line.iter().copied()))
        .expect("valid arguments");
    let config = Config::from_layers(None, &HashMap::new()).unwrap();
    metahook::simulate::run(cli.args, &config).await
}

/// Runs the built binary's `simulate` with a clean environment plus `env`.
async fn binary(line: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_metahook"));
    command.env_clear().arg("simulate").args(line).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&output.stdout), stderr(output))
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A peer on port 0 serving `router`; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

type Captured = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A peer that records every POST and answers 200.
async fn capture() -> (String, Captured) {
    let seen = Captured::default();
    let record = |State(seen): State<Captured>, headers: HeaderMap, body: Bytes| async move {
        seen.lock().unwrap().push((headers, body));
        StatusCode::OK
    };
    let router = Router::new().route("/hook", post(record)).with_state(seen.clone());
    (format!("{}/hook", serve(router).await), seen)
}

#[tokio::test]
async fn every_kind_is_acknowledged_by_metahook_and_decoded_as_that_kind() {
    let app = TestApp::spawn().await;
    let url = app.url("/meta/webhook");
    let count = (CATALOG.len() * 2).to_string();
    simulate(&["all", "--count", &count, "--batch", "5", "--url", &url, "--secret", SECRET])
        .await
        .expect("every delivery acknowledged");
    app.settle().await;
    let found: BTreeSet<String> = app
        .items("/api/events")
        .await
        .iter()
        .map(|e| format!("{}.{}", e["platform"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    let expected: BTreeSet<String> = CATALOG.iter().map(|s| s.name.to_owned()).collect();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn deliveries_carry_metas_headers_and_a_signature_over_the_exact_bytes() {
    let (url, seen) = capture().await;
    simulate(&["all", "--batch", "3", "--url", &url, "--secret", SECRET, "--seed", "3"])
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let events: usize =
        seen.iter().map(|(_, body)| meta_webhooks::split(body).unwrap().len()).sum();
    assert_eq!(events, CATALOG.len());
    let verifier = Verifier::new(&[Secret::new(SECRET)]);
    for (headers, body) in seen.iter() {
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(header("user-agent"), "facebookexternalua");
        assert!(header("x-hub-signature").starts_with("sha1="));
        let signature = header("x-hub-signature-256");
        assert!(verifier.verify(Some(signature.as_bytes()), body).is_ok());
        assert!(body.is_ascii(), "non-ASCII is escaped as Meta escapes it");
    }
}

/// Every row of an admin list, however many pages it takes, sorted for comparison.
#[tokio::test]
async fn a_conversation_with_duplicates_out_of_order_ends_as_when_sent_once_in_order() {
    let conversation = ["--conversation", "all", "--count", "6", "--turns", "3", "--seed", "11"];
    let in_order = TestApp::spawn().await;
    let url = in_order.url("/meta/webhook");
    let mut line = conversation.to_vec();
    line.extend(["--at", AT, "--url", &url, "--secret", SECRET, "--concurrency", "1"]);
    simulate(&line).await.unwrap();

    let shaken = TestApp::spawn().await;
    let url = shaken.url("/meta/webhook");
    let mut line = conversation.to_vec();
    line.extend(["--at", AT, "--url", &url, "--secret", SECRET, "--concurrency", "8"]);
    line.extend(["--batch", "7", "--shuffle", "--duplicates", "0.5"]);
    simulate(&line).await.unwrap();

    in_order.settle().await;
    shaken.settle().await;
    let bodies: Vec<Vec<u8>> = shaken.stored().await.into_iter().map(|d| d.body).collect();
    let distinct: BTreeSet<&Vec<u8>> = bodies.iter().collect();
    assert!(distinct.len() < bodies.len(), "some deliveries were sent twice");
    for resource in ["/api/messages", "/api/conversations"] {
        let expected = in_order.all_items(resource).await;
        assert!(!expected.is_empty(), "{resource}");
        assert_eq!(shaken.all_items(resource).await, expected, "{resource}");
    }
    let events = |items: Vec<Value>| -> BTreeSet<String> {
        items.iter().map(|e| format!("{} {} {}", e["platform"], e["key"], e["status"])).collect()
    };
    let expected = events(in_order.all_items("/api/events").await);
    assert_eq!(events(shaken.all_items("/api/events").await), expected);

    // The thread's meaning reached the store: replies read, first messages edited, reactions.
    let messages = shaken.all_items("/api/messages").await;
    let outbound_read =
        messages.iter().filter(|m| m["direction"] == "out" && m["status"] == "read").count();
    assert_eq!(outbound_read, 6 * 3, "every reply ends read: {messages:#?}");
    assert!(messages.iter().filter(|m| m["edit_count"] == 1).count() >= 4, "{messages:#?}");
    assert!(messages.iter().filter(|m| !m["reaction"].is_null()).count() >= 4, "{messages:#?}");
}

#[tokio::test]
async fn the_binary_prints_a_json_summary_and_exits_0_when_all_is_acknowledged() {
    let app = TestApp::spawn().await;
    let url = app.url("/meta/webhook");
    let line = ["message", "--count", "10", "--batch", "3", "--json", "--url", &url];
    let output = binary(&line, &[("METAHOOK_APP_SECRET", SECRET)]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stdout_json(&output);
    assert_eq!((summary["sent"].as_u64(), summary["events"].as_u64()), (Some(4), Some(10)));
    assert_eq!(summary["acknowledged"], 4);
    assert_eq!(summary["not_acknowledged"], 0);
    assert_eq!(summary["failed"], serde_json::json!({}));
    assert_eq!(summary["responses"], serde_json::json!({"200": 4}));
    for p in ["p50", "p90", "p99", "max"] {
        assert!(summary["latency_ms"][p].as_f64().unwrap() > 0.0, "{p}");
    }
    assert_eq!(app.stored().await.len(), 4);
}

#[tokio::test]
async fn a_wrong_secret_is_retried_reported_by_status_and_exits_1() {
    let app = TestApp::spawn().await;
    let url = app.url("/meta/webhook");
    let line = ["message", "--json", "--retries", "2", "--retry-delay", "1", "--url", &url];
    let output = binary(&line, &[("METAHOOK_APP_SECRET", "not-the-app-secret")]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("2 of 2 deliveries were not acknowledged"),
        "{}",
        stderr(&output)
    );
    let summary = stdout_json(&output);
    assert_eq!(summary["failed"], serde_json::json!({"401": 2}));
    assert_eq!((summary["attempts"].as_u64(), summary["retries"].as_u64()), (Some(6), Some(4)));
    assert!(app.stored().await.is_empty());
}

#[tokio::test]
async fn a_flaky_endpoint_is_retried_like_meta_until_it_acknowledges() {
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky = |State(calls): State<Arc<AtomicUsize>>| async move {
        // Every delivery's first two attempts fail.
        if calls.fetch_add(1, Ordering::SeqCst) % 3 < 2 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    };
    let base = serve(Router::new().route("/hook", post(flaky)).with_state(calls.clone())).await;
    let url = format!("{base}/hook");
    let line = ["whatsapp", "--json", "--retry-delay", "5", "--concurrency", "1", "--url", &url];
    let line = [&line[..], &["--secret", SECRET]].concat();
    let output = binary(&line, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stdout_json(&output);
    assert_eq!((summary["sent"].as_u64(), summary["acknowledged"].as_u64()), (Some(3), Some(3)));
    assert_eq!(summary["responses"], serde_json::json!({"200": 3, "503": 6}));
}

#[tokio::test]
async fn an_unreachable_endpoint_exits_1_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/meta/webhook");
    let output =
        binary(&["feed", "--retries", "0", "--url", &url], &[("METAHOOK_APP_SECRET", SECRET)])
            .await;
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("unreachable x1") && text.contains("error "), "{text}");
}

#[tokio::test]
async fn a_file_is_sent_byte_for_byte_and_signed() {
    let (url, seen) = capture().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.json");
    // Raw UTF-8 and spaces: --file must not re-serialise what it is given.
    let body = "{\"object\": \"page\", \"entry\": [{\"id\": \"1\", \"time\": 1767225600000, \"messaging\": [{\"sender\": {\"id\": \"2\"}, \"recipient\": {\"id\": \"1\"}, \"timestamp\": 1767225600000, \"message\": {\"mid\": \"m_1\", \"text\": \"Günaydın 🌞\"}}]}]}";
    std::fs::write(&path, body).unwrap();
    let line =
        ["--file", path.to_str().unwrap(), "--count", "2", "--url", &url, "--secret", SECRET];
    let output = binary(&line, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let verifier = Verifier::new(&[Secret::new(SECRET)]);
    for (headers, received) in seen.iter() {
        assert_eq!(&received[..], body.as_bytes());
        let signature = headers.get("x-hub-signature-256").unwrap().as_bytes();
        assert!(verifier.verify(Some(signature), received).is_ok());
    }
}

#[tokio::test]
async fn handshake_against_metahook_is_verified_and_a_wrong_token_is_explained() {
    let app = TestApp::spawn().await;
    let url = app.url("/meta/webhook");
    let output = binary(
        &["--handshake", "--url", &url, "--json"],
        &[("METAHOOK_VERIFY_TOKEN", VERIFY_TOKEN)],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = stdout_json(&output);
    assert_eq!((report["verified"].as_bool(), report["status"].as_u64()), (Some(true), Some(200)));

    let line = ["--handshake", "--url", &url, "--verify-token", "not-the-token"];
    let output = binary(&line, &[("METAHOOK_VERIFY_TOKEN", VERIFY_TOKEN)]).await;
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("not verified") && text.contains("status 403"), "{text}");
    assert!(text.contains("verify token") && !text.contains("not-the-token"), "{text}");
}

/// Answers the handshake with the challenge found in the query, wrapped by `wrap`.
fn echo_challenge(status: StatusCode, wrap: fn(&str) -> String) -> axum::routing::MethodRouter {
    get(move |RawQuery(query): RawQuery| async move {
        let query = query.unwrap_or_default();
        let challenge = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("hub.challenge="))
            .unwrap_or_default()
            .to_owned();
        (status, wrap(&challenge))
    })
}

#[tokio::test]
async fn handshake_against_a_wrong_endpoint_says_what_is_wrong() {
    let router = Router::new()
        .route("/right", echo_challenge(StatusCode::OK, |c| c.to_owned()))
        .route("/accepted", echo_challenge(StatusCode::ACCEPTED, |c| c.to_owned()))
        .route("/json", echo_challenge(StatusCode::OK, |c| format!("{{\"challenge\":\"{c}\"}}")))
        .route("/newline", echo_challenge(StatusCode::OK, |c| format!("{c}\n")));
    let base = serve(router).await;
    let cases = [
        ("/right", None),
        ("/accepted", Some("status 202 instead of 200")),
        ("/json", Some("body is not the challenge")),
        ("/newline", Some("whitespace")),
        ("/missing", Some("status 404")),
    ];
    for (path, problem) in cases {
        let url = format!("{base}{path}");
        let output =
            binary(&["--handshake", "--json", "--url", &url, "--verify-token", "t"], &[]).await;
        let report = stdout_json(&output);
        match problem {
            None => {
                assert_eq!(output.status.code(), Some(0), "{path}: {report}");
                assert_eq!(report["verified"], true);
            }
            Some(expected) => {
                assert_eq!(output.status.code(), Some(1), "{path}");
                assert_eq!(report["verified"], false, "{path}");
                let reason = report["reason"].as_str().unwrap();
                assert!(reason.contains(expected), "{path}: {reason}");
            }
        }
    }
}

#[tokio::test]
async fn usage_errors_exit_2_with_a_message_and_list_names_every_kind() {
    let cases: [(&[&str], &str); 5] = [
        (&["messages", "--url", "http://127.0.0.1:9/"], "unknown kind `messages`"),
        (&["message", "--url", "ftp://example.com/hook"], "unsupported scheme ftp"),
        (&["message", "--url", "http://127.0.0.1:9/"], "no app secret"),
        (&["message", "--batch", "1001"], "1001"),
        (&["--url", "http://127.0.0.1:9/"], "name at least one kind"),
    ];
    for (line, expected) in cases {
        let output = binary(line, &[]).await;
        assert_eq!(output.status.code(), Some(2), "{line:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{line:?}: {}", stderr(&output));
    }

    let output = binary(&["--list"], &[]).await;
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    for spec in CATALOG {
        assert!(text.lines().any(|l| l.starts_with(spec.name) && l.contains(spec.description)));
    }
    let output = binary(&["--list", "--json"], &[]).await;
    let listed: BTreeMap<String, Value> = stdout_json(&output)
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap().to_owned(), k.clone()))
        .collect();
    assert_eq!(listed.len(), CATALOG.len());
}

#[tokio::test]
async fn a_seed_and_a_start_time_make_a_dry_run_repeatable() {
    let line = ["all", "--count", "50", "--batch", "4", "--seed", "5", "--at", AT, "--dry-run"];
    let first = binary(&line, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(binary(&line, &[]).await.stdout, first.stdout);
    let bodies: Vec<&[u8]> =
        first.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let events: usize = bodies.iter().map(|b| meta_webhooks::split(b).unwrap().len()).sum();
    assert_eq!(events, 50);
}

#[tokio::test]
async fn an_https_url_is_sent_over_tls_and_a_failed_handshake_is_not_acknowledged() {
    // metahook itself speaks plain HTTP: a TLS client hello to it cannot succeed, so the
    // delivery counts as not acknowledged (exit 1), not as a usage error (exit 2).
    let app = TestApp::spawn().await;
    let url = app.url("/meta/webhook").replace("http://", "https://");
    let output =
        binary(&["message", "--url", &url, "--secret", SECRET, "--retries", "0", "--json"], &[])
            .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = stdout_json(&output);
    assert_eq!(summary["acknowledged"], 0, "{summary}");
    assert!(app.stored().await.is_empty());
}
