//! What the router tests share: a fake model that answers with fixed blocks (complete or streamed) and keeps
//! the calls it received, an audit sink that keeps the events it is given (or refuses every write), a hub
//! built around both with tokens for two users, and readers of its answers.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::request::Builder;
use axum::http::{HeaderMap, Request};
use causeway_audit::{AuditError, AuditReceipt, AuditSink, Payload};
use causeway_contract::audit::AuditEvent;
use causeway_contract::content::ContentBlock;
use causeway_contract::{StopReason, TokenUsage};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::app::{AppState, Overrides, build_state, router};
use crate::config::{BedrockConfig, HubConfig};
use crate::invoke::{
    EmbedCall, EmbedReply, InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream,
    StreamEvent,
};
use causeway_contract::dev::DevKey;

/// An audit sink that keeps the events it is given (stamped with their payloads' hashes), or refuses every
/// write.
#[derive(Debug, Default)]
pub(super) struct Recording {
    pub(super) events: Mutex<Vec<AuditEvent>>,
    pub(super) down: bool,
}

#[async_trait]
impl AuditSink for Recording {
    async fn append(
        &self,
        mut event: AuditEvent,
        payload: Option<Payload>,
    ) -> Result<AuditReceipt, AuditError> {
        if self.down {
            return Err(AuditError::Unavailable("disk full".into()));
        }
        // As every store: the record commits to the payload it came with.
        if let Some(payload) = &payload {
            payload.stamp(&mut event);
        }
        let id = event.id;
        self.events.lock().unwrap().push(event);
        Ok(AuditReceipt {
            id,
            chain_id: "test".into(),
            sequence: 1,
            record_hash: String::new(),
        })
    }

    async fn health(&self) -> Result<(), AuditError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "recording"
    }
}

/// A model that answers with fixed blocks, or fails, and keeps the calls it received. It stops with `stop`
/// when set, otherwise with `tool_use` when it calls a tool and `end_turn` when it does not.
#[derive(Debug)]
pub(super) struct Fake {
    pub(super) answer: Result<Vec<ContentBlock>, InvokeError>,
    pub(super) stop: Option<StopReason>,
    pub(super) calls: Mutex<Vec<ModelCall>>,
    /// The embedding calls received; each text gets the vector `[its length, 1.0]`.
    pub(super) embedded: Mutex<Vec<EmbedCall>>,
}

impl Fake {
    pub(super) fn answering(blocks: Vec<ContentBlock>) -> Arc<Self> {
        Arc::new(Self {
            answer: Ok(blocks),
            stop: None,
            calls: Mutex::new(Vec::new()),
            embedded: Mutex::new(Vec::new()),
        })
    }

    /// Answers `blocks`, stopping with `stop`.
    pub(super) fn stopping(blocks: Vec<ContentBlock>, stop: StopReason) -> Arc<Self> {
        Arc::new(Self {
            answer: Ok(blocks),
            stop: Some(stop),
            calls: Mutex::new(Vec::new()),
            embedded: Mutex::new(Vec::new()),
        })
    }

    /// Fails every call with `error`.
    pub(super) fn failing(error: InvokeError) -> Arc<Self> {
        Arc::new(Self {
            answer: Err(error),
            stop: None,
            calls: Mutex::new(Vec::new()),
            embedded: Mutex::new(Vec::new()),
        })
    }

    fn reply(&self, call: &ModelCall) -> Result<ModelReply, InvokeError> {
        self.calls.lock().unwrap().push(call.clone());
        let content = self.answer.clone()?;
        let calls_tool = content
            .iter()
            .any(|b| matches!(b, ContentBlock::ToolUse { .. }));
        let stop_reason = self.stop.unwrap_or(if calls_tool {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        });
        Ok(ModelReply {
            content,
            stop_reason,
            usage: TokenUsage {
                input_tokens: 10,
                output_tokens: 5,
            },
        })
    }

    /// The last call the model received.
    pub(super) fn last_call(&self) -> ModelCall {
        self.calls.lock().unwrap().last().cloned().unwrap()
    }
}

#[async_trait]
impl ModelInvoker for Fake {
    fn provider(&self) -> &'static str {
        "bedrock"
    }

    async fn invoke(&self, call: &ModelCall) -> Result<ModelReply, InvokeError> {
        self.reply(call)
    }

    async fn embed(&self, call: &EmbedCall) -> Result<EmbedReply, InvokeError> {
        self.embedded.lock().unwrap().push(call.clone());
        self.answer.clone()?;
        Ok(EmbedReply {
            vectors: call
                .inputs
                .iter()
                .map(|t| vec![t.len() as f32, 1.0])
                .collect(),
            input_tokens: 10,
        })
    }

    /// The same blocks as events, as a provider streams them: text in small deltas, each tool call as a
    /// start (id and name) then its JSON input in fragments that split values mid-token.
    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError> {
        let reply = self.reply(call)?;
        let mut events = Vec::new();
        let mut index = 0;
        for block in reply.content {
            match block {
                ContentBlock::Text { text } => {
                    let chars: Vec<char> = text.chars().collect();
                    events.extend(
                        chars
                            .chunks(4)
                            .map(|c| StreamEvent::TextDelta(c.iter().collect())),
                    );
                }
                ContentBlock::ToolUse { id, name, input } => {
                    events.push(StreamEvent::ToolUseStart { index, id, name });
                    let json: Vec<char> = input.to_string().chars().collect();
                    events.extend(json.chunks(5).map(|c| StreamEvent::ToolInputDelta {
                        index,
                        partial_json: c.iter().collect(),
                    }));
                    index += 1;
                }
                _ => {}
            }
        }
        events.push(StreamEvent::Done {
            stop_reason: reply.stop_reason,
            usage: reply.usage,
        });
        Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
    }
}

/// A hub whose Bedrock models are answered by a [`Fake`], recording into a [`Recording`].
pub(super) struct Hub {
    pub(super) state: Arc<AppState>,
    pub(super) audit: Arc<Recording>,
    /// `alice`, an engineer.
    pub(super) token: String,
    /// `sam`, a support agent.
    pub(super) support_token: String,
    _dir: tempfile::TempDir,
}

/// An answer as the router gave it.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    /// The body as JSON (`null` when it is not JSON).
    pub(super) body: Value,
    /// The body as text.
    pub(super) text: String,
}

pub(super) async fn hub(model: Arc<Fake>) -> Hub {
    hub_with(model, Recording::default()).await
}

pub(super) async fn hub_with(model: Arc<Fake>, audit: Recording) -> Hub {
    hub_with_invoker(model, audit).await
}

/// A hub whose Bedrock models are answered by `model`, whatever it is.
pub(super) async fn hub_with_invoker(model: Arc<dyn ModelInvoker>, audit: Recording) -> Hub {
    hub_configured(model, audit, |_| {}).await
}

/// [`hub_with_invoker`] with `edit` applied to the configuration first.
pub(super) async fn hub_configured(
    model: Arc<dyn ModelInvoker>,
    audit: Recording,
    edit: impl FnOnce(&mut HubConfig),
) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::default();
    edit(&mut config);
    config.data_dir.0 = dir.path().to_path_buf();
    config.providers.bedrock = Some(BedrockConfig {
        region: Some("us-east-1".into()),
        endpoint_url: None,
        guardrail_id: None,
        guardrail_version: None,
        max_attempts: 1,
    });
    let audit = Arc::new(audit);
    let overrides = Overrides {
        audit: Some(audit.clone()),
        bedrock_invoker: Some(model),
        ..Overrides::default()
    };
    let state = Arc::new(build_state(config, overrides, false).await.unwrap());
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key
        .mint("alice", &["engineers".to_owned()], now, 300)
        .unwrap();
    let support_token = key
        .mint("sam", &["support-agents".to_owned()], now, 300)
        .unwrap();
    Hub {
        state,
        audit,
        token,
        support_token,
        _dir: dir,
    }
}

impl Hub {
    /// A POST to `path` as `alice` with a bearer token and purpose `evaluation`.
    pub(super) fn bearer(&self, path: &str) -> Builder {
        Request::post(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("x-causeway-purpose", "evaluation")
    }

    /// Sends `request` with `body` as JSON.
    pub(super) async fn send(&self, request: Builder, body: String) -> Answer {
        let request = request
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Posts `body` as `alice`; returns the status and the JSON body.
    pub(super) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_as(&self.token, path, body).await
    }

    /// Posts `body` with `token`; returns the status and the JSON body.
    pub(super) async fn post_as(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let request = Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("x-causeway-purpose", "evaluation");
        let answer = self.send(request, body.to_string()).await;
        (answer.status, answer.body)
    }

    /// Posts a streamed call; returns the status and the `data:` payloads of the events, in order.
    pub(super) async fn post_stream(&self, path: &str, body: Value) -> (u16, Vec<String>) {
        let answer = self.send(self.bearer(path), body.to_string()).await;
        let data = answer
            .text
            .split("\n\n")
            .filter_map(|event| {
                let lines: Vec<&str> = event
                    .lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
                (!lines.is_empty()).then(|| lines.join("\n"))
            })
            .collect();
        (answer.status, data)
    }

    /// Sends `body` as the Anthropic Python SDK does: the token in `x-api-key`, `anthropic-version`.
    pub(super) async fn anthropic(&self, path: &str, body: Value) -> Answer {
        self.send(
            Request::post(path)
                .header("x-api-key", &self.token)
                .header("anthropic-version", "2023-06-01")
                .header("x-causeway-purpose", "evaluation"),
            body.to_string(),
        )
        .await
    }

    /// Every audit event so far, in order.
    pub(super) fn events(&self) -> Vec<AuditEvent> {
        self.audit.events.lock().unwrap().clone()
    }

    pub(super) fn last_event(&self) -> AuditEvent {
        self.audit.events.lock().unwrap().last().cloned().unwrap()
    }

    pub(super) fn event_count(&self) -> usize {
        self.audit.events.lock().unwrap().len()
    }
}

/// `(event name, data)` of each server-sent event; comments (keep-alives) are skipped.
pub(super) fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|chunk| chunk.lines().any(|line| line.starts_with("data: ")))
        .map(|chunk| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in chunk.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}
