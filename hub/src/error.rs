//! The hub's one boundary error type and its single `IntoResponse`.
//!
//! Every refusal the hub makes becomes `{"error":{"code":…,"message":…}}` with the status of its code. Messages
//! are lowercase single lines that never contain prompt text, tokens or PII. For 5xx errors the body carries a
//! fixed message; the detail is logged with the request id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use causeway_contract::{ErrorBody, ErrorCode, ErrorDetail};
use uuid::Uuid;

/// Why the hub refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// 400: a malformed body, a bad header or an unknown purpose; the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: no or bad bearer token.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: policy denied the call.
    #[error("{0}")]
    Forbidden(String),
    /// 403: a guard blocked the prompt or the answer.
    #[error("{0}")]
    GuardBlocked(String),
    /// 404: unknown model alias; the message lists the aliases this caller may use.
    #[error("{0}")]
    ModelNotFound(String),
    /// 404: no such route.
    #[error("no route for `{0}`")]
    NotFound(String),
    /// 405: route exists with another method.
    #[error("method `{0}` is not allowed here")]
    MethodNotAllowed(String),
    /// 413: the body exceeds `server.max_body_bytes`.
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 413: an image or document is larger than the guard profile allows; the message names the block and
    /// the limit.
    #[error("{0}")]
    ContentTooLarge(String),
    /// 415: the body is not declared as JSON.
    #[error("request body must be JSON (`content-type: application/json`)")]
    UnsupportedMediaType,
    /// 429: a budget is exhausted.
    #[error("{message}")]
    BudgetExceeded {
        /// Which budget, and its limit.
        message: String,
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
    /// 502: the model answered with something unusable.
    #[error("{0}")]
    ModelError(String),
    /// 503: the model provider is unavailable or not configured.
    #[error("{0}")]
    ModelUnavailable(String),
    /// 503: the audit store could not record the call; fail closed.
    #[error("audit store unavailable: {0}")]
    AuditUnavailable(String),
    /// 504: the model did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
}

impl HubError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::GuardBlocked(_) => ErrorCode::GuardBlocked,
            Self::ModelNotFound(_) => ErrorCode::ModelNotFound,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::PayloadTooLarge(_) | Self::ContentTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::BudgetExceeded { .. } => ErrorCode::BudgetExceeded,
            Self::ModelError(_) => ErrorCode::ModelError,
            Self::ModelUnavailable(_) => ErrorCode::ModelUnavailable,
            Self::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The log level for this error: 5xx are errors (they need an operator), 4xx are informational.
    pub fn level(&self) -> tracing::Level {
        if self.status_code().is_server_error() {
            tracing::Level::ERROR
        } else {
            tracing::Level::INFO
        }
    }

    /// The message callers see. 5xx bodies say what happened without internals.
    pub fn public_message(&self) -> String {
        match self {
            Self::AuditUnavailable(_) => {
                "the audit store could not record this call, so no answer was returned; retry later"
                    .to_owned()
            }
            Self::Internal(_) => {
                "internal error; the hub's log has the details under this request id".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// A [`HubError`] with the id of the audit record written for the failed call, when there is one.
#[derive(Debug)]
pub struct ApiError {
    /// The error.
    pub error: HubError,
    /// The audit record of the refused call.
    pub audit_id: Option<Uuid>,
}

impl From<HubError> for ApiError {
    fn from(error: HubError) -> Self {
        Self {
            error,
            audit_id: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.error.status_code();
        let code = self.error.code();
        match self.error.level() {
            tracing::Level::ERROR => {
                tracing::error!(code = code.as_str(), error = %self.error, "request failed")
            }
            _ => tracing::info!(code = code.as_str(), error = %self.error, "request refused"),
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.error.public_message(),
                audit_id: self.audit_id.map(|id| id.to_string()),
            },
        };
        let mut response = (status, Json(body)).into_response();
        match &self.error {
            HubError::BudgetExceeded {
                retry_after_secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            HubError::Unauthenticated(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"causeway\""),
                );
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

// === showing what the caller sent ===

/// Longest value a caller sent that an error message shows, in characters.
pub const SHOWN_CHARS: usize = 64;

/// Longest parser message (which quotes the caller's input) an error message shows, in characters.
pub const SHOWN_DETAIL_CHARS: usize = 256;

/// A value the caller sent (a model, a purpose, a header, a field's value), as an error message may show it:
/// at most [`SHOWN_CHARS`] characters, cut with `…`; control characters, line breaks and invisible or
/// direction-changing characters dropped; backticks turned into `'` so the value cannot close the quoting
/// around it. Error messages reach the caller and the log, and neither should carry a caller's free text.
pub fn shown(value: &str) -> String {
    shown_up_to(value, SHOWN_CHARS)
}

/// [`shown`], cut at `limit` characters.
pub fn shown_up_to(value: &str, limit: usize) -> String {
    cleaned(value, limit, true)
}

/// A parser's message about the caller's input, which quotes what it could not take (an unknown variant, a
/// string where a number belongs), as an error message may show it: as [`shown`], up to
/// [`SHOWN_DETAIL_CHARS`], with the parser's own backtick quoting kept.
pub fn shown_detail(message: &str) -> String {
    cleaned(message, SHOWN_DETAIL_CHARS, false)
}

fn cleaned(value: &str, limit: usize, neutralise_backticks: bool) -> String {
    let mut out = String::with_capacity(value.len().min(limit * 4 + 3));
    let visible = value.chars().filter(|&c| !c.is_control() && !invisible(c));
    for (kept, c) in visible.enumerate() {
        if kept == limit {
            out.push('…');
            break;
        }
        out.push(if neutralise_backticks && c == '`' {
            '\''
        } else {
            c
        });
    }
    out
}

/// Characters that show nothing, join or reorder text, or break lines: Unicode's default-ignorable code
/// points, the directional controls and the line and paragraph separators.
fn invisible(c: char) -> bool {
    causeway_guard::is_default_ignorable(c) || matches!(c, '\u{2028}' | '\u{2029}')
}
