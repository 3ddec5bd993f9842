//! What the hub and the spoke agent share to serve HTTP: the TLS listener with certificate reload
//! ([`tls`]), the shutdown signal and the instrumented task spawner.
//!
//! Both servers run the same `axum::serve` loop over plain TCP or over [`tls::TlsListener`]; nothing here
//! knows about the routes they serve.

pub mod tls;

use std::future::Future;

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
