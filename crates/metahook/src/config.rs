//! Layered, typed configuration: defaults, then an optional TOML file, then `METAHOOK_*`
//! environment variables. Everything is validated here, once; a wrong value stops start-up
//! with a message naming the key and where the value came from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meta_webhooks::Secret;

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Where deliveries are stored.
    pub database: DatabaseUrl,
    /// The token Meta's handshake must present; with none, every handshake is refused.
    pub verify_token: Option<Secret>,
    /// App secrets tried in order; with none, every POST is refused.
    pub app_secrets: Vec<Secret>,
    /// Bearer token of the admin API; with none, the admin API answers 404.
    pub admin_token: Option<Secret>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest time a request body may take to arrive, in milliseconds (then 408).
    pub body_timeout_ms: u64,
    /// Longest time a connection may take to send a whole request head, in milliseconds; also
    /// how long a kept-alive connection may stay idle. Then the connection is closed.
    pub header_timeout_ms: u64,
    /// Most connections open at once; past it, an idle one makes room or the new one is closed.
    pub max_connections: usize,
    /// Most requests handled at once; past it, 503 with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Rejections (400, 401, 403, 408, 413) one client address may get in one second before its
    /// further requests get 429 for the rest of that second; 0 turns the cap off.
    pub reject_limit_per_address: u32,
    /// Most deliveries written in one commit.
    pub inbox_batch_max: usize,
    /// Most deliveries waiting for a commit before new requests wait for room.
    pub inbox_queue: usize,
    /// Longest wait for one inbox commit, in milliseconds, before its deliveries are spooled
    /// (PostgreSQL) or refused with 503.
    pub inbox_commit_timeout_ms: u64,
    /// Inbox commits a database server may have in progress at once (PostgreSQL).
    pub inbox_commits_in_flight: usize,
    /// Seconds Meta is told to wait (`Retry-After`) when the store cannot take a delivery.
    pub retry_after_secs: u32,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    pub log: String,
    /// Attempts to apply an event before it is dead.
    pub pipeline_max_attempts: u32,
    /// First retry delay in milliseconds; doubled after each failure, with jitter.
    pub pipeline_retry_base_ms: u64,
    /// Longest retry delay in milliseconds.
    pub pipeline_retry_max_ms: u64,
    /// Most deliveries split and applied per pipeline step (one commit).
    pub pipeline_batch: usize,
    /// Events one pipeline step aims at (fewer deliveries when they are large).
    pub pipeline_batch_events: usize,
    /// PostgreSQL connections this instance may open.
    pub database_pool_size: usize,
    /// How long work claimed by one instance stays reserved for it, in milliseconds.
    pub pipeline_lease_ms: u64,
    /// While requests crowd the inbox, how many times as long as each step the pipeline rests
    /// after it; 0 never rests.
    pub pipeline_yield: u32,
    /// Average deliveries per inbox commit from which requests count as crowding the inbox.
    pub pipeline_yield_batch: usize,
    /// Lag (oldest pending delivery) in milliseconds past which the pipeline no longer rests.
    pub pipeline_yield_max_lag_ms: u64,
    /// Where deliveries wait while PostgreSQL cannot be reached.
    pub spool_path: PathBuf,
    /// Largest spool, in bytes; past it, deliveries get 503.
    pub spool_limit: u64,
    /// Whether this process runs the pipeline; `false` makes an ingest-only instance whose
    /// deliveries another process (or a later start) applies.
    pub pipeline: bool,
}

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://user:password@host:port/db`).
    Postgres(String),
}

/// Prints a PostgreSQL URL without its password, so that a debug print of the configuration
/// is safe to log.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&without_password(url)).finish(),
        }
    }
}

/// `url` with the password of its user part and of a `password=` parameter replaced by `***`.
fn without_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (address, query) = rest.split_once('?').map_or((rest, None), |(a, q)| (a, Some(q)));
    // The last `@` ends the user part: an unescaped `@` in a password comes before it.
    let address = match address.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{name}:***@{host}")
        }
        _ => address.to_owned(),
    };
    let mut out = format!("{scheme}://{address}");
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("password", _)) => "password=***".to_owned(),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{out}?{}", pairs.join("&"));
    }
    out
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid {key} (from {origin}): {message}")]
    Invalid { key: &'static str, origin: String, message: String },
}

/// One raw value and where it came from, for error messages.
struct Raw {
    value: String,
    origin: String,
}

/// Keys, their environment variables and their defaults, in one table.
const KEYS: &[(&str, &str, Option<&str>)] = &[
    ("listen", "METAHOOK_LISTEN", Some("0.0.0.0:3000")),
    ("database_url", "METAHOOK_DATABASE_URL", Some("sqlite://metahook.db")),
    ("verify_token", "METAHOOK_VERIFY_TOKEN", None),
    ("app_secrets", "METAHOOK_APP_SECRET", None),
    ("admin_token", "METAHOOK_ADMIN_TOKEN", None),
    ("body_limit", "METAHOOK_BODY_LIMIT", Some("4MiB")),
    ("body_timeout_ms", "METAHOOK_BODY_TIMEOUT_MS", Some("10000")),
    ("header_timeout_ms", "METAHOOK_HEADER_TIMEOUT_MS", Some("10000")),
    ("max_connections", "METAHOOK_MAX_CONNECTIONS", Some("2048")),
    ("max_concurrent_requests", "METAHOOK_MAX_CONCURRENT_REQUESTS", Some("1024")),
    ("reject_limit_per_address", "METAHOOK_REJECT_LIMIT_PER_ADDRESS", Some("50")),
    ("inbox_batch_max", "METAHOOK_INBOX_BATCH_MAX", Some("512")),
    ("inbox_queue", "METAHOOK_INBOX_QUEUE", Some("8192")),
    ("inbox_commit_timeout_ms", "METAHOOK_INBOX_COMMIT_TIMEOUT_MS", Some("3000")),
    ("inbox_commits_in_flight", "METAHOOK_INBOX_COMMITS_IN_FLIGHT", Some("4")),
    ("retry_after_secs", "METAHOOK_RETRY_AFTER_SECS", Some("5")),
    ("log", "METAHOOK_LOG", Some("info")),
    ("pipeline_max_attempts", "METAHOOK_PIPELINE_MAX_ATTEMPTS", Some("8")),
    ("pipeline_retry_base_ms", "METAHOOK_PIPELINE_RETRY_BASE_MS", Some("1000")),
    ("pipeline_retry_max_ms", "METAHOOK_PIPELINE_RETRY_MAX_MS", Some("900000")),
    ("pipeline_batch", "METAHOOK_PIPELINE_BATCH", Some("2048")),
    ("pipeline_batch_events", "METAHOOK_PIPELINE_BATCH_EVENTS", Some("2048")),
    ("pipeline", "METAHOOK_PIPELINE", Some("true")),
    ("database_pool_size", "METAHOOK_DATABASE_POOL_SIZE", Some("16")),
    ("pipeline_lease_ms", "METAHOOK_PIPELINE_LEASE_MS", Some("60000")),
    ("pipeline_yield", "METAHOOK_PIPELINE_YIELD", Some("4")),
    ("pipeline_yield_batch", "METAHOOK_PIPELINE_YIELD_BATCH", Some("6")),
    ("pipeline_yield_max_lag_ms", "METAHOOK_PIPELINE_YIELD_MAX_LAG_MS", Some("30000")),
    ("spool_path", "METAHOOK_SPOOL_PATH", Some("metahook.spool")),
    ("spool_limit", "METAHOOK_SPOOL_LIMIT", Some("1GiB")),
];

impl Config {
    /// Loads the configuration from the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_layers(file, &env)
    }

    /// Loads from an explicit environment map (tests use this to stay hermetic).
    pub fn from_layers(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: HashMap<&'static str, Raw> = HashMap::new();
        for (key, _, default) in KEYS {
            if let Some(value) = default {
                raw.insert(key, Raw { value: value.to_string(), origin: "default".into() });
            }
        }
        if let Some(path) = file {
            for (key, value) in read_file(path)? {
                raw.insert(key, Raw { value, origin: format!("{}", path.display()) });
            }
        }
        for (key, var, _) in KEYS {
            if let Some(value) = env.get(*var) {
                raw.insert(key, Raw { value: value.clone(), origin: (*var).to_string() });
            }
        }
        Self::validate(raw)
    }

    fn validate(mut raw: HashMap<&'static str, Raw>) -> Result<Self, ConfigError> {
        let mut take = |key: &'static str| raw.remove(key).map(|r| (key, r));
        let listen = parse(take("listen").expect("has a default"), |v| {
            v.parse::<SocketAddr>()
                .map_err(|e| format!("{e}: expected host:port, like 0.0.0.0:3000"))
        })?;
        let database = parse(take("database_url").expect("has a default"), parse_database_url)?;
        let verify_token = take("verify_token").map(|r| parse(r, non_empty_secret)).transpose()?;
        let app_secrets = match take("app_secrets") {
            Some(r) => parse(r, parse_secret_list)?,
            None => Vec::new(),
        };
        let admin_token = take("admin_token").map(|r| parse(r, non_empty_secret)).transpose()?;
        let body_limit = parse(take("body_limit").expect("has a default"), parse_size)?;
        let body_timeout_ms =
            parse(take("body_timeout_ms").expect("has a default"), positive)? as u64;
        let header_timeout_ms =
            parse(take("header_timeout_ms").expect("has a default"), positive)? as u64;
        let max_connections = parse(take("max_connections").expect("has a default"), positive)?;
        let max_concurrent_requests =
            parse(take("max_concurrent_requests").expect("has a default"), positive)?;
        let reject_limit_per_address =
            parse(take("reject_limit_per_address").expect("has a default"), |v| {
                v.parse::<u32>().map_err(|e| format!("{e}: expected a whole number, 0 for no cap"))
            })?;
        let inbox_batch_max = parse(take("inbox_batch_max").expect("has a default"), positive)?;
        let inbox_queue = parse(take("inbox_queue").expect("has a default"), positive)?;
        let inbox_commit_timeout_ms =
            parse(take("inbox_commit_timeout_ms").expect("has a default"), positive)? as u64;
        let inbox_commits_in_flight =
            parse(take("inbox_commits_in_flight").expect("has a default"), positive)?;
        let retry_after_secs = parse(take("retry_after_secs").expect("has a default"), |v| {
            v.parse::<u32>().map_err(|e| format!("{e}: expected whole seconds"))
        })?;
        let log = parse(take("log").expect("has a default"), |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_owned())
                .map_err(|e| format!("{e}: expected a filter like info or metahook=debug"))
        })?;
        let pipeline_max_attempts =
            parse(take("pipeline_max_attempts").expect("has a default"), positive)? as u32;
        let pipeline_retry_base_ms =
            parse(take("pipeline_retry_base_ms").expect("has a default"), positive)? as u64;
        let pipeline_retry_max_ms =
            parse(take("pipeline_retry_max_ms").expect("has a default"), positive)? as u64;
        let pipeline_batch = parse(take("pipeline_batch").expect("has a default"), positive)?;
        let pipeline_batch_events =
            parse(take("pipeline_batch_events").expect("has a default"), positive)?;
        let pipeline = parse(take("pipeline").expect("has a default"), |v| match v {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".into()),
        })?;
        let database_pool_size =
            parse(take("database_pool_size").expect("has a default"), positive)?;
        let pipeline_lease_ms =
            parse(take("pipeline_lease_ms").expect("has a default"), positive)? as u64;
        let pipeline_yield = parse(take("pipeline_yield").expect("has a default"), |v| {
            v.parse::<u32>().map_err(|e| format!("{e}: expected a whole number, 0 for no rest"))
        })?;
        let pipeline_yield_batch =
            parse(take("pipeline_yield_batch").expect("has a default"), positive)?;
        let pipeline_yield_max_lag_ms =
            parse(take("pipeline_yield_max_lag_ms").expect("has a default"), positive)? as u64;
        let spool_path = parse(take("spool_path").expect("has a default"), |v| {
            if v.is_empty() { Err("must not be empty".into()) } else { Ok(PathBuf::from(v)) }
        })?;
        let spool_limit = parse(take("spool_limit").expect("has a default"), parse_size)? as u64;
        Ok(Self {
            listen,
            database,
            verify_token,
            app_secrets,
            admin_token,
            body_limit,
            body_timeout_ms,
            header_timeout_ms,
            max_connections,
            max_concurrent_requests,
            reject_limit_per_address,
            inbox_batch_max,
            inbox_queue,
            inbox_commit_timeout_ms,
            inbox_commits_in_flight,
            retry_after_secs,
            log,
            pipeline_max_attempts,
            pipeline_retry_base_ms,
            pipeline_retry_max_ms,
            pipeline_batch,
            pipeline_batch_events,
            pipeline,
            database_pool_size,
            pipeline_lease_ms,
            pipeline_yield,
            pipeline_yield_batch,
            pipeline_yield_max_lag_ms,
            spool_path,
            spool_limit,
        })
    }
}

/// The file layer: any key of `KEYS`, each a scalar (or, for `app_secrets`, a list of
/// strings); anything else is refused, naming the key.
fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| ConfigError::File { path: path.to_owned(), message: toml_error(&text, &e) })?;
    let file_error = |message: String| ConfigError::File { path: path.to_owned(), message };
    let mut values = Vec::with_capacity(table.len());
    for (name, value) in table {
        let Some(&(key, _, _)) = KEYS.iter().find(|(key, _, _)| *key == name) else {
            return Err(file_error(format!("unknown key `{name}`")));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Array(list) if key == "app_secrets" => list
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    _ => Err(file_error(format!("`{key}` must be a list of strings"))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                return Err(file_error(format!("`{key}` must be a single value")));
            }
            other => other.to_string(),
        };
        values.push((key, text));
    }
    Ok(values)
}

/// Where the file is not TOML, and why. toml's own message quotes the offending line, which
/// may hold a secret.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let at = error.span().map_or(0, |span| span.start);
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    format!("not valid TOML at line {line}, column {column}: {}", error.message())
}

fn parse<T>(
    (key, raw): (&'static str, Raw),
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    // Secret values never appear in the message, only what is wrong with them.
    f(raw.value.trim()).map_err(|message| ConfigError::Invalid { key, origin: raw.origin, message })
}

fn parse_database_url(value: &str) -> Result<DatabaseUrl, String> {
    if let Some(path) = value.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err("an SQLite URL needs a file path, like sqlite://metahook.db".into());
        }
        return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
    }
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        // Checked here so that a typo is reported at start-up, naming the key; the text of
        // the URL (it may hold a password) is not repeated.
        return value
            .parse::<tokio_postgres::Config>()
            .map(|_| DatabaseUrl::Postgres(value.to_owned()))
            .map_err(|e| format!("not a valid PostgreSQL URL: {e}"));
    }
    Err("expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE".into())
}

fn non_empty_secret(value: &str) -> Result<Secret, String> {
    if value.is_empty() { Err("must not be empty".into()) } else { Ok(Secret::new(value)) }
}

fn parse_secret_list(value: &str) -> Result<Vec<Secret>, String> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .enumerate()
        .map(|(i, s)| match s.trim() {
            "" => Err(format!("secret number {} of the comma-separated list is empty", i + 1)),
            s => Ok(Secret::new(s)),
        })
        .collect()
}

fn positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: expected a whole number")),
    }
}

/// Parses a byte size: `4194304`, `4MiB`, `512KiB`, `3MB`, `1GiB`.
fn parse_size(value: &str) -> Result<usize, String> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let number: usize = digits.parse().map_err(|_| format!("{value:?} is not a size like 4MiB"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => return Err(format!("unknown unit {other:?}: use B, KiB, MiB, GiB, KB, MB or GB")),
    };
    match number.checked_mul(scale) {
        Some(0) => Err("must be at least 1 byte".into()),
        Some(n) => Ok(n),
        None => Err("too large".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_layers(None, &env(&[])).unwrap();
        assert_eq!(c.listen, "0.0.0.0:3000".parse().unwrap());
        assert_eq!(c.database, DatabaseUrl::Sqlite("metahook.db".into()));
        assert_eq!(c.body_limit, 4 << 20);
        assert!(c.verify_token.is_none() && c.app_secrets.is_empty() && c.admin_token.is_none());
    }

    #[test]
    fn limits_have_defaults_and_only_the_per_address_cap_can_be_turned_off() {
        let c = Config::from_layers(None, &env(&[])).unwrap();
        assert_eq!((c.header_timeout_ms, c.max_connections), (10_000, 2048));
        assert_eq!((c.max_concurrent_requests, c.reject_limit_per_address), (1024, 50));
        let off = env(&[("METAHOOK_REJECT_LIMIT_PER_ADDRESS", "0")]);
        assert_eq!(Config::from_layers(None, &off).unwrap().reject_limit_per_address, 0);
        for var in [
            "METAHOOK_HEADER_TIMEOUT_MS",
            "METAHOOK_MAX_CONNECTIONS",
            "METAHOOK_MAX_CONCURRENT_REQUESTS",
        ] {
            let err = Config::from_layers(None, &env(&[(var, "0")])).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metahook.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9\"\nbody_limit = 1024\napp_secrets = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let c =
            Config::from_layers(Some(&path), &env(&[("METAHOOK_LISTEN", "127.0.0.1:10")])).unwrap();
        assert_eq!(c.listen.port(), 10);
        assert_eq!(c.body_limit, 1024);
        assert_eq!(c.app_secrets, vec![Secret::new("a"), Secret::new("b")]);
    }

    #[test]
    fn app_secrets_from_the_environment_are_comma_separated() {
        let c = Config::from_layers(None, &env(&[("METAHOOK_APP_SECRET", "one, two")])).unwrap();
        assert_eq!(c.app_secrets, vec![Secret::new("one"), Secret::new("two")]);
        let err =
            Config::from_layers(None, &env(&[("METAHOOK_APP_SECRET", "one,,two")])).unwrap_err();
        assert!(err.to_string().contains("app_secrets"), "{err}");
        assert!(!err.to_string().contains("one"), "secret leaked: {err}");
    }

    #[test]
    fn a_wrong_value_names_the_key_and_its_origin() {
        for (var, key) in [
            ("METAHOOK_LISTEN", "listen"),
            ("METAHOOK_DATABASE_URL", "database_url"),
            ("METAHOOK_BODY_LIMIT", "body_limit"),
            ("METAHOOK_INBOX_BATCH_MAX", "inbox_batch_max"),
            ("METAHOOK_HEADER_TIMEOUT_MS", "header_timeout_ms"),
            ("METAHOOK_MAX_CONNECTIONS", "max_connections"),
            ("METAHOOK_MAX_CONCURRENT_REQUESTS", "max_concurrent_requests"),
            ("METAHOOK_REJECT_LIMIT_PER_ADDRESS", "reject_limit_per_address"),
            ("METAHOOK_PIPELINE_YIELD", "pipeline_yield"),
            ("METAHOOK_PIPELINE_YIELD_BATCH", "pipeline_yield_batch"),
            ("METAHOOK_PIPELINE_YIELD_MAX_LAG_MS", "pipeline_yield_max_lag_ms"),
        ] {
            let err =
                Config::from_layers(None, &env(&[(var, "nonsense")])).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(var), "{err}");
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metahook.toml");
        std::fs::write(&path, "app_secret = \"x\"\n").unwrap();
        let err = Config::from_layers(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("app_secret"), "{err}");
        std::fs::write(&path, "listen = [\"127.0.0.1:9\"]\n").unwrap();
        let err = Config::from_layers(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_toml_is_located_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metahook.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9\"\nverify_token = \"topsecret3\n").unwrap();
        let err = Config::from_layers(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("line 2, column 27"), "{err}");
        assert!(!err.contains("topsecret"), "secret leaked: {err}");
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("3MB"), Ok(3_000_000));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(
            parse_size("0").is_err() && parse_size("4 parsecs").is_err() && parse_size("").is_err()
        );
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let c = Config::from_layers(
            None,
            &env(&[("METAHOOK_APP_SECRET", "topsecret1"), ("METAHOOK_VERIFY_TOKEN", "topsecret2")]),
        )
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("topsecret"), "{printed}");
    }

    #[test]
    fn a_debug_print_of_the_database_url_holds_no_password() {
        for (url, shown) in [
            ("postgres://app:s3cr@t@db:5432/hooks", "postgres://app:***@db:5432/hooks"),
            (
                "postgres://app@db/hooks?password=s3cr@t&x=1",
                "postgres://app@db/hooks?password=***&x=1",
            ),
            ("postgresql://db/hooks", "postgresql://db/hooks"),
        ] {
            let printed = format!("{:?}", DatabaseUrl::Postgres(url.into()));
            assert!(!printed.contains("s3cr"), "{printed}");
            assert_eq!(printed, format!("Postgres({shown:?})"));
        }
    }
}
