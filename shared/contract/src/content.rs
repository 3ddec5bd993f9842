//! The content model: what a governed call carries and what a model answers, whatever door the call came in
//! by and whatever provider serves it.
//!
//! A conversation is a list of [`Message`]s, each a list of [`ContentBlock`]s: text, images, documents, the
//! model's tool calls and the application's tool results. A call may offer [`ToolDefinition`]s and a
//! [`ToolChoice`]; an answer ends with a [`StopReason`] and, streamed, arrives as [`ModelStreamEvent`]s.
//! Every door decodes its wire shape into these types and encodes its answer from them; every provider maps
//! them to its own API. Nothing in the governed path knows which door or provider is on either side.
//!
//! Constraints:
//! - Binary data (images, documents) is carried as bytes; on the native wire it is standard base64. The hub
//!   never fetches content from a URL on a caller's behalf.
//! - Tool results and documents are data from outside the organisation's control: the hub guards them like
//!   user text and fences them as data in the prompt.
//! - `Debug` output of blocks that carry bytes prints sizes, not contents.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// Who wrote a message in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the calling application. They are placed *after* the hub's guardrail
    /// instructions and never replace them.
    System,
    /// The end user, or the application returning tool results.
    User,
    /// Earlier model turns, including the model's tool calls.
    Assistant,
}

/// The image formats models accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageFormat {
    /// PNG.
    #[serde(rename = "image/png")]
    Png,
    /// JPEG.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// GIF.
    #[serde(rename = "image/gif")]
    Gif,
    /// WebP.
    #[serde(rename = "image/webp")]
    Webp,
}

impl ImageFormat {
    /// Every format, in a stable order.
    pub const ALL: [ImageFormat; 4] = [Self::Png, Self::Jpeg, Self::Gif, Self::Webp];

    /// The media type, e.g. `image/png`.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    /// The short name Bedrock uses, e.g. `png`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }

    /// Looks a format up by media type (`image/png`; `image/jpg` is taken as JPEG).
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let media_type = media_type.trim().to_ascii_lowercase();
        if media_type == "image/jpg" {
            return Some(Self::Jpeg);
        }
        Self::ALL.into_iter().find(|f| f.media_type() == media_type)
    }

    /// Looks a format up by its short name (`png`, `jpeg`, `jpg`, `gif`, `webp`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        if name == "jpg" {
            return Some(Self::Jpeg);
        }
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// The document formats a call may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    /// PDF; its text is extracted and scanned.
    Pdf,
    /// Word (Office Open XML); its text is extracted and scanned.
    Docx,
    /// Plain text.
    Txt,
    /// Markdown.
    Md,
    /// Comma-separated values.
    Csv,
    /// HTML.
    Html,
    /// JSON.
    Json,
    /// Legacy Word; cannot be scanned.
    Doc,
    /// Legacy Excel; cannot be scanned.
    Xls,
    /// Excel (Office Open XML); cannot be scanned.
    Xlsx,
}

impl DocumentFormat {
    /// Every format, in a stable order.
    pub const ALL: [DocumentFormat; 10] = [
        Self::Pdf,
        Self::Docx,
        Self::Txt,
        Self::Md,
        Self::Csv,
        Self::Html,
        Self::Json,
        Self::Doc,
        Self::Xls,
        Self::Xlsx,
    ];

    /// The lowercase name, e.g. `pdf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Txt => "txt",
            Self::Md => "md",
            Self::Csv => "csv",
            Self::Html => "html",
            Self::Json => "json",
            Self::Doc => "doc",
            Self::Xls => "xls",
            Self::Xlsx => "xlsx",
        }
    }

    /// Looks a format up by its name (`pdf`, `txt`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Looks a format up by media type (`application/pdf`, `text/plain`, ...).
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let base = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        Some(match base.as_str() {
            "application/pdf" => Self::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Self::Docx,
            "text/plain" => Self::Txt,
            "text/markdown" => Self::Md,
            "text/csv" => Self::Csv,
            "text/html" => Self::Html,
            "application/json" => Self::Json,
            "application/msword" => Self::Doc,
            "application/vnd.ms-excel" => Self::Xls,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Self::Xlsx,
            _ => return None,
        })
    }

    /// The media type, e.g. `application/pdf`.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Txt => "text/plain",
            Self::Md => "text/markdown",
            Self::Csv => "text/csv",
            Self::Html => "text/html",
            Self::Json => "application/json",
            Self::Doc => "application/msword",
            Self::Xls => "application/vnd.ms-excel",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// True for formats whose bytes are their text (txt, md, csv, html, json).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Self::Txt | Self::Md | Self::Csv | Self::Html | Self::Json
        )
    }
}

/// Bytes carried in a block, base64 on the wire. `Debug` prints the size only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.trim().as_bytes())
            .map(Bytes)
            .map_err(|e| de::Error::custom(format!("not standard base64: {e}")))
    }
}

/// One block of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, as bytes.
    Image {
        /// The format.
        media_type: ImageFormat,
        /// The image bytes (base64 on the wire).
        data: Bytes,
    },
    /// A document, as bytes.
    Document {
        /// The format.
        format: DocumentFormat,
        /// A name for the model to refer to it by (not a path).
        name: String,
        /// The document bytes (base64 on the wire).
        data: Bytes,
    },
    /// A tool call made by the model (in assistant turns).
    ToolUse {
        /// The call id, echoed by the matching tool result.
        id: String,
        /// The tool's name, from the call's tool definitions.
        name: String,
        /// The arguments, a JSON object.
        input: serde_json::Value,
    },
    /// The application's result of a tool call (in user turns).
    ToolResult {
        /// The id of the tool use this answers.
        tool_use_id: String,
        /// The result: text (JSON results are text holding JSON), images or documents.
        content: Vec<ContentBlock>,
        /// True when the tool failed and `content` describes the error.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// The block kind as named on the wire and in audit records: `text`, `image`, `document`, `tool_use`,
    /// `tool_result`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Document { .. } => "document",
            Self::ToolUse { .. } => "tool_use",
            Self::ToolResult { .. } => "tool_result",
        }
    }

    /// The text, for text blocks.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// One turn of a conversation.
///
/// On the wire `content` is a list of blocks, or a plain string for a single text block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The blocks, in order.
    #[serde(deserialize_with = "text_or_blocks")]
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A message of one text block.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![ContentBlock::text(text)],
        }
    }

    /// The text of the message's text blocks, joined without separator (tool results, images and documents
    /// are not included).
    pub fn joined_text(&self) -> String {
        self.content
            .iter()
            .filter_map(ContentBlock::as_text)
            .collect()
    }
}

fn text_or_blocks<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ContentBlock>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Blocks(Vec<ContentBlock>),
    }
    // An untagged enum hides the inner error; decode the string case first and report block errors as they
    // are.
    let value = serde_json::Value::deserialize(deserializer)?;
    match value {
        serde_json::Value::String(text) => Ok(vec![ContentBlock::Text { text }]),
        serde_json::Value::Array(_) => {
            serde_json::from_value::<Vec<ContentBlock>>(value).map_err(de::Error::custom)
        }
        _ => serde_json::from_value::<Content>(value)
            .map(|c| match c {
                Content::Text(text) => vec![ContentBlock::Text { text }],
                Content::Blocks(blocks) => blocks,
            })
            .map_err(|_| de::Error::custom("expected a string or a list of content blocks")),
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDefinition {
    /// The name the model calls it by: 1 to 64 characters of `a-z A-Z 0-9 _ -`.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its arguments (an object schema).
    pub input_schema: serde_json::Value,
}

impl ToolDefinition {
    /// Checks the name and that the schema is an object schema; the message names what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(format!(
                "tool name `{}` must be 1 to 64 characters of letters, digits, `_` and `-`",
                self.name.chars().take(80).collect::<String>()
            ));
        }
        if !self.input_schema.is_object() {
            return Err(format!(
                "the input schema of tool `{}` must be a JSON object",
                self.name
            ));
        }
        Ok(())
    }
}

/// Which tools the model may or must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolChoice {
    /// The model decides whether to call a tool.
    Auto,
    /// The model must call one of the tools.
    Any,
    /// The model must call this tool.
    Tool {
        /// The tool's name.
        name: String,
    },
    /// The model must not call a tool.
    None,
}

/// Why a model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Natural end of the answer.
    EndTurn,
    /// The answer limit was reached.
    MaxTokens,
    /// A stop sequence matched.
    StopSequence,
    /// The model called one or more tools and waits for their results.
    ToolUse,
    /// The provider's own content filter (e.g. a Bedrock Guardrail) intervened.
    ContentFiltered,
}

impl StopReason {
    /// The native API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence => "stop_sequence",
            Self::ToolUse => "tool_use",
            Self::ContentFiltered => "content_filtered",
        }
    }

    /// Looks a stop reason up by its native name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::EndTurn,
            Self::MaxTokens,
            Self::StopSequence,
            Self::ToolUse,
            Self::ContentFiltered,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }

    /// The OpenAI `finish_reason`.
    pub fn openai_finish_reason(self) -> &'static str {
        match self {
            Self::EndTurn | Self::StopSequence => "stop",
            Self::MaxTokens => "length",
            Self::ToolUse => "tool_calls",
            Self::ContentFiltered => "content_filter",
        }
    }
}

/// Token counts reported by the model provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Tokens in the prompt as the provider counted them.
    pub input_tokens: u32,
    /// Tokens in the answer.
    pub output_tokens: u32,
}

impl TokenUsage {
    /// Input plus output tokens.
    pub fn total(&self) -> u32 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One event of a streamed answer, from a provider or from the governed path to a door.
///
/// Tool calls are numbered from 0 in the order the model starts them (`index`); a start comes before any
/// of its input, and a call's input is the concatenation of its input fragments (a JSON object).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStreamEvent {
    /// More answer text.
    TextDelta(String),
    /// The model starts a tool call.
    ToolUseStart {
        /// The call's position among this answer's tool calls.
        index: u32,
        /// The call id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// A fragment of a tool call's JSON input.
    ToolInputDelta {
        /// The call's position among this answer's tool calls.
        index: u32,
        /// The fragment.
        partial_json: String,
    },
    /// The end, with usage.
    Done {
        /// Why it stopped.
        stop_reason: StopReason,
        /// Token usage.
        usage: TokenUsage,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_a_string_or_blocks() {
        let plain: Message = serde_json::from_str(r#"{"role":"user","content":"hi"}"#).unwrap();
        assert_eq!(plain, Message::text(Role::User, "hi"));
        let blocks: Message = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"see"},
                {"type":"image","media_type":"image/png","data":"iVBORw=="},
                {"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"{\"a\":1}"}]}]}"#,
        )
        .unwrap();
        assert_eq!(blocks.content.len(), 3);
        assert_eq!(blocks.content[1].kind(), "image");
        let ContentBlock::Image { data, .. } = &blocks.content[1] else {
            unreachable!("decoded above")
        };
        assert_eq!(format!("{data:?}"), "<4 bytes>");
        // Round trip.
        let text = serde_json::to_string(&blocks).unwrap();
        assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), blocks);
    }

    #[test]
    fn bad_blocks_name_the_problem() {
        let err = serde_json::from_str::<Message>(
            r#"{"role":"user","content":[{"type":"image","media_type":"image/tiff","data":""}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("image/tiff"), "{err}");
        let err = serde_json::from_str::<Message>(
            r#"{"role":"user","content":[{"type":"document","format":"pdf","name":"a","data":"@@"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("base64"), "{err}");
        let err = serde_json::from_str::<Message>(r#"{"role":"user","content":7}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("string or a list"), "{err}");
    }

    #[test]
    fn tool_definitions_are_checked() {
        let ok = ToolDefinition {
            name: "get_weather".into(),
            description: None,
            input_schema: serde_json::json!({"type": "object"}),
        };
        assert!(ok.check().is_ok());
        let bad = ToolDefinition {
            name: "get weather".into(),
            ..ok.clone()
        };
        assert!(bad.check().unwrap_err().contains("get weather"));
        let bad = ToolDefinition {
            input_schema: serde_json::json!("x"),
            ..ok
        };
        assert!(bad.check().unwrap_err().contains("JSON object"));
    }

    #[test]
    fn tool_choice_and_formats_read_their_wire_names() {
        let choice: ToolChoice =
            serde_json::from_str(r#"{"type":"tool","name":"get_weather"}"#).unwrap();
        assert_eq!(
            choice,
            ToolChoice::Tool {
                name: "get_weather".into()
            }
        );
        assert_eq!(
            ImageFormat::from_media_type("IMAGE/JPG"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            DocumentFormat::from_media_type("text/plain; charset=utf-8"),
            Some(DocumentFormat::Txt)
        );
        assert_eq!(StopReason::ToolUse.openai_finish_reason(), "tool_calls");
    }
}
