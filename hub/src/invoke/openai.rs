//! Any OpenAI-compatible chat completions and embeddings endpoint, such as a self-hosted model inside the
//! VPC.
//!
//! The content model maps to chat completions as the OpenAI SDKs send it: images and documents as `data:`
//! URI parts, tool results as `tool` messages, tool calls as an assistant's `tool_calls`, tools and tool
//! choice as `tools` / `tool_choice`; streamed tool calls come back as `delta.tool_calls` fragments.

use async_trait::async_trait;
use base64::Engine as _;
use causeway_contract::content::{ContentBlock, ToolChoice};
use causeway_contract::openai::ChatCompletionChunk;
use causeway_contract::{Message, Role, TokenUsage};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{
    EmbedCall, EmbedReply, InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream,
    StopReason, StreamEvent,
};

/// The OpenAI-compatible invoker.
#[derive(Debug, Clone)]
pub struct OpenAiInvoker {
    base_url: String,
    api_key: Option<SecretString>,
    http: reqwest::Client,
}

fn finish(reason: Option<&str>) -> StopReason {
    match reason {
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::ContentFiltered,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

fn data_uri(media_type: &str, data: &[u8]) -> String {
    format!(
        "data:{media_type};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(data)
    )
}

/// A text, image or document block as a chat content part.
fn part(block: &ContentBlock) -> Option<serde_json::Value> {
    match block {
        ContentBlock::Text { text } => Some(json!({"type": "text", "text": text})),
        ContentBlock::Image { media_type, data } => Some(json!({
            "type": "image_url",
            "image_url": {"url": data_uri(media_type.media_type(), &data.0)}
        })),
        ContentBlock::Document { format, name, data } => Some(json!({
            "type": "file",
            "file": {"filename": name, "file_data": data_uri(format.media_type(), &data.0)}
        })),
        ContentBlock::ToolUse { .. } | ContentBlock::ToolResult { .. } => None,
    }
}

/// One of our messages as chat messages: tool results become `tool` messages, tool calls an assistant's
/// `tool_calls`.
fn chat_messages(message: &Message) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    match message.role {
        Role::Assistant => {
            let text: String = message
                .content
                .iter()
                .filter_map(ContentBlock::as_text)
                .collect();
            let calls: Vec<serde_json::Value> = message
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, name, input } => Some(json!({
                        "id": id,
                        "type": "function",
                        "function": {"name": name, "arguments": input.to_string()}
                    })),
                    _ => None,
                })
                .collect();
            let mut m = json!({"role": "assistant", "content": if text.is_empty() { serde_json::Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                m["tool_calls"] = json!(calls);
            }
            out.push(m);
        }
        Role::User | Role::System => {
            let role = if message.role == Role::System {
                "system"
            } else {
                "user"
            };
            for block in &message.content {
                if let ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    ..
                } = block
                {
                    let parts: Vec<serde_json::Value> = content.iter().filter_map(part).collect();
                    out.push(
                        json!({"role": "tool", "tool_call_id": tool_use_id, "content": parts}),
                    );
                }
            }
            let parts: Vec<serde_json::Value> = message.content.iter().filter_map(part).collect();
            if !parts.is_empty() {
                out.push(json!({"role": role, "content": parts}));
            }
        }
    }
    out
}

/// The answer message's blocks: text, then tool calls.
fn answer_blocks(message: &serde_json::Value) -> Result<Vec<ContentBlock>, InvokeError> {
    let mut blocks = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        blocks.push(ContentBlock::text(text));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let (Some(id), Some(name)) = (call["id"].as_str(), call["function"]["name"].as_str())
        else {
            return Err(InvokeError::Protocol(
                "a tool call without `id` or `name`".to_owned(),
            ));
        };
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        let input = serde_json::from_str(if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        })
        .map_err(|_| InvokeError::Protocol("tool call arguments that are not JSON".to_owned()))?;
        blocks.push(ContentBlock::ToolUse {
            id: id.to_owned(),
            name: name.to_owned(),
            input,
        });
    }
    if blocks.is_empty() && message["content"].is_null() {
        return Err(InvokeError::Protocol(
            "no `choices[0].message.content` or `tool_calls`".to_owned(),
        ));
    }
    Ok(blocks)
}

impl OpenAiInvoker {
    /// `base_url` up to and including `/v1`; `api_key` read from the environment variable named in config.
    pub fn new(base_url: &str, api_key: Option<SecretString>, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            http,
        }
    }

    fn body(call: &ModelCall, stream: bool) -> serde_json::Value {
        let mut messages: Vec<serde_json::Value> = call
            .system
            .iter()
            .map(|s| json!({"role": "system", "content": s}))
            .collect();
        for message in &call.messages {
            messages.extend(chat_messages(message));
        }
        let mut body =
            json!({"model": call.model_id, "messages": messages, "max_tokens": call.max_tokens});
        if !call.tools.is_empty() {
            body["tools"] = call
                .tools
                .iter()
                .map(|t| {
                    let mut function = json!({"name": t.name, "parameters": t.input_schema});
                    if let Some(description) = &t.description {
                        function["description"] = json!(description);
                    }
                    json!({"type": "function", "function": function})
                })
                .collect();
            if let Some(choice) = &call.tool_choice {
                body["tool_choice"] = match choice {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::Any => json!("required"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Tool { name } => {
                        json!({"type": "function", "function": {"name": name}})
                    }
                };
            }
        }
        if !call.stop_sequences.is_empty() {
            body["stop"] = json!(call.stop_sequences);
        }
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    async fn post(&self, call: &ModelCall, stream: bool) -> Result<reqwest::Response, InvokeError> {
        self.post_json("chat/completions", &Self::body(call, stream))
            .await
    }

    async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, InvokeError> {
        let mut request = self
            .http
            .post(format!("{}/{path}", self.base_url))
            .json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| {
            InvokeError::Unavailable(
                if e.is_timeout() {
                    "timeout"
                } else {
                    "connection failed"
                }
                .to_owned(),
            )
        })?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => Ok(response),
            429 => Err(InvokeError::Throttled),
            500..=599 => Err(InvokeError::Unavailable(format!("status {status}"))),
            _ => Err(InvokeError::Rejected(format!("status {status}"))),
        }
    }
}

#[async_trait]
impl ModelInvoker for OpenAiInvoker {
    fn provider(&self) -> &'static str {
        "openai"
    }

    async fn invoke(&self, call: &ModelCall) -> Result<ModelReply, InvokeError> {
        let response = self.post(call, false).await?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|_| InvokeError::Protocol("the body is not JSON".to_owned()))?;
        let choice = &body["choices"][0];
        let content = answer_blocks(&choice["message"])?;
        let tokens =
            |key: &str| u32::try_from(body["usage"][key].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
        Ok(ModelReply {
            content,
            stop_reason: finish(choice["finish_reason"].as_str()),
            usage: TokenUsage {
                input_tokens: tokens("prompt_tokens"),
                output_tokens: tokens("completion_tokens"),
            },
        })
    }

    async fn embed(&self, call: &EmbedCall) -> Result<EmbedReply, InvokeError> {
        let mut body =
            json!({"model": call.model_id, "input": call.inputs, "encoding_format": "float"});
        if let Some(dimensions) = call.dimensions {
            body["dimensions"] = json!(dimensions);
        }
        let response = self.post_json("embeddings", &body).await?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|_| InvokeError::Protocol("the body is not JSON".to_owned()))?;
        let mut data: Vec<&serde_json::Value> = body["data"]
            .as_array()
            .ok_or_else(|| InvokeError::Protocol("no `data` in the answer".to_owned()))?
            .iter()
            .collect();
        data.sort_by_key(|d| d["index"].as_u64().unwrap_or(0));
        if data.len() != call.inputs.len() {
            return Err(InvokeError::Protocol(format!(
                "{} vectors for {} texts",
                data.len(),
                call.inputs.len()
            )));
        }
        let vectors = data
            .into_iter()
            .map(|d| {
                d["embedding"]
                    .as_array()
                    .map(|values| {
                        values
                            .iter()
                            .filter_map(serde_json::Value::as_f64)
                            // Embedding values are 32-bit floats; narrowing is the intent.
                            .map(|f| {
                                #[expect(
                                    clippy::cast_possible_truncation,
                                    reason = "vectors are f32"
                                )]
                                let v = f as f32;
                                v
                            })
                            .collect()
                    })
                    .ok_or_else(|| {
                        InvokeError::Protocol("an embedding that is not a list".to_owned())
                    })
            })
            .collect::<Result<Vec<Vec<f32>>, InvokeError>>()?;
        Ok(EmbedReply {
            vectors,
            input_tokens: u32::try_from(body["usage"]["prompt_tokens"].as_u64().unwrap_or(0))
                .unwrap_or(u32::MAX),
        })
    }

    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError> {
        let response = self.post(call, true).await?;
        struct State {
            body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
            buffer: Vec<u8>,
            stop: Option<StopReason>,
            usage: TokenUsage,
            pending: std::collections::VecDeque<Result<StreamEvent, InvokeError>>,
            finished: bool,
        }
        let state = State {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            stop: None,
            usage: TokenUsage::default(),
            pending: std::collections::VecDeque::new(),
            finished: false,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(event) = state.pending.pop_front() {
                    return Some((event, state));
                }
                if state.finished {
                    return None;
                }
                // Parse every complete server-sent event in the buffer.
                while let Some(end) = state.buffer.windows(2).position(|w| w == b"\n\n") {
                    let frame: Vec<u8> = state.buffer.drain(..end + 2).collect();
                    let frame = String::from_utf8_lossy(&frame);
                    for line in frame.lines() {
                        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                            continue;
                        };
                        if data == "[DONE]" {
                            state.finished = true;
                            state.pending.push_back(Ok(StreamEvent::Done {
                                stop_reason: state.stop.unwrap_or(StopReason::EndTurn),
                                usage: state.usage,
                            }));
                            continue;
                        }
                        match serde_json::from_str::<ChatCompletionChunk>(data) {
                            Ok(chunk) => {
                                if let Some(usage) = chunk.usage {
                                    state.usage = TokenUsage {
                                        input_tokens: usage.prompt_tokens,
                                        output_tokens: usage.completion_tokens,
                                    };
                                }
                                for choice in chunk.choices {
                                    if let Some(text) =
                                        choice.delta.content.filter(|t| !t.is_empty())
                                    {
                                        state.pending.push_back(Ok(StreamEvent::TextDelta(text)));
                                    }
                                    for call in choice.delta.tool_calls.into_iter().flatten() {
                                        if let (Some(id), Some(name)) =
                                            (call.id, call.function.name)
                                        {
                                            state.pending.push_back(Ok(
                                                StreamEvent::ToolUseStart {
                                                    index: call.index,
                                                    id,
                                                    name,
                                                },
                                            ));
                                        }
                                        if let Some(partial_json) =
                                            call.function.arguments.filter(|a| !a.is_empty())
                                        {
                                            state.pending.push_back(Ok(
                                                StreamEvent::ToolInputDelta {
                                                    index: call.index,
                                                    partial_json,
                                                },
                                            ));
                                        }
                                    }
                                    if let Some(reason) = choice.finish_reason {
                                        state.stop = Some(finish(Some(&reason)));
                                    }
                                }
                            }
                            Err(_) => {
                                state.finished = true;
                                state.pending.push_back(Err(InvokeError::Protocol(
                                    "unreadable stream chunk".to_owned(),
                                )));
                            }
                        }
                    }
                }
                if !state.pending.is_empty() || state.finished {
                    continue;
                }
                match state.body.next().await {
                    Some(Ok(bytes)) => state.buffer.extend_from_slice(&bytes),
                    Some(Err(_)) => {
                        state.finished = true;
                        state.pending.push_back(Err(InvokeError::Unavailable(
                            "the stream was cut".to_owned(),
                        )));
                    }
                    None => {
                        state.finished = true;
                        state.pending.push_back(Err(InvokeError::Protocol(
                            "the stream ended without `[DONE]`".to_owned(),
                        )));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
