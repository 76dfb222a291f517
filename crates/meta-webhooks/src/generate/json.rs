//! JSON that keeps its keys in the order they were written.
//!
//! `serde_json::Value` sorts object keys (this workspace builds serde_json without
//! `preserve_order`, and turning it on would change key order for every crate). Meta writes
//! keys in its own order (`object` before `entry`, `sender` before `recipient`), and a
//! simulated body should read like a real one, so the generator builds [`Json`] instead.
//! Parsing into [`Json`] also keeps the order, which is what lets a test re-serialise a real
//! Meta body and get its exact bytes back.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};

/// A JSON value whose objects keep their keys in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, integer or float.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in the order written.
    Object(Vec<(String, Json)>),
}

/// Builds a [`Json::Object`] from `"key" => value` pairs, in order. A value of type
/// `Option` that is `None` leaves its key out, as Meta omits absent fields.
macro_rules! obj {
    ($($key:literal => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut fields: Vec<(String, $crate::generate::json::Json)> = Vec::new();
        $($crate::generate::json::Field::put_field($value, $key, &mut fields);)*
        $crate::generate::json::Json::Object(fields)
    }};
}
pub(crate) use obj;

/// How a value goes into an object built by `obj!`: present, or left out when `None`.
pub(crate) trait Field {
    fn put_field(self, key: &str, fields: &mut Vec<(String, Json)>);
}

impl<T: Into<Json>> Field for T {
    fn put_field(self, key: &str, fields: &mut Vec<(String, Json)>) {
        fields.push((key.to_owned(), self.into()));
    }
}

/// An optional field: `None` is omitted rather than written as `null`.
pub(crate) struct Opt<T>(pub Option<T>);

impl<T: Into<Json>> Field for Opt<T> {
    fn put_field(self, key: &str, fields: &mut Vec<(String, Json)>) {
        if let Some(value) = self.0 {
            fields.push((key.to_owned(), value.into()));
        }
    }
}

impl Json {
    /// The value of `key` in an object, if this is one and has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside, if this is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (whose objects sort their keys).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("every Json is representable as a Value")
    }
}

impl fmt::Display for Json {
    /// Compact JSON with raw UTF-8; see `meta_escape` for the bytes Meta would send.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::String(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::String(s)
    }
}

impl From<&String> for Json {
    fn from(s: &String) -> Self {
        Json::String(s.clone())
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Json::Number(n.into())
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Json::Number(n.into())
    }
}

impl From<f64> for Json {
    /// A float; a value JSON cannot hold (NaN, infinity) becomes `null`.
    fn from(x: f64) -> Self {
        Number::from_f64(x).map_or(Json::Null, Json::Number)
    }
}

impl From<Vec<Json>> for Json {
    fn from(items: Vec<Json>) -> Self {
        Json::Array(items)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, x: f64) -> Result<Json, E> {
        Ok(x.into())
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(s.into())
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(s.into())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_the_order_they_were_built_in() {
        let built = obj! {"object" => "page", "entry" => vec![], "absent" => Opt::<i64>(None)};
        assert_eq!(built.to_string(), r#"{"object":"page","entry":[]}"#);
        assert_eq!(built.to_value().to_string(), r#"{"entry":[],"object":"page"}"#);
    }

    #[test]
    fn parsing_keeps_key_order_and_numbers() {
        let text = r#"{"z":1,"a":[true,null,-2,1.5,"x"],"m":{"y":18446744073709551615}}"#;
        let parsed: Json = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.to_string(), text);
        assert_eq!(parsed.get("z").and_then(Json::as_i64), Some(1));
    }
}
