//! The service as a value: open the store, start the inbox, serve until told to stop, then
//! close everything in order.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{Config, DatabaseUrl};
use crate::http::{self, AppState, ConnectionLimits, Parts};
use crate::inbox::{Inbox, InboxLimits, Spool};
use crate::metrics::Metrics;
use crate::pipeline::{Limits, Pipeline, Yielding};
use crate::store::Store;
use crate::store::work::RetryPolicy;

/// How long in-flight requests get to finish after the shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an idle pipeline waits before looking for retries that came due.
const PIPELINE_IDLE: Duration = Duration::from_millis(250);

/// Runs the store's housekeeping once a second, and sooner where the store asks for it,
/// until aborted.
async fn maintain(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let result = tokio::select! {
            _ = tick.tick() => store.maintain().await,
            () = store.housekeeping_due() => store.maintain_due().await,
        };
        if let Err(error) = result {
            tracing::warn!(%error, "store housekeeping failed");
        }
    }
}

/// Starts the pipeline. With an embedded store (SQLite) its work competes with requests for
/// this machine's cores, so it runs on a thread of its own at a lower scheduling priority,
/// recording included (it writes only to the domain file, whose lock no request waits for).
/// The priority alone does not keep it out of the requests' way under saturation; its rests
/// do (see [`crate::pipeline::Yielding`]). A database server does most of that work
/// elsewhere, so the pipeline then shares the request runtime.
fn spawn_pipeline(
    pipeline: Pipeline,
    store: &Store,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    if !store.is_embedded() {
        return tokio::spawn(async move {
            pipeline.run(stopping, PIPELINE_IDLE).await;
            Ok(())
        });
    }
    let (done, finished) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("metahook-pipeline".into()).spawn(move || {
        // On Linux, nice applies to the calling thread, and threads it creates inherit it.
        if let Err(error) = rustix::process::nice(PIPELINE_NICENESS) {
            tracing::warn!(%error, "cannot lower the pipeline's priority");
        }
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(pipeline.run(stopping, PIPELINE_IDLE)));
        let _ = done.send(result);
    });
    tokio::spawn(async move {
        spawned?;
        finished.await.unwrap_or(Ok(()))
    })
}

/// How much lower the embedded pipeline's priority is than the requests' (as `nice`).
const PIPELINE_NICENESS: i32 = 10;

/// The pipeline as configured.
pub fn pipeline(config: &Config, store: &Store, metrics: &Metrics) -> Pipeline {
    let policy = RetryPolicy {
        max_attempts: config.pipeline_max_attempts,
        base_ms: config.pipeline_retry_base_ms,
        max_ms: config.pipeline_retry_max_ms,
    };
    let limits = Limits {
        deliveries: config.pipeline_batch,
        events: config.pipeline_batch_events,
        retries: config.pipeline_batch * 4,
        lease_ms: config.pipeline_lease_ms as i64,
    };
    let yielding = Yielding {
        ratio: config.pipeline_yield,
        crowded_batch: config.pipeline_yield_batch,
        max_lag_ms: config.pipeline_yield_max_lag_ms as i64,
    };
    Pipeline::new(store.clone(), metrics.clone(), policy, limits).with_yielding(yielding)
}

/// Opens (and migrates) the configured store.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    match config.database.clone() {
        DatabaseUrl::Sqlite(path) => {
            tokio::task::spawn_blocking(move || {
                Store::open_sqlite(&path)
                    .with_context(|| format!("opening store {}", path.display()))
            })
            .await?
        }
        DatabaseUrl::Postgres(url) => {
            Store::open_postgres(&url, config.database_pool_size, instance_id())
                .await
                .context("opening the PostgreSQL store")
        }
    }
}

/// The fallback spool, for stores that can be away (PostgreSQL); a spool left by an earlier
/// run is opened too, and drained first.
async fn open_spool(config: &Config, store: &Store) -> anyhow::Result<Option<Spool>> {
    if !store.supports_spool() {
        return Ok(None);
    }
    let (path, limit) = (config.spool_path.clone(), config.spool_limit);
    let spool =
        tokio::task::spawn_blocking(move || Spool::open(&path, limit, instance_id())).await?;
    Ok(Some(spool.with_context(|| format!("opening spool {}", config.spool_path.display()))?))
}

/// A name for this process among the instances sharing a database.
fn instance_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(crate::clock::now_ms()) % 1_000_000;
    format!("{}-{random:06}", std::process::id())
}

/// Serves on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// deliveries be acknowledged, commits what is queued and closes the store.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.app_secrets.is_empty() {
        tracing::warn!("no app_secrets configured: every POST will be refused with 401");
    }
    if config.verify_token.is_none() {
        tracing::warn!("no verify_token configured: every handshake will be refused with 403");
    }
    let store = open_store(&config).await?;
    let metrics = Metrics::new();
    let pipeline = pipeline(&config, &store, &metrics);
    let pipeline_wake = pipeline.waker();
    let limits = InboxLimits {
        batch_max: config.inbox_batch_max,
        queue: config.inbox_queue,
        commit_timeout: Duration::from_millis(config.inbox_commit_timeout_ms),
        in_flight: config.inbox_commits_in_flight,
    };
    let spool = open_spool(&config, &store).await?;
    let crowding = pipeline.crowding();
    let (inbox, writer) = Inbox::start(
        store.clone(),
        metrics.clone(),
        limits,
        pipeline_wake.clone(),
        crowding,
        spool,
    );
    let (stop_pipeline, pipeline_stopping) = tokio::sync::watch::channel(false);
    let pipeline = if config.pipeline {
        Some(spawn_pipeline(pipeline, &store, pipeline_stopping))
    } else {
        tracing::info!("pipeline disabled in this process: deliveries are stored, not applied");
        None
    };
    let state = AppState::new(Parts {
        app_secrets: config.app_secrets.clone(),
        verify_token: config.verify_token.clone(),
        body_limit: config.body_limit,
        body_timeout: Duration::from_millis(config.body_timeout_ms),
        retry_after_secs: config.retry_after_secs,
        admin_token: config.admin_token.clone(),
        max_concurrent_requests: config.max_concurrent_requests,
        reject_limit_per_address: config.reject_limit_per_address,
        inbox: inbox.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        pipeline_wake,
    });
    let maintenance = tokio::spawn(maintain(store.clone()));
    let address = listener.local_addr()?;
    tracing::info!(%address, backend = store.backend(), "serving");

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    let limits = ConnectionLimits {
        header_timeout: Duration::from_millis(config.header_timeout_ms),
        max_connections: config.max_connections,
    };
    let server = http::serve(listener, http::router(state), limits, metrics, signal);
    let drained = async {
        let _ = stopping_rx.await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        () = server => {}
        () = drained => tracing::warn!("in-flight requests did not finish in time; closing anyway"),
    }

    inbox.close().await;
    drop(inbox);
    writer.join().await;
    let _ = stop_pipeline.send(true);
    if let Some(pipeline) = pipeline {
        pipeline.await??;
    }
    maintenance.abort();
    if let Err(error) = store.close().await {
        tracing::warn!(%error, "could not tidy the store at shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}
