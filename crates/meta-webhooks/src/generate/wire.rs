//! What Meta puts on the wire: the body's exact bytes and the headers sent with them.
//!
//! Meta signs and sends compact JSON in which every character outside printable ASCII is a
//! `\uXXXX` escape with lowercase hex digits, a character above U+FFFF being a UTF-16
//! surrogate pair (`🥰` is `\ud83e\udd70`). That is exactly what Python's
//! `json.dumps(value, separators=(",", ":"), ensure_ascii=True)` writes, which is how the real
//! signed Instagram capture in the fixtures was reproduced byte for byte. `/` is not escaped;
//! DEL (U+007F) is, as Python does. serde_json writes the rest of the format the same way
//! (`\"`, `\\`, `\n`, `\u001f` for other control characters), so only string fragments need
//! a formatter of our own. The headers are the documented ones plus those seen in captures:
//! both signatures keyed with the app secret, and Meta's user agents.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

use crate::signature::{
    SIGNATURE_256_HEADER, SIGNATURE_SHA1_HEADER, Secret, sign_sha1, sign_sha256,
};

/// The content type of every notification.
pub const CONTENT_TYPE: &str = "application/json";
/// The user agent of notification POSTs.
pub const POST_USER_AGENT: &str = "facebookexternalua";
/// The user agent of the verification handshake's GET.
pub const HANDSHAKE_USER_AGENT: &str = "facebookplatform/1.0 (+http://developers.facebook.com)";

/// The headers Meta sends with `body` signed by `secret`: content type, user agent,
/// `X-Hub-Signature-256` and the legacy `X-Hub-Signature`, names in lowercase.
pub fn signed_headers(secret: &Secret, body: &[u8]) -> [(&'static str, String); 4] {
    [
        ("content-type", CONTENT_TYPE.to_owned()),
        ("user-agent", POST_USER_AGENT.to_owned()),
        (SIGNATURE_256_HEADER, sign_sha256(secret, body)),
        (SIGNATURE_SHA1_HEADER, sign_sha1(secret, body)),
    ]
}

/// Serialises `value` as Meta writes a webhook body. Keys come out in the order `value`
/// serialises them: as built for [`super::Json`], sorted for a `serde_json::Value`.
pub fn meta_escape<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = Serializer::with_formatter(&mut out, MetaFormatter);
    value.serialize(&mut serializer).expect("serialising JSON into memory cannot fail");
    out
}

/// Compact output (the trait's defaults), with non-ASCII and DEL in strings written as
/// lowercase `\uXXXX`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetaFormatter;

impl Formatter for MetaFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Runs of plain ASCII are copied as they are; serde_json has already split out the
        // characters it escapes itself (quote, backslash, control characters).
        let mut plain = 0;
        for (at, c) in fragment.char_indices() {
            if (c as u32) < 0x7f {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[plain..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            plain = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn escaped(value: &serde_json::Value) -> String {
        String::from_utf8(meta_escape(value)).unwrap()
    }

    #[test]
    fn the_documented_example_is_escaped_in_lowercase() {
        assert_eq!(escaped(&json!("äöå")), r#""\u00e4\u00f6\u00e5""#);
    }

    #[test]
    fn astral_characters_become_surrogate_pairs() {
        assert_eq!(escaped(&json!("amor 🥰")), r#""amor \ud83e\udd70""#);
        assert_eq!(escaped(&json!("🇹🇷")), r#""\ud83c\uddf9\ud83c\uddf7""#);
    }

    #[test]
    fn json_escapes_and_ascii_are_written_as_python_writes_them() {
        let value = json!({"t": "a\"b\\c\nd\u{1f}e/f\u{7f}<>&%@"});
        assert_eq!(escaped(&value), r#"{"t":"a\"b\\c\nd\u001fe/f\u007f<>&%@"}"#);
    }

    #[test]
    fn turkish_and_accented_latin_are_escaped_per_character() {
        assert_eq!(
            escaped(&json!(["ş", "İ", "ğ", "é"])),
            r#"["\u015f","\u0130","\u011f","\u00e9"]"#
        );
    }

    #[test]
    fn output_is_pure_ascii() {
        let body = meta_escape(&json!({"k": "Çok güzel 👍🏽 ありがとう"}));
        assert!(body.is_ascii());
        let back: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(back["k"], "Çok güzel 👍🏽 ありがとう");
    }
}
