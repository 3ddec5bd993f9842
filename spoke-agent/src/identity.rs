//! Workload identity: how the hub learns which spoke workload a forwarded call comes from.
//!
//! The end user's bearer token says *who* asked; the workload identity says *which application in which
//! account* asked, and must be proven by the agent, never declared by the app. Each [`WorkloadSigner`] adds
//! that proof to a request that is otherwise complete (method, URL, headers, body), so a signer can compute a
//! signature over all of it. The agent calls the signer once per attempt, just before sending, so a retried
//! request carries a fresh signature.
//!
//! [`NoWorkloadIdentity`] adds nothing; it is for a hub reached directly (the embedded default, or a hub that
//! identifies workloads by their network location). [`StsProofSigner`] adds a pre-signed
//! `sts:GetCallerIdentity` request, made with the invoker role's credentials, in the header
//! [`WORKLOAD_HEADER`]: base64 of the JSON object `{"method","url","headers","body"}`. It signs `host`,
//! `x-amz-date` and, when the hub binds proofs to itself, [`SERVER_ID_HEADER`]. The hub checks the proof,
//! forwards it to STS and learns the role from STS's answer; the agent never states the role itself.
//!
//! [`Sigv4Signer`] is for a hub behind API Gateway with IAM authorization, where AWS itself checks who calls:
//! it moves the app's `authorization` value (the user's `Bearer …` token) into [`USER_TOKEN_HEADER`], then
//! signs the whole request (method, URL, every header but those proxies may change, and the SHA-256 of the
//! body) with SigV4 for the `execute-api` service, setting `authorization`, `x-amz-date` and
//! `x-amz-security-token`. The user's token is among the signed headers, so it cannot be swapped in transit.
//!
//! Constraints: a proof or a signed request is a bearer credential for a few minutes, so neither is logged.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};

use crate::config::{AgentConfig, WorkloadIdentityMode, default_session_name};
use crate::credentials::{AssumeRoleSettings, CredentialCache, RoleCredentials, StsRoleAssumer};
use crate::error::StartError;

pub use causeway_contract::headers::{SERVER_ID_HEADER, USER_TOKEN_HEADER, WORKLOAD_HEADER};
pub use causeway_contract::workload::{GET_CALLER_IDENTITY, SignedCallerIdentity};
/// The service API Gateway checks signatures for.
pub const EXECUTE_API: &str = "execute-api";

/// A request to the hub, complete but for the workload's proof of identity.
pub type HubRequest = http::Request<Bytes>;

pub use crate::error::SignError;

/// Proves the workload's identity to the hub on each forwarded request.
#[async_trait]
pub trait WorkloadSigner: Send + Sync + fmt::Debug {
    /// A short name for the mechanism, shown by `GET /healthz` (e.g. `none`).
    fn kind(&self) -> &'static str;

    /// True when the hub is reached through a gateway that refuses any request this signer did not sign,
    /// health checks included.
    fn signs_every_request(&self) -> bool {
        false
    }

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

// === impl StsProofSigner ===

/// Adds a fresh pre-signed `sts:GetCallerIdentity` proof, made with the invoker role's credentials, to each
/// request.
#[derive(Debug)]
pub struct StsProofSigner {
    credentials: Arc<CredentialCache>,
    url: String,
    region: String,
    server_id: Option<String>,
}

impl StsProofSigner {
    /// A signer for proofs aimed at `sts_endpoint` (which must be the hub's `identity.sts_endpoint`), signed
    /// for `region`, binding `server_id` when given.
    pub fn new(
        credentials: Arc<CredentialCache>,
        sts_endpoint: &str,
        region: &str,
        server_id: Option<String>,
    ) -> Self {
        Self {
            credentials,
            url: format!("{}/", sts_endpoint.trim_end_matches('/')),
            region: region.to_owned(),
            server_id,
        }
    }

    /// The role credentials behind the proofs.
    pub fn credentials(&self) -> &Arc<CredentialCache> {
        &self.credentials
    }

    /// A proof signed now with the current role credentials, as the value of [`WORKLOAD_HEADER`].
    pub async fn proof_header(&self) -> Result<HeaderValue, SignError> {
        let credentials = self
            .credentials
            .get()
            .await
            .map_err(|e| SignError::new(e.to_string()))?;
        let proof = presign(
            &credentials,
            &self.url,
            &self.region,
            self.server_id.as_deref(),
            SystemTime::now(),
        )?;
        let json = serde_json::to_vec(&proof)
            .map_err(|e| SignError::new(format!("cannot encode the proof: {e}")))?;
        HeaderValue::from_str(&STANDARD.encode(json))
            .map_err(|_| SignError::new("the proof cannot be sent in a header"))
    }
}

/// Signs `GetCallerIdentity` for `url` at `time` with `credentials`.
pub fn presign(
    credentials: &RoleCredentials,
    url: &str,
    region: &str,
    server_id: Option<&str>,
    time: SystemTime,
) -> Result<SignedCallerIdentity, SignError> {
    let failed = |what: &str| SignError::new(format!("cannot sign the identity proof: {what}"));
    let mut headers = BTreeMap::from([(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
    )]);
    if let Some(id) = server_id {
        headers.insert(SERVER_ID_HEADER.to_owned(), id.to_owned());
    }
    let identity = credentials.to_sdk().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(GET_CALLER_IDENTITY.as_bytes()),
    )
    .map_err(|e| failed(&e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e.to_string()))?
        .into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(name.to_ascii_lowercase(), value.to_owned());
    }
    Ok(SignedCallerIdentity {
        method: "POST".to_owned(),
        url: url.to_owned(),
        headers,
        body: GET_CALLER_IDENTITY.to_owned(),
    })
}

#[async_trait]
impl WorkloadSigner for StsProofSigner {
    fn kind(&self) -> &'static str {
        "sts_proof"
    }

    async fn sign(&self, request: &mut HubRequest) -> Result<(), SignError> {
        let proof = self.proof_header().await?;
        request.headers_mut().insert(WORKLOAD_HEADER, proof);
        Ok(())
    }
}

// === impl Sigv4Signer ===

/// Signs every request to the hub with SigV4 for `execute-api`, with the invoker role's credentials, after
/// moving the user's token out of `authorization` into [`USER_TOKEN_HEADER`].
#[derive(Debug)]
pub struct Sigv4Signer {
    credentials: Arc<CredentialCache>,
    region: String,
}

impl Sigv4Signer {
    /// A signer for the hub API in `region`.
    pub fn new(credentials: Arc<CredentialCache>, region: &str) -> Self {
        Self {
            credentials,
            region: region.to_owned(),
        }
    }

    /// Moves the user's token and signs `request` as of `time`.
    pub async fn sign_at(
        &self,
        request: &mut HubRequest,
        time: SystemTime,
    ) -> Result<(), SignError> {
        let credentials = self
            .credentials
            .get()
            .await
            .map_err(|e| SignError::new(e.to_string()))?;
        move_user_token(request);
        sign_request(request, &credentials, &self.region, time)
    }
}

/// Moves the app's `authorization` value (the user's `Bearer …` token) into [`USER_TOKEN_HEADER`], replacing
/// any value the app sent there, and drops the headers a signature sets, so only the agent's count.
pub fn move_user_token(request: &mut HubRequest) {
    let headers = request.headers_mut();
    let token = headers.remove(AUTHORIZATION);
    headers.remove(USER_TOKEN_HEADER);
    for name in ["x-amz-date", "x-amz-security-token"] {
        headers.remove(name);
    }
    if let Some(mut token) = token {
        token.set_sensitive(true);
        headers.insert(USER_TOKEN_HEADER, token);
    }
}

/// Signs `request` (method, URL, headers and the SHA-256 of its body) with SigV4 for `execute-api` in `region`
/// at `time`, and sets `authorization`, `x-amz-date` and `x-amz-security-token`.
pub fn sign_request(
    request: &mut HubRequest,
    credentials: &RoleCredentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SignError> {
    let failed = |what: &str| SignError::new(format!("cannot sign the call to the hub: {what}"));
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|value| (name.as_str(), value))
                .map_err(|_| failed(&format!("header `{name}` is not visible ascii")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let uri = request.uri().to_string();
    let identity = credentials.to_sdk().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(EXECUTE_API)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| failed(&e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e.to_string()))?
        .into_parts();
    let (signed, _) = instructions.into_parts();
    for header in signed {
        let name = HeaderName::from_bytes(header.name().as_bytes())
            .map_err(|_| failed("the signer made an invalid header name"))?;
        let mut value = HeaderValue::from_str(header.value())
            .map_err(|_| failed("the signer made an invalid header value"))?;
        value.set_sensitive(header.sensitive());
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[async_trait]
impl WorkloadSigner for Sigv4Signer {
    fn kind(&self) -> &'static str {
        "sigv4"
    }

    fn signs_every_request(&self) -> bool {
        true
    }

    async fn sign(&self, request: &mut HubRequest) -> Result<(), SignError> {
        self.sign_at(request, SystemTime::now()).await
    }
}

// === building from config ===

/// The workload identity the configuration asks for.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Signs every call to the hub.
    pub signer: Arc<dyn WorkloadSigner>,
    /// For `sts_proof` and `sigv4`: the role assumer (built once) and the credential cache the signer uses.
    pub role: Option<(Arc<StsRoleAssumer>, Arc<CredentialCache>)>,
}

impl Workload {
    /// Builds the signer `config.workload_identity` selects, with the workload's own credentials from the
    /// standard AWS provider chain and this machine's name in the default session name.
    pub async fn load(config: &AgentConfig) -> Result<Self, StartError> {
        let sdk_config = match config.workload_identity.mode {
            WorkloadIdentityMode::None => aws_config::SdkConfig::builder().build(),
            WorkloadIdentityMode::StsProof | WorkloadIdentityMode::Sigv4 => {
                workload_sdk_config(config).await
            }
        };
        Self::from_config(config, &sdk_config, &host_name())
    }

    /// Builds the signer `config.workload_identity` selects. `sdk_config` carries the workload's own
    /// credentials (the standard provider chain) and the STS endpoint and region; `host` goes into the
    /// default session name.
    pub fn from_config(
        config: &AgentConfig,
        sdk_config: &aws_config::SdkConfig,
        host: &str,
    ) -> Result<Self, StartError> {
        let identity = &config.workload_identity;
        match identity.mode {
            WorkloadIdentityMode::None => Ok(Self {
                signer: Arc::new(NoWorkloadIdentity),
                role: None,
            }),
            WorkloadIdentityMode::StsProof | WorkloadIdentityMode::Sigv4 => {
                let role_arn = identity.role_arn.clone().ok_or_else(|| {
                    StartError::Config("`workload_identity.role_arn` is required".to_owned())
                })?;
                let settings = AssumeRoleSettings {
                    role_arn,
                    external_id: identity.external_id.clone(),
                    session_name: identity.session_name.clone().unwrap_or_else(|| {
                        default_session_name(config.application.as_deref(), host)
                    }),
                    source_identity: identity.source_identity.clone(),
                    duration_secs: identity.duration_secs,
                };
                let assumer = Arc::new(StsRoleAssumer::new(sdk_config, settings));
                let cache = Arc::new(CredentialCache::new(
                    assumer.clone(),
                    std::time::Duration::from_secs(identity.refresh_before_secs),
                ));
                let signer: Arc<dyn WorkloadSigner> =
                    if identity.mode == WorkloadIdentityMode::Sigv4 {
                        Arc::new(Sigv4Signer::new(cache.clone(), identity.region()))
                    } else {
                        Arc::new(StsProofSigner::new(
                            cache.clone(),
                            &identity.sts_endpoint,
                            identity.region(),
                            identity.server_id.clone(),
                        ))
                    };
                Ok(Self {
                    signer,
                    role: Some((assumer, cache)),
                })
            }
        }
    }
}

/// This machine's name, for the default role session name; `host` when it cannot be read.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}

/// The workload's own AWS configuration: the standard provider chain, with the configured STS endpoint and
/// region.
pub async fn workload_sdk_config(config: &AgentConfig) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(
            config.workload_identity.region().to_owned(),
        ))
        .endpoint_url(&config.workload_identity.sts_endpoint)
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_signs_what_the_hub_requires() {
        let credentials = RoleCredentials::new(
            "ASIAEXAMPLE",
            "secret",
            "token",
            SystemTime::now() + std::time::Duration::from_secs(60),
            "arn:aws:sts::111122223333:assumed-role/r/s",
        );
        let proof = presign(
            &credentials,
            "https://sts.amazonaws.com/",
            "us-east-1",
            Some("hub-1"),
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        )
        .unwrap();
        assert_eq!(proof.method, "POST");
        assert_eq!(proof.body, GET_CALLER_IDENTITY);
        assert_eq!(proof.headers["x-amz-date"], "20270115T080000Z");
        assert_eq!(proof.headers["x-amz-security-token"], "token");
        assert_eq!(proof.headers[SERVER_ID_HEADER], "hub-1");
        let authorization = &proof.headers["authorization"];
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20270115/us-east-1/sts/aws4_request, SignedHeaders="
            ),
            "{authorization}"
        );
        for signed in ["host", "x-amz-date", SERVER_ID_HEADER] {
            assert!(authorization.contains(signed), "{authorization}");
        }
    }

    /// Hands out the same role credentials every time.
    #[derive(Debug)]
    struct Fixed;

    #[async_trait]
    impl crate::credentials::RoleAssumer for Fixed {
        fn role_arn(&self) -> &str {
            "arn:aws:iam::111122223333:role/causeway-invoker"
        }

        async fn assume(&self) -> Result<RoleCredentials, crate::credentials::AssumeError> {
            Ok(RoleCredentials::new(
                "ASIAEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "session-token",
                SystemTime::now() + std::time::Duration::from_secs(3600),
                "arn:aws:sts::111122223333:assumed-role/causeway-invoker/s",
            ))
        }
    }

    fn sigv4_signer() -> Sigv4Signer {
        let cache = CredentialCache::new(Arc::new(Fixed), std::time::Duration::from_secs(300));
        Sigv4Signer::new(Arc::new(cache), "eu-west-2")
    }

    const HUB: &str =
        "https://abcdefghij.execute-api.eu-west-2.amazonaws.com/v1/v1/chat/completions";

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000)
    }

    /// The `authorization` aws-sigv4 computes on its own for these inputs, with credentials built directly.
    fn expected_authorization(method: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let identity = aws_credential_types::Credentials::new(
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            Some("session-token".to_owned()),
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-2")
            .name("execute-api")
            .time(at())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            method,
            HUB,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions
            .headers()
            .find(|(name, _)| *name == "authorization")
            .map(|(_, value)| value.to_owned())
            .unwrap()
    }

    #[tokio::test]
    async fn sigv4_moves_the_user_token_and_signs_the_whole_request() {
        let body = br#"{"model":"claude-sonnet","stream":true,"messages":[]}"#;
        let mut request = http::Request::builder()
            .method("POST")
            .uri(HUB)
            .header("authorization", "Bearer user.jwt.sig")
            .header("content-type", "application/json")
            .header("x-causeway-application", "claims-triage")
            .header(USER_TOKEN_HEADER, "Bearer forged.by.app")
            .header("x-amz-date", "20200101T000000Z")
            .body(Bytes::from_static(body))
            .unwrap();
        let signer = sigv4_signer();
        signer.sign_at(&mut request, at()).await.unwrap();

        let headers = request.headers();
        assert_eq!(headers[USER_TOKEN_HEADER], "Bearer user.jwt.sig");
        assert_eq!(headers.get_all(USER_TOKEN_HEADER).iter().count(), 1);
        assert_eq!(headers["x-amz-date"], "20270115T080000Z");
        assert_eq!(headers["x-amz-security-token"], "session-token");
        assert_eq!(headers.get_all("authorization").iter().count(), 1);
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20270115/eu-west-2/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-causeway-application;x-causeway-user-token, Signature="
            ),
            "{authorization}"
        );
        assert!(!authorization.contains("user.jwt.sig"), "{authorization}");
        assert_eq!(request.body().as_ref(), body);

        let expected = expected_authorization(
            "POST",
            &[
                ("content-type", "application/json"),
                ("x-causeway-application", "claims-triage"),
                (USER_TOKEN_HEADER, "Bearer user.jwt.sig"),
            ],
            body,
        );
        assert_eq!(authorization, expected);
        // The signature covers the body: another body signs differently.
        let other = expected_authorization(
            "POST",
            &[
                ("content-type", "application/json"),
                ("x-causeway-application", "claims-triage"),
                (USER_TOKEN_HEADER, "Bearer user.jwt.sig"),
            ],
            b"{}",
        );
        assert_ne!(authorization, other);
        assert_eq!(signer.kind(), "sigv4");
        assert!(signer.signs_every_request());
    }

    #[tokio::test]
    async fn sigv4_without_a_user_token_sends_none() {
        let mut request = http::Request::builder()
            .method("GET")
            .uri(HUB)
            .header(USER_TOKEN_HEADER, "forged.by.app")
            .body(Bytes::new())
            .unwrap();
        sigv4_signer().sign_at(&mut request, at()).await.unwrap();
        assert!(!request.headers().contains_key(USER_TOKEN_HEADER));
        assert_eq!(
            request.headers()["authorization"].to_str().unwrap(),
            expected_authorization("GET", &[], b"")
        );
    }

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
