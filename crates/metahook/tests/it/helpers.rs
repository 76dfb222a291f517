//! `TestApp`: the service running in-process on port 0 with its own SQLite file, plus the
//! requests tests make against it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use meta_webhooks::Secret;
use meta_webhooks::signature::{sign_sha1, sign_sha256};
use metahook::config::Config;
use metahook::store::{SqliteStore, Store, StoredDelivery};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// How a test wants the app configured; `Default` is the usual signed setup.
#[derive(Clone)]
pub struct Options {
    pub env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            env: vec![
                ("METAHOOK_APP_SECRET", SECRET.to_string()),
                ("METAHOOK_VERIFY_TOKEN", VERIFY_TOKEN.to_string()),
                ("METAHOOK_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
                ("METAHOOK_PIPELINE_RETRY_BASE_MS", "20".to_string()),
            ],
        }
    }
}

impl Options {
    /// Sets (or replaces) one `METAHOOK_*` variable.
    pub fn with(mut self, var: &'static str, value: impl Into<String>) -> Self {
        self.env.retain(|(k, _)| *k != var);
        self.env.push((var, value.into()));
        self
    }

    /// Removes one variable, as if it were never set.
    pub fn without(mut self, var: &'static str) -> Self {
        self.env.retain(|(k, _)| *k != var);
        self
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        Self::spawn_in(tempfile::tempdir().unwrap(), options).await
    }

    /// Starts the app on the database in `dir` (which may hold one from an earlier run).
    pub async fn spawn_in(dir: TempDir, options: Options) -> Self {
        let mut env: HashMap<String, String> =
            options.env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        env.insert("METAHOOK_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("METAHOOK_DATABASE_URL".into(), database_url(dir.path()).await);
        let config = Config::from_layers(None, &env).expect("test configuration is valid");
        let listener = metahook::http::bind(config.listen).unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(metahook::app::run(config, listener, async {
            let _ = stop.await;
        }));
        let app = Self { address, client: client(), dir, shutdown, server };
        // Requests wait in the listen queue until the store is open and the router serves.
        assert_eq!(app.get("/healthz").await.status(), 200);
        app
    }

    /// Stops the app gracefully and hands back its directory for a restart.
    pub async fn stop(self) -> TempDir {
        let _ = self.shutdown.send(());
        self.server.await.expect("server task").expect("server stopped cleanly");
        self.dir
    }

    /// `host:port`, for raw connections.
    pub fn socket_address(&self) -> &str {
        self.address.trim_start_matches("http://")
    }

    /// The value of one line of `/metrics`, named with its labels as the text format prints
    /// them (`metahook_limit_rejections_total{limit="concurrency"}`); 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        let value = text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
        value.map_or(0.0, |v| v.parse().unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// POSTs `body` to the webhook signed with the test secret, as Meta would.
    pub async fn post_signed(&self, body: impl Into<Vec<u8>>) -> reqwest::Response {
        self.post_signed_from(&self.client, body).await
    }

    /// The same, through `client` (its own connections, or another source address).
    pub async fn post_signed_from(
        &self,
        client: &reqwest::Client,
        body: impl Into<Vec<u8>>,
    ) -> reqwest::Response {
        let body = body.into();
        let signature = sign(SECRET, &body);
        self.post_from(client, body, &[("x-hub-signature-256", &signature)]).await
    }

    /// POSTs `body` to the webhook with exactly these headers (plus the content type).
    pub async fn post_with(
        &self,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.post_from(&self.client, body, headers).await
    }

    /// The same, through `client`.
    pub async fn post_from(
        &self,
        client: &reqwest::Client,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = client
            .post(self.url("/meta/webhook"))
            .header("content-type", "application/json")
            .body(body.into());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("POST")
    }

    pub async fn status(&self) -> serde_json::Value {
        let response = self.get("/meta/webhook/status").await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// GETs an admin API path with the admin token and returns the JSON body.
    pub async fn admin(&self, path: &str) -> serde_json::Value {
        let response =
            self.client.get(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// The items of an admin list (first page, up to 1000).
    pub async fn items(&self, path: &str) -> Vec<serde_json::Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = self.admin(&format!("{path}{sep}limit=1000")).await;
        page["items"].as_array().unwrap().clone()
    }

    /// Every item of an admin list, all pages, sorted by their JSON.
    pub async fn all_items(&self, path: &str) -> Vec<serde_json::Value> {
        admin_list(&self.url(""), ADMIN_TOKEN, path).await
    }

    /// Waits until the pipeline has no work left (`store.pending` is 0), or panics after 20 s.
    pub async fn settle(&self) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let status = self.status().await;
            if status["store"]["pending"] == 0 {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "pipeline did not settle: {status}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Every stored delivery, read straight from the database file.
    pub async fn stored(&self) -> Vec<StoredDelivery> {
        stored_in(self.dir.path()).await
    }
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("metahook.db")
}

/// The PostgreSQL server the suite runs against, if any (`METAHOOK_TEST_DATABASE_URL`, a URL
/// of a database this user may create databases from); SQLite otherwise.
pub fn postgres_server() -> Option<String> {
    std::env::var("METAHOOK_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// The database of the test whose files live in `dir`: an SQLite file there, or a fresh
/// PostgreSQL database created for it (remembered in `dir`, so that a restart finds it).
pub async fn database_url(dir: &Path) -> String {
    let Some(server) = postgres_server() else {
        return format!("sqlite://{}", db_path(dir).display());
    };
    let marker = dir.join("database_url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url;
    }
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("metahook_test_{}_{n}", std::process::id());
    let (client, connection) =
        tokio_postgres::connect(&server, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (base, _) = server.rsplit_once('/').expect("a database URL ends in /DATABASE");
    let url = format!("{base}/{name}");
    std::fs::write(&marker, &url).unwrap();
    url
}

/// Opens the store of the test whose files live in `dir`.
/// Every item of the admin list `path` of the server at `address`, following the cursor
/// through all pages, sorted by their JSON so that two servers' lists compare.
pub async fn admin_list(address: &str, token: &str, path: &str) -> Vec<serde_json::Value> {
    let (mut items, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page: serde_json::Value = client()
            .get(format!("{address}{path}?limit=1000{after}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        items.extend(page["items"].as_array().expect("a list").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    items.sort_by_key(|v| v.to_string());
    items
}

pub async fn store_in(dir: &Path) -> Store {
    let url = database_url(dir).await;
    match url.strip_prefix("sqlite://") {
        Some(path) => Store::open_sqlite(Path::new(path)).unwrap(),
        None => Store::open_postgres(&url, 2, "test-reader".into()).await.unwrap(),
    }
}

pub async fn stored_in(dir: &Path) -> Vec<StoredDelivery> {
    store_in(dir).await.deliveries_after(0, usize::MAX >> 1).await.unwrap()
}

/// Runs SQL against the test's database from outside the app (to inject faults), in the
/// dialect of `sqlite` or `postgres` as the backend needs.
pub async fn execute_sql(dir: &Path, sqlite: &str, postgres: &str) {
    let url = database_url(dir).await;
    match url.strip_prefix("sqlite://") {
        Some(path) => domain_connection(path).execute_batch(sqlite).unwrap(),
        None => {
            let (client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(postgres).await.unwrap();
        }
    }
}

/// A connection to the domain file of the SQLite store at `path` (events, their log and the
/// domain tables), with the inbox file attached as `inbox`.
fn domain_connection(path: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(SqliteStore::domain_path(Path::new(path))).unwrap();
    conn.execute("ATTACH DATABASE ?1 AS inbox", [path]).unwrap();
    conn
}

/// Opens a raw connection to `address` (`host:port`) and sends the head of a POST of `body`
/// signed with the test secret, but not the body: the caller sends it, or does not.
pub async fn send_post_head(address: &str, body: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /meta/webhook HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
        sign(SECRET, body),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    sign_sha256(&Secret::new(secret), body)
}

/// Values no answer, log line or metric may repeat: configured secrets and tokens, and the
/// signature values of requests (those sent, and those the server would have expected).
/// Matching ignores case, so a signature echoed in other hex digits still counts.
pub struct Undisclosed {
    values: Vec<String>,
    secrets: Vec<String>,
}

impl Undisclosed {
    /// The configured app secrets and any other secrets (tokens, a database password).
    pub fn new(app_secrets: &[&str], others: &[&str]) -> Self {
        let secrets = app_secrets.iter().map(|s| s.to_string()).collect();
        let mut undisclosed = Self { values: Vec::new(), secrets };
        for value in app_secrets.iter().chain(others) {
            undisclosed.add(value);
        }
        undisclosed
    }

    /// The test's usual secret and tokens.
    pub fn configured() -> Self {
        Self::new(&[SECRET], &[VERIFY_TOKEN, ADMIN_TOKEN])
    }

    /// Also the signatures of `body` under every configured app secret (SHA-256 and the
    /// legacy SHA-1), and what was sent as a signature, if anything.
    pub fn request(&mut self, body: &[u8], sent: Option<&str>) -> &mut Self {
        for secret in self.secrets.clone() {
            let secret = Secret::new(secret);
            for signature in [sign_sha256(&secret, body), sign_sha1(&secret, body)] {
                let hex = signature.split_once('=').expect("algorithm=hex").1.to_owned();
                self.add(&hex);
            }
        }
        if let Some(sent) = sent {
            self.add(sent);
            self.add(sent.split_once('=').map_or(sent, |(_, hex)| hex));
        }
        self
    }

    /// Fails if `text`, read from `place`, contains any of the values.
    pub fn assert_absent(&self, place: &str, text: &str) {
        let text = text.to_lowercase();
        for value in &self.values {
            assert!(!text.contains(value.as_str()), "{place} discloses {value:?}:\n{text}");
        }
    }

    fn add(&mut self, value: &str) {
        // Shorter values would match by chance (an empty or truncated header).
        if value.len() >= 8 {
            self.values.push(value.to_lowercase());
        }
    }
}

/// A small Messenger text delivery; `n` makes the text and mid unique.
pub fn messenger_text(n: usize) -> Vec<u8> {
    format!(
        r#"{{"object":"page","entry":[{{"id":"111899832631525","time":1480279487271,"messaging":[{{"sender":{{"id":"1433960459967306"}},"recipient":{{"id":"111899832631525"}},"timestamp":1480279487147,"message":{{"mid":"mid.{n}","text":"hello {n}"}}}}]}}]}}"#
    )
    .into_bytes()
}

/// The statuses logged for one event, oldest first.
pub async fn event_log(dir: &Path, event_id: i64) -> Vec<String> {
    let url = database_url(dir).await;
    let sql = "SELECT status FROM event_log WHERE event_id = $1 ORDER BY id";
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = domain_connection(path);
            let mut stmt = conn.prepare(&sql.replace('$', "?")).unwrap();
            stmt.query_map([event_id], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        }
        None => {
            let (client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query(sql, &[&event_id]).await.unwrap().iter().map(|r| r.get(0)).collect()
        }
    }
}

/// An HTTP client for tests. The service's own TLS client is built without a default crypto
/// provider, and reqwest's features are shared by every user in the build, so tests install
/// the same provider the service installs before building any client.
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

pub fn client() -> reqwest::Client {
    client_builder().build().expect("a test client")
}
