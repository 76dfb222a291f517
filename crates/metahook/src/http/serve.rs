//! The accept loop: HTTP/1.1 connections served by hyper with a header read timeout, at most
//! `max_connections` of them (see [`super::connections`]), and a graceful shutdown.
//!
//! A connection must send a whole request head within the header timeout, or it is closed;
//! the same timeout closes a kept-alive connection that stays idle that long. On shutdown the
//! loop stops accepting, each connection finishes the request it is handling (one waiting
//! for its first request is closed at once), and `serve` returns when all are closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use super::connections::{Admission, Connections, Slot};
use super::limits::{self, Limit};
use crate::metrics::Metrics;

/// The limits on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest time to receive a whole request head (and longest idle keep-alive).
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Connections the kernel may hold for the accept loop. A burst of thousands of connections
/// that overflows it is not refused: the kernel falls back to SYN cookies, and drops the
/// handshakes it cannot queue, leaving clients that think they are connected. The kernel caps
/// it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `address` for [`serve`], with a listen queue for bursts of connections.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As std and tokio do on Unix: a restart need not wait for old connections to time out.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` completes and every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    raise_file_limit(limits.max_connections);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let connections = Connections::new(limits.max_connections, metrics.clone());
    let (stop, stopping) = watch::channel(false);
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let server = Arc::new(Server { http, router, metrics, stopping, _open: open });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match connections.admit() {
            Admission::Admitted(slot) => slot,
            Admission::Replaced(slot) => {
                limits::bitten(&server.metrics, Limit::Connections);
                slot
            }
            Admission::Refused => {
                limits::bitten(&server.metrics, Limit::Connections);
                continue;
            }
        };
        tokio::spawn(server.clone().connection(stream, peer, Arc::new(slot)));
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection task holds the server, and with it a sender of `open`: the channel
    // closes when the last of them finishes.
    drop(server);
    let _ = all_closed.recv().await;
}

/// What the accept loop shares with every connection task.
struct Server {
    http: http1::Builder,
    router: Router,
    metrics: Metrics,
    stopping: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

impl Server {
    /// Runs one connection until it closes, cut short when it is told to make room or the
    /// server stops.
    async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, slot: Arc<Slot>) {
        let router = TowerToHyperService::new(self.router.clone());
        let tracked = slot.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tracked.begin();
            let (response, tracked) = (router.call(request), tracked.clone());
            async move {
                let response = response.await;
                tracked.end();
                response
            }
        });
        let connection = self.http.serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        let mut stopping = self.stopping.clone();
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = told_to_close(&slot, &mut stopping) => {
                // Nothing was asked on it yet, so nothing is lost by closing it now.
                if !slot.has_served() {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        match result {
            // A kept-alive connection that idles past the timeout is closed the same way, but
            // that is housekeeping, not a limit biting. A client that trickles the head of a
            // later request on a kept-alive connection is cut off all the same, and counted
            // with those.
            Err(error) if error.is_timeout() && !slot.has_served() => {
                limits::bitten(&self.metrics, Limit::HeaderTimeout);
            }
            Err(error) => tracing::debug!(%error, "connection ended with an error"),
            Ok(()) => {}
        }
    }
}

/// Completes when the connection must make room for a new one or the server stops.
async fn told_to_close(slot: &Slot, stopping: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = slot.told_to_close() => {}
        _ = stopping.wait_for(|stop| *stop) => {}
    }
}
/// An error accepting one connection. Most concern that connection alone; running out of
/// file descriptors does not, and retrying at once would spin, so the loop pauses.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept connections; pausing for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// File descriptors the process needs besides its connections: the store, the spool, logs.
const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// Raises the soft limit on open files towards the hard limit when `max_connections` would
/// not fit under it, and says so when even the hard limit is too low.
fn raise_file_limit(max_connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let needed = max_connections as u64 + FILES_BESIDES_CONNECTIONS;
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|current| current >= needed) {
        return;
    }
    let raised = limit.maximum.map_or(needed, |maximum| maximum.min(needed));
    let new = rustix::process::Rlimit { current: Some(raised), maximum: limit.maximum };
    if let Err(error) = setrlimit(Resource::Nofile, new) {
        tracing::warn!(%error, needed, "cannot raise the open file limit");
    } else if raised < needed {
        tracing::warn!(
            limit = raised,
            needed,
            "the open file limit is below max_connections plus what the store needs"
        );
    }
}
