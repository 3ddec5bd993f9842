//! The local development model: deterministic, offline, and labelled as not a real model in every answer.
//!
//! It exists so a new user can run the whole governed path (identity, policy, guards, audit) on a laptop
//! with no AWS account. It is served only for catalog entries whose provider is `local`, and only while
//! `providers.local.enabled` is true. Its answers describe what it received (counts, never content). When
//! the caller asks for structured output it returns the smallest value that satisfies the schema. When the
//! call offers tools (and `tool_choice` is not `none`) it calls one, the named one or else the first, with
//! the smallest arguments its schema accepts; after a tool result it answers in text, so a whole tool loop
//! runs without AWS. Its text ends before the first stop sequence of the call it contains, with stop reason
//! `stop_sequence`, as a model's would.
//!
//! It also serves `local` embedding entries: each text becomes a unit vector by feature hashing its lowercase
//! words and word pairs, so equal texts get equal vectors and texts sharing words point the same way
//! (enough to try a retrieval pipeline, not a real embedding model).
//!
//! What it generates from a caller's schema is bounded ([`MAX_EXAMPLE_VALUES`] values, [`MAX_EXAMPLE_DEPTH`]
//! levels), so a schema cannot make it build an answer of unbounded size.

use async_trait::async_trait;
use causeway_contract::TokenUsage;
use causeway_contract::content::{ContentBlock, Role, ToolChoice};
use futures::stream;
use serde_json::{Map, Value};

use super::{
    EmbedCall, EmbedReply, InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream,
    StopReason, StreamEvent, estimate_tokens,
};

/// The label every local answer starts with.
pub const LABEL: &str = "[causeway local development model]";

/// Most JSON values in one generated example.
pub const MAX_EXAMPLE_VALUES: usize = 1024;

/// Deepest nesting of a generated example.
pub const MAX_EXAMPLE_DEPTH: usize = 16;

/// The local development model.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalModel;

/// Vector length of a local embedding when the call names none.
pub const DEFAULT_EMBED_DIMENSIONS: u32 = 256;

/// FNV-1a: a stable hash, so a text's vector is the same on every machine and release.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A unit vector of `dimensions` for `text`: each lowercase word and each pair of neighbouring words adds
/// ±1 to the slot its hash picks (the sign from another bit of the hash).
pub fn embed_text(text: &str, dimensions: u32) -> Vec<f32> {
    let size = usize::try_from(dimensions.max(1)).unwrap_or(1);
    let mut vector = vec![0.0_f32; size];
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let pairs = words.windows(2).map(|w| format!("{} {}", w[0], w[1]));
    for feature in words.iter().cloned().chain(pairs) {
        let hash = fnv1a(feature.as_bytes());
        // The slot is the hash modulo the length; both fit in usize on every supported target.
        let slot = usize::try_from(hash % size as u64).unwrap_or(0);
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        if let Some(value) = vector.get_mut(slot) {
            *value += sign;
        }
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for value in &mut vector {
            *value /= norm;
        }
    }
    vector
}

fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// The smallest JSON value that validates against common schemas: objects with their required properties,
/// the first `enum` value, the `minimum`, `minLength` characters, `minItems` items; within the bounds above
/// (past them, `null`).
fn example_for(schema: &Value) -> Value {
    let mut budget = MAX_EXAMPLE_VALUES;
    example_within(schema, &mut budget, 0)
}

fn example_within(schema: &Value, budget: &mut usize, depth: usize) -> Value {
    if *budget == 0 || depth > MAX_EXAMPLE_DEPTH {
        return Value::Null;
    }
    *budget -= 1;
    if let Some(first) = schema.get("const") {
        return first.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|v| v.first())
    {
        return first.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types.iter().find_map(Value::as_str).unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "null",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            let props = schema.get("properties").and_then(Value::as_object);
            if let (Some(required), Some(props)) =
                (schema.get("required").and_then(Value::as_array), props)
            {
                for name in required.iter().filter_map(Value::as_str) {
                    let sub = props.get(name).cloned().unwrap_or(Value::Null);
                    out.insert(name.to_owned(), example_within(&sub, budget, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let items = schema.get("items").unwrap_or(&Value::Null);
            // Each item is generated on its own, so the budget counts every value.
            Value::Array(
                (0..min.min(16))
                    .map(|_| example_within(items, budget, depth + 1))
                    .collect(),
            )
        }
        "string" => {
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            Value::String("x".repeat(usize::try_from(min.min(256)).unwrap_or(0)))
        }
        "integer" => schema
            .get("minimum")
            .and_then(Value::as_i64)
            .map_or(Value::from(0), Value::from),
        "number" => schema
            .get("minimum")
            .and_then(Value::as_f64)
            .map_or(Value::from(0.0), Value::from),
        "boolean" => Value::Bool(false),
        _ => Value::Null,
    }
}

/// Counts of what a call carries, for the local model's description of it.
#[derive(Default)]
struct Received {
    words: u32,
    images: u32,
    documents: u32,
    tool_results: u32,
    tool_uses: u32,
}

impl Received {
    fn add(&mut self, block: &ContentBlock) {
        match block {
            ContentBlock::Text { text } => self.words = self.words.saturating_add(words(text)),
            ContentBlock::Image { .. } => self.images += 1,
            ContentBlock::Document { .. } => self.documents += 1,
            ContentBlock::ToolUse { input, .. } => {
                self.tool_uses += 1;
                self.words = self.words.saturating_add(words(&input.to_string()));
            }
            ContentBlock::ToolResult { content, .. } => {
                self.tool_results += 1;
                for inner in content {
                    self.add(inner);
                }
            }
        }
    }
}

impl LocalModel {
    /// The text up to the earliest stop sequence it contains, if it contains one.
    fn cut_at_stop(text: &str, stops: &[String]) -> Option<String> {
        stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
            .map(|at| text[..at].to_owned())
    }

    fn answer(call: &ModelCall) -> ModelReply {
        let mut received = Received::default();
        for text in &call.system {
            received.words = received.words.saturating_add(words(text));
        }
        for block in call.messages.iter().flat_map(|m| &m.content) {
            received.add(block);
        }
        let input_tokens = received.words;
        let last_has_results = call
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .is_some_and(|m| {
                m.content
                    .iter()
                    .any(|b| matches!(b, ContentBlock::ToolResult { .. }))
            });
        let tool = match &call.tool_choice {
            Some(ToolChoice::None) => None,
            Some(ToolChoice::Tool { name }) => call.tools.iter().find(|t| &t.name == name),
            _ => call.tools.first(),
        }
        .filter(|_| !last_has_results && call.response_schema.is_none());

        let (content, stop_reason) = if let Some(tool) = tool {
            let input = example_for(&tool.input_schema);
            let id = format!("call_local_{}", received.tool_uses + 1);
            (
                vec![ContentBlock::ToolUse {
                    id,
                    name: tool.name.clone(),
                    input,
                }],
                StopReason::ToolUse,
            )
        } else {
            let text = match &call.response_schema {
                Some(schema) => example_for(schema).to_string(),
                None if last_has_results => format!(
                    "{LABEL} This answer was produced locally, without any AI model, after {} tool result(s). \
                     The request passed identity, policy, guard and budget checks.",
                    received.tool_results
                ),
                None => format!(
                    "{LABEL} This answer was produced locally, without any AI model. The request passed identity, \
                     policy, guard and budget checks and reached the model as {} message(s) of {} words, {} \
                     image(s) and {} document(s) under {} system instruction block(s).",
                    call.messages.len(),
                    received.words,
                    received.images,
                    received.documents,
                    call.system.len()
                ),
            };
            match Self::cut_at_stop(&text, &call.stop_sequences) {
                Some(cut) => (vec![ContentBlock::text(cut)], StopReason::StopSequence),
                None => (vec![ContentBlock::text(text)], StopReason::EndTurn),
            }
        };
        let produced: u32 = content
            .iter()
            .map(|b| match b {
                ContentBlock::Text { text } => words(text),
                ContentBlock::ToolUse { input, .. } => words(&input.to_string()).max(1),
                _ => 0,
            })
            .sum();
        ModelReply {
            stop_reason,
            usage: TokenUsage {
                input_tokens,
                output_tokens: produced.min(call.max_tokens),
            },
            content,
        }
    }
}

#[async_trait]
impl ModelInvoker for LocalModel {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn is_development(&self) -> bool {
        true
    }

    async fn invoke(&self, call: &ModelCall) -> Result<ModelReply, InvokeError> {
        Ok(Self::answer(call))
    }

    async fn embed(&self, call: &EmbedCall) -> Result<EmbedReply, InvokeError> {
        let dimensions = call.dimensions.unwrap_or(DEFAULT_EMBED_DIMENSIONS);
        Ok(EmbedReply {
            vectors: call
                .inputs
                .iter()
                .map(|text| embed_text(text, dimensions))
                .collect(),
            input_tokens: call
                .inputs
                .iter()
                .map(|t| estimate_tokens(t))
                .fold(0, u32::saturating_add),
        })
    }

    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError> {
        let reply = Self::answer(call);
        let mut events: Vec<Result<StreamEvent, InvokeError>> = Vec::new();
        let mut tool_index = 0;
        for block in &reply.content {
            match block {
                ContentBlock::Text { text } => events.extend(
                    text.split_inclusive(' ')
                        .map(|piece| Ok(StreamEvent::TextDelta(piece.to_owned()))),
                ),
                ContentBlock::ToolUse { id, name, input } => {
                    events.push(Ok(StreamEvent::ToolUseStart {
                        index: tool_index,
                        id: id.clone(),
                        name: name.clone(),
                    }));
                    // Fragments cut anywhere, as real models send them.
                    let json = input.to_string();
                    let chars: Vec<char> = json.chars().collect();
                    events.extend(chars.chunks(8).map(|piece| {
                        Ok(StreamEvent::ToolInputDelta {
                            index: tool_index,
                            partial_json: piece.iter().collect(),
                        })
                    }));
                    tool_index += 1;
                }
                _ => {}
            }
        }
        events.push(Ok(StreamEvent::Done {
            stop_reason: reply.stop_reason,
            usage: reply.usage,
        }));
        Ok(Box::pin(stream::iter(events)))
    }
}

#[cfg(test)]
mod tests {
    use causeway_contract::content::ToolDefinition;
    use causeway_contract::{Message, Role};
    use futures::StreamExt;

    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[tokio::test]
    async fn local_embeddings_are_stable_unit_vectors_that_follow_shared_words() {
        let call = EmbedCall {
            model_id: "causeway-local-embed".into(),
            inputs: vec![
                "refund the duplicated direct debit".into(),
                "Refund the duplicated direct debit!".into(),
                "quarterly headcount planning notes".into(),
            ],
            dimensions: Some(64),
        };
        let reply = LocalModel.embed(&call).await.unwrap();
        assert_eq!(reply.vectors.len(), 3);
        assert!(reply.vectors.iter().all(|v| v.len() == 64));
        let norm: f32 = cosine(&reply.vectors[0], &reply.vectors[0]);
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        // Case and punctuation aside, the same words give the same vector.
        assert!((cosine(&reply.vectors[0], &reply.vectors[1]) - 1.0).abs() < 1e-5);
        assert!(cosine(&reply.vectors[0], &reply.vectors[2]) < 0.5);
        assert_eq!(
            reply.vectors[0],
            embed_text("refund the duplicated direct debit", 64)
        );
        // Without dimensions, the default length.
        let reply = LocalModel
            .embed(&EmbedCall {
                dimensions: None,
                ..call
            })
            .await
            .unwrap();
        assert_eq!(reply.vectors[0].len(), DEFAULT_EMBED_DIMENSIONS as usize);
    }

    fn call(schema: Option<Value>) -> ModelCall {
        ModelCall {
            model_id: "causeway-local-dev".into(),
            system: vec!["be careful".into()],
            messages: vec![Message::text(Role::User, "hello there model")],
            tools: Vec::new(),
            tool_choice: None,
            max_tokens: 100,
            stop_sequences: Vec::new(),
            response_schema: schema,
        }
    }

    #[tokio::test]
    async fn labelled_and_deterministic() {
        let a = LocalModel.invoke(&call(None)).await.unwrap();
        let b = LocalModel.invoke(&call(None)).await.unwrap();
        let text = a.content[0].as_text().unwrap();
        assert!(text.starts_with(LABEL));
        assert_eq!(a.content, b.content);
        assert!(text.contains("1 message(s) of 5 words"), "{text}");
        assert_eq!(a.usage.input_tokens, 5);
    }

    #[tokio::test]
    async fn text_ends_before_the_first_stop_sequence() {
        let mut stopped = call(None);
        stopped.stop_sequences = vec!["policy".into(), "locally".into()];
        let reply = LocalModel.invoke(&stopped).await.unwrap();
        assert_eq!(reply.stop_reason, StopReason::StopSequence);
        let text = reply.content[0].as_text().unwrap();
        assert!(text.ends_with("was produced "), "{text}");
        stopped.stop_sequences = vec!["not in the answer".into()];
        let reply = LocalModel.invoke(&stopped).await.unwrap();
        assert_eq!(reply.stop_reason, StopReason::EndTurn);
    }

    #[tokio::test]
    async fn stream_concatenates_to_the_same_answer() {
        let whole = LocalModel.invoke(&call(None)).await.unwrap();
        let events: Vec<_> = LocalModel
            .invoke_stream(&call(None))
            .await
            .unwrap()
            .collect()
            .await;
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                Ok(StreamEvent::TextDelta(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, whole.content[0].as_text().unwrap());
        assert!(matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))));
    }

    #[tokio::test]
    async fn structured_answer_satisfies_the_schema_shape() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["sentiment", "score", "tags"],
            "properties": {
                "sentiment": {"enum": ["positive", "negative"]},
                "score": {"type": "integer", "minimum": 1},
                "tags": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 2}}
            }
        });
        let reply = LocalModel.invoke(&call(Some(schema))).await.unwrap();
        let value: Value = serde_json::from_str(reply.content[0].as_text().unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"sentiment": "positive", "score": 1, "tags": ["xx"]})
        );
    }

    #[tokio::test]
    async fn hostile_schemas_make_bounded_answers() {
        // Seven levels of 16 items each would be 16^7 values if generated naively.
        let mut schema = serde_json::json!({"type": "string"});
        for _ in 0..7 {
            schema = serde_json::json!({"type": "array", "minItems": 16, "items": schema});
        }
        let reply = LocalModel.invoke(&call(Some(schema))).await.unwrap();
        let text = reply.content[0].as_text().unwrap();
        assert!(text.len() < 64 * 1024, "{} bytes", text.len());
    }

    fn weather() -> ToolDefinition {
        ToolDefinition {
            name: "get_weather".into(),
            description: Some("Current weather for a city".into()),
            input_schema: serde_json::json!({
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string", "minLength": 2}}
            }),
        }
    }

    #[tokio::test]
    async fn calls_an_offered_tool_then_answers_its_result() {
        let mut first = call(None);
        first.tools = vec![weather()];
        let reply = LocalModel.invoke(&first).await.unwrap();
        assert_eq!(reply.stop_reason, StopReason::ToolUse);
        let ContentBlock::ToolUse { id, name, input } = &reply.content[0] else {
            unreachable!("{:?}", reply.content)
        };
        assert_eq!(name, "get_weather");
        assert_eq!(input, &serde_json::json!({"city": "xx"}));

        let mut second = first.clone();
        second.messages.push(Message {
            role: Role::Assistant,
            content: reply.content.clone(),
        });
        second.messages.push(Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: id.clone(),
                content: vec![ContentBlock::text("{\"temp_c\": 21}")],
                is_error: false,
            }],
        });
        let answer = LocalModel.invoke(&second).await.unwrap();
        assert_eq!(answer.stop_reason, StopReason::EndTurn);
        assert!(
            answer.content[0]
                .as_text()
                .unwrap()
                .contains("after 1 tool result(s)")
        );

        let mut none = first.clone();
        none.tool_choice = Some(ToolChoice::None);
        let text = LocalModel.invoke(&none).await.unwrap();
        assert_eq!(text.stop_reason, StopReason::EndTurn);
    }

    #[tokio::test]
    async fn streamed_tool_call_arrives_as_start_then_fragments() {
        let mut first = call(None);
        first.tools = vec![weather()];
        let events: Vec<_> = LocalModel
            .invoke_stream(&first)
            .await
            .unwrap()
            .collect()
            .await;
        assert!(matches!(
            &events[0],
            Ok(StreamEvent::ToolUseStart { index: 0, name, .. }) if name == "get_weather"
        ));
        let json: String = events
            .iter()
            .filter_map(|e| match e {
                Ok(StreamEvent::ToolInputDelta { partial_json, .. }) => Some(partial_json.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(json, r#"{"city":"xx"}"#);
        assert!(matches!(
            events.last(),
            Some(Ok(StreamEvent::Done {
                stop_reason: StopReason::ToolUse,
                ..
            }))
        ));
    }
}
