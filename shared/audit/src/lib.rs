//! The Causeway audit trail.
//!
//! Every governed call, answered, denied or failed, produces one [`AuditEvent`]; an [`AuditSink`] places it
//! in a hash chain and makes it durable. The hub's invariant rests on this crate:
//!
//! INVARIANT: `AuditSink::append` returns `Ok` only once the record is durable (committed and synced); the
//! hub returns no answer until it has that `Ok`, and answers 503 when it gets an error.
//!
//! Each writer owns its own chain (`chain_id`), so writers never contend. Stores: [`EmbeddedStore`], a
//! single SQLite file in WAL mode with group commit, each group made durable by one synced frame of an
//! append-only record log beside it (the default); the AWS store (DynamoDB index plus S3 Object Lock
//! payloads, in the `causeway-audit-aws` adapter crate) implements the same trait. The read side
//! compliance uses (query, verify, export, erase, keys) is one [`AuditReader`] trait for both stores; payload
//! data keys come from a [`DataKeys`].
//!
//! Beside the records, a store keeps a signed checkpoint log ([`Checkpoint`], signed by a
//! [`CheckpointSigner`]) and the calls' payloads, encrypted under per-day data keys that can be erased. The
//! rules, encodings and what verification proves are in `RULES.md` beside this crate; [`pack`] writes and
//! checks self-contained evidence packs.

mod embedded;
pub mod keys;
mod log;
pub mod pack;
mod pack_reader;
pub mod reader;
mod sched;
pub mod verify;

use async_trait::async_trait;
pub use causeway_contract::audit::{
    AuditEvent, AuditRecord, Checkpoint, CheckpointKind, GENESIS_HASH, SignedCheckpoint,
};
pub use embedded::{
    ChainSummary, EmbeddedStore, ErasedPeriod, PayloadState, RecordFilter, StoreOptions, period_of,
};
pub use keys::{
    CheckpointSigner, DataKeys, Ed25519FileSigner, NewDataKey, PublicKeyInfo, open_payload,
    seal_payload,
};
pub use pack_reader::PackReader;
pub use reader::{AuditReader, EmbeddedReader};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
pub use verify::{Progress, Verification};

/// The prompt and answer of a call, stored encrypted apart from its record.
///
/// `prompt` is the prompt exactly as sent to the model (the hub's encoding, see `hub/src/audit.rs`) and
/// `response` the answer exactly as returned to the caller; the record's `prompt_sha256` and
/// `response_sha256` are the SHA-256 of these very bytes: the store sets them from the payload it stores
/// ([`Payload::stamp`]), and checks them when it reads a payload back ([`Payload::matches`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The prompt as sent to the model.
    pub prompt: String,
    /// The answer as returned to the caller.
    pub response: String,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print prompt or answer text.
        f.debug_struct("Payload")
            .field("prompt_bytes", &self.prompt.len())
            .field("response_bytes", &self.response.len())
            .finish()
    }
}

impl Payload {
    /// Sets `event`'s prompt and response hashes to those of exactly these bytes.
    pub fn stamp(&self, event: &mut AuditEvent) {
        use causeway_contract::audit::sha256_hex;
        event.prompt_sha256 = Some(sha256_hex(self.prompt.as_bytes()));
        event.response_sha256 = Some(sha256_hex(self.response.as_bytes()));
    }

    /// Checks that `event` carries the hashes of exactly these bytes.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        use causeway_contract::audit::sha256_hex;
        event.prompt_sha256.as_deref() == Some(sha256_hex(self.prompt.as_bytes()).as_str())
            && event.response_sha256.as_deref()
                == Some(sha256_hex(self.response.as_bytes()).as_str())
    }
}

/// Proof that a record is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReceipt {
    /// The record id.
    pub id: Uuid,
    /// The chain it went into.
    pub chain_id: String,
    /// Its position.
    pub sequence: u64,
    /// Its hash.
    pub record_hash: String,
}

/// The audit store could not take a record. The caller must fail closed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store rejected or could not persist the write.
    #[error("audit store write failed: {0}")]
    Write(String),
    /// The store cannot be opened or used at all.
    #[error("audit store unavailable: {0}")]
    Unavailable(String),
    /// The record could not be encoded.
    #[error("audit record encoding failed: {0}")]
    Encode(String),
    /// A stored record could not be read back.
    #[error("audit store read failed: {0}")]
    Read(String),
    /// The store cannot do this without a setting it was not given (the message names it).
    #[error("{0}")]
    Unsupported(String),
}

/// Where audit records go.
#[async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Chains `event` and makes it durable, with its `payload` (prompt and answer) when given, stored
    /// encrypted apart from the record in the same commit; the record's `prompt_sha256` and
    /// `response_sha256` are then set from the payload's bytes ([`Payload::stamp`]), whatever `event`
    /// carried, so a record always commits to exactly the payload stored with it. `Ok` means durable; see
    /// the crate invariant.
    async fn append(
        &self,
        event: AuditEvent,
        payload: Option<Payload>,
    ) -> Result<AuditReceipt, AuditError>;

    /// Checks that the store can take writes, for `/healthz`.
    async fn health(&self) -> Result<(), AuditError>;

    /// A short name for logs and metrics: `embedded`, `aws`.
    fn kind(&self) -> &'static str;
}

/// A break found when verifying: what is wrong and which record or checkpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// A sequence number is missing or out of order.
    Gap {
        /// The chain.
        chain_id: String,
        /// The sequence expected.
        expected: u64,
        /// The sequence found.
        found: u64,
    },
    /// A record's `prev_hash` does not match the previous record's hash.
    Link {
        /// The chain.
        chain_id: String,
        /// The sequence of the record whose link is wrong.
        sequence: u64,
    },
    /// A record's stored hash does not match its content, or its bytes are not canonical.
    Content {
        /// The chain.
        chain_id: String,
        /// The sequence of the altered record.
        sequence: u64,
    },
    /// A record cannot be decoded at all.
    Undecodable {
        /// The chain.
        chain_id: String,
        /// The sequence expected at that place.
        sequence: u64,
        /// The decoder's message.
        message: String,
    },
    /// A record's hash differs from the head hash a signed checkpoint recorded for its position: the chain
    /// up to it was rewritten (and re-hashed) after the checkpoint.
    CheckpointMismatch {
        /// The chain.
        chain_id: String,
        /// The record's sequence.
        sequence: u64,
        /// What vouched for another hash.
        by: verify::Voucher,
    },
    /// The chain ends before the position a signed checkpoint (or pack manifest) vouches for.
    Truncated {
        /// The chain.
        chain_id: String,
        /// Its last record.
        last: u64,
        /// The last record vouched for.
        expected: u64,
        /// What vouches for it.
        by: verify::Voucher,
    },
    /// A chain with records vouched for has no records at all.
    ChainMissing {
        /// The chain.
        chain_id: String,
        /// The last record vouched for.
        expected: u64,
        /// What vouches for it.
        by: verify::Voucher,
    },
    /// A chain has records but no genesis checkpoint registered it.
    Unregistered {
        /// The chain.
        chain_id: String,
    },
    /// A checkpoint is missing from the log or out of order.
    CheckpointGap {
        /// The log sequence expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A checkpoint does not link to the one before it.
    CheckpointLink {
        /// Its log sequence.
        sequence: u64,
    },
    /// A checkpoint's content does not match its stored hash, or is not canonical.
    CheckpointContent {
        /// Its log sequence.
        sequence: u64,
    },
    /// A checkpoint's signature does not verify.
    CheckpointSignature {
        /// Its log sequence.
        sequence: u64,
        /// The key it names.
        key_id: String,
    },
    /// A checkpoint is signed by a key that is not trusted.
    CheckpointUnknownKey {
        /// Its log sequence.
        sequence: u64,
        /// The key it names.
        key_id: String,
    },
    /// A checkpoint cannot be decoded.
    CheckpointUndecodable {
        /// Its position in the log.
        position: u64,
        /// The decoder's message.
        message: String,
    },
    /// An evidence pack's file is missing, altered or not listed.
    PackFile {
        /// The file, relative to the pack.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// An evidence pack's manifest is missing, unsigned, or does not match the pack.
    PackManifest {
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap {
                chain_id,
                expected,
                found,
            } if found > expected => write!(
                f,
                "chain `{chain_id}`: record {found} stands where record {expected} should: record {expected} was deleted or moved"
            ),
            Self::Gap {
                chain_id,
                expected,
                found,
            } => write!(
                f,
                "chain `{chain_id}`: record {found} stands where record {expected} should: records were moved or duplicated"
            ),
            Self::Link { chain_id, sequence } => write!(
                f,
                "chain `{chain_id}`: record {sequence} does not link to record {}: one of them was altered",
                sequence.saturating_sub(1)
            ),
            Self::Content { chain_id, sequence } => write!(
                f,
                "chain `{chain_id}`: record {sequence} was altered after it was written (its content does not match its hash)"
            ),
            Self::Undecodable {
                chain_id,
                sequence,
                message,
            } => write!(
                f,
                "chain `{chain_id}`: the record at sequence {sequence} cannot be read: {message}"
            ),
            Self::CheckpointMismatch {
                chain_id,
                sequence,
                by,
            } => write!(
                f,
                "chain `{chain_id}`: record {sequence} differs from the one {by} vouches for: the chain up to it was rewritten"
            ),
            Self::Truncated {
                chain_id,
                last,
                expected,
                by,
            } => write!(
                f,
                "chain `{chain_id}`: records {} to {expected} are missing: {by} vouches for {expected} records, the chain ends at {last}",
                last + 1
            ),
            Self::ChainMissing {
                chain_id,
                expected,
                by,
            } => write!(
                f,
                "chain `{chain_id}` is missing: {by} vouches for {expected} records in it"
            ),
            Self::Unregistered { chain_id } => write!(
                f,
                "chain `{chain_id}` was not registered by a genesis checkpoint: it was not started by this store"
            ),
            Self::CheckpointGap { expected, found } if found > expected => write!(
                f,
                "checkpoint log: checkpoint {found} stands where checkpoint {expected} should: checkpoint {expected} was deleted or moved"
            ),
            Self::CheckpointGap { expected, found } => write!(
                f,
                "checkpoint log: checkpoint {found} stands where checkpoint {expected} should: checkpoints were moved or duplicated"
            ),
            Self::CheckpointLink { sequence } => write!(
                f,
                "checkpoint log: checkpoint {sequence} does not link to checkpoint {}: one of them was replaced",
                sequence.saturating_sub(1)
            ),
            Self::CheckpointContent { sequence } => write!(
                f,
                "checkpoint log: checkpoint {sequence} was altered (its content does not match its hash)"
            ),
            Self::CheckpointSignature { sequence, key_id } => write!(
                f,
                "checkpoint log: checkpoint {sequence} does not carry a valid signature of key `{key_id}`"
            ),
            Self::CheckpointUnknownKey { sequence, key_id } => write!(
                f,
                "checkpoint log: checkpoint {sequence} is signed by `{key_id}`, which is not a trusted key"
            ),
            Self::CheckpointUndecodable { position, message } => write!(
                f,
                "checkpoint log: checkpoint {position} cannot be read: {message}"
            ),
            Self::PackFile { file, reason } => write!(f, "pack: `{file}` {reason}"),
            Self::PackManifest { reason } => write!(f, "pack: {reason}"),
        }
    }
}

/// Verifies one chain's records, given in sequence order with their stored hashes, without checkpoints.
///
/// Returns the first break, or `None` when every record is present, unaltered and in order. Stores verify
/// against their checkpoint log as well; see [`EmbeddedStore::verify_report`].
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = (&'a AuditRecord, &'a str)>,
) -> Option<ChainBreak> {
    let mut records = records.into_iter().peekable();
    let chain_id = records.peek().map(|(r, _)| r.chain_id.clone())?;
    let mut check = verify::ChainCheck::new(&chain_id, None, 1, GENESIS_HASH);
    for (record, stored_hash) in records {
        match record.canonical_bytes() {
            Ok(bytes) => check.push(&bytes, Some(stored_hash)),
            Err(_) => {
                return Some(ChainBreak::Content {
                    chain_id,
                    sequence: record.sequence,
                });
            }
        }
    }
    check.finish(None)
}
