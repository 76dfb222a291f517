//! Natural keys, and the stable hash behind keys for events that have no natural id.
//!
//! A key is the event's kind followed by the values that name the event, joined by `:`
//! (`message:{user}:{mid}`). A part may itself contain `:` (old Messenger mids look like
//! `mid.1457764197618:41d1...`), so `%` and `:` inside a part are percent-escaped: two keys
//! are equal exactly when their kinds and parts are equal. A key longer than
//! [`MAX_KEY_BYTES`] is cut and ends with a digest of the whole ([`bounded`]).
//!
//! The hash is FNV-1a 64 over a canonical encoding of JSON values written here rather than
//! over `serde_json::to_string`: the serialised order of object keys follows the input when
//! any crate in the build enables serde_json's `preserve_order` feature, and a key must not
//! change with a feature flag. The encoding sorts object keys and length-prefixes strings
//! and containers, so distinct values encode to distinct byte strings.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Builds a key one part at a time.
#[derive(Debug, Clone)]
pub(crate) struct Key(String);

impl Key {
    /// Starts a key with the event kind (or another fixed label).
    pub(crate) fn new(kind: &str) -> Self {
        Key(kind.to_owned())
    }

    /// Appends one part, escaped.
    pub(crate) fn part(mut self, part: impl AsRef<str>) -> Self {
        self.0.push(':');
        for c in part.as_ref().chars() {
            match c {
                '%' => self.0.push_str("%25"),
                ':' => self.0.push_str("%3A"),
                c => self.0.push(c),
            }
        }
        self
    }

    /// Appends a part that may be missing; a missing part is empty.
    pub(crate) fn opt(self, part: Option<&str>) -> Self {
        self.part(part.unwrap_or_default())
    }

    /// Appends a part only if it is there. Use it for a last part, or where the parts after
    /// it cannot be mistaken for it.
    pub(crate) fn some(self, part: Option<&str>) -> Self {
        match part {
            Some(part) => self.part(part),
            None => self,
        }
    }

    /// Appends a number that may be missing.
    pub(crate) fn num(self, part: Option<i64>) -> Self {
        self.part(part.map(|n| n.to_string()).unwrap_or_default())
    }

    /// Appends the hash of some values as 16 hex digits.
    pub(crate) fn hash(self, values: &[&Value]) -> Self {
        self.part(format!("{:016x}", stable_hash(values)))
    }

    /// The finished key.
    pub(crate) fn finish(self) -> String {
        bounded(self.0)
    }
}

/// Longest key kept whole, in bytes. No natural key comes near it; a longer one (from an id
/// nobody would issue) must still fit a database index, and PostgreSQL's stop near 2.7 KB.
pub(crate) const MAX_KEY_BYTES: usize = 512;

/// `text` itself when it is at most [`MAX_KEY_BYTES`] long; else its start, `~` and 32 hex
/// digits of the SHA-256 of the whole, so that distinct texts stay distinct.
pub(crate) fn bounded(text: String) -> String {
    if text.len() <= MAX_KEY_BYTES {
        return text;
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut end = MAX_KEY_BYTES - 33;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}~{}", &text[..end], hex::encode(&digest[..16]))
}

/// FNV-1a 64 of the canonical encoding of `values`, in order.
pub(crate) fn stable_hash(values: &[&Value]) -> u64 {
    let mut fnv = Fnv::new();
    fnv.len(values.len());
    for value in values {
        fnv.value(value);
    }
    fnv.0
}

struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv(Self::OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(Self::PRIME);
        }
    }

    fn len(&mut self, n: usize) {
        self.bytes(&(n as u64).to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes(s.as_bytes());
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.bytes(b"n"),
            Value::Bool(b) => self.bytes(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                self.bytes(b"#");
                self.str(&n.to_string());
            }
            Value::String(s) => {
                self.bytes(b"s");
                self.str(s);
            }
            Value::Array(items) => {
                self.bytes(b"[");
                self.len(items.len());
                items.iter().for_each(|item| self.value(item));
            }
            Value::Object(map) => {
                self.bytes(b"{");
                self.len(map.len());
                let mut fields: Vec<_> = map.iter().collect();
                fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (name, item) in fields {
                    self.str(name);
                    self.value(item);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parts_are_joined_and_escaped() {
        let key = Key::new("message").part("5678").part("mid.1457764197618:41d1%").finish();
        assert_eq!(key, "message:5678:mid.1457764197618%3A41d1%25");
        let key = Key::new("delivery").opt(None).num(Some(12)).num(None).finish();
        assert_eq!(key, "delivery::12:");
    }

    #[test]
    fn a_colon_inside_a_part_cannot_forge_another_key() {
        let a = Key::new("reaction").part("m:1").part("u").finish();
        let b = Key::new("reaction").part("m").part("1:u").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn a_key_too_long_to_index_is_cut_and_stays_distinct() {
        let short = Key::new("message").part("u").part("m").finish();
        assert_eq!(short, "message:u:m");
        let long = |last: &str| Key::new("message").part("é".repeat(400)).part(last).finish();
        let (a, b) = (long("1"), long("2"));
        assert!(a.len() <= MAX_KEY_BYTES && b.len() <= MAX_KEY_BYTES, "{}", a.len());
        assert_ne!(a, b);
        assert_eq!(a, long("1"));
        assert!(a.starts_with("message:éé"));
    }

    #[test]
    fn the_hash_ignores_key_order_and_whitespace() {
        let a: Value =
            serde_json::from_str(r#"{"a":1,"b":[true,null,"x"],"c":{"d":2.5}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{ "c": {"d": 2.5}, "b": [true, null, "x"], "a": 1 }"#).unwrap();
        assert_eq!(stable_hash(&[&a]), stable_hash(&[&b]));
    }

    #[test]
    fn the_hash_is_a_fixed_function() {
        // Keys are stored; a change to the encoding would silently break dedupe across an
        // upgrade, so the value is pinned.
        assert_eq!(stable_hash(&[]), 0xa8c7_f832_281a_39c5);
        assert_eq!(stable_hash(&[&json!({"n": 1, "mid": "m_1"})]), 0x27c9_9bee_d495_a723);
    }

    #[test]
    fn the_hash_tells_apart_values_that_print_alike() {
        let pairs = [
            (json!("1"), json!(1)),
            (json!(["ab", "c"]), json!(["a", "bc"])),
            (json!({"a": "b"}), json!(["a", "b"])),
            (json!([]), json!({})),
            (json!(null), json!("n")),
        ];
        for (a, b) in pairs {
            assert_ne!(stable_hash(&[&a]), stable_hash(&[&b]), "{a} vs {b}");
        }
        assert_ne!(stable_hash(&[&json!(1), &json!(2)]), stable_hash(&[&json!([1, 2])]));
    }
}
