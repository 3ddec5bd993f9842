//! The subset of the OpenAI Responses API the hub speaks (`POST /v1/responses`, complete and streamed), so the
//! official OpenAI SDKs' `responses.create` works unchanged with `base_url` pointed at the hub.
//!
//! These are the wire shapes only; the hub maps them to the content model ([`crate::content`]) and refuses,
//! with a message naming the field, what it cannot honour. The rules it applies:
//! - Unknown fields are ignored: the SDKs add optional fields release by release.
//! - Honoured: `input` (a string, or `message`, `function_call` and `function_call_output` items),
//!   `instructions` (placed after the hub's guardrail instructions), function `tools`, `tool_choice`,
//!   `text.format` (`json_schema` becomes the call's response schema, `json_object` asks for any JSON
//!   object), `max_output_tokens` and `stream`.
//! - Accepted and without effect: `temperature` and `top_p` (the provider's defaults apply; the answer echoes
//!   them), `metadata` (echoed), `parallel_tool_calls` (the model decides how many tools it calls),
//!   `user`, `safety_identifier` and `prompt_cache_key` (the hub identifies the user from the token),
//!   `truncation`, `reasoning` and `text.verbosity`, `include` and `top_logprobs` (answers carry no reasoning
//!   items and no log probabilities), `service_tier`, `prompt_cache_retention`, `max_tool_calls` (the hub runs
//!   no built-in tools), `stream_options`, `store` (the hub keeps no answer to fetch later: answers say
//!   `store: false`), a tool's `strict` (the schema is passed on; the answer is not constrained by it), and
//!   `reasoning` items in `input` (left out of the conversation, as they are earlier turns' thinking).
//! - Refused: `previous_response_id` and `conversation`, and `item_reference` items (the hub keeps no
//!   conversation state: send the history in `input`), `background: true`, `prompt` (stored prompt
//!   templates), `context_management`, `moderation`, tools other than `function` (web search, file search,
//!   computer use, MCP, code interpreter, image generation, shell, custom tools: the hub runs none of them) and
//!   the items those tools produce, images other than a `data:` URI in `image_url`, and files other than a
//!   `data:` URI in `file_data` (the hub fetches nothing on a caller's behalf and keeps no files).
//!
//! Errors before an answer starts are the hub's own body, `{"error":{"code","message","audit_id"}}`, which the
//! OpenAI SDKs read as an API error and raise as the exception class for the status. A streamed answer that
//! fails after it started ends with an `error` event carrying the hub's code and the audit id, then
//! `response.failed`.

use serde::de::{self, Deserializer};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};

pub use crate::anthropic::TextOr;
use crate::content::StopReason;
use crate::error::ErrorCode;
use crate::guard::GuardReport;

// === request ===

/// Who wrote an input message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputRole {
    /// The end user.
    User,
    /// An earlier model turn.
    Assistant,
    /// Instructions from the application, after the hub's guardrail instructions.
    System,
    /// Instructions from the application (OpenAI's newer name for `system`).
    Developer,
}

impl InputRole {
    /// The role as named on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::System => "system",
            Self::Developer => "developer",
        }
    }
}

/// One content part of an input message, or of a function call's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    InputText {
        /// The text.
        text: String,
    },
    /// An image. Only `image_url` holding a `data:` URI is accepted.
    InputImage {
        /// A `data:image/…;base64,…` URI; a remote URL is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        /// An uploaded file's id; refused (the hub keeps no files).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        /// `low`, `high` or `auto`; accepted and not used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A file. Only `file_data` holding a `data:` URI is accepted.
    InputFile {
        /// The file as a `data:<media type>;base64,…` URI.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_data: Option<String>,
        /// An uploaded file's id; refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        /// A URL for the provider to fetch; refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_url: Option<String>,
        /// The file name; the model sees it, and its extension names the format when the media type does
        /// not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// Text of an earlier answer (in `assistant` messages). `annotations` and `logprobs` are ignored.
    OutputText {
        /// The text.
        text: String,
    },
    /// A refusal in an earlier answer (in `assistant` messages), taken as its text.
    Refusal {
        /// What the model said.
        refusal: String,
    },
}

/// A `message` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputMessage {
    /// `user`, `assistant`, `system` or `developer`.
    pub role: InputRole,
    /// A string, or a list of content parts.
    pub content: TextOr<ContentPart>,
}

/// A `function_call` item: a call an earlier answer made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    /// The call id; the matching `function_call_output` carries it.
    pub call_id: String,
    /// The function's name.
    pub name: String,
    /// The arguments: a JSON object serialised as a string.
    pub arguments: String,
}

/// A `function_call_output` item: the application's result of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    /// The id of the call this answers.
    pub call_id: String,
    /// The result: a string, or `input_text`, `input_image` and `input_file` parts.
    pub output: TextOr<ContentPart>,
}

/// One item of `input`. An item without `type` but with a `role` is a message, as the API takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum InputItem {
    /// A message.
    Message(InputMessage),
    /// A function call from an earlier answer.
    FunctionCall(FunctionCallItem),
    /// The result of a function call.
    FunctionCallOutput(FunctionCallOutputItem),
    /// An earlier answer's reasoning; left out of the conversation.
    Reasoning,
    /// A reference to a stored item; refused (the hub keeps no conversation state).
    ItemReference {
        /// The referenced item's id.
        id: String,
    },
    /// An item of another type (a built-in tool's call or output); refused.
    Unsupported {
        /// Its `type`.
        kind: String,
    },
}

impl InputItem {
    /// The item's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Message(_) => "message",
            Self::FunctionCall(_) => "function_call",
            Self::FunctionCallOutput(_) => "function_call_output",
            Self::Reasoning => "reasoning",
            Self::ItemReference { .. } => "item_reference",
            Self::Unsupported { kind } => kind,
        }
    }
}

/// An item's fields as `T`; the error keeps serde's message (which names the field).
fn read_item<T: serde::de::DeserializeOwned, E: de::Error>(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<T, E> {
    serde_json::from_value(serde_json::Value::Object(object)).map_err(E::custom)
}

impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let kind = match object.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            None | Some(serde_json::Value::Null) if object.contains_key("role") => {
                "message".to_owned()
            }
            None | Some(serde_json::Value::Null) => return Err(de::Error::missing_field("type")),
            Some(_) => return Err(de::Error::custom("`type` must be a string")),
        };
        Ok(match kind.as_str() {
            "message" => Self::Message(read_item(object)?),
            "function_call" => Self::FunctionCall(read_item(object)?),
            "function_call_output" => Self::FunctionCallOutput(read_item(object)?),
            "reasoning" => Self::Reasoning,
            "item_reference" => Self::ItemReference {
                id: object
                    .get("id")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            },
            _ => Self::Unsupported { kind },
        })
    }
}

impl Serialize for InputItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let body = match self {
            Self::Message(m) => serde_json::to_value(m),
            Self::FunctionCall(c) => serde_json::to_value(c),
            Self::FunctionCallOutput(o) => serde_json::to_value(o),
            Self::ItemReference { id } => Ok(serde_json::json!({ "id": id })),
            Self::Reasoning | Self::Unsupported { .. } => Ok(serde_json::json!({})),
        };
        let mut body = body.map_err(ser::Error::custom)?;
        if let Some(object) = body.as_object_mut() {
            object.insert("type".to_owned(), self.kind().into());
        }
        body.serialize(serializer)
    }
}

/// A tool offered to the model. Only `function` tools are accepted; the other types are read so that they can
/// be refused by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments; an empty object schema when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Strict schema adherence; accepted and not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`: `auto`, `required` or `none`, or a named function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoiceParam {
    /// `auto`, `required` or `none`.
    Mode(String),
    /// `{"type":"function","name":…}`; other types (`allowed_tools`, built-in tools, `mcp`, `custom`) are
    /// refused.
    Named {
        /// `function`.
        #[serde(rename = "type")]
        kind: String,
        /// The function's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl Default for ToolChoiceParam {
    fn default() -> Self {
        Self::Mode("auto".to_owned())
    }
}

/// `text.format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The schema's name (`json_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The JSON Schema the answer must validate against (`json_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// What the format is for (`json_schema`); accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Strict schema adherence (`json_schema`); the hub validates the answer against the schema whatever
    /// its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `text`: the answer's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// The format; plain text when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    /// `low`, `medium` or `high`; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            format: Some(TextFormat {
                kind: "text".to_owned(),
                name: None,
                schema: None,
                description: None,
                strict: None,
            }),
            verbosity: None,
        }
    }
}

/// `POST /v1/responses` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateResponseRequest {
    /// Model alias.
    pub model: String,
    /// The conversation: a string (one user message) or a list of items. Required: the hub keeps no
    /// conversation state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<TextOr<InputItem>>,
    /// System instructions, after the hub's guardrail instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Which tools the model may or must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoiceParam>,
    /// The answer's format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    /// Upper bound on answer tokens; clamped to the catalog's limit for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Whether to store the answer for later retrieval; accepted, and nothing is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// An earlier answer to continue from; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// A stored conversation to continue; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<serde_json::Value>,
    /// Run in the background; `true` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<bool>,
    /// A stored prompt template; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<serde_json::Value>,
    /// Server-side compaction; refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<serde_json::Value>,
    /// OpenAI's moderation of the call; refused (the hub's guards check every call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<serde_json::Value>,
    /// Sampling temperature; accepted, not passed on, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling; accepted, not passed on, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Key-value pairs; accepted and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether the model may call several tools at once; accepted and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// An end-user id; accepted and echoed (the hub identifies the user from the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `auto` or `disabled`; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<String>,
    /// Reasoning settings; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<serde_json::Value>,
    /// Extra output to include; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Processing tier; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Prompt cache key; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// An end-user id for abuse detection; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
    /// Limit on built-in tool calls; accepted and not used (the hub runs no built-in tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u32>,
    /// Log probabilities to return; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
}

// === response ===

/// The state of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Streaming.
    InProgress,
    /// Answered in full.
    Completed,
    /// Answered in part ([`IncompleteDetails`] says why).
    Incomplete,
    /// Ended by an error.
    Failed,
}

/// The state of an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Streaming.
    InProgress,
    /// Complete.
    Completed,
    /// Cut short.
    Incomplete,
}

/// One content part of an output message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// Answer text.
    OutputText {
        /// The text (`""` in `response.content_part.added`).
        text: String,
        /// Always empty: the hub's answers carry no citations.
        annotations: Vec<serde_json::Value>,
        /// Always empty: the hub returns no log probabilities.
        #[serde(default)]
        logprobs: Vec<serde_json::Value>,
    },
}

impl OutputContent {
    /// An `output_text` part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::OutputText {
            text: text.into(),
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }
}

/// One item of `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// The model's text.
    Message {
        /// `msg_…`.
        id: String,
        /// The item's state.
        status: ItemStatus,
        /// Always `assistant`.
        role: String,
        /// One `output_text` part (none in `response.output_item.added`).
        content: Vec<OutputContent>,
    },
    /// A function the model calls.
    FunctionCall {
        /// `fc_…`, the item's id.
        id: String,
        /// The call id; the application's `function_call_output` carries it.
        call_id: String,
        /// The function's name.
        name: String,
        /// The arguments: a JSON object serialised as a string (`""` in `response.output_item.added`).
        arguments: String,
        /// The item's state.
        status: ItemStatus,
    },
}

impl OutputItem {
    /// The item's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Message { id, .. } | Self::FunctionCall { id, .. } => id,
        }
    }
}

/// Why a response is incomplete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: String,
}

/// What ended a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseError {
    /// OpenAI's code ([`failure_code`]).
    pub code: String,
    /// One lowercase line for people; never contains prompt text, tokens or PII.
    pub message: String,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Tokens read from a prompt cache (the hub caches nothing: 0).
    pub cached_tokens: u32,
    /// Tokens written to a prompt cache (0).
    #[serde(default)]
    pub cache_write_tokens: u32,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Reasoning tokens (answers carry no reasoning: 0).
    pub reasoning_tokens: u32,
}

/// Token usage in the Responses API's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u32,
    /// Their breakdown.
    pub input_tokens_details: InputTokensDetails,
    /// Output tokens.
    pub output_tokens: u32,
    /// Their breakdown.
    pub output_tokens_details: OutputTokensDetails,
    /// Both.
    pub total_tokens: u32,
}

impl Usage {
    /// Usage of `input` and `output` tokens.
    pub fn new(input: u32, output: u32) -> Self {
        Self {
            input_tokens: input,
            input_tokens_details: InputTokensDetails::default(),
            output_tokens: output,
            output_tokens_details: OutputTokensDetails::default(),
            total_tokens: input.saturating_add(output),
        }
    }
}

/// Causeway's additions to a response; the SDKs keep unknown fields on the object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CausewayExtension {
    /// The audit record of this call.
    pub audit_id: String,
    /// True when the local development model answered.
    pub development_model: bool,
    /// What the guards did (once the answer is complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guards: Option<GuardReport>,
}

/// The response object: the answer to `POST /v1/responses`, and the `response` of the lifecycle stream
/// events. Fields the SDKs require are always present; the request's settings are echoed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// `resp_<audit id>`.
    pub id: String,
    /// Always `response`.
    pub object: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The state.
    pub status: ResponseStatus,
    /// Unix seconds, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// What ended a failed response.
    pub error: Option<ResponseError>,
    /// Why the response is incomplete.
    pub incomplete_details: Option<IncompleteDetails>,
    /// The request's `instructions`.
    pub instructions: Option<String>,
    /// The request's `max_output_tokens`.
    pub max_output_tokens: Option<u32>,
    /// The alias.
    pub model: String,
    /// Messages and function calls, in order.
    pub output: Vec<OutputItem>,
    /// The request's `parallel_tool_calls` (default `true`).
    pub parallel_tool_calls: bool,
    /// Always `null`: the hub keeps no conversation state.
    pub previous_response_id: Option<String>,
    /// Always `false`: the hub keeps no answer to fetch later.
    pub store: bool,
    /// Always `false`.
    pub background: bool,
    /// The request's `temperature`.
    pub temperature: Option<f64>,
    /// The request's `top_p`.
    pub top_p: Option<f64>,
    /// The request's `text` (plain text by default).
    pub text: TextConfig,
    /// The request's `tool_choice` (default `auto`).
    pub tool_choice: ToolChoiceParam,
    /// The request's tools.
    pub tools: Vec<Tool>,
    /// The request's `truncation` (default `disabled`).
    pub truncation: String,
    /// Token usage, once the answer is complete.
    pub usage: Option<Usage>,
    /// The request's `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The request's `metadata`.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Causeway's additions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causeway: Option<CausewayExtension>,
}

/// The status of a response that ended with `stop`, and why it is incomplete when it is: the answer limit
/// (`max_output_tokens`) or a provider's content filter (`content_filter`).
pub fn status_for(stop: StopReason) -> (ResponseStatus, Option<IncompleteDetails>) {
    let reason = match stop {
        StopReason::MaxTokens => "max_output_tokens",
        StopReason::ContentFiltered => "content_filter",
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => {
            return (ResponseStatus::Completed, None);
        }
    };
    (
        ResponseStatus::Incomplete,
        Some(IncompleteDetails {
            reason: reason.to_owned(),
        }),
    )
}

/// OpenAI's `response.error.code` for a hub error that ended a streamed answer.
pub fn failure_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BudgetExceeded => "rate_limit_exceeded",
        ErrorCode::InvalidRequest | ErrorCode::GuardBlocked | ErrorCode::PayloadTooLarge => {
            "invalid_prompt"
        }
        _ => "server_error",
    }
}

// === streaming ===

/// One server-sent event of a streamed answer, without its sequence number ([`SequencedEvent`] adds it).
/// The SSE `event:` name is [`StreamEvent::name`], the same as the `type` in the data.
///
/// The order is `response.created`, `response.in_progress`; for each output item
/// `response.output_item.added`, then for a message `response.content_part.added`,
/// `response.output_text.delta`s, `response.output_text.done` and `response.content_part.done`, or for a
/// function call `response.function_call_arguments.delta` and `.done`; then `response.output_item.done`.
/// The stream ends with `response.completed` or `response.incomplete`, or, when it fails, with `error` then
/// `response.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    /// The response, `in_progress` with no output.
    #[serde(rename = "response.created")]
    Created {
        /// The response so far.
        response: Box<ResponseObject>,
    },
    /// The response is being generated.
    #[serde(rename = "response.in_progress")]
    InProgress {
        /// The response so far.
        response: Box<ResponseObject>,
    },
    /// An output item begins.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// The item's position in `output`.
        output_index: u32,
        /// The item, empty.
        item: OutputItem,
    },
    /// A content part of a message begins.
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: u32,
        /// The part's position in the message.
        content_index: u32,
        /// The part, empty.
        part: OutputContent,
    },
    /// More answer text.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: u32,
        /// The part's position in the message.
        content_index: u32,
        /// The text.
        delta: String,
        /// Always empty.
        #[serde(default)]
        logprobs: Vec<serde_json::Value>,
    },
    /// A text part is complete.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: u32,
        /// The part's position in the message.
        content_index: u32,
        /// The whole text.
        text: String,
        /// Always empty.
        #[serde(default)]
        logprobs: Vec<serde_json::Value>,
    },
    /// A content part is complete.
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        /// The message's id.
        item_id: String,
        /// The message's position in `output`.
        output_index: u32,
        /// The part's position in the message.
        content_index: u32,
        /// The whole part.
        part: OutputContent,
    },
    /// More of a function call's arguments.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        /// The call item's id.
        item_id: String,
        /// The call's position in `output`.
        output_index: u32,
        /// The fragment; a call's fragments concatenate to its arguments.
        delta: String,
    },
    /// A function call's arguments are complete.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// The call item's id.
        item_id: String,
        /// The call's position in `output`.
        output_index: u32,
        /// The function's name.
        name: String,
        /// The whole arguments.
        arguments: String,
    },
    /// An output item is complete.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// The item's position in `output`.
        output_index: u32,
        /// The whole item.
        item: OutputItem,
    },
    /// The answer is complete, with its usage.
    #[serde(rename = "response.completed")]
    Completed {
        /// The whole response.
        response: Box<ResponseObject>,
    },
    /// The answer stopped early (its `incomplete_details` say why).
    #[serde(rename = "response.incomplete")]
    Incomplete {
        /// The whole response.
        response: Box<ResponseObject>,
    },
    /// The answer failed; nothing follows.
    #[serde(rename = "response.failed")]
    Failed {
        /// The response, with `error`.
        response: Box<ResponseObject>,
    },
    /// An error ended the stream; `response.failed` follows.
    #[serde(rename = "error")]
    Error {
        /// The hub's error code.
        code: Option<String>,
        /// One lowercase line for people.
        message: String,
        /// The request parameter at fault; always `null`.
        param: Option<String>,
        /// The audit record of the call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audit_id: Option<String>,
    },
}

impl StreamEvent {
    /// The SSE event name: the same as the `type` in the data.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "response.created",
            Self::InProgress { .. } => "response.in_progress",
            Self::OutputItemAdded { .. } => "response.output_item.added",
            Self::ContentPartAdded { .. } => "response.content_part.added",
            Self::OutputTextDelta { .. } => "response.output_text.delta",
            Self::OutputTextDone { .. } => "response.output_text.done",
            Self::ContentPartDone { .. } => "response.content_part.done",
            Self::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::OutputItemDone { .. } => "response.output_item.done",
            Self::Completed { .. } => "response.completed",
            Self::Incomplete { .. } => "response.incomplete",
            Self::Failed { .. } => "response.failed",
            Self::Error { .. } => "error",
        }
    }
}

/// A stream event with its `sequence_number`: the data of one server-sent event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequencedEvent {
    /// The event.
    #[serde(flatten)]
    pub event: StreamEvent,
    /// The event's position in the stream, from 0.
    pub sequence_number: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A first call as the OpenAI Python SDK sends it: a string input, instructions, a strict function
    /// tool, a named tool choice, settings the hub echoes and fields it does not know.
    #[test]
    fn reads_a_first_call_as_the_sdk_sends_it() {
        let request: CreateResponseRequest = serde_json::from_value(json!({
            "model": "claude-haiku", "input": "Weather in Leeds?", "instructions": "be terse",
            "max_output_tokens": 100, "metadata": {"k": "v"}, "store": false, "temperature": 0.2,
            "tool_choice": {"type": "function", "name": "get_weather"},
            "tools": [{"type": "function", "name": "get_weather", "description": "Weather",
                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                      "required": ["city"], "additionalProperties": false},
                       "strict": true}],
            "prompt_cache_retention": "24h", "include": ["message.output_text.logprobs"],
            "reasoning": {"effort": "low"}, "truncation": "auto", "stream": true
        }))
        .unwrap();
        assert_eq!(
            request.input,
            Some(TextOr::Text("Weather in Leeds?".into()))
        );
        assert_eq!(request.instructions.as_deref(), Some("be terse"));
        assert_eq!(request.max_output_tokens, Some(100));
        assert_eq!(request.store, Some(false));
        assert_eq!(request.stream, Some(true));
        assert_eq!(
            request.tool_choice,
            Some(ToolChoiceParam::Named {
                kind: "function".into(),
                name: Some("get_weather".into())
            })
        );
        let tool = &request.tools.as_ref().unwrap()[0];
        assert_eq!(tool.kind, "function");
        assert_eq!(tool.name.as_deref(), Some("get_weather"));
        assert_eq!(tool.strict, Some(true));
        assert_eq!(
            tool.parameters.as_ref().unwrap()["required"],
            json!(["city"])
        );
        // Round trip.
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<CreateResponseRequest>(&text).unwrap(),
            request
        );
    }

    /// A tool round trip as the SDK sends it after `input += response.output`: the earlier answer's message
    /// and function call items (with their ids, statuses and annotations), then the function's output.
    #[test]
    fn reads_a_function_call_round_trip() {
        let request: CreateResponseRequest = serde_json::from_value(json!({
            "model": "m",
            "input": [
                {"role": "user", "content": "Weather in Leeds?"},
                {"id": "msg_1", "content": [{"annotations": [], "text": "Checking.", "type": "output_text"}],
                 "role": "assistant", "status": "completed", "type": "message"},
                {"arguments": "{\"city\":\"Leeds\"}", "call_id": "call_1", "name": "get_weather",
                 "type": "function_call", "id": "fc_1", "status": "completed"},
                {"type": "function_call_output", "call_id": "call_1", "output": "{\"temp_c\": 14}"},
                {"type": "function_call_output", "call_id": "call_2",
                 "output": [{"type": "input_text", "text": "no such city"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []}
            ]
        }))
        .unwrap();
        let Some(TextOr::Blocks(items)) = &request.input else {
            unreachable!("items")
        };
        assert_eq!(
            items.iter().map(InputItem::kind).collect::<Vec<_>>(),
            [
                "message",
                "message",
                "function_call",
                "function_call_output",
                "function_call_output",
                "reasoning"
            ]
        );
        assert!(matches!(
            &items[0],
            InputItem::Message(InputMessage { role: InputRole::User, content: TextOr::Text(t) }) if t == "Weather in Leeds?"
        ));
        assert!(matches!(
            &items[1],
            InputItem::Message(InputMessage { role: InputRole::Assistant, content: TextOr::Blocks(parts) })
                if parts == &[ContentPart::OutputText { text: "Checking.".into() }]
        ));
        assert_eq!(
            items[2],
            InputItem::FunctionCall(FunctionCallItem {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Leeds\"}".into(),
            })
        );
        assert!(matches!(
            &items[3],
            InputItem::FunctionCallOutput(FunctionCallOutputItem { call_id, output: TextOr::Text(t) })
                if call_id == "call_1" && t == "{\"temp_c\": 14}"
        ));
        assert!(matches!(
            &items[4],
            InputItem::FunctionCallOutput(FunctionCallOutputItem { output: TextOr::Blocks(parts), .. })
                if parts.len() == 1
        ));
        // Items serialise with their type again.
        assert_eq!(
            serde_json::to_value(&items[2]).unwrap(),
            json!({"type": "function_call", "call_id": "call_1", "name": "get_weather",
                   "arguments": "{\"city\":\"Leeds\"}"})
        );
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<CreateResponseRequest>(&text).unwrap(),
            request
        );
    }

    /// Images and files as data URIs, and structured output as `responses.parse` sends it.
    #[test]
    fn reads_images_files_and_a_json_schema() {
        let request: CreateResponseRequest = serde_json::from_value(json!({
            "model": "m",
            "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "x"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA==", "detail": "auto"},
                {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}
            ]}],
            "text": {"format": {"type": "json_schema", "strict": true, "name": "City",
                                "schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                           "required": ["city"], "additionalProperties": false}}}
        }))
        .unwrap();
        let Some(TextOr::Blocks(items)) = &request.input else {
            unreachable!("items")
        };
        let InputItem::Message(InputMessage {
            content: TextOr::Blocks(parts),
            ..
        }) = &items[0]
        else {
            unreachable!("a message")
        };
        assert!(matches!(
            &parts[1],
            ContentPart::InputImage { image_url: Some(url), file_id: None, .. } if url.starts_with("data:image/png")
        ));
        assert!(matches!(
            &parts[2],
            ContentPart::InputFile { filename: Some(name), file_data: Some(_), .. } if name == "a.pdf"
        ));
        let format = request.text.unwrap().format.unwrap();
        assert_eq!(format.kind, "json_schema");
        assert_eq!(format.name.as_deref(), Some("City"));
        assert_eq!(format.schema.unwrap()["required"], json!(["city"]));
    }

    #[test]
    fn what_the_hub_refuses_is_read_so_it_can_be_refused() {
        let request: CreateResponseRequest = serde_json::from_value(json!({
            "model": "m", "previous_response_id": "resp_0", "conversation": {"id": "conv_1"},
            "background": true, "prompt": {"id": "pmpt_1"},
            "tools": [{"type": "web_search"}, {"type": "mcp", "server_label": "x", "server_url": "https://x"}],
            "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []},
            "input": [
                {"type": "item_reference", "id": "msg_9"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
                {"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/cat.png"},
                                             {"type": "input_file", "file_id": "file-1"}]}
            ]
        }))
        .unwrap();
        assert_eq!(request.previous_response_id.as_deref(), Some("resp_0"));
        assert!(request.conversation.is_some() && request.prompt.is_some());
        assert_eq!(request.background, Some(true));
        let tools = request.tools.unwrap();
        assert_eq!(tools[0].kind, "web_search");
        assert!(tools[1].name.is_none());
        assert!(matches!(
            request.tool_choice,
            Some(ToolChoiceParam::Named { ref kind, name: None }) if kind == "allowed_tools"
        ));
        let Some(TextOr::Blocks(items)) = request.input else {
            unreachable!("items")
        };
        assert_eq!(items[0], InputItem::ItemReference { id: "msg_9".into() });
        assert_eq!(items[1].kind(), "web_search_call");
        // `null` for the conversation fields is no conversation.
        let plain: CreateResponseRequest = serde_json::from_value(
            json!({"model": "m", "input": "hi", "previous_response_id": null, "conversation": null}),
        )
        .unwrap();
        assert!(plain.previous_response_id.is_none() && plain.conversation.is_none());
    }

    #[test]
    fn errors_name_the_problem() {
        let error = |body: serde_json::Value| {
            serde_json::from_value::<CreateResponseRequest>(body)
                .unwrap_err()
                .to_string()
        };
        let part = error(
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
        );
        assert!(part.contains("input_audio"), "{part}");
        let role = error(json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}));
        assert!(
            role.contains("tool") && role.contains("developer"),
            "{role}"
        );
        let call = error(
            json!({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}),
        );
        assert!(call.contains("call_id"), "{call}");
        let untyped = error(json!({"model": "m", "input": [{"content": "x"}]}));
        assert!(untyped.contains("type"), "{untyped}");
    }

    fn response() -> ResponseObject {
        ResponseObject {
            id: "resp_0190".into(),
            object: "response".into(),
            created_at: 1_700_000_000,
            status: ResponseStatus::Completed,
            completed_at: Some(1_700_000_001),
            error: None,
            incomplete_details: None,
            instructions: None,
            max_output_tokens: None,
            model: "claude-haiku".into(),
            output: vec![
                OutputItem::Message {
                    id: "msg_0190_0".into(),
                    status: ItemStatus::Completed,
                    role: "assistant".into(),
                    content: vec![OutputContent::text("Checking.")],
                },
                OutputItem::FunctionCall {
                    id: "fc_0190_1".into(),
                    call_id: "toolu_1".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Leeds\"}".into(),
                    status: ItemStatus::Completed,
                },
            ],
            parallel_tool_calls: true,
            previous_response_id: None,
            store: false,
            background: false,
            temperature: None,
            top_p: None,
            text: TextConfig::default(),
            tool_choice: ToolChoiceParam::default(),
            tools: Vec::new(),
            truncation: "disabled".into(),
            usage: Some(Usage::new(12, 7)),
            user: None,
            metadata: serde_json::Map::new(),
            causeway: None,
        }
    }

    #[test]
    fn writes_a_response_as_the_sdk_reads_it() {
        assert_eq!(
            serde_json::to_value(response()).unwrap(),
            json!({
                "id": "resp_0190", "object": "response", "created_at": 1_700_000_000, "status": "completed",
                "completed_at": 1_700_000_001, "error": null, "incomplete_details": null,
                "instructions": null, "max_output_tokens": null, "model": "claude-haiku",
                "output": [
                    {"type": "message", "id": "msg_0190_0", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]},
                    {"type": "function_call", "id": "fc_0190_1", "call_id": "toolu_1", "name": "get_weather",
                     "arguments": "{\"city\":\"Leeds\"}", "status": "completed"}
                ],
                "parallel_tool_calls": true, "previous_response_id": null, "store": false,
                "background": false, "temperature": null, "top_p": null,
                "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
                "truncation": "disabled",
                "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                          "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
                          "total_tokens": 19},
                "metadata": {}
            })
        );
        assert_eq!(
            status_for(StopReason::MaxTokens),
            (
                ResponseStatus::Incomplete,
                Some(IncompleteDetails {
                    reason: "max_output_tokens".into()
                })
            )
        );
        assert_eq!(
            status_for(StopReason::ToolUse),
            (ResponseStatus::Completed, None)
        );
        assert_eq!(
            failure_code(ErrorCode::BudgetExceeded),
            "rate_limit_exceeded"
        );
        assert_eq!(failure_code(ErrorCode::GuardBlocked), "invalid_prompt");
        assert_eq!(failure_code(ErrorCode::ModelUnavailable), "server_error");
    }

    #[test]
    fn stream_events_carry_their_type_and_sequence_number() {
        let events = [
            StreamEvent::OutputTextDelta {
                item_id: "msg_1".into(),
                output_index: 0,
                content_index: 0,
                delta: "Hel".into(),
                logprobs: Vec::new(),
            },
            StreamEvent::FunctionCallArgumentsDone {
                item_id: "fc_1".into(),
                output_index: 1,
                name: "get_weather".into(),
                arguments: "{}".into(),
            },
            StreamEvent::Error {
                code: Some("guard_blocked".into()),
                message: "the answer was blocked".into(),
                param: None,
                audit_id: Some("0190".into()),
            },
            StreamEvent::Completed {
                response: Box::new(response()),
            },
        ];
        let values: Vec<serde_json::Value> = events
            .iter()
            .enumerate()
            .map(|(n, event)| {
                serde_json::to_value(SequencedEvent {
                    event: event.clone(),
                    sequence_number: n as u64,
                })
                .unwrap()
            })
            .collect();
        assert_eq!(
            values[..3],
            [
                json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                       "content_index": 0, "delta": "Hel", "logprobs": [], "sequence_number": 0}),
                json!({"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1,
                       "name": "get_weather", "arguments": "{}", "sequence_number": 1}),
                json!({"type": "error", "code": "guard_blocked", "message": "the answer was blocked",
                       "param": null, "audit_id": "0190", "sequence_number": 2}),
            ]
        );
        assert_eq!(values[3]["response"]["id"], "resp_0190");
        for ((event, value), n) in events.iter().zip(&values).zip(0_u64..) {
            assert_eq!(value["type"], event.name());
            let back: SequencedEvent = serde_json::from_value(value.clone()).unwrap();
            assert_eq!(back.event, *event);
            assert_eq!(back.sequence_number, n);
        }
    }
}
