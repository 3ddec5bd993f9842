//! Any OpenAI-compatible chat completions and embeddings endpoint, such as a self-hosted model inside the
//! VPC.
//!
//! The content model maps to chat completions as the OpenAI SDKs send it: images and documents as `data:`
//! URI parts, tool results as `tool` messages, tool calls as an assistant's `tool_calls`, tools and tool
//! choice as `tools` / `tool_choice`; streamed tool calls come back as `delta.tool_calls` fragments.

use std::borrow::Cow;

use async_trait::async_trait;
use base64::Engine as _;
use causeway_contract::content::{ContentBlock, ToolChoice};
use causeway_contract::openai::ChatCompletionChunk;
use causeway_contract::{Message, Role, TokenUsage};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
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

/// A chat completions request, encoded straight from the call it carries (borrowed, not copied into a
/// JSON tree first).
#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ChatTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ChatTool<'a> {
    r#type: &'static str,
    function: ChatFunction<'a>,
}

#[derive(Serialize)]
struct ChatFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a serde_json::Value,
}

/// One chat message: `system` and `user` with their content, `assistant` with its text and tool calls,
/// `tool` with the result of one call.
#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    content: ChatContent<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ChatToolCall<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatContent<'a> {
    /// A system prompt as given, or an assistant turn's text blocks joined.
    Text(Cow<'a, str>),
    Parts(Vec<ChatPart<'a>>),
    /// An assistant turn with tool calls and no text.
    Null,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl },
    File { file: ChatFile<'a> },
}

#[derive(Serialize)]
struct ImageUrl {
    url: String,
}

#[derive(Serialize)]
struct ChatFile<'a> {
    filename: &'a str,
    file_data: String,
}

#[derive(Serialize)]
struct ChatToolCall<'a> {
    id: &'a str,
    r#type: &'static str,
    function: ChatCall<'a>,
}

#[derive(Serialize)]
struct ChatCall<'a> {
    name: &'a str,
    arguments: String,
}

/// A text, image or document block as a chat content part.
fn part(block: &ContentBlock) -> Option<ChatPart<'_>> {
    match block {
        ContentBlock::Text { text } => Some(ChatPart::Text { text }),
        ContentBlock::Image { media_type, data } => Some(ChatPart::ImageUrl {
            image_url: ImageUrl {
                url: data_uri(media_type.media_type(), &data.0),
            },
        }),
        ContentBlock::Document { format, name, data } => Some(ChatPart::File {
            file: ChatFile {
                filename: name,
                file_data: data_uri(format.media_type(), &data.0),
            },
        }),
        ContentBlock::ToolUse { .. } | ContentBlock::ToolResult { .. } => None,
    }
}

/// One of our messages as chat messages, appended to `out`: tool results become `tool` messages, tool
/// calls an assistant's `tool_calls`.
fn chat_messages<'a>(message: &'a Message, out: &mut Vec<ChatMessage<'a>>) {
    match message.role {
        Role::Assistant => {
            let text: String = message
                .content
                .iter()
                .filter_map(ContentBlock::as_text)
                .collect();
            let tool_calls = message
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, name, input } => Some(ChatToolCall {
                        id,
                        r#type: "function",
                        function: ChatCall {
                            name,
                            arguments: input.to_string(),
                        },
                    }),
                    _ => None,
                })
                .collect();
            out.push(ChatMessage {
                role: "assistant",
                tool_call_id: None,
                content: if text.is_empty() {
                    ChatContent::Null
                } else {
                    ChatContent::Text(Cow::Owned(text))
                },
                tool_calls,
            });
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
                    out.push(ChatMessage {
                        role: "tool",
                        tool_call_id: Some(tool_use_id),
                        content: ChatContent::Parts(content.iter().filter_map(part).collect()),
                        tool_calls: Vec::new(),
                    });
                }
            }
            let parts: Vec<ChatPart<'_>> = message.content.iter().filter_map(part).collect();
            if !parts.is_empty() {
                out.push(ChatMessage {
                    role,
                    tool_call_id: None,
                    content: ChatContent::Parts(parts),
                    tool_calls: Vec::new(),
                });
            }
        }
    }
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

    fn body(call: &ModelCall, stream: bool) -> ChatRequest<'_> {
        let mut messages: Vec<ChatMessage<'_>> = call
            .system
            .iter()
            .map(|s| ChatMessage {
                role: "system",
                tool_call_id: None,
                content: ChatContent::Text(Cow::Borrowed(s)),
                tool_calls: Vec::new(),
            })
            .collect();
        for message in &call.messages {
            chat_messages(message, &mut messages);
        }
        let tools: Vec<ChatTool<'_>> = call
            .tools
            .iter()
            .map(|t| ChatTool {
                r#type: "function",
                function: ChatFunction {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: &t.input_schema,
                },
            })
            .collect();
        // Only with tools: a choice among none means nothing to the API.
        let tool_choice = call
            .tool_choice
            .as_ref()
            .filter(|_| !tools.is_empty())
            .map(|choice| match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::Any => json!("required"),
                ToolChoice::None => json!("none"),
                ToolChoice::Tool { name } => {
                    json!({"type": "function", "function": {"name": name}})
                }
            });
        ChatRequest {
            model: &call.model_id,
            messages,
            max_tokens: call.max_tokens,
            tools,
            tool_choice,
            stop: &call.stop_sequences,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    async fn post(&self, call: &ModelCall, stream: bool) -> Result<reqwest::Response, InvokeError> {
        self.post_json("chat/completions", &Self::body(call, stream))
            .await
    }

    async fn post_json(
        &self,
        path: &str,
        body: &(impl Serialize + Sync),
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

#[cfg(test)]
mod tests {
    use causeway_contract::content::{Bytes, DocumentFormat, ImageFormat, ToolDefinition};

    use super::*;

    fn call() -> ModelCall {
        ModelCall {
            model_id: "llama".to_owned(),
            system: vec!["Be brief.".to_owned()],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![
                        ContentBlock::text("What is \"this\"?"),
                        ContentBlock::Image {
                            media_type: ImageFormat::Png,
                            data: Bytes(vec![1, 2, 3]),
                        },
                        ContentBlock::Document {
                            format: DocumentFormat::Txt,
                            name: "notes".to_owned(),
                            data: Bytes(b"hi".to_vec()),
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::ToolUse {
                        id: "call_1".to_owned(),
                        name: "weather".to_owned(),
                        input: json!({"city": "Oslo"}),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        ContentBlock::ToolResult {
                            tool_use_id: "call_1".to_owned(),
                            content: vec![ContentBlock::text("14C")],
                            is_error: false,
                        },
                        ContentBlock::text("And tomorrow?"),
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::text("Rain "), ContentBlock::text("later.")],
                },
            ],
            tools: vec![ToolDefinition {
                name: "weather".to_owned(),
                description: Some("The weather in a city".to_owned()),
                input_schema: json!({"type": "object"}),
            }],
            tool_choice: Some(ToolChoice::Tool {
                name: "weather".to_owned(),
            }),
            max_tokens: 64,
            stop_sequences: vec!["END".to_owned()],
            response_schema: None,
        }
    }

    #[test]
    fn a_call_is_encoded_as_chat_completions_send_it() {
        let body = serde_json::to_value(OpenAiInvoker::body(&call(), true)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "llama",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "What is \"this\"?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AQID"}},
                        {"type": "file", "file": {"filename": "notes", "file_data": "data:text/plain;base64,aGk="}}
                    ]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "14C"}]},
                    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
                    {"role": "assistant", "content": "Rain later."}
                ],
                "max_tokens": 64,
                "tools": [{"type": "function", "function": {
                    "name": "weather", "description": "The weather in a city", "parameters": {"type": "object"}
                }}],
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "stop": ["END"],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn a_plain_call_sends_no_optional_fields() {
        let mut call = call();
        call.messages.truncate(1);
        call.messages[0].content.truncate(1);
        call.tools.clear();
        call.stop_sequences.clear();
        let body = serde_json::to_value(OpenAiInvoker::body(&call, false)).unwrap();
        // No tools, so no tool choice either.
        assert_eq!(
            body,
            json!({
                "model": "llama",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "What is \"this\"?"}]}
                ],
                "max_tokens": 64
            })
        );
    }
}
