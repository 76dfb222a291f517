//! The built `metahook` binary as a process: killed with SIGKILL under load, stopped with
//! SIGTERM, and started with a wrong configuration.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{SECRET, database_url, messenger_text, sign, stored_in};
use crate::process::{Load, Process, command};

async fn stored_bodies(dir: &Path) -> HashSet<Vec<u8>> {
    stored_in(dir).await.into_iter().map(|d| d.body).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_delivery_survives_sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let process = Process::start(dir.path()).await;
    let load = Load::start(vec![process.address.clone()], 32, messenger_text, true);
    // Killed while requests are in flight, once a good number have been acknowledged.
    load.wait_for_acks(500).await;
    drop(process);
    let acked = load.finish().await;
    assert!(acked.len() >= 500, "only {} acknowledged before the kill", acked.len());

    let restarted = Process::start(dir.path()).await;
    let stored = stored_bodies(dir.path()).await;
    let lost = acked.difference(&stored).count();
    assert_eq!(lost, 0, "{lost} acknowledged deliveries lost");
    let status = restarted.status().await.expect("a status");
    assert_eq!(status["store"]["deliveries"], stored.len());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_acknowledges_in_flight_deliveries_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = Process::start(dir.path()).await;
    let load = Load::start(vec![process.address.clone()], 16, messenger_text, true);
    load.wait_for_acks(200).await;
    let pid = process.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exit = process.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let acked = load.finish().await;
    assert!(acked.len() >= 200);
    assert!(acked.is_subset(&stored_bodies(dir.path()).await));
}

#[test]
fn a_wrong_configuration_value_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path())
        .env("METAHOOK_BODY_LIMIT", "lots")
        .arg("serve")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("body_limit") && stderr.contains("METAHOOK_BODY_LIMIT"), "{stderr}");
}

#[tokio::test]
async fn migrate_and_status_work_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    database_url(dir.path()).await;
    let migrate = command(dir.path()).arg("migrate").output().unwrap();
    assert!(migrate.status.success());
    let status = command(dir.path()).arg("status").stdout(Stdio::piped()).output().unwrap();
    assert!(status.status.success());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let backend = if crate::helpers::postgres_server().is_some() { "postgres" } else { "sqlite" };
    assert_eq!(json["store"]["backend"], backend);
    assert_eq!(json["store"]["deliveries"], 0);
}

#[tokio::test]
async fn signed_fixtures_sent_to_the_binary_are_decoded_and_listed_by_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let process = Process::start(dir.path()).await;
    let client = crate::helpers::client();
    for name in ["01-fb-text-real-2017.json", "48-ig-comment-real.json", "61-wa-reaction-pywa.json"]
    {
        let body = std::fs::read(crate::fixtures::dir().join(name)).unwrap();
        let response = client
            .post(format!("{}/meta/webhook", process.address))
            .header("x-hub-signature-256", sign(SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
    }
    let get = |path: &str| {
        let request = client.get(format!("{}{path}", process.address)).bearer_auth("admin");
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while get("/meta/webhook/status").await["store"]["pending"] != 0 {
        assert!(Instant::now() < deadline, "pipeline did not settle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let messages = get("/api/messages").await;
    assert_eq!(messages["items"][0]["text"], "hello27");
    assert_eq!(messages["items"][0]["status"], "received");
    let comments = get("/api/comments").await;
    assert_eq!(comments["items"][0]["comment_id"], "17867301270523379");
    let events = get("/api/events?platform=whatsapp").await;
    assert_eq!(events["items"][0]["kind"], "whatsapp_message");
    assert_eq!(events["items"][0]["status"], "processed");
}

#[tokio::test]
async fn replay_queues_dead_events_and_refuses_an_unknown_status() {
    let dir = tempfile::tempdir().unwrap();
    database_url(dir.path()).await;
    let replay = command(dir.path()).arg("replay").stdout(Stdio::piped()).output().unwrap();
    assert!(replay.status.success());
    assert_eq!(String::from_utf8_lossy(&replay.stdout).trim(), "0 events queued for replay");
    let wrong = command(dir.path()).args(["replay", "--status", "zombie"]).output().unwrap();
    assert_eq!(wrong.status.code(), Some(2));
}
