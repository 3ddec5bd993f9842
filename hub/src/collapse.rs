//! Repeated refusals collapse into counts.
//!
//! Every refused call stays countable, but a client repeating the same refused call must not be able to
//! turn the audit store into a write amplifier. Refusals are grouped by what makes them the same refusal:
//! the caller (issuer, subject and workload principal), the door, the model asked for, the outcome and the
//! reasons. Within one second, the first refusal of a group is recorded as always, and the caller gets its
//! audit id; the further ones in that second are counted, and the caller gets the same audit id. When the
//! second is over, one more record of the group states how many repeats there were (reason `repeats:N`), so
//! a flood costs at most two writes a second per group, however fast it comes.
//!
//! The counts live in memory until they are written: a summary that cannot be written is logged and counted
//! as an audit failure (the caller of those repeats already had its answer, a refusal, and the first record
//! of the group is durable).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;

use causeway_audit::AuditSink;
use causeway_contract::audit::AuditEvent;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::metrics::Metrics;

/// What makes two refusals the same refusal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    caller: String,
    api: String,
    model: String,
    outcome: &'static str,
    reasons: String,
}

impl Group {
    /// The group of a refusal's event (its outcome, reasons and caller already set).
    pub fn of(event: &AuditEvent) -> Self {
        Self {
            caller: format!(
                "{}|{}|{}",
                event.user_issuer.as_deref().unwrap_or_default(),
                event.user_sub.as_deref().unwrap_or_default(),
                event.workload_principal.as_deref().unwrap_or_default()
            ),
            api: event.api.clone(),
            model: event.model_alias.clone().unwrap_or_default(),
            outcome: event.outcome.as_str(),
            reasons: event.reasons.join(","),
        }
    }
}

#[derive(Debug)]
struct Window {
    second: i64,
    first: Uuid,
    repeats: u32,
    template: AuditEvent,
}

/// What to do with a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Record it; it opens a window for its group.
    Record,
    /// A repeat within the window: counted, not recorded; the caller gets the first record's id.
    Repeat(Uuid),
}

/// The open windows, one per group that was refused this second or has uncounted repeats.
#[derive(Debug, Default)]
pub struct Collapser {
    windows: Mutex<HashMap<Group, Window>>,
}

impl Collapser {
    /// Decides for a refusal of `group` at unix second `now`.
    pub fn decide(&self, group: &Group, now: i64) -> Decision {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        match windows.get(group) {
            Some(window) if window.second == now => {
                let first = window.first;
                drop(windows);
                self.count(group);
                Decision::Repeat(first)
            }
            _ => Decision::Record,
        }
    }

    fn count(&self, group: &Group) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = windows.get_mut(group) {
            window.repeats = window.repeats.saturating_add(1);
        }
    }

    /// Opens the window of `group` at second `now` after its first refusal was recorded as `first`. Returns
    /// the summary of the window it replaces, when that one had repeats.
    pub fn opened(
        &self,
        group: Group,
        now: i64,
        first: Uuid,
        event: AuditEvent,
    ) -> Option<AuditEvent> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = windows.insert(
            group,
            Window {
                second: now,
                first,
                repeats: 0,
                template: event,
            },
        );
        previous.and_then(summary)
    }

    /// Takes the summaries of every window older than second `now` (closing them).
    pub fn close_before(&self, now: i64) -> Vec<AuditEvent> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let closed: Vec<Group> = windows
            .iter()
            .filter(|(_, w)| w.second < now)
            .map(|(g, _)| g.clone())
            .collect();
        closed
            .into_iter()
            .filter_map(|g| windows.remove(&g))
            .filter_map(summary)
            .collect()
    }
}

/// Appends a window's summary record. A summary that cannot be written is logged and counted as an audit
/// failure; the repeats it stood for were refusals, already answered.
pub async fn write_summary(audit: &dyn AuditSink, metrics: &Metrics, mut event: AuditEvent) {
    event.timestamp = OffsetDateTime::now_utc();
    event.latency_us = 0;
    if let Err(err) = audit.append(event, None).await {
        metrics.audit_failure();
        tracing::error!(error = %err, "the count of repeated refusals could not be recorded");
    }
}

/// Writes the summaries of windows whose second is over, once a second, for as long as the hub lives.
pub async fn close_every_second(
    collapser: Weak<Collapser>,
    audit: Weak<dyn AuditSink>,
    metrics: Weak<Metrics>,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (Some(collapser), Some(audit), Some(metrics)) =
            (collapser.upgrade(), audit.upgrade(), metrics.upgrade())
        else {
            return;
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for summary in collapser.close_before(now) {
            write_summary(audit.as_ref(), &metrics, summary).await;
        }
    }
}

/// The record stating a closed window's repeats, or `None` when there were none.
fn summary(window: Window) -> Option<AuditEvent> {
    if window.repeats == 0 {
        return None;
    }
    let mut event = window.template;
    event.id = Uuid::now_v7();
    event.call_id = event.id;
    event.reasons.push(format!("repeats:{}", window.repeats));
    event.reasons.push(format!("repeat_of:{}", window.first));
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_contract::audit::Outcome;

    fn event(reason: &str) -> AuditEvent {
        let mut event: AuditEvent = serde_json::from_value(serde_json::json!({
            "id": Uuid::now_v7(), "call_id": Uuid::now_v7(), "timestamp": "2026-12-05T10:00:00Z",
            "request_id": "r", "api": "invoke", "workload_principal": null, "spoke_account": null,
            "application": null, "user_sub": "alice", "user_issuer": "iss", "purpose": "evaluation",
            "data_classification": "internal", "model_alias": "local-dev", "model_id": null,
            "model_version": null, "provider": null, "development_model": false, "catalog_version": "c",
            "guard_profile": "default", "guard_profile_version": "1", "policy_hash": "p",
            "outcome": "throttled", "error_code": "budget_exceeded", "reasons": [],
            "guard_events": [], "injection_permille": 0, "grounding_permille": null, "low_trust": false,
            "usage": {"input_tokens": 0, "output_tokens": 0}, "cost_micro_usd": 0, "latency_us": 0,
            "prompt_sha256": null, "response_sha256": null
        }))
        .unwrap();
        event.reasons.push(reason.to_owned());
        event
    }

    #[test]
    fn repeats_within_a_second_are_counted_in_one_summary() {
        let collapser = Collapser::default();
        let first = event("admission:user_requests_per_minute");
        let group = Group::of(&first);
        assert_eq!(collapser.decide(&group, 100), Decision::Record);
        assert!(
            collapser
                .opened(group.clone(), 100, first.id, first.clone())
                .is_none()
        );
        for _ in 0..5 {
            assert_eq!(collapser.decide(&group, 100), Decision::Repeat(first.id));
        }
        // Another reason is another group.
        let other = event("unknown_model");
        assert_eq!(collapser.decide(&Group::of(&other), 100), Decision::Record);

        // The next second's first refusal is recorded, and the closed window's summary comes with it.
        assert_eq!(collapser.decide(&group, 101), Decision::Record);
        let summary = collapser
            .opened(group, 101, Uuid::now_v7(), first.clone())
            .unwrap();
        assert_eq!(summary.outcome, Outcome::Throttled);
        assert_eq!(
            summary.reasons,
            vec![
                "admission:user_requests_per_minute".to_owned(),
                "repeats:5".to_owned(),
                format!("repeat_of:{}", first.id)
            ]
        );
        assert_ne!(summary.id, first.id);
    }

    #[test]
    fn a_window_with_repeats_is_summarised_when_its_second_is_over() {
        let collapser = Collapser::default();
        let first = event("guard:blocked");
        let group = Group::of(&first);
        collapser.opened(group.clone(), 7, first.id, first.clone());
        assert!(
            collapser.close_before(7).is_empty(),
            "the second is not over"
        );
        collapser.decide(&group, 7);
        collapser.decide(&group, 7);
        let summaries = collapser.close_before(8);
        assert_eq!(summaries.len(), 1);
        assert!(summaries[0].reasons.contains(&"repeats:2".to_owned()));
        // Closed: nothing more to say, and the next refusal opens a new window.
        assert!(collapser.close_before(9).is_empty());
        assert_eq!(collapser.decide(&group, 9), Decision::Record);
    }
}
