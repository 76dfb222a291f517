//! The baseline that `bench/run.sh` compares metahook with: an axum server that answers
//! `POST /meta/webhook` the way metahook answers an accepted delivery, but verifies nothing and
//! stores nothing. The distance between its figures and metahook's is the price of checking the
//! signature and making the body durable before answering.
//!
//! Usage: `metahook-bench-bare [ADDR]`. Without an argument the address comes from
//! `BENCH_BARE_LISTEN`, then defaults to 127.0.0.1:3901.

#![allow(clippy::print_stderr, reason = "no tracing here: it prints its address and fatal errors")]

use std::{env, net::SocketAddr, process::ExitCode};

use axum::{Router, body::Bytes, http::header, response::IntoResponse, routing::post};

const DEFAULT_LISTEN: &str = "127.0.0.1:3901";
const USAGE: &str = "usage: metahook-bench-bare [ADDR]   (or BENCH_BARE_LISTEN=ADDR)";

fn main() -> ExitCode {
    if env::args().nth(1).is_some_and(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let addr = match listen_addr() {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("metahook-bench-bare: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // Same runtime shape as metahook's `#[tokio::main]`: one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let result = runtime.map_err(|e| e.to_string()).and_then(|rt| rt.block_on(serve(addr)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("metahook-bench-bare: {message}");
            ExitCode::FAILURE
        }
    }
}

fn listen_addr() -> Result<SocketAddr, String> {
    let mut args = env::args().skip(1);
    let raw = match (args.next(), args.next()) {
        (Some(_), Some(_)) => return Err("expected at most one argument".to_owned()),
        (Some(flag), None) if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
        (Some(arg), None) => arg,
        (None, _) => env::var("BENCH_BARE_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned()),
    };
    raw.parse().map_err(|e| format!("listen address {raw:?}: {e}"))
}

/// Runs until the process is killed: there is nothing to flush, so no graceful shutdown.
async fn serve(addr: SocketAddr) -> Result<(), String> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("bind {addr}: {e}"))?;
    eprintln!("metahook-bench-bare listening on {addr}");
    axum::serve(listener, app()).await.map_err(|e| e.to_string())
}

fn app() -> Router {
    Router::new().route("/meta/webhook", post(receive))
}

/// Collects the whole body, as metahook has to before it can check a signature, then drops it.
async fn receive(body: Bytes) -> impl IntoResponse {
    drop(body);
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"received"}"#)
}
