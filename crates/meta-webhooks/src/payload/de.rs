//! Tolerant readers for the scalars Meta spells in more than one way.
//!
//! Ids arrive as strings in real payloads but as numbers in some events (`app_id` in echoes,
//! `sticker_id`, old feed `sender_id`, WhatsApp `message_template_id`). Timestamps arrive as
//! numbers or strings, in milliseconds or in seconds. Each reader here turns one
//! [`serde_json::Value`] into the normal form and never fails: a value it cannot read becomes
//! `None` (or `false`), so one odd field never costs the rest of an event. The `serde` adapters
//! at the bottom wrap the same functions for `#[serde(deserialize_with = "...")]`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Timestamps below this are seconds, at or above it milliseconds (10^12 ms is Sept. 2001).
pub const MILLIS_THRESHOLD: i64 = 1_000_000_000_000;

/// Reads an id or other opaque token: a string as is, an integer in decimal.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads an integer from a number or a numeric string; fractions are truncated.
pub fn int_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(trunc)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(trunc))
        }
        _ => None,
    }
}

/// Reads a Unix time in seconds or milliseconds, as a number or a string, as UTC milliseconds.
pub fn millis_of(value: &Value) -> Option<i64> {
    int_of(value).map(to_millis)
}

/// Normalises a Unix time to milliseconds: values below 10^12 are taken as seconds.
pub fn to_millis(t: i64) -> i64 {
    if t.unsigned_abs() < MILLIS_THRESHOLD.unsigned_abs() { t.saturating_mul(1000) } else { t }
}

/// Reads a flag: `true`, `"true"` and `1` are true, anything else false.
pub fn flag_of(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn trunc(f: f64) -> i64 {
    // `as` saturates at the bounds of i64, which is what an absurd timestamp deserves.
    f.trunc() as i64
}

/// `deserialize_with` adapter for [`text_of`].
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(text_of(&Value::deserialize(d)?))
}

/// `deserialize_with` adapter for [`int_of`].
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(int_of(&Value::deserialize(d)?))
}

/// `deserialize_with` adapter for [`millis_of`].
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(millis_of(&Value::deserialize(d)?))
}

/// `deserialize_with` adapter for [`flag_of`].
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(flag_of(&Value::deserialize(d)?))
}

/// `deserialize_with` adapter for a list of ids; a lone id counts as a list of one and
/// elements that are not ids are skipped.
pub fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.iter().filter_map(text_of).collect(),
        other => text_of(&other).into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_read_from_strings_and_numbers() {
        assert_eq!(text_of(&json!("247349599062786")).as_deref(), Some("247349599062786"));
        assert_eq!(text_of(&json!(276959789397329_u64)).as_deref(), Some("276959789397329"));
        assert_eq!(text_of(&json!(u64::MAX)).as_deref(), Some("18446744073709551615"));
        assert_eq!(text_of(&json!(null)), None);
        assert_eq!(text_of(&json!({"id": "1"})), None);
    }

    #[test]
    fn timestamps_in_seconds_become_milliseconds() {
        assert_eq!(millis_of(&json!(1701599111)), Some(1_701_599_111_000));
        assert_eq!(millis_of(&json!("1527459824")), Some(1_527_459_824_000));
        assert_eq!(millis_of(&json!(" 1749416383 ")), Some(1_749_416_383_000));
    }

    #[test]
    fn timestamps_in_milliseconds_are_kept() {
        assert_eq!(millis_of(&json!(1492541234394_i64)), Some(1_492_541_234_394));
        assert_eq!(millis_of(&json!("1762020315339")), Some(1_762_020_315_339));
        assert_eq!(millis_of(&json!(1.7620203153e12)), Some(1_762_020_315_300));
        assert_eq!(millis_of(&json!(MILLIS_THRESHOLD)), Some(MILLIS_THRESHOLD));
    }

    #[test]
    fn unreadable_timestamps_are_none() {
        for v in
            [json!("2025-03-22T18:20:04+0000"), json!(""), json!(null), json!(true), json!([1])]
        {
            assert_eq!(millis_of(&v), None, "{v}");
        }
        assert_eq!(millis_of(&json!(1e300)), Some(i64::MAX));
    }

    #[test]
    fn flags_accept_the_usual_spellings() {
        assert!(flag_of(&json!(true)) && flag_of(&json!("true")) && flag_of(&json!(1)));
        assert!(!flag_of(&json!(false)) && !flag_of(&json!(null)) && !flag_of(&json!(0)));
    }

    #[test]
    fn adapters_never_fail_on_odd_shapes() {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Probe {
            #[serde(deserialize_with = "text")]
            id: Option<String>,
            #[serde(deserialize_with = "millis")]
            at: Option<i64>,
            #[serde(deserialize_with = "int")]
            n: Option<i64>,
            #[serde(deserialize_with = "flag")]
            on: bool,
            #[serde(deserialize_with = "texts")]
            ids: Vec<String>,
        }
        let p: Probe = serde_json::from_value(json!(
            {"id": 12, "at": "1454119029", "n": "3", "on": "true", "ids": ["a", 2, {}]}
        ))
        .unwrap();
        assert_eq!(p.id.as_deref(), Some("12"));
        assert_eq!((p.at, p.n, p.on), (Some(1_454_119_029_000), Some(3), true));
        assert_eq!(p.ids, ["a", "2"]);
        let p: Probe =
            serde_json::from_value(json!({"id": {}, "at": [], "n": null, "on": {}, "ids": "m"}))
                .unwrap();
        assert_eq!((p.id, p.at, p.n, p.on), (None, None, None, false));
        assert_eq!(p.ids, ["m"]);
    }
}
