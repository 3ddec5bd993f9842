//! `POST /v1/chat/completions`: the OpenAI-compatible door, streamed as server-sent events with `stream: true`.
//!
//! The declared purpose comes from the `x-causeway-purpose` header or `defaults.purpose`. The body is mapped to
//! the native content model (text, `image_url` and `file` parts as `data:` URIs, tools, assistant tool calls,
//! `tool` messages as tool results) and goes through exactly the same governed path. `parallel_tool_calls`
//! is accepted; the model decides how many tools it calls. `stop` (a string or a list) becomes the call's stop
//! sequences.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use causeway_contract::content::{ContentBlock, ToolChoice, ToolDefinition};
use causeway_contract::openai::{
    CausewayExtension, ChatAnswerMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk,
    ChatCompletionRequest, ChatCompletionResponse, ChatContent, ChatContentPart, ChatDelta,
    ChatFunctionCall, ChatFunctionDelta, ChatTool, ChatToolCall, ChatToolCallDelta, ChatUsage,
};
use causeway_contract::{ErrorBody, ErrorDetail, InvokeRequest, Message, Role, TokenUsage};
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::extract::{Authenticated, JsonBody, call_meta, declared_purpose};
use super::{AUDIT_ID_HEADER, parts};
use crate::error::{ApiError, HubError};
use crate::governed::{self, Delivery, Governed, StreamItem};
use crate::invoke::StopReason;
use crate::state::AppState;

/// One content part of a user, system or tool message.
fn part_block(part: ChatContentPart, at: &str) -> Result<ContentBlock, HubError> {
    let invalid = |message: String| Err(HubError::InvalidRequest(message));
    match part.kind.as_str() {
        "text" => match part.text {
            Some(text) => Ok(ContentBlock::text(text)),
            None => invalid(format!("`{at}.text` is required")),
        },
        "image_url" => {
            let Some(image) = part.image_url else {
                return invalid(format!("`{at}.image_url` is required"));
            };
            parts::image(&image.url, &format!("{at}.image_url.url"))
        }
        "file" => {
            let Some(file) = part.file else {
                return invalid(format!("`{at}.file` is required"));
            };
            if file.file_id.is_some() && file.file_data.is_none() {
                return invalid(format!(
                    "`{at}.file.file_id` is not supported (the hub keeps no files); send the bytes in `file_data`"
                ));
            }
            let Some(uri) = file.file_data else {
                return invalid(format!("`{at}.file.file_data` is required"));
            };
            parts::document(
                &uri,
                file.filename.as_deref(),
                &format!("{at}.file.file_data"),
            )
        }
        other => invalid(format!(
            "`{at}.type` `{}` is not supported; use `text`, `image_url` or `file`",
            super::extract::shown(other)
        )),
    }
}

fn content_blocks(content: Option<ChatContent>, at: &str) -> Result<Vec<ContentBlock>, HubError> {
    match content {
        Some(ChatContent::Text(text)) => Ok(vec![ContentBlock::text(text)]),
        Some(ChatContent::Parts(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| part_block(part, &format!("{at}[{j}]")))
            .collect(),
        None => Ok(Vec::new()),
    }
}

fn to_tools(tools: Option<Vec<ChatTool>>) -> Result<Vec<ToolDefinition>, HubError> {
    tools
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            if tool.kind != "function" {
                return Err(HubError::InvalidRequest(format!(
                    "`tools[{i}].type` `{}` is not supported; use `function`",
                    super::extract::shown(&tool.kind)
                )));
            }
            let Some(function) = tool.function else {
                return Err(HubError::InvalidRequest(format!(
                    "`tools[{i}].function` is required"
                )));
            };
            Ok(ToolDefinition {
                name: function.name,
                description: function.description,
                input_schema: function
                    .parameters
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

fn to_tool_choice(choice: Option<serde_json::Value>) -> Result<Option<ToolChoice>, HubError> {
    let Some(choice) = choice.filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    match &choice {
        serde_json::Value::String(mode) => match mode.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "required" => Ok(Some(ToolChoice::Any)),
            "none" => Ok(Some(ToolChoice::None)),
            other => Err(HubError::InvalidRequest(format!(
                "`tool_choice` `{}` is not supported; use `auto`, `required`, `none` or a named function",
                super::extract::shown(other)
            ))),
        },
        _ => match choice
            .pointer("/function/name")
            .and_then(serde_json::Value::as_str)
        {
            Some(name) if choice.get("type").and_then(serde_json::Value::as_str) == Some("function") => {
                Ok(Some(ToolChoice::Tool {
                    name: name.to_owned(),
                }))
            }
            _ => Err(HubError::InvalidRequest(
                "`tool_choice` must be `auto`, `required`, `none` or `{\"type\":\"function\",\"function\":{\"name\":…}}`".to_owned(),
            )),
        },
    }
}

/// `stop`: a string or a list of strings (`null` for none).
fn to_stop_sequences(stop: Option<serde_json::Value>) -> Result<Vec<String>, HubError> {
    let invalid =
        || HubError::InvalidRequest("`stop` must be a string or a list of strings".to_owned());
    match stop {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(stop)) => Ok(vec![stop]),
        Some(serde_json::Value::Array(stops)) => stops
            .into_iter()
            .map(|s| match s {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(invalid()),
            })
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn to_native(
    req: ChatCompletionRequest,
    purpose: String,
) -> Result<(InvokeRequest, bool, bool), HubError> {
    if req.functions.as_ref().is_some_and(|f| !f.is_null()) {
        return Err(HubError::InvalidRequest(
            "`functions` is not supported; offer the functions as `tools`".to_owned(),
        ));
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(HubError::InvalidRequest("`n` must be 1".to_owned()));
    }
    let mut messages: Vec<Message> = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.into_iter().enumerate() {
        let at = format!("messages[{i}].content");
        let message = match m.role.as_str() {
            "system" | "developer" => {
                let content = content_blocks(m.content, &at)?;
                if content.iter().any(|b| b.as_text().is_none()) {
                    return Err(HubError::InvalidRequest(format!(
                        "`{at}`: `{}` messages take text parts only",
                        m.role
                    )));
                }
                Message {
                    role: Role::System,
                    content,
                }
            }
            "user" => Message {
                role: Role::User,
                content: content_blocks(m.content, &at)?,
            },
            "assistant" => {
                let mut content = content_blocks(m.content, &at)?;
                content.retain(|b| b.as_text().is_none_or(|t| !t.is_empty()));
                for (j, call) in m.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    let input = serde_json::from_str::<serde_json::Value>(&call.function.arguments)
                        .ok()
                        .filter(serde_json::Value::is_object)
                        .ok_or_else(|| {
                            HubError::InvalidRequest(format!(
                                "`messages[{i}].tool_calls[{j}].function.arguments` must be a JSON object"
                            ))
                        })?;
                    content.push(ContentBlock::ToolUse {
                        id: call.id,
                        name: call.function.name,
                        input,
                    });
                }
                Message {
                    role: Role::Assistant,
                    content,
                }
            }
            "tool" => {
                let Some(tool_use_id) = m.tool_call_id else {
                    return Err(HubError::InvalidRequest(format!(
                        "`messages[{i}].tool_call_id` is required for `tool` messages"
                    )));
                };
                let result = ContentBlock::ToolResult {
                    tool_use_id,
                    content: content_blocks(m.content, &at)?,
                    is_error: false,
                };
                // Consecutive tool messages answer one assistant turn: one user turn of results.
                match messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last
                                .content
                                .iter()
                                .all(|b| matches!(b, ContentBlock::ToolResult { .. })) =>
                    {
                        last.content.push(result);
                        continue;
                    }
                    _ => Message {
                        role: Role::User,
                        content: vec![result],
                    },
                }
            }
            other => {
                return Err(HubError::InvalidRequest(format!(
                    "`messages[{i}].role` `{}` is not supported; use `system`, `developer`, `user`, `assistant` or `tool`",
                    super::extract::shown(other)
                )));
            }
        };
        if message.content.is_empty() {
            return Err(HubError::InvalidRequest(format!("`{at}` is required")));
        }
        messages.push(message);
    }
    let response_schema = match req.response_format {
        None => None,
        Some(format) => match format.kind.as_str() {
            "text" => None,
            "json_object" => Some(serde_json::json!({"type": "object"})),
            "json_schema" => Some(format.json_schema.and_then(|s| s.schema).ok_or_else(|| {
                HubError::InvalidRequest(
                    "`response_format.json_schema.schema` is required".to_owned(),
                )
            })?),
            other => {
                return Err(HubError::InvalidRequest(format!(
                    "`response_format.type` `{}` is not supported; use `text`, `json_object` or `json_schema`",
                    super::extract::shown(other)
                )));
            }
        },
    };
    let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
    Ok((
        InvokeRequest {
            model: req.model,
            purpose,
            messages,
            tools: to_tools(req.tools)?,
            tool_choice: to_tool_choice(req.tool_choice)?,
            max_tokens: req.max_completion_tokens.or(req.max_tokens),
            stop_sequences: to_stop_sequences(req.stop)?,
            response_schema,
            context: None,
        },
        req.stream.unwrap_or(false),
        include_usage,
    ))
}

/// The answer's blocks as an OpenAI message: text joined (`null` when there is none) and tool calls.
fn answer_message(content: Vec<ContentBlock>) -> ChatAnswerMessage {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in content {
        match block {
            ContentBlock::Text { text: t } => text.push_str(&t),
            ContentBlock::ToolUse { id, name, input } => calls.push(ChatToolCall {
                id,
                kind: "function".to_owned(),
                function: ChatFunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            _ => {}
        }
    }
    ChatAnswerMessage {
        role: "assistant".to_owned(),
        content: (!text.is_empty() || calls.is_empty()).then_some(text),
        tool_calls: (!calls.is_empty()).then_some(calls),
    }
}

fn usage(u: TokenUsage) -> ChatUsage {
    ChatUsage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        total_tokens: u.total(),
    }
}

fn created() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// OpenAI-compatible chat completion through the governed path.
pub async fn chat_completions_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let purpose = declared_purpose(&state, &headers)?;
    let (native, stream, include_usage) = to_native(request, purpose)?;
    let meta = call_meta(&headers, &state, caller, "chat_completions")?;

    let delivery = if stream {
        Delivery::Stream
    } else {
        Delivery::Complete
    };
    let governed = match governed::call(&state, meta, native, delivery).await? {
        Governed::Complete(answer) => {
            let audit_id = answer.audit_id;
            let stop = StopReason::from_name(&answer.stop_reason).unwrap_or(StopReason::EndTurn);
            let body = ChatCompletionResponse {
                id: format!("chatcmpl-{audit_id}"),
                object: "chat.completion".to_owned(),
                created: created(),
                model: answer.model.clone(),
                choices: vec![ChatChoice {
                    index: 0,
                    message: answer_message(answer.content),
                    finish_reason: stop.openai_finish_reason().to_owned(),
                }],
                usage: usage(answer.usage),
                causeway: CausewayExtension {
                    audit_id: audit_id.to_string(),
                    development_model: answer.development_model,
                    guards: answer.guards,
                },
            };
            let mut response = Json(body).into_response();
            if let Ok(id) = HeaderValue::from_str(&audit_id.to_string()) {
                response.headers_mut().insert(AUDIT_ID_HEADER, id);
            }
            return Ok(response);
        }
        Governed::Stream(governed) => governed,
    };

    let id = format!("chatcmpl-{}", governed.audit_id);
    let model = governed.model.clone();
    let chunk = {
        let id = id.clone();
        let model = model.clone();
        move |delta: ChatDelta, finish: Option<StopReason>, usage: Option<ChatUsage>| {
            let choices = if usage.is_some() {
                Vec::new()
            } else {
                vec![ChatChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: finish.map(|f| f.openai_finish_reason().to_owned()),
                }]
            };
            let chunk = ChatCompletionChunk {
                id: id.clone(),
                object: "chat.completion.chunk".to_owned(),
                created: created(),
                model: model.clone(),
                choices,
                usage,
            };
            Event::default().data(serde_json::to_string(&chunk).unwrap_or_default())
        }
    };
    let first = chunk(
        ChatDelta {
            role: Some("assistant".to_owned()),
            content: Some(String::new()),
            tool_calls: None,
        },
        None,
        None,
    );
    let tool_delta =
        |index: u32, id: Option<String>, name: Option<String>, arguments: String| ChatDelta {
            role: None,
            content: None,
            tool_calls: Some(vec![ChatToolCallDelta {
                index,
                kind: id.as_ref().map(|_| "function".to_owned()),
                id,
                function: ChatFunctionDelta {
                    name,
                    arguments: Some(arguments),
                },
            }]),
        };
    let body = ReceiverStream::new(governed.items).flat_map(move |item| {
        let events = match item {
            StreamItem::Text(text) => vec![chunk(
                ChatDelta {
                    role: None,
                    content: Some(text),
                    tool_calls: None,
                },
                None,
                None,
            )],
            // As OpenAI streams tool calls: index, id and name first, then the argument text.
            StreamItem::ToolUseStart { index, id, name } => vec![chunk(
                tool_delta(index, Some(id), Some(name), String::new()),
                None,
                None,
            )],
            StreamItem::ToolInput { index, json } => {
                vec![chunk(tool_delta(index, None, None, json), None, None)]
            }
            StreamItem::Done {
                stop_reason,
                usage: u,
                ..
            } => {
                let mut events = vec![chunk(ChatDelta::default(), Some(stop_reason), None)];
                if include_usage {
                    events.push(chunk(ChatDelta::default(), None, Some(usage(u))));
                }
                events.push(Event::default().data("[DONE]"));
                events
            }
            StreamItem::Failed(err) => {
                let body = ErrorBody {
                    error: ErrorDetail {
                        code: err.error.code(),
                        message: err.error.public_message(),
                        audit_id: err.audit_id.map(|a| a.to_string()),
                    },
                };
                vec![Event::default().data(serde_json::to_string(&body).unwrap_or_default())]
            }
        };
        futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    let events = futures::stream::once(async move { Ok::<_, Infallible>(first) }).chain(body);
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    if let Ok(id) = HeaderValue::from_str(&governed.audit_id.to_string()) {
        response.headers_mut().insert(AUDIT_ID_HEADER, id);
    }
    Ok(response)
}
