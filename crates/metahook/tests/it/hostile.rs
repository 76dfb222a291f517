//! Hostile input against the built binary over real TCP. Every case checks the exact answer,
//! that the answer repeats no secret, token or signature, and that the store holds exactly
//! the deliveries accepted so far (none for a refusal); every test ends by checking that the
//! process still serves.
//!
//! The full list, and where each case lives when it is not here:
//! - unsigned, legacy SHA-1 only, a signature for another body or by another secret, cut or
//!   unprefixed: `webhook::missing_malformed_or_wrong_signatures_are_unauthorized_...`;
//!   other forgeries: [`forged_signatures_of_every_shape_are_refused`];
//! - a truncated body, a `Content-Length` that lies either way, Content-Length with chunked:
//!   [`a_body_cut_short_or_framed_twice_is_never_stored`];
//! - a body slower than the timeout: `webhook::a_body_trickled_slower_than_the_timeout_...`;
//! - chunked bodies: [`chunked_bodies_are_read_whole_and_held_to_the_limit`];
//! - bodies at the limit and one byte over (and streamed over it, in `webhook`):
//!   [`a_body_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not`];
//! - a signed body that is not a delivery: `webhook::a_signed_body_that_is_not_a_delivery_...`;
//!   not quoted in the answer: [`a_signed_body_of_another_shape_is_refused_without_quoting_it`];
//! - `object` or `entry` twice:
//!   [`object_or_entry_given_twice_is_refused_rather_than_read_two_ways`];
//! - invalid UTF-8 and lone surrogate escapes:
//!   [`signed_bodies_that_are_not_unicode_text_are_not_deliveries`];
//! - deep nesting: [`nesting_is_refused_exactly_where_the_decoder_could_not_read_it`];
//! - a 1000-entry batch: [`a_batch_of_1000_entries_is_stored_whole_and_split`];
//! - NUL characters and values too long to index, signed:
//!   [`signed_values_a_database_cannot_hold_or_index_do_not_block_the_pipeline`];
//! - content types: [`the_content_type_does_not_decide`];
//! - methods (PUT, DELETE and PATCH without a body are in `webhook`):
//!   [`methods_other_than_get_and_post_are_refused_and_store_nothing`];
//! - absurd handshake queries: [`absurd_handshake_queries_get_exact_answers`];
//! - header abuse: [`header_abuse_is_answered_without_a_crash`].

use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use crate::helpers::{
    ADMIN_TOKEN, SECRET, Undisclosed, VERIFY_TOKEN, client, messenger_text, sign, stored_in,
};
use crate::process::Process;
use crate::raw::{self, Reply, chunked, head};

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

/// A delivery of exactly `len` bytes: an empty page delivery padded with `fill`.
fn padded(len: usize, fill: char) -> Vec<u8> {
    let frame = r#"{"object":"page","entry":[],"pad":""}"#.len();
    let pad: String = std::iter::repeat_n(fill, len - frame).collect();
    format!(r#"{{"object":"page","entry":[],"pad":"{pad}"}}"#).into_bytes()
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

#[tokio::test]
async fn forged_signatures_of_every_shape_are_refused() {
    let target = Target::start().await;
    let body = messenger_text(1);
    let right = sign(SECRET, &body);
    let hex = &right["sha256=".len()..];
    let zeros = format!("sha256={}", "0".repeat(64));
    let newline = sign(SECRET, &[body.as_slice(), b"\n"].concat());
    let by_verify_token = sign(VERIFY_TOKEN, &body);
    let by_admin_token = sign(ADMIN_TOKEN, &body);
    let sha1_prefix = format!("sha1={hex}");
    let spaced = format!("sha256= {}", &hex[1..]);
    let huge = format!("sha256={}", "a".repeat(100_000));
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("sha256 of zeros", vec![(SIGNATURE, &zeros)]),
        ("signed before a newline was added", vec![(SIGNATURE, &newline)]),
        ("keyed by the verify token", vec![(SIGNATURE, &by_verify_token)]),
        ("keyed by the admin token", vec![(SIGNATURE, &by_admin_token)]),
        ("the right hex under sha1=", vec![(SIGNATURE, &sha1_prefix)]),
        ("a space inside the value", vec![(SIGNATURE, &spaced)]),
        ("the right value in the legacy header", vec![("x-hub-signature", &right)]),
        ("a 100 KB value", vec![(SIGNATURE, &huge)]),
    ];
    for (case, headers) in cases {
        let reply = target.post(&body, &headers).await;
        target.refused(case, &[reply], 401, &body, headers[0].1).await;
    }

    // A value that is not text at all.
    let mut request = post_head("sha256=", body.len(), &[CLOSE]);
    let at = request.windows(9).position(|w| w == b"sha256=\r\n").unwrap() + 7;
    request.splice(at..at, [0xff, 0xfe, 0x80]);
    request.extend_from_slice(&body);
    target.refused("bytes outside ASCII", &target.raw(&request).await, 401, &body, "").await;

    // The prefix's case does not matter, as the hex's does not.
    let upper = format!("SHA256={hex}");
    let reply = target.post(&body, &[(SIGNATURE, &upper)]).await;
    target.accepted("SHA256= in capitals", &reply, &body).await;
    target.assert_serving().await;
}

#[tokio::test]
async fn a_body_cut_short_or_framed_twice_is_never_stored() {
    let target = Target::start_with(&[("METAHOOK_BODY_TIMEOUT_MS", "500")]).await;
    let body = messenger_text(1);
    let signature = sign(SECRET, &body);
    let half = &body[..body.len() / 2];

    let reply = target.post(half, &[(SIGNATURE, &signature)]).await;
    target.refused("half the body, signed whole", &[reply], 401, half, &signature).await;

    // Declared longer than sent, connection held open: cut off by the body timeout.
    let mut request = post_head(&signature, body.len() + 10, &[]);
    request.extend_from_slice(&body);
    let replies = target.raw(&request).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    target.refused("Content-Length too large", &replies, 408, &body, &signature).await;

    // Declared shorter than sent: the first half is a request whose signature fails, and the
    // rest is not taken for a second request.
    let mut request = post_head(&signature, half.len(), &[]);
    request.extend_from_slice(&body);
    let replies = target.raw(&request).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 400], "{replies:?}");
    assert_eq!(replies[1].header("connection"), Some("close"));
    target.refused("Content-Length too small", &replies, 401, &body, &signature).await;

    // Two different lengths: refused before any route sees it.
    let length = half.len().to_string();
    let mut request = post_head(&signature, body.len(), &[("content-length", &length)]);
    request.extend_from_slice(&body);
    target.refused("two Content-Lengths", &target.raw(&request).await, 400, &body, "").await;

    // Content-Length beside chunked: the chunked framing counts (RFC 9112, 6.3), the
    // connection is closed after the answer, and a request smuggled after the last chunk is
    // neither answered nor stored.
    let smuggled = messenger_text(2);
    let mut request = post_head(&signature, 4, &[("transfer-encoding", "chunked")]);
    request.extend_from_slice(&chunked(&body, 40));
    request.extend_from_slice(&post_head(&sign(SECRET, &smuggled), smuggled.len(), &[]));
    request.extend_from_slice(&smuggled);
    let replies = target.raw(&request).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].header("connection"), Some("close"));
    target.accepted("Content-Length and chunked", &replies[0], &body).await;
    target.assert_serving().await;
}

#[tokio::test]
async fn chunked_bodies_are_read_whole_and_held_to_the_limit() {
    let target = Target::start_with(&[("METAHOOK_BODY_LIMIT", "2000")]).await;
    let body = messenger_text(1);
    let signature = sign(SECRET, &body);

    // Chunks of several sizes, a chunk extension and a trailer: the signature covers the
    // decoded body.
    let mut request = chunked_head(&signature);
    request.extend_from_slice(format!("5;name=value\r\n{}\r\n", as_text(&body[..5])).as_bytes());
    let rest = chunked(&body[5..], 17);
    request.extend_from_slice(&rest[..rest.len() - 2]);
    request.extend_from_slice(b"x-trailer: 1\r\n\r\n");
    let replies = target.raw(&request).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    target.accepted("chunked, signed", &replies[0], &body).await;

    // Signed over the wire bytes, chunk sizes included, rather than the body.
    let wire = chunked(&messenger_text(2), 30);
    let mut request = chunked_head(&sign(SECRET, &wire));
    request.extend_from_slice(&wire);
    let replies = target.raw(&request).await;
    target.refused("signed over the chunk framing", &replies, 401, &wire, "").await;

    // A chunk that claims 2 GiB: refused once the limit is passed, not when the chunk ends.
    let mut request = chunked_head(&signature);
    request.extend_from_slice(b"7fffffff\r\n");
    request.extend_from_slice(&[b' '; 2500]);
    target.refused("a 2 GiB chunk", &target.raw(&request).await, 413, &body, &signature).await;

    // A chunk size that overflows.
    let mut request = chunked_head(&signature);
    request.extend_from_slice(b"ffffffffffffffffffff\r\n");
    request.extend_from_slice(&body);
    let replies = target.raw(&request).await;
    target.refused("an overflowing chunk size", &replies, 400, &body, &signature).await;
    target.assert_serving().await;
}

fn as_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn a_body_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not() {
    let target = Target::start_with(&[("METAHOOK_BODY_LIMIT", "4000")]).await;
    let at_limit = padded(4000, 'a');
    let reply = target.post_signed(&at_limit).await;
    target.accepted("4000 bytes, Content-Length", &reply, &at_limit).await;

    let over = padded(4001, 'a');
    let reply = target.post_signed(&over).await;
    target.refused("4001 bytes, Content-Length", &[reply], 413, &over, "").await;

    for (len, fill) in [(4000, 'b'), (4001, 'b')] {
        let body = padded(len, fill);
        let mut request = chunked_head(&sign(SECRET, &body));
        request.extend_from_slice(&chunked(&body, 1000));
        let replies = target.raw(&request).await;
        let case = format!("{len} bytes, chunked");
        match len {
            4000 => target.accepted(&case, &replies[0], &body).await,
            _ => target.refused(&case, &replies, 413, &body, "").await,
        }
    }
    target.assert_serving().await;
}

#[tokio::test]
async fn signed_bodies_that_are_not_unicode_text_are_not_deliveries() {
    // A lone UTF-16 surrogate escape is valid JSON grammar but names no character: like
    // invalid UTF-8, it is text no decoder can read, so the signed body is refused with 400
    // and not stored. Meta escapes characters above U+FFFF as pairs, never alone.
    let target = Target::start().await;
    let message = |text: &str| {
        format!(
            r#"{{"object":"page","entry":[{{"id":"1","time":1,"messaging":[{{"sender":{{"id":"2"}},"recipient":{{"id":"1"}},"timestamp":1,"message":{{"mid":"m","text":"{text}"}}}}]}}]}}"#
        )
        .into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a high surrogate alone in a text", message(r"hi \ud83e")),
        ("a low surrogate alone", message(r"\udd70")),
        ("a pair in the wrong order", message(r"\udd70\ud83e")),
        ("a high surrogate before a letter", message(r"\ud83e\u0041")),
        ("a lone surrogate in a key", br#"{"object":"page","entry":[{"\ud800":1}]}"#.to_vec()),
        ("a lone surrogate in object", br#"{"object":"p\udc00","entry":[]}"#.to_vec()),
        ("invalid UTF-8 in a key", b"{\"object\":\"page\",\"entry\":[{\"\xc3\":1}]}".to_vec()),
        ("invalid UTF-8 in object", b"{\"object\":\"p\xe2\x82\",\"entry\":[]}".to_vec()),
        ("an overlong UTF-8 slash", b"{\"object\":\"page\",\"entry\":[\"\xc0\xaf\"]}".to_vec()),
        ("a byte order mark", [&b"\xef\xbb\xbf"[..], &messenger_text(1)].concat()),
        (
            "UTF-16",
            r#"{"object":"page","entry":[]}"#.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ),
    ];
    for (case, body) in cases {
        let reply = target.post_signed(&body).await;
        target.refused(case, &[reply], 400, &body, "").await;
    }

    // The signature is checked first: unsigned, the same body is a 401.
    let body = message(r"\ud83e");
    let reply = target.post(&body, &[]).await;
    target.refused("lone surrogate, unsigned", &[reply], 401, &body, "").await;
    target.assert_serving().await;
}

#[tokio::test]
async fn a_signed_body_of_another_shape_is_refused_without_quoting_it() {
    // The reason names what is wrong and where; a value from the body would make the answer
    // a mirror for whatever the body holds, a secret included.
    let target = Target::start().await;
    for body in [
        format!(r#"{{"object":"page","entry":"{SECRET}"}}"#),
        format!(r#""{VERIFY_TOKEN}""#),
        format!(r#"{{"entry":"{ADMIN_TOKEN}","object":"page"}}"#),
        format!(r#"{{"object":"page","entry":["{ADMIN_TOKEN}"#),
    ] {
        let reply = target.post_signed(body.as_bytes()).await;
        target.refused(&body, &[reply], 400, body.as_bytes(), "").await;
    }
    target.assert_serving().await;
}

#[tokio::test]
async fn object_or_entry_given_twice_is_refused_rather_than_read_two_ways() {
    // The envelope check would read the first, the decoder the last: stored, such a body
    // would be listed as one thing and applied as another.
    let target = Target::start().await;
    let events = String::from_utf8(messenger_text(1)).unwrap();
    let entries = events.split_once(r#""entry":"#).unwrap().1.trim_end_matches('}');
    for body in [
        format!(r#"{{"object":"page","entry":[],"entry":{entries}}}"#),
        format!(r#"{{"object":"user","entry":{entries},"object":"page"}}"#),
    ] {
        let reply = target.post_signed(body.as_bytes()).await;
        target.refused(&body, &[reply], 400, body.as_bytes(), "").await;
    }
    target.assert_serving().await;
}

#[tokio::test]
async fn nesting_is_refused_exactly_where_the_decoder_could_not_read_it() {
    let target = Target::start().await;
    let nested = |depth: usize| {
        let (open, close) = ("[".repeat(depth), "]".repeat(depth));
        format!(r#"{{"object":"page","entry":[{{"id":"1","time":1,"x":{open}{close}}}]}}"#)
            .into_bytes()
    };
    let deepest = (1..1000).take_while(|d| meta_webhooks::split(&nested(*d)).is_ok()).last();
    let deepest = deepest.expect("shallow nesting decodes");
    let body = nested(deepest);
    target.accepted("as deep as the decoder reads", &target.post_signed(&body).await, &body).await;
    let body = nested(deepest + 1);
    let reply = target.post_signed(&body).await;
    target.refused("one level deeper", &[reply], 400, &body, "").await;

    // Objects a hundred thousand deep, outside `entry`: refused without exhausting the stack.
    let depth = 100_000;
    let body = format!(
        r#"{{"object":"page","entry":[],"x":{}1{}}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    let reply = target.post_signed(body.as_bytes()).await;
    target.refused("100000 objects deep", &[reply], 400, body.as_bytes(), "").await;
    target.assert_serving().await;
}

#[tokio::test]
async fn a_batch_of_1000_entries_is_stored_whole_and_split() {
    let target = Target::start().await;
    let entries: Vec<String> = (0..1000)
        .map(|n| {
            format!(
                r#"{{"id":"111899832631525","time":1480279487271,"messaging":[{{"sender":{{"id":"1433960459967306"}},"recipient":{{"id":"111899832631525"}},"timestamp":{},"message":{{"mid":"mid.batch.{n}","text":"part {n}"}}}}]}}"#,
                1_700_000_000_000i64 + n
            )
        })
        .collect();
    let body = format!(r#"{{"object":"page","entry":[{}]}}"#, entries.join(",")).into_bytes();
    let reply = target.post_signed(&body).await;
    target.accepted("1000 entries", &reply, &body).await;
    assert_eq!(stored_in(target.dir.path()).await[0].entries, 1000);
    let settled =
        |s: &serde_json::Value| s["store"]["pending"] == 0 && s["store"]["events"] == 1000;
    target.process.wait_for_status(30, settled).await;
    target.assert_serving().await;
}

#[tokio::test]
async fn signed_values_a_database_cannot_hold_or_index_do_not_block_the_pipeline() {
    // PostgreSQL text cannot hold NUL, and a unique index refuses a row over about 2.7 KB:
    // either once stopped every commit that carried it, the inbox's or the pipeline's. Now a
    // NUL is read as U+FFFD and a long key is cut; the 20 KB mid still cannot be indexed in
    // PostgreSQL's messages table, so there that one event alone ends dead.
    let target = Target::start_with(&[
        ("METAHOOK_PIPELINE_MAX_ATTEMPTS", "2"),
        ("METAHOOK_PIPELINE_RETRY_BASE_MS", "20"),
    ])
    .await;
    let message = |object: &str, id: &str, mid: &str| {
        format!(
            r#"{{"object":"{object}","entry":[{{"id":"{id}","time":1,"messaging":[{{"sender":{{"id":"{id}"}},"recipient":{{"id":"P"}},"timestamp":1700000000000,"message":{{"mid":"{mid}","text":"a\u0000b"}}}}]}}]}}"#
        )
        .into_bytes()
    };
    // Letters no compression shortens, as a long id of Meta's would be.
    let mut seed = 7u64;
    let long: String = (0..20_000)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            char::from(b'a' + (seed >> 59) as u8 % 26)
        })
        .collect();
    let cases = [
        ("NUL in object", message(r"page\u0000", "1", "m1")),
        ("NUL in ids", message("page", r"U\u0000", r"m\u0000")),
        ("a 20 KB mid", message("page", "2", &long)),
        ("a 20 KB object", message(&long, "3", "m3")),
    ];
    for (case, body) in cases {
        target.accepted(case, &target.post_signed(&body).await, &body).await;
    }
    let body = messenger_text(1);
    target
        .accepted("an ordinary delivery after them", &target.post_signed(&body).await, &body)
        .await;
    let settled = |s: &serde_json::Value| {
        s["webhook"]["status"] == "active"
            && s["store"]["pending"] == 0
            && s["store"]["events"] == 5
    };
    target.process.wait_for_status(20, settled).await;
    let messages = target.admin("/api/messages?mid=mid.1").await;
    assert_eq!(messages["items"][0]["status"], "received", "{messages}");
    target.assert_serving().await;
}

#[tokio::test]
async fn the_content_type_does_not_decide() {
    // Meta sends application/json, but only the signature authenticates a delivery: a proxy
    // that rewrites the header must not make Meta's retries fail for 36 hours, and a forger
    // gains nothing from a header. So any content type, or none, is accepted when signed.
    let target = Target::start().await;
    let types = [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json; charset=iso-8859-1"),
        Some("image/png"),
        None,
    ];
    for (n, content_type) in types.into_iter().enumerate() {
        let body = messenger_text(n);
        let mut request = target
            .client
            .post(format!("{}/meta/webhook", target.process.address))
            .header(SIGNATURE, sign(SECRET, &body))
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let reply = Reply::from_reqwest(request.send().await.unwrap()).await;
        target.accepted(content_type.unwrap_or("no content type"), &reply, &body).await;
    }
    let body = messenger_text(99);
    let reply = target.post(&body, &[("content-type", "text/plain")]).await;
    target.refused("text/plain, unsigned", &[reply], 401, &body, "").await;
    target.assert_serving().await;
}

#[tokio::test]
async fn methods_other_than_get_and_post_are_refused_and_store_nothing() {
    let target = Target::start().await;
    for method in ["OPTIONS", "TRACE", "CONNECT", "PROPFIND", "BREW"] {
        let request = head(&format!("{method} /meta/webhook HTTP/1.1"), &[("host", "x"), CLOSE]);
        let replies = target.raw(&request).await;
        target.refused(method, &replies, 405, b"", "").await;
        assert_eq!(replies[0].header("allow"), Some("GET,HEAD,POST"), "{method}");
        assert!(replies[0].body.is_empty(), "{method}");
    }

    let body = messenger_text(1);
    let signature = sign(SECRET, &body);
    let url = format!("{}/meta/webhook", target.process.address);
    let put = target.client.put(&url).header(SIGNATURE, &signature).body(body.clone());
    let reply = Reply::from_reqwest(put.send().await.unwrap()).await;
    target.refused("a signed PUT", &[reply], 405, &body, &signature).await;

    // HEAD is GET without a body: the handshake's status, nothing else.
    let query = format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=7");
    for (query, status) in [("", 400), (query.as_str(), 200)] {
        let response = target.client.head(format!("{url}?{query}")).send().await.unwrap();
        let reply = Reply::from_reqwest(response).await;
        assert_eq!((reply.status, reply.body.len()), (status, 0), "HEAD ?{query}");
    }
    target.assert_stored("HEAD").await;
    target.assert_serving().await;
}

#[tokio::test]
async fn absurd_handshake_queries_get_exact_answers() {
    let target = Target::start().await;
    let token = format!("hub.verify_token={VERIFY_TOKEN}");
    let challenge = "c".repeat(60_000);
    let junk = "junk=1&".repeat(8_000);
    let cases: Vec<(&str, String, u16)> = vec![
        ("a 60 KB challenge", format!("hub.mode=subscribe&{token}&hub.challenge={challenge}"), 200),
        (
            "56 KB of other parameters",
            format!("{junk}hub.mode=subscribe&{token}&hub.challenge=1"),
            200,
        ),
        (
            "the token percent-encoded",
            "hub.mode=subscribe&hub.verify_token=test%2Dverify%2Dtoken&hub.challenge=1".into(),
            200,
        ),
        (
            "a wrong token before the right one",
            format!("hub.verify_token=nope&{token}&hub.mode=subscribe&hub.challenge=1"),
            403,
        ),
        (
            "the right token before a wrong one",
            format!("{token}&hub.verify_token=nope&hub.mode=subscribe&hub.challenge=1"),
            200,
        ),
        (
            "another mode before subscribe",
            format!("hub.mode=unsubscribe&hub.mode=subscribe&{token}&hub.challenge=1"),
            403,
        ),
        ("a bare %", format!("hub.mode=subscribe&{token}&hub.challenge=%"), 400),
        ("%zz", "hub.mode=subscribe&hub.verify_token=%zz&hub.challenge=1".into(), 400),
        (
            "escapes of invalid UTF-8",
            format!("hub.mode=subscribe&{token}&hub.challenge=%ff%fe"),
            400,
        ),
        ("names percent-encoded", format!("hub%2Emode=subscribe&{token}&hub.challenge=1"), 200),
        ("parameters without values", "hub.mode&hub.verify_token&hub.challenge".into(), 403),
        ("only separators", "&&&===&&&".into(), 400),
    ];
    for (case, query, status) in cases {
        let reply = target.raw_get(&format!("/meta/webhook?{query}")).await;
        if status == 200 {
            // The challenge is the last parameter of each: it comes back byte for byte.
            let challenge = query.rsplit_once("hub.challenge=").unwrap().1;
            assert_eq!((reply.status, reply.text().as_str()), (200, challenge), "{case}");
        } else {
            target.refused(case, &[reply], status, b"", "").await;
        }
    }

    // Past what a URI may hold (64 KiB), and past what a request head may hold.
    let reply = target.raw_get(&format!("/meta/webhook?{}", "a".repeat(100_000))).await;
    target.refused("a 100 KB query", &[reply], 414, b"", "").await;
    let reply = target.raw_get(&format!("/meta/webhook?{}", "a".repeat(1_000_000))).await;
    target.refused("a 1 MB query", &[reply], 431, b"", "").await;
    target.assert_serving().await;
}

#[tokio::test]
async fn header_abuse_is_answered_without_a_crash() {
    let target = Target::start().await;
    let body = messenger_text(1);
    let signature = sign(SECRET, &body);
    let with_headers = |extra: &[(&str, &str)]| {
        let mut request = post_head(&signature, body.len(), extra);
        request.extend_from_slice(&body);
        request
    };

    let megabyte = "a".repeat(1_000_000);
    let replies = target.raw(&with_headers(&[("x-junk", &megabyte)])).await;
    target.refused("a 1 MB header", &replies, 431, &body, &signature).await;

    let names: Vec<String> = (0..5000).map(|n| format!("x-h{n}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let replies = target.raw(&with_headers(&many)).await;
    target.refused("5000 headers", &replies, 431, &body, &signature).await;

    let replies = target.raw(&with_headers(&[("x-junk", "a\0b")])).await;
    target.refused("a NUL in a header value", &replies, 400, &body, &signature).await;
    let replies = target.raw(&with_headers(&[("x-junk", "a\r\n folded")])).await;
    target.refused("a folded header line", &replies, 400, &body, &signature).await;
    let replies = target.raw(&with_headers(&[("x junk", "v")])).await;
    target.refused("a space in a header name", &replies, 400, &body, &signature).await;

    // A large head that still fits the server's buffer (about 400 KB) is read as usual.
    let kilobytes = "a".repeat(100_000);
    let replies = target.raw(&with_headers(&[("x-junk", &kilobytes), CLOSE])).await;
    target.accepted("a 100 KB header", &replies[0], &body).await;
    target.assert_serving().await;
}
