//! `POST /v1/chat/completions`: the OpenAI-compatible door, streamed as server-sent events with `stream: true`.
//!
//! The declared purpose comes from the `x-causeway-purpose` header or `defaults.purpose`. The body is mapped to
//! the native request and goes through exactly the same governed path.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use causeway_contract::openai::{
    CausewayExtension, ChatAnswerMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk,
    ChatCompletionRequest, ChatCompletionResponse, ChatContent, ChatDelta, ChatUsage,
};
use causeway_contract::{ErrorBody, ErrorDetail, InvokeRequest, Message, Role, TokenUsage};
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::AUDIT_ID_HEADER;
use super::extract::{Authenticated, JsonBody, call_meta, purpose_header};
use crate::app::AppState;
use crate::error::{ApiError, HubError};
use crate::governed::{self, StreamItem};
use crate::invoke::StopReason;

fn to_native(
    req: ChatCompletionRequest,
    purpose: String,
) -> Result<(InvokeRequest, bool, bool), HubError> {
    if req.tools.as_ref().is_some_and(|t| !t.is_null())
        || req.functions.as_ref().is_some_and(|f| !f.is_null())
    {
        return Err(HubError::InvalidRequest(
            "`tools` and `functions` are not supported by this hub".to_owned(),
        ));
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(HubError::InvalidRequest("`n` must be 1".to_owned()));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(HubError::InvalidRequest(format!(
                    "`messages[{i}].role` `{other}` is not supported; use `system`, `developer`, `user` or `assistant`"
                )));
            }
        };
        let content = match m.content {
            Some(ChatContent::Text(text)) => text,
            Some(ChatContent::Parts(parts)) => {
                let mut text = String::new();
                for (j, part) in parts.into_iter().enumerate() {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) => {
                            return Err(HubError::InvalidRequest(format!(
                                "`messages[{i}].content[{j}].type` `{kind}` is not supported; only `text` parts are"
                            )));
                        }
                    }
                }
                text
            }
            None => {
                return Err(HubError::InvalidRequest(format!(
                    "`messages[{i}].content` is required"
                )));
            }
        };
        messages.push(Message { role, content });
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
                    "`response_format.type` `{other}` is not supported; use `text`, `json_object` or `json_schema`"
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
            max_tokens: req.max_completion_tokens.or(req.max_tokens),
            response_schema,
            context: None,
        },
        req.stream.unwrap_or(false),
        include_usage,
    ))
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
    let purpose = purpose_header(&headers)?
        .or_else(|| state.config.defaults.purpose.clone())
        .ok_or_else(|| {
            HubError::InvalidRequest(format!(
                "declare the purpose of this call in header `x-causeway-purpose`; one of {}",
                state.policy.current().purposes().allowed_list()
            ))
        })?;
    let (native, stream, include_usage) = to_native(request, purpose)?;
    let meta = call_meta(&headers, &state, caller, "chat_completions")?;

    if !stream {
        let answer = governed::invoke(&state, &meta, native).await?;
        let finish = match answer.stop_reason.as_str() {
            "max_tokens" => "length",
            "content_filtered" => "content_filter",
            _ => "stop",
        };
        let body = ChatCompletionResponse {
            id: format!("chatcmpl-{}", answer.audit_id),
            object: "chat.completion".to_owned(),
            created: created(),
            model: answer.model.clone(),
            choices: vec![ChatChoice {
                index: 0,
                message: ChatAnswerMessage {
                    role: "assistant".to_owned(),
                    content: answer.answer,
                },
                finish_reason: finish.to_owned(),
            }],
            usage: usage(answer.usage),
            causeway: CausewayExtension {
                audit_id: answer.audit_id.to_string(),
                development_model: answer.development_model,
                guards: answer.guards,
            },
        };
        let mut response = Json(body).into_response();
        if let Ok(id) = HeaderValue::from_str(&answer.audit_id.to_string()) {
            response.headers_mut().insert(AUDIT_ID_HEADER, id);
        }
        return Ok(response);
    }

    let governed = governed::invoke_stream(state.clone(), meta, native).await?;
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
        },
        None,
        None,
    );
    let body = ReceiverStream::new(governed.items).flat_map(move |item| {
        let events = match item {
            StreamItem::Delta(text) => vec![chunk(
                ChatDelta {
                    role: None,
                    content: Some(text),
                },
                None,
                None,
            )],
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
