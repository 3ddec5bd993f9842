//! An evidence pack opened for reading, as an [`AuditReader`]: what `causeway console --pack` serves to an
//! auditor with no store and no AWS access.
//!
//! Constraints:
//! - Read-only: a pack is evidence handed over; nothing here writes to its directory. Export and erasure are
//!   refused, and so are payloads (a pack holds none).
//! - The pack is verified when opened ([`PackReader::opened_verification`]) against the keys it carries, or
//!   against pinned keys; a pack that fails still opens, so a reviewer can see what is broken, and every
//!   page says it failed.
//! - Records are held in memory, newest first, with an index per filter field (user, account, model,
//!   purpose, outcome, application): a query walks only the records of its most selective field.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use causeway_contract::audit::{AuditRecord, Checkpoint};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::{Date, OffsetDateTime};

use crate::embedded::unix_ms;
use crate::pack::{self, CHECKPOINTS_FILE, ExportSummary, KEYS_FILE, RECORDS_FILE};
use crate::verify::Progress;
use crate::{
    AuditError, AuditReader, ChainSummary, ErasedPeriod, PayloadState, PublicKeyInfo, RecordFilter,
    Verification,
};

#[derive(Debug, Deserialize)]
struct Line<'a> {
    record_hash: String,
    #[serde(borrow)]
    record: &'a RawValue,
}

#[derive(Debug, Deserialize)]
struct CheckpointLine {
    checkpoint: Checkpoint,
}

/// The filter fields with an index.
const INDEXED: usize = 6;

/// An evidence pack, verified and loaded.
#[derive(Debug)]
pub struct PackReader {
    dir: PathBuf,
    /// Records with their hashes, newest first (by time, then id).
    records: Vec<(AuditRecord, String)>,
    /// Per indexed field, value to positions in `records` (ascending, so newest first).
    indexes: [HashMap<String, Vec<usize>>; INDEXED],
    chains: Vec<ChainSummary>,
    /// `(chain, sequence)` to position in `records`.
    positions: HashMap<(String, u64), usize>,
    keys: Vec<PublicKeyInfo>,
    verification: Verification,
}

fn indexed_values(record: &AuditRecord) -> [Option<&str>; INDEXED] {
    let e = &record.event;
    [
        e.user_sub.as_deref(),
        e.spoke_account.as_deref(),
        e.model_alias.as_deref(),
        e.purpose.as_deref(),
        Some(e.outcome.as_str()),
        e.application.as_deref(),
    ]
}

fn filter_values(filter: &RecordFilter) -> [Option<&str>; INDEXED] {
    [
        filter.user_sub.as_deref(),
        filter.spoke_account.as_deref(),
        filter.model_alias.as_deref(),
        filter.purpose.as_deref(),
        filter.outcome.as_deref(),
        filter.application.as_deref(),
    ]
}

impl PackReader {
    /// Opens and verifies the pack in `dir`: its signatures against `trusted` keys when given, else against
    /// the keys it carries.
    ///
    /// # Errors
    ///
    /// When `dir` is not a pack that can be read at all (no directory, no records file, a record line that
    /// does not decode). Breaks in the evidence are not errors: they are in the verification.
    pub fn open(dir: &Path, trusted: Option<&[PublicKeyInfo]>) -> Result<Self, AuditError> {
        let verification = pack::verify_pack(dir, trusted)?;
        let read = |name: &str| {
            std::fs::File::open(dir.join(name)).map_err(|e| {
                AuditError::Unavailable(format!(
                    "`{}` cannot be read: {e}",
                    dir.join(name).display()
                ))
            })
        };
        let mut records = Vec::new();
        for (n, line) in std::io::BufReader::new(read(RECORDS_FILE)?)
            .lines()
            .enumerate()
        {
            let line = line.map_err(|e| AuditError::Read(format!("{RECORDS_FILE}: {e}")))?;
            if line.is_empty() {
                continue;
            }
            let parsed: Line<'_> = serde_json::from_str(&line)
                .map_err(|e| AuditError::Read(format!("{RECORDS_FILE} line {}: {e}", n + 1)))?;
            let record: AuditRecord = serde_json::from_str(parsed.record.get())
                .map_err(|e| AuditError::Read(format!("{RECORDS_FILE} line {}: {e}", n + 1)))?;
            records.push((record, parsed.record_hash));
        }
        records.sort_by(|(a, _), (b, _)| {
            (unix_ms(b.event.timestamp), b.event.id).cmp(&(unix_ms(a.event.timestamp), a.event.id))
        });
        let mut indexes: [HashMap<String, Vec<usize>>; INDEXED] = Default::default();
        let mut heads: BTreeMap<&str, (u64, &str, i64)> = BTreeMap::new();
        for (at, (record, hash)) in records.iter().enumerate() {
            for (index, value) in indexes.iter_mut().zip(indexed_values(record)) {
                if let Some(value) = value {
                    index.entry(value.to_owned()).or_default().push(at);
                }
            }
            let head = heads.entry(&record.chain_id).or_insert((0, "", 0));
            if record.sequence >= head.0 {
                *head = (record.sequence, hash, unix_ms(record.event.timestamp));
            }
        }
        let mut checkpoints: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        if let Ok(file) = read(CHECKPOINTS_FILE) {
            for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
                // A line that does not decode is a break the verification above already names.
                if let Ok(CheckpointLine { checkpoint }) = serde_json::from_str(&line) {
                    checkpoints.insert(
                        checkpoint.chain_id.clone(),
                        (checkpoint.chain_sequence, unix_ms(checkpoint.timestamp)),
                    );
                }
            }
        }
        let chains = heads
            .into_iter()
            .map(|(chain_id, (head, hash, at))| ChainSummary {
                chain_id: chain_id.to_owned(),
                head_sequence: head,
                head_hash: hash.to_owned(),
                head_unix_ms: at,
                checkpoint_sequence: checkpoints.get(chain_id).map(|c| c.0),
                checkpoint_unix_ms: checkpoints.get(chain_id).map(|c| c.1),
            })
            .collect();
        let positions = records
            .iter()
            .enumerate()
            .map(|(at, (r, _))| ((r.chain_id.clone(), r.sequence), at))
            .collect();
        let keys = match trusted {
            Some(keys) => keys.to_vec(),
            None => std::fs::read(dir.join(KEYS_FILE))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default(),
        };
        Ok(Self {
            dir: dir.to_owned(),
            records,
            indexes,
            chains,
            positions,
            keys,
            verification,
        })
    }

    /// The verification made when the pack was opened.
    pub const fn opened_verification(&self) -> &Verification {
        &self.verification
    }

    /// How many records the pack holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the pack holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[async_trait]
impl AuditReader for PackReader {
    fn describe(&self) -> String {
        format!("evidence pack {}", self.dir.display())
    }

    async fn query(&self, filter: &RecordFilter) -> Result<Vec<(AuditRecord, String)>, AuditError> {
        let selected = self
            .indexes
            .iter()
            .zip(filter_values(filter))
            .filter_map(|(index, value)| value.map(|v| index.get(v).map_or(&[][..], Vec::as_slice)))
            .min_by_key(|positions| positions.len());
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        let pick = |at: usize| {
            let (record, hash) = &self.records[at];
            filter
                .matches(record)
                .then(|| (record.clone(), hash.clone()))
        };
        Ok(match selected {
            Some(positions) => positions
                .iter()
                .filter_map(|&at| pick(at))
                .take(limit)
                .collect(),
            None => {
                // Newest first: skip the records after the range or cursor without reading them.
                let end = filter
                    .until_unix_ms
                    .into_iter()
                    .chain(filter.before.as_ref().map(|(ts, _)| ts.saturating_add(1)))
                    .min();
                let start = end.map_or(0, |end| {
                    self.records
                        .partition_point(|(r, _)| unix_ms(r.event.timestamp) >= end)
                });
                (start..self.records.len())
                    .filter_map(pick)
                    .take(limit)
                    .collect()
            }
        })
    }

    async fn verify(
        &self,
        trusted: Option<&[PublicKeyInfo]>,
        progress: &Progress,
    ) -> Result<Verification, AuditError> {
        // The pack is read and hashed on this thread: off the async workers, counting as it goes.
        tokio::task::block_in_place(|| {
            pack::verify_pack_counting(&self.dir, trusted, Some(progress))
        })
    }

    async fn export(
        &self,
        _since: OffsetDateTime,
        _until: OffsetDateTime,
        _dir: &Path,
    ) -> Result<ExportSummary, AuditError> {
        Err(AuditError::Unsupported(
            "a pack is already an export: copy its directory as it is".into(),
        ))
    }

    async fn erase_period(&self, _period: Date) -> Result<ErasedPeriod, AuditError> {
        Err(AuditError::Unsupported(
            "a pack is read-only evidence: erase periods in the store it came from".into(),
        ))
    }

    async fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        Ok(self.keys.clone())
    }

    async fn chains(&self) -> Result<Vec<ChainSummary>, AuditError> {
        Ok(self.chains.clone())
    }

    async fn record(
        &self,
        chain_id: &str,
        sequence: u64,
    ) -> Result<Option<(AuditRecord, String)>, AuditError> {
        Ok(self
            .positions
            .get(&(chain_id.to_owned(), sequence))
            .map(|&at| self.records[at].clone()))
    }

    async fn payload(&self, _record: &AuditRecord) -> Result<PayloadState, AuditError> {
        Err(AuditError::Unsupported(
            "an evidence pack holds records, not payloads: read payloads in the hosted console"
                .into(),
        ))
    }
}
