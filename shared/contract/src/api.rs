//! The native invoke API: `POST /v1/invoke`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::content::{ContentBlock, ToolChoice, ToolDefinition};
pub use crate::content::{Message, Role, TokenUsage};
use crate::guard::GuardReport;

/// Most stop sequences a call may carry: what every provider the hub serves accepts (OpenAI-compatible
/// upstreams take at most four).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// Longest stop sequence, in characters.
pub const MAX_STOP_SEQUENCE_CHARS: usize = 100;

/// A governed model call in the hub's native form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// A model alias from the catalog, never a provider model id or ARN.
    pub model: String,
    /// The declared purpose of the call, from the purpose catalog.
    pub purpose: String,
    /// The conversation; at least one `user` message. A message's `content` is a string or a list of
    /// content blocks (text, image, document, tool use, tool result).
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// Which tools the model may or must call; `auto` when tools are offered and this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Upper bound on answer tokens; clamped to the catalog's limit for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Texts that end the answer when the model produces one (not included in the answer, which then stops
    /// with `stop_sequence`): at most [`MAX_STOP_SEQUENCES`], each 1 to [`MAX_STOP_SEQUENCE_CHARS`]
    /// characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    /// A JSON Schema the answer must validate against; the answer is then returned as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<serde_json::Value>,
    /// Source passages the answer should be grounded in; the hub scores the answer against them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<String>>,
}

/// The answer to a governed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeResponse {
    /// The id of the audit record written for this call.
    pub audit_id: Uuid,
    /// The alias the caller asked for.
    pub model: String,
    /// The provider model that answered.
    pub model_id: String,
    /// True when the answer came from the local development model, never a real model.
    pub development_model: bool,
    /// The answer text, after output guards: the text of the answer's text blocks.
    pub answer: String,
    /// The answer's blocks, after output guards: text and the model's tool calls, in order.
    pub content: Vec<ContentBlock>,
    /// The answer parsed as JSON, when a `response_schema` was given and the answer validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<serde_json::Value>,
    /// Why the model stopped: `end_turn`, `max_tokens`, `stop_sequence`, `tool_use` or `content_filtered`.
    pub stop_reason: String,
    /// Token usage.
    pub usage: TokenUsage,
    /// What the guards found and did (types and counts, never values).
    pub guards: GuardReport,
}

/// One model the caller may use, as listed by `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The alias to put in `model`.
    pub id: String,
    /// Always `model`, for OpenAI clients.
    pub object: String,
    /// Always `causeway`.
    pub owned_by: String,
    /// Human description from the catalog.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Largest answer the catalog allows (for an embedding model, the longest input text).
    pub max_tokens: u32,
    /// `chat` or `embedding`.
    pub kind: crate::catalog::ModelKind,
    /// Embedding models: the length of their vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
}

/// `GET /v1/models` body (OpenAI list shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models.
    pub data: Vec<ModelInfo>,
}
