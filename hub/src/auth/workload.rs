//! Workload identity: which spoke account and application a call comes from, proven with IAM.
//!
//! Two ways in, both verified by AWS, never taken from a field the client fills in:
//! - On AWS Lambda behind API Gateway (or a function URL) with IAM authorization, the caller ARN from the
//!   request context, which API Gateway verified.
//! - Standalone, the caller sends a pre-signed `sts:GetCallerIdentity` request in the header
//!   [`WORKLOAD_HEADER`] (base64 of a JSON object `{"method","url","headers","body"}`), the pattern of
//!   Vault's AWS auth method. The hub checks it before anything is sent: it must target the configured STS
//!   endpoint, be a `POST` of exactly `Action=GetCallerIdentity&Version=2011-06-15`, carry a SigV4
//!   `authorization` for the `sts` service that signs `host` and `x-amz-date`, be fresh (`x-amz-date` within
//!   [`MAX_SKEW_SECS`] of the hub's clock) and, when `identity.server_id` is set (configuration requires it
//!   whenever workload identity is required), sign [`SERVER_ID_HEADER`] with that value. Then it forwards the request, unchanged, to that endpoint; STS
//!   checks the signature and answers with the caller's ARN.
//!
//! The ARN is normalised (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` → `arn:aws:iam::ACCOUNT:role/ROLE`)
//! and looked up in the spoke registry. The application comes from [`APPLICATION_HEADER`] and must be one the
//! spoke registered (a spoke with one application may omit it).
//!
//! Constraints: the proof is a bearer credential for a few minutes, so it is never logged; the hub sends it
//! only to the configured endpoint, whatever URL the proof names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::WorkloadIdentity;
use crate::error::HubError;
use crate::registry::SpokeStatus;
use crate::registry::{RegistryError, SpokeRegistry};

pub use causeway_contract::headers::{APPLICATION_HEADER, SERVER_ID_HEADER, WORKLOAD_HEADER};
pub use causeway_contract::workload::{Principal, SignedCallerIdentity, normalise_principal};
/// Largest accepted clock difference between `x-amz-date` and the hub, seconds.
pub const MAX_SKEW_SECS: i64 = 300;
/// The only body a proof may carry (parameters in any order).
const ACTION: &str = "Action=GetCallerIdentity";
const VERSION: &str = "Version=2011-06-15";

/// Why a workload was not accepted. Messages never contain the proof or its signature.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Workload identity is required and none was sent.
    #[error(
        "workload identity required: send a pre-signed `sts:GetCallerIdentity` request in `{WORKLOAD_HEADER}`"
    )]
    Missing,
    /// The proof cannot be read.
    #[error("invalid workload identity: {0}")]
    Malformed(String),
    /// The proof is readable but not acceptable (target, action, freshness, binding).
    #[error("invalid workload identity: {0}")]
    Refused(String),
    /// STS did not accept the signed request.
    #[error("invalid workload identity: sts refused the signed request ({0})")]
    StsRefused(String),
    /// STS could not be reached or answered nonsense.
    #[error("cannot verify the workload identity: {0}")]
    StsUnavailable(String),
    /// The registry cannot answer.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A verified principal the registry does not know, or a suspended one.
    #[error("{message}")]
    NotRegistered {
        /// The normalised principal.
        principal: String,
        /// Its account.
        account: String,
        /// Audit reason, e.g. `workload:unknown_principal`.
        reason: &'static str,
        /// The caller's message.
        message: String,
    },
    /// The application header is missing or names an application the spoke did not register.
    #[error("{0}")]
    Application(String),
}

impl From<WorkloadError> for HubError {
    fn from(err: WorkloadError) -> Self {
        match err {
            WorkloadError::Missing
            | WorkloadError::Malformed(_)
            | WorkloadError::Refused(_)
            | WorkloadError::StsRefused(_) => Self::Unauthenticated(err.to_string()),
            WorkloadError::StsUnavailable(_) | WorkloadError::Registry(_) => {
                Self::Internal(err.to_string())
            }
            WorkloadError::NotRegistered { .. } | WorkloadError::Application(_) => {
                Self::Forbidden(err.to_string())
            }
        }
    }
}

// === proof checks ===

/// Decodes the header value.
pub fn decode_proof(value: &str) -> Result<SignedCallerIdentity, WorkloadError> {
    SignedCallerIdentity::from_header_value(value)
        .map_err(|e| WorkloadError::Malformed(e.to_string()))
}

fn same_target(url: &reqwest::Url, endpoint: &reqwest::Url) -> bool {
    url.scheme() == endpoint.scheme()
        && url.host_str() == endpoint.host_str()
        && url.port_or_known_default() == endpoint.port_or_known_default()
        && url.path() == endpoint.path()
        && url.query().is_none()
        && url.username().is_empty()
        && url.password().is_none()
}

fn parse_amz_date(value: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Checks a proof before anything is sent: target, action, signature form, freshness and binding. Returns
/// its signing time (`x-amz-date`, epoch seconds).
pub fn check_proof(
    proof: &SignedCallerIdentity,
    endpoint: &reqwest::Url,
    server_id: Option<&str>,
    now_unix: i64,
) -> Result<i64, WorkloadError> {
    let refuse = |m: String| Err(WorkloadError::Refused(m));
    if !proof.method.eq_ignore_ascii_case("POST") {
        return refuse("the signed request must be a `POST`".to_owned());
    }
    let Ok(url) = reqwest::Url::parse(&proof.url) else {
        return refuse("the signed request's `url` is not a URL".to_owned());
    };
    if !same_target(&url, endpoint) {
        return refuse(format!(
            "the signed request targets `{}`; this hub accepts only `{endpoint}`",
            crate::error::shown(&url.origin().ascii_serialization())
        ));
    }
    let mut params: Vec<&str> = proof.body.trim().split('&').collect();
    params.sort_unstable();
    if params != [ACTION, VERSION] {
        return refuse(format!(
            "the signed request must be exactly `{ACTION}&{VERSION}`"
        ));
    }
    if let Some(host) = proof.header("host")
        && Some(host) != url.host_str()
        && Some(host.to_owned())
            != url
                .host_str()
                .zip(url.port())
                .map(|(h, p)| format!("{h}:{p}"))
    {
        return refuse("the signed `host` header does not match the `url`".to_owned());
    }
    let Some(authorization) = proof.header("authorization") else {
        return refuse("the signed request has no `authorization` header".to_owned());
    };
    let Some(fields) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return refuse("the signed request is not signed with `AWS4-HMAC-SHA256`".to_owned());
    };
    let field = |name: &str| {
        fields
            .split(',')
            .map(str::trim)
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_default()
    };
    let scope: Vec<&str> = field("Credential=").split('/').collect();
    if scope.len() != 5 || scope[3] != "sts" || scope[4] != "aws4_request" {
        return refuse("the signature's credential scope is not for the `sts` service".to_owned());
    }
    let signed: Vec<&str> = field("SignedHeaders=").split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !signed.contains(&required) {
            return refuse(format!("the signature does not cover `{required}`"));
        }
    }
    let Some(date) = proof.header("x-amz-date").and_then(parse_amz_date) else {
        return refuse("the signed request has no valid `x-amz-date`".to_owned());
    };
    let skew = (now_unix - date).abs();
    if skew > MAX_SKEW_SECS {
        return refuse(format!(
            "the signed request is stale: `x-amz-date` is {skew} s from the hub's clock (at most {MAX_SKEW_SECS} s)"
        ));
    }
    if let Some(expected) = server_id
        && (!signed.contains(&SERVER_ID_HEADER) || proof.header(SERVER_ID_HEADER) != Some(expected))
    {
        return refuse(format!(
            "the signed request must sign `{SERVER_ID_HEADER}: {expected}`"
        ));
    }
    Ok(date)
}

// === STS ===

/// Sends a checked proof to STS and returns the caller ARN it answers with.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait CallerIdentityResolver: Send + Sync + std::fmt::Debug {
    /// The ARN STS returns for the signed request.
    async fn caller_arn(&self, proof: &SignedCallerIdentity) -> Result<String, WorkloadError>;
}

/// Forwards proofs to the configured STS endpoint over HTTPS (HTTP only for a local endpoint in tests).
#[derive(Debug)]
pub struct StsForwarder {
    endpoint: reqwest::Url,
    /// Built on the first proof, not at start-up: loading the platform's CA certificates is a noticeable
    /// share of a cold start, and a hub whose callers send no workload identity never needs it.
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

impl StsForwarder {
    /// A forwarder to `endpoint`. Its HTTP client is built when the first proof is forwarded.
    #[must_use]
    pub fn new(endpoint: reqwest::Url) -> Self {
        Self {
            endpoint,
            http: std::sync::OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, WorkloadError> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("cannot build the STS client: {e}"))
            })
            .as_ref()
            .map_err(|e| WorkloadError::StsUnavailable(e.clone()))
    }
}

/// The text of the first `<tag>…</tag>` element.
fn xml_element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].trim())
}

#[async_trait]
impl CallerIdentityResolver for StsForwarder {
    async fn caller_arn(&self, proof: &SignedCallerIdentity) -> Result<String, WorkloadError> {
        let mut request = self
            .http()?
            .post(self.endpoint.clone())
            .body(proof.body.clone());
        for (name, value) in &proof.headers {
            let name = name.to_ascii_lowercase();
            // Framing headers are the HTTP client's to set; everything else goes as signed.
            if matches!(
                name.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding"
            ) {
                continue;
            }
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| WorkloadError::StsUnavailable(format!("sts: {}", e.without_url())))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| WorkloadError::StsUnavailable(format!("sts: {}", e.without_url())))?;
        if status.is_client_error() {
            let code = xml_element(&text, "Code").unwrap_or("unknown error");
            return Err(WorkloadError::StsRefused(format!(
                "{} {code}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(WorkloadError::StsUnavailable(format!(
                "sts answered {}",
                status.as_u16()
            )));
        }
        xml_element(&text, "Arn")
            .filter(|_| text.contains("GetCallerIdentityResult"))
            .map(str::to_owned)
            .ok_or_else(|| {
                WorkloadError::StsUnavailable("sts answered without a caller ARN".to_owned())
            })
    }
}

// === the verifier ===

/// Most proofs remembered at once; beyond it, expired ones are dropped, then all.
const CACHE_ENTRIES: usize = 10_000;

/// Verifies workload identities and maps them to registered spokes.
///
/// A proof STS accepted is remembered (by its SHA-256, never its text) until its freshness window ends, so an
/// agent that reuses one proof for many calls costs one STS round trip; every call still passes
/// [`check_proof`] and the registry lookup, so a suspension applies at once.
#[derive(Debug)]
pub struct WorkloadVerifier {
    endpoint: reqwest::Url,
    server_id: Option<String>,
    required: bool,
    resolver: Arc<dyn CallerIdentityResolver>,
    registry: Arc<dyn SpokeRegistry>,
    verified: Mutex<HashMap<[u8; 32], (String, i64)>>,
}

impl WorkloadVerifier {
    /// A verifier for the configured endpoint and binding.
    pub fn new(
        endpoint: reqwest::Url,
        server_id: Option<String>,
        required: bool,
        resolver: Arc<dyn CallerIdentityResolver>,
        registry: Arc<dyn SpokeRegistry>,
    ) -> Self {
        Self {
            endpoint,
            server_id,
            required,
            resolver,
            registry,
            verified: Mutex::new(HashMap::new()),
        }
    }

    async fn caller_arn(
        &self,
        value: &str,
        proof: &SignedCallerIdentity,
        signed_at: i64,
        now_unix: i64,
    ) -> Result<String, WorkloadError> {
        let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        let remembered = self
            .verified
            .lock()
            .ok()
            .and_then(|cache| cache.get(&digest).cloned());
        if let Some((arn, _)) = remembered.filter(|(_, until)| *until >= now_unix) {
            return Ok(arn);
        }
        let arn = self.resolver.caller_arn(proof).await?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, (_, until)| *until >= now_unix);
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(digest, (arn.clone(), signed_at + MAX_SKEW_SECS));
        }
        Ok(arn)
    }

    /// The workload behind a request: from the Lambda request context when API Gateway verified one, else
    /// from the proof header. `None` when neither is present and workload identity is optional.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        context_arn: Option<&str>,
        now_unix: i64,
    ) -> Result<Option<WorkloadIdentity>, WorkloadError> {
        let arn = match (context_arn, headers.get(WORKLOAD_HEADER)) {
            (Some(arn), _) => arn.to_owned(),
            (None, Some(value)) => {
                let value = value.to_str().map_err(|_| {
                    WorkloadError::Malformed(format!("`{WORKLOAD_HEADER}` must be ASCII"))
                })?;
                let proof = decode_proof(value)?;
                let signed_at =
                    check_proof(&proof, &self.endpoint, self.server_id.as_deref(), now_unix)?;
                self.caller_arn(value, &proof, signed_at, now_unix).await?
            }
            (None, None) if self.required => return Err(WorkloadError::Missing),
            (None, None) => return Ok(None),
        };
        let principal = normalise_principal(&arn).ok_or_else(|| {
            WorkloadError::Refused(format!(
                "the caller `{arn}` is not an IAM role or user; call with a spoke role"
            ))
        })?;
        let not_registered = |reason, message| WorkloadError::NotRegistered {
            principal: principal.arn.clone(),
            account: principal.account.clone(),
            reason,
            message,
        };
        let Some(spoke) = self.registry.lookup(&principal.arn).await? else {
            return Err(not_registered(
                "workload:unknown_principal",
                format!(
                    "principal `{}` is not registered as a spoke of this hub",
                    principal.arn
                ),
            ));
        };
        if spoke.status == SpokeStatus::Suspended {
            return Err(not_registered(
                "workload:spoke_suspended",
                format!(
                    "spoke account `{}` (principal `{}`) is suspended",
                    spoke.account, principal.arn
                ),
            ));
        }
        let requested = headers
            .get(APPLICATION_HEADER)
            .map(|v| v.to_str().unwrap_or_default().trim().to_owned());
        let application = match (requested, spoke.applications.as_slice()) {
            (Some(app), apps) if apps.contains(&app) => app,
            (None, [only]) => only.clone(),
            (Some(app), apps) => {
                return Err(WorkloadError::Application(format!(
                    "application `{}` is not registered for principal `{}`; registered: {}",
                    crate::error::shown(&app),
                    principal.arn,
                    listed(apps)
                )));
            }
            (None, apps) => {
                return Err(WorkloadError::Application(format!(
                    "send `{APPLICATION_HEADER}`: principal `{}` is registered for {}",
                    principal.arn,
                    listed(apps)
                )));
            }
        };
        // A principal shared by several applications would let any of them claim another's name: each
        // must then call in a role session named after its application (`<application>@…`, the agent's
        // default), which the invoker role's trust policy restricts per caller with `sts:RoleSessionName`.
        if spoke.applications.len() > 1 {
            let session = causeway_contract::workload::role_session(&arn);
            if !session.is_some_and(|s| s.starts_with(&format!("{application}@"))) {
                return Err(WorkloadError::Application(format!(
                    "principal `{}` serves several applications, so a call for `{application}` must come from a role session named `{application}@…`; this one is `{}`",
                    principal.arn,
                    session.unwrap_or("(not a role session)")
                )));
            }
        }
        Ok(Some(WorkloadIdentity {
            data_classification: spoke.classification_of(&application),
            principal: principal.arn,
            spoke_account: spoke.account,
            ou: spoke.ou,
            application,
            allowed_models: spoke.allowed_models,
            limits: spoke.limits,
        }))
    }
}

fn listed(items: &[String]) -> String {
    if items.is_empty() {
        return "no applications".to_owned();
    }
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
