//! The `hub.*` query of the verification handshake, against a reference reading of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta_webhooks::{Handshake, HandshakeError, Secret};

const NAMES: [&str; 3] = ["hub.mode", "hub.verify_token", "hub.challenge"];

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let parsed = Handshake::from_query(&query);
    let fields = parsed.as_ref().map(|h| [&*h.mode, &*h.verify_token, &*h.challenge]);
    let expected = reference(&query);
    assert_eq!(fields, expected.as_ref().map(|[m, t, c]| [m.as_str(), t.as_str(), c.as_str()]));
    let Ok(handshake) = parsed else {
        return;
    };

    let subscribe = handshake.mode == "subscribe";
    for token in ["s3cret token", &*handshake.verify_token] {
        let matches = handshake.verify_token == token;
        let verified = handshake.verify(Some(&Secret::new(token)));
        match verified {
            Ok(challenge) => assert!(subscribe && matches && challenge == handshake.challenge),
            Err(HandshakeError::WrongMode) => assert!(!subscribe),
            Err(HandshakeError::WrongToken) => assert!(subscribe && !matches),
            Err(other) => panic!("verify returned {other:?}"),
        }
    }
    assert!(handshake.verify(None).is_err());

    // Whatever was decoded survives being encoded again.
    let again = format!(
        "hub.challenge={}&hub.verify_token={}&hub.mode={}",
        encode(&handshake.challenge),
        encode(&handshake.verify_token),
        encode(&handshake.mode),
    );
    assert_eq!(Handshake::from_query(&again).as_ref(), Ok(&handshake));
});

/// The handshake read independently: the first pair whose decoded name is one of the three
/// sets it, a broken escape in a value that counts is malformed, then each must be present.
fn reference(query: &str) -> Result<[String; 3], HandshakeError> {
    let mut found: [Option<String>; 3] = Default::default();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(i) = strict_decode(name).and_then(|n| NAMES.iter().position(|m| *m == n)) else {
            continue;
        };
        if found[i].is_none() {
            found[i] = Some(strict_decode(value).ok_or(HandshakeError::Malformed(NAMES[i]))?);
        }
    }
    let [mode, token, challenge] = found;
    let missing = |i: usize| HandshakeError::Missing(NAMES[i]);
    Ok([mode.ok_or(missing(0))?, token.ok_or(missing(1))?, challenge.ok_or(missing(2))?])
}

/// Form decoding: `+` is a space and `%` must be followed by exactly two hex digits.
fn strict_decode(input: &str) -> Option<String> {
    let mut bytes = input.bytes();
    let mut out = Vec::new();
    while let Some(b) = bytes.next() {
        let decoded = match b {
            b'+' => b' ',
            b'%' => {
                let high = char::from(bytes.next()?).to_digit(16)?;
                let low = char::from(bytes.next()?).to_digit(16)?;
                u8::try_from(high * 16 + low).ok()?
            }
            other => other,
        };
        out.push(decoded);
    }
    String::from_utf8(out).ok()
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
