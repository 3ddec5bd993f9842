//! Verification: the checkpoint log, then each chain against it.
//!
//! What a clean verification proves (see `RULES.md`): every record from 1 to the chain's end is present, in
//! order, unaltered since it was hashed, and linked to the one before it; every signed checkpoint is intact,
//! in order, signed by a trusted key, and the records it vouches for are the ones it hashed; every chain the
//! log registered is present and reaches at least its last checkpoint; no chain is present that the log did
//! not register. What it cannot prove: that records written after the last checkpoint were not cut off (the
//! tail after the latest checkpoint, at most N records or T seconds), nor that the newest checkpoints were not
//! cut off the log itself; compare the log head with one published elsewhere for that.

use std::collections::BTreeMap;

use causeway_contract::audit::{
    AuditEvent, AuditRecord, Checkpoint, CheckpointKind, GENESIS_HASH, sha256_hex,
};

use crate::ChainBreak;
use crate::keys::PublicKeyInfo;

/// A checkpoint position vouching for a chain position: `chain_sequence -> (checkpoint sequence, head hash)`.
pub type Anchors = BTreeMap<u64, (u64, String)>;

/// The outcome of checking the checkpoint log.
#[derive(Debug, Clone, Default)]
pub struct CheckpointLog {
    /// Per chain, the positions vouched for by checkpoints with a valid signature.
    pub anchors: BTreeMap<String, Anchors>,
    /// Chains started by a genesis checkpoint, with its log sequence.
    pub registered: BTreeMap<String, u64>,
    /// Checkpoints read.
    pub count: u64,
    /// The hash of the last checkpoint read (the log head).
    pub head_hash: Option<String>,
    /// The first break in the log itself, if any.
    pub broken: Option<ChainBreak>,
}

impl CheckpointLog {
    /// Checks the log's entries, given in log order as `(canonical bytes, stored hash, signature)`.
    pub fn check<'a>(
        entries: impl IntoIterator<Item = (&'a [u8], &'a str, &'a str)>,
        keys: &[PublicKeyInfo],
    ) -> Self {
        let mut log = Self::default();
        let mut prev = GENESIS_HASH.to_owned();
        for (expected, (raw, stored_hash, signature)) in (1_u64..).zip(entries) {
            log.count += 1;
            let checkpoint: Checkpoint = match serde_json::from_slice(raw) {
                Ok(c) => c,
                Err(e) => {
                    log.broken.get_or_insert(ChainBreak::CheckpointUndecodable {
                        position: expected,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let sequence = checkpoint.sequence;
            let hash = sha256_hex(raw);
            let canonical = checkpoint.canonical_bytes().ok().as_deref() == Some(raw);
            let key = keys.iter().find(|k| k.key_id == checkpoint.key_id);
            let signed = key.is_some_and(|k| k.verify(raw, signature));
            // Only a checkpoint that is intact and validly signed vouches for anything.
            if signed && canonical && hash == stored_hash {
                if checkpoint.kind == CheckpointKind::Genesis {
                    log.registered
                        .entry(checkpoint.chain_id.clone())
                        .or_insert(sequence);
                }
                log.anchors
                    .entry(checkpoint.chain_id.clone())
                    .or_default()
                    .insert(
                        checkpoint.chain_sequence,
                        (sequence, checkpoint.chain_head_hash.clone()),
                    );
            }
            if log.broken.is_none() {
                log.broken = if sequence != expected {
                    Some(ChainBreak::CheckpointGap {
                        expected,
                        found: sequence,
                    })
                } else if hash != stored_hash || !canonical {
                    Some(ChainBreak::CheckpointContent { sequence })
                } else if key.is_none() {
                    Some(ChainBreak::CheckpointUnknownKey {
                        sequence,
                        key_id: checkpoint.key_id.clone(),
                    })
                } else if !signed {
                    Some(ChainBreak::CheckpointSignature {
                        sequence,
                        key_id: checkpoint.key_id.clone(),
                    })
                } else if checkpoint.prev_hash != prev {
                    Some(ChainBreak::CheckpointLink { sequence })
                } else {
                    None
                };
            }
            prev = hash;
        }
        log.head_hash = (log.count > 0).then_some(prev);
        log
    }

    /// The highest chain position a valid checkpoint vouches for, with that checkpoint's sequence.
    pub fn vouched_end(&self, chain_id: &str) -> Option<(u64, u64)> {
        self.anchors
            .get(chain_id)
            .and_then(|a| a.last_key_value())
            .map(|(seq, (cp, _))| (*seq, *cp))
    }
}

/// How many records a verification has checked so far, for a reader that shows it running.
#[derive(Debug, Default)]
pub struct Progress(std::sync::atomic::AtomicU64);

impl Progress {
    /// Records checked so far.
    pub fn checked(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Checks one chain's records, pushed in the order they are stored.
#[derive(Debug)]
pub struct ChainCheck<'a> {
    chain_id: String,
    progress: Option<&'a Progress>,
    anchors: Option<&'a Anchors>,
    next: u64,
    prev_hash: String,
    count: u64,
    broken: Option<ChainBreak>,
}

impl<'a> ChainCheck<'a> {
    /// Starts checking `chain_id` from `first_sequence`, whose record must link to `prev_hash`.
    pub fn new(
        chain_id: &str,
        anchors: Option<&'a Anchors>,
        first_sequence: u64,
        prev_hash: &str,
    ) -> Self {
        let mut check = Self {
            chain_id: chain_id.to_owned(),
            progress: None,
            anchors,
            next: first_sequence,
            prev_hash: prev_hash.to_owned(),
            count: 0,
            broken: None,
        };
        // A checkpoint just before the start vouches for the hash the first record links to.
        if let Some(before) = first_sequence.checked_sub(1)
            && let Some((cp, head)) = anchors.and_then(|a| a.get(&before))
            && *head != check.prev_hash
        {
            check.broken = Some(ChainBreak::CheckpointMismatch {
                chain_id: chain_id.to_owned(),
                sequence: before,
                by: Voucher::Checkpoint(*cp),
            });
        }
        check
    }

    /// Records pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sequence and hash of the last record accepted, while nothing is broken.
    pub fn head(&self) -> Option<(u64, &str)> {
        (self.broken.is_none() && self.count > 0)
            .then(|| (self.next.saturating_sub(1), self.prev_hash.as_str()))
    }

    /// The chain checked.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Counts every record pushed into `progress` too.
    #[must_use]
    pub const fn counting(mut self, progress: Option<&'a Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Checks the next record: its canonical bytes as stored, and the hash stored beside them, if any.
    pub fn push(&mut self, raw: &[u8], stored_hash: Option<&str>) {
        let examined = Examined::of(raw, &mut Vec::new());
        self.accept(examined, stored_hash);
    }

    /// Checks a batch of records, `(canonical bytes, stored hash)` in stored order, exactly as
    /// [`Self::push`] each in turn would: the per-record work (decoding, re-encoding, hashing) is spread over
    /// up to `workers` threads, the linking is done in order here.
    pub fn push_batch<B, H>(&mut self, batch: &[(B, H)], workers: usize)
    where
        B: AsRef<[u8]> + Sync,
        H: AsRef<str> + Sync,
    {
        if self.broken.is_some() {
            self.count += batch.len() as u64;
            if let Some(progress) = self.progress {
                progress.add(batch.len() as u64);
            }
            return;
        }
        let examined = examine_all(batch, workers);
        for ((_, hash), examined) in batch.iter().zip(examined) {
            self.accept(examined, Some(hash.as_ref()));
        }
    }

    fn accept(&mut self, examined: Examined, stored_hash: Option<&str>) {
        self.count += 1;
        if let Some(progress) = self.progress {
            progress.add(1);
        }
        if self.broken.is_some() {
            return;
        }
        let chain_id = self.chain_id.clone();
        let record = match examined {
            Examined::Undecodable(message) => {
                self.broken = Some(ChainBreak::Undecodable {
                    chain_id,
                    sequence: self.next,
                    message,
                });
                return;
            }
            Examined::Record(record) => record,
        };
        let sequence = record.sequence;
        if record.chain_id != chain_id {
            self.broken = Some(ChainBreak::Content { chain_id, sequence });
            return;
        }
        if sequence != self.next {
            self.broken = Some(ChainBreak::Gap {
                chain_id,
                expected: self.next,
                found: sequence,
            });
            return;
        }
        if !record.canonical || stored_hash.is_some_and(|h| h != record.hash) {
            self.broken = Some(ChainBreak::Content { chain_id, sequence });
            return;
        }
        if record.prev_hash != self.prev_hash {
            self.broken = Some(ChainBreak::Link { chain_id, sequence });
            return;
        }
        if let Some((cp, head)) = self.anchors.and_then(|a| a.get(&sequence))
            && *head != record.hash
        {
            self.broken = Some(ChainBreak::CheckpointMismatch {
                chain_id,
                sequence,
                by: Voucher::Checkpoint(*cp),
            });
            return;
        }
        self.prev_hash = record.hash;
        self.next += 1;
    }

    /// Ends the check. `expected_end`: the last sequence something trusted vouches for, and by what.
    pub fn finish(self, expected_end: Option<(u64, Voucher)>) -> Option<ChainBreak> {
        if self.broken.is_some() {
            return self.broken;
        }
        let last = self.next.saturating_sub(1);
        match expected_end {
            Some((end, by)) if end > last => Some(if self.count == 0 {
                ChainBreak::ChainMissing {
                    chain_id: self.chain_id,
                    expected: end,
                    by,
                }
            } else {
                ChainBreak::Truncated {
                    chain_id: self.chain_id,
                    last,
                    expected: end,
                    by,
                }
            }),
            _ => None,
        }
    }
}

/// What one record's bytes say, worked out without reference to the records around it.
#[derive(Debug)]
enum Examined {
    Undecodable(String),
    Record(Facts),
}

#[derive(Debug)]
struct Facts {
    chain_id: String,
    sequence: u64,
    prev_hash: String,
    /// Hex SHA-256 of the bytes.
    hash: String,
    /// Whether the bytes are the record's canonical encoding.
    canonical: bool,
}

/// An unsigned integer as canonical JSON writes it (no sign, no leading zero), and what follows it.
fn take_uint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    let (digits, rest) = bytes.split_at(end);
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, rest))
}

/// The text of a JSON string up to its closing quote, when canonical JSON writes it unescaped (no
/// backslash, no control character), and what follows the quote.
fn take_plain_str(bytes: &[u8]) -> Option<(String, &[u8])> {
    let end = bytes
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if bytes[end] != b'"' {
        return None;
    }
    let text = std::str::from_utf8(&bytes[..end]).ok()?.to_owned();
    Some((text, &bytes[end + 1..]))
}

/// Decodes record bytes laid out as the canonical encoding starts (`schema_version`, `chain_id`, `sequence`,
/// `prev_hash`, then the event's fields), decoding the event on its own rather than through serde's
/// `flatten` (which buffers every field first). `None` when the bytes are laid out otherwise. Only a record
/// whose re-encoding then equals `raw` may be trusted from here: for those bytes the ordinary decoding gives
/// the same record.
fn decode_split(raw: &[u8], scratch: &mut Vec<u8>) -> Option<AuditRecord> {
    let rest = raw.strip_prefix(b"{\"schema_version\":")?;
    let (schema_version, rest) = take_uint(rest)?;
    let rest = rest.strip_prefix(b",\"chain_id\":\"")?;
    let (chain_id, rest) = take_plain_str(rest)?;
    let rest = rest.strip_prefix(b",\"sequence\":")?;
    let (sequence, rest) = take_uint(rest)?;
    let rest = rest.strip_prefix(b",\"prev_hash\":\"")?;
    let (prev_hash, rest) = take_plain_str(rest)?;
    let rest = rest.strip_prefix(b",")?;
    scratch.clear();
    scratch.push(b'{');
    scratch.extend_from_slice(rest);
    let event: AuditEvent = serde_json::from_slice(scratch).ok()?;
    Some(AuditRecord {
        schema_version: u16::try_from(schema_version).ok()?,
        chain_id,
        sequence,
        prev_hash,
        event,
    })
}

impl Examined {
    /// Decodes `raw`, re-encodes it into `scratch` to compare (canonical form), and hashes it.
    fn of(raw: &[u8], scratch: &mut Vec<u8>) -> Self {
        // The quick way, for bytes that turn out canonical; anything else is decided the ordinary way below.
        if let Some(record) = decode_split(raw, scratch) {
            scratch.clear();
            if serde_json::to_writer(&mut *scratch, &record).is_ok() && scratch == raw {
                return Self::Record(Facts {
                    hash: sha256_hex(raw),
                    canonical: true,
                    chain_id: record.chain_id,
                    sequence: record.sequence,
                    prev_hash: record.prev_hash,
                });
            }
        }
        let record: AuditRecord = match serde_json::from_slice(raw) {
            Ok(r) => r,
            Err(e) => return Self::Undecodable(e.to_string()),
        };
        scratch.clear();
        let canonical = serde_json::to_writer(&mut *scratch, &record).is_ok() && scratch == raw;
        Self::Record(Facts {
            hash: sha256_hex(raw),
            canonical,
            chain_id: record.chain_id,
            sequence: record.sequence,
            prev_hash: record.prev_hash,
        })
    }
}

/// Examines every record of `batch`, in order, on up to `workers` threads.
fn examine_all<B, H>(batch: &[(B, H)], workers: usize) -> Vec<Examined>
where
    B: AsRef<[u8]> + Sync,
    H: Sync,
{
    let serial = |part: &[(B, H)]| {
        let mut scratch = Vec::new();
        part.iter()
            .map(|(raw, _)| Examined::of(raw.as_ref(), &mut scratch))
            .collect::<Vec<_>>()
    };
    let workers = workers.clamp(1, 64);
    if workers == 1 || batch.len() < 64 {
        return serial(batch);
    }
    let size = batch.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let mut parts = batch.chunks(size);
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts
            .map(|part| scope.spawn(move || serial(part)))
            .collect();
        let mut all = serial(first);
        for handle in handles {
            match handle.join() {
                Ok(mut part) => all.append(&mut part),
                // A worker cannot fail short of a bug; examine its part here instead.
                Err(_) => {
                    let done = all.len();
                    let end = (done + size).min(batch.len());
                    all.extend(serial(&batch[done..end]));
                }
            }
        }
        all
    })
}

/// How many threads verification spreads record checks over: the machine's cores.
pub fn verify_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What vouches for how long a chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voucher {
    /// A signed checkpoint, by its log sequence.
    Checkpoint(u64),
    /// The signed manifest of an evidence pack.
    Manifest,
}

impl std::fmt::Display for Voucher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Checkpoint(n) => write!(f, "signed checkpoint {n}"),
            Self::Manifest => f.write_str("the signed pack manifest"),
        }
    }
}

/// The result of a whole verification.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// Chains checked.
    pub chains: usize,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The hash of the last checkpoint (the log head), to compare with a copy kept elsewhere.
    pub log_head: Option<String>,
    /// Every break found, the most specific first: records, then chains, then the checkpoint log, then (for a
    /// pack) its files. Each chain and the log report only their first break.
    pub breaks: Vec<ChainBreak>,
}

impl Verification {
    /// True when nothing is broken.
    pub fn is_ok(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// Chains the log registered that `present` lacks, and chains present that the log did not register, in
/// that order, given the breaks already found per chain.
pub(crate) fn registration_breaks<'s>(
    log: &CheckpointLog,
    present: impl IntoIterator<Item = &'s str>,
) -> Vec<ChainBreak> {
    let mut breaks = Vec::new();
    for chain in present {
        if !log.registered.contains_key(chain) {
            breaks.push(ChainBreak::Unregistered {
                chain_id: chain.to_owned(),
            });
        }
    }
    breaks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the ordinary decoding alone decides.
    fn ordinary(raw: &[u8]) -> String {
        let examined = match serde_json::from_slice::<AuditRecord>(raw) {
            Err(e) => Examined::Undecodable(e.to_string()),
            Ok(record) => Examined::Record(Facts {
                hash: sha256_hex(raw),
                canonical: record.canonical_bytes().ok().as_deref() == Some(raw),
                chain_id: record.chain_id,
                sequence: record.sequence,
                prev_hash: record.prev_hash,
            }),
        };
        format!("{examined:?}")
    }

    #[test]
    fn the_quick_decoding_decides_as_the_ordinary_one() {
        let record = AuditRecord {
            schema_version: AuditRecord::SCHEMA_VERSION,
            chain_id: "chain-1".into(),
            sequence: 42,
            prev_hash: "ab".repeat(32),
            event: AuditEvent::sample(),
        };
        let canonical = String::from_utf8(record.canonical_bytes().unwrap()).unwrap();
        let variants = [
            canonical.clone(),
            canonical.replacen(',', ", ", 1),
            canonical.replace("\"sequence\":42", "\"sequence\":042"),
            canonical.replace("\"chain_id\":\"chain-1\"", "\"chain_id\":\"chain\\u002d1\""),
            canonical.replace(
                "\"sequence\":42,\"prev_hash\"",
                "\"sequence\":42,\"sequence\":43,\"prev_hash\"",
            ),
            canonical.replacen(",\"id\":", ",\"chain_id\":\"other\",\"id\":", 1),
            canonical.replacen(",\"id\":", ",\"unknown\":1,\"id\":", 1),
            canonical.replace("\"schema_version\":1", "\"schema_version\":70000"),
            canonical.trim_end_matches('}').to_owned(),
            canonical.replacen("\"request_id\"", "\"request_ID\"", 1),
            format!("{canonical} "),
        ];
        for variant in variants {
            let quick = format!("{:?}", Examined::of(variant.as_bytes(), &mut Vec::new()));
            assert_eq!(quick, ordinary(variant.as_bytes()), "{variant}");
        }
        assert!(matches!(
            Examined::of(canonical.as_bytes(), &mut Vec::new()),
            Examined::Record(Facts {
                canonical: true,
                ..
            })
        ));
    }
}
