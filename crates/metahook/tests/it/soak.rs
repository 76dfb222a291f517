//! A soak: realistic traffic from `metahook simulate` against the built binary, which is
//! stopped and started again every few seconds (killed, or asked to stop, in turn). At the
//! end every acknowledged delivery must be stored, every event stored once, and the state
//! the same as one clean pass of the stored deliveries gives; memory must not grow from one
//! process to the next.
//!
//! CI runs it for 20 seconds. `bench/soak.sh` runs it for an hour; the settings come from
//! `METAHOOK_SOAK_SECONDS`, `METAHOOK_SOAK_RESTART_SECONDS` and `METAHOOK_SOAK_RATE`, and
//! `METAHOOK_SOAK_REPORT` names a file for the figures as JSON.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Options, SECRET, TestApp, admin_list, stored_in};
use crate::process::{Process, free_port};

struct Settings {
    seconds: u64,
    restart_every: u64,
    /// Requests per second started by each of the two load loops.
    rate: u64,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str, default: u64| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
        };
        Self {
            seconds: var("METAHOOK_SOAK_SECONDS", 20),
            restart_every: var("METAHOOK_SOAK_RESTART_SECONDS", 5).max(1),
            rate: var("METAHOOK_SOAK_RATE", 40).max(1),
        }
    }
}

/// One run of `metahook simulate`: its JSON summary and the bodies it sent.
struct Round {
    summary: Value,
    bodies: Vec<Vec<u8>>,
}

/// The traffic mixes a load loop takes in turn: coherent conversations on every platform with
/// redeliveries and shuffled order, then every kind batched several to a POST.
const MIXES: [&[&str]; 2] = [
    &["--conversation", "all", "--count", "6", "--turns", "3", "--duplicates", "0.1", "--shuffle"],
    &["all", "--count", "60", "--batch", "3", "--duplicates", "0.05"],
];

async fn simulate(args: &[String]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_metahook"));
    command.env_clear().env("METAHOOK_APP_SECRET", SECRET).arg("simulate").args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// Runs one mix against `url`: first as a dry run, which prints the bodies the same seed and
/// start time will send, then for real, retrying like Meta across restarts.
async fn round(url: &str, mix: &[&str], seed: u64, rate: u64) -> Round {
    let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis();
    let mut args: Vec<String> = mix.iter().map(|a| a.to_string()).collect();
    args.extend(["--seed".into(), seed.to_string(), "--at".into(), at.to_string()]);

    let mut dry = args.clone();
    dry.push("--dry-run".into());
    let output = simulate(&dry).await;
    assert!(output.status.success(), "dry run: {}", String::from_utf8_lossy(&output.stderr));
    let bodies = output.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(Vec::from);

    args.extend(
        [
            "--url",
            url,
            "--concurrency",
            "4",
            "--rate",
            &rate.to_string(),
            "--retries",
            "30",
            "--retry-delay",
            "100",
            "--retry-max-delay",
            "1000",
            "--json",
        ]
        .map(String::from),
    );
    let output = simulate(&args).await;
    let summary = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("no summary: {}", String::from_utf8_lossy(&output.stderr));
    });
    Round { summary, bodies: bodies.collect() }
}

/// Resident memory of a process in KiB, from `/proc`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Memory of one process over its life: first sample, highest, last.
#[derive(Debug, Default, Clone, Copy)]
struct Life {
    first: u64,
    peak: u64,
    last: u64,
}

/// Stops the server: killed outright on even turns, asked to stop (SIGTERM) on odd ones.
fn stop(mut process: Process, turn: usize) {
    if turn.is_multiple_of(2) {
        drop(process);
        return;
    }
    let pid = rustix::process::Pid::from_raw(process.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while process.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "metahook did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarts_under_mixed_load_lose_nothing_apply_each_event_once_and_keep_memory_flat() {
    let settings = Settings::from_env();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [("METAHOOK_LISTEN", format!("127.0.0.1:{port}"))];
    let url = format!("http://127.0.0.1:{port}/meta/webhook");
    let started = Instant::now();
    let end = started + Duration::from_secs(settings.seconds);

    let stopping = Arc::new(AtomicBool::new(false));
    let seed_base: u64 = rand_seed();
    let loops: Vec<_> = (0..2u64)
        .map(|n| {
            let (url, stopping, rate) = (url.clone(), stopping.clone(), settings.rate);
            tokio::spawn(async move {
                let mut rounds = Vec::new();
                let mut turn = 0u64;
                while !stopping.load(Ordering::Relaxed) {
                    let mix = MIXES[(turn + n) as usize % MIXES.len()];
                    let seed = seed_base.wrapping_add(turn * 2 + n);
                    rounds.push(round(&url, mix, seed, rate).await);
                    turn += 1;
                }
                rounds
            })
        })
        .collect();

    let mut process = Process::start_with(dir.path(), &env).await;
    let mut lives = Vec::new();
    let mut turn = 0;
    loop {
        let mut life = Life::default();
        let until = (Instant::now() + Duration::from_secs(settings.restart_every)).min(end);
        while Instant::now() < until {
            if let Some(kib) = rss_kib(process.child.id()) {
                life.first = if life.first == 0 { kib } else { life.first };
                life.peak = life.peak.max(kib);
                life.last = kib;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        lives.push(life);
        if Instant::now() >= end {
            break;
        }
        tokio::task::spawn_blocking(move || stop(process, turn)).await.unwrap();
        turn += 1;
        process = Process::start_with(dir.path(), &env).await;
    }
    stopping.store(true, Ordering::Relaxed);
    let mut rounds = Vec::new();
    for handle in loops {
        rounds.extend(handle.await.unwrap());
    }
    process.wait_for_status(300, |s| s["store"]["pending"] == 0).await;
    let status = process.status().await.unwrap();

    // Every round was acknowledged in full, across restarts; so every body it sent was.
    let mut acknowledged = HashSet::new();
    let (mut sent, mut retries) = (0, 0);
    for r in &rounds {
        let s = &r.summary;
        assert_eq!(s["not_acknowledged"], 0, "a round was not acknowledged: {s}");
        assert_eq!(s["sent"], r.bodies.len(), "the dry run does not match the round: {s}");
        sent += r.bodies.len();
        retries += s["retries"].as_u64().unwrap();
        acknowledged.extend(r.bodies.iter().cloned());
    }
    let stored = stored_in(dir.path()).await;
    let bodies: HashSet<&[u8]> = stored.iter().map(|d| d.body.as_slice()).collect();
    let missing = acknowledged.iter().filter(|b| !bodies.contains(b.as_slice())).count();
    assert_eq!(missing, 0, "{missing} acknowledged deliveries are not stored");
    assert!(stored.len() >= sent);
    assert_eq!(status["store"]["dead"], 0, "{status}");

    // Each event once: as many events as distinct keys in the stored bodies.
    let mut keys = HashSet::new();
    for delivery in &stored {
        for event in meta_webhooks::split(&delivery.body).unwrap() {
            keys.insert(event.key);
        }
    }
    assert_eq!(status["store"]["events"], keys.len(), "{status}");

    // The state after restarts is the state of one clean pass over the same deliveries.
    let clean = replay(&stored).await;
    let clean_status = settled(&clean).await;
    assert_eq!(clean_status["store"]["events"], status["store"]["events"]);
    for path in ["/api/messages", "/api/conversations"] {
        let after_restarts = admin_list(&process.address, "admin", path).await;
        assert_eq!(after_restarts, clean.all_items(path).await, "{path} differs");
    }

    // Memory: a process late in the run peaks no higher than the first did, give or take.
    let peaks: Vec<u64> = lives.iter().map(|l| l.peak).filter(|&p| p > 0).collect();
    let (first, highest) = (peaks[0], *peaks.iter().max().unwrap());
    let last = *peaks.last().unwrap();
    let report = json!({
        "seconds": started.elapsed().as_secs(),
        "restarts": turn,
        "rounds": rounds.len(),
        "deliveries_sent": sent,
        "deliveries_stored": stored.len(),
        "retries": retries,
        "events": keys.len(),
        "rss_kib": lives.iter().map(|l| [l.first, l.peak, l.last]).collect::<Vec<_>>(),
    });
    println!("soak: {report}");
    if let Ok(path) = std::env::var("METAHOOK_SOAK_REPORT") {
        std::fs::write(Path::new(&path), serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    }
    assert!(last <= first * 3 / 2 + 16 * 1024, "memory grew: {first} KiB, then {last} KiB");
    assert!(highest < 512 * 1024, "a process used {highest} KiB");
}

/// A seed for this run, printed so that a failure can be repeated.
fn rand_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
    let seed = u64::from(nanos) * 1_000_003;
    println!("soak seed base: {seed}");
    seed
}

/// A fresh in-process app fed every stored delivery once, several at a time.
async fn replay(stored: &[metahook::store::StoredDelivery]) -> TestApp {
    let app = TestApp::spawn_with(Options::default()).await;
    let posted = futures_util::stream::iter(stored.chunks(256))
        .map(|chunk| {
            let app = &app;
            async move {
                for delivery in chunk {
                    assert_eq!(app.post_signed(delivery.body.clone()).await.status(), 200);
                }
            }
        })
        .buffered(16)
        .count();
    posted.await;
    app
}

/// The app's status once its pipeline has nothing pending; an hour's deliveries can take
/// longer than [`TestApp::settle`] waits.
async fn settled(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = app.status().await;
        if status["store"]["pending"] == 0 {
            return status;
        }
        assert!(Instant::now() < deadline, "the clean pass did not settle: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
