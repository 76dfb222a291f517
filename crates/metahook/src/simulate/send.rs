//! Sending deliveries the way Meta does: signed POSTs, several in flight, at a set rate,
//! retried on any answer but 200.
//!
//! Deliveries are drawn from the plan on a blocking thread and queued for `concurrency`
//! workers. Each worker takes one delivery, waits for its turn under `--rate`, posts it, and
//! on failure (any status other than 200, a timeout, a refused connection) retries: the
//! first retry at once, then after `retry_delay`, doubling up to `retry_max_delay`, as Meta
//! retries "immediately, then with decreasing frequency". `Retry-After` is not honoured,
//! because Meta does not say that it is. Every attempt's outcome and latency is recorded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meta_webhooks::Secret;
use meta_webhooks::generate::{Delivery, signed_headers};
use reqwest::Url;
use tokio::sync::mpsc;

use super::Args;

/// How deliveries are sent.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts started per second, at most.
    pub rate: Option<f64>,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// Wait before the second retry; doubled for each later one.
    pub retry_delay: Duration,
    /// Longest wait between two attempts.
    pub retry_max_delay: Duration,
    /// Time allowed for one request.
    pub timeout: Duration,
}

impl Policy {
    /// The policy the command line asks for.
    pub fn from_args(args: &Args) -> Self {
        Self {
            concurrency: args.concurrency.into(),
            rate: args.rate,
            retries: args.retries,
            retry_delay: Duration::from_millis(args.retry_delay),
            retry_max_delay: Duration::from_millis(args.retry_max_delay),
            timeout: Duration::from_millis(args.timeout),
        }
    }

    /// The wait before retry number `retry` (1 is the first): none, then the base delay,
    /// doubling, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        if retry <= 1 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(retry - 2).unwrap_or(u32::MAX);
        self.retry_delay.saturating_mul(factor).min(self.retry_max_delay)
    }
}

/// What one attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// An HTTP answer with this status; only 200 acknowledges.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be made.
    Unreachable,
    /// The request failed in another way (connection reset, malformed answer).
    Error,
}

impl Outcome {
    /// Whether Meta would count this as delivered.
    pub fn acknowledged(self) -> bool {
        self == Outcome::Status(200)
    }

    /// `200`, `503`, `timeout`, `unreachable`, `error`.
    pub fn label(self) -> String {
        match self {
            Outcome::Status(code) => code.to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Unreachable => "unreachable".into(),
            Outcome::Error => "error".into(),
        }
    }
}

/// Everything recorded during a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// One per delivery sent: its events, whether it was a redelivery, and its last outcome.
    pub deliveries: Vec<(usize, bool, Outcome)>,
    /// One per attempt: its outcome and how long it took.
    pub attempts: Vec<(Outcome, Duration)>,
    /// The first transport error seen, to explain `unreachable` and `error`.
    pub first_error: Option<String>,
}

/// Posts deliveries to one endpoint.
pub struct Sender {
    client: reqwest::Client,
    url: Url,
    secret: Secret,
    policy: Policy,
}

impl Sender {
    /// A sender to `url` signing with `secret`.
    pub fn new(url: Url, secret: Secret, policy: Policy) -> anyhow::Result<Self> {
        let client = super::client_builder()
            .pool_max_idle_per_host(policy.concurrency)
            .timeout(policy.timeout)
            .build()?;
        Ok(Self { client, url, secret, policy })
    }

    /// Sends every delivery, retrying as configured, and reports.
    pub async fn send_all(
        self,
        deliveries: impl Iterator<Item = Delivery> + Send + 'static,
    ) -> Report {
        let (tx, rx) = mpsc::channel::<Delivery>(self.policy.concurrency * 2);
        let producer = tokio::task::spawn_blocking(move || {
            for delivery in deliveries {
                if tx.blocking_send(delivery).is_err() {
                    break;
                }
            }
        });
        let queue = Arc::new(tokio::sync::Mutex::new(rx));
        let report = Arc::new(Mutex::new(Report::default()));
        let pacer = self.policy.rate.map(|rate| Arc::new(Pacer::new(rate)));
        let sender = Arc::new(self);
        let started = Instant::now();
        let workers: Vec<_> = (0..sender.policy.concurrency)
            .map(|_| {
                let (sender, queue, report, pacer) =
                    (sender.clone(), queue.clone(), report.clone(), pacer.clone());
                tokio::spawn(async move {
                    loop {
                        let next = queue.lock().await.recv().await;
                        let Some(delivery) = next else { break };
                        sender.deliver(delivery, pacer.as_deref(), &report).await;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("a simulate worker panicked");
        }
        producer.await.expect("the delivery producer panicked");
        let mut report = std::mem::take(&mut *report.lock().expect("report lock"));
        report.elapsed = started.elapsed();
        report
    }

    async fn deliver(&self, delivery: Delivery, pacer: Option<&Pacer>, report: &Mutex<Report>) {
        let headers = signed_headers(&self.secret, &delivery.body);
        let body = bytes::Bytes::from(delivery.body);
        let mut retry = 0;
        let outcome = loop {
            if let Some(pacer) = pacer {
                pacer.wait().await;
            }
            let mut request = self.client.post(self.url.clone()).body(body.clone());
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            let started = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read the answer so the connection can be reused.
                    match response.bytes().await {
                        Ok(_) => Outcome::Status(status),
                        Err(e) => self.transport_error(&e, report),
                    }
                }
                Err(e) => self.transport_error(&e, report),
            };
            report.lock().expect("report lock").attempts.push((outcome, started.elapsed()));
            if outcome.acknowledged() || retry >= self.policy.retries {
                break outcome;
            }
            retry += 1;
            tokio::time::sleep(self.policy.backoff(retry)).await;
        };
        let entry = (delivery.events, delivery.redelivery, outcome);
        report.lock().expect("report lock").deliveries.push(entry);
    }

    fn transport_error(&self, error: &reqwest::Error, report: &Mutex<Report>) -> Outcome {
        let outcome = if error.is_timeout() {
            Outcome::Timeout
        } else if error.is_connect() {
            Outcome::Unreachable
        } else {
            Outcome::Error
        };
        let mut report = report.lock().expect("report lock");
        if outcome != Outcome::Timeout && report.first_error.is_none() {
            report.first_error = Some(error_chain(error));
        }
        outcome
    }
}

/// An error with its causes, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Spaces attempts evenly at a rate shared by every worker.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(per_second: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().expect("pacer lock");
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_at_once_then_double_up_to_the_cap() {
        let policy = Policy {
            concurrency: 1,
            rate: None,
            retries: 6,
            retry_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=6).map(|r| policy.backoff(r).as_millis()).collect();
        assert_eq!(waits, [0, 100, 200, 400, 500, 500]);
        assert_eq!(policy.backoff(80), Duration::from_millis(500));
    }
}
