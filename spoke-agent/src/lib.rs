//! The Causeway spoke agent: a local endpoint next to spoke workloads that forwards their model calls to the
//! hub, so app code never holds a model credential or a hub secret.
//!
//! Apps call the agent as they would call the hub, through every door the hub has: the native
//! `POST /v1/invoke`, OpenAI's `POST /v1/chat/completions`, `/v1/responses` and `/v1/embeddings` (streamed as
//! server-sent events with `stream: true`), `GET /v1/models`, Anthropic's `POST /v1/messages` (and
//! `/count_tokens`), and Bedrock Runtime's `POST /model/{modelId}/…` operations (streams relayed as AWS event
//! streams).
//! The agent passes the end user's bearer token through unchanged (in `x-causeway-user-token` when it signs
//! the whole request for a hub behind API Gateway with IAM authorization), names the application, fills in the
//! declared purpose OpenAI clients cannot send, proves the workload's identity through a
//! [`identity::WorkloadSigner`], and relays the hub's answer (errors included) unchanged. `GET /healthz`
//! answers for the agent itself.
//!
//! Constraints: the agent never logs tokens, prompts or answers (every credential header is marked
//! sensitive as it arrives and as it leaves); it never retries a call the hub may have received; it buffers
//! request bodies (bounded by `max_body_bytes`) but never a streamed answer. It lends the spoke's identity to
//! every caller that reaches it, so it listens on loopback unless `allow_network_listen` says otherwise.
//!
//! ```no_run
//! # async fn run() -> Result<(), causeway_agent::error::ServeError> {
//! let config = causeway_agent::config::AgentConfig::load(None, |key| std::env::var(key).ok())
//!     .map_err(|e| causeway_agent::error::StartError::Config(e.to_string()))?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! causeway_agent::serve(config, listener, causeway_agent::shutdown_signal()).await
//! # }
//! ```

pub mod config;
pub mod credentials;
pub mod doctor;
pub mod error;
pub mod forward;
pub mod identity;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use causeway_server::tls::{CertStore, TlsListener};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::config::AgentConfig;
use crate::error::{AgentError, ServeError, StartError};
use crate::forward::{Door, Forwarder};
use crate::identity::WorkloadSigner;

/// What every handler shares: the configuration and the forwarder built from it.
#[derive(Debug)]
pub struct AgentState {
    /// The configuration the agent was built from.
    pub config: AgentConfig,
    /// Sends requests to the hub.
    pub forwarder: Forwarder,
}

impl AgentState {
    /// Builds the agent's state; `signer` proves the workload's identity to the hub.
    pub fn new(config: AgentConfig, signer: Arc<dyn WorkloadSigner>) -> Result<Self, StartError> {
        let forwarder = Forwarder::new(&config, signer)?;
        Ok(Self { config, forwarder })
    }
}

async fn invoke_create(State(state): State<Arc<AgentState>>, request: Request) -> Response {
    state.forwarder.forward(Door::Native, request).await
}

async fn chat_completions_create(
    State(state): State<Arc<AgentState>>,
    request: Request,
) -> Response {
    state.forwarder.forward(Door::PurposeHeader, request).await
}

async fn models_list(State(state): State<Arc<AgentState>>, request: Request) -> Response {
    state.forwarder.forward(Door::PurposeHeader, request).await
}

async fn responses_create(State(state): State<Arc<AgentState>>, request: Request) -> Response {
    state.forwarder.forward(Door::PurposeHeader, request).await
}

async fn embeddings_create(State(state): State<Arc<AgentState>>, request: Request) -> Response {
    state.forwarder.forward(Door::PurposeHeader, request).await
}

async fn messages_create(State(state): State<Arc<AgentState>>, request: Request) -> Response {
    state.forwarder.forward(Door::Anthropic, request).await
}

/// `POST /model/{modelId}/{converse | converse-stream | invoke | invoke-with-response-stream}`.
async fn model_operation(State(state): State<Arc<AgentState>>, request: Request) -> Response {
    state.forwarder.forward(Door::BedrockRuntime, request).await
}

/// The agent itself is up; says where it forwards to. It does not call the hub, so an app's health check
/// never adds load to it.
async fn health_show(State(state): State<Arc<AgentState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "hub_url": state.forwarder.hub_url(),
        "application": state.config.application,
        "default_purpose": state.config.default_purpose,
        "workload_identity": state.forwarder.signer().kind(),
    }))
}

async fn not_found(uri: Uri) -> AgentError {
    AgentError::NotFound(uri.path().to_owned())
}

async fn method_not_allowed(method: Method) -> AgentError {
    AgentError::MethodNotAllowed(method.to_string())
}

/// Marks the credential headers of an app's request sensitive before anything else sees it, so no log line
/// or debug output shows their values.
async fn hide_credentials(mut request: Request, next: Next) -> Response {
    forward::mark_sensitive(request.headers_mut());
    next.run(request).await
}

/// The agent's router.
pub fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/v1/invoke", post(invoke_create))
        .route("/v1/chat/completions", post(chat_completions_create))
        .route("/v1/models", get(models_list))
        .route("/v1/responses", post(responses_create))
        .route("/v1/embeddings", post(embeddings_create))
        .route("/v1/messages", post(messages_create))
        .route("/v1/messages/count_tokens", post(messages_create))
        .route("/model/{model_id}/{operation}", post(model_operation))
        .route("/healthz", get(health_show))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(hide_credentials))
        .with_state(state)
}

/// Serves the agent for `config` on `listener` until `shutdown` resolves, proving the workload's identity as
/// `[workload_identity]` says (see [`identity::Workload::load`]).
pub async fn serve(
    config: AgentConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let workload = identity::Workload::load(&config).await?;
    let state = AgentState::new(config, workload.signer)?;
    serve_state(Arc::new(state), listener, shutdown).await
}

/// Serves an agent built with [`AgentState::new`] on `listener` until `shutdown` resolves: HTTPS when the
/// config names a certificate and key (reloaded every `tls_reload_secs` when renewed), plain HTTP
/// otherwise, with a warning when plain HTTP is reachable beyond this host. Open streams are allowed to
/// finish. Accepted connections have Nagle's algorithm off, so each streamed event leaves when it is
/// relayed instead of waiting for the application's delayed acknowledgement.
pub async fn serve_state(
    state: Arc<AgentState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tls = state.config.tls();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr, tls = tls.is_some(), hub = state.forwarder.hub_url(),
            workload_identity = state.forwarder.signer().kind(), "causeway-agent listening"
        );
        if tls.is_none() {
            causeway_server::warn_if_plain_http_beyond_loopback("the agent", addr);
        }
        if !addr.ip().to_canonical().is_loopback() {
            // Config validation lets this through only with `allow_network_listen = true`.
            tracing::warn!(
                %addr,
                "the agent listens beyond loopback (`allow_network_listen = true`): every caller that reaches \
                 it calls the hub as this spoke"
            );
        }
    }
    if let Some(files) = tls {
        let store = CertStore::load(files).map_err(|e| StartError::Config(e.to_string()))?;
        store.watch(Duration::from_secs(state.config.tls_reload_secs));
        let listener =
            TlsListener::new(listener, &store).map_err(|e| StartError::Config(e.to_string()))?;
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown)
            .await?;
        return Ok(());
    }
    axum::serve(causeway_server::NoDelayListener(listener), router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

pub use causeway_server::shutdown_signal;

#[cfg(test)]
mod tests;
