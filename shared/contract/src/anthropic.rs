//! The subset of the Anthropic Messages API the hub speaks (`POST /v1/messages`, complete and streamed, and
//! `POST /v1/messages/count_tokens`), so the official Anthropic SDKs and Claude Code work unchanged with their
//! base URL pointed at the hub.
//!
//! These are the wire shapes only; the hub maps them to the content model ([`crate::content`]) and refuses,
//! with a message naming the field, what it cannot honour. The rules it applies:
//! - Unknown fields are ignored: the SDKs add optional fields release by release.
//! - Fields that only tune how a provider serves a call are accepted and have no effect: `cache_control`
//!   (prompt caching), `metadata` (the hub identifies the user from the token, not from `user_id`),
//!   `service_tier`, `speed`, `temperature`, `top_p` and `top_k` (the provider's defaults apply), and
//!   `thinking` and `output_config.effort` (the hub does not offer extended thinking; answers carry no
//!   thinking blocks). Thinking blocks in earlier assistant turns are left out of the conversation, as
//!   Anthropic leaves earlier turns' thinking out of the model's context.
//! - `output_config.format` (a JSON schema) is honoured: it becomes the call's response schema.
//! - Fields that need a capability the hub does not have are refused: server tools (a tool `type` other
//!   than `custom`), `mcp_servers`, `container`, `context_management`, `inference_geo` (the catalog decides
//!   where a model runs), image and document sources other than inline data (the hub fetches nothing and
//!   keeps no files), document `citations` and `context`, and `disable_parallel_tool_use` (the model decides
//!   how many tools it calls).
//!
//! Errors use Anthropic's body, `{"type":"error","error":{"type":…,"message":…}}`, with the error `type`
//! the SDKs map to their exception classes ([`error_type`]); the hub's own code and the audit id ride along
//! as extra fields the SDKs keep on the exception's body.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::content::StopReason;
use crate::error::{ErrorBody, ErrorCode};
use crate::guard::GuardReport;

// === request ===

/// A string, or a list of blocks: the two forms Anthropic accepts for message content, `system` and tool
/// results. A string stands for one text block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TextOr<T> {
    /// Plain text.
    Text(String),
    /// Typed blocks.
    Blocks(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TextOr<T> {
    // A visitor rather than an untagged enum, so a bad block is reported as itself, at its index.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOrVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for TextOrVisitor<T> {
            type Value = TextOr<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of content blocks")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(TextOr::Blocks(blocks))
            }
        }

        deserializer.deserialize_any(TextOrVisitor(PhantomData))
    }
}

/// Who wrote an input message. Anthropic takes system instructions in `system`, not as a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputRole {
    /// The end user, or the application returning tool results.
    User,
    /// Earlier model turns, including tool calls; a final assistant message is a prefill.
    Assistant,
}

/// One input message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputMessage {
    /// `user` or `assistant`.
    pub role: InputRole,
    /// A string, or a list of content blocks.
    pub content: TextOr<ContentBlockParam>,
}

/// One block of `system` (only `text` blocks are allowed there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SystemBlock {
    /// Instructions.
    Text {
        /// The text.
        text: String,
    },
}

/// One content block of an input message (or, for text, image and document blocks, of a tool result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlockParam {
    /// Text. `cache_control` and `citations` (of an earlier answer) are accepted and have no effect.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// Where the image is.
        source: ImageSource,
    },
    /// A document.
    Document {
        /// Where the document is.
        source: DocumentSource,
        /// A title the model can refer to it by.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Context about the document that is not part of it; refused (send it as a `text` block).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
        /// Whether the answer should cite the document; enabling it is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<CitationsConfig>,
    },
    /// A tool call the model made (in assistant messages).
    ToolUse {
        /// The call id, echoed by the matching tool result.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments, a JSON object.
        input: serde_json::Value,
    },
    /// The application's result of a tool call (in user messages).
    ToolResult {
        /// The id of the tool use this answers.
        tool_use_id: String,
        /// The result: a string, or text, image and document blocks. Absent for a result without content.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<TextOr<ContentBlockParam>>,
        /// True when the tool failed and `content` describes the error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
    },
    /// The model's thinking in an earlier assistant turn; left out of the conversation.
    Thinking {
        /// The thinking text.
        #[serde(default)]
        thinking: String,
        /// Anthropic's signature over it.
        #[serde(default)]
        signature: String,
    },
    /// Redacted thinking in an earlier assistant turn; left out of the conversation.
    RedactedThinking {
        /// The encrypted thinking.
        #[serde(default)]
        data: String,
    },
}

/// Where an image is. Only inline data (`base64`) is accepted: the hub fetches nothing on a caller's behalf
/// and keeps no files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// The image bytes, base64.
    Base64 {
        /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
        media_type: String,
        /// Standard base64 of the bytes.
        data: String,
    },
    /// A URL for the provider to fetch; refused.
    Url {
        /// The URL.
        url: String,
    },
    /// An uploaded file's id; refused.
    File {
        /// The file id.
        file_id: String,
    },
}

/// Where a document is. Inline bytes (`base64`) and inline text (`text`) are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DocumentSource {
    /// The document bytes, base64 (Anthropic sends `application/pdf`; the hub also takes its other document
    /// formats by media type).
    Base64 {
        /// The media type, e.g. `application/pdf`.
        media_type: String,
        /// Standard base64 of the bytes.
        data: String,
    },
    /// A plain-text document.
    Text {
        /// `text/plain`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        /// The text.
        data: String,
    },
    /// A document made of content blocks; refused (send the text as a `text` source).
    Content {
        /// The blocks.
        content: serde_json::Value,
    },
    /// A URL for the provider to fetch; refused.
    Url {
        /// The URL.
        url: String,
    },
    /// An uploaded file's id; refused.
    File {
        /// The file id.
        file_id: String,
    },
}

/// A document's `citations` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitationsConfig {
    /// Whether the answer should cite the document.
    #[serde(default)]
    pub enabled: bool,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Absent or `custom` for a tool the application runs; any other value names a server tool, which is
    /// refused.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its input (an object schema); required for custom tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
}

/// Which tools the model may or must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoiceParam {
    /// The model decides.
    Auto {
        /// Limit the answer to one tool call; `true` is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call one of the tools.
    Any {
        /// Limit the answer to one tool call; `true` is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call this tool.
    Tool {
        /// The tool's name.
        name: String,
        /// Limit the answer to one tool call; `true` is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must not call a tool.
    None,
}

/// `metadata`; accepted and not used (the hub identifies the user from the token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// An opaque id of the end user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `output_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputConfig {
    /// How much effort the model puts in; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// The answer's format: a JSON schema the answer must validate against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
}

/// `output_config.format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFormat {
    /// `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}

/// `POST /v1/messages` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Model alias.
    pub model: String,
    /// Upper bound on answer tokens (required, at least 1); clamped to the catalog's limit for the model.
    pub max_tokens: u32,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// System instructions: a string or a list of text blocks. They go after the hub's guardrail
    /// instructions and never replace them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<TextOr<SystemBlock>>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Which tools the model may or must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoiceParam>,
    /// Texts that end the answer when the model produces one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Request metadata; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Sampling temperature; accepted and not passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling; accepted and not passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling; accepted and not passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Extended thinking; accepted and not used (answers carry no thinking blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<serde_json::Value>,
    /// Output settings; `format` is honoured, `effort` is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    /// Remote MCP servers; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<serde_json::Value>,
    /// A code-execution container; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<serde_json::Value>,
    /// Server-side context editing; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<serde_json::Value>,
    /// Where inference runs; refused (the catalog decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_geo: Option<serde_json::Value>,
}

/// `POST /v1/messages/count_tokens` request: a message request without the answer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountTokensRequest {
    /// Model alias.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// System instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<TextOr<SystemBlock>>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Which tools the model may or must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoiceParam>,
    /// Extended thinking; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<serde_json::Value>,
    /// Output settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    /// Remote MCP servers; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<serde_json::Value>,
    /// Server-side context editing; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<serde_json::Value>,
}

/// `POST /v1/messages/count_tokens` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountTokensResponse {
    /// About how many input tokens the request is.
    pub input_tokens: u32,
}

// === response ===

/// One block of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// The call id; the tool result carries it as `tool_use_id`.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments, a JSON object (`{}` in a streamed `content_block_start`).
        input: serde_json::Value,
    },
}

/// Token usage in Anthropic's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// Tokens written to a prompt cache (the hub caches nothing: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u32>,
    /// Tokens read from a prompt cache (the hub caches nothing: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u32>,
}

/// Causeway's additions to an Anthropic response body; the SDKs keep unknown fields on the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CausewayExtension {
    /// The audit record of this call.
    pub audit_id: String,
    /// True when the local development model answered.
    pub development_model: bool,
    /// What the guards did (complete answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guards: Option<GuardReport>,
}

/// `POST /v1/messages` response, and the message of a streamed `message_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// `msg_<audit id>`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: String,
    /// Text and tool calls, in order (empty in `message_start`).
    pub content: Vec<ResponseBlock>,
    /// The alias.
    pub model: String,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use` or `refusal` ([`stop_reason`]); `null` in
    /// `message_start`.
    pub stop_reason: Option<String>,
    /// The stop sequence that ended the answer, when it is known.
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// Causeway's additions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causeway: Option<CausewayExtension>,
}

/// Anthropic's `stop_reason` for a stop reason. A provider's content filter is Anthropic's `refusal`.
pub fn stop_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFiltered => "refusal",
    }
}

// === streaming ===

/// The delta of a `content_block_delta` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text of a text block.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More of a tool call's input, as JSON text.
    InputJsonDelta {
        /// The fragment; a call's fragments concatenate to its input object.
        partial_json: String,
    },
}

/// The delta of a `message_delta` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why the model stopped ([`stop_reason`]).
    pub stop_reason: Option<String>,
    /// The stop sequence that ended the answer, when it is known.
    pub stop_sequence: Option<String>,
}

/// The usage of a `message_delta` event: cumulative totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaUsage {
    /// Output tokens.
    pub output_tokens: u32,
    /// Input tokens as the provider counted them (the `message_start` figure is the hub's estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u32>,
}

/// One server-sent event of a streamed answer. The SSE `event:` name is [`StreamEvent::name`], and the
/// `data:` line is this value as JSON.
///
/// The order is `message_start`; for each block `content_block_start`, `content_block_delta`s and
/// `content_block_stop`; then `message_delta` and `message_stop`. `ping` may come at any point, and `error`
/// ends a stream abnormally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message, with empty content.
    MessageStart {
        /// The message so far.
        message: Box<MessagesResponse>,
    },
    /// A block begins: text with `""`, or a tool call with its id, name and input `{}`.
    ContentBlockStart {
        /// The block's position in the answer, from 0.
        index: u32,
        /// The block.
        content_block: ResponseBlock,
    },
    /// More of a block.
    ContentBlockDelta {
        /// The block's position.
        index: u32,
        /// The delta.
        delta: BlockDelta,
    },
    /// A block ends.
    ContentBlockStop {
        /// The block's position.
        index: u32,
    },
    /// The stop reason and the usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: MessageDelta,
        /// Usage totals.
        usage: DeltaUsage,
    },
    /// The end.
    MessageStop,
    /// Keepalive.
    Ping,
    /// The stream failed; nothing follows.
    Error {
        /// What went wrong.
        error: ErrorObject,
    },
}

impl StreamEvent {
    /// The SSE event name: the same as the `type` in the data.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
        }
    }
}

// === errors ===

/// The inner object of an Anthropic error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// Anthropic's error type ([`error_type`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// One lowercase line for people; never contains prompt text, tokens or PII.
    pub message: String,
    /// Causeway's machine-readable code (finer than the type: `guard_blocked` against `forbidden`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// The audit record written for the failed call, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
}

/// `{"type":"error","error":{"type":…,"message":…}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorObject,
    /// The hub's request id, under which its log holds the details of a 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorObject {
    /// The Anthropic form of a hub error.
    pub fn from_body(body: ErrorBody) -> Self {
        Self {
            kind: error_type(body.error.code).to_owned(),
            message: body.error.message,
            code: Some(body.error.code),
            audit_id: body.error.audit_id,
        }
    }
}

impl ErrorResponse {
    /// The Anthropic form of a hub error body.
    pub fn from_body(body: ErrorBody, request_id: Option<String>) -> Self {
        Self {
            kind: "error".to_owned(),
            error: ErrorObject::from_body(body),
            request_id,
        }
    }
}

/// Anthropic's error `type` for a hub error code. The HTTP status stays the hub's; the SDKs pick their
/// exception class by status (400 `BadRequestError`, 401 `AuthenticationError`, 403 `PermissionDeniedError`,
/// 404 `NotFoundError`, 413 `RequestTooLargeError`, 429 `RateLimitError`, 5xx `InternalServerError`).
pub fn error_type(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::MethodNotAllowed
        | ErrorCode::UnsupportedMediaType => "invalid_request_error",
        ErrorCode::Unauthenticated => "authentication_error",
        ErrorCode::Forbidden | ErrorCode::GuardBlocked => "permission_error",
        ErrorCode::ModelNotFound | ErrorCode::NotFound => "not_found_error",
        ErrorCode::PayloadTooLarge => "request_too_large",
        ErrorCode::BudgetExceeded => "rate_limit_error",
        ErrorCode::ModelUnavailable => "overloaded_error",
        ErrorCode::Timeout => "timeout_error",
        ErrorCode::ModelError | ErrorCode::AuditUnavailable | ErrorCode::Internal => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorDetail;
    use serde_json::json;

    /// A request as the Anthropic Python SDK and Claude Code send it: system blocks with `cache_control`,
    /// metadata, a tool, a tool round trip, an image, a PDF and a text document, sampling settings and
    /// fields the hub does not know.
    #[test]
    fn reads_a_realistic_request() {
        let body = json!({
            "model": "claude-haiku",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
            "metadata": {"user_id": "user_abc"},
            "temperature": 1,
            "top_k": 5,
            "stream": true,
            "stop_sequences": ["END"],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "service_tier": "auto",
            "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"},
                       "cache_control": {"type": "ephemeral"}}],
            "tool_choice": {"type": "auto"},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                     "title": "report.pdf"},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Leeds"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "14 C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                     "content": [{"type": "text", "text": "no such city"}]}
                ]}
            ]
        });
        let request: MessagesRequest = serde_json::from_value(body).unwrap();
        assert_eq!(request.max_tokens, 1024);
        assert!(matches!(request.system, Some(TextOr::Blocks(ref b)) if b.len() == 1));
        assert_eq!(
            request.stop_sequences.as_deref(),
            Some(&["END".to_owned()][..])
        );
        assert_eq!(
            request.tool_choice,
            Some(ToolChoiceParam::Auto {
                disable_parallel_tool_use: None
            })
        );
        let TextOr::Blocks(first) = &request.messages[0].content else {
            unreachable!("blocks")
        };
        assert!(matches!(
            &first[1],
            ContentBlockParam::Image { source: ImageSource::Base64 { media_type, .. } } if media_type == "image/png"
        ));
        assert!(matches!(
            &first[3],
            ContentBlockParam::Document { source: DocumentSource::Text { data, .. }, .. } if data == "notes"
        ));
        let TextOr::Blocks(results) = &request.messages[2].content else {
            unreachable!("blocks")
        };
        assert!(matches!(
            &results[0],
            ContentBlockParam::ToolResult { content: Some(TextOr::Text(t)), .. } if t == "14 C"
        ));
        assert!(matches!(
            &results[1],
            ContentBlockParam::ToolResult {
                is_error: Some(true),
                content: Some(TextOr::Blocks(_)),
                ..
            }
        ));
        // Round trip.
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<MessagesRequest>(&text).unwrap(),
            request
        );
    }

    #[test]
    fn plain_string_content_and_system() {
        let request: MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 10, "system": "be brief",
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .unwrap();
        assert_eq!(request.system, Some(TextOr::Text("be brief".into())));
        assert_eq!(request.messages[0].content, TextOr::Text("hi".into()));
    }

    #[test]
    fn errors_name_the_problem() {
        let missing = serde_json::from_value::<MessagesRequest>(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(missing.contains("max_tokens"), "{missing}");
        let role = serde_json::from_value::<MessagesRequest>(json!({
            "model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "hi"}]
        }))
        .unwrap_err()
        .to_string();
        assert!(role.contains("system") && role.contains("user"), "{role}");
        let block = serde_json::from_value::<MessagesRequest>(json!({
            "model": "m", "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "server_tool_use"}]}]
        }))
        .unwrap_err()
        .to_string();
        assert!(block.contains("server_tool_use"), "{block}");
        let content = serde_json::from_value::<MessagesRequest>(json!({
            "model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 7}]
        }))
        .unwrap_err()
        .to_string();
        assert!(content.contains("a string or a list"), "{content}");
    }

    #[test]
    fn refused_sources_and_tools_are_read_so_they_can_be_refused() {
        let request: MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 1,
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "document", "source": {"type": "file", "file_id": "file_1"}, "citations": {"enabled": true}}
            ]}]
        }))
        .unwrap();
        let tools = request.tools.unwrap();
        assert_eq!(tools[0].kind.as_deref(), Some("web_search_20250305"));
        assert!(tools[0].input_schema.is_none());
        let TextOr::Blocks(blocks) = &request.messages[0].content else {
            unreachable!("blocks")
        };
        assert!(matches!(
            &blocks[0],
            ContentBlockParam::Image {
                source: ImageSource::Url { .. }
            }
        ));
        assert!(matches!(
            &blocks[1],
            ContentBlockParam::Document {
                citations: Some(CitationsConfig { enabled: true }),
                ..
            }
        ));
    }

    #[test]
    fn writes_a_response_as_the_sdk_reads_it() {
        let response = MessagesResponse {
            id: "msg_0190".into(),
            kind: "message".into(),
            role: "assistant".into(),
            content: vec![
                ResponseBlock::Text {
                    text: "Checking.".into(),
                },
                ResponseBlock::ToolUse {
                    id: "toolu_1".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Leeds"}),
                },
            ],
            model: "claude-haiku".into(),
            stop_reason: Some(stop_reason(StopReason::ToolUse).into()),
            stop_sequence: None,
            usage: Usage {
                input_tokens: 12,
                output_tokens: 7,
                cache_creation_input_tokens: Some(0),
                cache_read_input_tokens: Some(0),
            },
            causeway: None,
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({
                "id": "msg_0190", "type": "message", "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Leeds"}}
                ],
                "model": "claude-haiku", "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 12, "output_tokens": 7,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            })
        );
        assert_eq!(stop_reason(StopReason::ContentFiltered), "refusal");
    }

    #[test]
    fn stream_events_carry_their_type() {
        let events = [
            StreamEvent::ContentBlockStart {
                index: 1,
                content_block: ResponseBlock::ToolUse {
                    id: "toolu_1".into(),
                    name: "get_weather".into(),
                    input: json!({}),
                },
            },
            StreamEvent::ContentBlockDelta {
                index: 1,
                delta: BlockDelta::InputJsonDelta {
                    partial_json: "{\"city\"".into(),
                },
            },
            StreamEvent::MessageDelta {
                delta: MessageDelta {
                    stop_reason: Some("end_turn".into()),
                    stop_sequence: None,
                },
                usage: DeltaUsage {
                    output_tokens: 3,
                    input_tokens: Some(9),
                },
            },
            StreamEvent::MessageStop,
            StreamEvent::Ping,
        ];
        let values: Vec<serde_json::Value> = events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        assert_eq!(
            values,
            vec![
                json!({"type": "content_block_start", "index": 1,
                       "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
                json!({"type": "content_block_delta", "index": 1,
                       "delta": {"type": "input_json_delta", "partial_json": "{\"city\""}}),
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                       "usage": {"output_tokens": 3, "input_tokens": 9}}),
                json!({"type": "message_stop"}),
                json!({"type": "ping"}),
            ]
        );
        for (event, value) in events.iter().zip(&values) {
            assert_eq!(value["type"], event.name());
        }
    }

    #[test]
    fn hub_errors_become_anthropic_errors() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::GuardBlocked,
                message: "the prompt was blocked".into(),
                audit_id: Some("0190".into()),
            },
        };
        assert_eq!(
            serde_json::to_value(ErrorResponse::from_body(body, Some("req".into()))).unwrap(),
            json!({"type": "error", "error": {"type": "permission_error", "message": "the prompt was blocked",
                   "code": "guard_blocked", "audit_id": "0190"}, "request_id": "req"})
        );
        assert_eq!(
            error_type(ErrorCode::Unauthenticated),
            "authentication_error"
        );
        assert_eq!(error_type(ErrorCode::PayloadTooLarge), "request_too_large");
        assert_eq!(error_type(ErrorCode::BudgetExceeded), "rate_limit_error");
        assert_eq!(error_type(ErrorCode::ModelUnavailable), "overloaded_error");
        assert_eq!(error_type(ErrorCode::Internal), "api_error");
    }

    #[test]
    fn count_tokens_shapes() {
        let request: CountTokensRequest = serde_json::from_value(json!({
            "model": "claude-haiku", "system": "be brief",
            "messages": [{"role": "user", "content": "hello"}],
            "tools": [{"name": "t", "input_schema": {"type": "object"}}]
        }))
        .unwrap();
        assert_eq!(request.messages.len(), 1);
        assert_eq!(
            serde_json::to_value(CountTokensResponse { input_tokens: 14 }).unwrap(),
            json!({"input_tokens": 14})
        );
    }
}
