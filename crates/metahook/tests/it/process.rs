//! The built `metahook` binary as a child process, and load generators that post signed
//! deliveries to one or several of them while remembering which were acknowledged.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{SECRET, database_url, db_path, sign};

pub struct Process {
    pub child: Child,
    pub address: String,
}

impl Drop for Process {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The command line of `metahook` on the database of the test whose files live in `dir`.
pub fn command(dir: &Path) -> Command {
    let url = std::fs::read_to_string(dir.join("database_url"))
        .unwrap_or_else(|_| format!("sqlite://{}", db_path(dir).display()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_metahook"));
    command
        .env_clear()
        .env("METAHOOK_DATABASE_URL", url)
        .env("METAHOOK_APP_SECRET", SECRET)
        .env("METAHOOK_VERIFY_TOKEN", "token")
        .env("METAHOOK_ADMIN_TOKEN", "admin")
        .env("METAHOOK_SPOOL_PATH", dir.join("metahook.spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

impl Process {
    /// Starts `metahook serve` on the test's database and waits until it answers.
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[]).await
    }

    /// Same, with extra environment variables.
    pub async fn start_with(dir: &Path, env: &[(&str, String)]) -> Self {
        database_url(dir).await;
        Self::spawn(command(dir), env).await
    }

    /// Same, with everything the process writes on stdout and stderr kept in `log`.
    pub async fn start_logged(dir: &Path, env: &[(&str, String)], log: &Path) -> Self {
        database_url(dir).await;
        let file = std::fs::File::create(log).unwrap();
        let mut command = command(dir);
        command.stdout(file.try_clone().unwrap()).stderr(file);
        Self::spawn(command, env).await
    }

    /// Runs `metahook serve` on a free port and waits until it answers.
    async fn spawn(mut command: Command, env: &[(&str, String)]) -> Self {
        // A free port unless the caller chose one (to restart on the same address).
        let listen = env.iter().find(|(name, _)| *name == "METAHOOK_LISTEN");
        let listen = listen.map_or_else(|| format!("127.0.0.1:{}", free_port()), |l| l.1.clone());
        command.env("METAHOOK_LISTEN", &listen);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.arg("serve").spawn().unwrap();
        let process = Self { child, address: format!("http://{listen}") };
        let client = crate::helpers::client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/healthz", process.address)).send().await
                && r.status() == 200
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("metahook did not become healthy");
    }

    pub async fn status(&self) -> Option<serde_json::Value> {
        let url = format!("{}/meta/webhook/status", self.address);
        let response = crate::helpers::client().get(url).send().await.ok()?;
        response.json().await.ok()
    }

    /// Waits until `check` holds for the status, or panics after `secs` seconds.
    pub async fn wait_for_status(&self, secs: u64, check: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let status = self.status().await;
            if status.as_ref().is_some_and(&check) {
                return;
            }
            assert!(Instant::now() < deadline, "status never got there: {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Deliveries acknowledged with 200 so far, and the tasks posting them.
pub struct Load {
    acked: Arc<Mutex<HashSet<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Posts deliveries `body(w * 1_000_000 + n)` from `workers` tasks, spread over
    /// `addresses`. A worker whose server does not answer moves to the next one; with
    /// `stop_on_error`, it stops instead.
    pub fn start(
        addresses: Vec<String>,
        workers: usize,
        body: fn(usize) -> Vec<u8>,
        stop_on_error: bool,
    ) -> Self {
        let acked = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let client =
            crate::helpers::client_builder().timeout(Duration::from_secs(10)).build().unwrap();
        let tasks = (0..workers)
            .map(|w| {
                let (client, acked, stop, addresses) =
                    (client.clone(), acked.clone(), stop.clone(), addresses.clone());
                tokio::spawn(async move {
                    let mut target = w % addresses.len();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let delivery = body(w * 1_000_000 + n);
                        let request = client
                            .post(format!("{}/meta/webhook", addresses[target]))
                            .header("x-hub-signature-256", sign(SECRET, &delivery))
                            .body(delivery.clone());
                        match request.send().await {
                            Ok(r) if r.status() == 200 => {
                                acked.lock().unwrap().insert(delivery);
                                n += 1;
                            }
                            Ok(_) => n += 1,
                            Err(_) if stop_on_error => break,
                            Err(_) => {
                                target = (target + 1) % addresses.len();
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Self { acked, stop, tasks }
    }

    pub fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` deliveries are acknowledged (or 30 s have passed).
    pub async fn wait_for_acks(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.acked() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the workers and returns what was acknowledged.
    pub async fn finish(self) -> HashSet<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}
