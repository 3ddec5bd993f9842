//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: the Anthropic Messages door, so the official
//! Anthropic SDKs and Claude Code work unchanged with their base URL pointed at the hub. With `stream: true`
//! the answer is Anthropic's server-sent event sequence.
//!
//! The user's token comes as `authorization: Bearer …` (Claude Code with `ANTHROPIC_AUTH_TOKEN`) or as
//! `x-api-key` (the SDKs' `api_key`): [`anthropic_door`] takes `x-api-key` as the bearer token when
//! `authorization` is absent. `anthropic-version` and `anthropic-beta` are accepted and not used. The declared
//! purpose comes from the `x-causeway-purpose` header or `defaults.purpose`. The body is mapped to the native
//! content model (what is honoured, accepted without effect and refused is listed in
//! [`causeway_contract::anthropic`]) and goes through exactly the same governed path as every other door.
//! `system` is the caller's instructions, placed after the hub's guardrail instructions.
//!
//! Every error on these routes, extractor rejections and timeouts included, leaves in Anthropic's error body
//! with the error type the SDKs map to their exception classes; the hub's code and the audit id stay on the
//! body, and the audit id in `x-causeway-audit-id`.
//!
//! `stop_sequence` in an answer names the sequence that ended it when the call carried exactly one; with
//! several, providers do not report which matched and it is `null` (the stop reason is still
//! `stop_sequence`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use causeway_contract::anthropic::{
    self, BlockDelta, CausewayExtension, ContentBlockParam, CountTokensRequest,
    CountTokensResponse, DeltaUsage, DocumentSource, ErrorObject, ErrorResponse, ImageSource,
    InputRole, MessageDelta, MessagesRequest, MessagesResponse, ResponseBlock, StreamEvent,
    SystemBlock, TextOr, Tool, ToolChoiceParam, Usage,
};
use causeway_contract::content::{
    Bytes, ContentBlock, DocumentFormat, ImageFormat, StopReason, ToolChoice, ToolDefinition,
};
use causeway_contract::{ErrorBody, ErrorDetail, InvokeRequest, Message, Role, TokenUsage};
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::AUDIT_ID_HEADER;
use super::extract::{Authenticated, JsonBody, call_meta, declared_purpose, request_id};
use crate::error::{ApiError, HubError};
use crate::governed::{self, Delivery, Governed, StreamItem};
use crate::invoke::ModelCall;
use crate::state::AppState;

/// The header the Anthropic SDKs send the API key in.
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Largest error body the door rewrites; the hub's error bodies are one short line.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

// === request ===

fn invalid<T>(message: String) -> Result<T, HubError> {
    Err(HubError::InvalidRequest(message))
}

fn base64_bytes(data: &str, at: &str) -> Result<Vec<u8>, HubError> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim().as_bytes())
        .map_err(|e| HubError::InvalidRequest(format!("`{at}` is not valid base64: {e}")))
}

fn image_block(source: ImageSource, at: &str) -> Result<ContentBlock, HubError> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            let Some(format) = ImageFormat::from_media_type(&media_type) else {
                return invalid(format!(
                    "`{at}.source.media_type` `{}` is not supported; use `image/png`, `image/jpeg`, `image/gif` or `image/webp`",
                    super::extract::shown(&media_type)
                ));
            };
            Ok(ContentBlock::Image {
                media_type: format,
                data: Bytes(base64_bytes(&data, &format!("{at}.source.data"))?),
            })
        }
        ImageSource::Url { .. } => invalid(format!(
            "`{at}.source.type` `url` is not supported: send the image bytes as a `base64` source; the hub fetches nothing on a caller's behalf"
        )),
        ImageSource::File { .. } => invalid(format!(
            "`{at}.source.type` `file` is not supported (the hub keeps no files): send the image bytes as a `base64` source"
        )),
    }
}

fn document_block(
    source: DocumentSource,
    title: Option<String>,
    context: Option<String>,
    citations_enabled: bool,
    at: &str,
) -> Result<ContentBlock, HubError> {
    if context.is_some_and(|c| !c.trim().is_empty()) {
        return invalid(format!(
            "`{at}.context` is not supported; send it as a `text` block beside the document"
        ));
    }
    if citations_enabled {
        return invalid(format!(
            "`{at}.citations` is not supported: the hub's answers carry no citations"
        ));
    }
    // The model sees the name; keep it to a plain file name.
    let name = title
        .as_deref()
        .and_then(|t| t.rsplit(['/', '\\']).next())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("document")
        .to_owned();
    match source {
        DocumentSource::Base64 { media_type, data } => {
            let Some(format) = DocumentFormat::from_media_type(&media_type) else {
                return invalid(format!(
                    "`{at}.source.media_type` `{}` is not a supported document format (application/pdf, or docx, txt, md, csv, html, json, doc, xls, xlsx by media type)",
                    super::extract::shown(&media_type)
                ));
            };
            Ok(ContentBlock::Document {
                format,
                name,
                data: Bytes(base64_bytes(&data, &format!("{at}.source.data"))?),
            })
        }
        DocumentSource::Text { media_type, data } => {
            if let Some(media_type) = media_type
                && DocumentFormat::from_media_type(&media_type) != Some(DocumentFormat::Txt)
            {
                return invalid(format!(
                    "`{at}.source.media_type` must be `text/plain` for a `text` source, not `{}`",
                    super::extract::shown(&media_type)
                ));
            }
            Ok(ContentBlock::Document {
                format: DocumentFormat::Txt,
                name,
                data: Bytes(data.into_bytes()),
            })
        }
        DocumentSource::Content { .. } => invalid(format!(
            "`{at}.source.type` `content` is not supported: send the text as a `text` source, images as `image` blocks"
        )),
        DocumentSource::Url { .. } => invalid(format!(
            "`{at}.source.type` `url` is not supported: send the document as a `base64` or `text` source; the hub fetches nothing on a caller's behalf"
        )),
        DocumentSource::File { .. } => invalid(format!(
            "`{at}.source.type` `file` is not supported (the hub keeps no files): send the document as a `base64` or `text` source"
        )),
    }
}

/// The content of a tool result: a string (empty for none), or text, image and document blocks.
fn tool_result_content(
    content: Option<TextOr<ContentBlockParam>>,
    at: &str,
) -> Result<Vec<ContentBlock>, HubError> {
    match content {
        None => Ok(Vec::new()),
        Some(TextOr::Text(text)) if text.is_empty() => Ok(Vec::new()),
        Some(TextOr::Text(text)) => Ok(vec![ContentBlock::text(text)]),
        Some(TextOr::Blocks(blocks)) => blocks
            .into_iter()
            .enumerate()
            .map(|(k, inner)| {
                let at = format!("{at}.content[{k}]");
                match inner {
                    ContentBlockParam::Text { text } => Ok(ContentBlock::text(text)),
                    ContentBlockParam::Image { source } => image_block(source, &at),
                    ContentBlockParam::Document {
                        source,
                        title,
                        context,
                        citations,
                    } => document_block(
                        source,
                        title,
                        context,
                        citations.is_some_and(|c| c.enabled),
                        &at,
                    ),
                    _ => invalid(format!(
                        "`{at}`: a tool result holds `text`, `image` and `document` blocks"
                    )),
                }
            })
            .collect(),
    }
}

/// One block of a message; `None` for earlier thinking, which is left out of the conversation.
fn message_block(
    block: ContentBlockParam,
    role: InputRole,
    at: &str,
) -> Result<Option<ContentBlock>, HubError> {
    let block = match block {
        ContentBlockParam::Text { text } => ContentBlock::text(text),
        ContentBlockParam::Image { source } => image_block(source, at)?,
        ContentBlockParam::Document {
            source,
            title,
            context,
            citations,
        } => document_block(
            source,
            title,
            context,
            citations.is_some_and(|c| c.enabled),
            at,
        )?,
        ContentBlockParam::ToolUse { id, name, input } => ContentBlock::ToolUse { id, name, input },
        ContentBlockParam::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => ContentBlock::ToolResult {
            tool_use_id,
            content: tool_result_content(content, at)?,
            is_error: is_error.unwrap_or(false),
        },
        ContentBlockParam::Thinking { .. } | ContentBlockParam::RedactedThinking { .. } => {
            if role == InputRole::Assistant {
                return Ok(None);
            }
            return invalid(format!(
                "`{at}`: thinking blocks belong in `assistant` messages"
            ));
        }
    };
    Ok(Some(block))
}

/// `system` as a system message; `None` when it holds no text.
fn system_message(system: Option<TextOr<SystemBlock>>) -> Option<Message> {
    let content: Vec<ContentBlock> = match system? {
        TextOr::Text(text) => vec![ContentBlock::text(text)],
        TextOr::Blocks(blocks) => blocks
            .into_iter()
            .map(|SystemBlock::Text { text }| ContentBlock::text(text))
            .collect(),
    };
    let content: Vec<ContentBlock> = content
        .into_iter()
        .filter(|b| b.as_text().is_some_and(|t| !t.trim().is_empty()))
        .collect();
    (!content.is_empty()).then_some(Message {
        role: Role::System,
        content,
    })
}

fn to_tools(tools: Option<Vec<Tool>>) -> Result<Vec<ToolDefinition>, HubError> {
    tools
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            if let Some(kind) = tool.kind.as_deref().filter(|k| *k != "custom") {
                return invalid(format!(
                    "`tools[{i}].type` `{}` names a server tool, which the hub does not run; offer tools your application runs (no `type`, or `custom`)",
                    super::extract::shown(kind)
                ));
            }
            let Some(input_schema) = tool.input_schema else {
                return invalid(format!("`tools[{i}].input_schema` is required"));
            };
            Ok(ToolDefinition {
                name: tool.name,
                description: tool.description,
                input_schema,
            })
        })
        .collect()
}

fn to_tool_choice(choice: Option<ToolChoiceParam>) -> Result<Option<ToolChoice>, HubError> {
    let (choice, single) = match choice {
        None => return Ok(None),
        Some(ToolChoiceParam::Auto {
            disable_parallel_tool_use,
        }) => (ToolChoice::Auto, disable_parallel_tool_use),
        Some(ToolChoiceParam::Any {
            disable_parallel_tool_use,
        }) => (ToolChoice::Any, disable_parallel_tool_use),
        Some(ToolChoiceParam::Tool {
            name,
            disable_parallel_tool_use,
        }) => (ToolChoice::Tool { name }, disable_parallel_tool_use),
        Some(ToolChoiceParam::None) => (ToolChoice::None, None),
    };
    if single == Some(true) {
        return invalid(
            "`tool_choice.disable_parallel_tool_use` is not supported: the model decides how many tools it calls"
                .to_owned(),
        );
    }
    Ok(Some(choice))
}

/// The message request as a native call, and whether it is to be streamed.
pub(crate) fn to_native(
    req: MessagesRequest,
    purpose: String,
) -> Result<(InvokeRequest, bool), HubError> {
    let refused = [
        (
            "mcp_servers",
            req.mcp_servers.is_some(),
            "the hub connects to no MCP servers on a caller's behalf",
        ),
        (
            "container",
            req.container.is_some(),
            "the hub runs no code-execution containers",
        ),
        (
            "context_management",
            req.context_management.is_some(),
            "send the conversation as the model should see it",
        ),
        (
            "inference_geo",
            req.inference_geo.is_some(),
            "the hub's model catalog decides where each model runs",
        ),
    ];
    if let Some((field, _, why)) = refused.iter().find(|(_, present, _)| *present) {
        return invalid(format!("`{field}` is not supported: {why}"));
    }
    let response_schema = match req.output_config.and_then(|c| c.format) {
        None => None,
        Some(format) if format.kind == "json_schema" => Some(format.schema.ok_or_else(|| {
            HubError::InvalidRequest("`output_config.format.schema` is required".to_owned())
        })?),
        Some(format) => {
            return invalid(format!(
                "`output_config.format.type` `{}` is not supported; use `json_schema`",
                super::extract::shown(&format.kind)
            ));
        }
    };

    let mut messages: Vec<Message> = Vec::with_capacity(req.messages.len() + 1);
    for (i, m) in req.messages.into_iter().enumerate() {
        let at = format!("messages[{i}].content");
        let content = match m.content {
            TextOr::Text(text) => vec![ContentBlock::text(text)],
            TextOr::Blocks(blocks) => blocks
                .into_iter()
                .enumerate()
                .filter_map(|(j, b)| message_block(b, m.role, &format!("{at}[{j}]")).transpose())
                .collect::<Result<_, _>>()?,
        };
        let role = match m.role {
            InputRole::User => Role::User,
            InputRole::Assistant => Role::Assistant,
        };
        messages.push(Message { role, content });
    }
    // The system message goes after the conversation, so `messages[i]` in any error the governed path names
    // is the caller's `messages[i]`; the prompt places system instructions apart from the conversation
    // wherever they are.
    if let Some(system) = system_message(req.system) {
        messages.push(system);
    }
    Ok((
        InvokeRequest {
            model: req.model,
            purpose,
            messages,
            tools: to_tools(req.tools)?,
            tool_choice: to_tool_choice(req.tool_choice)?,
            max_tokens: Some(req.max_tokens),
            stop_sequences: req.stop_sequences.unwrap_or_default(),
            response_schema,
            context: None,
        },
        req.stream.unwrap_or(false),
    ))
}

/// The hub's estimate of a call's input tokens: the one budgets are reserved with, over the caller's
/// messages, system instructions and tools.
fn input_estimate(native: &mut InvokeRequest) -> u32 {
    let call = ModelCall {
        model_id: String::new(),
        system: Vec::new(),
        messages: std::mem::take(&mut native.messages),
        tools: std::mem::take(&mut native.tools),
        tool_choice: None,
        max_tokens: 0,
        stop_sequences: Vec::new(),
        response_schema: None,
    };
    let estimate = governed::prompt_tokens(&call);
    native.messages = call.messages;
    native.tools = call.tools;
    u32::try_from(estimate).unwrap_or(u32::MAX)
}

// === answer ===

pub(crate) fn message_id(audit_id: Uuid) -> String {
    format!("msg_{}", audit_id.simple())
}

pub(crate) fn usage(u: TokenUsage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_creation_input_tokens: Some(0),
        cache_read_input_tokens: Some(0),
    }
}

/// The sequence that ended the answer, when the call carried exactly one.
pub(crate) fn stop_sequence(stop: StopReason, sequences: &[String]) -> Option<String> {
    match sequences {
        [only] if stop == StopReason::StopSequence => Some(only.clone()),
        _ => None,
    }
}

pub(crate) fn response_blocks(content: Vec<ContentBlock>) -> Vec<ResponseBlock> {
    content
        .into_iter()
        .filter_map(|block| match block {
            ContentBlock::Text { text } => Some(ResponseBlock::Text { text }),
            ContentBlock::ToolUse { id, name, input } => {
                Some(ResponseBlock::ToolUse { id, name, input })
            }
            _ => None,
        })
        .collect()
}

fn with_audit_id(mut response: Response, audit_id: Uuid) -> Response {
    if let Ok(id) = HeaderValue::from_str(&audit_id.to_string()) {
        response.headers_mut().insert(AUDIT_ID_HEADER, id);
    }
    response
}

fn error_object(err: &ApiError) -> ErrorObject {
    ErrorObject::from_body(ErrorBody {
        error: ErrorDetail {
            code: err.error.code(),
            message: err.error.public_message(),
            audit_id: err.audit_id.map(|a| a.to_string()),
        },
    })
}

// === streams ===

/// Turns governed stream items into Anthropic's block events. Text has no block boundaries in the governed
/// stream: a text block opens at the first text and closes when a tool block opens or the answer ends. A
/// tool block opens when the tool's input is complete (the governed stream sends it whole, after guarding),
/// so blocks never interleave. Block indexes count from 0 across text and tool blocks.
#[derive(Debug, Default)]
pub(crate) struct BlockEvents {
    next: u32,
    text: Option<u32>,
    /// Tools started and awaiting their input: (the governed stream's tool index, id, name).
    started: Vec<(u32, String, String)>,
}

impl BlockEvents {
    fn close_text(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(index) = self.text.take() {
            out.push(StreamEvent::ContentBlockStop { index });
        }
    }

    pub(crate) fn translate(
        &mut self,
        item: StreamItem,
        stop_sequences: &[String],
    ) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        match item {
            StreamItem::Text(text) if text.is_empty() => {}
            StreamItem::Text(text) => {
                let index = match self.text {
                    Some(index) => index,
                    None => {
                        let index = self.next;
                        self.next += 1;
                        self.text = Some(index);
                        out.push(StreamEvent::ContentBlockStart {
                            index,
                            content_block: ResponseBlock::Text {
                                text: String::new(),
                            },
                        });
                        index
                    }
                };
                out.push(StreamEvent::ContentBlockDelta {
                    index,
                    delta: BlockDelta::TextDelta { text },
                });
            }
            StreamItem::ToolUseStart { index, id, name } => self.started.push((index, id, name)),
            StreamItem::ToolInput { index, json } => {
                let Some(at) = self.started.iter().position(|(i, _, _)| *i == index) else {
                    return out;
                };
                let (_, id, name) = self.started.remove(at);
                self.close_text(&mut out);
                let block = self.next;
                self.next += 1;
                out.push(StreamEvent::ContentBlockStart {
                    index: block,
                    content_block: ResponseBlock::ToolUse {
                        id,
                        name,
                        input: serde_json::json!({}),
                    },
                });
                out.push(StreamEvent::ContentBlockDelta {
                    index: block,
                    delta: BlockDelta::InputJsonDelta { partial_json: json },
                });
                out.push(StreamEvent::ContentBlockStop { index: block });
            }
            StreamItem::Done {
                stop_reason, usage, ..
            } => {
                self.close_text(&mut out);
                out.push(StreamEvent::MessageDelta {
                    delta: MessageDelta {
                        stop_reason: Some(anthropic::stop_reason(stop_reason).to_owned()),
                        stop_sequence: stop_sequence(stop_reason, stop_sequences),
                    },
                    usage: DeltaUsage {
                        output_tokens: usage.output_tokens,
                        input_tokens: Some(usage.input_tokens),
                    },
                });
                out.push(StreamEvent::MessageStop);
            }
            StreamItem::Failed(err) => out.push(StreamEvent::Error {
                error: error_object(&err),
            }),
        }
        out
    }
}

fn sse(event: &StreamEvent) -> Event {
    Event::default()
        .event(event.name())
        .data(serde_json::to_string(event).unwrap_or_default())
}

// === handlers ===

/// Anthropic Messages call through the governed path.
pub async fn messages_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<MessagesRequest>,
) -> Result<Response, ApiError> {
    let purpose = declared_purpose(&state, &headers)?;
    let (mut native, stream) = to_native(request, purpose)?;
    let stop_sequences = native.stop_sequences.clone();
    let meta = call_meta(&headers, &state, caller, "messages")?;

    let (delivery, estimate) = if stream {
        (Delivery::Stream, input_estimate(&mut native))
    } else {
        (Delivery::Complete, 0)
    };
    let governed = match governed::call(&state, meta, native, delivery).await? {
        Governed::Complete(answer) => {
            let audit_id = answer.audit_id;
            let stop = StopReason::from_name(&answer.stop_reason).unwrap_or(StopReason::EndTurn);
            let body = MessagesResponse {
                id: message_id(audit_id),
                kind: "message".to_owned(),
                role: "assistant".to_owned(),
                content: response_blocks(answer.content),
                model: answer.model,
                stop_reason: Some(anthropic::stop_reason(stop).to_owned()),
                stop_sequence: stop_sequence(stop, &stop_sequences),
                usage: usage(answer.usage),
                causeway: Some(CausewayExtension {
                    audit_id: audit_id.to_string(),
                    development_model: answer.development_model,
                    guards: Some(answer.guards),
                }),
            };
            return Ok(with_audit_id(Json(body).into_response(), audit_id));
        }
        Governed::Stream(governed) => governed,
    };

    let start = StreamEvent::MessageStart {
        message: Box::new(MessagesResponse {
            id: message_id(governed.audit_id),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            content: Vec::new(),
            model: governed.model.clone(),
            stop_reason: None,
            stop_sequence: None,
            usage: usage(TokenUsage {
                input_tokens: estimate,
                output_tokens: 0,
            }),
            causeway: Some(CausewayExtension {
                audit_id: governed.audit_id.to_string(),
                development_model: governed.development_model,
                guards: None,
            }),
        }),
    };
    let opening = [sse(&start), sse(&StreamEvent::Ping)];
    let mut blocks = BlockEvents::default();
    let body = ReceiverStream::new(governed.items).flat_map(move |item| {
        let events = blocks.translate(item, &stop_sequences);
        futures::stream::iter(events.into_iter().map(|e| Ok::<_, Infallible>(sse(&e))))
    });
    let events = futures::stream::iter(opening.map(Ok::<_, Infallible>)).chain(body);
    let response = Sse::new(events)
        .keep_alive(KeepAlive::new().event(sse(&StreamEvent::Ping)))
        .into_response();
    Ok(with_audit_id(response, governed.audit_id))
}

/// `count_tokens`: about how many input tokens a message request is, by the estimate the hub reserves budgets
/// with (about four characters a token, a fixed figure per image, tools included; the hub's own guardrail
/// instructions are not counted).
///
/// No model is called and the call is not audited: no content leaves the hub and nothing is answered but a
/// number. It still requires a verified user token (and a registered workload where the hub requires one), a
/// body that maps as a message request would, and a model alias from the catalog.
pub async fn message_tokens_count(
    State(state): State<Arc<AppState>>,
    Authenticated(_caller): Authenticated,
    JsonBody(request): JsonBody<CountTokensRequest>,
) -> Result<Response, ApiError> {
    let request = MessagesRequest {
        model: request.model,
        max_tokens: 1,
        messages: request.messages,
        system: request.system,
        tools: request.tools,
        tool_choice: request.tool_choice,
        stop_sequences: None,
        stream: None,
        metadata: None,
        temperature: None,
        top_p: None,
        top_k: None,
        thinking: request.thinking,
        output_config: request.output_config,
        mcp_servers: request.mcp_servers,
        container: None,
        context_management: request.context_management,
        inference_geo: None,
    };
    let (mut native, _) = to_native(request, String::new())?;
    if state
        .policy
        .current()
        .catalog()
        .get(&native.model)
        .is_none()
    {
        return Err(HubError::ModelNotFound(format!(
            "unknown model `{}`",
            super::extract::shown(&native.model)
        ))
        .into());
    }
    let body = CountTokensResponse {
        input_tokens: input_estimate(&mut native),
    };
    Ok(Json(body).into_response())
}

// === edge ===

/// The edge of the Anthropic door: `x-api-key` is taken as the bearer token when `authorization` is absent
/// (marked sensitive, so it is never logged), and every error response leaves in Anthropic's error body.
pub async fn anthropic_door(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    if !headers.contains_key(header::AUTHORIZATION)
        && let Some(key) = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok())
        && let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {}", key.trim()))
    {
        bearer.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, bearer);
    }
    let request_id = Some(request_id(request.headers())).filter(|id| !id.is_empty());
    let response = next.run(request).await;
    if response.status().is_client_error() || response.status().is_server_error() {
        anthropic_error(response, request_id).await
    } else {
        response
    }
}

/// Anthropic's error type for a status, for an error body that is not the hub's.
fn status_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Rewrites the hub's `{"error":{"code","message"}}` into Anthropic's error body, keeping the status and the
/// headers, and puts the audit id in `x-causeway-audit-id`.
async fn anthropic_error(response: Response, request_id: Option<String>) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    let anthropic = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(hub) => ErrorResponse::from_body(hub, request_id),
        Err(_) => ErrorResponse {
            kind: "error".to_owned(),
            error: ErrorObject {
                kind: status_error_type(parts.status).to_owned(),
                message: parts
                    .status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase(),
                code: None,
                audit_id: None,
            },
            request_id,
        },
    };
    if let Some(id) = anthropic
        .error
        .audit_id
        .as_deref()
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        parts.headers.insert(AUDIT_ID_HEADER, id);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&anthropic).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}
