//! The local development model: deterministic, offline, and labelled as not a real model in every answer.
//!
//! It exists so a new user can run the whole governed path (identity, policy, guards, audit) on a laptop
//! with no AWS account. It is served only for catalog entries whose provider is `local`, and only while
//! `providers.local.enabled` is true. Its answers describe what it received (counts, never content), and
//! when the caller asks for structured output it returns the smallest value that satisfies the schema.

use async_trait::async_trait;
use causeway_contract::TokenUsage;
use futures::stream;
use serde_json::{Map, Value};

use super::{
    InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream, StopReason, StreamEvent,
};

/// The label every local answer starts with.
pub const LABEL: &str = "[causeway local development model]";

/// The local development model.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalModel;

fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// The smallest JSON value that validates against common schemas: objects with their required properties,
/// the first `enum` value, the `minimum`, `minLength` characters, `minItems` items.
fn example_for(schema: &Value) -> Value {
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
                    out.insert(name.to_owned(), example_for(&sub));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = schema.get("items").map_or(Value::Null, example_for);
            Value::Array((0..min.min(16)).map(|_| item.clone()).collect())
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

impl LocalModel {
    fn answer(call: &ModelCall) -> ModelReply {
        let input_words: u32 = call
            .system
            .iter()
            .map(|s| words(s))
            .chain(call.messages.iter().map(|m| words(&m.content)))
            .sum();
        let text = match &call.response_schema {
            Some(schema) => example_for(schema).to_string(),
            None => format!(
                "{LABEL} This answer was produced locally, without any AI model. The request passed identity, \
                 policy, guard and budget checks and reached the model as {} message(s) of {input_words} words \
                 under {} system instruction block(s).",
                call.messages.len(),
                call.system.len()
            ),
        };
        let output_words = words(&text).min(call.max_tokens);
        ModelReply {
            stop_reason: StopReason::EndTurn,
            usage: TokenUsage {
                input_tokens: input_words,
                output_tokens: output_words,
            },
            text,
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

    async fn invoke_stream(&self, call: &ModelCall) -> Result<ModelStream, InvokeError> {
        let reply = Self::answer(call);
        let mut events: Vec<Result<StreamEvent, InvokeError>> = reply
            .text
            .split_inclusive(' ')
            .map(|piece| Ok(StreamEvent::Delta(piece.to_owned())))
            .collect();
        events.push(Ok(StreamEvent::Done {
            stop_reason: reply.stop_reason,
            usage: reply.usage,
        }));
        Ok(Box::pin(stream::iter(events)))
    }
}

#[cfg(test)]
mod tests {
    use causeway_contract::{Message, Role};
    use futures::StreamExt;

    use super::*;

    fn call(schema: Option<Value>) -> ModelCall {
        ModelCall {
            model_id: "causeway-local-dev".into(),
            system: vec!["be careful".into()],
            messages: vec![Message {
                role: Role::User,
                content: "hello there model".into(),
            }],
            max_tokens: 100,
            response_schema: schema,
        }
    }

    #[tokio::test]
    async fn labelled_and_deterministic() {
        let a = LocalModel.invoke(&call(None)).await.unwrap();
        let b = LocalModel.invoke(&call(None)).await.unwrap();
        assert!(a.text.starts_with(LABEL));
        assert_eq!(a.text, b.text);
        assert!(a.text.contains("1 message(s) of 5 words"), "{}", a.text);
        assert_eq!(a.usage.input_tokens, 5);
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
                Ok(StreamEvent::Delta(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, whole.text);
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
        let value: Value = serde_json::from_str(&reply.text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"sentiment": "positive", "score": 1, "tags": ["xx"]})
        );
    }
}
