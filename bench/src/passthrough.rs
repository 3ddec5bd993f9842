//! The bare pass-through: an axum proxy that does nothing but forward. It is the floor every gateway is
//! compared with: the cost of one extra HTTP hop in Rust, with connection pooling to the upstream and the
//! response body streamed through as it arrives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus the ones the client recomputes.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

#[derive(Debug)]
struct Upstream {
    base: String,
    http: reqwest::Client,
}

/// The proxy's router: every method and path is forwarded to `upstream` (e.g. `http://127.0.0.1:9000`).
pub fn router(upstream: &str) -> anyhow::Result<Router> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the upstream client")?;
    let state = Arc::new(Upstream {
        base: upstream.trim_end_matches('/').to_owned(),
        http,
    });
    Ok(Router::new()
        .fallback(forward)
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(state))
}

/// Serves the proxy on `addr` until SIGTERM or Ctrl-C.
pub async fn serve(addr: SocketAddr, upstream: &str) -> anyhow::Result<()> {
    let listener = bind(addr).await?;
    axum::serve(listener, router(upstream)?)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the pass-through")
}

/// A listener whose connections have `TCP_NODELAY` set, as model servers and gateways set it (Python's
/// asyncio and Node.js do by default): without it a streamed event written while the previous one is still
/// unacknowledged waits for the peer's delayed ACK (Nagle), about 40 ms on Linux.
pub async fn bind(
    addr: SocketAddr,
) -> anyhow::Result<impl axum::serve::Listener<Addr = SocketAddr>> {
    use axum::serve::ListenerExt as _;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    Ok(listener.tap_io(|tcp| {
        // A socket that refuses the option still works, only slower when streaming.
        let _ = tcp.set_nodelay(true);
    }))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

fn forwardable(name: &str) -> bool {
    !HOP_BY_HOP.contains(&name)
}

async fn forward(
    State(upstream): State<Arc<Upstream>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = upstream
        .http
        .request(method, format!("{}{path}", upstream.base))
        .body(body);
    for (name, value) in &headers {
        if forwardable(name.as_str()) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(err) => {
            let status = if err.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            return (status, "upstream unavailable").into_response();
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if forwardable(name.as_str()) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_rest_kept() {
        assert!(!forwardable("connection"));
        assert!(!forwardable("transfer-encoding"));
        assert!(!forwardable("host"));
        assert!(forwardable("authorization"));
        assert!(forwardable("content-type"));
    }
}
