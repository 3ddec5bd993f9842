//! A governed call's metadata and its refusal: what every stage of the governed path and the audit recorder
//! share, apart from both.

use std::sync::Arc;
use std::time::Instant;

use causeway_contract::audit::Outcome;
use causeway_policy::PolicyBundle;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::HubError;

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

/// Why a call ended without an answer: the outcome and reasons of its audit record and the caller's error.
///
/// One type for every stage, so a stage refuses with `?` and `crate::governed::call` writes the record.
#[derive(Debug)]
pub struct Refusal {
    /// The record's outcome.
    pub outcome: Outcome,
    /// The record's reasons (policy ids, guard rules, budget names, error kinds; never prompt text).
    pub reasons: Vec<String>,
    /// What the caller gets.
    pub error: HubError,
}

impl Refusal {
    pub(crate) fn new(outcome: Outcome, reason: impl Into<String>, error: HubError) -> Self {
        Self {
            outcome,
            reasons: vec![reason.into()],
            error,
        }
    }
}
