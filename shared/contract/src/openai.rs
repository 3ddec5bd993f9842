//! The subset of the OpenAI chat completions and embeddings APIs the hub speaks, so the official OpenAI SDKs
//! work unchanged with `base_url` pointed at the hub.
//!
//! Unknown request fields are accepted and ignored (the SDKs send many optional ones), except those that would
//! change what the call does and that the hub does not support (legacy `functions`, several choices, remote
//! image URLs, uploaded file ids): those are refused by the hub with a message naming the field.

use serde::{Deserialize, Serialize};

/// Message content: a string, or a list of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatContent {
    /// Plain text.
    Text(String),
    /// Typed parts.
    Parts(Vec<ChatContentPart>),
}

/// One typed content part: `text`, `image_url` (a `data:` URI) or `file` (`file_data`, a `data:` URI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatContentPart {
    /// The part type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text, for `text` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The image, for `image_url` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ChatImageUrl>,
    /// The file, for `file` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<ChatFile>,
}

/// `image_url` of an image part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatImageUrl {
    /// A `data:image/...;base64,...` URI (remote URLs are refused: the hub fetches nothing for a caller).
    pub url: String,
    /// `auto`, `low` or `high`; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `file` of a file part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatFile {
    /// The file as a `data:<media type>;base64,...` URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    /// An uploaded file's id; not supported (the hub keeps no files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// A tool call the model made, in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatToolCall {
    /// The call id; the `tool` message with the result carries it as `tool_call_id`.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function called.
    pub function: ChatFunctionCall,
}

/// The function of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatFunctionCall {
    /// The function name.
    pub name: String,
    /// The arguments: a JSON object serialised as a string.
    pub arguments: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The content.
    #[serde(default)]
    pub content: Option<ChatContent>,
    /// Tool calls of an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ChatToolCall>>,
    /// For `tool` messages: the call this is the result of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    #[serde(default)]
    pub function: Option<ChatFunction>,
}

/// A function definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatFunction {
    /// The function name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments; an empty object schema when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Strict schema adherence; accepted and passed on as a hint only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
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
    /// Tools the model may call.
    #[serde(default)]
    pub tools: Option<Vec<ChatTool>>,
    /// `none`, `auto`, `required`, or `{"type":"function","function":{"name":…}}`.
    #[serde(default)]
    pub tool_choice: Option<serde_json::Value>,
    /// Whether the model may call several tools in one answer; `false` is passed on as a single-call hint.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// Legacy function definitions; refused with a message pointing to `tools`.
    #[serde(default)]
    pub functions: Option<serde_json::Value>,
    /// Stop sequences: a string or a list of strings.
    #[serde(default)]
    pub stop: Option<serde_json::Value>,
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
    /// The answer text; `null` when the model only called tools.
    pub content: Option<String>,
    /// The model's tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ChatToolCall>>,
}

/// One choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: ChatAnswerMessage,
    /// `stop`, `length`, `tool_calls` or `content_filter`.
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
    /// Tool-call fragments: the first for a call carries its index, id and name, later ones argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ChatToolCallDelta>>,
}

/// A streamed fragment of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatToolCallDelta {
    /// The call's position among the answer's tool calls.
    pub index: u32,
    /// The call id, on its first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on its first fragment.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (first fragment) and argument text.
    pub function: ChatFunctionDelta,
}

/// A streamed fragment of a function call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatFunctionDelta {
    /// The function name, on the first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// More argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
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

// === embeddings ===

/// `input` of an embeddings request: one text or several. Token arrays are refused (the hub guards text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// Several texts, embedded in order.
    Texts(Vec<String>),
    /// Token ids: refused.
    Tokens(Vec<serde_json::Value>),
}

/// `POST /v1/embeddings` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// An embedding model alias.
    pub model: String,
    /// What to embed.
    pub input: EmbeddingInput,
    /// Shorter vectors, where the model supports them; at most the catalog's `dimensions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// `float` (default) or `base64` (little-endian 32-bit floats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Accepted, no effect (the hub identifies the user from the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One vector, as numbers or as base64 of little-endian 32-bit floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: "float"`.
    Float(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

/// One embedding of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: String,
    /// The position of its input.
    pub index: u32,
    /// The vector.
    pub embedding: EmbeddingVector,
}

/// `usage` of an embeddings answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    /// Input tokens.
    pub prompt_tokens: u32,
    /// The same: embeddings have no output tokens.
    pub total_tokens: u32,
}

/// `POST /v1/embeddings` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// Always `list`.
    pub object: String,
    /// One per input, in order.
    pub data: Vec<Embedding>,
    /// The alias.
    pub model: String,
    /// Token usage.
    pub usage: EmbeddingUsage,
    /// The audit record and what the guards did.
    pub causeway: CausewayExtension,
}
