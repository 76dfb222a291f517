//! The `metahook` command line. Exit codes: 0 success, 1 failure at run time (the store cannot
//! be opened, the port cannot be bound, ...), 2 invalid usage or configuration.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use metahook::config::Config;
use metahook::pipeline::ReplayFilter;
use metahook::status::StatusReport;
use metahook::{app, config};

#[derive(Parser)]
#[command(name = "metahook", version, about = "A durable gateway for Meta webhooks")]
struct Cli {
    /// TOML configuration file; METAHOOK_* environment variables override its values.
    #[arg(long, global = true, env = "METAHOOK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook endpoint (listen, database_url, verify_token, app_secrets, body_limit
    /// come from the configuration).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the status JSON, read from the store (no server needed).
    Status,
    /// Put events back in the queue to be applied again (safe: applying is idempotent).
    /// With no filter, replays every dead event. A running `serve` picks them up.
    Replay(ReplayArgs),
    /// Post realistic, signed Meta traffic to an endpoint and report what it acknowledged
    /// (or, with --handshake, whether Meta would verify it). Needs no database.
    Simulate(metahook::simulate::Args),
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Only this event id.
    #[arg(long)]
    id: Option<i64>,
    /// Only events in this status: dead, error, processed or pending (default: dead, unless
    /// --id is given).
    #[arg(long)]
    status: Option<String>,
    /// Only events of this kind (message, whatsapp_status, ...).
    #[arg(long)]
    kind: Option<String>,
    /// Only events of this platform (facebook, instagram, whatsapp, ...).
    #[arg(long)]
    platform: Option<String>,
}

#[allow(clippy::print_stderr, reason = "the command line reports its own failures")]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("metahook: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let result = runtime
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(execute(cli.command, config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("metahook: {error:#}");
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let listener = metahook::http::bind(config.listen)
                .with_context(|| format!("binding {}", config.listen))?;
            app::run(config, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            let store = app::open_store(&config).await?;
            println!("{} store is at the latest schema", store.backend());
            Ok(())
        }
        Command::Replay(args) => {
            let status = match (&args.status, args.id) {
                (None, None) => Some("dead".to_owned()),
                (status, _) => status.clone(),
            };
            let filter =
                ReplayFilter { id: args.id, status, kind: args.kind, platform: args.platform };
            filter.validate().map_err(|e| UsageError(format!("--status: {e}")))?;
            let store = app::open_store(&config).await?;
            let n = store.replay(filter).await?;
            println!("{n} events queued for replay");
            Ok(())
        }
        Command::Status => {
            let store = app::open_store(&config).await?;
            let report = StatusReport::gather(&store, true, Default::default()).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Simulate(args) => metahook::simulate::run(args, &config).await.map_err(|e| {
            match e.downcast::<metahook::simulate::UsageError>() {
                Ok(usage) => UsageError(usage.0).into(),
                Err(e) => e,
            }
        }),
    }
}

/// A command-line argument that cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// Completes on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn init_logging(config: &config::Config) {
    // The filter was checked when the configuration was validated.
    let filter = tracing_subscriber::EnvFilter::new(&config.log);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
