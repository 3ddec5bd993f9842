//! What the hub and the spoke agent share to serve HTTP: the TLS listener with certificate reload
//! ([`tls`]), the connection info with its per-connection request count ([`PeerAddr`]), the shutdown signal
//! and the instrumented task spawner.
//!
//! Both servers run the same `axum::serve` loop over plain TCP or over [`tls::TlsListener`]; nothing here
//! knows about the routes they serve.

pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};

use tracing::Instrument as _;

/// Spawns a task that keeps the current tracing span (request id, user), so its log lines stay attributable.
pub fn spawn<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place tasks are spawned; it carries the span"
    )]
    tokio::spawn(future.in_current_span());
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Logs a warning when a plain-HTTP listener is reachable beyond this host: tokens and prompts would then
/// cross the network unencrypted. Loopback listeners (the embedded default) say nothing.
pub fn warn_if_plain_http_beyond_loopback(server: &str, addr: std::net::SocketAddr) {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "{server} serves plain HTTP on a non-loopback address: bearer tokens and prompts cross the \
             network unencrypted; set `tls_cert_file` and `tls_key_file` or put a TLS terminator in front"
        );
    }
}

/// A connection as the router sees it (`ConnectInfo<PeerAddr>`), over plain TCP and over TLS alike: the
/// peer's address, and a count of the requests the connection has sent in the current second, shared by
/// every request on it (one connection, many requests: HTTP/1.1 keep-alive, HTTP/2 streams).
#[derive(Debug, Clone)]
pub struct PeerAddr {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The connection's requests.
    pub requests: Arc<ConnectionRequests>,
}

impl PeerAddr {
    /// A new connection from `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            requests: Arc::new(ConnectionRequests::new()),
        }
    }
}

impl Connected<IncomingStream<'_, tls::TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, tls::TlsListener>) -> Self {
        Self::new(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, NoDelayListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, NoDelayListener>) -> Self {
        Self::new(*stream.remote_addr())
    }
}

/// Requests on one connection, counted in whole-second windows since the connection opened.
#[derive(Debug)]
pub struct ConnectionRequests {
    opened: Instant,
    /// The current window (seconds since `opened`) and the requests counted in it.
    window: Mutex<(u64, u32)>,
}

impl ConnectionRequests {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            window: Mutex::new((0, 0)),
        }
    }

    /// Counts one request and says whether it is within `per_second` requests in this connection's current
    /// second.
    pub fn admit(&self, per_second: u32) -> bool {
        self.admit_at(Instant::now(), per_second)
    }

    fn admit_at(&self, now: Instant, per_second: u32) -> bool {
        let second = now.saturating_duration_since(self.opened).as_secs();
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.0 != second {
            *window = (second, 0);
        }
        window.1 = window.1.saturating_add(1);
        window.1 <= per_second
    }
}

/// A plain TCP listener whose connections have Nagle's algorithm off: a streamed answer is written as many
/// small events, and with Nagle each one after the first would wait for the peer's delayed acknowledgement
/// (tens of milliseconds on a kept-alive connection) before leaving.
#[derive(Debug)]
pub struct NoDelayListener(pub TcpListener);

impl axum::serve::Listener for NoDelayListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        if let Err(err) = stream.set_nodelay(true) {
            tracing::warn!(%err, "could not turn off Nagle's algorithm on a connection");
        }
        (stream, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_connection_is_admitted_up_to_its_ceiling_each_second() {
        let requests = ConnectionRequests::new();
        let start = requests.opened;
        for _ in 0..3 {
            assert!(requests.admit_at(start, 3));
        }
        assert!(!requests.admit_at(start + Duration::from_millis(900), 3));
        // The next second starts a new count.
        assert!(requests.admit_at(start + Duration::from_millis(1000), 3));
    }
}
