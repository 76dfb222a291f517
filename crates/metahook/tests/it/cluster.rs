//! PostgreSQL as the shared store: several instances on one database with one of them
//! killed, and the database itself going away under load. These run in the PostgreSQL pass
//! of the suite (`METAHOOK_TEST_DATABASE_URL` set).

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use crate::helpers::{Options, TestApp, admin_list, postgres_server, stored_in};
use crate::payloads::{PAGE, inbound, messenger};
use crate::process::{Load, Process};

/// A delivery with its own message and a repeat of the previous one's, so that instances
/// receive the same events twice, in any order.
fn overlapping(n: usize) -> Vec<u8> {
    let (user, t) = (format!("U{}", n % 7), 1_700_000_000_000i64 + n as i64);
    let events = vec![
        inbound(&user, &format!("m_{n}"), &format!("message {n}"), t),
        inbound(
            &format!("U{}", (n + 6) % 7),
            &format!("m_{}", n.saturating_sub(1)),
            &format!("message {}", n.saturating_sub(1)),
            t - 1,
        ),
    ];
    messenger(events).to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_with_one_killed_store_every_acknowledged_delivery_and_apply_each_event_once()
 {
    if postgres_server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("METAHOOK_PIPELINE_LEASE_MS", "1500".to_string()),
        ("METAHOOK_PIPELINE_BATCH", "8".to_string()),
    ];
    let mut instances = Vec::new();
    for i in 0..3 {
        let spool =
            ("METAHOOK_SPOOL_PATH", dir.path().join(format!("spool-{i}")).display().to_string());
        instances
            .push(Process::start_with(dir.path(), &[env[0].clone(), env[1].clone(), spool]).await);
    }
    let addresses = instances.iter().map(|p| p.address.clone()).collect();
    let load = Load::start(addresses, 24, overlapping, false);
    load.wait_for_acks(300).await;
    let killed = instances.remove(1);
    drop(killed);
    load.wait_for_acks(load.acked() + 300).await;
    let acked = load.finish().await;

    let survivor = &instances[0];
    survivor.wait_for_status(60, |s| s["store"]["pending"] == 0).await;
    let stored = stored_in(dir.path()).await;
    let bodies: HashSet<Vec<u8>> = stored.iter().map(|d| d.body.clone()).collect();
    assert_eq!(acked.difference(&bodies).count(), 0, "acknowledged deliveries missing");
    let status = survivor.status().await.unwrap();
    assert_eq!(status["store"]["dead"], 0);

    // The same deliveries through one instance on its own database give the same state.
    let single = TestApp::spawn_with(Options::default()).await;
    for delivery in &stored {
        assert_eq!(single.post_signed(delivery.body.clone()).await.status(), 200);
    }
    let single_status = single.settle().await;
    assert_eq!(single_status["store"]["events"], status["store"]["events"]);
    for path in ["/api/messages", "/api/conversations"] {
        let cluster = admin_list(&survivor.address, "admin", path).await;
        assert_eq!(cluster, single.all_items(path).await, "{path} differs");
    }
    let distinct: HashSet<String> = admin_list(&survivor.address, "admin", "/api/messages")
        .await
        .iter()
        .map(|m| m["mid"].to_string())
        .collect();
    assert!(distinct.len() >= 600);
    assert!(
        admin_list(&survivor.address, "admin", "/api/conversations")
            .await
            .iter()
            .all(|c| c["account_id"] == PAGE)
    );
}

/// A PostgreSQL cluster of the test's own, which it can stop and start; dropping it stops it.
struct OwnServer {
    dir: Option<tempfile::TempDir>,
    port: u16,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            Self::control("stop", &dir, None);
        }
    }
}

impl OwnServer {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/postgres.sh")
    }

    fn control(action: &str, dir: &tempfile::TempDir, port: Option<u16>) -> bool {
        let mut command = Command::new("bash");
        command.arg(Self::script()).args([action, &dir.path().display().to_string()]);
        if let Some(port) = port {
            command.arg(port.to_string());
        }
        command.stdout(std::process::Stdio::null()).status().is_ok_and(|s| s.success())
    }

    fn start(dir: tempfile::TempDir, port: u16) -> Self {
        assert!(Self::control("start", &dir, Some(port)), "could not start PostgreSQL");
        Self { dir: Some(dir), port }
    }

    fn stop(mut self) -> (tempfile::TempDir, u16) {
        let dir = self.dir.take().expect("running");
        assert!(Self::control("stop", &dir, None), "could not stop PostgreSQL");
        (dir, self.port)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_going_away_under_load_loses_nothing_and_the_spool_drains_when_it_returns() {
    if postgres_server().is_none() {
        return;
    }
    let server = OwnServer::start(tempfile::tempdir().unwrap(), crate::process::free_port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("database_url"), server.url()).unwrap();
    let spool = dir.path().join("metahook.spool");

    let process = Process::start(dir.path()).await;
    let load = Load::start(vec![process.address.clone()], 8, crate::helpers::messenger_text, false);
    load.wait_for_acks(200).await;
    let (data, port) = server.stop();
    let before = load.acked();
    load.wait_for_acks(before + 300).await;
    assert!(load.acked() >= before + 300, "deliveries must still be acknowledged");
    process
        .wait_for_status(10, |s| {
            s["webhook"]["status"] == "degraded" && s["spool"]["deliveries"].as_u64() > Some(0)
        })
        .await;
    assert!(spool.exists());

    let server = OwnServer::start(data, port);
    process
        .wait_for_status(60, |s| {
            s["webhook"]["status"] == "active" && s["spool"]["deliveries"] == 0
        })
        .await;
    let acked = load.finish().await;
    process.wait_for_status(60, |s| s["store"]["pending"] == 0).await;
    assert!(!spool.exists(), "a drained spool is removed");
    let bodies: HashSet<Vec<u8>> =
        stored_in(dir.path()).await.into_iter().map(|d| d.body).collect();
    assert_eq!(acked.difference(&bodies).count(), 0, "acknowledged deliveries missing");

    // Again, but the process dies while the spool holds deliveries: the next start drains it.
    let (data, port) = server.stop();
    let load = Load::start(
        vec![process.address.clone()],
        8,
        |n| crate::helpers::messenger_text(n + 500_000),
        true,
    );
    load.wait_for_acks(200).await;
    drop(process);
    let spooled = load.finish().await;
    assert!(spooled.len() >= 200 && spool.exists());
    let _server = OwnServer::start(data, port);
    let restarted = Process::start(dir.path()).await;
    restarted
        .wait_for_status(60, |s| s["spool"]["deliveries"] == 0 && s["store"]["pending"] == 0)
        .await;
    let bodies: HashSet<Vec<u8>> =
        stored_in(dir.path()).await.into_iter().map(|d| d.body).collect();
    assert_eq!(spooled.difference(&bodies).count(), 0, "spooled deliveries missing after restart");
    assert!(!spool.exists());
    let status = restarted.status().await.unwrap();
    assert_eq!(status["webhook"]["status"], "active");
}
