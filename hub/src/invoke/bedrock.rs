//! Amazon Bedrock Runtime through the official SDK: Converse and ConverseStream, and InvokeModel for the
//! embedding models (Amazon Titan Text Embeddings, one text a request; Cohere Embed, up to 96 texts a
//! request).
//!
//! Every block of the content model maps to its Converse form: text, images and documents as bytes, the
//! model's tool calls (`toolUse`) and the application's results (`toolResult`), tool definitions and tool
//! choice (`toolConfig`); streamed tool calls arrive as `contentBlockStart` and `contentBlockDelta` events.
//!
//! In AWS the client reaches Bedrock through the bedrock-runtime VPC endpoint only (set `endpoint_url` to the
//! endpoint's DNS name, or rely on private DNS). An optional Bedrock Guardrail is applied to every call on top
//! of the hub's own guards. Provider error messages are not passed on (they can quote input); only the error
//! code is.

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::Region;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    AnyToolChoice, AutoToolChoice, ContentBlock, ContentBlockDelta, ContentBlockStart,
    ConversationRole, ConverseOutput, ConverseStreamOutput, DocumentBlock,
    DocumentFormat as BedrockDocumentFormat, DocumentSource, GuardrailConfiguration,
    GuardrailStreamConfiguration, ImageBlock, ImageFormat as BedrockImageFormat, ImageSource,
    InferenceConfiguration, Message as BedrockMessage, SpecificToolChoice,
    StopReason as BedrockStop, SystemContentBlock, TokenUsage as BedrockUsage, Tool,
    ToolChoice as BedrockToolChoice, ToolConfiguration, ToolInputSchema, ToolResultBlock,
    ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::{Document, Number};
use causeway_contract::content::{DocumentFormat, ImageFormat, ToolChoice};
use causeway_contract::{Role, TokenUsage};

use super::{
    EmbedCall, EmbedReply, InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream,
    StopReason, StreamEvent, estimate_tokens,
};
use crate::config::BedrockConfig;

/// The Bedrock Runtime invoker.
#[derive(Debug, Clone)]
pub struct BedrockInvoker {
    client: Client,
    guardrail: Option<(String, String)>,
}

impl BedrockInvoker {
    /// Builds the client once, at start-up. `base` is the shared AWS config (credentials, region); the
    /// section's `region`, `endpoint_url` and `max_attempts` override it.
    pub fn new(config: &BedrockConfig, base: &aws_config::SdkConfig) -> Self {
        let mut builder = aws_sdk_bedrockruntime::config::Builder::from(base)
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts));
        if let Some(region) = &config.region {
            builder = builder.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            guardrail: config
                .guardrail_id
                .clone()
                .zip(config.guardrail_version.clone()),
        }
    }

    fn messages(call: &ModelCall) -> Result<Vec<BedrockMessage>, InvokeError> {
        // Converse wants alternating user/assistant turns; merge consecutive turns of the same role.
        let mut merged: Vec<(ConversationRole, Vec<ContentBlock>)> = Vec::new();
        for message in &call.messages {
            let role = match message.role {
                Role::User => ConversationRole::User,
                Role::Assistant => ConversationRole::Assistant,
                Role::System => continue,
            };
            let blocks = message
                .content
                .iter()
                .map(block)
                .collect::<Result<Vec<_>, _>>()?;
            match merged.last_mut() {
                Some((last, content)) if *last == role => content.extend(blocks),
                _ => merged.push((role, blocks)),
            }
        }
        merged
            .into_iter()
            .map(|(role, content)| {
                BedrockMessage::builder()
                    .role(role)
                    .set_content(Some(content))
                    .build()
                    .map_err(rejected)
            })
            .collect()
    }

    /// The tool configuration; `None` when the call offers no tools. Converse has no "no tool" choice: with
    /// `none` the tools are still declared when earlier turns used them (Converse requires it) and the model
    /// is told not to call one; otherwise they are left out.
    fn tool_config(call: &ModelCall) -> Result<Option<ToolConfiguration>, InvokeError> {
        if call.tools.is_empty() {
            return Ok(None);
        }
        let history_uses_tools = call.messages.iter().flat_map(|m| &m.content).any(|b| {
            matches!(
                b,
                causeway_contract::ContentBlock::ToolUse { .. }
                    | causeway_contract::ContentBlock::ToolResult { .. }
            )
        });
        let choice = match &call.tool_choice {
            None | Some(ToolChoice::Auto) => {
                Some(BedrockToolChoice::Auto(AutoToolChoice::builder().build()))
            }
            Some(ToolChoice::Any) => Some(BedrockToolChoice::Any(AnyToolChoice::builder().build())),
            Some(ToolChoice::Tool { name }) => Some(BedrockToolChoice::Tool(
                SpecificToolChoice::builder()
                    .name(name)
                    .build()
                    .map_err(rejected)?,
            )),
            Some(ToolChoice::None) if history_uses_tools => None,
            Some(ToolChoice::None) => return Ok(None),
        };
        let tools = call
            .tools
            .iter()
            .map(|tool| {
                ToolSpecification::builder()
                    .name(&tool.name)
                    .set_description(tool.description.clone())
                    .input_schema(ToolInputSchema::Json(to_document(&tool.input_schema)))
                    .build()
                    .map(Tool::ToolSpec)
                    .map_err(rejected)
            })
            .collect::<Result<Vec<_>, _>>()?;
        ToolConfiguration::builder()
            .set_tools(Some(tools))
            .set_tool_choice(choice)
            .build()
            .map(Some)
            .map_err(rejected)
    }

    fn inference(call: &ModelCall) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(i32::try_from(call.max_tokens).unwrap_or(i32::MAX))
            .set_stop_sequences(
                (!call.stop_sequences.is_empty()).then(|| call.stop_sequences.clone()),
            )
            .build()
    }

    fn system(call: &ModelCall) -> Vec<SystemContentBlock> {
        let mut system: Vec<SystemContentBlock> = call
            .system
            .iter()
            .cloned()
            .map(SystemContentBlock::Text)
            .collect();
        if call.tool_choice == Some(ToolChoice::None) && !call.tools.is_empty() {
            system.push(SystemContentBlock::Text(
                "Do not call any tool in this answer; answer in text.".to_owned(),
            ));
        }
        system
    }
}

fn rejected(err: impl std::fmt::Display) -> InvokeError {
    InvokeError::Rejected(err.to_string())
}

/// A JSON value as a Smithy document (tool inputs and schemas).
fn to_document(value: &serde_json::Value) -> Document {
    match value {
        serde_json::Value::Null => Document::Null,
        serde_json::Value::Bool(b) => Document::Bool(*b),
        serde_json::Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or_default())
        }),
        serde_json::Value::String(s) => Document::String(s.clone()),
        serde_json::Value::Array(items) => Document::Array(items.iter().map(to_document).collect()),
        serde_json::Value::Object(map) => Document::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_document(v)))
                .collect(),
        ),
    }
}

/// A Smithy document as a JSON value.
fn from_document(document: &Document) -> serde_json::Value {
    match document {
        Document::Null => serde_json::Value::Null,
        Document::Bool(b) => serde_json::Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => serde_json::Value::from(*u),
        Document::Number(Number::NegInt(i)) => serde_json::Value::from(*i),
        Document::Number(Number::Float(f)) => serde_json::Value::from(*f),
        Document::String(s) => serde_json::Value::String(s.clone()),
        Document::Array(items) => {
            serde_json::Value::Array(items.iter().map(from_document).collect())
        }
        Document::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_document(v)))
                .collect(),
        ),
    }
}

/// A document name as Converse accepts it: letters, digits, single spaces, hyphens, parentheses and square
/// brackets, at most 200 characters.
fn document_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
            c
        } else {
            ' '
        };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    let out: String = out.trim_end().chars().take(200).collect();
    if out.is_empty() {
        "document".to_owned()
    } else {
        out
    }
}

fn image_block(format: ImageFormat, data: &[u8]) -> Result<ImageBlock, InvokeError> {
    ImageBlock::builder()
        .format(match format {
            ImageFormat::Png => BedrockImageFormat::Png,
            ImageFormat::Jpeg => BedrockImageFormat::Jpeg,
            ImageFormat::Gif => BedrockImageFormat::Gif,
            ImageFormat::Webp => BedrockImageFormat::Webp,
        })
        .source(ImageSource::Bytes(Blob::new(data.to_vec())))
        .build()
        .map_err(rejected)
}

fn document_block(
    format: DocumentFormat,
    name: &str,
    data: &[u8],
) -> Result<DocumentBlock, InvokeError> {
    DocumentBlock::builder()
        .format(match format {
            DocumentFormat::Pdf => BedrockDocumentFormat::Pdf,
            DocumentFormat::Docx => BedrockDocumentFormat::Docx,
            DocumentFormat::Txt | DocumentFormat::Json => BedrockDocumentFormat::Txt,
            DocumentFormat::Md => BedrockDocumentFormat::Md,
            DocumentFormat::Csv => BedrockDocumentFormat::Csv,
            DocumentFormat::Html => BedrockDocumentFormat::Html,
            DocumentFormat::Doc => BedrockDocumentFormat::Doc,
            DocumentFormat::Xls => BedrockDocumentFormat::Xls,
            DocumentFormat::Xlsx => BedrockDocumentFormat::Xlsx,
        })
        .name(document_name(name))
        .source(DocumentSource::Bytes(Blob::new(data.to_vec())))
        .build()
        .map_err(rejected)
}

/// One of our blocks as a Converse block.
fn block(block: &causeway_contract::ContentBlock) -> Result<ContentBlock, InvokeError> {
    use causeway_contract::ContentBlock as Ours;
    Ok(match block {
        Ours::Text { text } => ContentBlock::Text(text.clone()),
        Ours::Image { media_type, data } => ContentBlock::Image(image_block(*media_type, &data.0)?),
        Ours::Document { format, name, data } => {
            ContentBlock::Document(document_block(*format, name, &data.0)?)
        }
        Ours::ToolUse { id, name, input } => ContentBlock::ToolUse(
            ToolUseBlock::builder()
                .tool_use_id(id)
                .name(name)
                .input(to_document(input))
                .build()
                .map_err(rejected)?,
        ),
        Ours::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            let content = content
                .iter()
                .map(|inner| {
                    Ok(match inner {
                        Ours::Text { text } => ToolResultContentBlock::Text(text.clone()),
                        Ours::Image { media_type, data } => {
                            ToolResultContentBlock::Image(image_block(*media_type, &data.0)?)
                        }
                        Ours::Document { format, name, data } => ToolResultContentBlock::Document(
                            document_block(*format, name, &data.0)?,
                        ),
                        Ours::ToolUse { .. } | Ours::ToolResult { .. } => {
                            return Err(InvokeError::Rejected(
                                "a tool result holds text, images or documents".to_owned(),
                            ));
                        }
                    })
                })
                .collect::<Result<Vec<_>, InvokeError>>()?;
            ContentBlock::ToolResult(
                ToolResultBlock::builder()
                    .tool_use_id(tool_use_id)
                    .set_content(Some(content))
                    .set_status(is_error.then_some(ToolResultStatus::Error))
                    .build()
                    .map_err(rejected)?,
            )
        }
    })
}

/// A Converse answer block as ours; blocks the hub does not carry (reasoning, citations) are dropped.
fn answer_block(block: &ContentBlock) -> Option<causeway_contract::ContentBlock> {
    match block {
        ContentBlock::Text(text) => Some(causeway_contract::ContentBlock::text(text.clone())),
        ContentBlock::ToolUse(tool) => Some(causeway_contract::ContentBlock::ToolUse {
            id: tool.tool_use_id().to_owned(),
            name: tool.name().to_owned(),
            input: from_document(tool.input()),
        }),
        _ => None,
    }
}

fn stop_reason(reason: &BedrockStop) -> StopReason {
    match reason {
        BedrockStop::MaxTokens | BedrockStop::ModelContextWindowExceeded => StopReason::MaxTokens,
        BedrockStop::ContentFiltered | BedrockStop::GuardrailIntervened => {
            StopReason::ContentFiltered
        }
        BedrockStop::StopSequence => StopReason::StopSequence,
        BedrockStop::ToolUse => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

fn usage(usage: Option<&BedrockUsage>) -> TokenUsage {
    usage.map_or_else(TokenUsage::default, |u| TokenUsage {
        input_tokens: u32::try_from(u.input_tokens()).unwrap_or(0),
        output_tokens: u32::try_from(u.output_tokens()).unwrap_or(0),
    })
}

/// Classifies an SDK error by its modelled error code; the provider's message is deliberately dropped.
fn classify<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> InvokeError {
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown").to_owned();
            match code.as_str() {
                "ThrottlingException" | "ServiceQuotaExceededException" | "throttlingException" => {
                    InvokeError::Throttled
                }
                "ServiceUnavailableException"
                | "InternalServerException"
                | "ModelNotReadyException"
                | "ModelTimeoutException"
                | "serviceUnavailableException"
                | "internalServerException" => InvokeError::Unavailable(code),
                "ModelStreamErrorException" | "modelStreamErrorException" => {
                    InvokeError::Protocol(code)
                }
                _ => InvokeError::Rejected(code),
            }
        }
        SdkError::TimeoutError(_) => InvokeError::Unavailable("timeout".to_owned()),
        SdkError::DispatchFailure(_) => InvokeError::Unavailable("connection failed".to_owned()),
        SdkError::ResponseError(_) => InvokeError::Protocol("unreadable response".to_owned()),
        SdkError::ConstructionFailure(_) => {
            InvokeError::Rejected("request could not be built".to_owned())
        }
        _ => InvokeError::Unavailable("unknown failure".to_owned()),
    }
}

/// Texts per Cohere Embed request (Bedrock's limit).
const COHERE_BATCH: usize = 96;

/// Vector lengths Titan Text Embeddings V2 returns.
const TITAN_DIMENSIONS: [u32; 3] = [256, 512, 1024];

impl BedrockInvoker {
    /// One InvokeModel call with a JSON body; the JSON answer.
    async fn invoke_json(
        &self,
        model_id: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError> {
        let output = self
            .client
            .invoke_model()
            .model_id(model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body.to_string()))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        serde_json::from_slice(output.body().as_ref())
            .map_err(|_| InvokeError::Protocol("the InvokeModel answer is not JSON".to_owned()))
    }

    async fn embed_titan(&self, call: &EmbedCall) -> Result<EmbedReply, InvokeError> {
        if let Some(d) = call.dimensions.filter(|d| !TITAN_DIMENSIONS.contains(d)) {
            return Err(InvokeError::Rejected(format!(
                "Titan Text Embeddings returns 256, 512 or 1024 dimensions, not {d}"
            )));
        }
        let requests = call.inputs.iter().map(|text| {
            let mut body = serde_json::json!({"inputText": text, "normalize": true});
            if let Some(d) = call.dimensions {
                body["dimensions"] = d.into();
            }
            async move { self.invoke_json(&call.model_id, &body).await }
        });
        let answers = futures::future::try_join_all(requests).await?;
        let mut reply = EmbedReply {
            vectors: Vec::with_capacity(answers.len()),
            input_tokens: 0,
        };
        for answer in answers {
            reply.vectors.push(vector(&answer["embedding"])?);
            let tokens = answer["inputTextTokenCount"].as_u64().unwrap_or(0);
            reply.input_tokens = reply
                .input_tokens
                .saturating_add(u32::try_from(tokens).unwrap_or(u32::MAX));
        }
        Ok(reply)
    }

    async fn embed_cohere(&self, call: &EmbedCall) -> Result<EmbedReply, InvokeError> {
        let mut vectors = Vec::with_capacity(call.inputs.len());
        for batch in call.inputs.chunks(COHERE_BATCH) {
            let body = serde_json::json!({
                "texts": batch, "input_type": "search_document", "embedding_types": ["float"],
            });
            let answer = self.invoke_json(&call.model_id, &body).await?;
            // `embeddings_by_type` answers carry `embeddings.float`; older ones a bare list.
            let list = answer["embeddings"]
                .get("float")
                .unwrap_or(&answer["embeddings"]);
            let batch_vectors = list
                .as_array()
                .ok_or_else(|| InvokeError::Protocol("no `embeddings` in the answer".to_owned()))?;
            for v in batch_vectors {
                vectors.push(vector(v)?);
            }
        }
        if vectors.len() != call.inputs.len() {
            return Err(InvokeError::Protocol(format!(
                "{} vectors for {} texts",
                vectors.len(),
                call.inputs.len()
            )));
        }
        Ok(EmbedReply {
            vectors,
            // Cohere's body reports no token count: the hub's estimate stands in.
            input_tokens: call
                .inputs
                .iter()
                .map(|t| estimate_tokens(t))
                .fold(0, u32::saturating_add),
        })
    }
}

/// A JSON array of numbers as a vector.
fn vector(value: &serde_json::Value) -> Result<Vec<f32>, InvokeError> {
    let numbers = value
        .as_array()
        .ok_or_else(|| InvokeError::Protocol("an embedding that is not a list".to_owned()))?;
    numbers
        .iter()
        .map(|n| {
            // Embedding values are 32-bit floats; narrowing the JSON number is the intent.
            #[expect(clippy::cast_possible_truncation, reason = "vectors are f32")]
            n.as_f64().map(|f| f as f32).ok_or_else(|| {
                InvokeError::Protocol("an embedding value that is not a number".to_owned())
            })
        })
        .collect()
}

#[async_trait]
impl ModelInvoker for BedrockInvoker {
    fn provider(&self) -> &'static str {
        "bedrock"
    }

    async fn invoke(&self, call: &ModelCall) -> Result<ModelReply, InvokeError> {
        let mut request = self
            .client
            .converse()
            .model_id(&call.model_id)
            .set_messages(Some(Self::messages(call)?))
            .set_system(Some(Self::system(call)))
            .set_tool_config(Self::tool_config(call)?)
            .inference_config(Self::inference(call));
        if let Some((id, version)) = &self.guardrail {
            request = request.guardrail_config(
                GuardrailConfiguration::builder()
                    .guardrail_identifier(id)
                    .guardrail_version(version)
                    .build(),
            );
        }
        let output = request.send().await.map_err(|e| classify(&e))?;
        let content = match output.output() {
            Some(ConverseOutput::Message(message)) => {
                message.content().iter().filter_map(answer_block).collect()
            }
            _ => {
                return Err(InvokeError::Protocol(
                    "no message in the Converse output".to_owned(),
                ));
            }
        };
        Ok(ModelReply {
            content,
            stop_reason: stop_reason(output.stop_reason()),
            usage: usage(output.usage()),
        })
    }

    async fn embed(&self, call: &EmbedCall) -> Result<EmbedReply, InvokeError> {
        let family = call.model_id.rsplit('/').next().unwrap_or(&call.model_id);
        let family = ["us.", "eu.", "apac.", "global."]
            .iter()
            .find_map(|p| family.strip_prefix(p))
            .unwrap_or(family);
        if family.starts_with("amazon.titan-embed") {
            self.embed_titan(call).await
        } else if family.starts_with("cohere.embed") {
            self.embed_cohere(call).await
        } else {
            Err(InvokeError::Rejected(format!(
                "`{}` is not an embedding model the hub knows the body of (Amazon Titan Text Embeddings, Cohere Embed)",
                call.model_id
            )))
        }
    }

    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError> {
        let mut request = self
            .client
            .converse_stream()
            .model_id(&call.model_id)
            .set_messages(Some(Self::messages(call)?))
            .set_system(Some(Self::system(call)))
            .set_tool_config(Self::tool_config(call)?)
            .inference_config(Self::inference(call));
        if let Some((id, version)) = &self.guardrail {
            request = request.guardrail_config(
                GuardrailStreamConfiguration::builder()
                    .guardrail_identifier(id)
                    .guardrail_version(version)
                    .build(),
            );
        }
        let output = request.send().await.map_err(|e| classify(&e))?;
        struct State {
            receiver: aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver<
                ConverseStreamOutput,
                aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError,
            >,
            stop: Option<StopReason>,
            finished: bool,
            /// Converse content block index → our tool-call index.
            tools: Vec<i32>,
        }
        let state = State {
            receiver: output.stream,
            stop: None,
            finished: false,
            tools: Vec::new(),
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            if state.finished {
                return None;
            }
            loop {
                match state.receiver.recv().await {
                    Ok(Some(ConverseStreamOutput::ContentBlockStart(event))) => {
                        if let Some(ContentBlockStart::ToolUse(tool)) = event.start() {
                            let index = u32::try_from(state.tools.len()).unwrap_or(u32::MAX);
                            state.tools.push(event.content_block_index());
                            let start = StreamEvent::ToolUseStart {
                                index,
                                id: tool.tool_use_id().to_owned(),
                                name: tool.name().to_owned(),
                            };
                            return Some((Ok(start), state));
                        }
                    }
                    Ok(Some(ConverseStreamOutput::ContentBlockDelta(event))) => match event.delta()
                    {
                        Some(ContentBlockDelta::Text(text)) => {
                            return Some((Ok(StreamEvent::TextDelta(text.clone())), state));
                        }
                        Some(ContentBlockDelta::ToolUse(delta)) => {
                            let block = event.content_block_index();
                            let Some(index) = state.tools.iter().position(|b| *b == block) else {
                                state.finished = true;
                                let err = InvokeError::Protocol(
                                    "tool input for a block that did not start as a tool call"
                                        .to_owned(),
                                );
                                return Some((Err(err), state));
                            };
                            let delta = StreamEvent::ToolInputDelta {
                                index: u32::try_from(index).unwrap_or(u32::MAX),
                                partial_json: delta.input().to_owned(),
                            };
                            return Some((Ok(delta), state));
                        }
                        _ => {}
                    },
                    Ok(Some(ConverseStreamOutput::MessageStop(event))) => {
                        state.stop = Some(stop_reason(event.stop_reason()));
                    }
                    Ok(Some(ConverseStreamOutput::Metadata(event))) => {
                        state.finished = true;
                        let done = StreamEvent::Done {
                            stop_reason: state.stop.unwrap_or(StopReason::EndTurn),
                            usage: usage(event.usage()),
                        };
                        return Some((Ok(done), state));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        state.finished = true;
                        let result = match state.stop {
                            // Some models end without a metadata event; usage is then unknown.
                            Some(stop_reason) => Ok(StreamEvent::Done {
                                stop_reason,
                                usage: TokenUsage::default(),
                            }),
                            None => Err(InvokeError::Protocol(
                                "the stream ended before the answer did".to_owned(),
                            )),
                        };
                        return Some((result, state));
                    }
                    Err(err) => {
                        state.finished = true;
                        return Some((Err(classify(&err)), state));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
