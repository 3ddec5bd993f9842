//! The subset of the Amazon Bedrock Runtime API the hub speaks (`Converse` and `ConverseStream`), so code
//! written against `boto3.client("bedrock-runtime")` or another AWS SDK works with only its endpoint changed.
//!
//! These are the wire shapes as the AWS SDKs send them (REST-JSON: camelCase members, unions as objects
//! with exactly one member, blobs as base64 strings); the hub maps them to the content model
//! ([`crate::content`]) and refuses, with a message naming the member, what it cannot honour. The rules:
//! - Unknown top-level members are ignored, as newer SDKs add optional members.
//! - Members that only tune how a provider serves a call are accepted and have no effect: `cachePoint`
//!   blocks (prompt caching), `requestMetadata` (the hub identifies the caller itself), `performanceConfig`,
//!   `temperature` and `topP` (the provider's defaults apply).
//! - `guardrailConfig` is refused: the hub applies its own guardrail to every call and never one the caller
//!   names. So are `additionalModelRequestFields` and `additionalModelResponseFieldPaths` (model-specific
//!   parameters the hub cannot check), `promptVariables` (prompt management), `guardContent`, `video`,
//!   `reasoningContent` and `citationsContent` blocks, and any source other than inline bytes (an
//!   `s3Location` would have the hub fetch data on the caller's behalf).
//!
//! Errors are Bedrock's: the status, an `x-amzn-errortype` header naming the exception
//! ([`exception_name`]) and a body `{"message": …}`, so the SDKs raise `ValidationException`,
//! `AccessDeniedException`, `ThrottlingException` and the rest as they would against Bedrock.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::content::StopReason;
use crate::error::ErrorCode;

// === request ===

/// `POST /model/{modelId}/converse` and `/converse-stream` bodies.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    /// The conversation.
    #[serde(default)]
    pub messages: Vec<ConverseMessage>,
    /// System prompts.
    #[serde(default)]
    pub system: Vec<SystemBlock>,
    /// Answer length, stop sequences and sampling.
    #[serde(default)]
    pub inference_config: Option<InferenceConfiguration>,
    /// Tools the model may call.
    #[serde(default)]
    pub tool_config: Option<ToolConfiguration>,
    /// Refused: the hub applies its own guardrail.
    #[serde(default)]
    pub guardrail_config: Option<Value>,
    /// Refused: model-specific parameters.
    #[serde(default)]
    pub additional_model_request_fields: Option<Value>,
    /// Refused: model-specific answer fields.
    #[serde(default)]
    pub additional_model_response_field_paths: Option<Value>,
    /// Refused: prompt management.
    #[serde(default)]
    pub prompt_variables: Option<Value>,
    /// Accepted, no effect.
    #[serde(default)]
    pub request_metadata: Option<Value>,
    /// Accepted, no effect.
    #[serde(default)]
    pub performance_config: Option<Value>,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// The turn's blocks.
    pub content: Vec<ContentBlock>,
}

/// A content block: an object with exactly one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentBlock {
    /// Text.
    Text(String),
    /// An image.
    Image(ImageBlock),
    /// A document.
    Document(DocumentBlock),
    /// A tool call the model made.
    ToolUse(ToolUseBlock),
    /// The result of a tool call.
    ToolResult(ToolResultBlock),
    /// A prompt-caching checkpoint (no effect).
    CachePoint(Value),
    /// Refused.
    GuardContent(Value),
    /// Refused.
    Video(Value),
    /// Refused.
    ReasoningContent(Value),
    /// Refused.
    CitationsContent(Value),
}

/// Where a block's bytes are: inline (`bytes`, base64 on the wire), or elsewhere (refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The bytes, base64.
    Bytes(String),
    /// A document's text (documents only).
    Text(String),
    /// Refused: the hub fetches nothing on a caller's behalf.
    S3Location(Value),
    /// Refused.
    Content(Value),
}

/// `image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: String,
    /// The bytes.
    pub source: Source,
}

/// `document`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentBlock {
    /// `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt` or `md`.
    #[serde(default)]
    pub format: Option<String>,
    /// The name the model sees.
    pub name: String,
    /// The bytes or text.
    pub source: Source,
    /// Refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Value>,
    /// Refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// `toolUse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseBlock {
    /// The call id.
    pub tool_use_id: String,
    /// The tool.
    pub name: String,
    /// The arguments.
    pub input: Value,
}

/// `toolResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultBlock {
    /// The call this answers.
    pub tool_use_id: String,
    /// What the tool returned.
    pub content: Vec<ToolResultContent>,
    /// `success` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One block of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent {
    /// Text.
    Text(String),
    /// A JSON document.
    Json(Value),
    /// An image.
    Image(ImageBlock),
    /// A document.
    Document(DocumentBlock),
    /// Refused.
    Video(Value),
}

/// A system prompt block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SystemBlock {
    /// Text.
    Text(String),
    /// A prompt-caching checkpoint (no effect).
    CachePoint(Value),
    /// Refused.
    GuardContent(Value),
}

/// `inferenceConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfiguration {
    /// Largest answer, in tokens; clamped to the catalog's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Accepted, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Accepted, no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Text that ends the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

/// `toolConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfiguration {
    /// The tools.
    pub tools: Vec<Tool>,
    /// Which tools the model may or must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// A tool: an object with exactly one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tool {
    /// A tool the caller runs.
    ToolSpec(ToolSpecification),
    /// A prompt-caching checkpoint (no effect).
    CachePoint(Value),
    /// Refused: tools the provider runs.
    SystemTool(Value),
}

/// `toolSpec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpecification {
    /// The tool's name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{"json": <JSON Schema>}`.
    pub input_schema: ToolInputSchema,
}

/// `inputSchema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInputSchema {
    /// The JSON Schema of the arguments.
    pub json: Value,
}

/// `toolChoice`: `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolChoice {
    /// The model decides.
    Auto(Value),
    /// The model must call a tool.
    Any(Value),
    /// The model must call this tool.
    Tool(SpecificTool),
}

/// `toolChoice.tool`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecificTool {
    /// The tool's name.
    pub name: String,
}

// === answer ===

/// The `Converse` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    /// `{"message": …}`.
    pub output: ConverseOutput,
    /// Why the model stopped ([`stop_reason`]).
    pub stop_reason: String,
    /// Token usage.
    pub usage: TokenUsage,
    /// Latency.
    pub metrics: Metrics,
}

/// `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseOutput {
    /// The assistant's turn: text and tool-use blocks.
    pub message: ConverseMessage,
}

/// `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Answer tokens.
    pub output_tokens: u32,
    /// Both.
    pub total_tokens: u32,
}

impl From<crate::content::TokenUsage> for TokenUsage {
    fn from(u: crate::content::TokenUsage) -> Self {
        Self {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            total_tokens: u.total(),
        }
    }
}

/// `metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Milliseconds the call took at the hub.
    pub latency_ms: u64,
}

/// Bedrock's `stopReason` for ours.
pub fn stop_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFiltered => "content_filtered",
    }
}

// === stream ===

/// One event of a `ConverseStream` answer; its name is the frame's `:event-type` header and the payload is
/// the JSON of the variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StreamEvent {
    /// `messageStart`.
    MessageStart {
        /// Always `assistant`.
        role: String,
    },
    /// `contentBlockStart`: a tool call begins (text blocks start with their first delta).
    #[serde(rename_all = "camelCase")]
    ContentBlockStart {
        /// `{"toolUse": {"toolUseId", "name"}}`.
        start: Value,
        /// The block's position in the answer.
        content_block_index: u32,
    },
    /// `contentBlockDelta`: `{"text": …}` or `{"toolUse": {"input": <JSON fragment>}}`.
    #[serde(rename_all = "camelCase")]
    ContentBlockDelta {
        /// The delta.
        delta: Value,
        /// The block's position in the answer.
        content_block_index: u32,
    },
    /// `contentBlockStop`.
    #[serde(rename_all = "camelCase")]
    ContentBlockStop {
        /// The block's position in the answer.
        content_block_index: u32,
    },
    /// `messageStop`.
    #[serde(rename_all = "camelCase")]
    MessageStop {
        /// Why the model stopped.
        stop_reason: String,
    },
    /// `metadata`: usage and latency, last.
    Metadata {
        /// Token usage.
        usage: TokenUsage,
        /// Latency.
        metrics: Metrics,
    },
}

impl StreamEvent {
    /// The `:event-type` header.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "messageStart",
            Self::ContentBlockStart { .. } => "contentBlockStart",
            Self::ContentBlockDelta { .. } => "contentBlockDelta",
            Self::ContentBlockStop { .. } => "contentBlockStop",
            Self::MessageStop { .. } => "messageStop",
            Self::Metadata { .. } => "metadata",
        }
    }
}

// === errors ===

/// The Bedrock exception an SDK raises for a hub error code: the `x-amzn-errortype` header of an error
/// answer (and, lower-camel-cased, the `:exception-type` of an error inside a stream).
pub fn exception_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::MethodNotAllowed
        | ErrorCode::UnsupportedMediaType
        | ErrorCode::PayloadTooLarge => "ValidationException",
        ErrorCode::Unauthenticated | ErrorCode::Forbidden | ErrorCode::GuardBlocked => {
            "AccessDeniedException"
        }
        ErrorCode::ModelNotFound | ErrorCode::NotFound => "ResourceNotFoundException",
        ErrorCode::BudgetExceeded => "ThrottlingException",
        ErrorCode::ModelError => "ModelErrorException",
        ErrorCode::AuditUnavailable | ErrorCode::ModelUnavailable => "ServiceUnavailableException",
        ErrorCode::Timeout => "ModelTimeoutException",
        ErrorCode::Internal => "InternalServerException",
    }
}

/// Bedrock's status for an exception: the hub's own status except where Bedrock's differs (an
/// unauthenticated call is Bedrock's 403, a timeout its 408, a model error its 424).
pub fn exception_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::Unauthenticated => 403,
        ErrorCode::Timeout => 408,
        ErrorCode::ModelError => 424,
        ErrorCode::PayloadTooLarge => 400,
        other => other.http_status(),
    }
}

/// Bedrock's error body: `{"message": …}`, with the hub's audit id alongside when a record was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// One line naming the problem.
    pub message: String,
    /// The audit record of the refused call, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A request as boto3 serialises `converse(...)`: system, a tool round trip with a JSON tool result, an
    /// image and a document as base64, inference settings and a tool choice.
    #[test]
    fn reads_a_request_as_boto3_sends_it() {
        let body = json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "Weather?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                    {"document": {"format": "txt", "name": "notes", "source": {"bytes": "aGVsbG8="}}},
                    {"cachePoint": {"type": "default"}}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Leeds"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp_c": 14}}], "status": "success"}}
                ]}
            ],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 256, "temperature": 0.2, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                           "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"tool": {"name": "get_weather"}}
            },
            "requestMetadata": {"team": "claims"},
            "someFutureMember": true
        });
        let request: ConverseRequest = serde_json::from_value(body).unwrap();
        assert_eq!(request.messages.len(), 3);
        assert_eq!(request.system, vec![SystemBlock::Text("Be brief.".into())]);
        assert!(matches!(
            &request.messages[0].content[1],
            ContentBlock::Image(ImageBlock { format, source: Source::Bytes(_) }) if format == "png"
        ));
        assert!(matches!(
            &request.messages[2].content[0],
            ContentBlock::ToolResult(ToolResultBlock { content, .. })
                if content[0] == ToolResultContent::Json(json!({"temp_c": 14}))
        ));
        let tools = request.tool_config.unwrap();
        assert_eq!(
            tools.tool_choice,
            Some(ToolChoice::Tool(SpecificTool {
                name: "get_weather".into()
            }))
        );
        assert_eq!(
            request.inference_config.unwrap().stop_sequences,
            vec!["END"]
        );
    }

    #[test]
    fn an_unknown_block_kind_is_named() {
        let body = json!({"messages": [{"role": "user", "content": [{"hologram": {}}]}]});
        let err = serde_json::from_value::<ConverseRequest>(body).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `hologram`"),
            "{err}"
        );
    }

    #[test]
    fn stream_events_serialise_as_bedrock_sends_them() {
        let start = StreamEvent::ContentBlockStart {
            start: json!({"toolUse": {"toolUseId": "t1", "name": "get_weather"}}),
            content_block_index: 1,
        };
        assert_eq!(start.name(), "contentBlockStart");
        assert_eq!(
            serde_json::to_value(&start).unwrap(),
            json!({"start": {"toolUse": {"toolUseId": "t1", "name": "get_weather"}}, "contentBlockIndex": 1})
        );
        let stop = StreamEvent::MessageStop {
            stop_reason: "tool_use".into(),
        };
        assert_eq!(
            serde_json::to_value(&stop).unwrap(),
            json!({"stopReason": "tool_use"})
        );
        let metadata = StreamEvent::Metadata {
            usage: crate::content::TokenUsage {
                input_tokens: 3,
                output_tokens: 4,
            }
            .into(),
            metrics: Metrics { latency_ms: 12 },
        };
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            json!({"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "metrics": {"latencyMs": 12}})
        );
    }

    #[test]
    fn every_error_code_has_an_exception_the_sdks_know() {
        assert_eq!(
            exception_name(ErrorCode::Forbidden),
            "AccessDeniedException"
        );
        assert_eq!(
            exception_name(ErrorCode::BudgetExceeded),
            "ThrottlingException"
        );
        assert_eq!(exception_status(ErrorCode::Unauthenticated), 403);
        assert_eq!(exception_status(ErrorCode::Timeout), 408);
        assert_eq!(exception_status(ErrorCode::BudgetExceeded), 429);
    }
}
