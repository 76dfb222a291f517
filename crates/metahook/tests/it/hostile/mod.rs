//! Hostile input against the built binary over real TCP. Every case checks the exact answer,
//! that the answer repeats no secret, token or signature, and that the store holds exactly
//! the deliveries accepted so far (none for a refusal); every test ends by checking that the
//! process still serves. [`Target`] is the harness; the cases are in three files.
//!
//! The full list, and where each case lives:
//! - unsigned, legacy SHA-1 only, a signature for another body or by another secret, cut or
//!   unprefixed: `webhook::missing_malformed_or_wrong_signatures_are_unauthorized_...`;
//!   other forgeries: [`content::forged_signatures_of_every_shape_are_refused`];
//! - content types: [`content::the_content_type_does_not_decide`];
//! - a signed body that is not a delivery: `webhook::a_signed_body_that_is_not_a_delivery_...`;
//!   not quoted in the answer:
//!   [`content::a_signed_body_of_another_shape_is_refused_without_quoting_it`];
//! - `object` or `entry` twice:
//!   [`content::object_or_entry_given_twice_is_refused_rather_than_read_two_ways`];
//! - the key serde_json reserves for raw values:
//!   [`content::the_json_readers_reserved_key_is_refused_rather_than_stored_and_lost`];
//! - invalid UTF-8 and lone surrogate escapes:
//!   [`content::signed_bodies_that_are_not_unicode_text_are_not_deliveries`];
//! - deep nesting: [`content::nesting_is_refused_exactly_where_the_decoder_could_not_read_it`];
//! - a 1000-entry batch: [`content::a_batch_of_1000_entries_is_stored_whole_and_split`];
//! - NUL characters and values too long to index, signed:
//!   [`content::signed_values_a_database_cannot_hold_or_index_do_not_block_the_pipeline`];
//! - a truncated body, a `Content-Length` that lies either way, Content-Length with chunked:
//!   [`framing::a_body_cut_short_or_framed_twice_is_never_stored`];
//! - a body slower than the timeout: `webhook::a_body_trickled_slower_than_the_timeout_...`;
//! - chunked bodies: [`framing::chunked_bodies_are_read_whole_and_held_to_the_limit`];
//! - bodies at the limit and one byte over (and streamed over it, in `webhook`):
//!   [`framing::a_body_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not`];
//! - methods (PUT, DELETE and PATCH without a body are in `webhook`):
//!   [`framing::methods_other_than_get_and_post_are_refused_and_store_nothing`];
//! - header abuse: [`framing::header_abuse_is_answered_without_a_crash`];
//! - absurd handshake queries: [`queries::absurd_handshake_queries_get_exact_answers`].

mod content;
mod framing;
mod queries;

use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use crate::helpers::{ADMIN_TOKEN, SECRET, Undisclosed, VERIFY_TOKEN, client, sign, stored_in};
use crate::process::Process;
use crate::raw::{self, Reply, head};

const SIGNATURE: &str = "x-hub-signature-256";
const RECEIVED: &str = r#"{"status":"received"}"#;

/// The binary on its own database, and the bodies its store must hold, in order.
struct Target {
    dir: TempDir,
    process: Process,
    client: reqwest::Client,
    expected: Mutex<Vec<Vec<u8>>>,
}

impl Target {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    async fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        env.push(("METAHOOK_VERIFY_TOKEN", VERIFY_TOKEN.into()));
        env.push(("METAHOOK_ADMIN_TOKEN", ADMIN_TOKEN.into()));
        let process = Process::start_with(dir.path(), &env).await;
        Self { dir, process, client: client(), expected: Mutex::new(Vec::new()) }
    }

    fn host(&self) -> &str {
        self.process.address.trim_start_matches("http://")
    }

    /// POSTs `body` to the webhook as JSON with these extra headers.
    async fn post(&self, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .client
            .post(format!("{}/meta/webhook", self.process.address))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::from_reqwest(request.send().await.expect("POST")).await
    }

    /// POSTs `body` signed with the configured secret.
    async fn post_signed(&self, body: &[u8]) -> Reply {
        self.post(body, &[(SIGNATURE, &sign(SECRET, body))]).await
    }

    /// Writes `request` on a connection of its own and reads every answer.
    async fn raw(&self, request: &[u8]) -> Vec<Reply> {
        raw::exchange(self.host(), request, Duration::from_secs(10)).await
    }

    /// GETs `target` (path and query, sent exactly as given) on a connection of its own.
    async fn raw_get(&self, target: &str) -> Reply {
        let request = head(&format!("GET {target} HTTP/1.1"), &[("host", "x"), CLOSE]);
        let mut replies = self.raw(&request).await;
        assert_eq!(replies.len(), 1, "{replies:?}");
        replies.remove(0)
    }

    /// A request was refused: the first answer has `status`; an answer's body, if it has
    /// one, is `{"error": "<reason>"}`; no answer repeats a secret, a token, the signature
    /// sent or the one `body` would have; and nothing more is stored.
    async fn refused(&self, case: &str, replies: &[Reply], status: u16, body: &[u8], sent: &str) {
        assert_eq!(replies.first().map(|r| r.status), Some(status), "{case}: {replies:?}");
        let mut undisclosed = Undisclosed::configured();
        undisclosed.request(body, Some(sent).filter(|s| !s.is_empty()));
        for reply in replies {
            assert_error_shape(case, reply);
            undisclosed.assert_absent(case, &format!("{:?} {}", reply.headers, reply.text()));
        }
        self.assert_stored(case).await;
    }

    /// A delivery was acknowledged and is stored byte for byte, after the earlier ones.
    async fn accepted(&self, case: &str, reply: &Reply, body: &[u8]) {
        assert_eq!((reply.status, reply.text().as_str()), (200, RECEIVED), "{case}");
        self.expected.lock().unwrap().push(body.to_vec());
        self.assert_stored(case).await;
    }

    async fn assert_stored(&self, case: &str) {
        let stored: Vec<Vec<u8>> =
            stored_in(self.dir.path()).await.into_iter().map(|d| d.body).collect();
        let expected = self.expected.lock().unwrap().clone();
        assert!(stored == expected, "{case}: {} stored, {} expected", stored.len(), expected.len());
    }

    /// GETs an admin API path with the admin token.
    async fn admin(&self, path: &str) -> serde_json::Value {
        let request = self.client.get(format!("{}{path}", self.process.address));
        let response = request.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// The process did not exit and still answers.
    async fn assert_serving(mut self) {
        assert!(self.process.child.try_wait().unwrap().is_none(), "metahook exited");
        let health = self.client.get(format!("{}/healthz", self.process.address)).send().await;
        assert_eq!(health.expect("healthz").status(), 200);
    }
}

/// Makes the server close the connection after answering, so that a read ends.
const CLOSE: (&str, &str) = ("connection", "close");

/// An error body is `{"error": "<reason>"}`, or empty when the HTTP layer refused the
/// request before any route saw it.
fn assert_error_shape(case: &str, reply: &Reply) {
    if reply.status == 200 || reply.body.is_empty() {
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|_| panic!("{case}: not JSON: {}", reply.text()));
    let object = json.as_object().unwrap_or_else(|| panic!("{case}: {json}"));
    assert!(object.len() == 1 && object["error"].is_string(), "{case}: {json}");
}

/// A signed POST head declaring `length` bytes of body.
fn post_head(signature: &str, length: usize, extra: &[(&str, &str)]) -> Vec<u8> {
    let length = length.to_string();
    let mut headers = vec![("host", "x"), (SIGNATURE, signature), ("content-length", &length)];
    headers.extend_from_slice(extra);
    head("POST /meta/webhook HTTP/1.1", &headers)
}

/// A signed POST head for a chunked body.
fn chunked_head(signature: &str) -> Vec<u8> {
    let headers = [("host", "x"), (SIGNATURE, signature), ("transfer-encoding", "chunked"), CLOSE];
    head("POST /meta/webhook HTTP/1.1", &headers)
}
