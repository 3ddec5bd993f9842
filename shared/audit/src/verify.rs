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
    prev_hash: HashText,
    count: u64,
    broken: Option<ChainBreak>,
    /// Records up to this sequence are vouched for by a valid checkpoint, and their form is left to the
    /// hash (0: every record is decoded). See [`Self::trusting_vouched_form`].
    vouched_through: u64,
    /// Records whose form was left to the hash.
    trusted: u64,
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
            prev_hash: HashText::parse(prev_hash),
            count: 0,
            broken: None,
            vouched_through: 0,
            trusted: 0,
        };
        // A checkpoint just before the start vouches for the hash the first record links to.
        if let Some(before) = first_sequence.checked_sub(1)
            && let Some((cp, head)) = anchors.and_then(|a| a.get(&before))
            && !check.prev_hash.is(head.as_bytes())
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
    pub fn head(&self) -> Option<(u64, String)> {
        (self.broken.is_none() && self.count > 0)
            .then(|| (self.next.saturating_sub(1), self.prev_hash.to_string()))
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

    /// Leaves the canonical form of records a valid checkpoint vouches for to their hash, rather than decoding
    /// and re-encoding each (most of the cost of a record). A record vouched for hashes into the chain up to
    /// a head its writer signed, and the writer hashes only the canonical encoding it made; so while the
    /// chain checks out, those bytes are the canonical ones. Once anything is broken that no longer follows,
    /// and the first break may lie at an earlier record whose form alone is wrong: [`Self::needs_full_check`]
    /// then says to check the chain again without this (`RULES.md`, "What `verify` proves").
    #[must_use]
    pub fn trusting_vouched_form(mut self) -> Self {
        self.vouched_through = self
            .anchors
            .and_then(|a| a.last_key_value())
            .map_or(0, |(sequence, _)| *sequence);
        self
    }

    /// True when a break was found while the form of some records was left to their hash: the break named
    /// may not be the first, and the chain must be checked again in full.
    pub fn needs_full_check(&self) -> bool {
        self.broken.is_some() && self.trusted > 0
    }

    /// Checks the next record: its canonical bytes as stored, and the hash stored beside them, if any.
    pub fn push(&mut self, raw: &[u8], stored_hash: Option<&str>) {
        self.link(Examined::of(
            raw,
            stored_hash.map(str::as_bytes),
            &self.chain_id,
            self.vouched_through,
            &mut Vec::new(),
        ));
    }

    /// The per-record work of this check (hashing; decoding and re-encoding where the form is checked), to
    /// be done on any thread; [`Self::accept`] then takes the results in stored order.
    pub fn examiner(&self) -> Examiner {
        Examiner {
            chain_id: self.chain_id.clone(),
            vouched_through: self.vouched_through,
        }
    }

    /// Checks the next record, from what [`Self::examiner`] found in it.
    pub fn accept(&mut self, facts: RecordFacts) {
        let RecordFacts(examined) = facts;
        self.link(examined);
    }

    fn link(&mut self, examined: Examined) {
        self.count += 1;
        if let Some(progress) = self.progress {
            progress.add(1);
        }
        if self.broken.is_some() {
            return;
        }
        let record = match examined {
            Examined::Undecodable(message) => {
                self.broken = Some(ChainBreak::Undecodable {
                    chain_id: self.chain_id.clone(),
                    sequence: self.next,
                    message,
                });
                return;
            }
            Examined::Record(record) => record,
            Examined::Vouched(record) => {
                self.trusted += 1;
                record
            }
        };
        let sequence = record.sequence;
        let chain_id = || self.chain_id.clone();
        self.broken = if !record.same_chain {
            Some(ChainBreak::Content {
                chain_id: chain_id(),
                sequence,
            })
        } else if sequence != self.next {
            Some(ChainBreak::Gap {
                chain_id: chain_id(),
                expected: self.next,
                found: sequence,
            })
        } else if !record.canonical || !record.hash_as_stored {
            Some(ChainBreak::Content {
                chain_id: chain_id(),
                sequence,
            })
        } else if record.prev_hash != self.prev_hash {
            Some(ChainBreak::Link {
                chain_id: chain_id(),
                sequence,
            })
        } else if let Some((cp, head)) = self.anchors.and_then(|a| a.get(&sequence))
            && !record.hash.is(head.as_bytes())
        {
            Some(ChainBreak::CheckpointMismatch {
                chain_id: chain_id(),
                sequence,
                by: Voucher::Checkpoint(*cp),
            })
        } else {
            None
        };
        if self.broken.is_none() {
            self.prev_hash = record.hash;
            self.next += 1;
        }
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
    /// Decoded, and its form checked.
    Record(Facts),
    /// Vouched for by a checkpoint: only its leading fields read, its form left to the hash.
    Vouched(Facts),
}

#[derive(Debug)]
struct Facts {
    /// Whether the record names the chain checked.
    same_chain: bool,
    sequence: u64,
    prev_hash: HashText,
    /// SHA-256 of the bytes.
    hash: HashText,
    /// Whether the hash stored beside the bytes, if any, is theirs.
    hash_as_stored: bool,
    /// Whether the bytes are the record's canonical encoding.
    canonical: bool,
}

/// What one record's bytes say, from [`Examiner::examine`], for [`ChainCheck::accept`].
#[derive(Debug)]
pub struct RecordFacts(Examined);

/// The per-record work of a [`ChainCheck`], done on any thread: what every record of the chain is examined
/// against.
#[derive(Debug, Clone)]
pub struct Examiner {
    chain_id: String,
    /// See [`ChainCheck::trusting_vouched_form`].
    vouched_through: u64,
}

impl Examiner {
    /// Hashes one record's bytes and reads what linking it needs; `stored_hash` is the hash stored beside
    /// them, if any; `scratch` is reused from record to record.
    pub fn examine(
        &self,
        raw: &[u8],
        stored_hash: Option<&[u8]>,
        scratch: &mut Vec<u8>,
    ) -> RecordFacts {
        RecordFacts(Examined::of(
            raw,
            stored_hash,
            &self.chain_id,
            self.vouched_through,
            scratch,
        ))
    }
}

/// Each byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0_u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 15]];
        byte += 1;
    }
    pairs
};

/// A hash as records and checkpoints write it, compared as text: a SHA-256 digest is 64 hex digits, held
/// inline; any other text (which no digest equals) is held as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HashText {
    Hex([u8; 64]),
    Other(Box<str>),
}

impl HashText {
    /// The SHA-256 of `bytes`, in lower-case hex.
    fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let mut hex = [0_u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        Self::Hex(hex)
    }

    fn parse(text: &str) -> Self {
        match <[u8; 64]>::try_from(text.as_bytes()) {
            Ok(hex) => Self::Hex(hex),
            Err(_) => Self::Other(text.into()),
        }
    }

    /// Whether `text` is this hash's text.
    fn is(&self, text: &[u8]) -> bool {
        match self {
            Self::Hex(hex) => hex == text,
            Self::Other(other) => other.as_bytes() == text,
        }
    }
}

impl std::fmt::Display for HashText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Only ever built from a `str`, or from hex digits.
            Self::Hex(hex) => f.write_str(std::str::from_utf8(hex).map_err(|_| std::fmt::Error)?),
            Self::Other(other) => f.write_str(other),
        }
    }
}

/// An unsigned integer as canonical JSON writes it (no sign, no leading zero), and what follows it.
fn take_uint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    let (digits, rest) = bytes.split_at(end);
    if digits.is_empty() || (digits.len() > 1 && digits.first() == Some(&b'0')) {
        return None;
    }
    let n = digits.iter().try_fold(0_u64, |n, digit| {
        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })?;
    Some((n, rest))
}

/// The text of a JSON string up to its closing quote, when canonical JSON writes it unescaped (no
/// backslash, no control character), and what follows the quote.
fn take_plain_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let end = memchr::memchr(b'"', bytes)?;
    let (text, rest) = bytes.split_at(end);
    // Checked over the whole text without stopping early, so the loop can be vectorised.
    let escaped = text
        .iter()
        .fold(false, |found, &b| found | (b == b'\\') | (b < 0x20));
    if escaped {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    Some((text, rest.get(1..)?))
}

/// The fields the canonical encoding of a record starts with, read straight from its bytes, and the bytes
/// after `prev_hash` (from the comma on). `None` when the bytes start otherwise.
struct Head<'a> {
    schema_version: u64,
    chain_id: &'a str,
    sequence: u64,
    prev_hash: &'a str,
    rest: &'a [u8],
}

impl<'a> Head<'a> {
    fn read(raw: &'a [u8]) -> Option<Self> {
        let rest = raw.strip_prefix(b"{\"schema_version\":")?;
        let (schema_version, rest) = take_uint(rest)?;
        let rest = rest.strip_prefix(b",\"chain_id\":\"")?;
        let (chain_id, rest) = take_plain_str(rest)?;
        let rest = rest.strip_prefix(b",\"sequence\":")?;
        let (sequence, rest) = take_uint(rest)?;
        let rest = rest.strip_prefix(b",\"prev_hash\":\"")?;
        let (prev_hash, rest) = take_plain_str(rest)?;
        Some(Self {
            schema_version,
            chain_id,
            sequence,
            prev_hash,
            rest,
        })
    }
}

/// The chain a record's bytes name, read as the canonical encoding starts (`None` when it starts otherwise).
pub fn chain_id_of(raw: &[u8]) -> Option<&str> {
    Head::read(raw).map(|head| head.chain_id)
}

/// Decodes record bytes laid out as the canonical encoding starts (`schema_version`, `chain_id`, `sequence`,
/// `prev_hash`, then the event's fields), decoding the event on its own rather than through serde's
/// `flatten` (which buffers every field first). `None` when the bytes are laid out otherwise. Only a record
/// whose re-encoding then equals `raw` may be trusted from here: for those bytes the ordinary decoding gives
/// the same record.
fn decode_split(head: &Head<'_>, scratch: &mut Vec<u8>) -> Option<AuditRecord> {
    let rest = head.rest.strip_prefix(b",")?;
    scratch.clear();
    scratch.push(b'{');
    scratch.extend_from_slice(rest);
    let event: AuditEvent = serde_json::from_slice(scratch).ok()?;
    Some(AuditRecord {
        schema_version: u16::try_from(head.schema_version).ok()?,
        chain_id: head.chain_id.to_owned(),
        sequence: head.sequence,
        prev_hash: head.prev_hash.to_owned(),
        event,
    })
}

impl Examined {
    /// Hashes `raw` and reads its fields: when it starts as a canonical record that a checkpoint vouches for
    /// (sequence up to `vouched_through`), only the leading ones; otherwise it is decoded and re-encoded into
    /// `scratch` to compare (canonical form).
    fn of(
        raw: &[u8],
        stored_hash: Option<&[u8]>,
        expected_chain: &str,
        vouched_through: u64,
        scratch: &mut Vec<u8>,
    ) -> Self {
        let facts = |chain_id: &str, sequence, prev_hash: &str, canonical| {
            let hash = HashText::of(raw);
            Facts {
                same_chain: chain_id == expected_chain,
                sequence,
                prev_hash: HashText::parse(prev_hash),
                hash_as_stored: stored_hash.is_none_or(|stored| hash.is(stored)),
                hash,
                canonical,
            }
        };
        let head = Head::read(raw);
        if let Some(head) = &head
            && head.sequence <= vouched_through
            && u16::try_from(head.schema_version).is_ok()
        {
            return Self::Vouched(facts(head.chain_id, head.sequence, head.prev_hash, true));
        }
        // The quick way, for bytes that turn out canonical; anything else is decided the ordinary way below.
        if let Some(record) = head.and_then(|head| decode_split(&head, scratch)) {
            scratch.clear();
            if serde_json::to_writer(&mut *scratch, &record).is_ok() && scratch == raw {
                return Self::Record(facts(
                    &record.chain_id,
                    record.sequence,
                    &record.prev_hash,
                    true,
                ));
            }
        }
        let record: AuditRecord = match serde_json::from_slice(raw) {
            Ok(r) => r,
            Err(e) => return Self::Undecodable(e.to_string()),
        };
        scratch.clear();
        let canonical = serde_json::to_writer(&mut *scratch, &record).is_ok() && scratch == raw;
        Self::Record(facts(
            &record.chain_id,
            record.sequence,
            &record.prev_hash,
            canonical,
        ))
    }
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

    const CHAIN: &str = "chain-1";

    fn record(sequence: u64, prev_hash: &str) -> AuditRecord {
        AuditRecord {
            schema_version: AuditRecord::SCHEMA_VERSION,
            chain_id: CHAIN.into(),
            sequence,
            prev_hash: prev_hash.into(),
            event: AuditEvent::sample(),
        }
    }

    /// What the ordinary decoding alone decides.
    fn ordinary(raw: &[u8], stored_hash: Option<&[u8]>) -> String {
        let examined = match serde_json::from_slice::<AuditRecord>(raw) {
            Err(e) => Examined::Undecodable(e.to_string()),
            Ok(record) => Examined::Record(Facts {
                same_chain: record.chain_id == CHAIN,
                sequence: record.sequence,
                prev_hash: HashText::parse(&record.prev_hash),
                hash_as_stored: stored_hash.is_none_or(|h| h == sha256_hex(raw).as_bytes()),
                hash: HashText::parse(&sha256_hex(raw)),
                canonical: record.canonical_bytes().ok().as_deref() == Some(raw),
            }),
        };
        format!("{examined:?}")
    }

    #[test]
    fn the_quick_decoding_decides_as_the_ordinary_one() {
        let canonical =
            String::from_utf8(record(42, &"ab".repeat(32)).canonical_bytes().unwrap()).unwrap();
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
            canonical.replace(&"ab".repeat(32), &"AB".repeat(32)),
            canonical.trim_end_matches('}').to_owned(),
            canonical.replacen("\"request_id\"", "\"request_ID\"", 1),
            format!("{canonical} "),
        ];
        let stored = sha256_hex(canonical.as_bytes());
        for variant in variants {
            for stored in [None, Some(stored.as_bytes())] {
                let quick = Examined::of(variant.as_bytes(), stored, CHAIN, 0, &mut Vec::new());
                assert_eq!(
                    format!("{quick:?}"),
                    ordinary(variant.as_bytes(), stored),
                    "{variant}"
                );
            }
        }
        assert!(matches!(
            Examined::of(canonical.as_bytes(), None, CHAIN, 0, &mut Vec::new()),
            Examined::Record(Facts {
                canonical: true,
                ..
            })
        ));
    }

    /// A string is read plain exactly when its first quote, backslash or control character is a quote.
    #[test]
    fn a_plain_string_ends_at_a_quote_with_no_escape_before_it() {
        fn reference(bytes: &[u8]) -> Option<(&str, &[u8])> {
            let end = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            if bytes[end] != b'"' {
                return None;
            }
            Some((std::str::from_utf8(&bytes[..end]).ok()?, &bytes[end + 1..]))
        }
        let pieces: [&[u8]; 9] = [
            b"a",
            b"\"",
            b"\\",
            b"\n",
            b"\x1f",
            b" ",
            "\u{e9}".as_bytes(),
            b"\xff",
            b",",
        ];
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = texts
                .iter()
                .flat_map(|t| pieces.iter().map(move |p| [t.as_slice(), p].concat()))
                .collect();
            texts.extend(longer);
        }
        for text in &texts {
            assert_eq!(take_plain_str(text), reference(text), "{text:?}");
        }
        for byte in 0..=255_u8 {
            assert_eq!(
                HEX_PAIRS[usize::from(byte)],
                *format!("{byte:02x}").as_bytes()
            );
        }
    }

    #[test]
    fn hashes_compare_as_text() {
        let digest = sha256_hex(b"x");
        assert_eq!(HashText::parse(&digest), HashText::of(b"x"));
        assert!(HashText::of(b"x").is(digest.as_bytes()));
        assert_eq!(HashText::of(b"x").to_string(), digest);
        for other in [
            digest.to_uppercase(),
            digest[..63].to_owned(),
            format!("{digest}0"),
            String::new(),
        ] {
            assert!(!HashText::of(b"x").is(other.as_bytes()), "{other}");
            assert_ne!(HashText::parse(&other), HashText::of(b"x"), "{other}");
            assert!(HashText::parse(&other).is(other.as_bytes()));
            assert_eq!(HashText::parse(&other).to_string(), other);
        }
    }

    /// Records 1 to `n`, canonical and linked, with `alter` applied to each record's bytes before it is
    /// hashed (and so linked to by the next); with their stored hashes.
    fn chain(n: u64, alter: impl Fn(u64, String) -> String) -> Vec<(String, String)> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|sequence| {
                let bytes =
                    String::from_utf8(record(sequence, &prev).canonical_bytes().unwrap()).unwrap();
                let bytes = alter(sequence, bytes);
                prev = sha256_hex(bytes.as_bytes());
                (bytes, prev.clone())
            })
            .collect()
    }

    /// A valid checkpoint at `sequence` vouching for the record stored there.
    fn anchor(records: &[(String, String)], sequence: u64) -> Anchors {
        let hash = records[usize::try_from(sequence - 1).unwrap()].1.clone();
        Anchors::from([(sequence, (1, hash))])
    }

    fn check(
        records: &[(String, String)],
        anchors: &Anchors,
        trusting: bool,
    ) -> (Option<ChainBreak>, u64, bool) {
        let mut check = ChainCheck::new(CHAIN, Some(anchors), 1, GENESIS_HASH);
        if trusting {
            check = check.trusting_vouched_form();
        }
        for (raw, hash) in records {
            check.push(raw.as_bytes(), Some(hash));
        }
        let (trusted, again) = (check.trusted, check.needs_full_check());
        (check.finish(None), trusted, again)
    }

    #[test]
    fn records_a_checkpoint_vouches_for_are_not_decoded_and_a_break_asks_for_the_full_check() {
        let intact = chain(300, |_, bytes| bytes);
        let anchors = anchor(&intact, 250);
        // Records up to the checkpoint are hashed and linked only; the tail after it is decoded.
        assert_eq!(check(&intact, &anchors, true), (None, 250, false));
        assert_eq!(check(&intact, &anchors, false), (None, 0, false));

        // Record 7 re-encoded (same content, another form) and the chain re-linked after it, as someone
        // without the signing key could: the quick pass stops at the checkpoint and asks for the full one,
        // which names the record.
        let respaced = |sequence, bytes: String| {
            if sequence == 7 {
                bytes.replacen(",\"id\":", ", \"id\":", 1)
            } else {
                bytes
            }
        };
        let relinked = chain(300, respaced);
        let at_seven = Some(ChainBreak::Content {
            chain_id: CHAIN.into(),
            sequence: 7,
        });
        let (found, _, again) = check(&relinked, &anchors, true);
        assert!(
            matches!(
                found,
                Some(ChainBreak::CheckpointMismatch { sequence: 250, .. })
            ),
            "{found:?}"
        );
        assert!(again);
        assert_eq!(
            check(&relinked, &anchors, false),
            (at_seven.clone(), 0, false)
        );

        // The same record in the unvouched tail is decoded on the quick pass too.
        let late = chain(300, |sequence, bytes| {
            respaced(sequence.wrapping_sub(260), bytes)
        });
        let (found, trusted, again) = check(&late, &anchors, true);
        assert_eq!(
            found,
            Some(ChainBreak::Content {
                chain_id: CHAIN.into(),
                sequence: 267
            })
        );
        assert_eq!((trusted, again), (250, true));

        // What the quick pass leaves to the signature: a form the signing writer itself hashed and
        // checkpointed. Only the full check names it.
        let signed = anchor(&relinked, 250);
        assert_eq!(check(&relinked, &signed, true), (None, 250, false));
        assert_eq!(check(&relinked, &signed, false), (at_seven, 0, false));
    }
}
