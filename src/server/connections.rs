//! The accept loop: HTTP/1.1 connections with a deadline for their headers and a cap on how
//! many are open, so idle or slow clients cannot use up the process's file descriptors.
//!
//! `axum::serve` keeps a connection that sends nothing open for ever and accepts until
//! `accept` fails: 1,136 idle sockets under the common 1,024 file limit made every client time
//! out and the WAL flush fail for lack of descriptors. Here:
//! - a connection must send a request's headers within `header_timeout`, counted from when it
//!   opens and again from the end of each response (so the same limit closes idle keep-alive
//!   connections and clients that trickle header lines);
//! - at most `max_connections` are open; past that new ones wait in the kernel's backlog until one
//!   closes, and descriptors stay free for the WAL, the store and queries ([`RESERVED_FDS`]);
//! - on shutdown, accepting stops and open connections finish their requests (bounded by
//!   [`SHUTDOWN_GRACE`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// File descriptors kept free for everything but client connections.
pub const RESERVED_FDS: u64 = 256;
/// Longest the server waits for open connections at shutdown (the request timeout and more).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

/// Bounds on client connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time to send a request's headers, from the connection's start or the previous response.
    pub header_timeout: Duration,
    /// Most connections open at once; `None`: the file limit less [`RESERVED_FDS`].
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), max_connections: None }
    }
}

/// Raise the soft limit of open files to the hard one; returns the soft limit now in force.
pub fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        let before = lim.current;
        lim.current = lim.maximum;
        match setrlimit(Resource::Nofile, lim) {
            Ok(()) => tracing::info!(before, now = ?lim.current, "raised the open-file limit to its hard limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// How many connections may be open with `file_limit` descriptors.
pub fn connection_cap(limits: &ConnectionLimits, file_limit: u64) -> usize {
    let room = file_limit.saturating_sub(RESERVED_FDS).max(16);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    limits.max_connections.map_or(room, |m| m.clamp(1, room))
}

/// Serve `app` on `listener` until `stop`, then let open connections finish.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, cap: usize, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a connection reset before it was taken: wait a
                    // moment instead of spinning (what axum::serve does too).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = app.clone().map_request(move |mut req: axum::http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc)));
        metrics::gauge!("footfall_http_connections").increment(1.0);
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out headers): nothing to answer.
            let _ = conn.await;
            metrics::gauge!("footfall_http_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_store() {
        let auto = ConnectionLimits::default();
        assert_eq!(connection_cap(&auto, 1024), 1024 - RESERVED_FDS as usize);
        assert_eq!(connection_cap(&auto, 100), 16, "never below 16");
        let set = ConnectionLimits { max_connections: Some(5000), ..auto };
        assert_eq!(connection_cap(&set, 1024), 768, "a setting over the file limit is lowered");
        assert_eq!(connection_cap(&ConnectionLimits { max_connections: Some(100), ..auto }, 1024), 100);
    }
}
