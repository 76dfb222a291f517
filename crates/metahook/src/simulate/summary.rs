//! The report of a run: what was sent, what was acknowledged, what failed and why, and how
//! fast the endpoint answered. Printed for people, or as JSON for scripts and benchmarks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::send::Report;

/// The summary of a run, as printed.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Where the deliveries went.
    pub url: String,
    /// What was asked for, in words.
    pub traffic: String,
    /// The seed, to repeat the run.
    pub seed: u64,
    /// Deliveries (POST bodies) sent, redeliveries included.
    pub sent: u64,
    /// Events in those deliveries.
    pub events: u64,
    /// Deliveries that were a second sending of an earlier one.
    pub redeliveries: u64,
    /// Deliveries answered 200, at the first attempt or a retry.
    pub acknowledged: u64,
    /// Deliveries never answered 200.
    pub not_acknowledged: u64,
    /// Deliveries not acknowledged, by the outcome of their last attempt (`503`, `timeout`).
    pub failed: BTreeMap<String, u64>,
    /// Requests made, retries included.
    pub attempts: u64,
    /// Requests made after a failed one.
    pub retries: u64,
    /// Every attempt's outcome, counted.
    pub responses: BTreeMap<String, u64>,
    /// Latency of attempts in milliseconds: p50, p90, p99, max.
    pub latency_ms: Latency,
    /// Wall time of the run, in milliseconds.
    pub elapsed_ms: u64,
    /// Attempts per second over the run.
    pub requests_per_second: f64,
    /// The first connection error, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Latency percentiles, nearest rank, in milliseconds.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest attempt.
    pub max: f64,
}

impl Latency {
    /// Percentiles of `samples` (empty: all zero).
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted: Vec<Duration> = samples.to_vec();
        sorted.sort_unstable();
        let at = |p: f64| {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
            round_ms(sorted[rank.min(sorted.len()) - 1])
        };
        Self { p50: at(50.0), p90: at(90.0), p99: at(99.0), max: at(100.0) }
    }
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

impl Summary {
    /// Sums up `report`.
    pub fn new(url: &str, traffic: String, seed: u64, report: &Report) -> Self {
        let mut failed = BTreeMap::new();
        let (mut events, mut redeliveries, mut acknowledged) = (0, 0, 0);
        for (n, redelivery, outcome) in &report.deliveries {
            events += *n as u64;
            redeliveries += u64::from(*redelivery);
            if outcome.acknowledged() {
                acknowledged += 1;
            } else {
                *failed.entry(outcome.label()).or_insert(0) += 1;
            }
        }
        let mut responses = BTreeMap::new();
        for (outcome, _) in &report.attempts {
            *responses.entry(outcome.label()).or_insert(0) += 1;
        }
        let latencies: Vec<Duration> = report.attempts.iter().map(|(_, d)| *d).collect();
        let sent = report.deliveries.len() as u64;
        let attempts = report.attempts.len() as u64;
        let seconds = report.elapsed.as_secs_f64();
        Self {
            url: url.to_owned(),
            traffic,
            seed,
            sent,
            events,
            redeliveries,
            acknowledged,
            not_acknowledged: sent - acknowledged,
            failed,
            attempts,
            retries: attempts.saturating_sub(sent),
            responses,
            latency_ms: Latency::of(&latencies),
            elapsed_ms: report.elapsed.as_millis() as u64,
            requests_per_second: if seconds > 0.0 {
                (attempts as f64 / seconds * 10.0).round() / 10.0
            } else {
                0.0
            },
            error: report.first_error.clone(),
        }
    }

    /// Prints to stdout, as text or JSON.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
        } else {
            print!("{}", self.text());
        }
        Ok(())
    }

    fn text(&self) -> String {
        let counts = |map: &BTreeMap<String, u64>| {
            map.iter().map(|(k, v)| format!("{k} x{v}")).collect::<Vec<_>>().join(", ")
        };
        let l = &self.latency_ms;
        let mut text = format!(
            "sent          {} deliveries, {} events ({} redeliveries) to {}\n\
             traffic       {} (seed {})\n\
             acknowledged  {}\n",
            self.sent,
            self.events,
            self.redeliveries,
            self.url,
            self.traffic,
            self.seed,
            self.acknowledged,
        );
        if self.not_acknowledged > 0 {
            text +=
                &format!("failed        {} ({})\n", self.not_acknowledged, counts(&self.failed));
        } else {
            text += "failed        0\n";
        }
        text += &format!(
            "attempts      {} ({} retries): {}\n\
             latency       p50 {} ms, p90 {} ms, p99 {} ms, max {} ms\n\
             elapsed       {:.2} s, {} requests/s\n",
            self.attempts,
            self.retries,
            counts(&self.responses),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            self.elapsed_ms as f64 / 1000.0,
            self.requests_per_second,
        );
        if let Some(error) = &self.error {
            text += &format!("error         {error}\n");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::send::Outcome;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&samples);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Latency::of(&[]), Latency::default());
        assert_eq!(Latency::of(&[Duration::from_micros(1500)]).p50, 1.5);
    }

    #[test]
    fn failures_are_counted_by_their_last_outcome() {
        let report = Report {
            elapsed: Duration::from_secs(1),
            deliveries: vec![
                (2, false, Outcome::Status(200)),
                (1, true, Outcome::Status(503)),
                (1, false, Outcome::Unreachable),
            ],
            attempts: vec![
                (Outcome::Status(503), Duration::from_millis(1)),
                (Outcome::Status(200), Duration::from_millis(1)),
                (Outcome::Status(503), Duration::from_millis(1)),
                (Outcome::Unreachable, Duration::from_millis(1)),
            ],
            first_error: None,
        };
        let s = Summary::new("http://x", "t".into(), 1, &report);
        assert_eq!((s.sent, s.events, s.redeliveries, s.acknowledged), (3, 4, 1, 1));
        assert_eq!((s.attempts, s.retries, s.not_acknowledged), (4, 1, 2));
        assert_eq!(s.failed, BTreeMap::from([("503".into(), 1), ("unreachable".into(), 1)]));
        assert_eq!(s.responses["503"], 2);
        assert!(s.text().contains("failed        2 (503 x1, unreachable x1)"));
    }
}
