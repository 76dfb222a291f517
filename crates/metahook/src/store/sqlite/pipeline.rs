//! Pipeline work on SQLite: reading what is due, and recording a batch in one commit in
//! which every event is applied inside its own savepoint, so that one failing event rolls
//! back only its own changes.

use std::time::Instant;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{SqliteStore, facts, lock};
use crate::store::work::{
    Applied, Batch, DueEvent, Jitter, Outcome, Planned, RetryPolicy, UnsplitDelivery,
};
use crate::store::{DeliveryId, StoreError};

impl SqliteStore {
    /// Deliveries not split yet, oldest first, and after `after` when given.
    pub(crate) fn unsplit(
        &self,
        limit: usize,
        after: Option<DeliveryId>,
    ) -> Result<Vec<UnsplitDelivery>, StoreError> {
        let conn = lock(&self.claimer);
        let mut stmt = conn.prepare_cached(
            "SELECT id, received_at, body FROM deliveries
             WHERE id > max((SELECT split_through FROM progress), ?2) ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64, after.map_or(0, |d| d.0)], |r| {
            Ok(UnsplitDelivery {
                id: DeliveryId(r.get(0)?),
                received_at: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn due_events(&self, now: i64, limit: usize) -> Result<Vec<DueEvent>, StoreError> {
        let conn = lock(&self.claimer);
        let mut stmt = conn.prepare_cached(
            "SELECT id, delivery_id, platform, key, attempts FROM events
             WHERE status IN ('pending', 'error') AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit as i64], |r| {
            Ok(DueEvent {
                id: r.get(0)?,
                delivery_id: DeliveryId(r.get(1)?),
                platform: r.get(2)?,
                key: r.get(3)?,
                attempts: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn delivery_body(&self, id: DeliveryId) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = lock(&self.claimer);
        let body = conn
            .prepare_cached("SELECT body FROM deliveries WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0))
            .optional()?;
        Ok(body)
    }

    /// Arrival of the oldest delivery not yet split, or of the delivery of the oldest event
    /// still waiting to be applied.
    pub(crate) fn oldest_pending(&self) -> Result<Option<i64>, StoreError> {
        let conn = lock(&self.claimer);
        let oldest = conn.query_row(
            // Ids follow arrival, so the oldest is the first by id: one index seek each,
            // however long the backlog.
            "SELECT min(t) FROM (
                 SELECT (SELECT received_at FROM deliveries
                         WHERE id > (SELECT split_through FROM progress)
                         ORDER BY id LIMIT 1) AS t
                 UNION ALL
                 SELECT (SELECT d.received_at FROM events e JOIN deliveries d ON d.id = e.delivery_id
                         WHERE e.status = 'pending' ORDER BY e.id LIMIT 1)
                 UNION ALL
                 SELECT (SELECT d.received_at FROM events e JOIN deliveries d ON d.id = e.delivery_id
                         WHERE e.status = 'error' ORDER BY e.id LIMIT 1))",
            [],
            |r| r.get(0),
        )?;
        Ok(oldest)
    }

    pub(crate) fn record(
        &self,
        batch: &Batch,
        policy: RetryPolicy,
        now: i64,
        random: &mut Jitter,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut conn = self.domain.blocking_lock();
        // The pipeline's commits need no sync of their own: what they write is derived from
        // deliveries that are durable already. A crash loses at most work that is done again.
        self.record_in(&mut conn, batch, policy, now, random)
    }

    fn record_in(
        &self,
        conn: &mut rusqlite::Connection,
        batch: &Batch,
        policy: RetryPolicy,
        now: i64,
        random: &mut Jitter,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut tx = conn.transaction()?;
        let mut report = Vec::new();
        let mut recorder = Recorder { tx: &mut tx, policy, now, random };
        for (delivery, events) in &batch.split {
            for planned in events {
                report.push(recorder.insert_and_apply(*delivery, planned)?);
            }
        }
        // Deliveries are claimed in id order from the last one split, so the batch covers
        // every id up to its last.
        if let Some((last, _)) = batch.split.last() {
            recorder
                .tx
                .prepare_cached("UPDATE progress SET split_through = max(split_through, ?1)")?
                .execute([last.0])?;
        }
        let split_reports = report.len();
        for (id, attempts, planned) in &batch.retries {
            report.push(recorder.apply(*id, *attempts, planned)?);
        }
        for (id, attempts) in &batch.lost {
            recorder.fail(
                *id,
                *attempts,
                policy.max_attempts,
                "event no longer found in its delivery",
            )?;
        }
        let inserted =
            report[..split_reports].iter().filter(|a| a.outcome != Outcome::Duplicate).count();
        bump_counters(&tx, &report, batch.retries.len(), inserted)?;
        tx.commit()?;
        Ok(report)
    }
}

struct Recorder<'a, 't> {
    tx: &'a mut Transaction<'t>,
    policy: RetryPolicy,
    now: i64,
    random: &'a mut Jitter,
}

impl Recorder<'_, '_> {
    /// Inserts a new event as processed and applies it, in one savepoint; a duplicate key
    /// changes nothing, and a failure leaves the event stored as failed, to be retried.
    fn insert_and_apply(
        &mut self,
        delivery: DeliveryId,
        planned: &Planned,
    ) -> Result<Applied, StoreError> {
        let started = Instant::now();
        let (inserted, applied) = {
            let savepoint = self.tx.savepoint()?;
            let inserted = insert_event(&savepoint, delivery, planned, "processed", 1, self.now)?;
            let applied = match inserted {
                Some(_) => planned.facts.iter().try_for_each(|fact| facts::apply(&savepoint, fact)),
                None => Ok(()),
            };
            if applied.is_ok() {
                savepoint.commit()?;
            }
            (inserted, applied)
        };
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match (inserted, applied) {
            (None, _) => Outcome::Duplicate,
            (Some(id), Ok(())) => self.settle(id, 0, planned, seconds, Ok(()))?,
            (Some(_), Err(error)) => {
                // The savepoint was rolled back, event row included: store it as failed.
                let id = insert_event(self.tx, delivery, planned, "pending", 0, self.now)?
                    .expect("the key was free a moment ago in this transaction");
                self.settle(id, 0, planned, seconds, Err(error.to_string()))?
            }
        };
        Ok(Applied::new(planned, outcome, seconds))
    }

    /// Applies a stored event again inside a savepoint.
    fn apply(&mut self, id: i64, attempts: u32, planned: &Planned) -> Result<Applied, StoreError> {
        let started = Instant::now();
        let result = {
            let savepoint = self.tx.savepoint()?;
            let applied = planned.facts.iter().try_for_each(|fact| facts::apply(&savepoint, fact));
            applied.and_then(|()| savepoint.commit())
        };
        let seconds = started.elapsed().as_secs_f64();
        if result.is_ok() {
            self.tx
                .prepare_cached(
                    "UPDATE events SET status = 'processed', attempts = ?2, error = NULL,
                         updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, attempts + 1, self.now])?;
        }
        let outcome =
            self.settle(id, attempts, planned, seconds, result.map_err(|e| e.to_string()))?;
        Ok(Applied::new(planned, outcome, seconds))
    }

    /// Records how applying event `id` went: the failure (and the next attempt) if it failed,
    /// and the log line either way.
    fn settle(
        &mut self,
        id: i64,
        attempts: u32,
        planned: &Planned,
        seconds: f64,
        result: Result<(), String>,
    ) -> Result<Outcome, StoreError> {
        let e = &planned.event;
        let (platform, kind) = (e.platform.as_str(), e.kind.as_str());
        match result {
            Ok(()) => {
                self.log(id, platform, kind, "processed", seconds, None)?;
                Ok(Outcome::Processed)
            }
            Err(message) => {
                let dead = self.fail(id, attempts, self.policy.max_attempts, &message)?;
                let status = if dead { "dead" } else { "error" };
                self.log(id, platform, kind, status, seconds, Some(&message))?;
                Ok(Outcome::Failed { dead })
            }
        }
    }

    /// Records a failed attempt; returns whether the event is now dead.
    fn fail(
        &mut self,
        id: i64,
        attempts: u32,
        max: u32,
        message: &str,
    ) -> Result<bool, StoreError> {
        let attempts = attempts + 1;
        let dead = attempts >= max;
        let next = self.now + self.policy.delay_ms(attempts, self.random.draw()) as i64;
        self.tx
            .prepare_cached(
                "UPDATE events SET status = ?2, attempts = ?3, error = ?4, next_attempt_at = ?5,
                     updated_at = ?6 WHERE id = ?1",
            )?
            .execute(params![
                id,
                if dead { "dead" } else { "error" },
                attempts,
                message,
                next,
                self.now
            ])?;
        Ok(dead)
    }

    fn log(
        &self,
        id: i64,
        platform: &str,
        kind: &str,
        status: &str,
        seconds: f64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO event_log (event_id, platform, kind, status, duration_ms, error, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![id, platform, kind, status, seconds * 1000.0, error, self.now])?;
        Ok(())
    }
}

/// Inserts an event unless its key is taken; returns its id when inserted.
fn insert_event(
    conn: &rusqlite::Connection,
    delivery: DeliveryId,
    planned: &Planned,
    status: &str,
    attempts: u32,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let e = &planned.event;
    let id = conn
        .prepare_cached(
            "INSERT INTO events (delivery_id, platform, kind, key, account_id, user_id,
                 occurred_at, test, payload, status, attempts, next_attempt_at, created_at,
                 updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?12)
             ON CONFLICT (platform, key) DO NOTHING
             RETURNING id",
        )?
        .query_row(
            params![
                delivery.0,
                e.platform.as_str(),
                e.kind.as_str(),
                e.key,
                e.account_id,
                e.user_id,
                e.occurred_at,
                e.test,
                e.payload.to_string(),
                status,
                attempts,
                now,
            ],
            |r| r.get::<_, i64>(0),
        )
        .optional()?;
    Ok(id)
}

fn bump_counters(
    tx: &Transaction<'_>,
    report: &[Applied],
    retries: usize,
    inserted: usize,
) -> Result<(), StoreError> {
    let count = |f: fn(&Outcome) -> bool| report.iter().filter(|a| f(&a.outcome)).count() as i64;
    let processed = count(|o| *o == Outcome::Processed);
    let errors = count(|o| matches!(o, Outcome::Failed { .. }));
    let duplicates = count(|o| *o == Outcome::Duplicate);
    let mut bump = tx.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?;
    let (retries, inserted) = (retries as i64, inserted as i64);
    for (name, n) in [
        ("processed", processed),
        ("errors", errors),
        ("duplicates", duplicates),
        ("retries", retries),
        ("events", inserted),
    ] {
        if n > 0 {
            bump.execute(params![name, n])?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Makes the selected events due now, with their attempts reset; returns how many.
    pub(crate) fn replay(
        &self,
        filter: &crate::pipeline::ReplayFilter,
        now: i64,
    ) -> Result<usize, StoreError> {
        let conn = self.domain.blocking_lock();
        let changed = conn
            .prepare_cached(
                "UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = ?1,
                     updated_at = ?1
                 WHERE (?2 IS NULL OR id = ?2) AND (?3 IS NULL OR status = ?3)
                   AND (?4 IS NULL OR kind = ?4) AND (?5 IS NULL OR platform = ?5)",
            )?
            .execute(params![now, filter.id, filter.status, filter.kind, filter.platform])?;
        drop(conn);
        // Whoever asked for the replay is told it is done: it must survive a crash.
        self.sync_domain_log()?;
        Ok(changed)
    }
}
