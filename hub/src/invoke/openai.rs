//! Any OpenAI-compatible chat completions endpoint, such as a self-hosted model inside the VPC.

use async_trait::async_trait;
use causeway_contract::openai::ChatCompletionChunk;
use causeway_contract::{Role, TokenUsage};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{
    InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream, StopReason, StreamEvent,
};

/// The OpenAI-compatible invoker.
#[derive(Debug, Clone)]
pub struct OpenAiInvoker {
    base_url: String,
    api_key: Option<SecretString>,
    http: reqwest::Client,
}

fn finish(reason: Option<&str>) -> StopReason {
    match reason {
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::ContentFiltered,
        _ => StopReason::EndTurn,
    }
}

impl OpenAiInvoker {
    /// `base_url` up to and including `/v1`; `api_key` read from the environment variable named in config.
    pub fn new(base_url: &str, api_key: Option<SecretString>, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            http,
        }
    }

    fn body(call: &ModelCall, stream: bool) -> serde_json::Value {
        let mut messages: Vec<serde_json::Value> = call
            .system
            .iter()
            .map(|s| json!({"role": "system", "content": s}))
            .collect();
        messages.extend(call.messages.iter().map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": m.content})
        }));
        let mut body =
            json!({"model": call.model_id, "messages": messages, "max_tokens": call.max_tokens});
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    async fn post(&self, call: &ModelCall, stream: bool) -> Result<reqwest::Response, InvokeError> {
        let mut request = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(&Self::body(call, stream));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| {
            InvokeError::Unavailable(
                if e.is_timeout() {
                    "timeout"
                } else {
                    "connection failed"
                }
                .to_owned(),
            )
        })?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => Ok(response),
            429 => Err(InvokeError::Throttled),
            500..=599 => Err(InvokeError::Unavailable(format!("status {status}"))),
            _ => Err(InvokeError::Rejected(format!("status {status}"))),
        }
    }
}

#[async_trait]
impl ModelInvoker for OpenAiInvoker {
    fn provider(&self) -> &'static str {
        "openai"
    }

    async fn invoke(&self, call: &ModelCall) -> Result<ModelReply, InvokeError> {
        let response = self.post(call, false).await?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|_| InvokeError::Protocol("the body is not JSON".to_owned()))?;
        let choice = &body["choices"][0];
        let text = choice["message"]["content"]
            .as_str()
            .ok_or_else(|| InvokeError::Protocol("no `choices[0].message.content`".to_owned()))?
            .to_owned();
        let tokens =
            |key: &str| u32::try_from(body["usage"][key].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
        Ok(ModelReply {
            text,
            stop_reason: finish(choice["finish_reason"].as_str()),
            usage: TokenUsage {
                input_tokens: tokens("prompt_tokens"),
                output_tokens: tokens("completion_tokens"),
            },
        })
    }

    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError> {
        let response = self.post(call, true).await?;
        struct State {
            body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
            buffer: Vec<u8>,
            stop: Option<StopReason>,
            usage: TokenUsage,
            pending: std::collections::VecDeque<Result<StreamEvent, InvokeError>>,
            finished: bool,
        }
        let state = State {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            stop: None,
            usage: TokenUsage::default(),
            pending: std::collections::VecDeque::new(),
            finished: false,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(event) = state.pending.pop_front() {
                    return Some((event, state));
                }
                if state.finished {
                    return None;
                }
                // Parse every complete server-sent event in the buffer.
                while let Some(end) = state.buffer.windows(2).position(|w| w == b"\n\n") {
                    let frame: Vec<u8> = state.buffer.drain(..end + 2).collect();
                    let frame = String::from_utf8_lossy(&frame);
                    for line in frame.lines() {
                        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                            continue;
                        };
                        if data == "[DONE]" {
                            state.finished = true;
                            state.pending.push_back(Ok(StreamEvent::Done {
                                stop_reason: state.stop.unwrap_or(StopReason::EndTurn),
                                usage: state.usage,
                            }));
                            continue;
                        }
                        match serde_json::from_str::<ChatCompletionChunk>(data) {
                            Ok(chunk) => {
                                if let Some(usage) = chunk.usage {
                                    state.usage = TokenUsage {
                                        input_tokens: usage.prompt_tokens,
                                        output_tokens: usage.completion_tokens,
                                    };
                                }
                                for choice in chunk.choices {
                                    if let Some(text) =
                                        choice.delta.content.filter(|t| !t.is_empty())
                                    {
                                        state.pending.push_back(Ok(StreamEvent::Delta(text)));
                                    }
                                    if let Some(reason) = choice.finish_reason {
                                        state.stop = Some(finish(Some(&reason)));
                                    }
                                }
                            }
                            Err(_) => {
                                state.finished = true;
                                state.pending.push_back(Err(InvokeError::Protocol(
                                    "unreadable stream chunk".to_owned(),
                                )));
                            }
                        }
                    }
                }
                if !state.pending.is_empty() || state.finished {
                    continue;
                }
                match state.body.next().await {
                    Some(Ok(bytes)) => state.buffer.extend_from_slice(&bytes),
                    Some(Err(_)) => {
                        state.finished = true;
                        state.pending.push_back(Err(InvokeError::Unavailable(
                            "the stream was cut".to_owned(),
                        )));
                    }
                    None => {
                        state.finished = true;
                        state.pending.push_back(Err(InvokeError::Protocol(
                            "the stream ended without `[DONE]`".to_owned(),
                        )));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
