//! The error body every Causeway HTTP endpoint returns: `{"error":{"code":…,"message":…}}`.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. Each maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request body or a header is malformed.
    InvalidRequest,
    /// 401: no credentials, or credentials that do not verify.
    Unauthenticated,
    /// 403: the caller is identified but policy denies the call.
    Forbidden,
    /// 403: a guard blocked the prompt or the answer.
    GuardBlocked,
    /// 404: the model alias does not exist or is not visible to the caller.
    ModelNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists with another method.
    MethodNotAllowed,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 429: a request-rate or token budget is exhausted.
    BudgetExceeded,
    /// 502: the model answered with something the hub could not accept.
    ModelError,
    /// 503: the audit store cannot record the call, so nothing is answered.
    AuditUnavailable,
    /// 503: the model provider is unreachable, throttling or not configured.
    ModelUnavailable,
    /// 504: the request took longer than the configured timeout.
    Timeout,
    /// 500: anything else. The message is generic; details go to the hub's log.
    Internal,
}

impl ErrorCode {
    /// The HTTP status code for this error.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden | Self::GuardBlocked => 403,
            Self::ModelNotFound | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::BudgetExceeded => 429,
            Self::ModelError => 502,
            Self::AuditUnavailable | Self::ModelUnavailable => 503,
            Self::Timeout => 504,
            Self::Internal => 500,
        }
    }

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::GuardBlocked => "guard_blocked",
            Self::ModelNotFound => "model_not_found",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BudgetExceeded => "budget_exceeded",
            Self::ModelError => "model_error",
            Self::AuditUnavailable => "audit_unavailable",
            Self::ModelUnavailable => "model_unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }
}

/// The inner object of an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// One lowercase line for people; never contains prompt text, tokens or PII.
    pub message: String,
    /// The audit record written for this failed call, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
}

/// `{"error":{"code":…,"message":…}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}
