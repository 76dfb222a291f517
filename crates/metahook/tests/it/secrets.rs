//! Secrets never leave. The binary runs with distinctive app secrets, tokens and (on
//! PostgreSQL) a database password, logging at `trace`; a broad mix of right and wrong
//! requests goes through it; then no secret, token or signature value may appear in its
//! output, in any answer (metrics and status included), in `metahook status` or `replay`,
//! or in the message of a configuration that does not start.

use std::path::Path;
use std::process::{Output, Stdio};

use meta_webhooks::Secret;
use meta_webhooks::signature::sign_sha1;

use crate::helpers::{Undisclosed, client, database_url, messenger_text, sign};
use crate::process::{Process, command};
use crate::raw::Reply;

const APP_SECRETS: [&str; 2] = ["appsecret-Wombat-4471c9e2", "appsecret-Axolotl-93b1d07f"];
const VERIFY_TOKEN: &str = "verify-Pangolin-58e1c3";
const ADMIN_TOKEN: &str = "admin-Quetzal-7d20ab91";
const DB_PASSWORD: &str = "dbpass-Okapi-31f6e0";

const FIXTURES: [&str; 5] = [
    "01-fb-text-real-2017.json",
    "37-ig-echo-unicode-signed-real.json",
    "48-ig-comment-real.json",
    "61-wa-reaction-pywa.json",
    "78-wa-status-failed-131049-docs.json",
];

const ADMIN_LISTS: [&str; 9] = [
    "/api/deliveries",
    "/api/events",
    "/api/messages",
    "/api/conversations",
    "/api/comments",
    "/api/mentions",
    "/api/story-insights",
    "/api/feed",
    "/api/optins",
];

fn undisclosed() -> Undisclosed {
    Undisclosed::new(&APP_SECRETS, &[VERIFY_TOKEN, ADMIN_TOKEN, DB_PASSWORD])
}

/// The distinctive configuration, on the test's database; on PostgreSQL the URL carries
/// the password (the test server trusts local connections, so any password works).
async fn secret_env(dir: &Path) -> Vec<(&'static str, String)> {
    let url = database_url(dir).await;
    let url = match url.split_once("://").and_then(|(s, rest)| Some((s, rest.split_once('@')?))) {
        Some((scheme, (user, host))) if scheme.starts_with("postgres") && !user.contains(':') => {
            format!("{scheme}://{user}:{DB_PASSWORD}@{host}")
        }
        _ => url,
    };
    vec![
        ("METAHOOK_DATABASE_URL", url),
        ("METAHOOK_APP_SECRET", APP_SECRETS.join(",")),
        ("METAHOOK_VERIFY_TOKEN", VERIFY_TOKEN.into()),
        ("METAHOOK_ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("METAHOOK_LOG", "trace".into()),
        // The mix refuses many requests from one address; 429s would hide what is checked.
        ("METAHOOK_REJECT_LIMIT_PER_ADDRESS", "0".into()),
    ]
}

/// Every answer the test got, with where it came from.
struct Answers {
    address: String,
    client: reqwest::Client,
    seen: Vec<(String, Reply)>,
}

impl Answers {
    /// Sends `request` and keeps the answer; returns its status.
    async fn keep(&mut self, place: String, request: reqwest::RequestBuilder) -> u16 {
        let reply = Reply::from_reqwest(request.send().await.expect("a request")).await;
        let status = reply.status;
        self.seen.push((place, reply));
        status
    }

    async fn get(&mut self, path: &str, token: Option<&str>) -> u16 {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        self.keep(format!("GET {path} ({token:?})"), request).await
    }

    async fn post(&mut self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> u16 {
        let mut request = self.client.post(format!("{}{path}", self.address)).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.keep(format!("POST {path} {headers:?}"), request).await
    }
}

#[tokio::test]
async fn no_secret_token_or_signature_leaves_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let env = secret_env(dir.path()).await;
    let log = dir.path().join("metahook.log");
    let mut process = Process::start_logged(dir.path(), &env, &log).await;
    let mut undisclosed = undisclosed();
    let mut answers =
        Answers { address: process.address.clone(), client: client(), seen: Vec::new() };

    let handshake = |token: &str, mode: &str| {
        format!("/meta/webhook?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444")
    };
    let near_miss = format!("{}x", &VERIFY_TOKEN[..VERIFY_TOKEN.len() - 1]);
    assert_eq!(answers.get(&handshake(VERIFY_TOKEN, "subscribe"), None).await, 200);
    assert_eq!(answers.get(&handshake(&near_miss, "subscribe"), None).await, 403);
    assert_eq!(answers.get(&handshake(VERIFY_TOKEN, "unsubscribe"), None).await, 403);
    let missing = format!("/meta/webhook?hub.verify_token={VERIFY_TOKEN}");
    assert_eq!(answers.get(&missing, None).await, 400);

    let signature = "x-hub-signature-256";
    for name in FIXTURES {
        let body = std::fs::read(crate::fixtures::dir().join(name)).unwrap();
        let sha1 = sign_sha1(&Secret::new(APP_SECRETS[0]), &body);
        let sent = [
            (signature, sign(APP_SECRETS[0], &body), 200),
            (signature, sign(APP_SECRETS[1], &body), 200),
            (signature, sign(VERIFY_TOKEN, &body), 401),
            (signature, sign(APP_SECRETS[0], &messenger_text(1)), 401),
            ("x-hub-signature", sha1, 401),
            ("", String::new(), 401),
        ];
        for (header, value, status) in sent {
            let mut headers = vec![("content-type", "application/json")];
            if !header.is_empty() {
                headers.push((header, value.as_str()));
            }
            assert_eq!(answers.post("/meta/webhook", &body, &headers).await, status, "{name}");
            undisclosed.request(&body, Some(value.as_str()));
        }
    }
    // A secret inside a signed body that is not a delivery is not repeated either.
    let body = format!(r#"{{"object":"page","entry":"{}"}}"#, APP_SECRETS[1]);
    let value = sign(APP_SECRETS[0], body.as_bytes());
    assert_eq!(answers.post("/meta/webhook", body.as_bytes(), &[(signature, &value)]).await, 400);
    undisclosed.request(body.as_bytes(), Some(&value));
    process.wait_for_status(20, |s| s["store"]["pending"] == 0).await;

    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let wrong = [
        None,
        Some(format!("Bearer {near_miss}")),
        Some(format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some(ADMIN_TOKEN.to_owned()),
    ];
    for path in ADMIN_LISTS {
        assert_eq!(answers.get(path, Some(&bearer)).await, 200, "{path}");
        for token in &wrong {
            assert_eq!(answers.get(path, token.as_deref()).await, 401, "{path} {token:?}");
        }
    }
    let in_query = format!("/api/events?access_token={ADMIN_TOKEN}");
    assert_eq!(answers.get(&in_query, None).await, 401);
    for (path, token, status) in [
        ("/api/events/retry?status=dead", bearer.as_str(), 200),
        ("/api/events/1/retry", bearer.as_str(), 200),
        ("/api/events/999999/retry", bearer.as_str(), 404),
        ("/api/events/retry?status=zombie", bearer.as_str(), 400),
        ("/api/events/1/retry", "Bearer wrong", 401),
    ] {
        assert_eq!(answers.post(path, b"", &[("authorization", token)]).await, status, "{path}");
    }
    process.wait_for_status(20, |s| s["store"]["pending"] == 0).await;
    for path in ["/meta/webhook/status", "/metrics", "/healthz", "/readyz", "/nowhere"] {
        answers.get(path, None).await;
    }

    for (place, reply) in &answers.seen {
        undisclosed.assert_absent(place, &format!("{:?} {}", reply.headers, reply.text()));
    }
    let pid = process.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(process.child.wait().unwrap().success());
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(output.contains(" DEBUG ") && output.contains("stopped"), "not verbose:\n{output}");
    undisclosed.assert_absent("stdout and stderr", &output);

    for (args, says) in [
        (&["status"][..], "\"backend\""),
        (&["replay", "--id", "1"], "1 events queued"),
        (&["replay", "--status", "nope"], "--status"),
    ] {
        let mut command = command(dir.path());
        command.envs(env.iter().cloned()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let printed = printed(&command.args(args).output().unwrap());
        assert!(printed.contains(says), "metahook {args:?}: {printed}");
        undisclosed.assert_absent(&format!("metahook {args:?}"), &printed);
    }
}

fn printed(output: &Output) -> String {
    let (stdout, stderr) = (&output.stdout, &output.stderr);
    format!("{}\n{}", String::from_utf8_lossy(stdout), String::from_utf8_lossy(stderr))
}

#[test]
fn a_configuration_that_does_not_start_names_the_key_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let [first, second] = APP_SECRETS;
    let url = format!("postgres://metahook:{DB_PASSWORD}@127.0.0.1");
    // (what is wrong, variable, value, exit code, what the message names)
    let variables = [
        ("a wrong size", "METAHOOK_BODY_LIMIT", "lots".into(), 2, "body_limit"),
        ("no port number", "METAHOOK_DATABASE_URL", format!("{url}:port/db"), 2, "database_url"),
        ("an empty secret", "METAHOOK_APP_SECRET", format!("{first},,{second}"), 2, "app_secrets"),
        (
            "an unreachable database",
            "METAHOOK_DATABASE_URL",
            format!("{url}:1/db"),
            1,
            "PostgreSQL",
        ),
    ];
    for (case, variable, value, code, named) in variables {
        let output = status_with(dir.path(), None, &[(variable, value)]);
        refused_without_secrets(case, &output, code, named);
    }
    // (what is wrong, file, what the message names); each exits with 2
    let files = [
        ("an unterminated string", format!("verify_token = \"{VERIFY_TOKEN}\n"), "line 1"),
        ("text after a value", format!("admin_token = \"{ADMIN_TOKEN}\" and more\n"), "line 1"),
        (
            "a key given twice",
            format!("app_secrets = [\"{first}\"]\napp_secrets = [\"{second}\"]\n"),
            "line 2",
        ),
        ("a list of mixed types", format!("app_secrets = [\"{first}\", 5]\n"), "app_secrets"),
        ("a misspelt key", format!("app_secret = \"{first}\"\n"), "app_secret"),
    ];
    let file = dir.path().join("metahook.toml");
    for (case, contents, named) in files {
        std::fs::write(&file, contents).unwrap();
        let output = status_with(dir.path(), Some(&file), &[]);
        refused_without_secrets(case, &output, 2, named);
    }
}

/// `metahook status` with the distinctive secrets, this file and these variables.
fn status_with(dir: &Path, file: Option<&Path>, env: &[(&str, String)]) -> Output {
    let mut command = command(dir);
    command.envs([
        ("METAHOOK_APP_SECRET", APP_SECRETS.join(",")),
        ("METAHOOK_VERIFY_TOKEN", VERIFY_TOKEN.into()),
        ("METAHOOK_ADMIN_TOKEN", ADMIN_TOKEN.into()),
    ]);
    command.envs(env.iter().cloned()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(file) = file {
        command.arg("--config").arg(file);
    }
    command.arg("status").output().unwrap()
}

fn refused_without_secrets(case: &str, output: &Output, code: i32, named: &str) {
    let printed = printed(output);
    assert_eq!(output.status.code(), Some(code), "{case}: {printed}");
    assert!(printed.contains(named), "{case} does not name {named}: {printed}");
    undisclosed().assert_absent(case, &printed);
}
