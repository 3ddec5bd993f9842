//! The mock model server: OpenAI chat completions (JSON and server-sent events) and Amazon Bedrock Runtime
//! Converse / ConverseStream (JSON and `application/vnd.amazon.eventstream` frames), with a fixed latency
//! before the answer (or before the first streamed event) and a delay between streamed events.
//!
//! Every answer is the same short business reply with token usage, so every gateway forwards the same bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue as HttpHeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use serde_json::{Value, json};

/// The answer every request gets, split into `stream_chunks` deltas when streamed.
pub const REPLY: &str = "Summary: the customer was charged twice for the March direct debit on the business \
account. The second collection is a duplicate and will be refunded automatically within three to five \
working days. Suggested reply: apologise, confirm the refund date, and offer a direct contact at {EMAIL} for \
any further questions about the statement.";

/// How the mock answers.
#[derive(Debug, Clone, Copy)]
pub struct MockBehaviour {
    /// Delay before the answer, or before the first streamed event.
    pub latency: Duration,
    /// Number of content deltas a streamed answer is split into.
    pub stream_chunks: usize,
    /// Delay between streamed events.
    pub stream_chunk_delay: Duration,
}

#[derive(Debug)]
struct Shared {
    behaviour: MockBehaviour,
    seq: AtomicU64,
}

/// The mock's router.
pub fn router(behaviour: MockBehaviour) -> Router {
    let shared = Arc::new(Shared {
        behaviour,
        seq: AtomicU64::new(0),
    });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/chat/completions", post(chat_completions_create))
        .route("/chat/completions", post(chat_completions_create))
        .route("/model/{model_id}/converse", post(converse_create))
        .route(
            "/model/{model_id}/converse-stream",
            post(converse_stream_create),
        )
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(shared)
}

/// Serves the mock on `addr` until the process is stopped.
pub async fn serve(addr: SocketAddr, behaviour: MockBehaviour) -> anyhow::Result<()> {
    let listener = crate::passthrough::bind(addr).await?;
    axum::serve(listener, router(behaviour))
        .with_graceful_shutdown(crate::passthrough::shutdown_signal())
        .await
        .context("serving the mock")
}

/// Rough token count: one token per four bytes of text, at least one.
fn tokens(bytes: usize) -> u64 {
    u64::try_from(bytes / 4).unwrap_or(u64::MAX).max(1)
}

/// The bytes of every `content` in OpenAI `messages` (string or text parts).
fn openai_input_bytes(request: &Value) -> usize {
    request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| match m.get("content") {
            Some(Value::String(s)) => s.len(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(str::len)
                .sum(),
            _ => 0,
        })
        .sum()
}

/// The bytes of every text block in Bedrock `system` and `messages`.
fn bedrock_input_bytes(request: &Value) -> usize {
    let blocks = |v: Option<&Value>| -> usize {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(str::len)
            .sum()
    };
    let messages: usize = request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| blocks(m.get("content")))
        .sum();
    messages + blocks(request.get("system"))
}

/// `REPLY` cut into `n` pieces on character boundaries.
fn chunks(n: usize) -> Vec<String> {
    let chars: Vec<char> = REPLY.chars().collect();
    let n = n.clamp(1, chars.len());
    let size = chars.len().div_ceil(n);
    chars
        .chunks(size)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}

// === OpenAI chat completions ===

async fn chat_completions_create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body is not JSON");
    };
    let id = format!(
        "chatcmpl-mock-{}",
        shared.seq.fetch_add(1, Ordering::Relaxed)
    );
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_owned();
    let prompt_tokens = tokens(openai_input_bytes(&request));
    let completion_tokens = tokens(REPLY.len());
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let behaviour = shared.behaviour;
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        if !behaviour.latency.is_zero() {
            tokio::time::sleep(behaviour.latency).await;
        }
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": REPLY},
                "finish_reason": "stop",
            }],
            "usage": usage,
        });
        return axum::Json(body).into_response();
    }
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        chunks(behaviour.stream_chunks)
            .into_iter()
            .map(|text| chunk(json!({"content": text}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        let mut last = chunk(json!({}), Value::Null);
        last["choices"] = json!([]);
        last["usage"] = usage;
        events.push(last);
    }
    let mut frames: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body = paced(frames, behaviour);
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HttpHeaderValue::from_static("text/event-stream"),
    );
    response
}

/// A streamed body: the latency before the first frame, the chunk delay before each later one. Each frame is
/// its own body chunk, sent with chunked encoding as it is produced.
fn paced(frames: Vec<Bytes>, behaviour: MockBehaviour) -> Body {
    let stream = futures::stream::iter(frames.into_iter().enumerate()).then(
        move |(index, frame)| async move {
            let delay = if index == 0 {
                behaviour.latency
            } else {
                behaviour.stream_chunk_delay
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, std::convert::Infallible>(frame)
        },
    );
    Body::from_stream(stream)
}

// === Bedrock Converse ===

fn bedrock_usage(request: &Value) -> Value {
    let input = tokens(bedrock_input_bytes(request));
    let output = tokens(REPLY.len());
    json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output})
}

async fn converse_create(
    State(shared): State<Arc<Shared>>,
    Path(_model_id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body is not JSON");
    };
    let latency = shared.behaviour.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": REPLY}]}},
        "stopReason": "end_turn",
        "usage": bedrock_usage(&request),
        "metrics": {"latencyMs": latency.as_millis()},
    });
    axum::Json(body).into_response()
}

fn event(event_type: &'static str, payload: &Value) -> anyhow::Result<Bytes> {
    let message = Message::new(payload.to_string())
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut buffer = Vec::new();
    write_message_to(&message, &mut buffer).context("encoding an event-stream frame")?;
    Ok(Bytes::from(buffer))
}

async fn converse_stream_create(
    State(shared): State<Arc<Shared>>,
    Path(_model_id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body is not JSON");
    };
    let behaviour = shared.behaviour;
    let mut frames = vec![event("messageStart", &json!({"role": "assistant"}))];
    frames.extend(chunks(behaviour.stream_chunks).into_iter().map(|text| {
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": text}}),
        )
    }));
    frames.push(event("contentBlockStop", &json!({"contentBlockIndex": 0})));
    frames.push(event("messageStop", &json!({"stopReason": "end_turn"})));
    frames.push(event(
        "metadata",
        &json!({"usage": bedrock_usage(&request), "metrics": {"latencyMs": behaviour.latency.as_millis()}}),
    ));
    let frames: Result<Vec<Bytes>, _> = frames.into_iter().collect();
    let frames = match frames {
        Ok(frames) => frames,
        Err(err) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("mock: {err:#}")).into_response();
        }
    };
    let mut response = Response::new(paced(frames, behaviour));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HttpHeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_reply_exactly() {
        for n in [1, 7, 16, 10_000] {
            let parts = chunks(n);
            assert!(!parts.is_empty());
            assert!(parts.len() <= n.max(1));
            assert_eq!(parts.concat(), REPLY);
        }
    }

    #[test]
    fn input_bytes_count_text_parts_and_system_blocks() {
        let openai = json!({"messages": [
            {"role": "system", "content": "abcd"},
            {"role": "user", "content": [{"type": "text", "text": "efgh"}]},
        ]});
        assert_eq!(openai_input_bytes(&openai), 8);
        let bedrock = json!({
            "system": [{"text": "abcd"}],
            "messages": [{"role": "user", "content": [{"text": "efghij"}]}],
        });
        assert_eq!(bedrock_input_bytes(&bedrock), 10);
    }
}
