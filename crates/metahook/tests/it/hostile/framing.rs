//! How a request is framed on the wire: lengths that lie or disagree, hand-made chunks, the
//! body limit to the byte, methods, and request heads too large or malformed.

use super::{CLOSE, SIGNATURE, Target, chunked_head, post_head};
use crate::helpers::{SECRET, VERIFY_TOKEN, messenger_text, sign};
use crate::raw::{Reply, chunked, head};

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

/// A delivery of exactly `len` bytes: an empty page delivery padded with `fill`.
fn padded(len: usize, fill: char) -> Vec<u8> {
    let frame = r#"{"object":"page","entry":[],"pad":""}"#.len();
    let pad: String = std::iter::repeat_n(fill, len - frame).collect();
    format!(r#"{{"object":"page","entry":[],"pad":"{pad}"}}"#).into_bytes()
}

fn as_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}
