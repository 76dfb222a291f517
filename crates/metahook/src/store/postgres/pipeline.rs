//! Pipeline work on PostgreSQL. Claims lease rows to one instance with `FOR UPDATE SKIP
//! LOCKED`, so instances never wait on each other and work held by a dead instance returns
//! when its lease expires. An instance takes back its own leases at once: its pipeline runs
//! one step at a time, so a lease of its own outside the current step was left by a step
//! that failed (the database went away before the lease could be given back). A batch is recorded in one transaction; when an event fails, the
//! batch is recorded again with a savepoint around each event, so that only the failing one
//! is rolled back (savepoints cost a round trip each, so the common case goes without).

use std::time::Instant;

use deadpool_postgres::{GenericClient, Transaction};
use futures_util::future::try_join_all;

use super::{PostgresStore, describe, facts};
use crate::pipeline::ReplayFilter;
use crate::store::work::{
    Applied, Batch, DueEvent, Jitter, Outcome, Planned, RetryPolicy, UnsplitDelivery,
};
use crate::store::{DeliveryId, StoreError};

impl PostgresStore {
    pub(crate) async fn claim_deliveries(
        &self,
        limit: usize,
        now: i64,
        lease_ms: i64,
    ) -> Result<Vec<UnsplitDelivery>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE deliveries SET lease_owner = $1, lease_until = $2 + $3
                 WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE split_at IS NULL
                       AND (lease_until IS NULL OR lease_until < $2 OR lease_owner = $1)
                     ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
                 RETURNING id, received_at, body",
                &[&self.owner, &now, &lease_ms, &(limit as i64)],
            )
            .await?;
        let mut claimed: Vec<UnsplitDelivery> = rows
            .iter()
            .map(|r| UnsplitDelivery {
                id: DeliveryId(r.get(0)),
                received_at: r.get(1),
                body: r.get(2),
            })
            .collect();
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    pub(crate) async fn claim_due_events(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DueEvent>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE events SET lease_owner = $1, lease_until = $2 + $3
                 WHERE id IN (
                     SELECT id FROM events
                     WHERE status IN ('pending', 'error') AND next_attempt_at <= $2
                       AND (lease_until IS NULL OR lease_until < $2 OR lease_owner = $1)
                     ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
                 RETURNING id, delivery_id, platform, key, attempts",
                &[&self.owner, &now, &lease_ms, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DueEvent {
                id: r.get(0),
                delivery_id: DeliveryId(r.get(1)),
                platform: r.get(2),
                key: r.get(3),
                attempts: r.get::<_, i64>(4) as u32,
            })
            .collect())
    }

    pub(crate) async fn delivery_body(
        &self,
        id: DeliveryId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT body FROM deliveries WHERE id = $1", &[&id.0]).await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(crate) async fn oldest_pending(&self) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                // Ids follow arrival, so the oldest is the first by id: one index seek each,
                // however long the backlog.
                "SELECT LEAST(
                     (SELECT received_at FROM deliveries WHERE split_at IS NULL ORDER BY id LIMIT 1),
                     (SELECT d.received_at FROM events e JOIN deliveries d ON d.id = e.delivery_id
                      WHERE e.status = 'pending' ORDER BY e.id LIMIT 1),
                     (SELECT d.received_at FROM events e JOIN deliveries d ON d.id = e.delivery_id
                      WHERE e.status = 'error' ORDER BY e.id LIMIT 1))",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    pub(crate) async fn record(
        &self,
        batch: &Batch,
        policy: RetryPolicy,
        now: i64,
        jitter: &mut Jitter,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut client = self.client().await?;
        let fast = {
            let mut tx = client.transaction().await?;
            let mut recorder =
                Recorder { tx: &mut tx, owner: &self.owner, policy, now, jitter, careful: false };
            match recorder.record(batch).await {
                Ok(report) => tx.commit().await.map(|()| report).map_err(StoreError::from),
                Err(error) => Err(error),
            }
        };
        let result = match fast {
            Ok(report) => Ok(report),
            Err(StoreError::Postgres(error)) if error.as_db_error().is_some() => {
                let mut tx = client.transaction().await?;
                let mut recorder = Recorder {
                    tx: &mut tx,
                    owner: &self.owner,
                    policy,
                    now,
                    jitter,
                    careful: true,
                };
                let report = recorder.record(batch).await?;
                tx.commit().await?;
                Ok(report)
            }
            Err(error) => Err(error),
        };
        if result.is_err() {
            self.release_leases().await;
        }
        result
    }

    /// Gives back what this instance holds, after a batch could not be recorded.
    async fn release_leases(&self) {
        let Ok(client) = self.client().await else { return };
        for sql in [
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
             WHERE lease_owner = $1 AND split_at IS NULL",
            "UPDATE events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        ] {
            if let Err(error) = client.execute(sql, &[&self.owner]).await {
                tracing::warn!(%error, "could not release leases; they expire by themselves");
            }
        }
    }

    pub(crate) async fn replay(
        &self,
        filter: &ReplayFilter,
        now: i64,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = $1,
                     updated_at = $1, lease_owner = NULL, lease_until = NULL
                 WHERE ($2::bigint IS NULL OR id = $2) AND ($3::text IS NULL OR status = $3)
                   AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR platform = $5)",
                &[&now, &filter.id, &filter.status, &filter.kind, &filter.platform],
            )
            .await?;
        Ok(changed as usize)
    }
}

struct Recorder<'a, 't> {
    tx: &'a mut Transaction<'t>,
    owner: &'a str,
    policy: RetryPolicy,
    now: i64,
    jitter: &'a mut Jitter,
    /// Wrap each event in a savepoint, so that a failure is recorded instead of aborting.
    careful: bool,
}

impl Recorder<'_, '_> {
    async fn record(&mut self, batch: &Batch) -> Result<Vec<Applied>, StoreError> {
        // A wait that no deadlock check ends must not hold the batch forever.
        self.tx.batch_execute("SET LOCAL lock_timeout = '10s'").await?;
        if !self.careful {
            return self.record_in_order(batch).await;
        }
        let mut report = Vec::new();
        for (delivery, events) in &batch.split {
            for planned in events {
                report.push(self.insert_and_apply(*delivery, planned).await?);
            }
            self.tx
                .execute(
                    "UPDATE deliveries SET split_at = $2, lease_owner = NULL, lease_until = NULL
                     WHERE id = $1",
                    &[&delivery.0, &self.now],
                )
                .await?;
        }
        let inserted = report.iter().filter(|a| a.outcome != Outcome::Duplicate).count();
        for (id, attempts, planned) in &batch.retries {
            report.push(self.apply(*id, *attempts, planned).await?);
        }
        for (id, attempts) in &batch.lost {
            self.fail(*id, *attempts, "event no longer found in its delivery").await?;
        }
        self.count(&report, batch.retries.len(), inserted).await?;
        Ok(report)
    }

    /// Adds the batch's figures to this instance's counters.
    async fn count(
        &self,
        report: &[Applied],
        retries: usize,
        inserted: usize,
    ) -> Result<(), StoreError> {
        let count =
            |f: fn(&Outcome) -> bool| report.iter().filter(|a| f(&a.outcome)).count() as i64;
        let counts = [
            ("processed", count(|o| *o == Outcome::Processed)),
            ("errors", count(|o| matches!(o, Outcome::Failed { .. }))),
            ("duplicates", count(|o| *o == Outcome::Duplicate)),
            ("retries", retries as i64),
            ("events", inserted as i64),
        ];
        let bumps = counts.into_iter().filter(|(_, n)| *n > 0);
        try_join_all(bumps.map(|(name, n)| super::bump(self.tx, self.owner, name, n))).await?;
        Ok(())
    }

    /// Records the batch with every row written in one global order: events by key, then
    /// the facts of the new and retried events by table and row, then deliveries by id. Two
    /// instances recording overlapping batches then lock rows in the same order and never
    /// deadlock. Any failure aborts the batch, which is then recorded carefully.
    ///
    /// Each phase sends all its statements before waiting for the first answer: on one
    /// connection the server runs them in the order sent, so the order holds, and the batch
    /// costs a round trip per phase instead of one per statement.
    async fn record_in_order(&mut self, batch: &Batch) -> Result<Vec<Applied>, StoreError> {
        let started = Instant::now();
        let mut fresh: Vec<(DeliveryId, &Planned)> = batch
            .split
            .iter()
            .flat_map(|(d, events)| events.iter().map(move |p| (*d, p)))
            .collect();
        fresh.sort_by(|a, b| {
            let key = |p: &Planned| (p.event.platform.as_str().to_owned(), p.event.key.clone());
            key(a.1).cmp(&key(b.1))
        });
        let tx: &Transaction<'_> = self.tx;
        let now = self.now;
        let inserted =
            try_join_all(fresh.iter().map(|(delivery, planned)| {
                insert_event(tx, *delivery, planned, "processed", 1, now)
            }))
            .await?;
        let mut report = Vec::new();
        let mut new = Vec::new();
        for ((_, planned), id) in fresh.into_iter().zip(inserted) {
            match id {
                Some(id) => new.push((id, planned)),
                None => report.push(Applied::new(planned, Outcome::Duplicate, 0.0)),
            }
        }
        let retried = batch.retries.iter().map(|(id, _, planned)| (*id, planned));
        let mut facts: Vec<_> =
            new.iter().copied().chain(retried).flat_map(|(_, p)| p.facts.iter()).collect();
        facts.sort_by_cached_key(|fact| fact.row());
        try_join_all(facts.into_iter().map(|fact| facts::apply(tx, fact))).await?;
        try_join_all(batch.retries.iter().map(|(id, attempts, _)| async move {
            tx.execute(
                "UPDATE events SET status = 'processed', attempts = $2, error = NULL,
                     updated_at = $3, lease_owner = NULL, lease_until = NULL WHERE id = $1",
                &[id, &(*attempts as i64 + 1), &now],
            )
            .await
        }))
        .await?;
        let applied: Vec<(i64, &Planned)> =
            new.iter().copied().chain(batch.retries.iter().map(|(id, _, p)| (*id, p))).collect();
        // One commit applies them all: each is charged an equal share of its time.
        let seconds = started.elapsed().as_secs_f64() / applied.len().max(1) as f64;
        let this = &*self;
        try_join_all(
            applied.iter().map(|(id, planned)| this.log(*id, planned, "processed", seconds, None)),
        )
        .await?;
        report.extend(
            applied.iter().map(|(_, planned)| Applied::new(planned, Outcome::Processed, seconds)),
        );
        let mut deliveries: Vec<i64> = batch.split.iter().map(|(d, _)| d.0).collect();
        deliveries.sort_unstable();
        try_join_all(deliveries.iter().map(|delivery| async move {
            tx.execute(
                "UPDATE deliveries SET split_at = $2, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1",
                &[delivery, &now],
            )
            .await
        }))
        .await?;
        for (id, attempts) in &batch.lost {
            self.fail(*id, *attempts, "event no longer found in its delivery").await?;
        }
        self.count(&report, batch.retries.len(), new.len()).await?;
        Ok(report)
    }

    async fn insert_and_apply(
        &mut self,
        delivery: DeliveryId,
        planned: &Planned,
    ) -> Result<Applied, StoreError> {
        let started = Instant::now();
        let (inserted, applied) = if self.careful {
            let savepoint = self.tx.transaction().await?;
            let inserted =
                insert_event(&savepoint, delivery, planned, "processed", 1, self.now).await?;
            let applied = apply_facts(&savepoint, planned, inserted.is_some()).await;
            if applied.is_ok() {
                savepoint.commit().await?
            } else {
                savepoint.rollback().await?
            }
            (inserted, applied)
        } else {
            let inserted =
                insert_event(self.tx, delivery, planned, "processed", 1, self.now).await?;
            apply_facts(self.tx, planned, inserted.is_some()).await?;
            (inserted, Ok(()))
        };
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match (inserted, applied) {
            (None, _) => Outcome::Duplicate,
            (Some(id), Ok(())) => self.settle(id, 0, planned, seconds, Ok(())).await?,
            (Some(_), Err(error)) => {
                let id = insert_event(self.tx, delivery, planned, "pending", 0, self.now)
                    .await?
                    .expect("the key was free a moment ago in this transaction");
                self.settle(id, 0, planned, seconds, Err(describe(&error))).await?
            }
        };
        Ok(Applied::new(planned, outcome, seconds))
    }

    async fn apply(
        &mut self,
        id: i64,
        attempts: u32,
        planned: &Planned,
    ) -> Result<Applied, StoreError> {
        let started = Instant::now();
        let applied = if self.careful {
            let savepoint = self.tx.transaction().await?;
            let applied = apply_facts(&savepoint, planned, true).await;
            if applied.is_ok() {
                savepoint.commit().await?
            } else {
                savepoint.rollback().await?
            }
            applied
        } else {
            apply_facts(self.tx, planned, true).await?;
            Ok(())
        };
        let seconds = started.elapsed().as_secs_f64();
        if applied.is_ok() {
            self.tx
                .execute(
                    "UPDATE events SET status = 'processed', attempts = $2, error = NULL,
                         updated_at = $3, lease_owner = NULL, lease_until = NULL WHERE id = $1",
                    &[&id, &(attempts as i64 + 1), &self.now],
                )
                .await?;
        }
        let result = applied.map_err(|e| describe(&e));
        let outcome = self.settle(id, attempts, planned, seconds, result).await?;
        Ok(Applied::new(planned, outcome, seconds))
    }

    /// Records how applying event `id` went: the failure (and the next attempt) if it failed,
    /// and the log line either way.
    async fn settle(
        &mut self,
        id: i64,
        attempts: u32,
        planned: &Planned,
        seconds: f64,
        result: Result<(), String>,
    ) -> Result<Outcome, StoreError> {
        match result {
            Ok(()) => {
                self.log(id, planned, "processed", seconds, None).await?;
                Ok(Outcome::Processed)
            }
            Err(message) => {
                let dead = self.fail(id, attempts, &message).await?;
                let status = if dead { "dead" } else { "error" };
                self.log(id, planned, status, seconds, Some(&message)).await?;
                Ok(Outcome::Failed { dead })
            }
        }
    }

    /// Records a failed attempt; returns whether the event is now dead.
    async fn fail(&mut self, id: i64, attempts: u32, message: &str) -> Result<bool, StoreError> {
        let attempts = attempts + 1;
        let dead = attempts >= self.policy.max_attempts;
        let next = self.now + self.policy.delay_ms(attempts, self.jitter.draw()) as i64;
        let status = if dead { "dead" } else { "error" };
        self.tx
            .execute(
                "UPDATE events SET status = $2, attempts = $3, error = $4, next_attempt_at = $5,
                     updated_at = $6, lease_owner = NULL, lease_until = NULL WHERE id = $1",
                &[&id, &status, &(attempts as i64), &message, &next, &self.now],
            )
            .await?;
        Ok(dead)
    }

    async fn log(
        &self,
        id: i64,
        planned: &Planned,
        status: &str,
        seconds: f64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let e = &planned.event;
        let statement = self
            .tx
            .prepare_cached(
                "INSERT INTO event_log (event_id, platform, kind, status, duration_ms, error, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?;
        self.tx
            .execute(
                &statement,
                &[
                    &id,
                    &e.platform.as_str(),
                    &e.kind.as_str(),
                    &status,
                    &(seconds * 1000.0),
                    &error,
                    &self.now,
                ],
            )
            .await?;
        Ok(())
    }
}

async fn apply_facts(
    tx: &Transaction<'_>,
    planned: &Planned,
    inserted: bool,
) -> Result<(), tokio_postgres::Error> {
    if inserted {
        for fact in &planned.facts {
            facts::apply(tx, fact).await?;
        }
    }
    Ok(())
}

/// Inserts an event unless its key is taken; returns its id when inserted.
async fn insert_event(
    tx: &Transaction<'_>,
    delivery: DeliveryId,
    planned: &Planned,
    status: &str,
    attempts: i64,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let e = &planned.event;
    let statement = tx
        .prepare_cached(
            "INSERT INTO events (delivery_id, platform, kind, key, account_id, user_id,
                 occurred_at, test, payload, status, attempts, next_attempt_at, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12)
             ON CONFLICT (platform, key) DO NOTHING
             RETURNING id",
        )
        .await?;
    let row = tx
        .query_opt(
            &statement,
            &[
                &delivery.0,
                &e.platform.as_str(),
                &e.kind.as_str(),
                &e.key,
                &e.account_id,
                &e.user_id,
                &e.occurred_at,
                &e.test,
                &e.payload.to_string(),
                &status,
                &attempts,
                &now,
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}
