//! Running the router: a local listener (HTTPS or plain HTTP) with graceful shutdown, or the AWS Lambda
//! runtime.

use std::sync::Arc;
use std::time::Duration;

use causeway_server::tls::{CertStore, TlsListener};
use causeway_server::{NoDelayListener, PeerAddr};
use tokio::net::TcpListener;

use crate::app::{AppState, router};

/// True when the process runs inside the AWS Lambda runtime.
pub fn on_lambda(lookup: impl Fn(&str) -> Option<String>) -> bool {
    lookup("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Serves the router on `listener` until `shutdown` resolves: HTTPS when `[server]` names a certificate and
/// key (reloaded every `tls_reload_secs` when renewed), plain HTTP otherwise, with a warning when plain HTTP
/// is reachable beyond this host.
///
/// Accepted connections have Nagle's algorithm off: a streamed answer is written as many small events, and
/// with Nagle each one after the first would wait for the caller's delayed acknowledgement (tens of
/// milliseconds on a kept-alive connection) before leaving.
///
/// # Errors
///
/// When the certificate pair does not load (the server does not start without it), or the server fails.
pub async fn serve_local(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = &state.config.server;
    if let Some(files) = server.tls() {
        let store = CertStore::load(files).map_err(std::io::Error::other)?;
        store.watch(Duration::from_secs(server.tls_reload_secs));
        let listener = TlsListener::new(listener, &store).map_err(std::io::Error::other)?;
        return axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<PeerAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
    }
    if let Ok(addr) = listener.local_addr() {
        causeway_server::warn_if_plain_http_beyond_loopback("the hub", addr);
    }
    let listener = NoDelayListener(listener);
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<PeerAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves the router on AWS Lambda, streaming responses so server-sent events reach the caller as they are
/// produced.
pub async fn serve_lambda(state: Arc<AppState>) -> Result<(), lambda_http::Error> {
    lambda_http::run_with_streaming_response(router(state)).await
}

pub use causeway_server::shutdown_signal;
