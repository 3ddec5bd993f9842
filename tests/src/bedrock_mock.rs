//! A wire-level Amazon Bedrock Runtime mock, so tests exercise the real `aws-sdk-bedrockruntime` client.
//!
//! [`BedrockMock`] serves the two operations the hub calls on `127.0.0.1` with an ephemeral port:
//! `Converse` (REST-JSON, `POST /model/{modelId}/converse`) and `ConverseStream`
//! (`POST /model/{modelId}/converse-stream`, answered as a chunked body of AWS event-stream frames). Point
//! the SDK at [`BedrockMock::endpoint_url`] (or build it from [`BedrockMock::sdk_config`]) and its signing,
//! serialisation, retries and error mapping run as they would against Bedrock.
//!
//! `InvokeModel` (`POST /model/{modelId}/invoke`) answers embedding bodies only, with deterministic vectors
//! ([`mock_embedding`]).
//!
//! The answer is text or, with [`Reply::ToolUse`], a tool call: a `toolUse` content block in `Converse`,
//! and in `ConverseStream` a `contentBlockStart` naming the tool followed by `contentBlockDelta` events
//! whose `toolUse.input` fragments concatenate to the compact JSON of the arguments.
//!
//! Constraints that tests rely on:
//! - Answers are deterministic: they depend only on the request, the configured [`Reply`] and (for a
//!   tool-use id) how many requests came before, and token counts are whitespace word counts unless fixed
//!   with [`TokenCounts::Fixed`].
//! - Every request is recorded before anything else happens, injected failures included, so a test can
//!   count the SDK's retries and assert what the hub sent (guardrail, fenced prompt, clamped `maxTokens`).
//! - Like Bedrock, it answers `ValidationException` to a body that is not JSON, a conversation that is empty,
//!   does not start with a user message or does not alternate roles, and a `maxTokens` below 1. Anything
//!   else is accepted and recorded as sent: `toolConfig`, and `toolUse`, `toolResult`, `image` or
//!   `document` blocks in any message. It does not verify SigV4 signatures; it only records whether the
//!   request carried one.
//! - Behaviour changes through the handle at any time and applies to requests that arrive afterwards.
//! - Dropping the handle shuts the server down.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue as HttpHeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::Instrument as _;

/// The prefix of every [`Reply::Echo`] answer.
pub const ECHO_PREFIX: &str = "mock answer: ";

/// The size of the text deltas of a streamed answer unless changed with
/// [`BedrockMock::set_stream_chunk_chars`].
pub const DEFAULT_STREAM_CHUNK_CHARS: usize = 16;

/// Bedrock accepts large documents in a conversation; the mock must not be the component that refuses them.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

// === Configuration types ===

/// The prefix of every tool-use id the mock hands out; see [`Reply::ToolUse`].
pub const TOOL_USE_ID_PREFIX: &str = "tooluse_mock_";

/// What the mock answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Always this text.
    Text(String),
    /// [`ECHO_PREFIX`] followed by the text of the last user message (its text blocks joined by a newline),
    /// so a test can see what the model received. When that message carries `toolResult` blocks, their
    /// `content[].text` entries are echoed instead, joined by a newline.
    Echo,
    /// A Bedrock Guardrail intervened: this text, with stop reason `guardrail_intervened`.
    GuardrailIntervened(String),
    /// The model calls this tool with these arguments (stop reason `tool_use`). The tool-use id is
    /// `tooluse_mock_<n>` where n counts requests from 1. When the last user message carries a `toolResult`
    /// block, or the request declares no tools, the mock answers text instead (as `Echo` would, with the
    /// tool result's text as the user text), so a tool loop ends.
    ToolUse {
        /// The tool's name, as declared in the request's `toolConfig`.
        name: String,
        /// The arguments, sent as the `toolUse.input` document.
        input: Value,
    },
}

impl Reply {
    /// A fixed text answer.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A call of the tool `name` with the arguments `input`.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        Self::ToolUse {
            name: name.into(),
            input,
        }
    }
}

/// How the mock reports token usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCounts {
    /// `inputTokens` is the number of whitespace-separated words in all input text (system blocks, and the
    /// text blocks and tool-result text of every message), `outputTokens` the number of words in the answer;
    /// for a tool call, the words of the tool's name and of the compact JSON of its arguments.
    WordCount,
    /// These numbers, whatever the request.
    Fixed {
        /// Reported as `inputTokens`.
        input: u32,
        /// Reported as `outputTokens`.
        output: u32,
    },
}

/// A failure to inject with [`BedrockMock::fail_next`].
///
/// All but [`Failure::MidStream`] are answered as Bedrock answers errors: before any body, with the
/// Bedrock status code, an `x-amzn-errortype` header and a JSON body with a `message`. They apply to both
/// operations; requests to unsupported paths never take a queued failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429 `ThrottlingException`.
    Throttling,
    /// 503 `ServiceUnavailableException`.
    ServiceUnavailable,
    /// 400 `ValidationException`.
    Validation,
    /// 424 `ModelErrorException`, with `originalStatusCode` 500 and the model id as `resourceName`.
    ModelError,
    /// 408 `ModelTimeoutException`.
    ModelTimeout,
    /// 429 `ModelNotReadyException` (the SDK retries it).
    ModelNotReady,
    /// 403 `AccessDeniedException`.
    AccessDenied,
    /// 404 `ResourceNotFoundException`.
    ResourceNotFound,
    /// 500 `InternalServerException`.
    InternalServer,
    /// `ConverseStream` only: the stream starts normally, sends up to `after_deltas` deltas (text, or the
    /// tool-use input fragments of a tool call after its `contentBlockStart`), then an exception event and
    /// ends. `Converse` requests pass over this entry and leave it queued.
    MidStream {
        /// How many deltas are sent before the exception.
        after_deltas: usize,
        /// The exception event that ends the stream.
        exception: StreamException,
    },
}

impl Failure {
    fn applies_to(self, operation: Operation) -> bool {
        match (self, operation) {
            (_, Operation::Unsupported) => false,
            (Self::MidStream { .. }, operation) => operation == Operation::ConverseStream,
            (_, Operation::Converse | Operation::ConverseStream | Operation::InvokeModel) => true,
        }
    }

    /// The status and error type of a failure answered before the body, `None` for a mid-stream one.
    fn http_error(self) -> Option<(StatusCode, &'static str)> {
        let parts = match self {
            Self::Throttling => (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException"),
            Self::ServiceUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
            ),
            Self::Validation => (StatusCode::BAD_REQUEST, "ValidationException"),
            Self::ModelError => (StatusCode::FAILED_DEPENDENCY, "ModelErrorException"),
            Self::ModelTimeout => (StatusCode::REQUEST_TIMEOUT, "ModelTimeoutException"),
            Self::ModelNotReady => (StatusCode::TOO_MANY_REQUESTS, "ModelNotReadyException"),
            Self::AccessDenied => (StatusCode::FORBIDDEN, "AccessDeniedException"),
            Self::ResourceNotFound => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            Self::InternalServer => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException"),
            Self::MidStream { .. } => return None,
        };
        Some(parts)
    }
}

/// The exception event that ends a stream under [`Failure::MidStream`]: the exceptions the
/// `ConverseStream` output union declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamException {
    /// `throttlingException`.
    Throttling,
    /// `modelStreamErrorException`, with `originalStatusCode` and `originalMessage`.
    ModelStreamError,
    /// `internalServerException`.
    InternalServer,
    /// `serviceUnavailableException`.
    ServiceUnavailable,
    /// `validationException`.
    Validation,
}

impl StreamException {
    fn exception_type(self) -> &'static str {
        match self {
            Self::Throttling => "throttlingException",
            Self::ModelStreamError => "modelStreamErrorException",
            Self::InternalServer => "internalServerException",
            Self::ServiceUnavailable => "serviceUnavailableException",
            Self::Validation => "validationException",
        }
    }

    fn payload(self) -> Value {
        match self {
            Self::ModelStreamError => json!({
                "message": "mock: the model stream failed",
                "originalStatusCode": 500,
                "originalMessage": "mock: upstream model error",
            }),
            other => json!({ "message": format!("mock: injected {}", other.exception_type()) }),
        }
    }
}

// === Recorded requests ===

/// Which Bedrock Runtime operation a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /model/{modelId}/converse`.
    Converse,
    /// `POST /model/{modelId}/converse-stream`.
    ConverseStream,
    /// `POST /model/{modelId}/invoke` with an embedding body (Titan Text Embeddings or Cohere Embed).
    InvokeModel,
    /// Any other path (answered 404 `UnknownOperationException`); see [`RecordedRequest::path`].
    Unsupported,
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The operation the path names.
    pub operation: Operation,
    /// The model id from the path, percent-decoded (an ARN comes back with its `:` and `/`). Empty for
    /// [`Operation::Unsupported`].
    pub model_id: String,
    /// The request path as sent, still percent-encoded.
    pub path: String,
    /// The parsed JSON body, or `Value::Null` when the body was not JSON.
    pub body: Value,
    /// Whether an `authorization` header with an `AWS4-HMAC-SHA256` signature was present.
    pub sigv4_signed: bool,
    /// Every header, lower-case name and value (non-UTF-8 values lossily converted).
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The text of each `system` block, in order (text blocks and guard-content text).
    pub fn system_texts(&self) -> Vec<String> {
        self.body
            .get("system")
            .and_then(Value::as_array)
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(block_text)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The text of the last `user` message, its text blocks joined by a newline.
    pub fn last_user_text(&self) -> Option<String> {
        last_user_text(&self.body)
    }

    /// `inferenceConfig.maxTokens`, if sent.
    pub fn max_tokens(&self) -> Option<u64> {
        max_tokens(&self.body)
    }

    /// `guardrailConfig.guardrailIdentifier`, if sent.
    pub fn guardrail_identifier(&self) -> Option<&str> {
        self.body
            .pointer("/guardrailConfig/guardrailIdentifier")
            .and_then(Value::as_str)
    }

    /// `guardrailConfig.guardrailVersion`, if sent.
    pub fn guardrail_version(&self) -> Option<&str> {
        self.body
            .pointer("/guardrailConfig/guardrailVersion")
            .and_then(Value::as_str)
    }

    /// The value of a header (name compared case-insensitively), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

// === impl BedrockMock ===

/// A running Bedrock Runtime mock; see the module docs. Dropping it shuts the server down.
#[derive(Debug)]
pub struct BedrockMock {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl BedrockMock {
    /// Binds `127.0.0.1:0` and serves the mock on the current tokio runtime, answering with
    /// [`Reply::Echo`], no latency, word-count token usage and no failures.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("bind the bedrock mock to 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .context("read the bedrock mock's bound address")?;
        let shared = Arc::new(Shared::default());
        let app = router(Arc::clone(&shared));
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Either a send or the sender's drop means the mock is gone.
                    let _ = shutdown_signal.await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!(error = %err, "bedrock mock server stopped with an error");
            }
        }
        .instrument(tracing::info_span!("bedrock_mock", %addr));
        #[expect(
            clippy::disallowed_methods,
            reason = "the testkit has no access to the hub's instrumented spawn helper; the server future \
                      carries its own span"
        )]
        let _detached = tokio::spawn(server);
        Ok(Self {
            addr,
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// The base URL to give the SDK as `endpoint_url`, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An SDK config for this mock: region `us-east-1`, static test credentials, this endpoint. Build a
    /// client with `aws_sdk_bedrockruntime::Client::new(&config)`, or from
    /// `aws_sdk_bedrockruntime::config::Builder::from(&config)` to change retries.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        crate::moto::local_sdk_config(&self.endpoint_url()).await
    }

    /// Sets what later requests are answered with.
    pub fn set_reply(&self, reply: Reply) {
        self.shared.lock().behaviour.reply = reply;
    }

    /// Sets how long the mock waits before the first byte of every later answer (errors included).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().behaviour.latency = latency;
    }

    /// Sets how token usage is reported.
    pub fn set_token_counts(&self, counts: TokenCounts) {
        self.shared.lock().behaviour.token_counts = counts;
    }

    /// Sets how many characters (not bytes) each streamed delta carries (text, or a fragment of a tool
    /// call's JSON arguments); 0 is taken as 1.
    pub fn set_stream_chunk_chars(&self, chars: usize) {
        self.shared.lock().behaviour.stream_chunk_chars = chars.max(1);
    }

    /// Sets a pause between consecutive event-stream frames, so a test can see that frames arrive one by
    /// one rather than all at once.
    pub fn set_stream_chunk_delay(&self, delay: Duration) {
        self.shared.lock().behaviour.stream_chunk_delay = delay;
    }

    /// Makes the next `n` requests that `failure` applies to fail with it. Failures queue up in call order;
    /// a request takes the first queued failure that applies to its operation.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.shared
            .lock()
            .failures
            .extend(std::iter::repeat_n(failure, n));
    }

    /// How many injected failures are still queued.
    pub fn pending_failures(&self) -> usize {
        self.shared.lock().failures.len()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The most recent request, if any; its `body` is the JSON exactly as the client sent it.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().requests.last().cloned()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }
}

impl Drop for BedrockMock {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone (runtime shut down); nothing is left to stop then.
            let _ = shutdown.send(());
        }
    }
}

// === Shared state ===

#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock leaves consistent data behind: every write is a
        // single assignment or push.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the request and takes what answering it needs, in one critical section so concurrent
    /// requests each see one consistent configuration.
    fn admit(&self, request: RecordedRequest) -> Admission {
        let mut inner = self.lock();
        let operation = request.operation;
        inner.requests.push(request);
        inner.request_seq += 1;
        let failure = inner
            .failures
            .iter()
            .position(|failure| failure.applies_to(operation))
            .and_then(|index| inner.failures.remove(index));
        Admission {
            behaviour: inner.behaviour.clone(),
            failure,
            seq: inner.request_seq,
            request_id: format!("mock-{:012}", inner.request_seq),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    behaviour: Behaviour,
    failures: VecDeque<Failure>,
    requests: Vec<RecordedRequest>,
    request_seq: u64,
}

#[derive(Debug, Clone)]
struct Behaviour {
    reply: Reply,
    latency: Duration,
    token_counts: TokenCounts,
    stream_chunk_chars: usize,
    stream_chunk_delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            reply: Reply::Echo,
            latency: Duration::ZERO,
            token_counts: TokenCounts::WordCount,
            stream_chunk_chars: DEFAULT_STREAM_CHUNK_CHARS,
            stream_chunk_delay: Duration::ZERO,
        }
    }
}

#[derive(Debug)]
struct Admission {
    behaviour: Behaviour,
    failure: Option<Failure>,
    /// This request's position among all requests received, from 1.
    seq: u64,
    request_id: String,
}

// === Routes ===

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/model/{model_id}/converse", post(model_converse))
        .route(
            "/model/{model_id}/converse-stream",
            post(model_converse_stream),
        )
        .route("/model/{model_id}/invoke", post(model_invoke))
        .fallback(operation_unsupported)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn model_converse(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer_request(
        &shared,
        Operation::Converse,
        model_id,
        &uri,
        &headers,
        &body,
    )
    .await
}

async fn model_converse_stream(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer_request(
        &shared,
        Operation::ConverseStream,
        model_id,
        &uri,
        &headers,
        &body,
    )
    .await
}

async fn model_invoke(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer_request(
        &shared,
        Operation::InvokeModel,
        model_id,
        &uri,
        &headers,
        &body,
    )
    .await
}

async fn operation_unsupported(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer_request(
        &shared,
        Operation::Unsupported,
        String::new(),
        &uri,
        &headers,
        &body,
    )
    .await
}

async fn answer_request(
    shared: &Shared,
    operation: Operation,
    model_id: String,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let started = Instant::now();
    let parsed = serde_json::from_slice::<Value>(body);
    let admission = shared.admit(RecordedRequest {
        operation,
        model_id: model_id.clone(),
        path: uri.path().to_owned(),
        body: parsed.as_ref().map_or(Value::Null, Clone::clone),
        sigv4_signed: headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256")),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
    });
    let Admission {
        behaviour,
        failure,
        seq,
        request_id,
    } = admission;

    if !behaviour.latency.is_zero() {
        tokio::time::sleep(behaviour.latency).await;
    }

    if operation == Operation::Unsupported {
        let message = format!("mock: no operation at `{}`", uri.path());
        return error_response(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            &json!({ "message": message }),
            &request_id,
        );
    }
    if let Some((status, error_type)) = failure.and_then(Failure::http_error) {
        let mut payload = json!({ "message": format!("mock: injected {error_type}") });
        if failure == Some(Failure::ModelError) {
            payload["originalStatusCode"] = json!(500);
            payload["resourceName"] = json!(model_id);
        }
        return error_response(status, error_type, &payload, &request_id);
    }
    let request = match parsed {
        Ok(request) => request,
        Err(err) => {
            let message = format!("mock: the request body is not JSON: {err}");
            return validation_error(&message, &request_id);
        }
    };
    if operation == Operation::InvokeModel {
        return match embedding_answer(&request) {
            Ok(answer) => {
                let mut response = axum::Json(answer).into_response();
                insert_request_id(&mut response, &request_id);
                response
            }
            Err(message) => validation_error(&message, &request_id),
        };
    }
    if let Err(message) = validate(&request) {
        return validation_error(&message, &request_id);
    }

    let answer = compose_answer(&behaviour, &request, seq);
    match (operation, failure) {
        (
            Operation::ConverseStream,
            Some(Failure::MidStream {
                after_deltas,
                exception,
            }),
        ) => stream_response(
            &behaviour,
            &answer,
            Some((after_deltas, exception)),
            started,
            &request_id,
        ),
        (Operation::ConverseStream, _) => {
            stream_response(&behaviour, &answer, None, started, &request_id)
        }
        _ => converse_response(&answer, started, &request_id),
    }
}

// === Answers ===

/// The mock's embedding of `text` in `dimensions`: deterministic (a function of the text's bytes), so a test
/// can compare what it got with [`mock_embedding`].
pub fn mock_embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let seed = text
        .bytes()
        .fold(0_u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (0..dimensions)
        .map(|i| {
            let mixed =
                seed.wrapping_add(u32::try_from(i).unwrap_or(0).wrapping_mul(2_654_435_761));
            // Spread over [-1, 1) in steps of 1/1000.
            f32::from(u16::try_from(mixed % 2000).unwrap_or(0)) / 1000.0 - 1.0
        })
        .collect()
}

/// The InvokeModel answer to an embedding body, as Bedrock's Titan Text Embeddings V2 (`inputText`, optional
/// `dimensions`, default 1024) and Cohere Embed v3 (`texts`, 1024 dimensions, `embeddings_by_type` when
/// `embedding_types` is given) answer it.
fn embedding_answer(request: &Value) -> Result<Value, String> {
    if let Some(text) = request.get("inputText").and_then(Value::as_str) {
        let dimensions = request
            .get("dimensions")
            .and_then(Value::as_u64)
            .unwrap_or(1024);
        if ![256, 512, 1024].contains(&dimensions) {
            return Err(format!(
                "mock: Titan does not return {dimensions} dimensions"
            ));
        }
        return Ok(json!({
            "embedding": mock_embedding(text, usize::try_from(dimensions).unwrap_or(1024)),
            "inputTextTokenCount": word_count(text),
        }));
    }
    if let Some(texts) = request.get("texts").and_then(Value::as_array) {
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        if texts.is_empty() || texts.len() > 96 {
            return Err("mock: Cohere takes 1 to 96 texts".to_owned());
        }
        let vectors: Vec<Vec<f32>> = texts.iter().map(|t| mock_embedding(t, 1024)).collect();
        let embeddings = if request.get("embedding_types").is_some() {
            json!({ "float": vectors })
        } else {
            json!(vectors)
        };
        return Ok(json!({
            "id": "mock-embed",
            "embeddings": embeddings,
            "texts": texts,
            "response_type": if request.get("embedding_types").is_some() { "embeddings_by_type" } else { "embeddings_floats" },
        }));
    }
    Err("mock: InvokeModel serves embedding bodies only (`inputText` or `texts`)".to_owned())
}

#[derive(Debug)]
struct Answer {
    content: AnswerContent,
    stop_reason: &'static str,
    input_tokens: u64,
    output_tokens: u64,
}

/// The single content block of an answer.
#[derive(Debug)]
enum AnswerContent {
    Text(String),
    ToolUse {
        tool_use_id: String,
        name: String,
        input: Value,
    },
}

impl AnswerContent {
    /// The block as the `content` entry of a `Converse` output message.
    fn converse_block(&self) -> Value {
        match self {
            Self::Text(text) => json!({ "text": text }),
            Self::ToolUse {
                tool_use_id,
                name,
                input,
            } => json!({ "toolUse": { "toolUseId": tool_use_id, "name": name, "input": input } }),
        }
    }
}

impl Answer {
    fn usage(&self) -> Value {
        json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.input_tokens + self.output_tokens,
        })
    }
}

/// `seq` is the request's position among all requests received, from 1; it numbers tool-use ids.
fn compose_answer(behaviour: &Behaviour, request: &Value, seq: u64) -> Answer {
    let echo = || format!("{ECHO_PREFIX}{}", echo_text(request).unwrap_or_default());
    let (mut content, mut stop_reason) = match &behaviour.reply {
        Reply::Text(text) => (AnswerContent::Text(text.clone()), "end_turn"),
        Reply::Echo => (AnswerContent::Text(echo()), "end_turn"),
        Reply::GuardrailIntervened(text) => {
            (AnswerContent::Text(text.clone()), "guardrail_intervened")
        }
        // The tool's result came back, or no tool was offered: answer in text, as a model would, so a
        // client's tool loop ends.
        Reply::ToolUse { .. }
            if last_user_has_tool_result(request) || request.get("toolConfig").is_none() =>
        {
            (AnswerContent::Text(echo()), "end_turn")
        }
        Reply::ToolUse { name, input } => (
            AnswerContent::ToolUse {
                tool_use_id: format!("{TOOL_USE_ID_PREFIX}{seq}"),
                name: name.clone(),
                input: input.clone(),
            },
            "tool_use",
        ),
    };
    if stop_reason == "end_turn"
        && let AnswerContent::Text(text) = &mut content
        && let Some(limit) = max_tokens(request)
        && let Some(cut) = truncate_words(text, limit)
    {
        *text = cut.to_owned();
        stop_reason = "max_tokens";
    }
    let (input_tokens, output_tokens) = match behaviour.token_counts {
        TokenCounts::WordCount => {
            let output = match &content {
                AnswerContent::Text(text) => word_count(text),
                AnswerContent::ToolUse { name, input, .. } => {
                    word_count(name) + word_count(&input.to_string())
                }
            };
            (input_word_count(request), output)
        }
        TokenCounts::Fixed { input, output } => (u64::from(input), u64::from(output)),
    };
    Answer {
        content,
        stop_reason,
        input_tokens,
        output_tokens,
    }
}

fn converse_response(answer: &Answer, started: Instant, request_id: &str) -> Response {
    let body = json!({
        "output": {
            "message": { "role": "assistant", "content": [answer.content.converse_block()] },
        },
        "stopReason": answer.stop_reason,
        "usage": answer.usage(),
        "metrics": { "latencyMs": elapsed_ms(started) },
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    insert_request_id(&mut response, request_id);
    response
}

/// One event-stream frame of a `ConverseStream` answer, encoded only when it is sent so the metadata event
/// reports the latency the client really saw.
#[derive(Debug)]
enum Frame {
    MessageStart,
    /// Opens a tool-use block; a text block has no start event, as on Bedrock.
    ToolUseStart {
        tool_use_id: String,
        name: String,
    },
    TextDelta(String),
    /// A fragment of the compact JSON of a tool call's arguments.
    ToolUseDelta(String),
    BlockStop,
    MessageStop(&'static str),
    Metadata(Value),
    Exception(StreamException),
}

impl Frame {
    fn encode(&self, started: Instant) -> anyhow::Result<Bytes> {
        let message = match self {
            Self::MessageStart => event_message("messageStart", &json!({ "role": "assistant" })),
            Self::ToolUseStart { tool_use_id, name } => event_message(
                "contentBlockStart",
                &json!({
                    "contentBlockIndex": 0,
                    "start": { "toolUse": { "toolUseId": tool_use_id, "name": name } },
                }),
            ),
            Self::TextDelta(text) => event_message(
                "contentBlockDelta",
                &json!({ "contentBlockIndex": 0, "delta": { "text": text } }),
            ),
            Self::ToolUseDelta(fragment) => event_message(
                "contentBlockDelta",
                &json!({ "contentBlockIndex": 0, "delta": { "toolUse": { "input": fragment } } }),
            ),
            Self::BlockStop => {
                event_message("contentBlockStop", &json!({ "contentBlockIndex": 0 }))
            }
            Self::MessageStop(stop_reason) => {
                event_message("messageStop", &json!({ "stopReason": stop_reason }))
            }
            Self::Metadata(usage) => event_message(
                "metadata",
                &json!({ "usage": usage, "metrics": { "latencyMs": elapsed_ms(started) } }),
            ),
            Self::Exception(exception) => Message::new(exception.payload().to_string())
                .add_header(string_header(":message-type", "exception"))
                .add_header(string_header(":exception-type", exception.exception_type()))
                .add_header(string_header(":content-type", "application/json")),
        };
        let mut buffer = Vec::new();
        write_message_to(&message, &mut buffer).context("encode an event-stream frame")?;
        Ok(Bytes::from(buffer))
    }
}

fn event_message(event_type: &'static str, payload: &Value) -> Message {
    Message::new(payload.to_string())
        .add_header(string_header(":event-type", event_type))
        .add_header(string_header(":message-type", "event"))
        .add_header(string_header(":content-type", "application/json"))
}

fn string_header(name: &'static str, value: &'static str) -> Header {
    Header::new(name, HeaderValue::String(value.into()))
}

fn stream_response(
    behaviour: &Behaviour,
    answer: &Answer,
    fail_after: Option<(usize, StreamException)>,
    started: Instant,
    request_id: &str,
) -> Response {
    let mut frames = vec![Frame::MessageStart];
    let chunk = behaviour.stream_chunk_chars;
    let deltas: Vec<Frame> = match &answer.content {
        AnswerContent::Text(text) => chunk_chars(text, chunk)
            .into_iter()
            .map(Frame::TextDelta)
            .collect(),
        AnswerContent::ToolUse {
            tool_use_id,
            name,
            input,
        } => {
            frames.push(Frame::ToolUseStart {
                tool_use_id: tool_use_id.clone(),
                name: name.clone(),
            });
            chunk_chars(&input.to_string(), chunk)
                .into_iter()
                .map(Frame::ToolUseDelta)
                .collect()
        }
    };
    match fail_after {
        Some((after_deltas, exception)) => {
            frames.extend(deltas.into_iter().take(after_deltas));
            frames.push(Frame::Exception(exception));
        }
        None => {
            frames.extend(deltas);
            frames.push(Frame::BlockStop);
            frames.push(Frame::MessageStop(answer.stop_reason));
            frames.push(Frame::Metadata(answer.usage()));
        }
    }
    let delay = behaviour.stream_chunk_delay;
    // Each frame is its own body chunk; with no content length hyper sends them with chunked encoding as
    // they are produced.
    let body = futures::stream::iter(frames.into_iter().enumerate()).then(
        move |(index, frame)| async move {
            if index > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            frame.encode(started)
        },
    );
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HttpHeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE),
    );
    insert_request_id(&mut response, request_id);
    response
}

fn validation_error(message: &str, request_id: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        &json!({ "message": message }),
        request_id,
    )
}

/// An error the way Bedrock sends one: status, `x-amzn-errortype` (with the namespace suffix the SDK strips)
/// and a JSON body carrying `message`.
fn error_response(
    status: StatusCode,
    error_type: &str,
    payload: &Value,
    request_id: &str,
) -> Response {
    let mut response = (status, axum::Json(payload.clone())).into_response();
    let error_type = format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    if let Ok(value) = HttpHeaderValue::from_str(&error_type) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    insert_request_id(&mut response, request_id);
    response
}

fn insert_request_id(response: &mut Response, request_id: &str) {
    if let Ok(value) = HttpHeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
}

// === Request reading ===

const MUST_START_WITH_USER: &str = "A conversation must start with a user message. Try again with a \
                                    conversation that starts with a user message.";
const MUST_ALTERNATE_ROLES: &str = "A conversation must alternate between user and assistant roles. Make \
                                    sure the conversation alternates between user and assistant roles \
                                    and try again.";

/// Checks the rules Bedrock enforces that a broker could plausibly break, with Bedrock's wording.
fn validate(request: &Value) -> Result<(), String> {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return Err(
            "1 validation error detected: Value null at 'messages' failed to satisfy constraint: \
                    Member must not be null"
                .to_owned(),
        );
    };
    let mut expected = "user";
    for (index, message) in messages.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some(role) if role == expected => {}
            _ if index == 0 => return Err(MUST_START_WITH_USER.to_owned()),
            _ => return Err(MUST_ALTERNATE_ROLES.to_owned()),
        }
        if !message.get("content").is_some_and(Value::is_array) {
            return Err(format!(
                "1 validation error detected: Value null at 'messages.{}.member.content' failed to satisfy \
                 constraint: Member must not be null",
                index + 1
            ));
        }
        expected = if expected == "user" {
            "assistant"
        } else {
            "user"
        };
    }
    if messages.is_empty() {
        return Err(MUST_START_WITH_USER.to_owned());
    }
    if let Some(max_tokens) = request.pointer("/inferenceConfig/maxTokens")
        && max_tokens.as_u64().is_none_or(|value| value < 1)
    {
        return Err(format!(
            "1 validation error detected: Value '{max_tokens}' at 'inferenceConfig.maxTokens' failed to \
             satisfy constraint: Member must have value greater than or equal to 1"
        ));
    }
    Ok(())
}

/// The text of a content block: a `text` block, or the text of a `guardContent` block.
fn block_text(block: &Value) -> Option<&str> {
    block.get("text").and_then(Value::as_str).or_else(|| {
        block
            .pointer("/guardContent/text/text")
            .and_then(Value::as_str)
    })
}

/// The `text` entries of a `toolResult` block's content (none for any other block).
fn tool_result_texts(block: &Value) -> impl Iterator<Item = &str> {
    block
        .pointer("/toolResult/content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("text").and_then(Value::as_str))
}

fn message_blocks(message: &Value) -> impl Iterator<Item = &Value> {
    message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn message_texts(message: &Value) -> impl Iterator<Item = &str> {
    message_blocks(message).filter_map(block_text)
}

fn last_user_message(request: &Value) -> Option<&Value> {
    request
        .get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
}

fn last_user_text(request: &Value) -> Option<String> {
    let last_user = last_user_message(request)?;
    Some(message_texts(last_user).collect::<Vec<_>>().join("\n"))
}

fn last_user_has_tool_result(request: &Value) -> bool {
    last_user_message(request).is_some_and(|message| {
        message_blocks(message).any(|block| block.get("toolResult").is_some())
    })
}

/// What [`Reply::Echo`] echoes: the text of the last user message, or the text of its tool results when it
/// carries any.
fn echo_text(request: &Value) -> Option<String> {
    if last_user_has_tool_result(request) {
        let last_user = last_user_message(request)?;
        let texts: Vec<&str> = message_blocks(last_user)
            .flat_map(tool_result_texts)
            .collect();
        return Some(texts.join("\n"));
    }
    last_user_text(request)
}

fn max_tokens(request: &Value) -> Option<u64> {
    request
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64)
}

fn input_word_count(request: &Value) -> u64 {
    let system = request
        .get("system")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(block_text);
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(message_blocks)
        .flat_map(|block| {
            block_text(block)
                .into_iter()
                .chain(tool_result_texts(block))
        });
    system.chain(messages).map(word_count).sum()
}

fn word_count(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

/// The prefix of `text` that holds its first `limit` words (original spacing kept), or `None` when the text
/// has no more than `limit` words.
fn truncate_words(text: &str, limit: u64) -> Option<&str> {
    let mut words = 0_u64;
    let mut in_word = false;
    for (index, ch) in text.char_indices() {
        if ch.is_whitespace() {
            in_word = false;
        } else if !in_word {
            in_word = true;
            if words == limit {
                return Some(text[..index].trim_end());
            }
            words += 1;
        }
    }
    None
}

/// Splits `text` into pieces of `size` characters (the last may be shorter).
fn chunk_chars(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|chunk| chunk.iter().collect())
        .collect()
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_words_keeps_the_first_words_and_their_spacing() {
        assert_eq!(truncate_words("one  two three", 2), Some("one  two"));
        assert_eq!(truncate_words("one two", 2), None);
        assert_eq!(truncate_words("  one two  ", 1), Some("  one"));
        assert_eq!(truncate_words("one", 0), Some(""));
    }

    #[test]
    fn chunk_chars_splits_on_characters_not_bytes() {
        assert_eq!(chunk_chars("héllo wörld", 4), vec!["héll", "o wö", "rld"]);
        assert!(chunk_chars("", 4).is_empty());
    }

    #[test]
    fn input_word_count_covers_system_and_every_message() {
        let request = json!({
            "system": [{ "text": "be brief" }, { "guardContent": { "text": { "text": "guarded words here" } } }],
            "messages": [
                { "role": "user", "content": [{ "text": "hello there" }] },
                { "role": "assistant", "content": [{ "text": "hi" }] },
                { "role": "user", "content": [{ "text": "one" }, { "image": {} }] },
            ],
        });
        assert_eq!(input_word_count(&request), 2 + 3 + 2 + 1 + 1);
        assert_eq!(last_user_text(&request).as_deref(), Some("one"));
    }

    #[test]
    fn validate_rejects_what_bedrock_rejects() {
        let ok = json!({ "messages": [{ "role": "user", "content": [{ "text": "hi" }] }] });
        assert_eq!(validate(&ok), Ok(()));
        let empty = json!({ "messages": [] });
        assert!(validate(&empty).is_err());
        let assistant_first = json!({ "messages": [{ "role": "assistant", "content": [] }] });
        assert!(validate(&assistant_first).is_err());
        let not_alternating = json!({ "messages": [
            { "role": "user", "content": [] }, { "role": "user", "content": [] },
        ] });
        assert!(validate(&not_alternating).is_err());
        let zero_tokens = json!({
            "messages": [{ "role": "user", "content": [] }],
            "inferenceConfig": { "maxTokens": 0 },
        });
        assert!(validate(&zero_tokens).is_err());
    }

    /// A tool loop as a client sends it: the tool declared, the assistant's call, the user's result, with
    /// an image and a document alongside.
    fn tool_loop_request() -> Value {
        json!({
            "messages": [
                { "role": "user", "content": [
                    { "text": "weather in Paris" },
                    { "image": { "format": "png", "source": { "bytes": "iVBORw0KGgo=" } } },
                    { "document": { "format": "txt", "name": "notes", "source": { "bytes": "aGk=" } } },
                ] },
                { "role": "assistant", "content": [
                    { "toolUse": { "toolUseId": "tooluse_mock_1", "name": "get_weather",
                                   "input": { "city": "Paris" } } },
                ] },
                { "role": "user", "content": [
                    { "toolResult": { "toolUseId": "tooluse_mock_1", "status": "success", "content": [
                        { "text": "18 degrees" }, { "json": { "celsius": 18 } }, { "text": "light rain" },
                    ] } },
                ] },
            ],
            "toolConfig": { "tools": [{ "toolSpec": {
                "name": "get_weather",
                "inputSchema": { "json": { "type": "object" } },
            } }] },
        })
    }

    #[test]
    fn validate_accepts_tool_blocks_and_messages_without_text() {
        assert_eq!(validate(&tool_loop_request()), Ok(()));
    }

    #[test]
    fn tool_results_are_echoed_and_counted() {
        let request = tool_loop_request();
        assert_eq!(
            echo_text(&request).as_deref(),
            Some("18 degrees\nlight rain")
        );
        assert_eq!(last_user_text(&request).as_deref(), Some(""));
        assert_eq!(input_word_count(&request), 3 + 2 + 2);
    }

    #[test]
    fn tool_use_answers_a_call_then_text_once_the_result_is_back() {
        let behaviour = Behaviour {
            reply: Reply::tool_use("get_weather", json!({ "city": "Paris" })),
            ..Behaviour::default()
        };
        let question = json!({
            "messages": [{ "role": "user", "content": [{ "text": "weather?" }] }],
            "toolConfig": { "tools": [{ "toolSpec": { "name": "get_weather" } }] },
        });
        let call = compose_answer(&behaviour, &question, 7);
        assert_eq!(call.stop_reason, "tool_use");
        assert_eq!(
            call.content.converse_block(),
            json!({ "toolUse": {
                "toolUseId": "tooluse_mock_7", "name": "get_weather", "input": { "city": "Paris" },
            } })
        );
        assert_eq!(call.output_tokens, 2);

        // Without tools declared, a model answers in text.
        let plain =
            json!({ "messages": [{ "role": "user", "content": [{ "text": "weather?" }] }] });
        assert_eq!(
            compose_answer(&behaviour, &plain, 8).stop_reason,
            "end_turn"
        );

        let answer = compose_answer(&behaviour, &tool_loop_request(), 8);
        assert_eq!(answer.stop_reason, "end_turn");
        assert_eq!(
            answer.content.converse_block(),
            json!({ "text": format!("{ECHO_PREFIX}18 degrees\nlight rain") })
        );
    }
}
