//! The Bedrock Runtime door: `POST /model/{modelId}/converse` and `/converse-stream`, and `/invoke` and
//! `/invoke-with-response-stream` with the bodies of the catalog's models (the Anthropic Messages body of
//! Claude on Bedrock; the Titan Text Embeddings and Cohere Embed bodies of the embedding models), so
//! `boto3.client("bedrock-runtime", endpoint_url=<hub>)` and the other AWS SDKs work with only the endpoint
//! changed.
//!
//! `modelId` is a catalog alias, or a Bedrock model id, inference-profile id or ARN that a catalog entry
//! serves (it is mapped to that alias, so code written against Bedrock keeps its model ids); anything else
//! is refused. The caller authenticates with a bearer token (boto3's `AWS_BEARER_TOKEN_BEDROCK`, sent only
//! over TLS; at the agent, the token a SigV4-signing app puts in `x-causeway-user-token`). The purpose
//! comes from `x-causeway-purpose` or `defaults.purpose`. The body maps to the content model as
//! [`causeway_contract::bedrock`] describes, and the call takes exactly the governed path of every door.
//!
//! Streams are AWS event streams (`application/vnd.amazon.eventstream`, each frame length-prefixed with
//! CRCs), with Bedrock's event sequence: `messageStart`, per block `contentBlockStart` (tool calls only),
//! `contentBlockDelta`, `contentBlockStop`, then `messageStop` and `metadata`. A failure after the stream
//! started is an exception frame, which the SDKs raise as an `EventStreamError`.
//!
//! Every error on these routes, including authentication and body errors, leaves in Bedrock's shape
//! ([`bedrock_door`]).

use std::sync::Arc;
use std::time::Instant;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as FrameHeader, Message as Frame};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use causeway_contract::anthropic::{self, MessagesRequest, MessagesResponse};
use causeway_contract::bedrock::{
    self, ContentBlock as WireBlock, ConverseMessage, ConverseOutput, ConverseRequest,
    ConverseResponse, DocumentBlock, ErrorResponse, ImageBlock, Metrics, Source, StreamEvent,
    SystemBlock, Tool, ToolChoice as WireToolChoice, ToolResultContent,
};
use causeway_contract::catalog::{Catalog, ModelKind};
use causeway_contract::content::{
    Bytes as BlockBytes, ContentBlock, DocumentFormat, ImageFormat, ToolChoice, ToolDefinition,
};
use causeway_contract::{ErrorBody, ErrorCode, InvokeRequest, Message, Role};
use futures::StreamExt as _;
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use super::AUDIT_ID_HEADER;
use super::extract::{Authenticated, JsonBody, call_meta, declared_purpose, request_id};
use super::messages;
use crate::embed::EmbedRequest;
use crate::error::{ApiError, HubError};
use crate::governed::{self, StreamItem};
use crate::invoke::StopReason;
use crate::state::AppState;

/// The media type of an AWS event stream.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The header the AWS SDKs read an error's exception name from.
const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// The header the AWS SDKs read a request id from.
const AWS_REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// Largest error body the edge rewrites; the hub's own are a few hundred bytes.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Cross-region inference-profile prefixes: `us.anthropic.…` serves `anthropic.…`.
const GEO_PREFIXES: [&str; 5] = ["us.", "eu.", "apac.", "us-gov.", "global."];

fn invalid<T>(message: String) -> Result<T, HubError> {
    Err(HubError::InvalidRequest(message))
}

fn strip_geo(id: &str) -> &str {
    GEO_PREFIXES
        .iter()
        .find_map(|p| id.strip_prefix(p))
        .unwrap_or(id)
}

/// The catalog alias `model_id` names: an alias itself, the provider model id of an entry, an ARN ending in
/// one (`…:foundation-model/<id>`, `…:inference-profile/<id>`), or the same model without its
/// cross-region prefix.
pub fn resolve_model(catalog: &Catalog, model_id: &str) -> Result<String, HubError> {
    if catalog.get(model_id).is_some() {
        return Ok(model_id.to_owned());
    }
    let id = if model_id.starts_with("arn:") {
        model_id.rsplit('/').next().unwrap_or(model_id)
    } else {
        model_id
    };
    let exact = catalog.models.iter().find(|(_, e)| e.model_id == id);
    let loose = || {
        catalog
            .models
            .iter()
            .find(|(_, e)| strip_geo(&e.model_id) == strip_geo(id))
    };
    match exact.or_else(loose) {
        Some((alias, _)) => Ok(alias.clone()),
        None => Err(HubError::ModelNotFound(format!(
            "model `{}` is not served by this hub; use a catalog alias ({}) or the Bedrock model id of one",
            super::extract::shown(model_id),
            catalog
                .models
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn base64_bytes(data: &str, at: &str) -> Result<Vec<u8>, HubError> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim().as_bytes())
        .map_err(|e| HubError::InvalidRequest(format!("`{at}` is not valid base64: {e}")))
}

fn refused_source(source: &Source, at: &str) -> HubError {
    let kind = match source {
        Source::S3Location(_) => "`s3Location`",
        Source::Content(_) => "`content`",
        Source::Bytes(_) | Source::Text(_) => "this",
    };
    HubError::InvalidRequest(format!(
        "`{at}.source`: {kind} sources are not supported; send the bytes inline (`bytes`), the hub fetches nothing on a caller's behalf"
    ))
}

fn image_block(image: ImageBlock, at: &str) -> Result<ContentBlock, HubError> {
    let Some(format) = ImageFormat::from_name(&image.format) else {
        return invalid(format!(
            "`{at}.format` `{}` is not supported; use `png`, `jpeg`, `gif` or `webp`",
            super::extract::shown(&image.format)
        ));
    };
    let Source::Bytes(data) = &image.source else {
        return Err(refused_source(&image.source, at));
    };
    Ok(ContentBlock::Image {
        media_type: format,
        data: BlockBytes(base64_bytes(data, &format!("{at}.source.bytes"))?),
    })
}

fn document_block(document: DocumentBlock, at: &str) -> Result<ContentBlock, HubError> {
    if document.citations.is_some() || document.context.is_some() {
        return invalid(format!(
            "`{at}`: `citations` and `context` are not supported"
        ));
    }
    let (format, data) = match &document.source {
        Source::Bytes(data) => {
            let Some(name) = document.format.as_deref() else {
                return invalid(format!("`{at}.format` is required with `bytes`"));
            };
            let Some(format) = DocumentFormat::from_name(name) else {
                return invalid(format!(
                    "`{at}.format` `{}` is not supported; use pdf, csv, doc, docx, xls, xlsx, html, txt or md",
                    super::extract::shown(name)
                ));
            };
            (format, base64_bytes(data, &format!("{at}.source.bytes"))?)
        }
        Source::Text(text) => (
            document
                .format
                .as_deref()
                .and_then(DocumentFormat::from_name)
                .filter(|f| f.is_text())
                .unwrap_or(DocumentFormat::Txt),
            text.clone().into_bytes(),
        ),
        other => return Err(refused_source(other, at)),
    };
    Ok(ContentBlock::Document {
        format,
        name: document.name,
        data: BlockBytes(data),
    })
}

fn refused_block(kind: &str, at: &str) -> HubError {
    HubError::InvalidRequest(format!("`{at}`: `{kind}` blocks are not supported"))
}

/// One wire block as content; `None` for a block with no effect (`cachePoint`).
fn content_block(block: WireBlock, at: &str) -> Result<Option<ContentBlock>, HubError> {
    Ok(Some(match block {
        WireBlock::Text(text) => ContentBlock::text(text),
        WireBlock::Image(image) => image_block(image, at)?,
        WireBlock::Document(document) => document_block(document, at)?,
        WireBlock::ToolUse(call) => {
            if !call.input.is_object() {
                return invalid(format!("`{at}.toolUse.input` must be a JSON object"));
            }
            ContentBlock::ToolUse {
                id: call.tool_use_id,
                name: call.name,
                input: call.input,
            }
        }
        WireBlock::ToolResult(result) => {
            let mut content = Vec::with_capacity(result.content.len());
            for (k, part) in result.content.into_iter().enumerate() {
                let at = format!("{at}.toolResult.content[{k}]");
                content.push(match part {
                    ToolResultContent::Text(text) => ContentBlock::text(text),
                    // JSON stays JSON: the guard masks it value by value.
                    ToolResultContent::Json(value) => ContentBlock::text(value.to_string()),
                    ToolResultContent::Image(image) => image_block(image, &at)?,
                    ToolResultContent::Document(document) => document_block(document, &at)?,
                    ToolResultContent::Video(_) => return Err(refused_block("video", &at)),
                });
            }
            ContentBlock::ToolResult {
                tool_use_id: result.tool_use_id,
                content,
                is_error: result.status.as_deref() == Some("error"),
            }
        }
        WireBlock::CachePoint(_) => return Ok(None),
        WireBlock::GuardContent(_) => return Err(refused_block("guardContent", at)),
        WireBlock::Video(_) => return Err(refused_block("video", at)),
        WireBlock::ReasoningContent(_) => return Err(refused_block("reasoningContent", at)),
        WireBlock::CitationsContent(_) => return Err(refused_block("citationsContent", at)),
    }))
}

fn to_tools(
    config: Option<bedrock::ToolConfiguration>,
) -> Result<(Vec<ToolDefinition>, Option<ToolChoice>), HubError> {
    let Some(config) = config else {
        return Ok((Vec::new(), None));
    };
    let mut tools = Vec::new();
    for (i, tool) in config.tools.into_iter().enumerate() {
        match tool {
            Tool::ToolSpec(spec) => tools.push(ToolDefinition {
                name: spec.name,
                description: spec.description,
                input_schema: spec.input_schema.json,
            }),
            Tool::CachePoint(_) => {}
            Tool::SystemTool(_) => {
                return invalid(format!(
                    "`toolConfig.tools[{i}].systemTool` is not supported: the hub runs no provider tools"
                ));
            }
        }
    }
    let choice = config.tool_choice.map(|c| match c {
        WireToolChoice::Auto(_) => ToolChoice::Auto,
        WireToolChoice::Any(_) => ToolChoice::Any,
        WireToolChoice::Tool(tool) => ToolChoice::Tool { name: tool.name },
    });
    Ok((tools, choice))
}

/// The Converse body as a native request for `alias`.
fn to_native(
    req: ConverseRequest,
    alias: String,
    purpose: String,
) -> Result<InvokeRequest, HubError> {
    for (name, present) in [
        ("guardrailConfig", req.guardrail_config.is_some()),
        (
            "additionalModelRequestFields",
            req.additional_model_request_fields.is_some(),
        ),
        (
            "additionalModelResponseFieldPaths",
            req.additional_model_response_field_paths.is_some(),
        ),
        ("promptVariables", req.prompt_variables.is_some()),
    ] {
        if present {
            let why = if name == "guardrailConfig" {
                "the hub applies its own guardrail to every call and never one a caller names"
            } else {
                "the hub sends only what it can check"
            };
            return invalid(format!("`{name}` is not supported: {why}"));
        }
    }
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    let mut system = Vec::new();
    for (i, block) in req.system.into_iter().enumerate() {
        match block {
            SystemBlock::Text(text) => system.push(ContentBlock::text(text)),
            SystemBlock::CachePoint(_) => {}
            SystemBlock::GuardContent(_) => {
                return Err(refused_block("guardContent", &format!("system[{i}]")));
            }
        }
    }
    if !system.is_empty() {
        messages.push(Message {
            role: Role::System,
            content: system,
        });
    }
    for (i, message) in req.messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return invalid(format!(
                    "`messages[{i}].role` `{}` is not supported; use `user` or `assistant`",
                    super::extract::shown(other)
                ));
            }
        };
        let mut content = Vec::with_capacity(message.content.len());
        for (j, block) in message.content.into_iter().enumerate() {
            if let Some(block) = content_block(block, &format!("messages[{i}].content[{j}]"))? {
                content.push(block);
            }
        }
        if content.is_empty() {
            return invalid(format!("`messages[{i}].content` is empty"));
        }
        messages.push(Message { role, content });
    }
    let (tools, tool_choice) = to_tools(req.tool_config)?;
    let inference = req.inference_config.unwrap_or_default();
    Ok(InvokeRequest {
        model: alias,
        purpose,
        messages,
        tools,
        tool_choice,
        max_tokens: inference.max_tokens,
        response_schema: None,
        context: None,
        stop_sequences: inference.stop_sequences,
    })
}

/// The answer's blocks in Bedrock's form: text and tool-use blocks, in order.
fn wire_blocks(content: Vec<ContentBlock>) -> Vec<WireBlock> {
    content
        .into_iter()
        .filter_map(|block| match block {
            ContentBlock::Text { text } => Some(WireBlock::Text(text)),
            ContentBlock::ToolUse { id, name, input } => {
                Some(WireBlock::ToolUse(bedrock::ToolUseBlock {
                    tool_use_id: id,
                    name,
                    input,
                }))
            }
            _ => None,
        })
        .collect()
}

fn latency_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The purpose, the alias and the native request of a Converse call.
fn prepare(
    state: &AppState,
    headers: &HeaderMap,
    model_id: &str,
    request: ConverseRequest,
) -> Result<InvokeRequest, HubError> {
    let purpose = declared_purpose(state, headers)?;
    let alias = resolve_model(state.policy.current().catalog(), model_id)?;
    to_native(request, alias, purpose)
}

fn with_ids(mut response: Response, audit_id: uuid::Uuid, headers: &HeaderMap) -> Response {
    if let Ok(id) = HeaderValue::from_str(&audit_id.to_string()) {
        response.headers_mut().insert(AUDIT_ID_HEADER, id);
    }
    if let Ok(id) = HeaderValue::from_str(&request_id(headers)) {
        response.headers_mut().insert(AWS_REQUEST_ID_HEADER, id);
    }
    response
}

/// `POST /model/{modelId}/converse`.
pub async fn converse_create(
    State(state): State<Arc<AppState>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<ConverseRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let native = prepare(&state, &headers, &model_id, request)?;
    let meta = call_meta(&headers, &state, caller, "bedrock_converse")?;
    let answer = governed::complete(&state, meta, native).await?;
    let stop = StopReason::from_name(&answer.stop_reason).unwrap_or(StopReason::EndTurn);
    let body = ConverseResponse {
        output: ConverseOutput {
            message: ConverseMessage {
                role: "assistant".to_owned(),
                content: wire_blocks(answer.content),
            },
        },
        stop_reason: bedrock::stop_reason(stop).to_owned(),
        usage: answer.usage.into(),
        metrics: Metrics {
            latency_ms: latency_ms(started),
        },
    };
    Ok(with_ids(
        Json(body).into_response(),
        answer.audit_id,
        &headers,
    ))
}

/// Bedrock's block numbering for a governed stream. A text block opens at its first delta and closes when a
/// tool block opens or the answer ends. A tool block opens when the tool's input is complete (the governed
/// stream sends it whole, after guarding, and may send held-back text between a tool's start and its
/// input), so blocks never interleave. Indexes count from 0 across text and tool blocks.
#[derive(Debug, Default)]
struct BlockEvents {
    next: u32,
    text: Option<u32>,
    /// Tools started and awaiting their input: (the governed stream's tool index, id, name).
    started: Vec<(u32, String, String)>,
}

impl BlockEvents {
    fn close_text(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(index) = self.text.take() {
            out.push(StreamEvent::ContentBlockStop {
                content_block_index: index,
            });
        }
    }

    /// The events for one governed item; `Err` carries the failure to send as an exception frame.
    fn translate(
        &mut self,
        item: StreamItem,
        started: Instant,
    ) -> Result<Vec<StreamEvent>, ApiError> {
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
                        index
                    }
                };
                out.push(StreamEvent::ContentBlockDelta {
                    delta: json!({ "text": text }),
                    content_block_index: index,
                });
            }
            StreamItem::ToolUseStart { index, id, name } => self.started.push((index, id, name)),
            StreamItem::ToolInput { index, json } => {
                let Some(at) = self.started.iter().position(|(i, _, _)| *i == index) else {
                    return Ok(out);
                };
                let (_, id, name) = self.started.remove(at);
                self.close_text(&mut out);
                let block = self.next;
                self.next += 1;
                out.push(StreamEvent::ContentBlockStart {
                    start: json!({"toolUse": {"toolUseId": id, "name": name}}),
                    content_block_index: block,
                });
                out.push(StreamEvent::ContentBlockDelta {
                    delta: json!({"toolUse": {"input": json}}),
                    content_block_index: block,
                });
                out.push(StreamEvent::ContentBlockStop {
                    content_block_index: block,
                });
            }
            StreamItem::Done {
                stop_reason, usage, ..
            } => {
                self.close_text(&mut out);
                out.push(StreamEvent::MessageStop {
                    stop_reason: bedrock::stop_reason(stop_reason).to_owned(),
                });
                out.push(StreamEvent::Metadata {
                    usage: usage.into(),
                    metrics: Metrics {
                        latency_ms: latency_ms(started),
                    },
                });
            }
            StreamItem::Failed(err) => return Err(err),
        }
        Ok(out)
    }
}

fn frame_header(name: &'static str, value: &str) -> Header {
    Header::new(name, FrameHeader::String(value.to_owned().into()))
}

fn encode(frame: &Frame) -> Bytes {
    let mut buffer = Vec::new();
    match write_message_to(frame, &mut buffer) {
        Ok(()) => Bytes::from(buffer),
        Err(err) => {
            // Only headers over the format's size limits fail to encode; ours are fixed and short.
            tracing::error!(error = %err, "an event-stream frame could not be encoded");
            Bytes::new()
        }
    }
}

fn event_frame(event: &StreamEvent) -> Bytes {
    let payload = serde_json::to_vec(event).unwrap_or_default();
    encode(
        &Frame::new(payload)
            .add_header(frame_header(":event-type", event.name()))
            .add_header(frame_header(":message-type", "event"))
            .add_header(frame_header(":content-type", "application/json")),
    )
}

/// An exception frame: the SDKs raise it as an `EventStreamError` carrying the exception name.
fn exception_frame(err: &ApiError) -> Bytes {
    let code = err.error.code();
    let name = bedrock::exception_name(code);
    let mut stream_name = name.to_owned();
    if let Some(first) = stream_name.get_mut(..1) {
        first.make_ascii_lowercase();
    }
    let body = ErrorResponse {
        message: err.error.public_message(),
        audit_id: err.audit_id.map(|a| a.to_string()),
    };
    encode(
        &Frame::new(serde_json::to_vec(&body).unwrap_or_default())
            .add_header(frame_header(":message-type", "exception"))
            .add_header(frame_header(":exception-type", &stream_name))
            .add_header(frame_header(":content-type", "application/json")),
    )
}

/// `POST /model/{modelId}/converse-stream`.
pub async fn converse_stream_create(
    State(state): State<Arc<AppState>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<ConverseRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let native = prepare(&state, &headers, &model_id, request)?;
    let meta = call_meta(&headers, &state, caller, "bedrock_converse_stream")?;
    let governed = governed::stream(&state, meta, native).await?;
    let first = event_frame(&StreamEvent::MessageStart {
        role: "assistant".to_owned(),
    });
    let mut blocks = BlockEvents::default();
    let frames = ReceiverStream::new(governed.items).flat_map(move |item| {
        let frames: Vec<Bytes> = match blocks.translate(item, started) {
            Ok(events) => events.iter().map(event_frame).collect(),
            Err(err) => vec![exception_frame(&err)],
        };
        futures::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>))
    });
    let body = futures::stream::once(async move { Ok(first) }).chain(frames);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE),
    );
    Ok(with_ids(response, governed.audit_id, &headers))
}

// === invoke ===

/// An `invoke` body for an embedding model, in the family its shape names.
enum EmbeddingBody {
    /// Titan Text Embeddings: one `inputText`.
    Titan {
        text: String,
        dimensions: Option<u32>,
    },
    /// Cohere Embed: `texts`.
    Cohere { texts: Vec<String> },
}

fn embedding_body(body: &serde_json::Value) -> Result<EmbeddingBody, HubError> {
    if let Some(text) = body.get("inputText") {
        let Some(text) = text.as_str() else {
            return invalid("`inputText` must be a string".to_owned());
        };
        if body.get("normalize").is_some_and(|n| n != &json!(true)) {
            return invalid(
                "`normalize: false` is not supported: the hub returns normalised vectors"
                    .to_owned(),
            );
        }
        if body
            .get("embeddingTypes")
            .is_some_and(|t| t != &json!(["float"]))
        {
            return invalid("`embeddingTypes` must be `[\"float\"]`".to_owned());
        }
        let dimensions =
            match body.get("dimensions") {
                None => None,
                Some(d) => Some(d.as_u64().and_then(|d| u32::try_from(d).ok()).ok_or_else(
                    || HubError::InvalidRequest("`dimensions` must be a whole number".to_owned()),
                )?),
            };
        return Ok(EmbeddingBody::Titan {
            text: text.to_owned(),
            dimensions,
        });
    }
    if let Some(texts) = body.get("texts").and_then(serde_json::Value::as_array) {
        if body
            .get("embedding_types")
            .is_some_and(|t| t != &json!(["float"]))
        {
            return invalid("`embedding_types` must be `[\"float\"]`".to_owned());
        }
        if body.get("images").is_some() {
            return invalid("`images` is not supported: the hub embeds text".to_owned());
        }
        let texts = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_str().map(str::to_owned).ok_or_else(|| {
                    HubError::InvalidRequest(format!("`texts[{i}]` must be a string"))
                })
            })
            .collect::<Result<_, _>>()?;
        return Ok(EmbeddingBody::Cohere { texts });
    }
    invalid(
        "an embedding model's `invoke` body needs `inputText` (Titan Text Embeddings) or `texts` (Cohere Embed)"
            .to_owned(),
    )
}

/// The body of an `invoke` call: a JSON object, read within `server.max_body_bytes`. The AWS SDKs send it as
/// a blob, with the `contentType` the caller named or none; anything but JSON is refused.
#[derive(Debug)]
pub struct InvokeBody(serde_json::Value);

impl axum::extract::FromRequest<Arc<AppState>> for InvokeBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if content_type.is_some_and(|c| c != "application/json" && !c.ends_with("+json")) {
            return Err(HubError::UnsupportedMediaType.into());
        }
        let limit = state.config.server.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| HubError::PayloadTooLarge(limit))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| HubError::InvalidRequest(format!("invalid JSON body: {e}")))?;
        if !value.is_object() {
            return Err(
                HubError::InvalidRequest("the body must be a JSON object".to_owned()).into(),
            );
        }
        Ok(Self(value))
    }
}

/// An Anthropic Messages body (Claude on Bedrock) as a native request for `alias`.
fn anthropic_body(
    mut body: serde_json::Value,
    alias: &str,
    purpose: String,
) -> Result<InvokeRequest, HubError> {
    if body.get("messages").is_none() {
        return invalid(format!(
            "model `{alias}` takes the Anthropic Messages body on `invoke` (`anthropic_version`, `max_tokens`, `messages`); other chat bodies go through `converse`"
        ));
    }
    if let Some(object) = body.as_object_mut() {
        object.remove("anthropic_version");
        object.insert("model".to_owned(), json!(alias));
    }
    let request: MessagesRequest = serde_path_to_error::deserialize(body).map_err(|err| {
        HubError::InvalidRequest(format!(
            "invalid Anthropic body at `{}`: {}",
            super::extract::shown_up_to(
                &err.path().to_string(),
                super::extract::SHOWN_DETAIL_CHARS
            ),
            super::extract::shown_detail(&err.inner().to_string())
        ))
    })?;
    if request.stream.is_some() {
        return invalid(
            "`stream` is not part of an `invoke` body; call `invoke-with-response-stream`"
                .to_owned(),
        );
    }
    Ok(messages::to_native(request, purpose)?.0)
}

fn json_response(body: &serde_json::Value, audit_id: uuid::Uuid, headers: &HeaderMap) -> Response {
    let mut response = Json(body).into_response();
    response = with_ids(response, audit_id, headers);
    response
}

fn token_headers(response: &mut Response, usage: causeway_contract::TokenUsage) {
    for (name, value) in [
        ("x-amzn-bedrock-input-token-count", usage.input_tokens),
        ("x-amzn-bedrock-output-token-count", usage.output_tokens),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// `POST /model/{modelId}/invoke`: an embedding body for an embedding model, the Anthropic Messages body
/// for a chat model.
pub async fn invoke_create(
    State(state): State<Arc<AppState>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    InvokeBody(body): InvokeBody,
) -> Result<Response, ApiError> {
    let purpose = declared_purpose(&state, &headers)?;
    let policy = state.policy.current();
    let alias = resolve_model(policy.catalog(), &model_id)?;
    let kind = policy
        .catalog()
        .get(&alias)
        .map_or(ModelKind::Chat, |e| e.kind);
    if kind == ModelKind::Embedding {
        let (inputs, dimensions, titan) = match embedding_body(&body)? {
            EmbeddingBody::Titan { text, dimensions } => (vec![text], dimensions, true),
            EmbeddingBody::Cohere { texts } => (texts, None, false),
        };
        let meta = call_meta(&headers, &state, caller, "bedrock_invoke")?;
        let native = EmbedRequest {
            model: alias,
            purpose,
            inputs,
            dimensions,
        };
        let answer = crate::embed::embed(&state, meta, native).await?;
        let body = if titan {
            json!({
                "embedding": answer.vectors.first(),
                "inputTextTokenCount": answer.usage.input_tokens,
            })
        } else {
            let by_type = body.get("embedding_types").is_some();
            json!({
                "id": answer.audit_id.to_string(),
                "embeddings": if by_type { json!({"float": answer.vectors}) } else { json!(answer.vectors) },
                "texts": body.get("texts"),
                "response_type": if by_type { "embeddings_by_type" } else { "embeddings_floats" },
            })
        };
        let mut response = json_response(&body, answer.audit_id, &headers);
        token_headers(&mut response, answer.usage);
        return Ok(response);
    }
    let native = anthropic_body(body, &alias, purpose)?;
    let stop_sequences = native.stop_sequences.clone();
    let meta = call_meta(&headers, &state, caller, "bedrock_invoke")?;
    let answer = governed::complete(&state, meta, native).await?;
    let stop = StopReason::from_name(&answer.stop_reason).unwrap_or(StopReason::EndTurn);
    let body = MessagesResponse {
        id: messages::message_id(answer.audit_id),
        kind: "message".to_owned(),
        role: "assistant".to_owned(),
        content: messages::response_blocks(answer.content),
        model: answer.model,
        stop_reason: Some(anthropic::stop_reason(stop).to_owned()),
        stop_sequence: messages::stop_sequence(stop, &stop_sequences),
        usage: messages::usage(answer.usage),
        causeway: None,
    };
    let body = serde_json::to_value(&body).unwrap_or_default();
    let mut response = json_response(&body, answer.audit_id, &headers);
    token_headers(&mut response, answer.usage);
    Ok(response)
}

/// A `chunk` frame carrying one Anthropic stream event, base64 in `bytes`, as Bedrock streams Claude.
fn chunk_frame(event: &anthropic::StreamEvent) -> Bytes {
    let json = serde_json::to_vec(event).unwrap_or_default();
    let payload = json!({ "bytes": base64::engine::general_purpose::STANDARD.encode(json) });
    encode(
        &Frame::new(payload.to_string().into_bytes())
            .add_header(frame_header(":event-type", "chunk"))
            .add_header(frame_header(":message-type", "event"))
            .add_header(frame_header(":content-type", "application/json")),
    )
}

/// `POST /model/{modelId}/invoke-with-response-stream`: the Anthropic Messages body of a chat model,
/// answered as Bedrock streams Claude: `chunk` frames, each an Anthropic stream event.
pub async fn invoke_stream_create(
    State(state): State<Arc<AppState>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    InvokeBody(body): InvokeBody,
) -> Result<Response, ApiError> {
    let purpose = declared_purpose(&state, &headers)?;
    let policy = state.policy.current();
    let alias = resolve_model(policy.catalog(), &model_id)?;
    if policy
        .catalog()
        .get(&alias)
        .is_some_and(|e| e.kind == ModelKind::Embedding)
    {
        return Err(HubError::InvalidRequest(format!(
            "model `{alias}` is an embedding model; call `invoke`, which answers at once"
        ))
        .into());
    }
    let native = anthropic_body(body, &alias, purpose)?;
    let stop_sequences = native.stop_sequences.clone();
    let meta = call_meta(&headers, &state, caller, "bedrock_invoke_stream")?;
    let governed = governed::stream(&state, meta, native).await?;
    let start = anthropic::StreamEvent::MessageStart {
        message: Box::new(MessagesResponse {
            id: messages::message_id(governed.audit_id),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            content: Vec::new(),
            model: governed.model.clone(),
            stop_reason: None,
            stop_sequence: None,
            usage: messages::usage(causeway_contract::TokenUsage::default()),
            causeway: None,
        }),
    };
    let first = chunk_frame(&start);
    let mut blocks = messages::BlockEvents::default();
    let frames = ReceiverStream::new(governed.items).flat_map(move |item| {
        let frames: Vec<Bytes> = match item {
            StreamItem::Failed(err) => vec![exception_frame(&err)],
            item => blocks
                .translate(item, &stop_sequences)
                .iter()
                .map(chunk_frame)
                .collect(),
        };
        futures::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>))
    });
    let body = futures::stream::once(async move { Ok(first) }).chain(frames);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE),
    );
    Ok(with_ids(response, governed.audit_id, &headers))
}

// === edge ===

/// The edge of the Bedrock door: every error response leaves as Bedrock answers errors, with the exception
/// name in `x-amzn-errortype`, Bedrock's status for it and a body `{"message": …}` (the audit id alongside
/// and in `x-causeway-audit-id`), so the AWS SDKs raise their modelled exceptions.
pub async fn bedrock_door(request: Request, next: Next) -> Response {
    let id = request_id(request.headers());
    let response = next.run(request).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    let (code, body) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(hub) => (
            hub.error.code,
            ErrorResponse {
                message: hub.error.message,
                audit_id: hub.error.audit_id,
            },
        ),
        Err(_) => (
            match parts.status.as_u16() {
                401 => ErrorCode::Unauthenticated,
                403 => ErrorCode::Forbidden,
                404 => ErrorCode::NotFound,
                429 => ErrorCode::BudgetExceeded,
                503 => ErrorCode::ModelUnavailable,
                504 => ErrorCode::Timeout,
                400..=499 => ErrorCode::InvalidRequest,
                _ => ErrorCode::Internal,
            },
            ErrorResponse {
                message: parts
                    .status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase(),
                audit_id: None,
            },
        ),
    };
    parts.status = StatusCode::from_u16(bedrock::exception_status(code)).unwrap_or(parts.status);
    parts.headers.insert(
        ERROR_TYPE_HEADER,
        HeaderValue::from_static(bedrock::exception_name(code)),
    );
    if let Some(audit) = body
        .audit_id
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        parts.headers.insert(AUDIT_ID_HEADER, audit);
    }
    if let Ok(id) = HeaderValue::from_str(&id) {
        parts.headers.insert(AWS_REQUEST_ID_HEADER, id);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&body).unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        causeway_policy::PolicyBundle::embedded()
            .unwrap()
            .catalog()
            .clone()
    }

    #[test]
    fn bedrock_model_ids_and_arns_map_to_their_alias() {
        let catalog = catalog();
        for id in [
            "claude-haiku",
            "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
            "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        ] {
            assert_eq!(resolve_model(&catalog, id).unwrap(), "claude-haiku", "{id}");
        }
        assert_eq!(
            resolve_model(&catalog, "amazon.nova-lite-v1:0").unwrap(),
            "nova-lite"
        );
        let err = resolve_model(&catalog, "anthropic.claude-3-opus-20240229-v1:0").unwrap_err();
        assert!(err.to_string().contains("not served by this hub"), "{err}");
    }

    #[test]
    fn guardrails_and_model_specific_fields_are_refused() {
        for member in [
            "guardrailConfig",
            "additionalModelRequestFields",
            "promptVariables",
        ] {
            let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}], member: {"x": 1}});
            let request: ConverseRequest = serde_json::from_value(body).unwrap();
            let err = to_native(request, "claude-haiku".into(), "evaluation".into()).unwrap_err();
            assert!(err.to_string().contains(member), "{err}");
        }
        let s3 = json!({"messages": [{"role": "user", "content": [
            {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://bucket/cat.png"}}}}
        ]}]});
        let err = to_native(
            serde_json::from_value(s3).unwrap(),
            "claude-haiku".into(),
            "evaluation".into(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("messages[0].content[0].source"),
            "{err}"
        );
        assert!(err.to_string().contains("s3Location"), "{err}");
    }

    #[test]
    fn a_converse_body_maps_to_the_content_model() {
        let body = json!({
            "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
            "messages": [
                {"role": "user", "content": [{"text": "Weather?"},
                    {"document": {"format": "txt", "name": "notes", "source": {"text": "dry"}}}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Leeds"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "status": "error",
                    "content": [{"json": {"error": "down"}}]}}]}
            ],
            "inferenceConfig": {"maxTokens": 64, "stopSequences": ["END"]},
            "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}],
                           "toolChoice": {"any": {}}}
        });
        let native = to_native(
            serde_json::from_value(body).unwrap(),
            "claude-haiku".into(),
            "evaluation".into(),
        )
        .unwrap();
        assert_eq!(native.messages[0].role, Role::System);
        assert_eq!(native.messages[0].content.len(), 1);
        assert!(matches!(
            &native.messages[1].content[1],
            ContentBlock::Document {
                format: DocumentFormat::Txt,
                ..
            }
        ));
        assert!(matches!(
            &native.messages[3].content[0],
            ContentBlock::ToolResult { is_error: true, content, .. }
                if content[0].as_text() == Some("{\"error\":\"down\"}")
        ));
        assert_eq!(native.tool_choice, Some(ToolChoice::Any));
        assert_eq!(native.max_tokens, Some(64));
        assert_eq!(native.stop_sequences, vec!["END"]);
    }

    #[test]
    fn stream_items_become_bedrocks_block_sequence() {
        let started = Instant::now();
        let mut blocks = BlockEvents::default();
        let mut names = Vec::new();
        let mut indexes = Vec::new();
        for item in [
            StreamItem::Text("Let me ".into()),
            StreamItem::Text("check.".into()),
            StreamItem::ToolUseStart {
                index: 0,
                id: "t1".into(),
                name: "get_weather".into(),
            },
            // Text held back by the output guard arrives after the tool started.
            StreamItem::Text(" Done.".into()),
            StreamItem::ToolInput {
                index: 0,
                json: "{\"city\":\"Leeds\"}".into(),
            },
            StreamItem::Done {
                stop_reason: StopReason::ToolUse,
                usage: causeway_contract::TokenUsage {
                    input_tokens: 5,
                    output_tokens: 7,
                },
                guards: Box::default(),
            },
        ] {
            for event in blocks.translate(item, started).unwrap() {
                names.push(event.name());
                indexes.push(match &event {
                    StreamEvent::ContentBlockStart {
                        content_block_index,
                        ..
                    }
                    | StreamEvent::ContentBlockDelta {
                        content_block_index,
                        ..
                    }
                    | StreamEvent::ContentBlockStop {
                        content_block_index,
                    } => Some(*content_block_index),
                    _ => None,
                });
            }
        }
        assert_eq!(
            names,
            vec![
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "contentBlockStart",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        assert_eq!(
            indexes,
            vec![
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(1),
                Some(1),
                Some(1),
                None,
                None
            ]
        );
    }
}
