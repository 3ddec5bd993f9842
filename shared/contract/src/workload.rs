//! The workload proof and the principals it names: how a spoke's agent proves which IAM principal calls, and
//! the form of that principal the spoke registry is keyed by.
//!
//! The agent makes the proof (a pre-signed `sts:GetCallerIdentity` request, signed with the invoker role's
//! credentials) and sends it in [`crate::headers::WORKLOAD_HEADER`]; the hub decodes it with
//! [`SignedCallerIdentity::from_header_value`], checks it and forwards it to STS, whose answer names the
//! caller. A proof is a bearer credential for a few minutes: no error here quotes it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::headers::WORKLOAD_HEADER;

/// The body of every proof.
pub const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// Largest accepted proof header, bytes.
pub const MAX_PROOF_BYTES: usize = 16 * 1024;

/// A pre-signed `sts:GetCallerIdentity` request: the header value is base64 of this object as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCallerIdentity {
    /// `POST`.
    pub method: String,
    /// The STS endpoint the request was signed for, ending in `/` (e.g. `https://sts.amazonaws.com/`).
    pub url: String,
    /// The request headers, `authorization` and `x-amz-date` included.
    pub headers: BTreeMap<String, String>,
    /// [`GET_CALLER_IDENTITY`].
    pub body: String,
}

/// A proof header that cannot be read. The messages never quote the proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Over [`MAX_PROOF_BYTES`].
    #[error("`{WORKLOAD_HEADER}` is larger than {MAX_PROOF_BYTES} bytes")]
    TooLarge,
    /// Not base64.
    #[error("`{WORKLOAD_HEADER}` is not base64")]
    NotBase64,
    /// Base64, but not the JSON object (where the parser stopped, never what it read).
    #[error(
        "`{WORKLOAD_HEADER}` must be base64 of {{\"method\",\"url\",\"headers\",\"body\"}} (the decoded JSON is not that object at line {line}, column {column})"
    )]
    NotTheObject {
        /// The line.
        line: usize,
        /// The column.
        column: usize,
    },
}

impl SignedCallerIdentity {
    /// The value for [`WORKLOAD_HEADER`].
    pub fn to_header_value(&self) -> String {
        STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a [`WORKLOAD_HEADER`] value.
    ///
    /// # Errors
    ///
    /// When it is too large, not base64, or not the object.
    pub fn from_header_value(value: &str) -> Result<Self, ProofError> {
        if value.len() > MAX_PROOF_BYTES {
            return Err(ProofError::TooLarge);
        }
        let bytes = STANDARD
            .decode(value.trim())
            .map_err(|_| ProofError::NotBase64)?;
        // The parser's own message may quote the proof, a credential: only where it went wrong is kept.
        serde_json::from_slice(&bytes).map_err(|e| ProofError::NotTheObject {
            line: e.line(),
            column: e.column(),
        })
    }

    /// The value of the signed header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A caller ARN reduced to the principal the registry is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:<partition>:iam::<account>:role/<name>` or `…:user/<name>`.
    pub arn: String,
    /// The account id.
    pub account: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// Normalises an IAM or STS caller ARN: a role session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) and
/// a role with a path (`arn:aws:iam::ACCOUNT:role/PATH/ROLE`) both become `arn:aws:iam::ACCOUNT:role/ROLE`;
/// users lose their path the same way. Anything else (root, federated users, malformed text) is `None`.
pub fn normalise_principal(arn: &str) -> Option<Principal> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let (kind, name) = match (service, segments.as_slice()) {
        ("sts", ["assumed-role", role, session]) if valid_name(session) => ("role", *role),
        ("iam", ["role", .., role]) if segments.len() >= 2 => ("role", *role),
        ("iam", ["user", .., user]) if segments.len() >= 2 => ("user", *user),
        _ => return None,
    };
    valid_name(name).then(|| Principal {
        arn: format!("arn:{partition}:iam::{account}:{kind}/{name}"),
        account: account.to_owned(),
    })
}

/// The session name of a role session ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
pub fn role_session(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let rest = resource.strip_prefix("assumed-role/")?;
    rest.split_once('/').map(|(_, session)| session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_round_trips_through_its_header_and_bad_ones_are_named_without_quoting() {
        let proof = SignedCallerIdentity {
            method: "POST".into(),
            url: "https://sts.amazonaws.com/".into(),
            headers: BTreeMap::from([("X-Amz-Date".into(), "20260101T000000Z".into())]),
            body: GET_CALLER_IDENTITY.into(),
        };
        let decoded = SignedCallerIdentity::from_header_value(&proof.to_header_value()).unwrap();
        assert_eq!(decoded, proof);
        assert_eq!(decoded.header("x-amz-date"), Some("20260101T000000Z"));
        assert_eq!(
            SignedCallerIdentity::from_header_value("not base64!"),
            Err(ProofError::NotBase64)
        );
        let secret = STANDARD.encode(r#"{"method":"POST","secret":"AKIAEXAMPLE"}"#);
        let err = SignedCallerIdentity::from_header_value(&secret).unwrap_err();
        assert!(!err.to_string().contains("AKIA"), "{err}");
        assert_eq!(
            SignedCallerIdentity::from_header_value(&"A".repeat(MAX_PROOF_BYTES + 1)),
            Err(ProofError::TooLarge)
        );
    }

    #[test]
    fn sessions_and_paths_normalise_to_the_role() {
        let role =
            normalise_principal("arn:aws:sts::111122223333:assumed-role/claims/app@host").unwrap();
        assert_eq!(role.arn, "arn:aws:iam::111122223333:role/claims");
        assert_eq!(role.account, "111122223333");
        assert_eq!(
            normalise_principal("arn:aws:iam::111122223333:role/team/claims")
                .unwrap()
                .arn,
            "arn:aws:iam::111122223333:role/claims"
        );
        assert!(normalise_principal("arn:aws:iam::111122223333:root").is_none());
        assert_eq!(
            role_session("arn:aws:sts::111122223333:assumed-role/claims/app@host"),
            Some("app@host")
        );
    }
}
