//! Structured output: checking a caller's JSON Schema and validating an answer against it.
//!
//! Schemas are compiled with `jsonschema` built without its HTTP and file resolvers, so a `$ref` to
//! anything outside the schema fails instead of reaching the network. Mismatch messages mask the
//! answer's values (they may hold personal data) and name the JSON pointer of the first failing location.

use serde_json::Value;

/// Why a schema or a structured answer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The schema itself is not a valid JSON Schema.
    #[error("invalid json schema at `{path}`: {message}")]
    InvalidSchema {
        /// JSON pointer into the schema (`/` for the root).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The answer is not JSON, even after removing a Markdown code fence.
    #[error("answer is not valid json: {0}")]
    NotJson(String),
    /// The answer is JSON but does not match the schema.
    #[error("answer does not match the schema at `{path}`: {message}")]
    Mismatch {
        /// JSON pointer into the answer (`/` for the root).
        path: String,
        /// What is wrong, with the answer's values masked.
        message: String,
    },
}

/// Checks that `schema` is a valid JSON Schema (any draft `jsonschema` knows; the draft is detected from
/// `$schema`, default 2020-12) that compiles without external references.
///
/// # Errors
///
/// [`SchemaError::InvalidSchema`] naming the first bad location.
pub fn check_schema(schema: &Value) -> Result<(), SchemaError> {
    compile(schema).map(|_| ())
}

/// Parses `answer` as JSON (tolerating a surrounding Markdown code fence such as ```` ```json ````) and
/// validates it against `schema`.
///
/// # Errors
///
/// [`SchemaError::InvalidSchema`] when the schema is bad, [`SchemaError::NotJson`] when the answer does not
/// parse, [`SchemaError::Mismatch`] naming the first failing path otherwise.
pub fn validate_structured(schema: &Value, answer: &str) -> Result<Value, SchemaError> {
    let validator = compile(schema)?;
    let value = parse_answer(answer)?;
    if let Err(error) = validator.validate(&value) {
        return Err(SchemaError::Mismatch {
            path: pointer(error.instance_path().as_str()),
            message: lowercase_first(&error.masked().to_string()),
        });
    }
    Ok(value)
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, SchemaError> {
    jsonschema::validator_for(schema).map_err(|error| SchemaError::InvalidSchema {
        path: pointer(error.instance_path().as_str()),
        message: lowercase_first(&error.to_string()),
    })
}

fn parse_answer(answer: &str) -> Result<Value, SchemaError> {
    let trimmed = answer.trim();
    let first_error = match serde_json::from_str(trimmed) {
        Ok(value) => return Ok(value),
        Err(e) => e.to_string(),
    };
    if let Some(inner) = fenced(trimmed)
        && let Ok(value) = serde_json::from_str(inner.trim())
    {
        return Ok(value);
    }
    Err(SchemaError::NotJson(first_error))
}

/// The body of the first Markdown code fence in `text`, without its info string (`json`).
fn fenced(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after_ticks = &text[start + 3..];
    let body_start = after_ticks.find('\n').map_or(0, |i| i + 1);
    let info = &after_ticks[..body_start];
    // An info string is one word (`json`, `JSON`); anything else means the fence has no info line.
    let body = if info.trim().chars().all(|c| c.is_ascii_alphanumeric()) {
        &after_ticks[body_start..]
    } else {
        after_ticks
    };
    let end = body.find("```").unwrap_or(body.len());
    Some(&body[..end])
}

fn pointer(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first
            .to_lowercase()
            .chain(chars)
            .collect::<String>()
            .replace('\n', " "),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["name", "items"],
            "properties": {
                "name": {"type": "string"},
                "items": {"type": "array", "items": {"type": "object", "properties": {"price": {"type": "number"}}}}
            },
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_answer_passes_with_or_without_fence() {
        let plain = r#"{"name": "a", "items": [{"price": 2.5}]}"#;
        assert_eq!(
            validate_structured(&schema(), plain).unwrap()["items"][0]["price"],
            json!(2.5)
        );
        let fenced = format!("Here you go:\n```json\n{plain}\n```\n");
        assert_eq!(
            validate_structured(&schema(), &fenced).unwrap()["name"],
            json!("a")
        );
        let bare_fence = format!("```\n{plain}\n```");
        assert!(validate_structured(&schema(), &bare_fence).is_ok());
    }

    #[test]
    fn mismatch_names_the_path_and_masks_the_value() {
        let err = validate_structured(
            &schema(),
            r#"{"name": "a", "items": [{"price": "jane@example.com"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"answer does not match the schema at `/items/0/price`: value is not of type "number""#
        );
        let err = validate_structured(&schema(), r#"{"items": []}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"answer does not match the schema at `/`: "name" is a required property"#
        );
    }

    #[test]
    fn not_json() {
        let err = validate_structured(&schema(), "Sorry, I can't do that.").unwrap_err();
        assert!(matches!(err, SchemaError::NotJson(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "answer is not valid json: expected value at line 1 column 1"
        );
    }

    #[test]
    fn check_schema_accepts_valid_and_rejects_invalid() {
        assert!(check_schema(&schema()).is_ok());
        assert!(check_schema(&json!(true)).is_ok());
        let err = check_schema(&json!({"type": "invalid_type"})).unwrap_err();
        assert!(matches!(err, SchemaError::InvalidSchema { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("invalid json schema at `/type`: "),
            "{err}"
        );
        let err = check_schema(&json!({"properties": {"a": {"minLength": -1}}})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid json schema at `/properties/a/minLength`"),
            "{err}"
        );
    }

    #[test]
    fn external_refs_do_not_resolve() {
        let err = check_schema(&json!({"$ref": "https://example.com/schema.json"})).unwrap_err();
        assert!(matches!(err, SchemaError::InvalidSchema { .. }), "{err}");
        let err = check_schema(&json!({"$schema": "https://example.com/meta", "type": "object"}))
            .unwrap_err();
        assert!(matches!(err, SchemaError::InvalidSchema { .. }), "{err}");
    }
}
