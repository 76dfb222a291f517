//! The verification handshake Meta performs before it sends any notification.
//!
//! Meta calls `GET <callback>?hub.mode=subscribe&hub.challenge=..&hub.verify_token=..` and
//! expects 200 with the challenge as the whole body; anything else leaves the callback
//! unverified. Parsing keeps the three outcomes a receiver must tell apart: a parameter is
//! missing (400), the request is well formed but wrong (403), or it is verified (200).

use std::borrow::Cow;

use crate::signature::Secret;

/// The three handshake parameters, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// `hub.mode`: `subscribe` when Meta asks.
    pub mode: Cow<'a, str>,
    /// `hub.verify_token`: what the user typed into the dashboard.
    pub verify_token: Cow<'a, str>,
    /// `hub.challenge`: echoed back byte for byte.
    pub challenge: Cow<'a, str>,
}

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// A parameter is absent: the request is not a handshake at all.
    #[error("missing query parameter {0}")]
    Missing(&'static str),
    /// A parameter is not valid percent-encoded UTF-8.
    #[error("malformed query parameter {0}")]
    Malformed(&'static str),
    /// `hub.mode` is not `subscribe`.
    #[error("hub.mode is not subscribe")]
    WrongMode,
    /// The verify token does not match, or none is configured.
    #[error("hub.verify_token does not match")]
    WrongToken,
}

impl HandshakeError {
    /// True when the request itself is incomplete or unreadable (400), false when it was
    /// understood and refused (403).
    pub fn is_bad_request(self) -> bool {
        matches!(self, Self::Missing(_) | Self::Malformed(_))
    }
}

const MODE: &str = "hub.mode";
const TOKEN: &str = "hub.verify_token";
const CHALLENGE: &str = "hub.challenge";

impl<'a> Handshake<'a> {
    /// Reads the parameters from a raw query string (without the `?`). When a parameter
    /// appears twice, the first one counts.
    pub fn from_query(query: &'a str) -> Result<Self, HandshakeError> {
        let (mut mode, mut token, mut challenge) = (None, None, None);
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match decode(name).as_deref() {
                Some(MODE) => (&mut mode, MODE),
                Some(TOKEN) => (&mut token, TOKEN),
                Some(CHALLENGE) => (&mut challenge, CHALLENGE),
                _ => continue,
            };
            if slot.0.is_none() {
                *slot.0 = Some(decode(value).ok_or(HandshakeError::Malformed(slot.1))?);
            }
        }
        Ok(Self {
            mode: mode.ok_or(HandshakeError::Missing(MODE))?,
            verify_token: token.ok_or(HandshakeError::Missing(TOKEN))?,
            challenge: challenge.ok_or(HandshakeError::Missing(CHALLENGE))?,
        })
    }

    /// Checks mode and token (in constant time) and returns the challenge to echo.
    ///
    /// With no verify token configured, no handshake succeeds.
    pub fn verify(&self, expected: Option<&Secret>) -> Result<&str, HandshakeError> {
        if self.mode != "subscribe" {
            return Err(HandshakeError::WrongMode);
        }
        match expected {
            Some(token) if token.matches(self.verify_token.as_bytes()) => Ok(&self.challenge),
            _ => Err(HandshakeError::WrongToken),
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` component; `None` when a `%` escape is
/// broken or the result is not UTF-8.
fn decode(input: &str) -> Option<Cow<'_, str>> {
    if !input.contains(['%', '+']) {
        return Some(Cow::Borrowed(input));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Checked digit by digit: `from_str_radix` alone takes `%+1` for byte 1.
                let hex =
                    bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Secret {
        Secret::new("s3cret token")
    }

    #[test]
    fn a_correct_handshake_returns_the_challenge() {
        let q = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=s3cret%20token";
        let h = Handshake::from_query(q).unwrap();
        assert_eq!(h.verify(Some(&token())), Ok("1158201444"));
    }

    #[test]
    fn plus_decodes_to_space_and_order_does_not_matter() {
        let q = "hub.verify_token=s3cret+token&hub.challenge=abc%2Fdef&hub.mode=subscribe";
        let h = Handshake::from_query(q).unwrap();
        assert_eq!(h.verify(Some(&token())), Ok("abc/def"));
    }

    #[test]
    fn each_missing_parameter_is_named() {
        let cases = [
            ("hub.challenge=1&hub.verify_token=t", MODE),
            ("hub.mode=subscribe&hub.challenge=1", TOKEN),
            ("hub.mode=subscribe&hub.verify_token=t", CHALLENGE),
        ];
        for (q, missing) in cases {
            let err = Handshake::from_query(q).unwrap_err();
            assert_eq!(err, HandshakeError::Missing(missing));
            assert!(err.is_bad_request());
        }
        assert_eq!(Handshake::from_query(""), Err(HandshakeError::Missing(MODE)));
    }

    #[test]
    fn wrong_mode_and_wrong_token_are_refused() {
        let h = Handshake::from_query(
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=s3cret+token",
        )
        .unwrap();
        assert_eq!(h.verify(Some(&token())), Err(HandshakeError::WrongMode));
        let h = Handshake::from_query("hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope")
            .unwrap();
        assert_eq!(h.verify(Some(&token())), Err(HandshakeError::WrongToken));
        assert_eq!(h.verify(None), Err(HandshakeError::WrongToken));
        assert!(!HandshakeError::WrongToken.is_bad_request());
    }

    #[test]
    fn broken_escapes_are_malformed() {
        for q in ["hub.mode=subscribe&hub.challenge=%zz&hub.verify_token=t", "hub.challenge=%ff%fe"]
        {
            assert!(matches!(Handshake::from_query(q), Err(HandshakeError::Malformed(_))));
        }
        assert!(matches!(
            Handshake::from_query("hub.mode=subscribe&hub.challenge=1&hub.verify_token=%4"),
            Err(HandshakeError::Malformed(TOKEN))
        ));
    }

    #[test]
    fn a_sign_after_percent_is_not_an_escape() {
        // Found by the handshake fuzz target: `%+2` was read as the byte 2.
        for value in ["%+2", "%+F", "%-1", "%+", "%2+"] {
            let q = format!("hub.mode=subscribe&hub.challenge={value}&hub.verify_token=t");
            assert_eq!(Handshake::from_query(&q), Err(HandshakeError::Malformed(CHALLENGE)));
        }
    }

    #[test]
    fn the_first_of_repeated_parameters_counts() {
        let q = "hub.mode=subscribe&hub.mode=x&hub.challenge=1&hub.verify_token=s3cret+token";
        assert_eq!(Handshake::from_query(q).unwrap().verify(Some(&token())), Ok("1"));
    }
}
