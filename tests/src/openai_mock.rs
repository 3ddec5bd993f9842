//! A wire-level mock of an OpenAI-compatible chat completions upstream (a self-hosted model behind vLLM or
//! similar), so tests exercise the hub's real HTTP client and its mapping of the content model.
//!
//! [`OpenAiMock`] serves `POST /v1/chat/completions` on `127.0.0.1` with an ephemeral port, complete or
//! streamed (`stream: true`, server-sent events ending in `data: [DONE]`), with the same [`Reply`] choices
//! as the Bedrock mock:
//! - `Echo` answers [`ECHO_PREFIX`] followed by the text of the last message: a `user` message's text
//!   parts, or, when the conversation ends in `tool` messages, their text (string content or text parts),
//!   joined by a newline, so a test sees exactly what the model received.
//! - `ToolUse` calls the named tool (`finish_reason: "tool_calls"`, id `call_mock_<n>` with n counting
//!   requests from 1) unless the request offers no tools or the conversation ends in a `tool` message; then
//!   it echoes, so a tool loop ends. Streamed, the call arrives as OpenAI sends it: a first fragment with
//!   index, id, type and name, then argument fragments that concatenate to the compact JSON of the input.
//! - `GuardrailIntervened(text)` answers `text` with `finish_reason: "content_filter"`.
//!
//! `POST /v1/embeddings` answers each text of `input` with the Bedrock mock's deterministic vector
//! ([`crate::bedrock_mock::mock_embedding`]) of `dimensions` (default 1024).
//!
//! Every request is recorded, body as sent, before it is answered. Usage counts whitespace-separated words
//! (the input's text, the answer's text or the tool call's name and arguments); a streamed answer sends a
//! usage chunk when `stream_options.include_usage` is set. Bodies that are not JSON or have no `messages`
//! get 400 in OpenAI's error shape. Dropping the handle shuts the server down.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::Instrument as _;

pub use crate::bedrock_mock::{ECHO_PREFIX, Reply};

/// The prefix of every tool-call id the mock hands out.
pub const TOOL_CALL_ID_PREFIX: &str = "call_mock_";

/// Characters per streamed delta (text, or a fragment of a tool call's arguments).
const STREAM_CHUNK_CHARS: usize = 8;

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
    /// The body as sent.
    pub body: Value,
}

#[derive(Debug)]
struct Inner {
    reply: Reply,
    requests: Vec<UpstreamRequest>,
}

#[derive(Debug)]
struct Shared(Mutex<Inner>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every write is a single assignment or push: a poisoned lock still guards consistent data.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running OpenAI-compatible upstream mock; see the module docs.
#[derive(Debug)]
pub struct OpenAiMock {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl OpenAiMock {
    /// Binds `127.0.0.1:0` and serves the mock on the current tokio runtime, answering with
    /// [`Reply::Echo`].
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("bind the OpenAI upstream mock to 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared(Mutex::new(Inner {
            reply: Reply::Echo,
            requests: Vec::new(),
        })));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions_create))
            .route("/v1/embeddings", post(embeddings_create))
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(Arc::clone(&shared));
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!(error = %err, "OpenAI upstream mock stopped with an error");
            }
        }
        .instrument(tracing::info_span!("openai_mock", %addr));
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

    /// The base URL up to and including `/v1`, as `[providers.openai] base_url` takes it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Sets what later requests are answered with.
    pub fn set_reply(&self, reply: Reply) {
        self.shared.lock().reply = reply;
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<UpstreamRequest> {
        self.shared.lock().requests.clone()
    }
}

impl Drop for OpenAiMock {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What the model answers: text or one tool call, and why it stopped.
enum Answer {
    Text {
        text: String,
        finish: &'static str,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
}

impl Answer {
    fn output_words(&self) -> usize {
        match self {
            Self::Text { text, .. } => words(text),
            Self::ToolCall {
                name, arguments, ..
            } => words(name) + words(arguments),
        }
    }
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The text of a message's `content`: a string, or its text parts joined by a newline.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The trailing `tool` messages' texts, or the last user message's text.
fn echo_text(messages: &[Value]) -> String {
    let tools: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| content_text(&m["content"]))
        .collect();
    if !tools.is_empty() {
        return tools.into_iter().rev().collect::<Vec<_>>().join("\n");
    }
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

fn compose(reply: &Reply, body: &Value, seq: usize) -> Answer {
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let echo = || Answer::Text {
        text: format!("{ECHO_PREFIX}{}", echo_text(messages)),
        finish: "stop",
    };
    match reply {
        Reply::Text(text) => Answer::Text {
            text: text.clone(),
            finish: "stop",
        },
        Reply::Echo => echo(),
        Reply::GuardrailIntervened(text) => Answer::Text {
            text: text.clone(),
            finish: "content_filter",
        },
        Reply::ToolUse { name, input } => {
            let offered = body["tools"].as_array().is_some_and(|t| !t.is_empty());
            let after_result = messages.last().is_some_and(|m| m["role"] == "tool");
            if offered && !after_result {
                Answer::ToolCall {
                    id: format!("{TOOL_CALL_ID_PREFIX}{seq}"),
                    name: name.clone(),
                    arguments: input.to_string(),
                }
            } else {
                echo()
            }
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "code": null}});
    (status, axum::Json(body)).into_response()
}

fn chunks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(STREAM_CHUNK_CHARS)
        .map(|c| c.iter().collect())
        .collect()
}

async fn chat_completions_create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let (reply, seq) = {
        let mut inner = shared.lock();
        inner.requests.push(UpstreamRequest {
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: body.clone(),
        });
        (inner.reply.clone(), inner.requests.len())
    };
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "`messages` is required");
    };
    let input_words: usize = messages
        .iter()
        .map(|m| words(&content_text(&m["content"])))
        .sum();
    let answer = compose(&reply, &body, seq);
    let usage = json!({
        "prompt_tokens": input_words,
        "completion_tokens": answer.output_words(),
        "total_tokens": input_words + answer.output_words(),
    });
    let model = body["model"].clone();
    let id = format!("chatcmpl-mock-{seq}");

    if body["stream"] != json!(true) {
        let (message, finish) = match &answer {
            Answer::Text { text, finish } => {
                (json!({"role": "assistant", "content": text}), *finish)
            }
            Answer::ToolCall {
                id,
                name,
                arguments,
            } => (
                json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
                ]}),
                "tool_calls",
            ),
        };
        let body = json!({
            "id": id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        });
        return axum::Json(body).into_response();
    }

    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let finish = match &answer {
        Answer::Text { text, finish } => {
            events.extend(
                chunks(text)
                    .into_iter()
                    .map(|piece| chunk(json!({"content": piece}), Value::Null)),
            );
            *finish
        }
        Answer::ToolCall {
            id: call_id,
            name,
            arguments,
        } => {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                       "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            events.extend(chunks(arguments).into_iter().map(|piece| {
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    Value::Null,
                )
            }));
            "tool_calls"
        }
    };
    events.push(chunk(json!({}), json!(finish)));
    if body["stream_options"]["include_usage"] == json!(true) {
        events.push(
            json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                           "choices": [], "usage": usage}),
        );
    }
    let mut text: String = events
        .iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    text.push_str("data: [DONE]\n\n");
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from(text))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "building the stream"))
}

async fn embeddings_create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    shared.lock().requests.push(UpstreamRequest {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.clone(),
    });
    let texts: Vec<String> = match &body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => return error(StatusCode::BAD_REQUEST, "`input` is required"),
    };
    let dimensions = usize::try_from(body["dimensions"].as_u64().unwrap_or(1024)).unwrap_or(1024);
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"object": "embedding", "index": i,
                   "embedding": crate::bedrock_mock::mock_embedding(t, dimensions)})
        })
        .collect();
    let tokens: usize = texts.iter().map(|t| words(t)).sum();
    axum::Json(json!({
        "object": "list", "data": data, "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_prefers_trailing_tool_messages() {
        let messages = vec![
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": null, "tool_calls": []}),
            json!({"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "14C"}]}),
            json!({"role": "tool", "tool_call_id": "b", "content": "dry"}),
        ];
        assert_eq!(echo_text(&messages), "14C\ndry");
        assert_eq!(echo_text(&messages[..1]), "weather?");
    }

    #[test]
    fn tool_use_answers_a_call_then_text_after_the_result() {
        let reply = Reply::tool_use("get_weather", json!({"city": "Leeds"}));
        let mut body = json!({"tools": [{"type": "function"}],
                              "messages": [{"role": "user", "content": "weather?"}]});
        assert!(matches!(compose(&reply, &body, 1), Answer::ToolCall { .. }));
        body["messages"]
            .as_array_mut()
            .unwrap()
            .push(json!({"role": "tool", "content": "14C"}));
        assert!(matches!(compose(&reply, &body, 2), Answer::Text { .. }));
    }
}
