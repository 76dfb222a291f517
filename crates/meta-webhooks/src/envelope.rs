//! The minimal shape check a signed delivery must pass before it is stored.
//!
//! A delivery is stored only if it is a JSON object with a string `object` and an array
//! `entry`. Everything inside the entries is the decoder's business later: unknown objects,
//! fields and kinds are stored and acknowledged, never rejected. The check reads the whole
//! document, so malformed or absurdly nested JSON is refused here rather than at decode time.
//!
//! [`crate::split`] reads a stored body through the same [`Root`], so the receiver and the
//! pipeline accept the same bodies and see the same `object`. A body naming `object` or
//! `entry` twice is refused: one JSON reader keeps the first, another the last, and such a
//! body has no single meaning.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::error::Category;
use serde_json::{Map, Number, Value};

/// What the receiver keeps from the envelope: the object type and the number of entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `page`, `instagram`, `whatsapp_business_account`, `user`, ...
    pub object: String,
    /// How many elements `entry` has.
    pub entries: usize,
}

/// Why a signed body is not a delivery.
///
/// The message says what is wrong and where, never a value read from the body: it is sent
/// back to the client, and the body may hold anything, a secret included.
#[derive(Debug, thiserror::Error)]
#[error("body is not a webhook delivery: {0}")]
pub struct EnvelopeError(String);

impl EnvelopeError {
    fn new(error: serde_json::Error) -> Self {
        match error.classify() {
            // serde_json's syntax messages are fixed texts with a position.
            Category::Syntax | Category::Eof => Self(error.to_string()),
            // A type error quotes the value it found.
            Category::Data | Category::Io => Self(format!(
                "expected a JSON object with a string `object` and an array `entry` \
                 at line {} column {}",
                error.line(),
                error.column()
            )),
        }
    }
}

impl Envelope {
    /// Checks that `body` is a JSON object with a string `object` and an array `entry`.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        serde_json::from_slice(body).map_err(EnvelopeError::new)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Root { object, entry } = Root::<EntryCount>::deserialize(deserializer)?;
        Ok(Envelope { object, entries: entry.0 })
    }
}

/// The two fields of a delivery, with `entry` read as `E`: a count here, the elements in
/// [`crate::split`]. Other fields are read and dropped. A NUL in `object` is read as U+FFFD,
/// as the decoder reads it, so that the name is storable as text.
pub(crate) struct Root<E> {
    pub(crate) object: String,
    pub(crate) entry: E,
}

impl<'de, E: Deserialize<'de>> Deserialize<'de> for Root<E> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RootVisitor(PhantomData))
    }
}

struct RootVisitor<E>(PhantomData<E>);

/// Counts the elements of `entry` without keeping them.
struct EntryCount(usize);

impl<'de> Deserialize<'de> for EntryCount {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = EntryCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<EntryCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<Skip>()?.is_some() {
                    n += 1;
                }
                Ok(EntryCount(n))
            }
        }
        deserializer.deserialize_seq(Count)
    }
}

/// Reads any JSON value and keeps nothing, like `IgnoredAny`, but through `deserialize_any`
/// so that serde_json's nesting limit (128) applies: `IgnoredAny` skips values iteratively
/// and would accept a body nested a million levels deep, which no decoder could read later.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            refuse_reserved(&key)?;
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

impl<'de, E: Deserialize<'de>> Visitor<'de> for RootVisitor<E> {
    type Value = Root<E>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with one string `object` and one array `entry`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Root<E>, A::Error> {
        let (mut object, mut entry) = (None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "object" if object.is_some() => return Err(de::Error::duplicate_field("object")),
                "entry" if entry.is_some() => return Err(de::Error::duplicate_field("entry")),
                "object" => object = Some(map.next_value::<String>()?),
                "entry" => entry = Some(map.next_value::<E>()?),
                _ => {
                    refuse_reserved(&key)?;
                    map.next_value::<Skip>()?;
                }
            }
        }
        let mut object: String = object.ok_or_else(|| de::Error::missing_field("object"))?;
        crate::event::replace_nul(&mut object);
        Ok(Root { object, entry: entry.ok_or_else(|| de::Error::missing_field("entry"))? })
    }
}

/// A JSON value as [`crate::split`] reads an entry: through a visitor of its own rather than
/// serde_json's `Value` one, which with the `raw_value` feature on reads an object holding
/// [`RESERVED_KEY`] as an embedded raw value. That key is refused, as the envelope check
/// refuses it, and each NUL in a string is read as U+FFFD (see [`crate::split`]).
pub(crate) struct Plain(pub(crate) Value);

impl<'de> Deserialize<'de> for Plain {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PlainVisitor)
    }
}

struct PlainVisitor;

impl<'de> Visitor<'de> for PlainVisitor {
    type Value = Plain;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Plain, E> {
        Ok(Plain(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Plain, E> {
        Ok(Plain(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Plain, E> {
        Ok(Plain(Value::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Plain, E> {
        // JSON has no infinities or NaN, so this is always a number.
        Ok(Plain(Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Plain, E> {
        self.visit_string(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, mut v: String) -> Result<Plain, E> {
        crate::event::replace_nul(&mut v);
        Ok(Plain(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Plain, E> {
        Ok(Plain(Value::Null))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Plain, A::Error> {
        let mut items = Vec::new();
        while let Some(Plain(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Plain(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Plain, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            refuse_reserved(&key)?;
            let Plain(value) = map.next_value()?;
            // A key given twice keeps its last value, as serde_json's own reader does.
            fields.insert(key, value);
        }
        Ok(Plain(Value::Object(fields)))
    }
}

/// The key serde_json gives a meaning of its own when its `raw_value` feature is on (axum turns
/// it on in the service): an object holding it is read as an embedded raw value, so a body
/// with it as an ordinary key passes a key-by-key check and then fails to decode. Meta sends
/// no such key; a body with it anywhere is refused here rather than stored and lost later.
pub(crate) const RESERVED_KEY: &str = "$serde_json::private::RawValue";

fn refuse_reserved<E: de::Error>(key: &str) -> Result<(), E> {
    if key == RESERVED_KEY {
        return Err(E::custom("a key reserved by the JSON reader"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_gives_its_object_and_entry_count() {
        let e = Envelope::parse(br#"{"entry":[{},{"id":"1"}],"object":"page","x":[1,{"y":2}]}"#);
        assert_eq!(e.unwrap(), Envelope { object: "page".into(), entries: 2 });
    }

    #[test]
    fn unknown_objects_and_empty_entries_are_deliveries() {
        let e = Envelope::parse(br#"{"object":"permissions","entry":[]}"#).unwrap();
        assert_eq!((e.object.as_str(), e.entries), ("permissions", 0));
    }

    #[test]
    fn escaped_object_names_are_decoded() {
        let e = Envelope::parse(br#"{"object":"p\u0061ge","entry":[]}"#).unwrap();
        assert_eq!(e.object, "page");
    }

    #[test]
    fn a_nul_in_object_is_read_as_the_replacement_character() {
        let e = Envelope::parse(br#"{"object":"page\u0000","entry":[]}"#).unwrap();
        assert_eq!(e.object, "page\u{fffd}");
    }

    #[test]
    fn other_shapes_are_refused() {
        for body in [
            &br#""#[..],
            b"null",
            b"[]",
            br#"["page",[]]"#,
            br#"{"object":"page"}"#,
            br#"{"entry":[]}"#,
            br#"{"object":1,"entry":[]}"#,
            br#"{"object":"page","entry":{}}"#,
            br#"{"object":"page","entry":[]} trailing"#,
            br#"{"object":"page","entry":[],}"#,
            b"{\"object\":\"p\xffge\",\"entry\":[]}",
            br#"{"object":"\ud800","entry":[]}"#,
            br#"{"object":"page","entry":[],"object":"user"}"#,
            br#"{"object":"page","entry":[],"entry":[{}]}"#,
        ] {
            assert!(Envelope::parse(body).is_err(), "accepted {:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn refusals_say_where_but_quote_nothing_from_the_body() {
        for body in [
            &br#"{"object":"page","entry":"sesame-1"}"#[..],
            br#""sesame-2""#,
            br#"{"entry":"sesame-3","object":"page"}"#,
            br#"{"object":"page","entry":["sesame-4"#,
            br#"{"object":"page","entry":[]} "sesame-5""#,
        ] {
            let message = Envelope::parse(body).unwrap_err().to_string();
            assert!(message.contains("at line 1 column"), "{message}");
            assert!(!message.contains("sesame"), "{message}");
        }
    }

    #[test]
    fn the_json_readers_reserved_key_is_refused_anywhere() {
        // Found by the split fuzz target: with serde_json's raw_value feature on, this key
        // made a stored body fail to decode.
        for body in [
            &br#"{"object":"page","entry":[{"x":{"$serde_json::private::RawValue":"1","y":2}}]}"#[..],
            br#"{"object":"page","entry":[],"$serde_json::private::RawValue":"1"}"#,
            br#"{"object":"page","entry":[{"$serde_json::private::RawValue":"1"}]}"#,
        ] {
            assert!(Envelope::parse(body).is_err(), "{}", String::from_utf8_lossy(body));
            assert!(crate::split(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let depth = 100_000;
        let body =
            format!(r#"{{"object":"page","entry":[{}{}]}}"#, "[".repeat(depth), "]".repeat(depth));
        assert!(Envelope::parse(body.as_bytes()).is_err());
    }
}
