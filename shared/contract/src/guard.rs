//! What the guards report: entity types, actions and counts, never the matched values.

use serde::{Deserialize, Serialize};

/// Where a guard ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStage {
    /// On the caller's prompt, before the model saw it.
    Input,
    /// On the model's answer, before the caller saw it.
    Output,
}

/// What a guard did about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardAction {
    /// The call was refused.
    Block,
    /// The value was replaced by a type placeholder such as `{EMAIL}`.
    Mask,
    /// The value was replaced by a stable per-request token and restored in the answer.
    Pseudonymize,
    /// Nothing was changed; the finding is reported and audited.
    Flag,
    /// Characters were removed during normalisation.
    Strip,
}

/// One kind of finding with its count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GuardEvent {
    /// Input or output.
    pub stage: GuardStage,
    /// The detector family: `pii`, `denied_word`, `topic`, `injection`, `normalization`, `schema`, `grounding`.
    pub kind: String,
    /// The entity or rule name, e.g. `EMAIL`, `CREDIT_CARD`, `instruction_override`, a topic name.
    pub entity: String,
    /// What was done.
    pub action: GuardAction,
    /// How many times.
    pub count: u32,
    /// Which kind of content it was found in: `text` (message text), `system` (a caller's system or
    /// developer instructions), `tool_use`, `tool_result`, `document`, `image`, `tool_definition` or
    /// `response_schema`. Omitted on the wire (and in a record's canonical bytes) when `text`, so records
    /// written before content blocks existed keep their bytes.
    #[serde(default = "text_source", skip_serializing_if = "is_text_source")]
    pub source: String,
}

/// The source of findings in message text.
pub const TEXT_SOURCE: &str = "text";

fn text_source() -> String {
    TEXT_SOURCE.to_owned()
}

fn is_text_source(source: &str) -> bool {
    source == TEXT_SOURCE
}

/// Everything the guards did on one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardReport {
    /// The guard profile that was applied.
    pub profile: String,
    /// Its version.
    pub profile_version: String,
    /// Findings, grouped by stage, kind, entity and action.
    pub events: Vec<GuardEvent>,
    /// Prompt-injection score of the input in `[0, 1]`.
    pub injection_score: f32,
    /// Grounding score of the answer against the caller's context in `[0, 1]`, when context was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_score: Option<f32>,
    /// True when an output check marked the answer as low trust (ungrounded, schema repaired, ...).
    pub low_trust: bool,
}

impl GuardReport {
    /// Adds `count` findings, merging with an existing event of the same stage, kind, entity and action.
    pub fn record(
        &mut self,
        stage: GuardStage,
        kind: &str,
        entity: &str,
        action: GuardAction,
        count: u32,
    ) {
        self.record_in(stage, TEXT_SOURCE, kind, entity, action, count);
    }

    /// [`Self::record`] for findings in another kind of content (`source`, see [`GuardEvent::source`]).
    pub fn record_in(
        &mut self,
        stage: GuardStage,
        source: &str,
        kind: &str,
        entity: &str,
        action: GuardAction,
        count: u32,
    ) {
        if count == 0 {
            return;
        }
        if let Some(event) = self.events.iter_mut().find(|e| {
            e.stage == stage
                && e.kind == kind
                && e.entity == entity
                && e.action == action
                && e.source == source
        }) {
            event.count = event.count.saturating_add(count);
        } else {
            self.events.push(GuardEvent {
                stage,
                kind: kind.to_owned(),
                entity: entity.to_owned(),
                action,
                count,
                source: source.to_owned(),
            });
        }
    }

    /// True when any guard blocked the call.
    pub fn blocked(&self) -> bool {
        self.events.iter().any(|e| e.action == GuardAction::Block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_merges_same_event_and_ignores_zero() {
        let mut report = GuardReport::default();
        report.record(GuardStage::Input, "pii", "EMAIL", GuardAction::Mask, 1);
        report.record(GuardStage::Input, "pii", "EMAIL", GuardAction::Mask, 2);
        report.record(GuardStage::Output, "pii", "EMAIL", GuardAction::Mask, 1);
        report.record(GuardStage::Input, "pii", "PHONE", GuardAction::Mask, 0);
        assert_eq!(report.events.len(), 2);
        assert_eq!(report.events[0].count, 3);
        assert!(!report.blocked());
        report.record(
            GuardStage::Input,
            "denied_word",
            "default",
            GuardAction::Block,
            1,
        );
        assert!(report.blocked());
    }
}
