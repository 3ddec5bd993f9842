//! The governed request path. Every model call, whatever door it came in by, enters through [`call`] and
//! passes these stages in order, each a plain function over our own types returning `Result<_, Refusal>`:
//!
//! 1. `validate`: the request's shape and the profile's content limits (400 / 413, not audited: nothing
//!    was asked of the hub yet);
//! 2. `admit`: the caller's admission rate (every call counts, refused ones too), declared purpose, model
//!    alias, the spoke's allowed models, Cedar (with the tools, images and documents the call carries), a
//!    configured provider;
//! 3. `guard_input`: every block through the input guard, then the prompt assembled;
//! 4. `reserve`: the worst case of the call reserved against every budget;
//! 5. invoke the model (complete, or streamed);
//! 6. `guard_output`: text and tool-call arguments through the output guard, the response schema, the
//!    grounding score (streamed answers: `run_stream`, chunk by chunk);
//! 7. record: the audit record of the answer.
//!
//! A [`Refusal`] carries the outcome, the audit reasons and the caller's error; [`call`] records it with the
//! fields the stages filled in so far, so every ending is audited by one recorder.
//!
//! INVARIANT: no answer leaves the hub before its audit record is durable. For a complete answer that is the
//! `answered` record. For a streamed answer it is the `stream_started` record, written before the first byte;
//! a `stream_completed` (or `failed` / `blocked`) record with the same `call_id` follows when it ends, and if
//! that one cannot be written the stream ends with an error instead of its normal end.

use std::sync::Arc;
use std::time::Duration;

use causeway_audit::Payload;
use causeway_contract::api::{MAX_STOP_SEQUENCE_CHARS, MAX_STOP_SEQUENCES};
use causeway_contract::audit::{AuditEvent, BlockCount, ContentSummary, Outcome};
use causeway_contract::catalog::{ModelEntry, ModelKind, ProviderKind};
use causeway_contract::content::ContentBlock;
use causeway_contract::{
    GuardAction, GuardReport, GuardStage, InvokeRequest, InvokeResponse, Message, Role, TokenUsage,
};
use causeway_guard::{ContentPolicy, PseudonymMap, StreamStep};
use causeway_policy::AccessRequest;
use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::audit::{apply_guards, draft, record_with_payload, refuse};
use crate::auth::Caller;
use crate::budget::{BudgetRefusal, BudgetSubjects, Reservation, Usage};
use crate::error::{ApiError, HubError};
use crate::invoke::{
    InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream, StopReason, StreamEvent,
};
use crate::state::AppState;

pub use crate::call::{CallMeta, Refusal};

impl Refusal {
    /// A model call that failed (`Some(error)`) or timed out (`None`) before answering.
    pub(crate) fn invoke_failed(
        alias: &str,
        error: Option<InvokeError>,
        timeout: Duration,
    ) -> Self {
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
        Self::new(Outcome::Failed, reason, error)
    }
}

/// How the caller wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One complete answer.
    Complete,
    /// Streamed as it is produced.
    Stream,
}

/// A governed answer: complete, or a stream that has started.
#[derive(Debug)]
pub enum Governed {
    /// The complete answer; its record is durable.
    Complete(Box<InvokeResponse>),
    /// A started stream; its opening record is durable.
    Stream(GovernedStream),
}

/// How a call ended before an answer: refused (to be recorded), or the audit store failed (nothing more can
/// be recorded; the caller gets the 503).
pub(crate) enum Ending {
    Refused(Refusal),
    Unrecorded(ApiError),
}

impl From<Refusal> for Ending {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// Runs one governed call.
///
/// # Errors
///
/// The caller's error, carrying the audit id of the refusal's record; a 503 `audit_unavailable` when the
/// record could not be written.
pub async fn call(
    state: &Arc<AppState>,
    meta: CallMeta,
    req: InvokeRequest,
    delivery: Delivery,
) -> Result<Governed, ApiError> {
    validate(&req, &state.guard.profile().content, delivery)?;
    let state = Arc::clone(state);
    to_the_record(async move {
        let mut event = draft(&state, &meta, &req.model, &req.purpose);
        match govern(&state, &meta, req, delivery, &mut event).await {
            Ok(governed) => Ok(governed),
            Err(Ending::Refused(refusal)) => Err(refuse(&state, &meta, event, refusal).await),
            Err(Ending::Unrecorded(err)) => Err(err),
        }
    })
    .await
}

/// [`call`] for a door that wants one complete answer.
///
/// # Errors
///
/// As [`call`].
pub async fn complete(
    state: &Arc<AppState>,
    meta: CallMeta,
    req: InvokeRequest,
) -> Result<Box<InvokeResponse>, ApiError> {
    match call(state, meta, req, Delivery::Complete).await? {
        Governed::Complete(answer) => Ok(answer),
        Governed::Stream(_) => {
            Err(HubError::Internal("a complete call was answered with a stream".to_owned()).into())
        }
    }
}

/// [`call`] for a door that streams the answer.
///
/// # Errors
///
/// As [`call`].
pub async fn stream(
    state: &Arc<AppState>,
    meta: CallMeta,
    req: InvokeRequest,
) -> Result<GovernedStream, ApiError> {
    match call(state, meta, req, Delivery::Stream).await? {
        Governed::Stream(stream) => Ok(stream),
        Governed::Complete(_) => {
            Err(HubError::Internal("a streamed call was answered at once".to_owned()).into())
        }
    }
}

/// Runs a governed call in a task of its own and waits for it. The request handler waiting here may be
/// dropped (the client went away, or the request timed out); the call is not, so once the hub has asked a
/// model anything it always goes on to write the record of what happened.
///
/// The task starts here, not when the returned future is first polled, and holds the call boxed: a
/// governed call's future is several kilobytes, which the runtime would otherwise copy on its way into
/// the task, as would every request future that waits for it (they now hold only the answer's channel).
pub(crate) fn to_the_record<T: Send + 'static>(
    call: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, ApiError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    crate::spawn(Box::pin(async move {
        // The caller may be gone; the record is written either way.
        let _ = tx.send(call.await);
    }));
    async move {
        rx.await.unwrap_or_else(|_| {
            Err(HubError::Internal("the governed call ended without an answer".to_owned()).into())
        })
    }
}

async fn govern(
    state: &Arc<AppState>,
    meta: &CallMeta,
    req: InvokeRequest,
    delivery: Delivery,
    event: &mut AuditEvent,
) -> Result<Governed, Ending> {
    event.content = summarize(&req);
    admit_rate(state, meta)?;
    let ask = Ask::chat(&req);
    let admitted = admit(state, meta, &ask, event)?;
    let guarded = guard_input(state, meta, &req, &admitted, event)?;
    let raised = raise_for_findings(meta, &ask, &guarded.report, event)?;
    let meta = raised.as_ref().unwrap_or(meta);
    let reservation = reserve(state, meta, worst_case(&guarded.call, &admitted.entry)).await?;
    let timeout = Duration::from_secs(state.config.providers.timeout_secs);
    match delivery {
        Delivery::Complete => {
            let outcome =
                tokio::time::timeout(timeout, admitted.invoker.invoke(&guarded.call)).await;
            let reply = match outcome {
                Ok(Ok(reply)) => reply,
                other => {
                    state.budgets.release(reservation).await;
                    let err = other.map_or(None, Result::err);
                    return Err(Refusal::invoke_failed(&admitted.alias, err, timeout).into());
                }
            };
            state
                .budgets
                .settle(reservation, used(&admitted.entry, reply.usage))
                .await;
            event.usage = reply.usage;
            event.cost_micro_usd = admitted
                .entry
                .cost_micro_usd(reply.usage.input_tokens, reply.usage.output_tokens);
            let answer = guard_output(
                state,
                &req,
                guarded.pseudonyms,
                guarded.report,
                reply,
                event,
            )?;
            record_answer(state, meta, admitted, &guarded.call, answer, event.clone())
                .await
                .map(|answer| Governed::Complete(Box::new(answer)))
                .map_err(Ending::Unrecorded)
        }
        Delivery::Stream => {
            let outcome =
                tokio::time::timeout(timeout, admitted.invoker.invoke_stream(&guarded.call)).await;
            let stream = match outcome {
                Ok(Ok(stream)) => stream,
                other => {
                    state.budgets.release(reservation).await;
                    let err = other.map_or(None, Result::err);
                    return Err(Refusal::invoke_failed(&admitted.alias, err, timeout).into());
                }
            };
            // INVARIANT: the opening record is durable before the first byte of the answer.
            let mut opening = event.clone();
            opening.outcome = Outcome::StreamStarted;
            let audit_id = match record_with_payload(state, meta, opening, None).await {
                Ok(id) => id,
                Err(err) => {
                    state.budgets.release(reservation).await;
                    return Err(Ending::Unrecorded(err));
                }
            };
            let (tx, items) = mpsc::channel(32);
            let development_model = admitted.invoker.is_development();
            let model = admitted.alias.clone();
            let task = StreamTask {
                state: state.clone(),
                meta: meta.clone(),
                event: event.clone(),
                alias: admitted.alias,
                entry: admitted.entry,
                prompt: crate::audit::prompt_text(&guarded.call),
                prompt_estimate: prompt_tokens(&guarded.call),
                report: guarded.report,
                reservation,
                timeout,
            };
            crate::spawn(run_stream(task, guarded.pseudonyms, stream, tx));
            Ok(Governed::Stream(GovernedStream {
                audit_id,
                development_model,
                model,
                items,
            }))
        }
    }
}

// === validate ===

/// Largest JSON document a caller may send as a schema (the response schema, a tool's input schema), or as a
/// tool call's input, in bytes of compact JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// Deepest nesting of such a document.
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// Longest model alias, purpose, tool name or tool-use id, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// True when `value` nests deeper than `limit` (arrays and objects count one level each).
fn deeper_than(value: &serde_json::Value, limit: usize) -> bool {
    let mut stack = vec![(value, 1_usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > limit {
            return true;
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

/// A caller's JSON document within [`MAX_SCHEMA_BYTES`] and [`MAX_SCHEMA_DEPTH`]; `at` names the field.
pub(crate) fn check_json_bounds(value: &serde_json::Value, at: &str) -> Result<(), HubError> {
    let size = value.to_string().len();
    if size > MAX_SCHEMA_BYTES {
        return Err(HubError::ContentTooLarge(format!(
            "`{at}` is {size} bytes of JSON; the limit is {MAX_SCHEMA_BYTES}"
        )));
    }
    if deeper_than(value, MAX_SCHEMA_DEPTH) {
        return Err(HubError::InvalidRequest(format!(
            "`{at}` nests deeper than {MAX_SCHEMA_DEPTH} levels"
        )));
    }
    Ok(())
}

/// A model alias or purpose as the catalogs spell them: 1 to [`MAX_NAME_BYTES`] of `a-z`, `0-9`, `-`, `_`,
/// `.`. Anything else cannot name a catalog entry, so it is refused before it reaches a record or a log.
pub(crate) fn check_catalog_name(value: &str, field: &str) -> Result<(), HubError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_BYTES
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(HubError::InvalidRequest(format!(
            "`{field}` must be 1 to {MAX_NAME_BYTES} characters of a-z, 0-9, `-`, `_` or `.`"
        )))
    }
}

/// The request's shape and the guard profile's content limits. Runs before anything is recorded.
fn validate(
    req: &InvokeRequest,
    limits: &ContentPolicy,
    delivery: Delivery,
) -> Result<(), HubError> {
    let invalid = |message: String| Err(HubError::InvalidRequest(message));
    check_catalog_name(&req.model, "model")?;
    check_catalog_name(&req.purpose, "purpose")?;
    if req.messages.is_empty() {
        return invalid("`messages` must contain at least one message".to_owned());
    }
    if !req.messages.iter().any(|m| m.role == Role::User) {
        return invalid("`messages` must contain a `user` message".to_owned());
    }
    let mut images = 0_u32;
    let mut documents = 0_u32;
    for (i, message) in req.messages.iter().enumerate() {
        if message.content.is_empty() {
            return invalid(format!("`messages[{i}].content` must not be empty"));
        }
        for (j, block) in message.content.iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            check_block(
                block,
                message.role,
                &at,
                limits,
                &mut images,
                &mut documents,
            )?;
        }
    }
    if images > limits.max_images {
        return invalid(format!(
            "the call carries {images} images; the limit is {}",
            limits.max_images
        ));
    }
    if documents > limits.max_documents {
        return invalid(format!(
            "the call carries {documents} documents; the limit is {}",
            limits.max_documents
        ));
    }
    if req.tools.len() > usize::try_from(limits.max_tools).unwrap_or(usize::MAX) {
        return invalid(format!(
            "`tools` offers {} tools; the limit is {}",
            req.tools.len(),
            limits.max_tools
        ));
    }
    for (i, tool) in req.tools.iter().enumerate() {
        tool.check()
            .or_else(|problem| invalid(format!("`tools[{i}]`: {problem}")))?;
        check_json_bounds(&tool.input_schema, &format!("tools[{i}].input_schema"))?;
        if tool
            .description
            .as_ref()
            .is_some_and(|d| d.len() > MAX_SCHEMA_BYTES)
        {
            return Err(HubError::ContentTooLarge(format!(
                "`tools[{i}].description` is longer than {MAX_SCHEMA_BYTES} bytes"
            )));
        }
        if req.tools[..i].iter().any(|t| t.name == tool.name) {
            return invalid(format!(
                "`tools[{i}]`: tool `{}` is offered twice",
                crate::error::shown(&tool.name)
            ));
        }
    }
    if let Some(causeway_contract::ToolChoice::Tool { name }) = &req.tool_choice
        && !req.tools.iter().any(|t| &t.name == name)
    {
        return invalid(format!(
            "`tool_choice` names tool `{}`, which `tools` does not offer",
            crate::error::shown(name)
        ));
    }
    if req.max_tokens == Some(0) {
        return invalid("`max_tokens` must be at least 1".to_owned());
    }
    if req.stop_sequences.len() > MAX_STOP_SEQUENCES {
        return invalid(format!(
            "`stop_sequences` has {} entries; the limit is {MAX_STOP_SEQUENCES}",
            req.stop_sequences.len()
        ));
    }
    for (i, stop) in req.stop_sequences.iter().enumerate() {
        let chars = stop.chars().count();
        if chars == 0 || chars > MAX_STOP_SEQUENCE_CHARS {
            return invalid(format!(
                "`stop_sequences[{i}]` must be 1 to {MAX_STOP_SEQUENCE_CHARS} characters"
            ));
        }
    }
    if let Some(schema) = &req.response_schema {
        if delivery == Delivery::Stream {
            return invalid(
                "structured output (`response_format` with a JSON schema) cannot be streamed; set `stream` to false".into(),
            );
        }
        check_json_bounds(schema, "response_schema")?;
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
        return invalid(format!("`context[{i}]` must not be empty"));
    }
    Ok(())
}

fn check_block(
    block: &ContentBlock,
    role: Role,
    at: &str,
    limits: &ContentPolicy,
    images: &mut u32,
    documents: &mut u32,
) -> Result<(), HubError> {
    let invalid = |message: String| Err(HubError::InvalidRequest(message));
    match block {
        ContentBlock::Text { text } if text.trim().is_empty() => {
            invalid(format!("`{at}.text` must not be empty"))
        }
        ContentBlock::Text { .. } => Ok(()),
        ContentBlock::Image { data, .. } => {
            *images += 1;
            if role == Role::System {
                return invalid(format!(
                    "`{at}`: images are not allowed in `system` messages"
                ));
            }
            if data.0.is_empty() {
                return invalid(format!("`{at}.data` must not be empty"));
            }
            let size = u64::try_from(data.0.len()).unwrap_or(u64::MAX);
            if size > limits.max_image_bytes {
                return Err(HubError::ContentTooLarge(format!(
                    "`{at}` is an image of {size} bytes; the limit is {} bytes",
                    limits.max_image_bytes
                )));
            }
            Ok(())
        }
        ContentBlock::Document { name, data, .. } => {
            *documents += 1;
            if role == Role::System {
                return invalid(format!(
                    "`{at}`: documents are not allowed in `system` messages"
                ));
            }
            if name.trim().is_empty() || name.len() > 200 {
                return invalid(format!("`{at}.name` must be 1 to 200 characters"));
            }
            if data.0.is_empty() {
                return invalid(format!("`{at}.data` must not be empty"));
            }
            let size = u64::try_from(data.0.len()).unwrap_or(u64::MAX);
            if size > limits.max_document_bytes {
                return Err(HubError::ContentTooLarge(format!(
                    "`{at}` is a document of {size} bytes; the limit is {} bytes",
                    limits.max_document_bytes
                )));
            }
            Ok(())
        }
        ContentBlock::ToolUse { id, name, input } => {
            if role != Role::Assistant {
                return invalid(format!("`{at}`: tool calls belong in `assistant` messages"));
            }
            if id.trim().is_empty() || name.trim().is_empty() {
                return invalid(format!("`{at}` needs an `id` and a `name`"));
            }
            if id.len() > MAX_NAME_BYTES || name.len() > MAX_NAME_BYTES {
                return invalid(format!(
                    "`{at}`: `id` and `name` are at most {MAX_NAME_BYTES} bytes"
                ));
            }
            if !input.is_object() {
                return invalid(format!("`{at}.input` must be a JSON object"));
            }
            check_json_bounds(input, &format!("{at}.input"))
        }
        ContentBlock::ToolResult {
            tool_use_id,
            content,
            ..
        } => {
            if role != Role::User {
                return invalid(format!(
                    "`{at}`: tool results belong in `user` messages (OpenAI: `tool` messages)"
                ));
            }
            if tool_use_id.trim().is_empty() || tool_use_id.len() > MAX_NAME_BYTES {
                return invalid(format!(
                    "`{at}.tool_use_id` must be 1 to {MAX_NAME_BYTES} bytes"
                ));
            }
            for (k, inner) in content.iter().enumerate() {
                if matches!(
                    inner,
                    ContentBlock::ToolUse { .. } | ContentBlock::ToolResult { .. }
                ) {
                    return invalid(format!(
                        "`{at}.content[{k}]`: a tool result holds text, images or documents"
                    ));
                }
                check_block(
                    inner,
                    role,
                    &format!("{at}.content[{k}]"),
                    limits,
                    images,
                    documents,
                )?;
            }
            Ok(())
        }
    }
}

// === admit ===

/// A call whose purpose, model and policy checks passed.
pub(crate) struct Admitted {
    pub(crate) alias: String,
    pub(crate) entry: ModelEntry,
    pub(crate) invoker: Arc<dyn ModelInvoker>,
}

/// What admission decides on: the model and purpose asked for, the kind of model the door needs, and what
/// the call carries (for the Cedar context).
pub(crate) struct Ask<'a> {
    pub(crate) model: &'a str,
    pub(crate) purpose: &'a str,
    pub(crate) kind: ModelKind,
    pub(crate) tools: Vec<String>,
    pub(crate) has_images: bool,
    pub(crate) has_documents: bool,
}

impl<'a> Ask<'a> {
    fn chat(req: &'a InvokeRequest) -> Self {
        let (has_images, has_documents) = carries(&req.messages);
        Self {
            model: &req.model,
            purpose: &req.purpose,
            kind: ModelKind::Chat,
            tools: req.tools.iter().map(|t| t.name.clone()).collect(),
            has_images,
            has_documents,
        }
    }
}

/// The caller's admission rate: every call counts, refused ones included, before any policy or guard work.
pub(crate) fn admit_rate(state: &AppState, meta: &CallMeta) -> Result<(), Refusal> {
    let user = &meta.caller.user;
    let key = format!("{}|{}", user.issuer, user.sub);
    let workload = meta.caller.workload.as_ref().map(|w| w.principal.as_str());
    state.admission.admit(&key, workload).map_err(|exceeded| {
        let limit = match exceeded.subject {
            "workload" => "workload_requests_per_minute",
            _ => "user_requests_per_minute",
        };
        Refusal::new(
            Outcome::Throttled,
            format!("admission:{limit}"),
            HubError::BudgetExceeded {
                message: format!(
                    "`{limit}` ({}) reached for this {}; retry in {} s",
                    exceeded.per_minute, exceeded.subject, exceeded.retry_after_secs
                ),
                retry_after_secs: exceeded.retry_after_secs,
            },
        )
    })
}

/// Cedar's decision on `req` by the caller of `meta`, in its data classification.
fn authorize(meta: &CallMeta, req: &Ask<'_>) -> causeway_policy::Decision {
    let user = &meta.caller.user;
    let workload = meta.caller.workload.as_ref();
    meta.policy.authorize(&AccessRequest {
        user: &user.sub,
        groups: &user.groups,
        model_alias: req.model,
        purpose: req.purpose,
        data_classification: &meta.data_classification,
        spoke_account: workload.map_or("", |w| w.spoke_account.as_str()),
        ou: workload.map_or("", |w| w.ou.as_str()),
        application: workload.map_or("", |w| w.application.as_str()),
        tools: &req.tools,
        has_images: req.has_images,
        has_documents: req.has_documents,
    })
}

/// Guard findings that make a call at least `confidential`, whatever it was declared: payment and bank
/// account numbers, government identifiers and credentials.
pub const CONFIDENTIAL_FINDINGS: &[&str] = &[
    "CREDIT_CARD",
    "CARD_CVV",
    "IBAN",
    "US_BANK_ACCOUNT",
    "US_SSN",
    "US_ITIN",
    "CA_SIN",
    "UK_NINO",
    "UK_NHS",
    "IN_AADHAAR",
    "IN_PAN",
    "PASSPORT",
    "DRIVER_LICENSE",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "API_KEY",
    "PRIVATE_KEY",
    "BEARER_TOKEN",
    "PASSWORD",
    "URL_CREDENTIALS",
];

/// Raises the call's data classification to `confidential` when the input guard found what
/// [`CONFIDENTIAL_FINDINGS`] lists, and asks Cedar again in the raised classification. Returns the raised
/// metadata, or `None` when the classification stands.
pub(crate) fn raise_for_findings(
    meta: &CallMeta,
    req: &Ask<'_>,
    report: &GuardReport,
    event: &mut AuditEvent,
) -> Result<Option<CallMeta>, Refusal> {
    const RAISED: &str = "confidential";
    let Some(found) = report.events.iter().find(|e| {
        e.stage == GuardStage::Input && CONFIDENTIAL_FINDINGS.contains(&e.entity.as_str())
    }) else {
        return Ok(None);
    };
    let rank = |name: &str| {
        name.parse::<causeway_contract::classification::DataClassification>()
            .ok()
    };
    if rank(&meta.data_classification) >= rank(RAISED) {
        return Ok(None);
    }
    let mut raised = meta.clone();
    raised.data_classification = RAISED.to_owned();
    event.data_classification = Some(RAISED.to_owned());
    event
        .reasons
        .push(format!("classification_raised:{RAISED}"));
    let decision = authorize(&raised, req);
    if !decision.is_allowed() {
        let reasons = decision.audit_reasons();
        return Err(Refusal {
            outcome: Outcome::Denied,
            error: HubError::Forbidden(format!(
                "the input holds {}, which makes the call `{RAISED}`; policy denies it then ({})",
                found.entity,
                reasons.join(", ")
            )),
            reasons,
        });
    }
    Ok(Some(raised))
}

/// What the call carries, for the policy context and the audit record.
fn carries(messages: &[Message]) -> (bool, bool) {
    fn walk(blocks: &[ContentBlock], images: &mut bool, documents: &mut bool) {
        for block in blocks {
            match block {
                ContentBlock::Image { .. } => *images = true,
                ContentBlock::Document { .. } => *documents = true,
                ContentBlock::ToolResult { content, .. } => walk(content, images, documents),
                _ => {}
            }
        }
    }
    let (mut images, mut documents) = (false, false);
    for message in messages {
        walk(&message.content, &mut images, &mut documents);
    }
    (images, documents)
}

pub(crate) fn admit(
    state: &AppState,
    meta: &CallMeta,
    req: &Ask<'_>,
    event: &mut AuditEvent,
) -> Result<Admitted, Refusal> {
    let purposes = meta.policy.purposes();
    if !purposes.contains(req.purpose) {
        return Err(Refusal::new(
            Outcome::Rejected,
            "unknown_purpose",
            HubError::InvalidRequest(format!(
                "unknown purpose `{}`; declare one of {}",
                crate::error::shown(req.purpose),
                purposes.allowed_list()
            )),
        ));
    }

    let user = &meta.caller.user;
    let Some(entry) = meta.policy.catalog().get(req.model).cloned() else {
        // Only the models this door can call: chat models for a chat door, embedding models for embeddings.
        let catalog = meta.policy.catalog();
        let visible: Vec<String> =
            visible_models(state, &meta.caller, req.purpose, &meta.data_classification)
                .into_iter()
                .filter(|alias| catalog.get(alias).is_some_and(|e| e.kind == req.kind))
                .collect();
        return Err(Refusal::new(
            Outcome::Rejected,
            "unknown_model",
            HubError::ModelNotFound(format!(
                "unknown model `{}`; models available to you for purpose `{}`: {}",
                crate::error::shown(req.model),
                req.purpose,
                backticked(&visible)
            )),
        ));
    };
    event.model_id = Some(entry.model_id.clone());
    event.model_version = Some(entry.version.clone());
    event.provider = Some(entry.provider.as_str().to_owned());
    event.development_model = entry.provider == ProviderKind::Local;

    // The spoke's registration first, then Cedar.
    let workload = meta.caller.workload.as_ref();
    if let Some(w) = workload.filter(|w| !w.may_use(req.model)) {
        return Err(Refusal::new(
            Outcome::Denied,
            "spoke:model_not_allowed",
            HubError::Forbidden(format!(
                "spoke account `{}` may not use the model `{}`; its allowed models: {}",
                w.spoke_account,
                req.model,
                backticked(&w.allowed_models)
            )),
        ));
    }
    if entry.kind != req.kind {
        let door = match entry.kind {
            ModelKind::Embedding => "`POST /v1/embeddings` (or Bedrock `invoke`)",
            ModelKind::Chat => {
                "a chat door (`/v1/chat/completions`, `/v1/messages`, `/v1/invoke`, …)"
            }
        };
        return Err(Refusal::new(
            Outcome::Rejected,
            "wrong_model_kind",
            HubError::InvalidRequest(format!(
                "model `{}` is a {} model; call it through {door}",
                req.model,
                entry.kind.as_str()
            )),
        ));
    }
    let decision = authorize(meta, req);
    if !decision.is_allowed() {
        let reasons = decision.audit_reasons();
        let error = HubError::Forbidden(format!(
            "policy denies `{}` the model `{}` for purpose `{}` ({})",
            user.sub,
            req.model,
            req.purpose,
            reasons.join(", ")
        ));
        return Err(Refusal {
            outcome: Outcome::Denied,
            reasons,
            error,
        });
    }
    event.reasons = decision.audit_reasons();

    let Some(invoker) = state.invoker_for(entry.provider) else {
        return Err(Refusal::new(
            Outcome::Failed,
            "provider_not_configured",
            HubError::ModelUnavailable(format!(
                "model `{}` is served by provider `{}`, which this hub does not have configured",
                req.model,
                entry.provider.as_str()
            )),
        ));
    };
    Ok(Admitted {
        alias: req.model.to_owned(),
        entry,
        invoker,
    })
}

// === guard input ===

/// A call whose prompt passed the input guard and is assembled for the model.
struct Guarded {
    call: ModelCall,
    pseudonyms: PseudonymMap,
    report: GuardReport,
}

/// Non-text blocks by kind, for the audit record.
fn summarize(req: &InvokeRequest) -> ContentSummary {
    fn walk(blocks: &[ContentBlock], counts: &mut [(u32, u64); 4]) {
        for block in blocks {
            let (slot, bytes) = match block {
                ContentBlock::Text { .. } => continue,
                ContentBlock::Image { data, .. } => (0, data.0.len()),
                ContentBlock::Document { data, .. } => (1, data.0.len()),
                ContentBlock::ToolUse { input, .. } => (2, input.to_string().len()),
                ContentBlock::ToolResult { content, .. } => {
                    walk(content, counts);
                    let text: usize = content
                        .iter()
                        .filter_map(ContentBlock::as_text)
                        .map(str::len)
                        .sum();
                    (3, text)
                }
            };
            counts[slot].0 += 1;
            counts[slot].1 += u64::try_from(bytes).unwrap_or(u64::MAX);
        }
    }
    let mut counts = [(0_u32, 0_u64); 4];
    for message in &req.messages {
        walk(&message.content, &mut counts);
    }
    ContentSummary {
        blocks: ["image", "document", "tool_use", "tool_result"]
            .into_iter()
            .zip(counts)
            .filter(|(_, (count, _))| *count > 0)
            .map(|(kind, (count, bytes))| BlockCount {
                kind: kind.to_owned(),
                count,
                bytes,
            })
            .collect(),
        tools_offered: req.tools.iter().map(|t| t.name.clone()).collect(),
        tools_called: Vec::new(),
    }
}

fn guard_input(
    state: &AppState,
    meta: &CallMeta,
    req: &InvokeRequest,
    admitted: &Admitted,
    event: &mut AuditEvent,
) -> Result<Guarded, Refusal> {
    // Grounding context is sent to the model as source material, so it is guarded too.
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
            Message::text(
                Role::User,
                format!("Source passages for the question that follows:\n\n{sources}"),
            ),
        );
    }
    // Every string the caller sends that reaches the model is guarded: messages, tools, the response
    // schema, names and ids. System text is the application's own only when the workload is verified.
    let trust = if meta.caller.workload.is_some() {
        causeway_guard::SystemTrust::Workload
    } else {
        causeway_guard::SystemTrust::Unverified
    };
    // The guard stamps its profile name and version on the report.
    let mut report = GuardReport::default();
    let verdict = state.guard.check_call(
        causeway_guard::CallInput {
            messages: &messages,
            tools: &req.tools,
            response_schema: req.response_schema.as_ref(),
            system: trust,
        },
        &mut report,
    );
    apply_guards(event, &report);
    if let Some(reason) = verdict.blocked {
        return Err(Refusal::new(
            Outcome::Blocked,
            format!("input_guard:{reason}"),
            HubError::GuardBlocked(format!(
                "the prompt was blocked by guard profile `{}`: {reason}",
                report.profile
            )),
        ));
    }

    let nonce = meta.call_id.simple().to_string();
    let prompt = state
        .guard
        .assemble_prompt(&verdict.messages, trust, &nonce);
    let mut system = prompt.system;
    if let Some(schema) = &verdict.response_schema {
        system.push(format!(
            "Answer with a single JSON value and nothing else. It must validate against this JSON Schema:\n{schema}"
        ));
    }
    let entry = &admitted.entry;
    let call = ModelCall {
        model_id: entry.model_id.clone(),
        system,
        messages: prompt.messages,
        tools: verdict.tools,
        tool_choice: req.tool_choice.clone(),
        max_tokens: req
            .max_tokens
            .map_or(entry.max_tokens, |m| m.min(entry.max_tokens)),
        stop_sequences: req.stop_sequences.clone(),
        response_schema: verdict.response_schema,
    };
    Ok(Guarded {
        call,
        pseudonyms: verdict.pseudonyms,
        report,
    })
}

// === reserve ===

pub(crate) async fn reserve(
    state: &AppState,
    meta: &CallMeta,
    worst: Usage,
) -> Result<Reservation, Refusal> {
    let user = &meta.caller.user;
    let workload = meta.caller.workload.as_ref();
    let subjects = BudgetSubjects {
        user: &user.sub,
        application: workload.map(|w| w.application.as_str()),
        spoke_account: workload.map(|w| w.spoke_account.as_str()),
        spoke_limits: workload.map(|w| w.limits).unwrap_or_default(),
    };
    state
        .budgets
        .reserve(&subjects, worst, now_unix())
        .await
        .map_err(|refusal| match &refusal {
            BudgetRefusal::Exceeded(exceeded) => Refusal::new(
                Outcome::Throttled,
                format!("budget:{}", exceeded.budget),
                HubError::BudgetExceeded {
                    message: refusal.to_string(),
                    retry_after_secs: exceeded.retry_after_secs,
                },
            ),
            BudgetRefusal::Unavailable(_) => Refusal::new(
                Outcome::Failed,
                "budget_unavailable",
                HubError::Internal(refusal.to_string()),
            ),
        })
}

/// Tokens an image is counted as before the provider reports real usage: the most a 1.15-megapixel image
/// costs on Claude models, the largest of the catalog's providers.
const IMAGE_TOKENS_ESTIMATE: u64 = 1_600;

/// About how many tokens a call's prompt is: four characters per token for text (documents: four bytes of
/// their text formats, eight bytes of binary formats) and [`IMAGE_TOKENS_ESTIMATE`] per image, tools
/// included.
pub(crate) fn prompt_tokens(call: &ModelCall) -> u64 {
    fn chars(n: usize) -> u64 {
        u64::try_from(n.div_ceil(4)).unwrap_or(u64::MAX)
    }
    fn block_tokens(block: &ContentBlock) -> u64 {
        match block {
            ContentBlock::Text { text } => chars(text.len()),
            ContentBlock::Image { .. } => IMAGE_TOKENS_ESTIMATE,
            ContentBlock::Document { format, data, .. } if format.is_text() => chars(data.0.len()),
            ContentBlock::Document { data, .. } => {
                u64::try_from(data.0.len().div_ceil(8)).unwrap_or(u64::MAX)
            }
            ContentBlock::ToolUse { input, .. } => chars(input.to_string().len()),
            ContentBlock::ToolResult { content, .. } => content.iter().map(block_tokens).sum(),
        }
    }
    let tools: u64 = call
        .tools
        .iter()
        .map(|t| {
            chars(
                t.name.len()
                    + t.description.as_ref().map_or(0, String::len)
                    + t.input_schema.to_string().len(),
            )
        })
        .sum();
    let system: u64 = call.system.iter().map(|s| chars(s.len())).sum();
    let messages: u64 = call
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .map(block_tokens)
        .sum();
    system.saturating_add(messages).saturating_add(tools)
}

/// The worst case of a call: its prompt estimate plus the whole answer allowance, and what that costs at
/// the catalog's prices. Settlement uses the provider's real usage.
fn worst_case(call: &ModelCall, entry: &ModelEntry) -> Usage {
    let input = u32::try_from(prompt_tokens(call)).unwrap_or(u32::MAX);
    Usage {
        tokens: u64::from(input) + u64::from(call.max_tokens),
        cost_micro_usd: entry.cost_micro_usd(input, call.max_tokens),
    }
}

/// What a call really used, for settling its reservation.
pub(crate) fn used(entry: &ModelEntry, usage: TokenUsage) -> Usage {
    Usage {
        tokens: u64::from(usage.total()),
        cost_micro_usd: entry.cost_micro_usd(usage.input_tokens, usage.output_tokens),
    }
}

// === guard output ===

/// An answer that passed the output guard.
struct Answer {
    content: Vec<ContentBlock>,
    text: String,
    structured: Option<serde_json::Value>,
    stop_reason: StopReason,
    usage: TokenUsage,
    report: GuardReport,
}

fn guard_output(
    state: &AppState,
    req: &InvokeRequest,
    pseudonyms: PseudonymMap,
    mut report: GuardReport,
    reply: ModelReply,
    event: &mut AuditEvent,
) -> Result<Answer, Refusal> {
    let output = state
        .guard
        .check_output_blocks(&reply.content, &pseudonyms, &mut report);
    apply_guards(event, &report);
    if let Some(reason) = output.blocked {
        return Err(Refusal::new(
            Outcome::Blocked,
            format!("output_guard:{reason}"),
            HubError::GuardBlocked(format!(
                "the answer was withheld by guard profile `{}`: {reason}",
                report.profile
            )),
        ));
    }
    let text: String = output
        .content
        .iter()
        .filter_map(ContentBlock::as_text)
        .collect();
    let structured = match &req.response_schema {
        Some(schema) => match causeway_guard::validate_structured(schema, &text) {
            Ok(value) => Some(value),
            Err(e) => {
                report.record(
                    GuardStage::Output,
                    "schema",
                    "response_schema",
                    GuardAction::Block,
                    1,
                );
                apply_guards(event, &report);
                return Err(Refusal::new(
                    Outcome::Failed,
                    "schema_mismatch",
                    HubError::ModelError(format!(
                        "the model's answer does not match `response_schema`: {e}"
                    )),
                ));
            }
        },
        None => None,
    };
    if let Some(context) = &req.context {
        state.guard.check_grounding(&text, context, &mut report);
    }
    apply_guards(event, &report);
    for block in &output.content {
        if let ContentBlock::ToolUse { name, .. } = block {
            event.content.count_call(name);
        }
    }
    Ok(Answer {
        content: output.content,
        text,
        structured,
        stop_reason: reply.stop_reason,
        usage: reply.usage,
        report,
    })
}

// === record ===

/// The answer as stored in the payload: its text when it is text only, else the compact JSON of its blocks.
fn answer_payload(content: &[ContentBlock]) -> String {
    if content
        .iter()
        .all(|b| matches!(b, ContentBlock::Text { .. }))
    {
        content.iter().filter_map(ContentBlock::as_text).collect()
    } else {
        serde_json::to_string(content).unwrap_or_default()
    }
}

async fn record_answer(
    state: &AppState,
    meta: &CallMeta,
    admitted: Admitted,
    call: &ModelCall,
    answer: Answer,
    mut event: AuditEvent,
) -> Result<InvokeResponse, ApiError> {
    event.outcome = Outcome::Answered;
    event
        .reasons
        .push(format!("stop:{}", answer.stop_reason.as_str()));
    // INVARIANT: the record is durable before the answer is returned.
    let payload = Payload {
        prompt: crate::audit::prompt_text(call),
        response: answer_payload(&answer.content),
    };
    let audit_id = record_with_payload(state, meta, event, Some(payload)).await?;
    Ok(InvokeResponse {
        audit_id,
        model: admitted.alias,
        model_id: admitted.entry.model_id,
        development_model: admitted.invoker.is_development(),
        answer: answer.text,
        content: answer.content,
        structured: answer.structured,
        stop_reason: answer.stop_reason.as_str().to_owned(),
        usage: answer.usage,
        guards: answer.report,
    })
}

// === streams ===

/// One item of a governed stream.
#[derive(Debug)]
pub enum StreamItem {
    /// Answer text that passed the output guard.
    Text(String),
    /// The model starts a tool call (numbered from 0 in the answer).
    ToolUseStart {
        /// The call's position among the answer's tool calls.
        index: u32,
        /// The call id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// A tool call's arguments, guarded value by value. Sent once per call, when its input is complete.
    ToolInput {
        /// The call's position among the answer's tool calls.
        index: u32,
        /// The arguments as compact JSON.
        json: String,
    },
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

/// Everything the stream's task needs to guard, settle and record the answer.
struct StreamTask {
    state: Arc<AppState>,
    meta: CallMeta,
    event: AuditEvent,
    alias: String,
    entry: ModelEntry,
    prompt: String,
    prompt_estimate: u64,
    report: GuardReport,
    reservation: Reservation,
    timeout: Duration,
}

/// A tool call being streamed: its input is held until complete, then guarded as a whole.
struct PendingTool {
    index: u32,
    id: String,
    name: String,
    input: String,
}

fn output_blocked(profile: &str, reason: &str) -> Refusal {
    Refusal::new(
        Outcome::Blocked,
        format!("output_guard:{reason}"),
        HubError::GuardBlocked(format!(
            "the rest of the answer was withheld by guard profile `{profile}`: {reason}"
        )),
    )
}

/// How a stream ended.
enum StreamEnd {
    Done(StopReason, TokenUsage),
    ClientGone,
    Refused(Refusal),
}

/// Guards a tool call's complete input and sends it; `Err` ends the stream.
async fn release_tool(
    task: &mut StreamTask,
    pseudonyms: &PseudonymMap,
    tool: PendingTool,
    answer: &mut Vec<ContentBlock>,
    tx: &mpsc::Sender<StreamItem>,
) -> Result<(), StreamEnd> {
    let input = if tool.input.trim().is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str(&tool.input).map_err(|_| {
            StreamEnd::Refused(Refusal::new(
                Outcome::Failed,
                "provider_protocol",
                HubError::ModelError(format!(
                    "model `{}` streamed tool call arguments that are not JSON",
                    task.alias
                )),
            ))
        })?
    };
    let guarded = task
        .state
        .guard
        .check_output_json(&input, pseudonyms, &mut task.report)
        .map_err(|reason| StreamEnd::Refused(output_blocked(&task.report.profile, &reason)))?;
    task.event.content.count_call(&tool.name);
    let json = guarded.to_string();
    answer.push(ContentBlock::ToolUse {
        id: tool.id,
        name: tool.name,
        input: guarded,
    });
    tx.send(StreamItem::ToolInput {
        index: tool.index,
        json,
    })
    .await
    .map_err(|_| StreamEnd::ClientGone)
}

/// Reads the model's stream, guards it, forwards it, then settles the budget and writes the closing record.
async fn run_stream(
    mut task: StreamTask,
    pseudonyms: PseudonymMap,
    mut stream: ModelStream,
    tx: mpsc::Sender<StreamItem>,
) {
    let state = task.state.clone();
    let mut guard = state.guard.output_stream(&pseudonyms);
    let mut answer: Vec<ContentBlock> = Vec::new();
    let mut text = String::new();
    let mut pending: Vec<PendingTool> = Vec::new();
    let mut emitted_chars = 0_usize;
    let timeout = task.timeout;

    let end = loop {
        let item = match tokio::time::timeout(timeout, stream.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => {
                break StreamEnd::Refused(Refusal::new(
                    Outcome::Failed,
                    "provider_protocol",
                    HubError::ModelError(format!(
                        "model `{}` stream ended without an end event",
                        task.alias
                    )),
                ));
            }
            Err(_) => {
                break StreamEnd::Refused(Refusal::new(
                    Outcome::Failed,
                    "provider_timeout",
                    HubError::Timeout(format!(
                        "model `{}` stalled for {} s",
                        task.alias,
                        timeout.as_secs()
                    )),
                ));
            }
        };
        match item {
            Ok(StreamEvent::TextDelta(delta)) => {
                let emit = match guard.push(&delta, &mut task.report) {
                    StreamStep::Emit(emit) => emit,
                    StreamStep::Blocked(reason) => {
                        break StreamEnd::Refused(output_blocked(&task.report.profile, &reason));
                    }
                };
                if !emit.is_empty() {
                    text.push_str(&emit);
                    emitted_chars += emit.len();
                    if tx.send(StreamItem::Text(emit)).await.is_err() {
                        break StreamEnd::ClientGone;
                    }
                }
            }
            Ok(StreamEvent::ToolUseStart { index, id, name }) => {
                if tx
                    .send(StreamItem::ToolUseStart {
                        index,
                        id: id.clone(),
                        name: name.clone(),
                    })
                    .await
                    .is_err()
                {
                    break StreamEnd::ClientGone;
                }
                pending.push(PendingTool {
                    index,
                    id,
                    name,
                    input: String::new(),
                });
            }
            Ok(StreamEvent::ToolInputDelta {
                index,
                partial_json,
            }) => {
                emitted_chars += partial_json.len();
                match pending.iter_mut().find(|t| t.index == index) {
                    Some(tool) if tool.input.len() + partial_json.len() <= MAX_TOOL_INPUT_BYTES => {
                        tool.input.push_str(&partial_json);
                    }
                    Some(_) => {
                        break StreamEnd::Refused(Refusal::new(
                            Outcome::Failed,
                            "provider_protocol",
                            HubError::ModelError(format!(
                                "model `{}` streamed tool call arguments longer than {MAX_TOOL_INPUT_BYTES} bytes",
                                task.alias
                            )),
                        ));
                    }
                    None => {
                        break StreamEnd::Refused(Refusal::new(
                            Outcome::Failed,
                            "provider_protocol",
                            HubError::ModelError(format!(
                                "model `{}` streamed input for a tool call it never started",
                                task.alias
                            )),
                        ));
                    }
                }
            }
            Ok(StreamEvent::Done { stop_reason, usage }) => {
                match guard.finish(&mut task.report) {
                    StreamStep::Blocked(reason) => {
                        break StreamEnd::Refused(output_blocked(&task.report.profile, &reason));
                    }
                    StreamStep::Emit(emit) => {
                        if !emit.is_empty() {
                            text.push_str(&emit);
                            if tx.send(StreamItem::Text(emit)).await.is_err() {
                                break StreamEnd::ClientGone;
                            }
                        }
                    }
                }
                if !text.is_empty() {
                    answer.insert(0, ContentBlock::text(std::mem::take(&mut text)));
                }
                let mut ended = None;
                for tool in std::mem::take(&mut pending) {
                    if let Err(end) =
                        release_tool(&mut task, &pseudonyms, tool, &mut answer, &tx).await
                    {
                        ended = Some(end);
                        break;
                    }
                }
                break ended.unwrap_or(StreamEnd::Done(stop_reason, usage));
            }
            Err(err) => {
                let (error, reason) = invoke_error(&task.alias, &err);
                break StreamEnd::Refused(Refusal::new(Outcome::Failed, reason, error));
            }
        }
    };
    if !text.is_empty() {
        answer.insert(0, ContentBlock::text(text));
    }

    // Settle: the provider's usage when the answer ended normally; otherwise never less than what was
    // produced (about four characters a token) plus the prompt estimate.
    // Some providers end a stream without reporting usage; the estimate stands in for it.
    let usage = match &end {
        StreamEnd::Done(_, usage) if usage.total() > 0 => *usage,
        _ => TokenUsage {
            input_tokens: u32::try_from(task.prompt_estimate).unwrap_or(u32::MAX),
            output_tokens: u32::try_from(emitted_chars.div_ceil(4)).unwrap_or(u32::MAX),
        },
    };
    let StreamTask {
        state,
        meta,
        event,
        entry,
        prompt,
        report,
        reservation,
        ..
    } = task;
    state.budgets.settle(reservation, used(&entry, usage)).await;
    let mut closing = event;
    closing.id = Uuid::now_v7();
    closing.usage = usage;
    closing.cost_micro_usd = entry.cost_micro_usd(usage.input_tokens, usage.output_tokens);
    apply_guards(&mut closing, &report);
    let payload = Payload {
        prompt,
        response: answer_payload(&answer),
    };
    match end {
        StreamEnd::Done(stop_reason, usage) => {
            closing.outcome = Outcome::StreamCompleted;
            closing
                .reasons
                .push(format!("stop:{}", stop_reason.as_str()));
            let item = match record_with_payload(&state, &meta, closing, Some(payload)).await {
                Ok(_) => StreamItem::Done {
                    stop_reason,
                    usage,
                    guards: Box::new(report),
                },
                Err(err) => StreamItem::Failed(err),
            };
            let _ = tx.send(item).await;
        }
        StreamEnd::ClientGone => {
            // The caller went away mid-answer: not an error of the hub's, but the record says so.
            closing.outcome = Outcome::StreamCompleted;
            closing.reasons.push("client_disconnected".to_owned());
            if let Err(err) = record_with_payload(&state, &meta, closing, Some(payload)).await {
                tracing::error!(error = %err.error, "closing record of an abandoned stream failed");
            }
        }
        StreamEnd::Refused(refusal) => {
            let err = refuse(&state, &meta, closing, refusal).await;
            tracing::warn!(code = err.error.code().as_str(), audit_id = ?err.audit_id, "a streamed answer ended with an error");
            let _ = tx.send(StreamItem::Failed(err)).await;
        }
    }
}

/// Longest tool-call input a streamed answer may carry; it is held in memory until complete.
const MAX_TOOL_INPUT_BYTES: usize = 1024 * 1024;

// === shared helpers ===

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
                    tools: &[],
                    has_images: false,
                    has_documents: false,
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
