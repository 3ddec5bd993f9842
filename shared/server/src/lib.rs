//! What the hub and the spoke agent share to serve HTTP: the TLS listener with certificate reload
//! ([`tls`]), the shutdown signal and the instrumented task spawner.
//!
//! Both servers run the same `axum::serve` loop over plain TCP or over [`tls::TlsListener`]; nothing here
//! knows about the routes they serve.

pub mod tls;

use std::future::Future;
use std::net::SocketAddr;

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

/// The address of a connection's peer, as the router sees it (`ConnectInfo<PeerAddr>`), over plain TCP and
/// over TLS alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tls::TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, NoDelayListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, NoDelayListener>) -> Self {
        Self(*stream.remote_addr())
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
