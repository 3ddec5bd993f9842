//! Who is calling: the verified human behind every request.
//!
//! Identity is never taken from a client-supplied field: the user comes from a bearer token verified against
//! keys the hub trusts. In `oidc` mode that is the issuer's JWKS; in `dev` mode it is the development key in
//! the data directory, which is never trusted in any other mode.

pub mod dev;
pub mod jwt;
pub mod workload;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

pub use jwt::JwtVerifier;

use crate::error::HubError;

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

#[cfg(test)]
mod tests;
