//! The governed path of an embedding call, whatever door it came in by (`/v1/embeddings`, Bedrock `invoke`
//! with an embedding body). The same stages as a chat call, over texts instead of a conversation:
//!
//! 1. validate: at least one text, none empty, at most [`MAX_INPUTS`] (400, not audited);
//! 2. admit: the caller's admission rate, purpose, an alias of `kind = "embedding"`, the spoke's allowed
//!    models, Cedar;
//!    the vector length asked for is at most the catalog's `dimensions`, each text within the model's
//!    `max_tokens`;
//! 3. guard: every text through the input guard, as a user message: PII is masked (or the call blocked) per
//!    profile, injections scored; the record lists what the guard did;
//! 4. reserve: the texts' estimated tokens and their cost against every budget;
//! 5. embed, then settle with the provider's token count;
//! 6. record: the audit record (its payload the masked texts and the vectors) before any vector leaves.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use causeway_audit::Payload;
use causeway_contract::audit::{AuditEvent, BlockCount, ContentSummary, Outcome};
use causeway_contract::catalog::ModelKind;
use causeway_contract::{GuardReport, Message, Role, TokenUsage};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{apply_guards, draft, record_with_payload, refuse};
use crate::budget::Usage;
use crate::error::{ApiError, HubError};
use crate::governed::{
    Ask, CallMeta, Ending, Refusal, admit, admit_rate, check_catalog_name, raise_for_findings,
    reserve, to_the_record, used,
};
use crate::invoke::{EmbedCall, InvokeError, estimate_tokens};
use crate::state::AppState;

/// Most texts one call may embed.
pub const MAX_INPUTS: usize = 256;

/// An embedding call in the hub's own terms.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    /// An embedding model alias.
    pub model: String,
    /// The declared purpose.
    pub purpose: String,
    /// The texts, in order.
    pub inputs: Vec<String>,
    /// A shorter vector length, where the model supports it.
    pub dimensions: Option<u32>,
}

/// The vectors of a governed embedding call; its record is durable.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedResponse {
    /// The audit record of the call.
    pub audit_id: Uuid,
    /// The alias.
    pub model: String,
    /// True when the local development model answered.
    pub development_model: bool,
    /// One vector per text, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens.
    pub usage: TokenUsage,
    /// What the guards did.
    pub guards: GuardReport,
}

fn validate(req: &EmbedRequest) -> Result<(), HubError> {
    let invalid = |message: String| Err(HubError::InvalidRequest(message));
    check_catalog_name(&req.model, "model")?;
    check_catalog_name(&req.purpose, "purpose")?;
    if req.inputs.is_empty() {
        return invalid("`input` must hold at least one text".to_owned());
    }
    if req.inputs.len() > MAX_INPUTS {
        return invalid(format!(
            "`input` holds {} texts; at most {MAX_INPUTS} per call",
            req.inputs.len()
        ));
    }
    if let Some(i) = req.inputs.iter().position(|t| t.trim().is_empty()) {
        return invalid(format!("`input[{i}]` is empty"));
    }
    if req.dimensions == Some(0) {
        return invalid("`dimensions` must be at least 1".to_owned());
    }
    Ok(())
}

/// Runs one governed embedding call.
///
/// # Errors
///
/// The caller's error, carrying the audit id of the refusal's record; a 503 `audit_unavailable` when the
/// record could not be written.
pub async fn embed(
    state: &Arc<AppState>,
    meta: CallMeta,
    req: EmbedRequest,
) -> Result<EmbedResponse, ApiError> {
    validate(&req)?;
    let state = Arc::clone(state);
    to_the_record(async move {
        let mut event = draft(&state, &meta, &req.model, &req.purpose);
        match govern(&state, &meta, req, &mut event).await {
            Ok(answer) => Ok(answer),
            Err(Ending::Refused(refusal)) => Err(refuse(&state, &meta, event, refusal).await),
            Err(Ending::Unrecorded(err)) => Err(err),
        }
    })
    .await
}

fn rejected(reason: &str, message: String) -> Refusal {
    Refusal::new(Outcome::Rejected, reason, HubError::InvalidRequest(message))
}

/// The payload kept with the record: the texts as sent to the model, and the vectors as base64 of their
/// little-endian 32-bit floats.
#[derive(Serialize)]
struct PromptPayload<'a> {
    model_id: &'a str,
    dimensions: Option<u32>,
    inputs: &'a [String],
}

fn vectors_payload(vectors: &[Vec<f32>]) -> String {
    let encoded: Vec<String> = vectors
        .iter()
        .map(|v| {
            let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .collect();
    serde_json::json!({ "encoding": "base64-f32le", "vectors": encoded }).to_string()
}

async fn govern(
    state: &Arc<AppState>,
    meta: &CallMeta,
    req: EmbedRequest,
    event: &mut AuditEvent,
) -> Result<EmbedResponse, Ending> {
    let bytes: usize = req.inputs.iter().map(String::len).sum();
    event.content = ContentSummary {
        blocks: vec![BlockCount {
            kind: "embedding_input".to_owned(),
            count: u32::try_from(req.inputs.len()).unwrap_or(u32::MAX),
            bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
        }],
        ..ContentSummary::default()
    };
    admit_rate(state, meta)?;
    let ask = Ask {
        model: &req.model,
        purpose: &req.purpose,
        kind: ModelKind::Embedding,
        tools: Vec::new(),
        has_images: false,
        has_documents: false,
    };
    let admitted = admit(state, meta, &ask, event)?;
    let entry = &admitted.entry;
    let most = entry.dimensions.unwrap_or(0);
    if let Some(asked) = req.dimensions.filter(|d| *d > most) {
        return Err(rejected(
            "invalid_dimensions",
            format!(
                "`dimensions` {asked} is more than model `{}` returns ({most})",
                req.model
            ),
        )
        .into());
    }
    if let Some((i, tokens)) = req
        .inputs
        .iter()
        .map(|t| estimate_tokens(t))
        .enumerate()
        .find(|(_, tokens)| *tokens > entry.max_tokens)
    {
        return Err(rejected(
            "input_too_long",
            format!(
                "`input[{i}]` is about {tokens} tokens; model `{}` takes at most {} per text",
                req.model, entry.max_tokens
            ),
        )
        .into());
    }

    // Each text is guarded as a user message of its own: masked values stay in their text.
    let messages: Vec<Message> = req
        .inputs
        .iter()
        .map(|t| Message::text(Role::User, t.clone()))
        .collect();
    let mut report = GuardReport::default();
    let verdict = state.guard.check_input(&messages, &mut report);
    apply_guards(event, &report);
    if let Some(reason) = verdict.blocked {
        return Err(Refusal::new(
            Outcome::Blocked,
            format!("input_guard:{reason}"),
            HubError::GuardBlocked(format!(
                "the input was blocked by guard profile `{}`: {reason}",
                report.profile
            )),
        )
        .into());
    }
    let raised = raise_for_findings(meta, &ask, &report, event)?;
    let meta = raised.as_ref().unwrap_or(meta);
    let call = EmbedCall {
        model_id: entry.model_id.clone(),
        inputs: verdict.messages.iter().map(Message::joined_text).collect(),
        dimensions: req.dimensions.or(entry.dimensions),
    };

    let estimate = call
        .inputs
        .iter()
        .map(|t| estimate_tokens(t))
        .fold(0, u32::saturating_add);
    let worst = Usage {
        tokens: u64::from(estimate),
        cost_micro_usd: entry.cost_micro_usd(estimate, 0),
    };
    let reservation = reserve(state, meta, worst).await?;
    let timeout = Duration::from_secs(state.config.providers.timeout_secs);
    let outcome = tokio::time::timeout(timeout, admitted.invoker.embed(&call)).await;
    let reply = match outcome {
        Ok(Ok(reply)) if reply.vectors.len() == call.inputs.len() => reply,
        Ok(Ok(reply)) => {
            state.budgets.release(reservation).await;
            let err = InvokeError::Protocol(format!(
                "{} vectors for {} texts",
                reply.vectors.len(),
                call.inputs.len()
            ));
            return Err(Refusal::invoke_failed(&admitted.alias, Some(err), timeout).into());
        }
        other => {
            state.budgets.release(reservation).await;
            let err = other.map_or(None, Result::err);
            return Err(Refusal::invoke_failed(&admitted.alias, err, timeout).into());
        }
    };
    let usage = TokenUsage {
        input_tokens: if reply.input_tokens > 0 {
            reply.input_tokens
        } else {
            estimate
        },
        output_tokens: 0,
    };
    state.budgets.settle(reservation, used(entry, usage)).await;
    event.usage = usage;
    event.cost_micro_usd = entry.cost_micro_usd(usage.input_tokens, 0);
    event.outcome = Outcome::Answered;
    event
        .reasons
        .push(format!("embeddings:{}", reply.vectors.len()));

    // INVARIANT: the record is durable before any vector is returned.
    let payload = Payload {
        prompt: serde_json::to_string(&PromptPayload {
            model_id: &call.model_id,
            dimensions: call.dimensions,
            inputs: &call.inputs,
        })
        .unwrap_or_default(),
        response: vectors_payload(&reply.vectors),
    };
    let audit_id = record_with_payload(state, meta, event.clone(), Some(payload))
        .await
        .map_err(Ending::Unrecorded)?;
    Ok(EmbedResponse {
        audit_id,
        model: admitted.alias,
        development_model: admitted.invoker.is_development(),
        vectors: reply.vectors,
        usage,
        guards: report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(inputs: &[&str]) -> EmbedRequest {
        EmbedRequest {
            model: "local-embed".into(),
            purpose: "evaluation".into(),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            dimensions: None,
        }
    }

    #[test]
    fn shape_errors_name_the_input() {
        assert!(validate(&request(&["a", "b"])).is_ok());
        let err = validate(&request(&[])).unwrap_err().to_string();
        assert!(err.contains("at least one text"), "{err}");
        let err = validate(&request(&["a", " "])).unwrap_err().to_string();
        assert!(err.contains("`input[1]` is empty"), "{err}");
        let many: Vec<&str> = vec!["x"; MAX_INPUTS + 1];
        let err = validate(&request(&many)).unwrap_err().to_string();
        assert!(err.contains("at most 256"), "{err}");
    }

    #[test]
    fn vectors_are_stored_as_little_endian_floats() {
        let payload = vectors_payload(&[vec![1.0, -2.5]]);
        let value: serde_json::Value = serde_json::from_str(&payload).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value["vectors"][0].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 8);
        assert_eq!(f32::from_le_bytes(bytes[4..8].try_into().unwrap()), -2.5);
    }
}
