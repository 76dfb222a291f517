//! What a POST holds: forged signatures, any content type, bodies of the wrong shape or not
//! Unicode text, nesting at the decoder's limit, a full batch, and signed values a database
//! cannot hold as they are.

use super::{CLOSE, SIGNATURE, Target, post_head};
use crate::helpers::{ADMIN_TOKEN, SECRET, VERIFY_TOKEN, messenger_text, sign, stored_in};
use crate::raw::Reply;

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
async fn the_json_readers_reserved_key_is_refused_rather_than_stored_and_lost() {
    // With serde_json's raw_value feature on, as it is in the service, an object holding this
    // key does not decode: acknowledged, such a body would never become events.
    let target = Target::start().await;
    for body in [
        r#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"$serde_json::private::RawValue":"1","x":2}]}]}"#,
        r#"{"object":"page","entry":[],"$serde_json::private::RawValue":"{}"}"#,
    ] {
        let reply = target.post_signed(body.as_bytes()).await;
        target.refused(body, &[reply], 400, body.as_bytes(), "").await;
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
