//! Model providers behind one narrow trait, in our own types.
//!
//! Adapters map their SDK's errors to [`InvokeError`]; no SDK type crosses this boundary. The hub picks the
//! invoker from the catalog entry's provider; callers never choose a model id.

pub mod bedrock;
pub mod local;
pub mod openai;

use std::pin::Pin;

use async_trait::async_trait;
use causeway_contract::content::{ContentBlock, ToolChoice, ToolDefinition};
pub use causeway_contract::content::{ModelStreamEvent as StreamEvent, StopReason};
use causeway_contract::{Message, TokenUsage};
use futures::Stream;

/// A fully governed model call: the prompt is already guarded and assembled.
#[derive(Debug, Clone)]
pub struct ModelCall {
    /// Provider model id or ARN, from the catalog.
    pub model_id: String,
    /// System instructions, guardrail instructions first.
    pub system: Vec<String>,
    /// The conversation (user and assistant turns only), guarded block by block.
    pub messages: Vec<Message>,
    /// Tools the model may call (descriptions guarded).
    pub tools: Vec<ToolDefinition>,
    /// Which tools the model may or must call; `None` leaves it to the provider's default (auto).
    pub tool_choice: Option<ToolChoice>,
    /// Answer token limit, already clamped by the catalog.
    pub max_tokens: u32,
    /// Texts that end the answer (validated: at most four, none empty).
    pub stop_sequences: Vec<String>,
    /// A JSON Schema the answer must follow, if any.
    pub response_schema: Option<serde_json::Value>,
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct ModelReply {
    /// The answer's blocks: text and tool calls, in order.
    pub content: Vec<ContentBlock>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Token usage.
    pub usage: TokenUsage,
}

/// A streamed answer.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, InvokeError>> + Send>>;

/// A governed embedding call: the texts are already guarded (masked).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedCall {
    /// Provider model id, from the catalog.
    pub model_id: String,
    /// The texts, in order.
    pub inputs: Vec<String>,
    /// The vector length asked for; `None` for the model's default.
    pub dimensions: Option<u32>,
}

/// The vectors of an embedding call.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedReply {
    /// One vector per input, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens, as the provider counted them (or the hub's estimate where it reports none).
    pub input_tokens: u32,
}

/// A provider failure, classified for the caller's status code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The provider is throttling.
    #[error("the model provider is throttling requests")]
    Throttled,
    /// The provider is unreachable or unavailable.
    #[error("the model provider is unavailable ({0})")]
    Unavailable(String),
    /// The provider refused the request (validation, access, unknown model).
    #[error("the model provider rejected the request ({0})")]
    Rejected(String),
    /// The provider answered with something the hub cannot use.
    #[error("the model provider returned an unusable answer ({0})")]
    Protocol(String),
}

/// A model provider.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ModelInvoker: Send + Sync + std::fmt::Debug {
    /// The provider name recorded on audit records.
    fn provider(&self) -> &'static str;

    /// True for the local development model.
    fn is_development(&self) -> bool {
        false
    }

    /// One complete answer.
    async fn invoke(&self, call: &ModelCall) -> Result<ModelReply, InvokeError>;

    /// A streamed answer. Errors before the first event are returned here; later ones come in the stream.
    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError>;

    /// Embeddings of the call's texts. Providers without embedding models refuse.
    async fn embed(&self, call: &EmbedCall) -> Result<EmbedReply, InvokeError> {
        Err(InvokeError::Rejected(format!(
            "provider `{}` serves no embedding model (`{}`)",
            self.provider(),
            call.model_id
        )))
    }
}

/// About how many tokens a text is before a provider counts it: four bytes a token.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(4)).unwrap_or(u32::MAX)
}
