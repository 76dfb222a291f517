//! `X-Hub-Signature-256` parsing and verification over arbitrary headers and bodies.
//!
//! The input is `[n][n bytes of header][body]`. The header bytes double as a second app
//! secret, so keys of every length and content are signed with too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta_webhooks::signature::{SecretIndex, parse_header, sign_sha256};
use meta_webhooks::{Secret, SignatureError, Verifier};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (header, body) = rest.split_at(usize::from(n).min(rest.len()));
    let secrets = [Secret::new("sesame"), Secret::new(String::from_utf8_lossy(header))];
    let verifier = Verifier::new(&secrets);

    let well_formed = header.len() == 71
        && header[..7].eq_ignore_ascii_case(b"sha256=")
        && header[7..].iter().all(u8::is_ascii_hexdigit);
    assert_eq!(parse_header(header).is_ok(), well_formed);

    let signed: Vec<String> = secrets.iter().map(|s| sign_sha256(s, body)).collect();
    let claimed = String::from_utf8_lossy(header).to_ascii_lowercase();
    let expected = match signed.iter().position(|s| *s == claimed) {
        _ if !well_formed => Err(SignatureError::Malformed),
        Some(i) => Ok(SecretIndex(i)),
        None => Err(SignatureError::Mismatch),
    };
    assert_eq!(verifier.verify(Some(header), body), expected);
    assert_eq!(verifier.verify(None, body), Err(SignatureError::Missing));

    for (i, header) in signed.iter().enumerate() {
        // Secrets that sign alike are reported as the first of them. Not only equal ones:
        // HMAC pads a short key with zeros, so `sesame` and `sesame\0` are the same key.
        let first = SecretIndex(signed.iter().position(|s| *s == signed[i]).unwrap_or(i));
        assert_eq!(verifier.verify(Some(header.as_bytes()), body), Ok(first));
        let upper = header.to_ascii_uppercase();
        assert_eq!(verifier.verify(Some(upper.as_bytes()), body), Ok(first));

        // One digit changed anywhere is a mismatch.
        let mut forged = header.clone().into_bytes();
        let at = 7 + usize::from(n) % 64;
        forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
        assert_eq!(verifier.verify(Some(&forged), body), Err(SignatureError::Mismatch));
    }
});
