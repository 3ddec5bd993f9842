//! Running the router: a local listener with graceful shutdown, or the AWS Lambda runtime.

use std::sync::Arc;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

use crate::app::{AppState, router};

/// True when the process runs inside the AWS Lambda runtime.
pub fn on_lambda(lookup: impl Fn(&str) -> Option<String>) -> bool {
    lookup("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Serves the router on `listener` until `shutdown` resolves.
///
/// Accepted connections have Nagle's algorithm off: a streamed answer is written as many small events, and
/// with Nagle each one after the first would wait for the caller's delayed acknowledgement (tens of
/// milliseconds on a kept-alive connection) before leaving.
pub async fn serve_local(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "could not turn off Nagle's algorithm on a connection");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the router on AWS Lambda, streaming responses so server-sent events reach the caller as they are
/// produced.
pub async fn serve_lambda(state: Arc<AppState>) -> Result<(), lambda_http::Error> {
    lambda_http::run_with_streaming_response(router(state)).await
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
