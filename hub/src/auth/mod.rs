//! Who is calling: the verified human behind every request.
//!
//! Identity is never taken from a client-supplied field: the user comes from a bearer token verified against
//! keys the hub trusts. In `oidc` mode that is the issuer's JWKS; in `dev` mode it is the development key in
//! the data directory, which is never trusted in any other mode.
//!
//! Where the token travels depends on how the call arrived, never on what the client chooses: a direct call
//! carries it in `authorization: Bearer …`; a call API Gateway (or a function URL) verified with IAM
//! authorization uses `authorization` for its SigV4 signature, so the token travels in [`USER_TOKEN_HEADER`].
//! That header is read only when the request context holds a verified IAM caller, and ignored otherwise.

pub mod jwt;
pub mod workload;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

pub use jwt::JwtVerifier;

use crate::budget::SpokeLimits;
use crate::error::HubError;

/// Request header carrying the user's token on calls that arrive with IAM authorization (a bare JWT or
/// `Bearer <jwt>`).
pub use causeway_contract::headers::USER_TOKEN_HEADER;

/// A verified human caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// The token's `sub`.
    pub sub: String,
    /// The token's `iss`.
    pub issuer: String,
    /// Verified group memberships.
    pub groups: Vec<String>,
}

/// A verified workload (spoke account and application). Set by the workload-identity layer when the call
/// arrives through a verified IAM principal; `None` for direct calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentity {
    /// The IAM principal ARN.
    pub principal: String,
    /// The spoke account id.
    pub spoke_account: String,
    /// The organizational unit.
    pub ou: String,
    /// The application id.
    pub application: String,
    /// Catalog model aliases the spoke may use; empty means every model its Cedar policies allow.
    pub allowed_models: Vec<String>,
    /// The spoke's own budgets, counted for `spoke_account`.
    pub limits: SpokeLimits,
    /// The floor of the data classification of the spoke's calls, from its registration.
    pub data_classification: Option<String>,
}

impl WorkloadIdentity {
    /// Whether the spoke's registration lets it use the model `alias` (Cedar still decides the call).
    pub fn may_use(&self, alias: &str) -> bool {
        self.allowed_models.is_empty() || self.allowed_models.iter().any(|m| m == alias)
    }
}

/// Everyone behind one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The human.
    pub user: UserIdentity,
    /// The workload, when verified.
    pub workload: Option<WorkloadIdentity>,
}

/// Why a token was not accepted. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer …` header.
    #[error("missing bearer token: send `authorization: Bearer <token>`")]
    Missing,
    /// The header is not a bearer token.
    #[error("the `authorization` header must be `Bearer <token>`")]
    Malformed,
    /// A call with IAM authorization has no `x-causeway-user-token` header.
    #[error(
        "missing user token: with iam authorization `authorization` carries the aws signature, so send the user's token in `{USER_TOKEN_HEADER}`"
    )]
    MissingUserToken,
    /// The `x-causeway-user-token` header is empty or not readable.
    #[error("the `{USER_TOKEN_HEADER}` header must be `<token>` or `Bearer <token>`")]
    MalformedUserToken,
    /// The token does not verify.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The keys to verify with cannot be loaded.
    #[error("cannot load signing keys: {0}")]
    Keys(String),
}

impl From<AuthError> for HubError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Keys(message) => {
                Self::Internal(format!("cannot load signing keys: {message}"))
            }
            other => Self::Unauthenticated(other.to_string()),
        }
    }
}

/// Extracts the bearer token from the request headers.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}

/// Extracts the user's token from [`USER_TOKEN_HEADER`], for a call whose IAM caller AWS verified. Only
/// call this for such a call: on any other, the header is the client's word and means nothing.
pub fn iam_user_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(USER_TOKEN_HEADER)
        .ok_or(AuthError::MissingUserToken)?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::MalformedUserToken)?
        .trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => return Err(AuthError::MalformedUserToken),
        None if value.eq_ignore_ascii_case("bearer") => return Err(AuthError::MalformedUserToken),
        None => value,
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(AuthError::MalformedUserToken);
    }
    Ok(token)
}

/// The user's token for a call: from [`USER_TOKEN_HEADER`] when AWS verified an IAM caller for it
/// (`iam_verified`), else from `authorization: Bearer …`.
pub fn user_token(headers: &HeaderMap, iam_verified: bool) -> Result<&str, AuthError> {
    if iam_verified {
        iam_user_token(headers)
    } else {
        bearer_token(headers)
    }
}

#[cfg(test)]
mod tests;
