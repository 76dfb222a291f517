//! Wall-clock helpers: the store keeps unix milliseconds, the API shows RFC 3339.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// True at most once per wall-clock second for each `last`, which remembers the second it
/// last answered true: for log lines that a flood would otherwise repeat thousands of times.
pub fn first_this_second(last: &AtomicI64) -> bool {
    let second = now_ms() / 1000;
    last.swap(second, Ordering::Relaxed) != second
}

/// Formats unix milliseconds as RFC 3339 in UTC, e.g. `2026-12-03T14:00:27.123Z`.
pub fn rfc3339(ms: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok()?;
    t.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn milliseconds_format_as_utc() {
        assert_eq!(super::rfc3339(1_480_279_487_271).as_deref(), Some("2016-11-27T20:44:47.271Z"));
    }
}
