//! The types the pipeline and the store exchange: stored work to pick up, and a batch of
//! results to record in one commit.

use meta_webhooks::event::Event;

use super::DeliveryId;
use crate::domain::Fact;

/// A delivery not yet split into events.
#[derive(Debug, Clone)]
pub struct UnsplitDelivery {
    pub id: DeliveryId,
    pub received_at: i64,
    pub body: Vec<u8>,
}

/// An event whose application failed earlier and is due again (or was replayed).
#[derive(Debug, Clone)]
pub struct DueEvent {
    pub id: i64,
    pub delivery_id: DeliveryId,
    pub platform: String,
    pub key: String,
    pub attempts: u32,
}

/// An event to apply, with the facts it establishes (planned before the commit).
#[derive(Debug, Clone)]
pub struct Planned {
    pub event: Event,
    pub facts: Vec<Fact>,
}

/// One commit's worth of pipeline work.
#[derive(Debug, Default)]
pub struct Batch {
    /// Deliveries split now: their events are inserted once per key, and the new ones applied.
    pub split: Vec<(DeliveryId, Vec<Planned>)>,
    /// Stored events applied again: `(event id, attempts so far, the event)`.
    pub retries: Vec<(i64, u32, Planned)>,
    /// Events that could not be found in their delivery any more, by id: parked as dead.
    pub lost: Vec<(i64, u32)>,
}

/// What happened to one event in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    /// Already stored under the same key: counted, not applied again.
    Duplicate,
    /// Failed; retried later unless `dead`.
    Failed {
        dead: bool,
    },
}

/// One line of a batch's report, for metrics.
#[derive(Debug, Clone)]
pub struct Applied {
    pub platform: String,
    pub kind: &'static str,
    pub outcome: Outcome,
    pub seconds: f64,
}

impl Applied {
    /// The report line of `planned`.
    pub fn new(planned: &Planned, outcome: Outcome, seconds: f64) -> Self {
        let e = &planned.event;
        Self { platform: e.platform.as_str().to_owned(), kind: e.kind.as_str(), outcome, seconds }
    }
}

/// When a failed event is tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before an event is dead.
    pub max_attempts: u32,
    /// Delay after the first failure, in milliseconds; doubled after each one.
    pub base_ms: u64,
    /// Longest delay, in milliseconds.
    pub max_ms: u64,
}

impl RetryPolicy {
    /// Delay before attempt `attempts + 1`: exponential, capped, with jitter in [half, full].
    pub fn delay_ms(&self, attempts: u32, random: u64) -> u64 {
        let exponential = self.base_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(40));
        let delay = exponential.min(self.max_ms).max(1);
        delay / 2 + random % (delay / 2 + 1)
    }
}

/// Random numbers for retry jitter (splitmix64): not for anything secret.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn draw(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_stop_at_the_cap() {
        let policy = RetryPolicy { max_attempts: 10, base_ms: 1000, max_ms: 60_000 };
        for random in [0, 1, 499, 500, u64::MAX] {
            let d1 = policy.delay_ms(1, random);
            let d3 = policy.delay_ms(3, random);
            let d20 = policy.delay_ms(20, random);
            assert!((500..=1000).contains(&d1), "{d1}");
            assert!((2000..=4000).contains(&d3), "{d3}");
            assert!((30_000..=60_000).contains(&d20), "{d20}");
        }
    }
}
