//! `metahook simulate`: realistic, signed Meta traffic from the command line.
//!
//! What `stripe trigger` is to Stripe webhooks: any event kind on demand, signed as Meta signs
//! it, in the batches, orders and volumes Meta produces, posted to a metahook (or any other
//! receiver) and reported on. The payloads come from `meta_webhooks::generate`, the same
//! generator the tests build their inputs from; this module only decides what to send from the
//! command line and configuration, sends it ([`send`]), and reports ([`summary`]).
//! `--handshake` performs Meta's verification GET instead ([`handshake`]).
//!
//! Nothing here opens the store: the defaults for `--url`, `--secret` and `--verify-token`
//! come from the configuration (`listen`, `app_secrets[0]`, `verify_token`).
//! Exit codes: 0 when everything was acknowledged (or verified), 1 when something was not or
//! the endpoint could not be reached, 2 for usage errors.

mod args;
mod handshake;
mod send;
mod summary;

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use meta_webhooks::Secret;
use meta_webhooks::generate::{self, CATALOG, Delivery, Object, Plan, Shape, Source};
use reqwest::Url;

pub use args::Args;

use crate::config::Config;
use send::{Policy, Sender};

/// An argument that cannot be used; the command line exits with 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// A client builder with TLS ready: rustls with the ring provider (installed once for the
/// process) and the system's certificate authorities.
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Fails only if another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// Runs the command; prints its report on stdout.
pub async fn run(args: Args, config: &Config) -> anyhow::Result<()> {
    if args.list {
        return list(args.json);
    }
    let url = target_url(args.url.as_deref(), config)?;
    let seed = args.seed.unwrap_or_else(random_seed);
    if args.handshake {
        let token = match (&args.verify_token, &config.verify_token) {
            (Some(token), _) => Secret::new(token.clone()),
            (None, Some(token)) => token.clone(),
            (None, None) => {
                return Err(usage(
                    "no verify token: pass --verify-token or configure verify_token \
                     (METAHOOK_VERIFY_TOKEN)",
                ));
            }
        };
        let timeout = std::time::Duration::from_millis(args.timeout);
        return handshake::run(url, &token, seed, timeout, args.json).await;
    }

    let (deliveries, what) = source(&args, seed)?;
    if args.dry_run {
        return dry_run(deliveries);
    }
    let secret = match (&args.secret, config.app_secrets.first()) {
        (Some(secret), _) => Secret::new(secret.clone()),
        (None, Some(secret)) => secret.clone(),
        (None, None) => {
            return Err(usage(
                "no app secret to sign with: pass --secret or configure app_secrets \
                 (METAHOOK_APP_SECRET)",
            ));
        }
    };
    let policy = Policy::from_args(&args);
    let report = Sender::new(url.clone(), secret, policy)?.send_all(deliveries).await;
    let summary = summary::Summary::new(url.as_str(), what, seed, &report);
    summary.print(args.json)?;
    match summary.not_acknowledged {
        0 => Ok(()),
        n => anyhow::bail!("{n} of {} deliveries were not acknowledged", summary.sent),
    }
}

/// What a run sends, as an iterator of deliveries, with a line saying what it is.
type Deliveries = Box<dyn Iterator<Item = Delivery> + Send>;

fn source(args: &Args, seed: u64) -> anyhow::Result<(Deliveries, String)> {
    if let Some(path) = &args.file {
        let body = read_body(path)?;
        let count = args.count.unwrap_or(1);
        let object = file_object(&body);
        let events = meta_webhooks::split(&body).map_or(0, |events| events.len());
        let delivery = Delivery { object, events, body, redelivery: false };
        let what = format!("{} ({} bytes) x{count}", path.display(), delivery.body.len());
        return Ok((Box::new(std::iter::repeat_n(delivery, count as usize)), what));
    }
    let shape =
        Shape { batch: args.batch.into(), shuffle: args.shuffle, duplicates: args.duplicates };
    let (source, what) = match &args.conversation {
        Some(platforms) => {
            let objects = platforms_to_objects(platforms)?;
            let count = args.count.unwrap_or(1);
            let names: Vec<&str> = objects.iter().map(|o| o.platform()).collect();
            let what =
                format!("{count} conversations ({}) of {} turns", names.join(", "), args.turns);
            (Source::Conversations { objects, count, turns: args.turns }, what)
        }
        None if args.kinds.is_empty() => {
            return Err(usage(
                "name at least one kind (see --list), or use --conversation, --file or --handshake",
            ));
        }
        None => {
            let mut specs = Vec::new();
            for name in &args.kinds {
                for spec in generate::resolve(name).map_err(|e| usage(e.to_string()))? {
                    if !specs.contains(&spec) {
                        specs.push(spec);
                    }
                }
            }
            let count = args.count.unwrap_or(specs.len() as u64);
            let what = format!("{count} events of {} kinds", specs.len());
            (Source::Kinds { specs, count }, what)
        }
    };
    let start = args.at.map(|t| if t < 1_000_000_000_000 { t * 1000 } else { t });
    let mut plan = Plan::new(seed, start.unwrap_or_else(now_ms), source, shape);
    // Without a fixed start time, keep event times near the wall clock on long runs.
    let follow_clock = start.is_none();
    let iter = std::iter::from_fn(move || {
        if follow_clock {
            plan.generator_mut().sync_clock(now_ms());
        }
        plan.next()
    });
    Ok((Box::new(iter), what))
}

fn platforms_to_objects(platforms: &[String]) -> anyhow::Result<Vec<Object>> {
    if platforms.is_empty() {
        return Ok(vec![Object::Page]);
    }
    let mut objects = Vec::new();
    for name in platforms {
        let found: &[Object] = match name.trim().to_ascii_lowercase().as_str() {
            "facebook" | "messenger" | "page" => &[Object::Page],
            "instagram" => &[Object::Instagram],
            "whatsapp" => &[Object::Whatsapp],
            "all" => &[Object::Page, Object::Instagram, Object::Whatsapp],
            other => {
                return Err(usage(format!(
                    "unknown conversation platform `{other}`: use facebook, instagram, whatsapp \
                     or all"
                )));
            }
        };
        for object in found {
            if !objects.contains(object) {
                objects.push(*object);
            }
        }
    }
    Ok(objects)
}

fn read_body(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body).context("reading the body from standard input")?;
        return Ok(body);
    }
    std::fs::read(path).map_err(|e| usage(format!("--file {}: {e}", path.display())))
}

/// The object of a body given with `--file`, for the report only: the bytes are sent as they
/// are, whatever they hold.
fn file_object(body: &[u8]) -> Object {
    let object = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("object").and_then(|o| o.as_str()).map(str::to_owned));
    match object.as_deref() {
        Some("instagram") => Object::Instagram,
        Some("whatsapp_business_account") => Object::Whatsapp,
        _ => Object::Page,
    }
}

/// `--url`, else the configured local endpoint; only `http://` can be sent to.
fn target_url(given: Option<&str>, config: &Config) -> anyhow::Result<Url> {
    let text = match given {
        Some(url) => url.to_owned(),
        None => {
            let mut address = config.listen;
            if address.ip().is_unspecified() {
                let loopback: std::net::IpAddr = if address.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                };
                address.set_ip(loopback);
            }
            format!("http://{address}/meta/webhook")
        }
    };
    let url = Url::parse(&text).map_err(|e| usage(format!("--url {text}: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => {
            Err(usage(format!("--url {text}: unsupported scheme {other}, expected http or https")))
        }
    }
}

fn list(json: bool) -> anyhow::Result<()> {
    if json {
        let kinds: Vec<serde_json::Value> = CATALOG
            .iter()
            .map(|s| {
                serde_json::json!({"name": s.name, "platform": s.object.platform(),
                    "kind": s.kind.as_str(), "object": s.object.as_str(),
                    "description": s.description})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&kinds)?);
        return Ok(());
    }
    let width = CATALOG.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for spec in CATALOG {
        println!("{:width$}  {}", spec.name, spec.description);
    }
    println!();
    println!("A bare kind (message) means every platform that has it; a platform (instagram)");
    println!("means all of its kinds; all means every kind.");
    Ok(())
}

fn dry_run(deliveries: Deliveries) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for delivery in deliveries {
        out.write_all(&delivery.body)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
