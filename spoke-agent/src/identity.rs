//! Workload identity: how the hub learns which spoke workload a forwarded call comes from.
//!
//! The end user's bearer token says *who* asked; the workload identity says *which application in which
//! account* asked, and must be proven by the agent, never declared by the app. Each [`WorkloadSigner`] adds
//! that proof to a request that is otherwise complete (method, URL, headers, body), so a signer can compute a
//! signature over all of it. The agent calls the signer once per attempt, just before sending, so a retried
//! request carries a fresh signature.
//!
//! [`NoWorkloadIdentity`] adds nothing; it is for a hub reached directly (the embedded default, or a hub that
//! identifies workloads by their network location).

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

/// A request to the hub, complete but for the workload's proof of identity.
pub type HubRequest = http::Request<Bytes>;

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

/// Proves the workload's identity to the hub on each forwarded request.
#[async_trait]
pub trait WorkloadSigner: Send + Sync + fmt::Debug {
    /// A short name for the mechanism, shown by `GET /healthz` (e.g. `none`).
    fn kind(&self) -> &'static str;

    /// Adds the proof of identity to `request` (headers, or a signature over the whole request).
    async fn sign(&self, request: &mut HubRequest) -> Result<(), SignError>;
}

/// No workload identity: requests go to the hub as the app sent them (plus the agent's headers).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWorkloadIdentity;

#[async_trait]
impl WorkloadSigner for NoWorkloadIdentity {
    fn kind(&self) -> &'static str {
        "none"
    }

    async fn sign(&self, _request: &mut HubRequest) -> Result<(), SignError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_workload_identity_leaves_the_request_unchanged() {
        let mut request = http::Request::builder()
            .method("POST")
            .uri("http://hub.example/v1/invoke")
            .header("authorization", "Bearer t")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        NoWorkloadIdentity.sign(&mut request).await.unwrap();
        assert_eq!(request.headers().len(), 1);
        assert_eq!(request.headers()["authorization"], "Bearer t");
        assert_eq!(request.uri(), "http://hub.example/v1/invoke");
        assert_eq!(request.body().as_ref(), b"{}");
        assert_eq!(NoWorkloadIdentity.kind(), "none");
    }
}
