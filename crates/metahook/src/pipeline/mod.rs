//! Workers that turn stored deliveries into applied events.
//!
//! One [`Pipeline::step`] reads deliveries not yet split and events due for another attempt,
//! decodes and plans them outside any lock, then records the whole batch in one commit: each
//! new event is inserted once per natural key (a duplicate is counted, not applied), and
//! each event is applied in its own savepoint, so a failing one is retried with exponential
//! backoff and jitter while the others are applied. After `max_attempts` it is dead until
//! replayed. Applying is idempotent, so replaying is always safe.

mod replay;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meta_webhooks::event::{Event, split};
use tokio::sync::{Notify, watch};

pub use replay::ReplayFilter;

use crate::clock;
use crate::domain;
use crate::inbox::Crowding;
use crate::metrics::{EventLabels, Metrics};
use crate::store::work::{Applied, Batch, Outcome, Planned, RetryPolicy};
use crate::store::{DeliveryId, Store, StoreError};

/// How much one step takes on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most deliveries split per step.
    pub deliveries: usize,
    /// Events a step aims at: fewer deliveries are claimed when they hold many events, so
    /// that one commit stays short (on SQLite the inbox waits for it).
    pub events: usize,
    /// Failed events retried per step.
    pub retries: usize,
    /// How long work claimed by a step stays reserved for this instance: longer than any step
    /// takes, short enough that another instance soon takes over the work of a dead one.
    pub lease_ms: i64,
}

/// Longest rest between two steps while giving way to requests.
const LONGEST_REST: Duration = Duration::from_secs(1);

/// How often a resting pipeline checks whether the crowd has thinned.
const REST_SLICE: Duration = Duration::from_millis(10);

/// How the pipeline gives way to requests. While requests crowd the inbox (see [`Crowding`]),
/// they are waiting for this machine's cores and its store, and whatever the pipeline does
/// meanwhile makes them wait longer, however low its scheduling priority: the backlog can
/// wait instead, and is applied when the crowd thins. So after each step the pipeline rests
/// `ratio` times as long as the step took, unless the oldest pending delivery has waited
/// `max_lag_ms` or more: from then on the backlog is as urgent as the requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Yielding {
    /// Rest per unit of work; 0 never rests.
    pub ratio: u32,
    /// Average deliveries per inbox commit from which the inbox counts as crowded.
    pub crowded_batch: usize,
    /// Lag past which the pipeline no longer rests, in milliseconds.
    pub max_lag_ms: i64,
}

impl Yielding {
    /// The rest after a step that took `step`, given whether the inbox is `crowded` and the
    /// lag last observed.
    fn rest(&self, crowded: bool, lag_ms: i64, step: Duration) -> Option<Duration> {
        let resting = self.ratio > 0 && crowded && lag_ms < self.max_lag_ms;
        resting.then(|| step.saturating_mul(self.ratio).min(LONGEST_REST))
    }
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    pub deliveries: usize,
    pub processed: usize,
    pub duplicates: usize,
    pub failed: usize,
    pub dead: usize,
}

impl StepReport {
    /// Whether the step found anything to do.
    pub fn is_idle(&self) -> bool {
        self.deliveries == 0 && self.processed == 0 && self.failed == 0 && self.duplicates == 0
    }
}

/// A batch claimed and planned, to be recorded.
struct Prepared {
    batch: Batch,
    /// When it was claimed, unix milliseconds: the time its records carry.
    now: i64,
}

impl Prepared {
    fn is_empty(&self) -> bool {
        self.batch.split.is_empty() && self.batch.retries.is_empty() && self.batch.lost.is_empty()
    }

    /// The stored events it applies again or gives up on.
    fn event_ids(&self) -> Vec<i64> {
        let retried = self.batch.retries.iter().map(|(id, _, _)| *id);
        retried.chain(self.batch.lost.iter().map(|(id, _)| *id)).collect()
    }
}

/// The pipeline over one store.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    metrics: Metrics,
    policy: RetryPolicy,
    limits: Limits,
    /// Poked by the inbox after each commit, so that new work is picked up at once.
    wake: Arc<Notify>,
    /// Deliveries to claim next, adapted to how many events recent deliveries held.
    claim: Arc<AtomicUsize>,
    /// When the lag gauge was last refreshed, unix milliseconds.
    lag_observed: Arc<AtomicI64>,
    /// The lag last observed, in milliseconds.
    lag_ms: Arc<AtomicI64>,
    /// How crowded the inbox is, told by its writer.
    crowding: Arc<Crowding>,
    yielding: Yielding,
}

impl Pipeline {
    pub fn new(store: Store, metrics: Metrics, policy: RetryPolicy, limits: Limits) -> Self {
        let claim = Arc::new(AtomicUsize::new(limits.deliveries.clamp(1, 16)));
        Self {
            store,
            metrics,
            policy,
            limits,
            wake: Arc::new(Notify::new()),
            claim,
            lag_observed: Arc::new(AtomicI64::new(0)),
            lag_ms: Arc::new(AtomicI64::new(0)),
            crowding: Arc::new(Crowding::default()),
            yielding: Yielding::default(),
        }
    }

    /// Gives way to requests as `yielding` says (by default it never rests).
    pub fn with_yielding(mut self, yielding: Yielding) -> Self {
        self.yielding = yielding;
        self
    }

    /// What the inbox's writer counts its commits into, for the pipeline to give way.
    pub fn crowding(&self) -> Arc<Crowding> {
        self.crowding.clone()
    }

    /// A handle that wakes the workers when new deliveries are stored.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Splits, plans and applies what is due now; tests call it to drain the store
    /// deterministically.
    pub async fn step(&self) -> Result<StepReport, StoreError> {
        let prepared = self.prepare(None, &[]).await?;
        self.record(prepared).await
    }

    /// Claims and plans a batch: deliveries after `after` (or after the last one split) and
    /// events due for another attempt, except those in `busy`.
    async fn prepare(
        &self,
        after: Option<DeliveryId>,
        busy: &[i64],
    ) -> Result<Prepared, StoreError> {
        let now = clock::now_ms();
        let mut batch = Batch::default();
        let want = self.claim.load(Ordering::Relaxed);
        let claimed = self.store.claim_deliveries(want, after, self.limits.lease_ms).await?;
        for delivery in claimed {
            batch.split.push((delivery.id, plan_delivery(delivery.id, &delivery.body)));
        }
        if !batch.split.is_empty() {
            let events: usize = batch.split.iter().map(|(_, events)| events.len()).sum();
            let per_delivery = events.div_ceil(batch.split.len()).max(1);
            let next = (self.limits.events / per_delivery).clamp(1, self.limits.deliveries);
            self.claim.store(next, Ordering::Relaxed);
        }
        self.plan_retries(now, busy, &mut batch).await?;
        Ok(Prepared { batch, now })
    }

    /// Records a prepared batch in one commit.
    async fn record(&self, prepared: Prepared) -> Result<StepReport, StoreError> {
        let Prepared { batch, now } = prepared;
        if batch.split.is_empty() && batch.retries.is_empty() && batch.lost.is_empty() {
            self.observe_lag(now).await?;
            return Ok(StepReport::default());
        }
        let (deliveries, retries) = (batch.split.len(), batch.retries.len());
        let seed = RandomState::new().hash_one(now);
        let applied = self.store.record(batch, self.policy, now, seed).await?;
        self.metrics.pipeline_retries.inc_by(retries as u64);
        let report = self.observe(&applied, deliveries);
        if self.lag_due(now) {
            self.observe_lag(clock::now_ms()).await?;
        }
        Ok(report)
    }

    /// Records `prepared`; with the embedded store, the next batch is claimed and planned
    /// meanwhile (planning on this thread, recording on a blocking one) and returned, to be
    /// recorded next. That claim starts after the deliveries being recorded and leaves out
    /// their events, and it is dropped if this record fails, so that nothing is skipped. A
    /// database server's claims lease what they take, so there one step runs at a time.
    async fn record_and_prepare(
        &self,
        prepared: Prepared,
    ) -> (Result<StepReport, StoreError>, Option<Prepared>) {
        if !self.store.is_embedded() || prepared.is_empty() {
            return (self.record(prepared).await, None);
        }
        let after = prepared.batch.split.last().map(|(delivery, _)| *delivery);
        let busy = prepared.event_ids();
        let (recorded, next) = tokio::join!(self.record(prepared), self.prepare(after, &busy));
        let next = match (&recorded, next) {
            (Ok(_), Ok(next)) if !next.is_empty() => Some(next),
            _ => None,
        };
        (recorded, next)
    }

    /// Runs steps until `shutdown` turns true: at once while there is work, otherwise when
    /// woken or after `idle` (retries come due with time).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, idle: Duration) {
        let mut failures = 0u32;
        let mut ahead = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let started = Instant::now();
            let prepared = match ahead.take() {
                Some(prepared) => Ok(prepared),
                None => self.prepare(None, &[]).await,
            };
            let result = match prepared {
                Ok(prepared) => {
                    let (recorded, next) = self.record_and_prepare(prepared).await;
                    ahead = next;
                    recorded
                }
                Err(error) => Err(error),
            };
            let busy = match result {
                Ok(report) => {
                    if failures > 0 {
                        tracing::info!(failures, "pipeline steps succeed again");
                        failures = 0;
                    }
                    !report.is_idle()
                }
                Err(error) => {
                    // Logged loudly once per outage, not at every retry.
                    if failures == 0 {
                        tracing::error!(%error, "pipeline step failed; retrying with backoff");
                    } else {
                        tracing::debug!(%error, failures, "pipeline step failed again");
                    }
                    failures += 1;
                    false
                }
            };
            if busy {
                if let Some(rest) = self.rest_after(started.elapsed()) {
                    let rested = Instant::now();
                    tokio::select! {
                        () = self.rest(rest) => {}
                        _ = shutdown.changed() => {}
                    }
                    self.metrics.pipeline_yielded.inc_by(rested.elapsed().as_secs_f64());
                }
                continue;
            }
            let wait = if failures == 0 { idle } else { backoff(idle, failures) };
            tokio::select! {
                () = self.wake.notified(), if failures == 0 => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("pipeline stopped");
    }

    /// Rests for `rest`, or less if the crowd thins first: the backlog is taken up again
    /// within a slice of the end of the load.
    async fn rest(&self, rest: Duration) {
        let until = Instant::now() + rest;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero()
                || !self.crowding.is_crowded(self.yielding.crowded_batch, clock::now_ms())
            {
                return;
            }
            tokio::time::sleep(left.min(REST_SLICE)).await;
        }
    }

    /// How long to rest after a step that took `step`, if requests crowd the inbox.
    fn rest_after(&self, step: Duration) -> Option<Duration> {
        let crowded = self.crowding.is_crowded(self.yielding.crowded_batch, clock::now_ms());
        self.yielding.rest(crowded, self.lag_ms.load(Ordering::Relaxed), step)
    }

    async fn plan_retries(
        &self,
        now: i64,
        busy: &[i64],
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let due =
            self.store.claim_due_events(now, self.limits.retries, self.limits.lease_ms).await?;
        let mut bodies: HashMap<DeliveryId, Vec<Event>> = HashMap::new();
        for event in due.into_iter().filter(|e| !busy.contains(&e.id)) {
            let events = match bodies.entry(event.delivery_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let body =
                        self.store.delivery_body(event.delivery_id).await?.unwrap_or_default();
                    e.insert(split(&body).unwrap_or_default())
                }
            };
            let found =
                events.iter().find(|e| e.key == event.key && e.platform.as_str() == event.platform);
            match found {
                Some(e) => {
                    let planned = Planned { facts: domain::plan(e), event: e.clone() };
                    batch.retries.push((event.id, event.attempts, planned));
                }
                None => batch.lost.push((event.id, event.attempts)),
            }
        }
        Ok(())
    }

    fn observe(&self, applied: &[Applied], deliveries: usize) -> StepReport {
        let mut report = StepReport { deliveries, ..StepReport::default() };
        for a in applied {
            let outcome = match a.outcome {
                Outcome::Processed => {
                    report.processed += 1;
                    self.metrics.processing_duration.observe(a.seconds);
                    "processed"
                }
                Outcome::Duplicate => {
                    report.duplicates += 1;
                    self.metrics.duplicates.inc();
                    "duplicate"
                }
                Outcome::Failed { dead } => {
                    report.failed += 1;
                    if dead {
                        report.dead += 1;
                        self.metrics.dead_events.inc();
                        tracing::error!(platform = %a.platform, kind = a.kind, "event is dead after its last attempt");
                    } else {
                        tracing::warn!(platform = %a.platform, kind = a.kind, "event failed; will retry");
                    }
                    if dead { "dead" } else { "error" }
                }
            };
            let labels =
                EventLabels { platform: bounded_platform(&a.platform), kind: a.kind, outcome };
            self.metrics.events.get_or_create(&labels).inc();
        }
        report
    }

    /// Whether a busy step should refresh the lag gauge (at most once a second).
    fn lag_due(&self, now: i64) -> bool {
        let last = self.lag_observed.load(Ordering::Relaxed);
        now - last >= 1000
            && self
                .lag_observed
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    async fn observe_lag(&self, now: i64) -> Result<(), StoreError> {
        let lag = self.store.oldest_pending().await?.map(|t| (now - t).max(0)).unwrap_or(0);
        self.metrics.pipeline_lag.set(lag as f64 / 1000.0);
        self.lag_ms.store(lag, Ordering::Relaxed);
        Ok(())
    }
}

/// Waits after `failures` failed steps in a row: doubling from `idle`, at most 5 s.
fn backoff(idle: Duration, failures: u32) -> Duration {
    idle.saturating_mul(1 << failures.min(5)).min(Duration::from_secs(5))
}

/// Splits one delivery and plans its events. A body that no longer splits (it was checked
/// before it was stored, so this means a decoder change) yields no events and is logged.
fn plan_delivery(id: DeliveryId, body: &[u8]) -> Vec<Planned> {
    match split(body) {
        Ok(events) => {
            events.into_iter().map(|event| Planned { facts: domain::plan(&event), event }).collect()
        }
        Err(error) => {
            tracing::error!(delivery = id.0, %error, "stored delivery does not decode");
            Vec::new()
        }
    }
}

/// Platform label with a bounded set of values.
fn bounded_platform(platform: &str) -> &'static str {
    match platform {
        "facebook" => "facebook",
        "instagram" => "instagram",
        "whatsapp" => "whatsapp",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YIELDING: Yielding = Yielding { ratio: 4, crowded_batch: 6, max_lag_ms: 30_000 };

    #[test]
    fn a_crowded_inbox_gets_rests_in_proportion_to_each_step() {
        let step = Duration::from_millis(20);
        assert_eq!(YIELDING.rest(true, 0, step), Some(Duration::from_millis(80)));
        assert_eq!(YIELDING.rest(true, 29_999, step), Some(Duration::from_millis(80)));
        // A long step does not stop the pipeline for long.
        assert_eq!(YIELDING.rest(true, 0, Duration::from_secs(2)), Some(LONGEST_REST));
    }

    #[test]
    fn no_rest_without_a_crowd_past_the_lag_bound_or_when_switched_off() {
        let step = Duration::from_millis(20);
        assert_eq!(YIELDING.rest(false, 0, step), None);
        assert_eq!(YIELDING.rest(true, 30_000, step), None);
        assert_eq!(Yielding { ratio: 0, ..YIELDING }.rest(true, 0, step), None);
        assert_eq!(Yielding::default().rest(true, 0, step), None);
    }
}
