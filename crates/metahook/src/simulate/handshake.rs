//! `--handshake`: the verification GET Meta makes before it sends any notification.
//!
//! Meta calls the callback with `hub.mode=subscribe`, a random numeric `hub.challenge` and the
//! `hub.verify_token` typed in the dashboard, and considers the endpoint verified only when
//! it answers 200 with the challenge, and nothing else, as the body. This check does the same
//! and, when the endpoint would be refused, says why in terms of what to fix.

use std::time::{Duration, Instant};

use meta_webhooks::Secret;
use meta_webhooks::generate::Rng;
use meta_webhooks::generate::wire::HANDSHAKE_USER_AGENT;
use reqwest::Url;
use serde::Serialize;

use super::send::error_chain;

/// What the handshake found.
#[derive(Debug, Serialize)]
pub struct HandshakeReport {
    /// The URL called, without the query (the token is a secret).
    pub url: String,
    /// Whether Meta would consider the endpoint verified.
    pub verified: bool,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Why it would not be verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time to the full answer, in milliseconds.
    pub latency_ms: f64,
}

/// Performs the handshake against `url`, prints the report, and fails when not verified.
pub async fn run(
    url: Url,
    token: &Secret,
    seed: u64,
    timeout: Duration,
    json: bool,
) -> anyhow::Result<()> {
    let challenge = Rng::new(seed).between(1_000_000_000, 2_147_483_647).to_string();
    let report = check(url, token, &challenge, timeout).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.verified {
        println!(
            "verified: {} answered 200 with the challenge ({} ms)",
            report.url, report.latency_ms
        );
    } else {
        let reason = report.reason.as_deref().unwrap_or("unknown");
        println!("not verified: {}\nreason: {reason}", report.url);
    }
    if report.verified {
        Ok(())
    } else {
        anyhow::bail!("the endpoint would not be verified by Meta")
    }
}

/// Calls `url` as Meta does with `challenge` and judges the answer.
pub async fn check(
    url: Url,
    token: &Secret,
    challenge: &str,
    timeout: Duration,
) -> HandshakeReport {
    let shown = url.to_string();
    let mut call = url;
    call.query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", challenge)
        .append_pair("hub.verify_token", token.expose());
    let started = Instant::now();
    let client = super::client_builder().timeout(timeout).build();
    let answer = match client {
        Ok(client) => {
            let request = client.get(call).header("user-agent", HANDSHAKE_USER_AGENT);
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    response.bytes().await.map(|body| (status, body))
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let latency_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    let (status, reason) = match answer {
        Ok((status, body)) => (Some(status), judge(status, &body, challenge)),
        Err(error) if error.is_timeout() => {
            let reason = format!("no answer within {} ms", timeout.as_millis());
            (None, Some(reason))
        }
        Err(error) => (None, Some(format!("cannot reach the endpoint: {}", error_chain(&error)))),
    };
    HandshakeReport { url: shown, verified: reason.is_none(), status, reason, latency_ms }
}

/// Why Meta would refuse this answer, or `None` when it would verify the endpoint.
fn judge(status: u16, body: &[u8], challenge: &str) -> Option<String> {
    if status != 200 {
        let hint = match status {
            403 => {
                "the endpoint refused the verify token or the mode: check that its verify \
                    token is the one given here"
            }
            400 => {
                "the endpoint says the request is incomplete: it may not read hub.mode, \
                    hub.challenge and hub.verify_token from the query"
            }
            404 | 405 => "nothing answers GET at this URL: check the path",
            401 => "the endpoint asks for authentication; Meta sends none with the handshake",
            500..=599 => "the endpoint failed; see its logs",
            _ => "Meta accepts only 200",
        };
        return Some(format!("status {status} instead of 200: {hint}"));
    }
    if body == challenge.as_bytes() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let shown: String = text.chars().take(80).collect();
    let detail = if text.trim() == challenge {
        "the challenge with whitespace around it: Meta wants the bare value".to_owned()
    } else if text.trim_matches('"') == challenge {
        "the challenge in quotes (JSON-encoded): Meta wants the bare value".to_owned()
    } else if text.contains(challenge) {
        format!("more than the challenge: {shown:?}")
    } else if body.is_empty() {
        "an empty body".to_owned()
    } else {
        format!("{shown:?}")
    };
    Some(format!("status 200 but the body is not the challenge {challenge}: it is {detail}"))
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn only_200_with_the_bare_challenge_verifies() {
        assert_eq!(judge(200, b"1158201444", "1158201444"), None);
        let reason = |status, body: &[u8]| judge(status, body, "1158201444").unwrap();
        assert!(reason(403, b"Forbidden").contains("verify token"));
        assert!(reason(200, b"1158201444\n").contains("whitespace"));
        assert!(reason(200, b"\"1158201444\"").contains("quotes"));
        assert!(reason(200, b"{\"challenge\":1158201444}").contains("more than the challenge"));
        assert!(reason(200, b"").contains("empty body"));
        assert!(reason(200, b"ok").contains("\"ok\""));
        assert!(reason(201, b"1158201444").contains("status 201"));
    }
}
