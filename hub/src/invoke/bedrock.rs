//! Amazon Bedrock Runtime through the official SDK: Converse and ConverseStream.
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
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseOutput, ConverseStreamOutput,
    GuardrailConfiguration, GuardrailStreamConfiguration, InferenceConfiguration,
    Message as BedrockMessage, StopReason as BedrockStop, SystemContentBlock,
    TokenUsage as BedrockUsage,
};
use causeway_contract::{Role, TokenUsage};

use super::{
    InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream, StopReason, StreamEvent,
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
        let mut merged: Vec<(ConversationRole, String)> = Vec::new();
        for message in &call.messages {
            let role = match message.role {
                Role::User => ConversationRole::User,
                Role::Assistant => ConversationRole::Assistant,
                Role::System => continue,
            };
            match merged.last_mut() {
                Some((last, text)) if *last == role => {
                    text.push_str("\n\n");
                    text.push_str(&message.content);
                }
                _ => merged.push((role, message.content.clone())),
            }
        }
        merged
            .into_iter()
            .map(|(role, text)| {
                BedrockMessage::builder()
                    .role(role)
                    .content(ContentBlock::Text(text))
                    .build()
                    .map_err(|e| InvokeError::Rejected(e.to_string()))
            })
            .collect()
    }

    fn inference(call: &ModelCall) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(i32::try_from(call.max_tokens).unwrap_or(i32::MAX))
            .build()
    }

    fn system(call: &ModelCall) -> Vec<SystemContentBlock> {
        call.system
            .iter()
            .cloned()
            .map(SystemContentBlock::Text)
            .collect()
    }
}

fn stop_reason(reason: &BedrockStop) -> StopReason {
    match reason {
        BedrockStop::MaxTokens | BedrockStop::ModelContextWindowExceeded => StopReason::MaxTokens,
        BedrockStop::ContentFiltered | BedrockStop::GuardrailIntervened => {
            StopReason::ContentFiltered
        }
        BedrockStop::StopSequence => StopReason::StopSequence,
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
        let text = match output.output() {
            Some(ConverseOutput::Message(message)) => message
                .content()
                .iter()
                .filter_map(|block| match block {
                    ContentBlock::Text(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(""),
            _ => {
                return Err(InvokeError::Protocol(
                    "no message in the Converse output".to_owned(),
                ));
            }
        };
        Ok(ModelReply {
            text,
            stop_reason: stop_reason(output.stop_reason()),
            usage: usage(output.usage()),
        })
    }

    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError> {
        let mut request = self
            .client
            .converse_stream()
            .model_id(&call.model_id)
            .set_messages(Some(Self::messages(call)?))
            .set_system(Some(Self::system(call)))
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
        }
        let state = State {
            receiver: output.stream,
            stop: None,
            finished: false,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            if state.finished {
                return None;
            }
            loop {
                match state.receiver.recv().await {
                    Ok(Some(ConverseStreamOutput::ContentBlockDelta(event))) => {
                        if let Some(ContentBlockDelta::Text(text)) = event.delta() {
                            return Some((Ok(StreamEvent::Delta(text.clone())), state));
                        }
                    }
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
