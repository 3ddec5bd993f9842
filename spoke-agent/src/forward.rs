//! Forwarding one app request to the hub and its answer back.
//!
//! Rules, each for a reason:
//! - The end user's `authorization` header goes to the hub byte for byte and is never logged: the hub, not
//!   the agent, verifies it. (In `sigv4` mode the signer moves it, unchanged, to `x-causeway-user-token`,
//!   since `authorization` then carries the request's SigV4 signature.)
//! - `x-causeway-application` is the agent's to set (from config); a value sent by the app is replaced, so an
//!   app cannot speak for another. `x-causeway-purpose` is added from `default_purpose` on every door but the
//!   native one, only when the app sent none, since OpenAI, Anthropic and AWS clients have no field for it.
//! - The user's token reaches the hub in `authorization` whichever client sent it: the Anthropic SDK's
//!   `x-api-key` moves there, and an AWS SDK's SigV4 signature and credential headers are dropped in favour
//!   of the token the app put in `x-causeway-user-token` (see [`Door`]).
//! - Hop-by-hop headers (RFC 9110 §7.6.1, and any named in `connection`) are dropped in both directions.
//! - Every call carries an `x-request-id`: the app's when it is at most [`MAX_REQUEST_ID_CHARS`] printable
//!   ASCII characters, otherwise a new UUID v7, so agent and hub logs line up and no app writes free text
//!   into them.
//! - Credential headers (the user's token, the workload proof, a SigV4 signature and session token) are
//!   marked sensitive both as the app's request arrives and after the signer adds its own, so no debug output
//!   or log line shows them.
//! - A call is retried only when the hub refused the connection, which means no byte of it was sent; once
//!   a request has gone out it is never sent again, since the hub may already have answered (and audited) it.
//! - Hub answers, errors included, reach the app with their status and body unchanged. Server-sent events and
//!   AWS event streams are relayed chunk by chunk as they arrive; other answers are read whole within the
//!   request timeout.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::time::Instant;

use crate::config::{AgentConfig, parse_hub_url};
use crate::error::{AgentError, RelayError, StartError};
use crate::identity::{HubRequest, USER_TOKEN_HEADER, WORKLOAD_HEADER, WorkloadSigner};

pub use causeway_contract::headers::{APPLICATION_HEADER, CLASSIFICATION_HEADER, PURPOSE_HEADER};
/// Header carrying the request id; passed through, or set by the agent.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id taken from an app, in characters (the hub keeps the same bound).
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Headers whose values are credentials: the user's token wherever a client puts it, the workload proof, and
/// the parts of a SigV4 signature.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    API_KEY_HEADER,
    USER_TOKEN_HEADER,
    WORKLOAD_HEADER,
    "x-amz-security-token",
];

/// Marks every value of [`SENSITIVE_HEADERS`] in `headers` sensitive.
pub fn mark_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if SENSITIVE_HEADERS.contains(&name.as_str()) {
            value.set_sensitive(true);
        }
    }
}
/// Header in which the Anthropic SDKs send their key: here, the user's token.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Headers that describe one connection, not the message, and must not be forwarded (RFC 9110 §7.6.1).
/// `proxy-connection` is not standard but old clients still send it.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers a SigV4-signed request carries that belong to the app's own AWS credentials: the signature's
/// date, payload hash and, for temporary credentials, the session token. None of them means anything to the
/// hub, and the session token is a credential that must not leave the workload.
const SIGV4_HEADERS: &[&str] = &["x-amz-date", "x-amz-content-sha256", "x-amz-security-token"];

/// The door a request came in by; it decides which headers the agent adds or moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `POST /v1/invoke`: the purpose is in the body.
    Native,
    /// OpenAI-shaped doors (`/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `GET /v1/models`):
    /// the purpose travels in a header, filled in from `default_purpose` when the app sent none.
    PurposeHeader,
    /// Anthropic Messages (`/v1/messages`, `/v1/messages/count_tokens`): as [`Door::PurposeHeader`], and a
    /// token sent the Anthropic SDK's way, in `x-api-key`, moves to `authorization: Bearer` so the hub (or
    /// the SigV4 signer) finds it where every other door puts it.
    Anthropic,
    /// Bedrock Runtime (`/model/{modelId}/…`): as [`Door::PurposeHeader`]. An AWS SDK signs its calls with
    /// SigV4; the agent drops that signature and the app's credential headers (the session token never
    /// leaves the workload) and sends the user's token, which the app puts in `x-causeway-user-token`, as
    /// `authorization: Bearer`. A bearer token (`AWS_BEARER_TOKEN_BEDROCK`) passes as it is.
    BedrockRuntime,
}

// === impl HeaderRules ===

/// The headers the agent sets from its configuration.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    application: Option<HeaderValue>,
    default_purpose: Option<HeaderValue>,
}

impl HeaderRules {
    /// The rules for `config`.
    pub fn from_config(config: &AgentConfig) -> Result<Self, StartError> {
        let value = |key: &str, text: &Option<String>| {
            text.as_deref()
                .map(HeaderValue::from_str)
                .transpose()
                .map_err(|_| StartError::Config(format!("`{key}` cannot be sent in a header")))
        };
        Ok(Self {
            application: value("application", &config.application)?,
            default_purpose: value("default_purpose", &config.default_purpose)?,
        })
    }

    /// The headers to send to the hub for an app request with `incoming` headers.
    pub fn outbound(
        &self,
        incoming: &HeaderMap,
        door: Door,
        request_id: &HeaderValue,
    ) -> HeaderMap {
        let mut headers = end_to_end(incoming);
        // Set by the HTTP client from the hub URL and the body actually sent.
        headers.remove(header::HOST);
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(APPLICATION_HEADER);
        if let Some(application) = &self.application {
            headers.insert(APPLICATION_HEADER, application.clone());
        }
        if door != Door::Native
            && !headers.contains_key(PURPOSE_HEADER)
            && let Some(purpose) = &self.default_purpose
        {
            headers.insert(PURPOSE_HEADER, purpose.clone());
        }
        match door {
            Door::Anthropic => {
                if let Some(key) = headers.remove(API_KEY_HEADER)
                    && !headers.contains_key(header::AUTHORIZATION)
                    && let Ok(bearer) = bearer(&key)
                {
                    headers.insert(header::AUTHORIZATION, bearer);
                }
            }
            Door::BedrockRuntime => {
                let signed = headers
                    .get(header::AUTHORIZATION)
                    .is_some_and(|v| v.as_bytes().starts_with(b"AWS4-"));
                if signed {
                    headers.remove(header::AUTHORIZATION);
                    for name in SIGV4_HEADERS {
                        headers.remove(*name);
                    }
                }
                if let Some(token) = headers.remove(USER_TOKEN_HEADER)
                    && !headers.contains_key(header::AUTHORIZATION)
                    && let Ok(bearer) = bearer(&token)
                {
                    headers.insert(header::AUTHORIZATION, bearer);
                }
            }
            Door::Native | Door::PurposeHeader => {}
        }
        headers.insert(REQUEST_ID_HEADER, request_id.clone());
        headers
    }
}

/// `Bearer <token>` for a token sent bare (a value that already says `Bearer` is kept as it is).
fn bearer(token: &HeaderValue) -> Result<HeaderValue, axum::http::header::InvalidHeaderValue> {
    if token.as_bytes().starts_with(b"Bearer ") {
        return Ok(token.clone());
    }
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(token.as_bytes());
    let mut value = HeaderValue::from_bytes(&value)?;
    value.set_sensitive(true);
    Ok(value)
}

/// `headers` without hop-by-hop headers, including those the `connection` header names.
pub fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if HOP_BY_HOP.contains(&name.as_str()) || named.contains(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The hub's response headers as the app receives them: end-to-end only, and no `content-length`, which the
/// agent's own server sets for the body it actually sends.
pub fn response_headers(from_hub: &HeaderMap) -> HeaderMap {
    let mut headers = end_to_end(from_hub);
    headers.remove(header::CONTENT_LENGTH);
    headers
}

/// The app's request id when it sent a usable one (1 to [`MAX_REQUEST_ID_CHARS`] printable ASCII characters,
/// no spaces), otherwise a new UUID v7.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID_HEADER)
        .filter(|v| {
            (1..=MAX_REQUEST_ID_CHARS).contains(&v.len())
                && v.as_bytes().iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

/// A streamed answer: server-sent events, or the AWS event stream of Bedrock's streaming operations.
fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("text/event-stream")
                || mime.eq_ignore_ascii_case("application/vnd.amazon.eventstream")
        })
}

/// True when the hub refused the connection: nothing of the request was sent.
fn is_refused(err: &reqwest::Error) -> bool {
    err.is_connect() && io_kind(err) == Some(std::io::ErrorKind::ConnectionRefused)
}

fn io_kind(err: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut source = err.source();
    while let Some(next) = source {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = next.source();
    }
    None
}

/// One line saying what went wrong with the hub connection, without the client's wrapping.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    match io_kind(err) {
        Some(std::io::ErrorKind::ConnectionRefused) => return "connection refused".to_owned(),
        Some(std::io::ErrorKind::ConnectionReset) => return "connection reset".to_owned(),
        _ => {}
    }
    let mut innermost = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        innermost = next.to_string();
        source = next.source();
    }
    innermost
}

/// The certificate authorities in the PEM bundle at `path`, the only ones trusted for the hub.
fn hub_authorities(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, StartError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| StartError::Config(format!("cannot read `hub_ca_file` `{shown}`: {e}")))?;
    let authorities = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        StartError::Config(format!("`hub_ca_file` `{shown}` is not a PEM bundle: {e}"))
    })?;
    if authorities.is_empty() {
        return Err(StartError::Config(format!(
            "`hub_ca_file` `{shown}` holds no certificate"
        )));
    }
    Ok(authorities)
}

/// Wait before retry number `attempt` (0-based): `base`, doubled each time.
fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2_u32.saturating_pow(attempt))
}

// === impl Forwarder ===

/// Sends app requests to the hub. Built once at start-up; cheap to share.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: reqwest::Client,
    /// The hub URL as configured, for messages.
    hub: String,
    /// The hub URL without a trailing `/`, to which paths are appended.
    base: String,
    rules: HeaderRules,
    signer: Arc<dyn WorkloadSigner>,
    max_body_bytes: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    stream_idle_timeout: Duration,
    connect_retries: u32,
    retry_backoff: Duration,
}

impl Forwarder {
    /// A forwarder for `config` that proves the workload's identity with `signer`.
    pub fn new(config: &AgentConfig, signer: Arc<dyn WorkloadSigner>) -> Result<Self, StartError> {
        let url = parse_hub_url(&config.hub_url).map_err(StartError::Config)?;
        let connect_timeout = Duration::from_secs(config.connect_timeout_secs);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // The app sees the hub's redirects; following them would send the user's token elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.hub_ca_file {
            builder = builder.tls_certs_only(hub_authorities(path)?);
        }
        let client = builder
            .build()
            .map_err(|e| StartError::HttpClient(e.to_string()))?;
        Ok(Self {
            client,
            hub: config.hub_url.clone(),
            base: url.as_str().trim_end_matches('/').to_owned(),
            rules: HeaderRules::from_config(config)?,
            signer,
            max_body_bytes: config.max_body_bytes,
            connect_timeout,
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            stream_idle_timeout: Duration::from_secs(config.stream_idle_timeout_secs),
            connect_retries: config.connect_retries,
            retry_backoff: Duration::from_millis(config.retry_backoff_ms),
        })
    }

    /// The hub URL as configured.
    pub fn hub_url(&self) -> &str {
        &self.hub
    }

    /// The workload identity mechanism.
    pub fn signer(&self) -> &dyn WorkloadSigner {
        self.signer.as_ref()
    }

    /// Forwards `request`, which came in by `door`, and returns the hub's answer, or the agent's own error
    /// when it could not get one. The response always carries the call's `x-request-id`.
    pub async fn forward(&self, door: Door, request: Request) -> Response {
        let started = std::time::Instant::now();
        let request_id = request_id(request.headers());
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let id = request_id.to_str().unwrap_or_default().to_owned();
        let mut response = match self.exchange(door, request, &request_id).await {
            Ok(response) => {
                tracing::info!(
                    %method, %path, request_id = %id, status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_millis(), "forwarded"
                );
                response
            }
            Err(err) => {
                if err.is_upstream() {
                    tracing::warn!(%method, %path, request_id = %id, error = %err, "call not forwarded");
                } else {
                    tracing::info!(%method, %path, request_id = %id, error = %err, "call refused by the agent");
                }
                err.into_response()
            }
        };
        if !response.headers().contains_key(REQUEST_ID_HEADER) {
            response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
        }
        response
    }

    async fn exchange(
        &self,
        door: Door,
        request: Request,
        request_id: &HeaderValue,
    ) -> Result<Response, AgentError> {
        let (parts, body) = request.into_parts();
        let body = self.read_body(&parts.headers, body).await?;
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let uri = Uri::try_from(format!("{}{target}", self.base)).map_err(|_| {
            AgentError::UnforwardableTarget {
                target: target.to_owned(),
            }
        })?;
        let headers = self.rules.outbound(&parts.headers, door, request_id);

        let deadline = Instant::now() + self.request_timeout;
        let answer =
            tokio::time::timeout_at(deadline, self.send(&parts.method, &uri, &headers, &body))
                .await
                .map_err(|_| self.timeout())??;

        let status: StatusCode = answer.status();
        let headers = response_headers(answer.headers());
        let body = if is_event_stream(answer.headers()) {
            relay(
                answer.bytes_stream(),
                self.stream_idle_timeout,
                self.hub.clone(),
            )
        } else {
            let bytes = tokio::time::timeout_at(deadline, answer.bytes())
                .await
                .map_err(|_| self.timeout())?
                .map_err(|e| self.unreachable(&e))?;
            Body::from(bytes)
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }

    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, AgentError> {
        let limit = self.max_body_bytes;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(AgentError::PayloadTooLarge { limit });
        }
        axum::body::to_bytes(body, limit).await.map_err(|err| {
            let too_large = err
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            if too_large {
                AgentError::PayloadTooLarge { limit }
            } else {
                AgentError::UnreadableBody
            }
        })
    }

    /// Sends one request, retrying only refused connections.
    async fn send(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<reqwest::Response, AgentError> {
        let mut attempt = 0;
        loop {
            let mut request = HubRequest::new(body.clone());
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = headers.clone();
            self.signer.sign(&mut request).await?;
            mark_sensitive(request.headers_mut());
            let request = reqwest::Request::try_from(request).map_err(|_| {
                AgentError::UnforwardableTarget {
                    target: uri
                        .path_and_query()
                        .map_or("/", |pq| pq.as_str())
                        .to_owned(),
                }
            })?;
            match self.client.execute(request).await {
                Ok(response) => return Ok(response),
                Err(err) if attempt < self.connect_retries && is_refused(&err) => {
                    let wait = backoff(self.retry_backoff, attempt);
                    attempt += 1;
                    tracing::debug!(
                        hub = %self.hub, attempt, wait_ms = wait.as_millis(),
                        "the hub refused the connection; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(err) if err.is_connect() && err.is_timeout() => {
                    return Err(AgentError::HubConnectTimeout {
                        hub: self.hub.clone(),
                        waited: self.connect_timeout,
                    });
                }
                Err(err) => return Err(self.unreachable(&err)),
            }
        }
    }

    fn timeout(&self) -> AgentError {
        AgentError::HubTimeout {
            hub: self.hub.clone(),
            waited: self.request_timeout,
        }
    }

    fn unreachable(&self, err: &reqwest::Error) -> AgentError {
        AgentError::HubUnreachable {
            hub: self.hub.clone(),
            reason: describe(err),
        }
    }
}

/// Relays a streamed answer as it arrives, ending it abruptly when the hub goes quiet for `idle` or the
/// connection breaks, so the app never mistakes a cut-off stream for a complete one.
fn relay(
    stream: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    idle: Duration,
    hub: String,
) -> Body {
    let relayed = futures::stream::unfold(Some(Box::pin(stream)), move |state| {
        let hub = hub.clone();
        async move {
            let mut stream = state?;
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
                Ok(None) => None,
                Ok(Some(Err(err))) => {
                    let err = RelayError::Broken {
                        hub,
                        reason: describe(&err),
                    };
                    tracing::warn!(error = %err, "streamed answer cut off");
                    Some((Err(err), None))
                }
                Err(_) => {
                    let err = RelayError::Idle { hub, waited: idle };
                    tracing::warn!(error = %err, "streamed answer cut off");
                    Some((Err(err), None))
                }
            }
        }
    });
    Body::from_stream(relayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(application: Option<&str>, purpose: Option<&str>) -> HeaderRules {
        let config = AgentConfig {
            application: application.map(str::to_owned),
            default_purpose: purpose.map(str::to_owned),
            ..AgentConfig::default()
        };
        HeaderRules::from_config(&config).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn id() -> HeaderValue {
        HeaderValue::from_static("req-1")
    }

    #[test]
    fn authorization_and_declared_headers_pass_untouched() {
        let incoming = headers(&[
            ("authorization", "Bearer eyJhbGciOi.secret.sig"),
            ("x-causeway-data-classification", "confidential"),
            ("x-causeway-purpose", "customer-support"),
            ("content-type", "application/json"),
            ("accept", "text/event-stream"),
        ]);
        let out = rules(Some("claims"), Some("evaluation")).outbound(
            &incoming,
            Door::PurposeHeader,
            &id(),
        );
        assert_eq!(out["authorization"], "Bearer eyJhbGciOi.secret.sig");
        assert_eq!(out["x-causeway-data-classification"], "confidential");
        assert_eq!(
            out["x-causeway-purpose"], "customer-support",
            "the app's purpose wins"
        );
        assert_eq!(out["content-type"], "application/json");
        assert_eq!(out["accept"], "text/event-stream");
        assert_eq!(out["x-causeway-application"], "claims");
        assert_eq!(out["x-request-id"], "req-1");
        assert_eq!(out.len(), 7);
    }

    #[test]
    fn the_default_purpose_fills_in_on_every_door_but_the_native_one() {
        let rules = rules(None, Some("evaluation"));
        let out = rules.outbound(&HeaderMap::new(), Door::PurposeHeader, &id());
        assert_eq!(out["x-causeway-purpose"], "evaluation");
        let out = rules.outbound(&HeaderMap::new(), Door::Native, &id());
        assert!(!out.contains_key("x-causeway-purpose"));
    }

    #[test]
    fn an_anthropic_key_becomes_the_bearer_token() {
        let incoming = headers(&[
            ("x-api-key", "eyJ.user.token"),
            ("anthropic-version", "2023-06-01"),
        ]);
        let out = rules(None, Some("evaluation")).outbound(&incoming, Door::Anthropic, &id());
        assert_eq!(out["authorization"], "Bearer eyJ.user.token");
        assert!(!out.contains_key("x-api-key"));
        assert_eq!(out["anthropic-version"], "2023-06-01");
        assert_eq!(out["x-causeway-purpose"], "evaluation");

        // Claude Code sends `authorization: Bearer`; a stray key does not replace it.
        let incoming = headers(&[
            ("authorization", "Bearer eyJ.user.token"),
            ("x-api-key", "other"),
        ]);
        let out = rules(None, None).outbound(&incoming, Door::Anthropic, &id());
        assert_eq!(out["authorization"], "Bearer eyJ.user.token");
        assert!(!out.contains_key("x-api-key"));
    }

    #[test]
    fn a_sigv4_signed_bedrock_call_sends_the_user_token_and_not_the_apps_credentials() {
        let incoming = headers(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=ASIA.../20261205/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc",
            ),
            ("x-amz-date", "20261205T100000Z"),
            ("x-amz-security-token", "IQoJb3JpZ2luX2VjE...session"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-causeway-user-token", "eyJ.user.token"),
            ("content-type", "application/json"),
        ]);
        let out = rules(None, Some("evaluation")).outbound(&incoming, Door::BedrockRuntime, &id());
        assert_eq!(out["authorization"], "Bearer eyJ.user.token");
        for gone in [
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-content-sha256",
            "x-causeway-user-token",
        ] {
            assert!(!out.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(out["x-causeway-purpose"], "evaluation");

        // Signed but without a user token: nothing to authenticate with, and the signature stays behind.
        let incoming = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=x")]);
        let out = rules(None, None).outbound(&incoming, Door::BedrockRuntime, &id());
        assert!(!out.contains_key("authorization"));

        // `AWS_BEARER_TOKEN_BEDROCK`: already a bearer token.
        let incoming = headers(&[("authorization", "Bearer eyJ.user.token")]);
        let out = rules(None, None).outbound(&incoming, Door::BedrockRuntime, &id());
        assert_eq!(out["authorization"], "Bearer eyJ.user.token");
    }

    #[test]
    fn without_a_default_purpose_none_is_invented() {
        let out = rules(None, None).outbound(&HeaderMap::new(), Door::PurposeHeader, &id());
        assert!(!out.contains_key("x-causeway-purpose"));
        assert!(!out.contains_key("x-causeway-application"));
    }

    #[test]
    fn the_app_cannot_name_its_own_application() {
        let incoming = headers(&[("x-causeway-application", "payroll")]);
        let out = rules(Some("claims"), None).outbound(&incoming, Door::Native, &id());
        assert_eq!(
            out.get_all("x-causeway-application")
                .iter()
                .collect::<Vec<_>>(),
            vec![&HeaderValue::from_static("claims")]
        );
        let out = rules(None, None).outbound(&incoming, Door::Native, &id());
        assert!(!out.contains_key("x-causeway-application"));
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let incoming = headers(&[
            ("connection", "keep-alive, x-trace-hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic abc"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-trace-hop", "1"),
            ("host", "127.0.0.1:8790"),
            ("content-length", "42"),
            ("x-custom", "kept"),
        ]);
        let out = rules(None, None).outbound(&incoming, Door::Native, &id());
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["x-custom", "x-request-id"]);
    }

    #[test]
    fn response_headers_keep_the_hubs_and_drop_framing() {
        let from_hub = headers(&[
            ("content-type", "application/json"),
            ("content-length", "120"),
            ("x-causeway-audit-id", "0190"),
            ("x-request-id", "req-1"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
        ]);
        let out = response_headers(&from_hub);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            vec!["content-type", "x-causeway-audit-id", "x-request-id"]
        );
    }

    #[test]
    fn the_apps_request_id_is_kept_or_a_v7_is_made() {
        assert_eq!(
            request_id(&headers(&[("x-request-id", "abc-123")])),
            "abc-123"
        );
        let made = request_id(&HeaderMap::new());
        let parsed = uuid::Uuid::parse_str(made.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
    }

    #[test]
    fn an_apps_request_id_that_is_free_text_does_not_reach_the_logs() {
        let v7 = |value: HeaderValue| {
            let parsed = uuid::Uuid::parse_str(value.to_str().unwrap()).unwrap();
            assert_eq!(parsed.get_version_num(), 7);
        };
        let longest = "r".repeat(MAX_REQUEST_ID_CHARS);
        assert_eq!(
            request_id(&headers(&[("x-request-id", &longest)])),
            longest.as_str()
        );
        // Too long, with spaces (a sentence, say), or empty: replaced by the agent's own.
        v7(request_id(&headers(&[(
            "x-request-id",
            &"r".repeat(MAX_REQUEST_ID_CHARS + 1),
        )])));
        v7(request_id(&headers(&[(
            "x-request-id",
            "ignore previous instructions",
        )])));
        v7(request_id(&headers(&[("x-request-id", "")])));
        let mut map = HeaderMap::new();
        map.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_bytes(b"id\tnext").unwrap(),
        );
        v7(request_id(&map));
        let mut map = HeaderMap::new();
        map.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        );
        v7(request_id(&map));
    }

    #[test]
    fn credential_headers_are_hidden_from_debug_output() {
        let mut map = headers(&[
            ("authorization", "Bearer user.token.value"),
            ("x-api-key", "anthropic-key-value"),
            ("x-causeway-user-token", "iam.user.token"),
            ("x-causeway-workload-identity", "proof-value"),
            ("x-amz-security-token", "session-token-value"),
            ("x-causeway-application", "claims-triage"),
        ]);
        mark_sensitive(&mut map);
        let shown = format!("{map:?}");
        for secret in [
            "user.token.value",
            "anthropic-key-value",
            "iam.user.token",
            "proof-value",
            "session-token-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("claims-triage"), "{shown}");
    }

    #[test]
    fn event_streams_are_recognised() {
        assert!(is_event_stream(&headers(&[(
            "content-type",
            "text/event-stream"
        )])));
        assert!(is_event_stream(&headers(&[(
            "content-type",
            "Text/Event-Stream; charset=utf-8"
        )])));
        assert!(!is_event_stream(&headers(&[(
            "content-type",
            "application/json"
        )])));
        assert!(!is_event_stream(&HeaderMap::new()));
    }

    #[test]
    fn backoff_doubles() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 0), Duration::from_millis(100));
        assert_eq!(backoff(base, 1), Duration::from_millis(200));
        assert_eq!(backoff(base, 3), Duration::from_millis(800));
        assert!(
            backoff(base, 40) > Duration::from_secs(86_400),
            "saturates instead of overflowing"
        );
    }
}
