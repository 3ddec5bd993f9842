//! The agent's errors: one boundary type for what an app sees ([`AgentError`]), and the errors of starting
//! and running the listener.
//!
//! Errors the hub returns are not ours: they reach the app with the hub's status and body unchanged. An
//! [`AgentError`] is only for what the agent itself could not do, in the hub's error shape
//! (`{"error":{"code":…,"message":…}}`) so an app handles both the same way.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use causeway_contract::ErrorCode;
use serde_json::json;

/// What the agent could not do for one request.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The app sent a body larger than `max_body_bytes`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The app's body could not be read (the connection broke while sending it).
    #[error("the request body could not be read")]
    UnreadableBody,
    /// The path and query cannot be appended to the hub URL.
    #[error("the request target `{target}` cannot be forwarded")]
    UnforwardableTarget {
        /// The path and query the app asked for.
        target: String,
    },
    /// No connection to the hub, or it broke before an answer arrived.
    #[error("cannot reach the hub at `{hub}`: {reason}")]
    HubUnreachable {
        /// The configured hub URL.
        hub: String,
        /// What went wrong, e.g. `connection refused`.
        reason: String,
    },
    /// The hub did not accept a connection within `connect_timeout_secs`.
    #[error("the hub at `{hub}` did not accept a connection within {} s", waited.as_secs())]
    HubConnectTimeout {
        /// The configured hub URL.
        hub: String,
        /// The connect timeout.
        waited: Duration,
    },
    /// The hub did not answer within `request_timeout_secs`.
    #[error("the hub at `{hub}` did not answer within {} s", waited.as_secs())]
    HubTimeout {
        /// The configured hub URL.
        hub: String,
        /// The request timeout.
        waited: Duration,
    },
    /// The workload's proof of identity could not be produced.
    #[error("cannot prove the workload's identity to the hub: {0}")]
    WorkloadIdentity(#[from] SignError),
    /// No such route on the agent.
    #[error(
        "no route `{0}`; the agent serves the hub's doors (`/v1/invoke`, `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/models`, `/v1/messages`, `/model/{{modelId}}/…`) and `/healthz`"
    )]
    NotFound(String),
    /// The route exists with another method.
    #[error("method `{0}` is not allowed on this route")]
    MethodNotAllowed(String),
}

impl AgentError {
    /// The HTTP status the app receives.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnreadableBody | Self::UnforwardableTarget { .. } => StatusCode::BAD_REQUEST,
            Self::HubUnreachable { .. } => StatusCode::BAD_GATEWAY,
            Self::HubConnectTimeout { .. } | Self::HubTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::WorkloadIdentity(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable, machine-readable code. Codes the hub also uses keep the hub's spelling.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge.as_str(),
            Self::UnreadableBody | Self::UnforwardableTarget { .. } => {
                ErrorCode::InvalidRequest.as_str()
            }
            Self::HubUnreachable { .. } => "hub_unreachable",
            Self::HubConnectTimeout { .. } | Self::HubTimeout { .. } => "hub_timeout",
            Self::WorkloadIdentity(_) => "workload_identity_unavailable",
            Self::NotFound(_) => ErrorCode::NotFound.as_str(),
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed.as_str(),
        }
    }

    /// True for failures on the hub's side of the agent, worth a warning in the agent's log.
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            Self::HubUnreachable { .. }
                | Self::HubConnectTimeout { .. }
                | Self::HubTimeout { .. }
                | Self::WorkloadIdentity(_)
        )
    }
}

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        (self.status_code(), Json(body)).into_response()
    }
}

/// A streamed answer that stopped before the hub finished it. The status has already gone out, so the
/// agent ends the stream abruptly: the app sees a truncated stream, never a clean end.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No byte from the hub for `stream_idle_timeout_secs`.
    #[error("the hub at `{hub}` sent nothing for {} s during a streamed answer", waited.as_secs())]
    Idle {
        /// The configured hub URL.
        hub: String,
        /// The idle timeout.
        waited: Duration,
    },
    /// The connection to the hub broke.
    #[error("the stream from the hub at `{hub}` broke: {reason}")]
    Broken {
        /// The configured hub URL.
        hub: String,
        /// What went wrong.
        reason: String,
    },
}

/// The agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting cannot be used (the configuration was not validated first).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The HTTP client cannot be built (e.g. no TLS roots).
    #[error("cannot build the http client: {0}")]
    HttpClient(String),
}

/// The agent could not start, or its listener failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Start-up failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The listener failed while serving.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(err: AgentError) -> (u16, serde_json::Value) {
        let response = err.into_response();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn unreachable_hub_has_the_documented_shape() {
        let (status, body) = body_of(AgentError::HubUnreachable {
            hub: "http://127.0.0.1:1".to_owned(),
            reason: "connection refused".to_owned(),
        })
        .await;
        assert_eq!(status, 502);
        assert_eq!(
            body,
            json!({"error": {"code": "hub_unreachable", "message": "cannot reach the hub at `http://127.0.0.1:1`: connection refused"}})
        );
    }

    #[tokio::test]
    async fn statuses_and_codes() {
        let cases = [
            (
                AgentError::PayloadTooLarge { limit: 1024 },
                413,
                "payload_too_large",
            ),
            (AgentError::UnreadableBody, 400, "invalid_request"),
            (
                AgentError::HubTimeout {
                    hub: "h".to_owned(),
                    waited: Duration::from_secs(3),
                },
                504,
                "hub_timeout",
            ),
            (
                AgentError::HubConnectTimeout {
                    hub: "h".to_owned(),
                    waited: Duration::from_secs(3),
                },
                504,
                "hub_timeout",
            ),
            (
                AgentError::WorkloadIdentity(SignError::new("no credentials")),
                503,
                "workload_identity_unavailable",
            ),
            (AgentError::NotFound("/x".to_owned()), 404, "not_found"),
            (
                AgentError::MethodNotAllowed("PUT".to_owned()),
                405,
                "method_not_allowed",
            ),
        ];
        for (err, status, code) in cases {
            let message = err.to_string();
            let (got_status, body) = body_of(err).await;
            assert_eq!(got_status, status, "{message}");
            assert_eq!(body["error"]["code"], code, "{message}");
            assert_eq!(body["error"]["message"], message);
            assert!(!message.ends_with('.'), "{message}");
            assert!(
                message.starts_with(|c: char| !c.is_uppercase()),
                "{message}"
            );
        }
    }
}

/// The workload's credentials could not be used to sign a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SignError {
    message: String,
}

impl SignError {
    /// A signing failure; `message` is one lowercase line that holds no secret.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}
