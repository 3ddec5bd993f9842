//! The governed request path. Every model call, whatever door it came in by, passes these stages in order:
//! validate → resolve purpose and model → authorize (Cedar) → budget → input guard and prompt assembly →
//! invoke → output guard → audit. Each refusal is audited like an answer.
//!
//! INVARIANT: no answer leaves the hub before its audit record is durable. For a complete answer that is the
//! `answered` record. For a streamed answer it is the `stream_started` record, written before the first byte;
//! a `stream_completed` (or `failed` / `blocked`) record with the same `call_id` follows when it ends, and if
//! that one cannot be written the stream ends with an error instead of its normal end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use causeway_contract::audit::{AuditEvent, Outcome, sha256_hex};
use causeway_contract::catalog::{ModelEntry, ProviderKind};
use causeway_contract::{
    GuardAction, GuardReport, GuardStage, InvokeRequest, InvokeResponse, Message, Role, TokenUsage,
};
use causeway_guard::{PseudonymMap, StreamStep};
use causeway_policy::{AccessRequest, PolicyBundle};
use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::app::AppState;
use crate::audit::{apply_guards, draft, record, refuse};
use crate::auth::Caller;
use crate::budget::{BudgetRefusal, BudgetSubjects, Reservation, Usage};
use crate::error::{ApiError, HubError};
use crate::invoke::{InvokeError, ModelCall, ModelInvoker, StopReason, StreamEvent};

/// Everything about a call that is not in its body.
#[derive(Debug, Clone)]
pub struct CallMeta {
    /// Groups the audit records of this call.
    pub call_id: Uuid,
    /// The HTTP request id.
    pub request_id: String,
    /// Which door: `invoke` or `chat_completions`.
    pub api: &'static str,
    /// The verified caller.
    pub caller: Caller,
    /// The data classification in context.
    pub data_classification: String,
    /// The policy bundle in force when the call arrived; every decision and audit record of the call uses it.
    pub policy: Arc<PolicyBundle>,
    /// When the request arrived.
    pub started: Instant,
}

/// A call that passed every check before the model.
struct Prepared {
    alias: String,
    entry: ModelEntry,
    invoker: Arc<dyn ModelInvoker>,
    call: ModelCall,
    pseudonyms: PseudonymMap,
    report: GuardReport,
    reservation: Reservation,
    event: AuditEvent,
}

fn validate(req: &InvokeRequest) -> Result<(), HubError> {
    if req.model.trim().is_empty() {
        return Err(HubError::InvalidRequest(
            "`model` must not be empty".to_owned(),
        ));
    }
    if req.purpose.trim().is_empty() {
        return Err(HubError::InvalidRequest(
            "`purpose` must not be empty".to_owned(),
        ));
    }
    if req.messages.is_empty() {
        return Err(HubError::InvalidRequest(
            "`messages` must contain at least one message".to_owned(),
        ));
    }
    if !req.messages.iter().any(|m| m.role == Role::User) {
        return Err(HubError::InvalidRequest(
            "`messages` must contain a `user` message".to_owned(),
        ));
    }
    if let Some((i, _)) = req
        .messages
        .iter()
        .enumerate()
        .find(|(_, m)| m.content.trim().is_empty())
    {
        return Err(HubError::InvalidRequest(format!(
            "`messages[{i}].content` must not be empty"
        )));
    }
    if req.max_tokens == Some(0) {
        return Err(HubError::InvalidRequest(
            "`max_tokens` must be at least 1".to_owned(),
        ));
    }
    if let Some(schema) = &req.response_schema {
        causeway_guard::check_schema(schema).map_err(|e| {
            HubError::InvalidRequest(format!("`response_schema` is not a valid JSON Schema: {e}"))
        })?;
    }
    if let Some(context) = &req.context
        && let Some((i, _)) = context
            .iter()
            .enumerate()
            .find(|(_, c)| c.trim().is_empty())
    {
        return Err(HubError::InvalidRequest(format!(
            "`context[{i}]` must not be empty"
        )));
    }
    Ok(())
}

/// The aliases `caller` may use for `purpose`, in catalog order.
pub fn visible_models(
    state: &AppState,
    caller: &Caller,
    purpose: &str,
    classification: &str,
) -> Vec<String> {
    let workload = caller.workload.as_ref();
    let policy = state.policy.current();
    policy
        .catalog()
        .models
        .iter()
        .filter(|(_, entry)| state.invoker_for(entry.provider).is_some())
        .map(|(alias, _)| alias)
        .filter(|alias| workload.is_none_or(|w| w.may_use(alias)))
        .filter(|alias| {
            policy
                .authorize(&AccessRequest {
                    user: &caller.user.sub,
                    groups: &caller.user.groups,
                    model_alias: alias,
                    purpose,
                    data_classification: classification,
                    spoke_account: workload.map_or("", |w| w.spoke_account.as_str()),
                    ou: workload.map_or("", |w| w.ou.as_str()),
                    application: workload.map_or("", |w| w.application.as_str()),
                })
                .is_allowed()
        })
        .cloned()
        .collect()
}

fn backticked(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The worst case of a call: about four characters per token for the prompt, plus the whole answer
/// allowance, and what that costs at the catalog's prices.
fn worst_case(call: &ModelCall, entry: &ModelEntry) -> Usage {
    let chars: usize = call.system.iter().map(String::len).sum::<usize>()
        + call.messages.iter().map(|m| m.content.len()).sum::<usize>();
    let input = u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX);
    Usage {
        tokens: u64::from(input) + u64::from(call.max_tokens),
        cost_micro_usd: entry.cost_micro_usd(input, call.max_tokens),
    }
}

/// What a call really used, for settling its reservation.
fn used(entry: &ModelEntry, usage: TokenUsage) -> Usage {
    Usage {
        tokens: u64::from(usage.total()),
        cost_micro_usd: entry.cost_micro_usd(usage.input_tokens, usage.output_tokens),
    }
}

fn prompt_digest(call: &ModelCall) -> String {
    // The same bytes the audit store keeps as the payload's prompt.
    sha256_hex(crate::audit::prompt_text(call).as_bytes())
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn invoke_error(alias: &str, err: &InvokeError) -> (HubError, &'static str) {
    match err {
        InvokeError::Throttled => (
            HubError::ModelUnavailable(format!(
                "model `{alias}` is throttling requests; retry later"
            )),
            "provider_throttled",
        ),
        InvokeError::Unavailable(_) => (
            HubError::ModelUnavailable(format!("model `{alias}` is unavailable: {err}")),
            "provider_unavailable",
        ),
        InvokeError::Rejected(_) => (
            HubError::ModelError(format!("model `{alias}` rejected the request: {err}")),
            "provider_rejected",
        ),
        InvokeError::Protocol(_) => (
            HubError::ModelError(format!(
                "model `{alias}` returned an unusable answer: {err}"
            )),
            "provider_protocol",
        ),
    }
}

/// A model call that failed (`Some(error)`) or timed out (`None`) before answering: give the budget back,
/// audit the failure, and return the caller's error.
async fn call_failed(
    state: &AppState,
    meta: &CallMeta,
    event: AuditEvent,
    reservation: Reservation,
    alias: &str,
    error: Option<InvokeError>,
    timeout: Duration,
) -> ApiError {
    state.budgets.release(reservation).await;
    let (error, reason) = match error {
        Some(err) => invoke_error(alias, &err),
        None => (
            HubError::Timeout(format!(
                "model `{alias}` did not answer within {} s",
                timeout.as_secs()
            )),
            "provider_timeout",
        ),
    };
    refuse(
        state,
        meta,
        event,
        Outcome::Failed,
        vec![reason.into()],
        error,
    )
    .await
}

async fn prepare(
    state: &AppState,
    meta: &CallMeta,
    req: InvokeRequest,
) -> Result<Prepared, ApiError> {
    validate(&req)?;
    let mut event = draft(state, meta, &req.model, &req.purpose);
    let purposes = meta.policy.purposes();
    if !purposes.contains(&req.purpose) {
        let err = HubError::InvalidRequest(format!(
            "unknown purpose `{}`; declare one of {}",
            req.purpose,
            purposes.allowed_list()
        ));
        return Err(refuse(
            state,
            meta,
            event,
            Outcome::Rejected,
            vec!["unknown_purpose".into()],
            err,
        )
        .await);
    }

    let user = &meta.caller.user;
    let visible = || visible_models(state, &meta.caller, &req.purpose, &meta.data_classification);
    let Some(entry) = meta.policy.catalog().get(&req.model).cloned() else {
        let err = HubError::ModelNotFound(format!(
            "unknown model `{}`; models available to you for purpose `{}`: {}",
            req.model,
            req.purpose,
            backticked(&visible())
        ));
        return Err(refuse(
            state,
            meta,
            event,
            Outcome::Rejected,
            vec!["unknown_model".into()],
            err,
        )
        .await);
    };
    event.model_id = Some(entry.model_id.clone());
    event.model_version = Some(entry.version.clone());
    event.provider = Some(entry.provider.as_str().to_owned());
    event.development_model = entry.provider == ProviderKind::Local;

    // Authorize: the spoke's registration first, then Cedar.
    let workload = meta.caller.workload.as_ref();
    if let Some(w) = workload.filter(|w| !w.may_use(&req.model)) {
        let err = HubError::Forbidden(format!(
            "spoke account `{}` may not use the model `{}`; its allowed models: {}",
            w.spoke_account,
            req.model,
            backticked(&w.allowed_models)
        ));
        return Err(refuse(
            state,
            meta,
            event,
            Outcome::Denied,
            vec!["spoke:model_not_allowed".into()],
            err,
        )
        .await);
    }
    let decision = meta.policy.authorize(&AccessRequest {
        user: &user.sub,
        groups: &user.groups,
        model_alias: &req.model,
        purpose: &req.purpose,
        data_classification: &meta.data_classification,
        spoke_account: workload.map_or("", |w| w.spoke_account.as_str()),
        ou: workload.map_or("", |w| w.ou.as_str()),
        application: workload.map_or("", |w| w.application.as_str()),
    });
    if !decision.is_allowed() {
        let reasons = decision.audit_reasons();
        let err = HubError::Forbidden(format!(
            "policy denies `{}` the model `{}` for purpose `{}` ({})",
            user.sub,
            req.model,
            req.purpose,
            reasons.join(", ")
        ));
        return Err(refuse(state, meta, event, Outcome::Denied, reasons, err).await);
    }
    event.reasons = decision.audit_reasons();

    let Some(invoker) = state.invoker_for(entry.provider) else {
        let err = HubError::ModelUnavailable(format!(
            "model `{}` is served by provider `{}`, which this hub does not have configured",
            req.model,
            entry.provider.as_str()
        ));
        return Err(refuse(
            state,
            meta,
            event,
            Outcome::Failed,
            vec!["provider_not_configured".into()],
            err,
        )
        .await);
    };

    // Input guard. Grounding context is sent to the model as source material, so it is guarded too.
    let mut messages = req.messages.clone();
    if let Some(context) = &req.context {
        let sources = context
            .iter()
            .enumerate()
            .map(|(i, c)| format!("[{}] {c}", i + 1))
            .collect::<Vec<_>>()
            .join("\n\n");
        let at = messages
            .iter()
            .rposition(|m| m.role == Role::User)
            .unwrap_or(0);
        messages.insert(
            at,
            Message {
                role: Role::User,
                content: format!("Source passages for the question that follows:\n\n{sources}"),
            },
        );
    }
    // The guard stamps its profile name and version on the report.
    let mut report = GuardReport::default();
    let verdict = state.guard.check_input(&messages, &mut report);
    apply_guards(&mut event, &report);
    if let Some(reason) = verdict.blocked {
        let err = HubError::GuardBlocked(format!(
            "the prompt was blocked by guard profile `{}`: {reason}",
            report.profile
        ));
        return Err(refuse(
            state,
            meta,
            event,
            Outcome::Blocked,
            vec![format!("input_guard:{reason}")],
            err,
        )
        .await);
    }

    let nonce = meta.call_id.simple().to_string();
    let prompt = state.guard.assemble_prompt(&verdict.messages, &nonce);
    let mut system = prompt.system;
    if let Some(schema) = &req.response_schema {
        system.push(format!(
            "Answer with a single JSON value and nothing else. It must validate against this JSON Schema:\n{schema}"
        ));
    }
    let call = ModelCall {
        model_id: entry.model_id.clone(),
        system,
        messages: prompt.messages,
        max_tokens: req
            .max_tokens
            .map_or(entry.max_tokens, |m| m.min(entry.max_tokens)),
        response_schema: req.response_schema.clone(),
    };
    event.prompt_sha256 = Some(prompt_digest(&call));

    // Budget: reserve the worst case now, settle with real usage after the call.
    let subjects = BudgetSubjects {
        user: &user.sub,
        application: workload.map(|w| w.application.as_str()),
        spoke_account: workload.map(|w| w.spoke_account.as_str()),
        spoke_limits: workload.map(|w| w.limits).unwrap_or_default(),
    };
    let reservation = match state
        .budgets
        .reserve(&subjects, worst_case(&call, &entry), now_unix())
        .await
    {
        Ok(reservation) => reservation,
        Err(refusal) => {
            let (outcome, reason, err) = match &refusal {
                BudgetRefusal::Exceeded(exceeded) => (
                    Outcome::Throttled,
                    format!("budget:{}", exceeded.budget),
                    HubError::BudgetExceeded {
                        message: refusal.to_string(),
                        retry_after_secs: exceeded.retry_after_secs,
                    },
                ),
                BudgetRefusal::Unavailable(_) => (
                    Outcome::Failed,
                    "budget_unavailable".to_owned(),
                    HubError::Internal(refusal.to_string()),
                ),
            };
            return Err(refuse(state, meta, event, outcome, vec![reason], err).await);
        }
    };

    Ok(Prepared {
        alias: req.model,
        entry,
        invoker,
        call,
        pseudonyms: verdict.pseudonyms,
        report,
        reservation,
        event,
    })
}

/// A governed, complete (non-streamed) call.
pub async fn invoke(
    state: &AppState,
    meta: &CallMeta,
    req: InvokeRequest,
) -> Result<InvokeResponse, ApiError> {
    let context = req.context.clone();
    let schema = req.response_schema.clone();
    let Prepared {
        alias,
        entry,
        invoker,
        call,
        pseudonyms,
        mut report,
        reservation,
        mut event,
    } = prepare(state, meta, req).await?;

    let timeout = Duration::from_secs(state.config.providers.timeout_secs);
    let reply = match tokio::time::timeout(timeout, invoker.invoke(&call)).await {
        Ok(Ok(reply)) => reply,
        outcome => {
            let err = outcome.map_or(None, Result::err);
            return Err(call_failed(state, meta, event, reservation, &alias, err, timeout).await);
        }
    };
    state
        .budgets
        .settle(reservation, used(&entry, reply.usage))
        .await;
    event.usage = reply.usage;
    event.cost_micro_usd =
        entry.cost_micro_usd(reply.usage.input_tokens, reply.usage.output_tokens);

    // Output guard.
    let output = state
        .guard
        .check_output(&reply.text, &pseudonyms, &mut report);
    if let Some(reason) = output.blocked {
        apply_guards(&mut event, &report);
        let err = HubError::GuardBlocked(format!(
            "the answer was withheld by guard profile `{}`: {reason}",
            report.profile
        ));
        return Err(refuse(
            state,
            meta,
            event,
            Outcome::Blocked,
            vec![format!("output_guard:{reason}")],
            err,
        )
        .await);
    }
    let structured = match &schema {
        Some(schema) => match causeway_guard::validate_structured(schema, &output.text) {
            Ok(value) => Some(value),
            Err(e) => {
                report.record(
                    GuardStage::Output,
                    "schema",
                    "response_schema",
                    GuardAction::Block,
                    1,
                );
                apply_guards(&mut event, &report);
                let err = HubError::ModelError(format!(
                    "the model's answer does not match `response_schema`: {e}"
                ));
                return Err(refuse(
                    state,
                    meta,
                    event,
                    Outcome::Failed,
                    vec!["schema_mismatch".into()],
                    err,
                )
                .await);
            }
        },
        None => None,
    };
    if let Some(context) = &context {
        state
            .guard
            .check_grounding(&output.text, context, &mut report);
    }
    apply_guards(&mut event, &report);
    event.outcome = Outcome::Answered;
    event.response_sha256 = Some(sha256_hex(output.text.as_bytes()));
    event
        .reasons
        .push(format!("stop:{}", reply.stop_reason.as_str()));
    let development_model = invoker.is_development();

    // INVARIANT: the record is durable before the answer is returned.
    let payload = crate::audit::payload(&crate::audit::prompt_text(&call), &output.text);
    let audit_id = crate::audit::record_with_payload(state, meta, event, Some(payload)).await?;
    Ok(InvokeResponse {
        audit_id,
        model: alias,
        model_id: entry.model_id,
        development_model,
        answer: output.text,
        structured,
        stop_reason: reply.stop_reason.as_str().to_owned(),
        usage: reply.usage,
        guards: report,
    })
}

fn output_blocked(profile: &str, reason: &str) -> (Outcome, String, HubError) {
    (
        Outcome::Blocked,
        format!("output_guard:{reason}"),
        HubError::GuardBlocked(format!(
            "the rest of the answer was withheld by guard profile `{profile}`: {reason}"
        )),
    )
}

/// One item of a governed stream.
#[derive(Debug)]
pub enum StreamItem {
    /// Answer text that passed the output guard.
    Delta(String),
    /// The answer ended normally and its closing record is durable.
    Done {
        /// Why the model stopped.
        stop_reason: StopReason,
        /// Token usage.
        usage: TokenUsage,
        /// What the guards did.
        guards: Box<GuardReport>,
    },
    /// The answer ended abnormally; nothing more follows.
    Failed(ApiError),
}

/// A governed stream that has started: its `stream_started` record is durable.
#[derive(Debug)]
pub struct GovernedStream {
    /// The `stream_started` record.
    pub audit_id: Uuid,
    /// True when the local development model answers.
    pub development_model: bool,
    /// The model alias.
    pub model: String,
    /// Items, ending with `Done` or `Failed`.
    pub items: mpsc::Receiver<StreamItem>,
}

/// A governed, streamed call.
pub async fn invoke_stream(
    state: Arc<AppState>,
    meta: CallMeta,
    req: InvokeRequest,
) -> Result<GovernedStream, ApiError> {
    if req.response_schema.is_some() {
        return Err(HubError::InvalidRequest(
            "structured output (`response_format` with a JSON schema) cannot be streamed; set `stream` to false".into(),
        )
        .into());
    }
    let Prepared {
        alias,
        entry,
        invoker,
        call,
        pseudonyms,
        mut report,
        reservation,
        event,
    } = prepare(&state, &meta, req).await?;

    let timeout = Duration::from_secs(state.config.providers.timeout_secs);
    let mut stream = match tokio::time::timeout(timeout, invoker.invoke_stream(&call)).await {
        Ok(Ok(stream)) => stream,
        outcome => {
            let err = outcome.map_or(None, Result::err);
            return Err(call_failed(&state, &meta, event, reservation, &alias, err, timeout).await);
        }
    };

    // INVARIANT: the opening record is durable before the first byte of the answer.
    let mut opening = event.clone();
    opening.outcome = Outcome::StreamStarted;
    let audit_id = match record(&state, &meta, opening).await {
        Ok(id) => id,
        Err(err) => {
            state.budgets.release(reservation).await;
            return Err(err);
        }
    };

    let stream_alias = alias.clone();
    let (tx, items) = mpsc::channel(32);
    let development_model = invoker.is_development();
    let task_state = state.clone();
    let prompt = crate::audit::prompt_text(&call);
    crate::spawn(async move {
        let state = task_state;
        let mut guard = state.guard.output_stream(&pseudonyms);
        let mut answer = String::new();
        let mut client_gone = false;
        let mut ending: Result<(StopReason, TokenUsage), (Outcome, String, HubError)> = Err((
            Outcome::Failed,
            "provider_protocol".into(),
            HubError::ModelError(format!("model `{alias}` stream ended without an end event")),
        ));
        loop {
            let next = tokio::time::timeout(timeout, stream.next()).await;
            let event_item = match next {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_) => {
                    ending = Err((
                        Outcome::Failed,
                        "provider_timeout".into(),
                        HubError::Timeout(format!(
                            "model `{alias}` stalled for {} s",
                            timeout.as_secs()
                        )),
                    ));
                    break;
                }
            };
            match event_item {
                Ok(StreamEvent::Delta(text)) => {
                    let emit = match guard.push(&text, &mut report) {
                        StreamStep::Emit(emit) => emit,
                        StreamStep::Blocked(reason) => {
                            ending = Err(output_blocked(&report.profile, &reason));
                            break;
                        }
                    };
                    if !emit.is_empty() {
                        answer.push_str(&emit);
                        if tx.send(StreamItem::Delta(emit)).await.is_err() {
                            client_gone = true;
                            ending = Err((
                                Outcome::StreamCompleted,
                                "client_disconnected".into(),
                                HubError::Internal("client disconnected".into()),
                            ));
                            break;
                        }
                    }
                }
                Ok(StreamEvent::Done { stop_reason, usage }) => {
                    match guard.finish(&mut report) {
                        StreamStep::Blocked(reason) => {
                            ending = Err(output_blocked(&report.profile, &reason))
                        }
                        StreamStep::Emit(emit) => {
                            if !emit.is_empty() {
                                answer.push_str(&emit);
                                client_gone = tx.send(StreamItem::Delta(emit)).await.is_err();
                            }
                            ending = Ok((stop_reason, usage));
                        }
                    }
                    break;
                }
                Err(err) => {
                    let (error, reason) = invoke_error(&alias, &err);
                    ending = Err((Outcome::Failed, reason.into(), error));
                    break;
                }
            }
        }

        let usage = ending.as_ref().map(|(_, u)| *u).unwrap_or_default();
        state.budgets.settle(reservation, used(&entry, usage)).await;
        let mut closing = event.clone();
        closing.id = Uuid::now_v7();
        closing.usage = usage;
        closing.cost_micro_usd = entry.cost_micro_usd(usage.input_tokens, usage.output_tokens);
        closing.response_sha256 = Some(sha256_hex(answer.as_bytes()));
        apply_guards(&mut closing, &report);
        match ending {
            Ok((stop_reason, usage)) => {
                closing.outcome = Outcome::StreamCompleted;
                closing
                    .reasons
                    .push(format!("stop:{}", stop_reason.as_str()));
                let payload = crate::audit::payload(&prompt, &answer);
                let written =
                    crate::audit::record_with_payload(&state, &meta, closing, Some(payload)).await;
                let item = match written {
                    Ok(_) => StreamItem::Done {
                        stop_reason,
                        usage,
                        guards: Box::new(report),
                    },
                    Err(err) => StreamItem::Failed(err),
                };
                if !client_gone {
                    let _ = tx.send(item).await;
                }
            }
            Err((Outcome::StreamCompleted, reason, _)) => {
                // The caller went away mid-answer: not an error of the hub's, but the record says so.
                closing.outcome = Outcome::StreamCompleted;
                closing.reasons.push(reason);
                let payload = crate::audit::payload(&prompt, &answer);
                if let Err(err) =
                    crate::audit::record_with_payload(&state, &meta, closing, Some(payload)).await
                {
                    tracing::error!(error = %err.error, "closing record of an abandoned stream failed");
                }
            }
            Err((outcome, reason, error)) => {
                let err = refuse(&state, &meta, closing, outcome, vec![reason], error).await;
                if !client_gone {
                    let _ = tx.send(StreamItem::Failed(err)).await;
                }
            }
        }
    });

    Ok(GovernedStream {
        audit_id,
        development_model,
        model: stream_alias,
        items,
    })
}
