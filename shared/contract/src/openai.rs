//! The subset of the OpenAI chat completions API the hub speaks, so the official OpenAI SDKs work unchanged
//! with `base_url` pointed at the hub.
//!
//! Unknown request fields are accepted and ignored (the SDKs send many optional ones), except those that would
//! change what the call does and that the hub does not support (tools, functions, several choices): those are
//! refused by the hub with a message naming the field.

use serde::{Deserialize, Serialize};

/// Message content: a string, or a list of typed parts of which only `text` is supported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatContent {
    /// Plain text.
    Text(String),
    /// Typed parts.
    Parts(Vec<ChatContentPart>),
}

/// One typed content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatContentPart {
    /// `text` is the only supported type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text, for `text` parts.
    #[serde(default)]
    pub text: Option<String>,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The content.
    #[serde(default)]
    pub content: Option<ChatContent>,
}

/// `response_format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `json_schema`.
    #[serde(default)]
    pub json_schema: Option<JsonSchemaFormat>,
}

/// `response_format.json_schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    /// Schema name.
    #[serde(default)]
    pub name: Option<String>,
    /// The schema.
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// `POST /v1/chat/completions` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// Model alias.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Legacy answer limit.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Answer limit.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Stream as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Structured output.
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// Number of choices; only 1 is supported.
    #[serde(default)]
    pub n: Option<u32>,
    /// Tool definitions; not supported.
    #[serde(default)]
    pub tools: Option<serde_json::Value>,
    /// Legacy function definitions; not supported.
    #[serde(default)]
    pub functions: Option<serde_json::Value>,
}

/// Token usage in OpenAI's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatUsage {
    /// Input tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub completion_tokens: u32,
    /// Both.
    pub total_tokens: u32,
}

/// An answer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAnswerMessage {
    /// Always `assistant`.
    pub role: String,
    /// The answer text.
    pub content: String,
}

/// One choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: ChatAnswerMessage,
    /// `stop`, `length` or `content_filter`.
    pub finish_reason: String,
}

/// Causeway's additions to an OpenAI response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CausewayExtension {
    /// The audit record of this call.
    pub audit_id: String,
    /// True when the local development model answered.
    pub development_model: bool,
    /// What the guards did.
    pub guards: crate::guard::GuardReport,
}

/// `POST /v1/chat/completions` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    /// `chatcmpl-<audit id>`.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The alias.
    pub model: String,
    /// One choice.
    pub choices: Vec<ChatChoice>,
    /// Usage.
    pub usage: ChatUsage,
    /// Causeway's additions.
    pub causeway: CausewayExtension,
}

/// A streamed delta.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatDelta {
    /// Set on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One streamed choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChunkChoice {
    /// Always 0.
    pub index: u32,
    /// The delta.
    pub delta: ChatDelta,
    /// Set on the last content chunk.
    pub finish_reason: Option<String>,
}

/// One `chat.completion.chunk` server-sent event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Same id on every chunk of a call.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The alias.
    pub model: String,
    /// Zero or one choice (zero on the usage chunk).
    pub choices: Vec<ChatChunkChoice>,
    /// Only on the final usage chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
}
