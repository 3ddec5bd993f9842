//! The Causeway audit trail.
//!
//! Every governed call, answered, denied or failed, produces one [`AuditEvent`]; an [`AuditSink`] places it
//! in a hash chain and makes it durable. The hub's invariant rests on this crate:
//!
//! INVARIANT: `AuditSink::append` returns `Ok` only once the record is durable (committed and synced); the
//! hub returns no answer until it has that `Ok`, and answers 503 when it gets an error.
//!
//! Each writer owns its own chain (`chain_id`), so writers never contend. Stores: [`EmbeddedStore`], a
//! single SQLite file in WAL mode with group commit (the default); the AWS store (DynamoDB index plus S3
//! Object Lock payloads) implements the same trait.

mod embedded;

use async_trait::async_trait;
pub use causeway_contract::audit::{AuditEvent, AuditRecord, GENESIS_HASH};
pub use embedded::{EmbeddedStore, RecordFilter};
use uuid::Uuid;

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
}

/// Where audit records go.
#[async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Chains `event` and makes it durable. `Ok` means durable; see the crate invariant.
    async fn append(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError>;

    /// Checks that the store can take writes, for `/healthz`.
    async fn health(&self) -> Result<(), AuditError>;

    /// A short name for logs and metrics: `embedded`, `aws`.
    fn kind(&self) -> &'static str;
}

/// The first break found when verifying a chain.
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
    /// A record's stored hash does not match its content.
    Content {
        /// The chain.
        chain_id: String,
        /// The sequence of the altered record.
        sequence: u64,
    },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap {
                chain_id,
                expected,
                found,
            } => write!(
                f,
                "chain `{chain_id}`: expected sequence {expected}, found {found}"
            ),
            Self::Link { chain_id, sequence } => {
                write!(
                    f,
                    "chain `{chain_id}`: record {sequence} does not link to the record before it"
                )
            }
            Self::Content { chain_id, sequence } => {
                write!(
                    f,
                    "chain `{chain_id}`: record {sequence} was altered after it was written"
                )
            }
        }
    }
}

/// Verifies one chain's records, given in sequence order with their stored hashes.
///
/// Returns the first break, or `None` when every record is present, unaltered and in order.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = (&'a AuditRecord, &'a str)>,
) -> Option<ChainBreak> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    for (expected_seq, (record, stored_hash)) in (1_u64..).zip(records) {
        if record.sequence != expected_seq {
            return Some(ChainBreak::Gap {
                chain_id: record.chain_id.clone(),
                expected: expected_seq,
                found: record.sequence,
            });
        }
        if record.prev_hash != prev_hash {
            return Some(ChainBreak::Link {
                chain_id: record.chain_id.clone(),
                sequence: record.sequence,
            });
        }
        match record.record_hash() {
            Ok(hash) if hash == stored_hash => prev_hash = hash,
            _ => {
                return Some(ChainBreak::Content {
                    chain_id: record.chain_id.clone(),
                    sequence: record.sequence,
                });
            }
        }
    }
    None
}
