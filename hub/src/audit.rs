//! Building audit events for governed calls and appending them, failing closed.
//!
//! INVARIANT: every governed call, answered or refused, goes through [`record`] (or [`record_with_payload`]);
//! a caller receives an answer only after it returned the receipt for it, and receives a 503
//! `audit_unavailable` when it fails.
//!
//! Answered calls and closing stream records also hand the store their payload: the prompt as sent to the
//! model ([`prompt_text`]) and the answer as returned. The store keeps it encrypted apart from the record, and
//! sets the record's `prompt_sha256` / `response_sha256` from exactly those bytes.

use causeway_audit::Payload;
use causeway_contract::audit::{AuditEvent, Outcome};
use causeway_contract::content::{ToolChoice, ToolDefinition};
use causeway_contract::{GuardReport, Message, TokenUsage};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::call::{CallMeta, Refusal};
use crate::collapse;
use crate::error::{ApiError, HubError};
use crate::invoke::ModelCall;
use crate::state::AppState;

/// The prompt exactly as sent to the model, in the form stored as the payload's `prompt` and hashed into
/// `prompt_sha256`: compact JSON `{"model_id":…,"system":[…],"messages":[{"role":…,"content":[blocks]}],
/// "tools":[…],"tool_choice":…,"max_tokens":…}`, keys in that order. Blocks are the native content blocks
/// (`{"type":"text","text":…}`, images and documents with their bytes in standard base64, tool uses and
/// results); `tools` and `tool_choice` are left out when the call offers no tools. This one encoding covers
/// every block, so `prompt_sha256` commits to images, documents and tool traffic too.
pub fn prompt_text(call: &ModelCall) -> String {
    #[derive(Serialize)]
    struct Prompt<'a> {
        model_id: &'a str,
        system: &'a [String],
        messages: &'a [Message],
        #[serde(skip_serializing_if = "<[ToolDefinition]>::is_empty")]
        tools: &'a [ToolDefinition],
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_choice: Option<&'a ToolChoice>,
        max_tokens: u32,
    }
    serde_json::to_string(&Prompt {
        model_id: &call.model_id,
        system: &call.system,
        messages: &call.messages,
        tools: &call.tools,
        tool_choice: call.tool_choice.as_ref(),
        max_tokens: call.max_tokens,
    })
    // Strings, integers and enums only: serialisation cannot fail.
    .unwrap_or_default()
}

/// A fresh event for a call, with everything known before the model alias is resolved.
pub fn draft(state: &AppState, meta: &CallMeta, model_alias: &str, purpose: &str) -> AuditEvent {
    let workload = meta.caller.workload.as_ref();
    let guard = state.guard.profile();
    AuditEvent {
        id: Uuid::now_v7(),
        call_id: meta.call_id,
        timestamp: OffsetDateTime::now_utc(),
        request_id: meta.request_id.clone(),
        api: meta.api.to_owned(),
        workload_principal: workload.map(|w| w.principal.clone()),
        spoke_account: workload.map(|w| w.spoke_account.clone()),
        application: workload.map(|w| w.application.clone()),
        user_sub: Some(meta.caller.user.sub.clone()),
        user_issuer: Some(meta.caller.user.issuer.clone()),
        purpose: Some(purpose.to_owned()).filter(|p| !p.is_empty()),
        data_classification: Some(meta.data_classification.clone()),
        model_alias: Some(model_alias.to_owned()).filter(|m| !m.is_empty()),
        model_id: None,
        model_version: None,
        provider: None,
        development_model: false,
        catalog_version: meta.policy.catalog().version.clone(),
        guard_profile: guard.name.clone(),
        guard_profile_version: guard.version.clone(),
        policy_hash: meta.policy.hash().to_owned(),
        outcome: Outcome::Rejected,
        error_code: None,
        reasons: Vec::new(),
        guard_events: Vec::new(),
        injection_permille: 0,
        grounding_permille: None,
        low_trust: false,
        usage: TokenUsage::default(),
        cost_micro_usd: 0,
        latency_us: 0,
        prompt_sha256: None,
        response_sha256: None,
        content: Default::default(),
    }
}

fn permille(score: f32) -> u16 {
    // Clamped to [0, 1000] before the cast, so it cannot truncate.
    (score.clamp(0.0, 1.0) * 1000.0).round() as u16
}

/// Copies what the guards did into the event.
pub fn apply_guards(event: &mut AuditEvent, report: &GuardReport) {
    event.guard_events = report.events.clone();
    event.injection_permille = permille(report.injection_score);
    event.grounding_permille = report.grounding_score.map(permille);
    event.low_trust = report.low_trust;
}

/// Appends the event (stamping time and latency) and counts it. Fails closed.
pub async fn record(
    state: &AppState,
    meta: &CallMeta,
    event: AuditEvent,
) -> Result<Uuid, ApiError> {
    record_with_payload(state, meta, event, None).await
}

/// [`record`], storing `payload` (encrypted, apart from the record) in the same commit. The store sets the
/// event's prompt and response hashes from the payload's bytes, so what is hashed is exactly what is
/// stored.
pub async fn record_with_payload(
    state: &AppState,
    meta: &CallMeta,
    mut event: AuditEvent,
    payload: Option<Payload>,
) -> Result<Uuid, ApiError> {
    event.timestamp = OffsetDateTime::now_utc();
    event.latency_us = u64::try_from(meta.started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let outcome = event.outcome.as_str();
    let model = metric_model(meta, event.model_alias.as_deref());
    let usage = event.usage;
    for e in &event.guard_events {
        let stage = match e.stage {
            causeway_contract::GuardStage::Input => "input",
            causeway_contract::GuardStage::Output => "output",
        };
        let action = serde_json::to_value(e.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        state.metrics.guard(stage, &e.kind, &action, e.count);
    }
    match state.audit.append(event, payload).await {
        Ok(receipt) => {
            state
                .metrics
                .call(outcome, &model, usage.input_tokens, usage.output_tokens);
            Ok(receipt.id)
        }
        Err(err) => {
            state.metrics.audit_failure();
            Err(HubError::AuditUnavailable(err.to_string()).into())
        }
    }
}

/// Records a refused call and returns the error for the caller, carrying the audit id. If the refusal itself
/// cannot be recorded, the caller gets the 503 instead.
pub async fn refuse(
    state: &AppState,
    meta: &CallMeta,
    mut event: AuditEvent,
    refusal: Refusal,
) -> ApiError {
    let Refusal {
        outcome,
        reasons,
        error,
    } = refusal;
    event.outcome = outcome;
    event.error_code = Some(error.code().as_str().to_owned());
    event.reasons.extend(reasons);
    // A repeat of a refusal already recorded this second is counted, not recorded (see `collapse`).
    let group = collapse::Group::of(&event);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if let collapse::Decision::Repeat(first) = state.refusals.decide(&group, now) {
        let model = metric_model(meta, event.model_alias.as_deref());
        state.metrics.call(event.outcome.as_str(), &model, 0, 0);
        return ApiError {
            error,
            audit_id: Some(first),
        };
    }
    let template = event.clone();
    match record(state, meta, event).await {
        Ok(id) => {
            if let Some(summary) = state.refusals.opened(group, now, id, template) {
                collapse::write_summary(state.audit.as_ref(), &state.metrics, summary).await;
            }
            ApiError {
                error,
                audit_id: Some(id),
            }
        }
        Err(audit_error) => audit_error,
    }
}

/// The model label of a call's metrics: a catalog alias, or `other`, so what a caller sends cannot grow the
/// label set.
fn metric_model(meta: &CallMeta, alias: Option<&str>) -> String {
    alias
        .filter(|alias| meta.policy.catalog().get(alias).is_some())
        .unwrap_or("other")
        .to_owned()
}
