//! `X-Hub-Signature-256` verification over the exact bytes Meta sent.
//!
//! Meta signs the raw request body with HMAC-SHA256 keyed by the app secret and sends
//! `sha256=<hex>`. The body it signs is compact JSON with non-ASCII written as `\uXXXX`
//! escapes, so the only correct input is the bytes as received: never a re-serialisation.
//! Several secrets may be configured (rotation, several apps on one URL, the Instagram
//! Login app secret), and the caller learns which one matched by position only.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The header Meta puts the SHA-256 signature in.
pub const SIGNATURE_256_HEADER: &str = "x-hub-signature-256";
/// The legacy SHA-1 header Meta still sends beside the SHA-256 one.
pub const SIGNATURE_SHA1_HEADER: &str = "x-hub-signature";

const PREFIX: &[u8] = b"sha256=";
const DIGEST_LEN: usize = 32;

/// A shared secret (app secret, verify token, admin token) that cannot be printed.
///
/// `Debug` and `Display` write `[redacted]`; the value is reached only through
/// [`Secret::expose`], which makes every use easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `candidate` in time that does not depend on where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        // The length of a verify token is not worth hiding; its content is.
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a delivery was not accepted as signed.
///
/// The messages never contain the expected signature or a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header: expected sha256= and 64 hex digits")]
    Malformed,
    /// Well formed, but no configured secret produces it for this body.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Position of the configured secret that verified a delivery (0 is the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretIndex(pub usize);

/// Checks signatures against every configured app secret.
///
/// Keys are set up once; each check clones the keyed state, which saves the key schedule on
/// the hot path.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Hmac<Sha256>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("secrets", &self.keys.len()).finish()
    }
}

impl Verifier {
    /// A verifier for these secrets, in order. With none, every delivery is a mismatch.
    pub fn new(secrets: &[Secret]) -> Self {
        let keys = secrets.iter().map(|s| keyed_sha256(s.expose().as_bytes())).collect();
        Self { keys }
    }

    /// How many secrets are configured.
    pub fn secrets(&self) -> usize {
        self.keys.len()
    }

    /// Verifies `header` (the `X-Hub-Signature-256` value, if any) over `body`.
    ///
    /// Every secret is tried, whatever matched before, so the time taken does not tell which
    /// one matched or how close a forgery came.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
    ) -> Result<SecretIndex, SignatureError> {
        let claimed = parse_header(header.ok_or(SignatureError::Missing)?)?;
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, key) in self.keys.iter().enumerate() {
            let mut mac = key.clone();
            mac.update(body);
            let computed = mac.finalize().into_bytes();
            let equal = computed.as_slice().ct_eq(&claimed);
            let first = equal & !found;
            index.conditional_assign(&(i as u64), first);
            found |= equal;
        }
        if bool::from(found) {
            Ok(SecretIndex(index as usize))
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Parses `sha256=<64 hex digits>`; the hex may be in either case.
pub fn parse_header(value: &[u8]) -> Result<[u8; DIGEST_LEN], SignatureError> {
    if value.len() != PREFIX.len() + 2 * DIGEST_LEN
        || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
    {
        return Err(SignatureError::Malformed);
    }
    let mut digest = [0u8; DIGEST_LEN];
    hex::decode_to_slice(&value[PREFIX.len()..], &mut digest)
        .map_err(|_| SignatureError::Malformed)?;
    Ok(digest)
}

/// The `X-Hub-Signature-256` value Meta would send for `body` signed with `secret`.
pub fn sign_sha256(secret: &Secret, body: &[u8]) -> String {
    let mut mac = keyed_sha256(secret.expose().as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The legacy `X-Hub-Signature` value (`sha1=<hex>`) Meta still sends alongside.
pub fn sign_sha1(secret: &Secret, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .expect("hmac accepts keys of any length");
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

fn keyed_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(&secrets.iter().map(|s| Secret::new(*s)).collect::<Vec<_>>())
    }

    #[test]
    fn courier_known_answer_verifies_and_a_changed_body_does_not() {
        let header = b"sha256=f39034b29165ec6a5104d9aef27266484ab26c8caa7bca8bcb2dd02e8be61b17";
        let v = verifier(&["sesame"]);
        assert_eq!(v.verify(Some(header), b"hello world"), Ok(SecretIndex(0)));
        assert_eq!(v.verify(Some(header), b"hello world2"), Err(SignatureError::Mismatch));
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let header = b"sha256=F39034B29165EC6A5104D9AEF27266484AB26C8CAA7BCA8BCB2DD02E8BE61B17";
        assert_eq!(verifier(&["sesame"]).verify(Some(header), b"hello world"), Ok(SecretIndex(0)));
    }

    #[test]
    fn the_matching_secret_is_reported_by_position() {
        let header = sign_sha256(&Secret::new("second"), b"{}");
        let v = verifier(&["first", "second", "third"]);
        assert_eq!(v.verify(Some(header.as_bytes()), b"{}"), Ok(SecretIndex(1)));
    }

    #[test]
    fn secrets_that_sign_alike_report_the_first() {
        // Found by the signature fuzz target: HMAC pads a key shorter than its block with
        // zeros, so a secret and the same secret with trailing NULs are one key.
        let header = sign_sha256(&Secret::new("sesame\0\0"), b"{}");
        let v = verifier(&["other", "sesame", "sesame\0\0"]);
        assert_eq!(v.verify(Some(header.as_bytes()), b"{}"), Ok(SecretIndex(1)));
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        let v = verifier(&["sesame"]);
        assert_eq!(v.verify(None, b"x"), Err(SignatureError::Missing));
        for bad in [
            &b""[..],
            b"sha256=",
            b"sha1=308de7627fe19e92294c4572a7f831bc1002809d",
            b"sha256=zz9034b29165ec6a5104d9aef27266484ab26c8caa7bca8bcb2dd02e8be61b17",
            b"sha256=f39034b29165ec6a5104d9aef27266484ab26c8caa7bca8bcb2dd02e8be61b1",
            b"sha256=f39034b29165ec6a5104d9aef27266484ab26c8caa7bca8bcb2dd02e8be61b17a",
            b"f39034b29165ec6a5104d9aef27266484ab26c8caa7bca8bcb2dd02e8be61b17sha256=",
        ] {
            assert_eq!(v.verify(Some(bad), b"hello world"), Err(SignatureError::Malformed));
        }
    }

    #[test]
    fn no_secret_verifies_nothing() {
        let header = sign_sha256(&Secret::new(""), b"{}");
        assert_eq!(
            verifier(&[]).verify(Some(header.as_bytes()), b"{}"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_secret_matches_only_itself() {
        let s = Secret::new("sesame-token");
        assert!(s.matches(b"sesame-token"));
        for other in [&b""[..], b"sesame-toke", b"sesame-tokenn", b"Sesame-token", b" sesame-token"]
        {
            assert!(!s.matches(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("dc074b4cd5c4679002750832c2065bc8");
        assert!(!format!("{s} {s:?}").contains("dc074b4c"));
        let v = Verifier::new(&[s]);
        assert!(!format!("{v:?}").contains("dc074b4c"));
    }

    #[test]
    fn sha1_matches_the_courier_vector() {
        let s = Secret::new("sesame");
        assert_eq!(sign_sha1(&s, b"hello world"), "sha1=308de7627fe19e92294c4572a7f831bc1002809d");
    }
}
