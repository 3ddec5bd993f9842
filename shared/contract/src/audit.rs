//! The audit record: one per governed call, whatever its outcome.
//!
//! # Canonical encoding
//! A record's hash is SHA-256 over its canonical bytes: the record serialised as compact JSON (no
//! whitespace) with the fields in the order they are declared here, `null` for absent optional fields, and
//! integers only (scores are stored in permille, cost in micro-dollars), so any third party can recompute it
//! with an ordinary JSON library by emitting the keys in this order. Two fields added after the first
//! release are omitted when they hold their empty value, so older records keep their bytes: `content` on
//! the record (omitted when the call carried only text and offered no tools) and `source` on a guard event
//! (omitted when `text`). `record_hash` itself is not part of the
//! hashed bytes. Each record carries the hash of the one before it in its chain (`prev_hash`), so removing,
//! altering or reordering a record breaks every later link.
//!
//! Records never contain prompt or answer text, tokens or PII values: only hashes, types and counts. The prompt
//! and the answer themselves are stored encrypted apart from the record (see `causeway-audit`); the record's
//! `prompt_sha256` and `response_sha256` are the SHA-256 of exactly the bytes stored there.
//!
//! # Checkpoints
//! A store also keeps a checkpoint log: a second hash chain of [`Checkpoint`]s, each signed (Ed25519 in the
//! embedded mode). A checkpoint states "chain `chain_id` had `chain_sequence` records and the last one hashed
//! to `chain_head_hash`", and links to the checkpoint before it (`prev_hash`). A `genesis` checkpoint is
//! written when a chain starts, so a chain deleted whole is missed by the log like a record deleted from a
//! chain is missed by its successor. The canonical bytes of a checkpoint follow the same rules as a record's:
//! compact JSON, fields in declared order, integers only, RFC 3339 UTC time. `checkpoint_hash` is the hex
//! SHA-256 of those bytes and the signature is over those same bytes (not over the hash).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::TokenUsage;
use crate::guard::GuardEvent;

/// The hash of "no previous record": 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a governed call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The model answered and the answer was returned.
    Answered,
    /// A streamed answer is about to start; a `stream_completed` or `failed` record with the same
    /// `call_id` follows.
    StreamStarted,
    /// A streamed answer finished.
    StreamCompleted,
    /// Policy denied the call.
    Denied,
    /// A guard blocked the prompt or the answer.
    Blocked,
    /// A budget refused the call.
    Throttled,
    /// The request was rejected before policy (bad purpose, unknown model).
    Rejected,
    /// The call failed (model unavailable, model error, timeout).
    Failed,
    /// Not a call: a reviewer read the payload (prompt and answer) of another record in the compliance
    /// console. `user_sub` is the reviewer, `reasons` name the record (`record:<id>`) and the stated reason
    /// (`reason:<text>`).
    PayloadRead,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Self; 9] = [
        Self::Answered,
        Self::StreamStarted,
        Self::StreamCompleted,
        Self::Denied,
        Self::Blocked,
        Self::Throttled,
        Self::Rejected,
        Self::Failed,
        Self::PayloadRead,
    ];

    /// Their wire names, in the order of [`Self::ALL`].
    pub const NAMES: [&'static str; 9] = [
        "answered",
        "stream_started",
        "stream_completed",
        "denied",
        "blocked",
        "throttled",
        "rejected",
        "failed",
        "payload_read",
    ];

    /// The snake_case wire name.
    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What happened on a call, as the hub knows it before the store places it in a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Record id, UUID v7 (sorts by time).
    pub id: Uuid,
    /// Groups the records of one call (a streamed call writes two).
    pub call_id: Uuid,
    /// When the record was made, RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The HTTP request id.
    pub request_id: String,
    /// The API door: `invoke`, `chat_completions`.
    pub api: String,
    /// Verified workload principal (IAM ARN), when there is one.
    pub workload_principal: Option<String>,
    /// Spoke account id, when known.
    pub spoke_account: Option<String>,
    /// Application id, when known.
    pub application: Option<String>,
    /// The verified user `sub`.
    pub user_sub: Option<String>,
    /// The token issuer that vouched for the user.
    pub user_issuer: Option<String>,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// Data classification in context.
    pub data_classification: Option<String>,
    /// Model alias asked for.
    pub model_alias: Option<String>,
    /// Provider model id it resolved to.
    pub model_id: Option<String>,
    /// Model version from the catalog.
    pub model_version: Option<String>,
    /// Provider name.
    pub provider: Option<String>,
    /// True when the local development model answered.
    pub development_model: bool,
    /// Catalog version in force.
    pub catalog_version: String,
    /// Guard profile applied.
    pub guard_profile: String,
    /// Its version.
    pub guard_profile_version: String,
    /// Hash of the policy set in force.
    pub policy_hash: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The error code returned, if any.
    pub error_code: Option<String>,
    /// Why: policy ids, guard rules, budget names, error kinds. Never prompt text.
    pub reasons: Vec<String>,
    /// Guard findings (types and counts only).
    pub guard_events: Vec<GuardEvent>,
    /// Prompt-injection score in permille.
    pub injection_permille: u16,
    /// Grounding score in permille, when context was supplied.
    pub grounding_permille: Option<u16>,
    /// True when the answer was marked low trust.
    pub low_trust: bool,
    /// Token usage.
    pub usage: TokenUsage,
    /// Cost in millionths of a US dollar.
    pub cost_micro_usd: u64,
    /// Time spent in the hub and model, in microseconds.
    pub latency_us: u64,
    /// SHA-256 of the prompt as sent to the model (after guards), hex.
    pub prompt_sha256: Option<String>,
    /// SHA-256 of the answer as returned to the caller, hex.
    pub response_sha256: Option<String>,
    /// What the call carried besides text, and the tools offered and called (names and counts, never
    /// arguments or contents). Omitted when empty, so records of text-only calls keep the bytes they had
    /// before content blocks existed.
    #[serde(default, skip_serializing_if = "ContentSummary::is_empty")]
    pub content: ContentSummary,
}

/// Counts of one kind of content block in a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCount {
    /// `image`, `document`, `tool_use` or `tool_result`.
    pub kind: String,
    /// How many blocks of the kind the prompt carried.
    pub count: u32,
    /// Their size in bytes (images and documents: the decoded bytes; tool blocks: their JSON or text).
    pub bytes: u64,
}

/// A tool name with a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCount {
    /// The tool's name.
    pub name: String,
    /// How many calls.
    pub count: u32,
}

/// What a call carried besides text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentSummary {
    /// Non-text blocks of the prompt by kind, in the order `image`, `document`, `tool_use`, `tool_result`.
    #[serde(default)]
    pub blocks: Vec<BlockCount>,
    /// Names of the tools offered to the model, in the caller's order.
    #[serde(default)]
    pub tools_offered: Vec<String>,
    /// Tools the model called in its answer, by name in first-call order.
    #[serde(default)]
    pub tools_called: Vec<ToolCount>,
}

impl ContentSummary {
    /// True for a text-only call that offered no tools.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.tools_offered.is_empty() && self.tools_called.is_empty()
    }

    /// Counts a tool call by name.
    pub fn count_call(&mut self, name: &str) {
        match self.tools_called.iter_mut().find(|t| t.name == name) {
            Some(tool) => tool.count = tool.count.saturating_add(1),
            None => self.tools_called.push(ToolCount {
                name: name.to_owned(),
                count: 1,
            }),
        }
    }
}

/// A record as stored: the event placed in a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Schema version of this record.
    pub schema_version: u16,
    /// The chain (one per hub instance).
    pub chain_id: String,
    /// Position in the chain, from 1.
    pub sequence: u64,
    /// `record_hash` of the previous record in the chain, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl AuditRecord {
    /// The current schema version.
    pub const SCHEMA_VERSION: u16 = 1;

    /// The canonical bytes (see the module documentation).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Hex SHA-256 of the canonical bytes.
    pub fn record_hash(&self) -> Result<String, serde_json::Error> {
        Ok(hex::encode(Sha256::digest(self.canonical_bytes()?)))
    }

    /// The canonical bytes of the record that places an event in a chain at `sequence` after `prev_hash`,
    /// built from the event's own JSON encoding (`serde_json::to_vec(&event)`): the same bytes as
    /// [`Self::canonical_bytes`] of that record, since the event's fields follow the chain's in it. Whoever
    /// holds the event can encode it ahead, so that the chain's writer, which places one record at a time,
    /// only prefixes the chain's fields.
    pub fn canonical_bytes_of_encoded(
        chain_id: &str,
        sequence: u64,
        prev_hash: &str,
        event_json: &[u8],
    ) -> Result<Vec<u8>, serde_json::Error> {
        let fields = match event_json {
            [b'{', b'}'] => &[][..],
            [b'{', fields @ .., b'}'] => fields,
            _ => {
                return Err(serde::ser::Error::custom(
                    "an encoded event is a JSON object",
                ));
            }
        };
        let mut out = Vec::with_capacity(event_json.len() + chain_id.len() + prev_hash.len() + 80);
        out.extend_from_slice(b"{\"schema_version\":");
        out.extend_from_slice(Self::SCHEMA_VERSION.to_string().as_bytes());
        out.extend_from_slice(b",\"chain_id\":");
        serde_json::to_writer(&mut out, chain_id)?;
        out.extend_from_slice(b",\"sequence\":");
        out.extend_from_slice(sequence.to_string().as_bytes());
        out.extend_from_slice(b",\"prev_hash\":");
        serde_json::to_writer(&mut out, prev_hash)?;
        if !fields.is_empty() {
            out.push(b',');
            out.extend_from_slice(fields);
        }
        out.push(b'}');
        Ok(out)
    }
}

/// What a checkpoint marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// A chain starts: `chain_sequence` is 0 and `chain_head_hash` is [`GENESIS_HASH`].
    Genesis,
    /// The chain head after some records (every N records or T seconds, and when a writer stops).
    Periodic,
}

/// One entry of the checkpoint log. See the module documentation for its canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Schema version of this checkpoint.
    pub schema_version: u16,
    /// Position in the checkpoint log, from 1.
    pub sequence: u64,
    /// `checkpoint_hash` of the previous checkpoint in the log, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// Genesis or periodic.
    pub kind: CheckpointKind,
    /// When it was made, RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The chain it vouches for.
    pub chain_id: String,
    /// How many records the chain had (the head's `sequence`; 0 for genesis).
    pub chain_sequence: u64,
    /// `record_hash` of the chain's head, or [`GENESIS_HASH`] when it has no records.
    pub chain_head_hash: String,
    /// The signing key: `ed25519:` and the first 32 hex digits of the SHA-256 of its raw public key.
    pub key_id: String,
}

impl Checkpoint {
    /// The current schema version.
    pub const SCHEMA_VERSION: u16 = 1;

    /// The canonical bytes (see the module documentation); the signature is over them.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Hex SHA-256 of the canonical bytes.
    pub fn checkpoint_hash(&self) -> Result<String, serde_json::Error> {
        Ok(hex::encode(Sha256::digest(self.canonical_bytes()?)))
    }
}

/// A checkpoint with its hash and signature, as stored and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Hex SHA-256 of its canonical bytes.
    pub checkpoint_hash: String,
    /// Hex signature over its canonical bytes by `checkpoint.key_id`.
    pub signature: String,
}

#[cfg(any(test, feature = "test-support"))]
impl AuditEvent {
    /// A complete event with fixed values (an answered call of `alice` on the local model), for tests that
    /// change the fields they are about: `AuditEvent { outcome: Outcome::Denied, ..AuditEvent::sample() }`.
    pub fn sample() -> Self {
        Self {
            id: Uuid::from_u128(1),
            call_id: Uuid::from_u128(1),
            timestamp: time::macros::datetime!(2026-01-02 03:04:05 UTC),
            request_id: "req-1".into(),
            api: "invoke".into(),
            workload_principal: None,
            spoke_account: None,
            application: None,
            user_sub: Some("alice".into()),
            user_issuer: Some("causeway-dev".into()),
            purpose: Some("support".into()),
            data_classification: Some("internal".into()),
            model_alias: Some("local-dev".into()),
            model_id: Some("causeway-local-dev".into()),
            model_version: Some("1".into()),
            provider: Some("local".into()),
            development_model: true,
            catalog_version: "c1".into(),
            guard_profile: "default".into(),
            guard_profile_version: "1".into(),
            policy_hash: "p".into(),
            outcome: Outcome::Answered,
            error_code: None,
            reasons: vec!["policy0".into()],
            guard_events: vec![],
            injection_permille: 0,
            grounding_permille: None,
            low_trust: false,
            usage: TokenUsage {
                input_tokens: 3,
                output_tokens: 4,
            },
            cost_micro_usd: 0,
            latency_us: 10,
            prompt_sha256: None,
            response_sha256: None,
            content: Default::default(),
        }
    }
}

/// Hex SHA-256 of some text, for prompt and answer hashes.
pub fn sha256_hex(text: &[u8]) -> String {
    hex::encode(Sha256::digest(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_event() -> AuditEvent {
        AuditEvent::sample()
    }

    #[test]
    fn outcome_names_are_their_wire_names() {
        for (outcome, name) in Outcome::ALL.into_iter().zip(Outcome::NAMES) {
            assert_eq!(outcome.as_str(), name);
            assert_eq!(
                serde_json::to_string(&outcome).unwrap(),
                format!("\"{name}\"")
            );
        }
    }

    #[test]
    fn canonical_encoding_is_stable() {
        let record = AuditRecord {
            schema_version: 1,
            chain_id: "chain".into(),
            sequence: 1,
            prev_hash: GENESIS_HASH.into(),
            event: sample_event(),
        };
        let text = String::from_utf8(record.canonical_bytes().unwrap()).unwrap();
        insta::assert_snapshot!(text, @r#"{"schema_version":1,"chain_id":"chain","sequence":1,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","id":"00000000-0000-0000-0000-000000000001","call_id":"00000000-0000-0000-0000-000000000001","timestamp":"2026-01-02T03:04:05Z","request_id":"req-1","api":"invoke","workload_principal":null,"spoke_account":null,"application":null,"user_sub":"alice","user_issuer":"causeway-dev","purpose":"support","data_classification":"internal","model_alias":"local-dev","model_id":"causeway-local-dev","model_version":"1","provider":"local","development_model":true,"catalog_version":"c1","guard_profile":"default","guard_profile_version":"1","policy_hash":"p","outcome":"answered","error_code":null,"reasons":["policy0"],"guard_events":[],"injection_permille":0,"grounding_permille":null,"low_trust":false,"usage":{"input_tokens":3,"output_tokens":4},"cost_micro_usd":0,"latency_us":10,"prompt_sha256":null,"response_sha256":null}"#);
        // A changed field changes the hash.
        let mut altered = record.clone();
        altered.event.user_sub = Some("mallory".into());
        assert_ne!(
            record.record_hash().unwrap(),
            altered.record_hash().unwrap()
        );
        // Round trip keeps the hash.
        let back: AuditRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.record_hash().unwrap(), record.record_hash().unwrap());
    }

    /// Events that exercise every optional part of the encoding: absent and present options, content
    /// summaries, guard events with and without a source, and strings that need escapes.
    fn varied_events() -> Vec<AuditEvent> {
        let mut events = vec![sample_event()];
        let mut full = sample_event();
        full.workload_principal = Some("arn:aws:sts::111122223333:assumed-role/app/s".into());
        full.spoke_account = Some("111122223333".into());
        full.application = Some("support \"bot\"\n\u{1f}é\u{2028}".into());
        full.error_code = Some("model_timeout".into());
        full.grounding_permille = Some(912);
        full.prompt_sha256 = Some("ab".repeat(32));
        full.response_sha256 = Some("cd".repeat(32));
        full.reasons = vec!["a\\b".into(), String::new(), "日本".into()];
        full.content.count_call("search");
        full.content.tools_offered = vec!["search".into(), "</script>".into()];
        full.content.blocks.push(BlockCount {
            kind: "image".into(),
            count: 2,
            bytes: u64::MAX,
        });
        full.guard_events = vec![
            crate::guard::GuardEvent {
                stage: crate::guard::GuardStage::Input,
                kind: "pii".into(),
                entity: "EMAIL".into(),
                action: crate::guard::GuardAction::Mask,
                count: 3,
                source: crate::guard::TEXT_SOURCE.into(),
            },
            crate::guard::GuardEvent {
                stage: crate::guard::GuardStage::Output,
                kind: "injection".into(),
                entity: "instruction_override".into(),
                action: crate::guard::GuardAction::Block,
                count: 1,
                source: "tool_result".into(),
            },
        ];
        for outcome in Outcome::ALL {
            events.push(AuditEvent {
                outcome,
                ..full.clone()
            });
        }
        events.push(full);
        events
    }

    #[test]
    fn a_record_built_from_its_encoded_event_has_the_canonical_bytes() {
        for (n, event) in varied_events().into_iter().enumerate() {
            for (chain_id, prev_hash) in [
                ("chain", GENESIS_HASH.to_owned()),
                ("a \"quoted\" chain\\é", "ef".repeat(32)),
            ] {
                let sequence = [1, 1000, u64::MAX][n % 3];
                let record = AuditRecord {
                    schema_version: AuditRecord::SCHEMA_VERSION,
                    chain_id: chain_id.into(),
                    sequence,
                    prev_hash: prev_hash.clone(),
                    event: event.clone(),
                };
                let encoded = serde_json::to_vec(&event).unwrap();
                assert_eq!(
                    String::from_utf8(
                        AuditRecord::canonical_bytes_of_encoded(
                            chain_id, sequence, &prev_hash, &encoded
                        )
                        .unwrap()
                    )
                    .unwrap(),
                    String::from_utf8(record.canonical_bytes().unwrap()).unwrap()
                );
            }
        }
        for not_an_object in [&b""[..], b"[]", b"{", b"\"x\""] {
            assert!(
                AuditRecord::canonical_bytes_of_encoded("c", 1, GENESIS_HASH, not_an_object)
                    .is_err()
            );
        }
    }

    #[test]
    fn checkpoint_encoding_is_stable() {
        let checkpoint = Checkpoint {
            schema_version: 1,
            sequence: 2,
            prev_hash: "ab".repeat(32),
            kind: CheckpointKind::Periodic,
            timestamp: time::macros::datetime!(2026-01-02 03:04:05.25 UTC),
            chain_id: "chain".into(),
            chain_sequence: 1000,
            chain_head_hash: "cd".repeat(32),
            key_id: "ed25519:0123456789abcdef0123456789abcdef".into(),
        };
        let text = String::from_utf8(checkpoint.canonical_bytes().unwrap()).unwrap();
        insta::assert_snapshot!(text, @r#"{"schema_version":1,"sequence":2,"prev_hash":"abababababababababababababababababababababababababababababababab","kind":"periodic","timestamp":"2026-01-02T03:04:05.25Z","chain_id":"chain","chain_sequence":1000,"chain_head_hash":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","key_id":"ed25519:0123456789abcdef0123456789abcdef"}"#);
        assert_eq!(
            checkpoint.checkpoint_hash().unwrap(),
            sha256_hex(text.as_bytes())
        );
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(back.canonical_bytes().unwrap(), text.as_bytes());
    }
}
