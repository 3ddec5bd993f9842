//! Evidence packs: a self-contained directory a third party can verify with no store and no AWS access.
//!
//! Layout (format `causeway-evidence-pack/1`):
//!
//! | file | content |
//! | --- | --- |
//! | `records.jsonl` | one record a line, chain by chain in sequence order: `{"record_hash":"…","record":{…}}`, where `record` is the record's canonical bytes exactly as stored and `record_hash` their hex SHA-256 |
//! | `checkpoints.jsonl` | the whole checkpoint log: `{"checkpoint_hash":"…","signature":"…","checkpoint":{…}}`, `checkpoint` being its canonical bytes and `signature` the hex signature over them (Ed25519, or DER ECDSA P-256 for a KMS key) |
//! | `public-keys.json` | the keys that signed checkpoints and the manifest: `[{"key_id","algorithm","public_key"}]` |
//! | `context.json` | the policy hashes, catalog versions and guard profile versions in force for the records, with counts and first/last times |
//! | `README.txt` | how to verify by hand |
//! | `manifest.json` | the range, per chain the segment exported (first/last sequence, the hash the first record links to, the last record's hash), the checkpoint log's length and head, and the SHA-256 and size of every file above |
//! | `manifest.sig` | `{"key_id","algorithm","signature"}`: a signature over the bytes of `manifest.json` |
//!
//! Per chain the pack holds the contiguous run of records from the first to the last one stamped in
//! `[since, until)`. Records are stamped just before they are sequenced, so a record at either edge may lie a
//! few milliseconds outside the range: the run is never cut to the range, so it always verifies as a chain.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use causeway_contract::audit::AuditRecord;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::keys::{CheckpointSigner, PublicKeyInfo};
use crate::verify::{
    ChainCheck, CheckpointLog, Progress, Verification, Voucher, registration_breaks,
};
use crate::{AuditError, ChainBreak, EmbeddedStore};

/// The pack format this module writes and reads.
pub const FORMAT: &str = "causeway-evidence-pack/1";
/// Records, one a line.
pub const RECORDS_FILE: &str = "records.jsonl";
/// The checkpoint log, one a line.
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
/// The public keys.
pub const KEYS_FILE: &str = "public-keys.json";
/// Versions in force.
pub const CONTEXT_FILE: &str = "context.json";
/// Instructions.
pub const README_FILE: &str = "README.txt";
/// The manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's signature.
pub const SIGNATURE_FILE: &str = "manifest.sig";

/// The manifest of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the pack was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The range asked for, inclusive.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// The range asked for, exclusive.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Records in the pack.
    pub records: u64,
    /// The segment of each chain.
    pub chains: Vec<ChainSegment>,
    /// Checkpoints in the pack (the whole log at export time).
    pub checkpoints: u64,
    /// The hash of the last checkpoint (the log head), to compare with a copy published elsewhere.
    pub checkpoint_log_head: Option<String>,
    /// Every file but the manifest and its signature.
    pub files: Vec<FileEntry>,
}

/// One chain's records in a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSegment {
    /// The chain.
    pub chain_id: String,
    /// Its first record in the pack.
    pub first_sequence: u64,
    /// Its last record in the pack.
    pub last_sequence: u64,
    /// The `prev_hash` of the first record (the hash of the record before, or the genesis hash).
    pub first_prev_hash: String,
    /// The hash of the last record.
    pub last_record_hash: String,
}

/// A file of the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name in the pack.
    pub path: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// The signature of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSignature {
    /// The signing key.
    pub key_id: String,
    /// `ed25519` or `ecdsa-p256-sha256`.
    pub algorithm: String,
    /// Hex signature over the bytes of `manifest.json`.
    pub signature: String,
}

#[derive(Debug, Deserialize)]
struct RecordLine<'a> {
    record_hash: String,
    #[serde(borrow)]
    record: &'a RawValue,
}

#[derive(Debug, Deserialize)]
struct CheckpointLine<'a> {
    checkpoint_hash: String,
    signature: String,
    #[serde(borrow)]
    checkpoint: &'a RawValue,
}

#[derive(Debug, Deserialize)]
struct RecordHead {
    chain_id: String,
}

/// One value in force, how often and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InForce {
    /// The value (a policy hash, a catalog version, `profile@version`).
    pub value: String,
    /// Records made under it.
    pub records: u64,
    /// The first of them.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// The last of them.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// What was in force for the records of a pack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Cedar policy set hashes.
    pub policy_hashes: Vec<InForce>,
    /// Model catalog versions.
    pub catalog_versions: Vec<InForce>,
    /// Guard profiles, as `name@version`.
    pub guard_profiles: Vec<InForce>,
}

#[derive(Default)]
struct ContextBuilder([BTreeMap<String, (u64, OffsetDateTime, OffsetDateTime)>; 3]);

impl ContextBuilder {
    fn add(&mut self, record: &AuditRecord) {
        let e = &record.event;
        let values = [
            e.policy_hash.clone(),
            e.catalog_version.clone(),
            format!("{}@{}", e.guard_profile, e.guard_profile_version),
        ];
        for (map, value) in self.0.iter_mut().zip(values) {
            let entry = map.entry(value).or_insert((0, e.timestamp, e.timestamp));
            entry.0 += 1;
            entry.1 = entry.1.min(e.timestamp);
            entry.2 = entry.2.max(e.timestamp);
        }
    }

    fn build(self) -> Context {
        let [policy, catalog, guard] = self.0.map(|map| {
            map.into_iter()
                .map(|(value, (records, first_seen, last_seen))| InForce {
                    value,
                    records,
                    first_seen,
                    last_seen,
                })
                .collect()
        });
        Context {
            policy_hashes: policy,
            catalog_versions: catalog,
            guard_profiles: guard,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records written.
    pub records: u64,
    /// Chains with records in the range.
    pub chains: usize,
    /// Checkpoints written.
    pub checkpoints: u64,
}

fn io_err(path: &Path, e: &std::io::Error) -> AuditError {
    AuditError::Unavailable(format!("`{}`: {e}", path.display()))
}

/// A file being written, hashed as it goes.
struct HashedFile {
    name: &'static str,
    out: BufWriter<std::fs::File>,
    hasher: Sha256,
    bytes: u64,
    path: std::path::PathBuf,
}

impl HashedFile {
    fn create(dir: &Path, name: &'static str) -> Result<Self, AuditError> {
        let path = dir.join(name);
        let file = std::fs::File::create_new(&path).map_err(|e| io_err(&path, &e))?;
        Ok(Self {
            name,
            out: BufWriter::new(file),
            hasher: Sha256::new(),
            bytes: 0,
            path,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| io_err(&self.path, &e))
    }

    fn finish(self) -> Result<FileEntry, AuditError> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_err(&self.path, e.error()))?;
        file.sync_all().map_err(|e| io_err(&self.path, &e))?;
        Ok(FileEntry {
            path: self.name.to_owned(),
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
        })
    }
}

fn json_pretty<T: Serialize>(value: &T) -> Result<Vec<u8>, AuditError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| AuditError::Encode(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

const README: &str = "Causeway evidence pack (format causeway-evidence-pack/1)

Verify it with `causeway evidence verify --pack DIR` (add `--key FILE` to pin the public key you trust).
To verify by hand:
1. manifest.sig holds a signature over the bytes of manifest.json by a key in public-keys.json: Ed25519
   (key_id = \"ed25519:\" + the first 32 hex digits of SHA-256 of the raw 32-byte public key), or, for a
   KMS key, DER-encoded ECDSA P-256 SHA-256 (public_key the hex DER SubjectPublicKeyInfo, key_id =
   \"ecdsa-p256:\" + the first 32 hex digits of SHA-256 of those DER bytes).
2. Every file in manifest.json `files` has the SHA-256 and size given there.
3. checkpoints.jsonl: line n holds checkpoint n; SHA-256 of the `checkpoint` value's bytes equals
   `checkpoint_hash`, `signature` verifies over those bytes, and `prev_hash` equals the previous line's
   `checkpoint_hash` (64 zeros for the first).
4. records.jsonl: per chain, sequences are contiguous from the manifest's `first_sequence` to
   `last_sequence`; SHA-256 of the `record` value's bytes equals `record_hash`; each `prev_hash` equals the
   previous record's hash (the manifest's `first_prev_hash` for the first); where a checkpoint names the same
   chain and sequence, its `chain_head_hash` equals that record's hash; the last hash equals
   `last_record_hash`.
The canonical bytes of records and checkpoints are compact JSON with fields in declared order (see
shared/contract/src/audit.rs and shared/audit/RULES.md), so a record re-encoded that way hashes the same.
";

/// What an evidence pack is exported from: a store's chains, its checkpoint log and its signing keys.
pub trait PackSource {
    /// Per chain, the first and last sequence of the records stamped in `[since, until)` (Unix ms).
    fn chain_ranges(
        &self,
        since_unix_ms: i64,
        until_unix_ms: i64,
    ) -> Result<Vec<(String, u64, u64)>, AuditError>;

    /// Calls `f(canonical bytes, stored hash)` for the chain's records `first..=last`, in order.
    fn for_each_record(
        &self,
        chain_id: &str,
        first: u64,
        last: u64,
        f: &mut dyn FnMut(&str, &str) -> Result<(), AuditError>,
    ) -> Result<(), AuditError>;

    /// The checkpoint log, in order: `(canonical bytes, stored hash, signature)`.
    fn checkpoint_rows(&self) -> Result<Vec<(String, String, String)>, AuditError>;

    /// Every public key that signed the log.
    fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError>;
}

impl PackSource for EmbeddedStore {
    fn chain_ranges(
        &self,
        since_unix_ms: i64,
        until_unix_ms: i64,
    ) -> Result<Vec<(String, u64, u64)>, AuditError> {
        Self::chain_ranges(self, since_unix_ms, until_unix_ms)
    }

    fn for_each_record(
        &self,
        chain_id: &str,
        first: u64,
        last: u64,
        f: &mut dyn FnMut(&str, &str) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        Self::for_each_record(self, chain_id, first, last, f)
    }

    fn checkpoint_rows(&self) -> Result<Vec<(String, String, String)>, AuditError> {
        Self::checkpoint_rows(self)
    }

    fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        Self::public_keys(self)
    }
}

/// Writes an evidence pack of the records stamped in `[since, until)` to `out`, which must not exist or be
/// empty, and signs its manifest with `signer`.
pub fn export(
    store: &dyn PackSource,
    signer: &dyn CheckpointSigner,
    since: OffsetDateTime,
    until: OffsetDateTime,
    out: &Path,
) -> Result<ExportSummary, AuditError> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|e| io_err(out, &e))?;
        if entries.next().is_some() {
            return Err(AuditError::Unavailable(format!(
                "`{}` is not empty; export into a new directory",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| io_err(out, &e))?;
    let ms = |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);

    let mut files = Vec::new();
    let mut records_file = HashedFile::create(out, RECORDS_FILE)?;
    let mut context = ContextBuilder::default();
    let mut chains = Vec::new();
    let mut records = 0_u64;
    for (chain_id, first, last) in store.chain_ranges(ms(since), ms(until))? {
        let mut first_prev_hash = None;
        let mut last_record_hash = String::new();
        store.for_each_record(&chain_id, first, last, &mut |body, hash| {
            let record: AuditRecord = serde_json::from_str(body)
                .map_err(|e| AuditError::Read(format!("stored record does not decode: {e}")))?;
            first_prev_hash.get_or_insert_with(|| record.prev_hash.clone());
            context.add(&record);
            records_file.write(format!("{{\"record_hash\":\"{hash}\",\"record\":").as_bytes())?;
            records_file.write(body.as_bytes())?;
            records_file.write(b"}\n")?;
            last_record_hash = hash.to_owned();
            records += 1;
            Ok(())
        })?;
        chains.push(ChainSegment {
            chain_id,
            first_sequence: first,
            last_sequence: last,
            first_prev_hash: first_prev_hash.unwrap_or_default(),
            last_record_hash,
        });
    }
    files.push(records_file.finish()?);

    let rows = store.checkpoint_rows()?;
    let mut checkpoints_file = HashedFile::create(out, CHECKPOINTS_FILE)?;
    for (body, hash, signature) in &rows {
        checkpoints_file.write(
            format!(
                "{{\"checkpoint_hash\":\"{hash}\",\"signature\":\"{signature}\",\"checkpoint\":"
            )
            .as_bytes(),
        )?;
        checkpoints_file.write(body.as_bytes())?;
        checkpoints_file.write(b"}\n")?;
    }
    files.push(checkpoints_file.finish()?);

    let mut keys = store.public_keys()?;
    if !keys.contains(signer.public_key()) {
        keys.push(signer.public_key().clone());
    }
    for (name, bytes) in [
        (KEYS_FILE, json_pretty(&keys)?),
        (CONTEXT_FILE, json_pretty(&context.build())?),
        (README_FILE, README.as_bytes().to_vec()),
    ] {
        let mut file = HashedFile::create(out, name)?;
        file.write(&bytes)?;
        files.push(file.finish()?);
    }

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        created_at: OffsetDateTime::now_utc(),
        since,
        until,
        records,
        chains,
        checkpoints: rows.len() as u64,
        checkpoint_log_head: rows.last().map(|(_, hash, _)| hash.clone()),
        files,
    };
    let manifest_bytes = json_pretty(&manifest)?;
    let signature = ManifestSignature {
        key_id: signer.public_key().key_id.clone(),
        algorithm: signer.public_key().algorithm.clone(),
        signature: hex::encode(signer.sign(&manifest_bytes)?),
    };
    for (name, bytes) in [
        (MANIFEST_FILE, manifest_bytes),
        (SIGNATURE_FILE, json_pretty(&signature)?),
    ] {
        let mut file = HashedFile::create(out, name)?;
        file.write(&bytes)?;
        file.finish()?;
    }
    Ok(ExportSummary {
        records,
        chains: manifest.chains.len(),
        checkpoints: manifest.checkpoints,
    })
}

fn read_file(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, AuditError> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, &e)),
    }
}

/// A line of the records file as [`export`] writes it, `{"record_hash":"…","record":…}`, split without
/// parsing it: the stored hash, the record's bytes, and the chain they name. `None` for any other layout.
fn split_line(line: &[u8]) -> Option<(&str, &[u8], &str)> {
    let rest = line.strip_prefix(b"{\"record_hash\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let (hash, rest) = rest.split_at(end);
    let record = rest.strip_prefix(b"\",\"record\":")?.strip_suffix(b"}")?;
    let chain_id = crate::verify::chain_id_of(record)?;
    Some((std::str::from_utf8(hash).ok()?, record, chain_id))
}

/// The hex SHA-256 and length of file `name` in `dir`, read a piece at a time (a pack's records file can be
/// larger than memory); `None` when it does not exist.
fn file_digest(dir: &Path, name: &str) -> Result<Option<(String, u64)>, AuditError> {
    let path = dir.join(name);
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path, &e)),
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut bytes = 0;
    loop {
        let n = match std::io::Read::read(&mut file, &mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(&path, &e)),
        };
        hasher.update(buffer.get(..n).unwrap_or_default());
        bytes += n as u64;
    }
    Ok(Some((hex::encode(hasher.finalize()), bytes)))
}

fn missing(file: &str) -> ChainBreak {
    ChainBreak::PackFile {
        file: file.to_owned(),
        reason: "is missing".to_owned(),
    }
}

/// Verifies the pack in `dir`: checkpoint signatures by `trusted` keys (or by the keys in the pack when
/// `None`), every record present, unaltered and in order against the checkpoints and the signed manifest,
/// every chain of the manifest present and registered, every file as the manifest lists it.
///
/// An `Err` means the pack could not be read at all (no such directory, an I/O error); breaks are in the
/// returned [`Verification`].
pub fn verify_pack(
    dir: &Path,
    trusted: Option<&[PublicKeyInfo]>,
) -> Result<Verification, AuditError> {
    verify_pack_counting(dir, trusted, None)
}

/// [`verify_pack`], counting the records checked into `progress` as it goes.
pub fn verify_pack_counting(
    dir: &Path,
    trusted: Option<&[PublicKeyInfo]>,
    progress: Option<&Progress>,
) -> Result<Verification, AuditError> {
    let quick = check_pack(dir, trusted, progress, true)?;
    if quick.is_ok() {
        return Ok(quick);
    }
    // Records a checkpoint vouches for were hashed, not decoded: the first break may be an earlier record
    // whose form alone is wrong, so a broken pack is checked again in full (`RULES.md`, "What `verify`
    // proves").
    check_pack(dir, trusted, None, false)
}

/// [`verify_pack_counting`]; with `trusting`, the form of records a valid checkpoint vouches for is left to
/// their hash ([`ChainCheck::trusting_vouched_form`]).
fn check_pack(
    dir: &Path,
    trusted: Option<&[PublicKeyInfo]>,
    progress: Option<&Progress>,
    trusting: bool,
) -> Result<Verification, AuditError> {
    let new_check = |chain_id: &str, anchors, first, prev: &str| {
        let check = ChainCheck::new(chain_id, anchors, first, prev);
        if trusting {
            check.trusting_vouched_form()
        } else {
            check
        }
    };
    if !dir.is_dir() {
        return Err(AuditError::Unavailable(format!(
            "`{}` is not a directory",
            dir.display()
        )));
    }
    let mut report = Verification::default();
    let mut tail = Vec::new();

    // Keys.
    let keys: Vec<PublicKeyInfo> = match trusted {
        Some(keys) => keys.to_vec(),
        None => match read_file(dir, KEYS_FILE)? {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tail.push(ChainBreak::PackFile {
                    file: KEYS_FILE.to_owned(),
                    reason: format!("cannot be read: {e}"),
                });
                Vec::new()
            }),
            None => {
                tail.push(missing(KEYS_FILE));
                Vec::new()
            }
        },
    };

    // The manifest and its signature.
    let manifest_bytes = read_file(dir, MANIFEST_FILE)?;
    let manifest: Option<Manifest> = match &manifest_bytes {
        None => {
            tail.push(missing(MANIFEST_FILE));
            None
        }
        Some(bytes) => match serde_json::from_slice::<Manifest>(bytes) {
            Ok(m) if m.format == FORMAT => Some(m),
            Ok(m) => {
                tail.push(ChainBreak::PackManifest {
                    reason: format!("unknown format `{}`", m.format),
                });
                None
            }
            Err(e) => {
                tail.push(ChainBreak::PackManifest {
                    reason: format!("`{MANIFEST_FILE}` cannot be read: {e}"),
                });
                None
            }
        },
    };
    if let Some(bytes) = &manifest_bytes {
        let signed = read_file(dir, SIGNATURE_FILE)?
            .and_then(|sig| serde_json::from_slice::<ManifestSignature>(&sig).ok())
            .is_some_and(|sig| {
                keys.iter()
                    .find(|k| k.key_id == sig.key_id)
                    .is_some_and(|k| k.verify(bytes, &sig.signature))
            });
        if !signed {
            tail.push(ChainBreak::PackManifest {
                reason: format!(
                    "`{SIGNATURE_FILE}` is missing or is not a valid signature of `{MANIFEST_FILE}` by a trusted key"
                ),
            });
        }
    }

    // The checkpoint log.
    let checkpoint_text = read_file(dir, CHECKPOINTS_FILE)?.unwrap_or_default();
    let mut entries = Vec::new();
    for (n, line) in checkpoint_text.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<CheckpointLine<'_>>(line) {
            Ok(l) => entries.push((
                l.checkpoint.get().as_bytes(),
                l.checkpoint_hash,
                l.signature,
            )),
            Err(e) => tail.push(ChainBreak::PackFile {
                file: CHECKPOINTS_FILE.to_owned(),
                reason: format!("line {} cannot be read: {e}", n + 1),
            }),
        }
    }
    let log = CheckpointLog::check(
        entries
            .iter()
            .map(|(raw, hash, sig)| (*raw, hash.as_str(), sig.as_str())),
        &keys,
    );
    report.checkpoints = log.count;
    report.log_head = log.head_hash.clone();

    // Records, chain by chain.
    let segments: BTreeMap<&str, &ChainSegment> = manifest
        .iter()
        .flat_map(|m| m.chains.iter())
        .map(|c| (c.chain_id.as_str(), c))
        .collect();
    let mut checks: BTreeMap<String, ChainCheck<'_>> = BTreeMap::new();
    let records_path = dir.join(RECORDS_FILE);
    // The records file's SHA-256 and size, for the manifest, taken as its lines are read.
    let mut records_digest = None;
    match std::fs::File::open(&records_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => tail.push(missing(RECORDS_FILE)),
        Err(e) => return Err(io_err(&records_path, &e)),
        Ok(file) => {
            let mut reader = std::io::BufReader::new(file);
            let (mut digest, mut size) = (Sha256::new(), 0_u64);
            let mut buffer = Vec::new();
            for n in 1_usize.. {
                buffer.clear();
                let read = reader
                    .read_until(b'\n', &mut buffer)
                    .map_err(|e| io_err(&records_path, &e))?;
                if read == 0 {
                    records_digest = Some((hex::encode(digest.finalize()), size));
                    break;
                }
                digest.update(&buffer);
                size += read as u64;
                let line = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
                if line.is_empty() {
                    continue;
                }
                // While vouched records are trusted to their hash, a line laid out as `export` writes it is
                // split, not parsed; any other line is parsed, and so is every line of the full check that
                // follows a break.
                let parsed;
                let (record_hash, record, chain_id) = match split_line(line).filter(|_| trusting) {
                    Some(split) => split,
                    None => {
                        parsed =
                            match serde_json::from_slice::<RecordLine<'_>>(line).and_then(|l| {
                                serde_json::from_str::<RecordHead>(l.record.get())
                                    .map(|h| (l, h.chain_id))
                            }) {
                                Ok(parsed) => parsed,
                                Err(e) => {
                                    report.breaks.push(ChainBreak::PackFile {
                                        file: RECORDS_FILE.to_owned(),
                                        reason: format!("line {n} cannot be read: {e}"),
                                    });
                                    continue;
                                }
                            };
                        let (line, chain_id) = &parsed;
                        (
                            line.record_hash.as_str(),
                            line.record.get().as_bytes(),
                            chain_id.as_str(),
                        )
                    }
                };
                report.records += 1;
                if !checks.contains_key(chain_id) {
                    let (first, prev) = segments.get(chain_id).map_or_else(
                        // Not in the manifest: reported below; check it from wherever it starts.
                        || {
                            let head: Option<AuditRecord> = serde_json::from_slice(record).ok();
                            head.map_or((1, String::new()), |r| (r.sequence, r.prev_hash))
                        },
                        |s| (s.first_sequence, s.first_prev_hash.clone()),
                    );
                    let check = new_check(chain_id, log.anchors.get(chain_id), first, &prev)
                        .counting(progress);
                    checks.insert(chain_id.to_owned(), check);
                }
                if let Some(check) = checks.get_mut(chain_id) {
                    check.push(record, Some(record_hash));
                }
            }
        }
    }
    let mut chain_ids: Vec<String> = checks.keys().cloned().collect();
    for chain in segments.keys() {
        if !checks.contains_key(*chain) {
            chain_ids.push((*chain).to_owned());
        }
    }
    chain_ids.sort();
    report.chains = chain_ids.len();
    for chain in &chain_ids {
        let check = checks.remove(chain).unwrap_or_else(|| {
            let (first, prev) = segments
                .get(chain.as_str())
                .map_or((1, String::new()), |s| {
                    (s.first_sequence, s.first_prev_hash.clone())
                });
            new_check(chain, log.anchors.get(chain), first, &prev)
        });
        let segment = segments.get(chain.as_str());
        if segment.is_none() && manifest.is_some() {
            tail.push(ChainBreak::PackManifest {
                reason: format!("chain `{chain}` has records but is not listed in the manifest"),
            });
        }
        let head = check.head();
        let end = segment.map(|s| (s.last_sequence, Voucher::Manifest));
        match check.finish(end) {
            Some(found) => report.breaks.push(found),
            None => {
                if let (Some(segment), Some((seq, hash))) = (segment, head)
                    && seq == segment.last_sequence
                    && hash != segment.last_record_hash
                {
                    report.breaks.push(ChainBreak::CheckpointMismatch {
                        chain_id: chain.clone(),
                        sequence: seq,
                        by: Voucher::Manifest,
                    });
                }
            }
        }
    }
    report.breaks.extend(registration_breaks(
        &log,
        chain_ids.iter().map(String::as_str),
    ));
    report.breaks.extend(log.broken.clone());

    // The manifest against the pack.
    if let Some(manifest) = &manifest {
        if manifest.records != report.records {
            tail.push(ChainBreak::PackManifest {
                reason: format!(
                    "the manifest lists {} records, `{RECORDS_FILE}` holds {}",
                    manifest.records, report.records
                ),
            });
        }
        if manifest.checkpoints != log.count || manifest.checkpoint_log_head != log.head_hash {
            tail.push(ChainBreak::PackManifest {
                reason: format!(
                    "the manifest lists {} checkpoints ending in {}, `{CHECKPOINTS_FILE}` holds {} ending in {}",
                    manifest.checkpoints,
                    manifest.checkpoint_log_head.as_deref().unwrap_or("nothing"),
                    log.count,
                    log.head_hash.as_deref().unwrap_or("nothing")
                ),
            });
        }
        let mut listed: Vec<&str> = vec![MANIFEST_FILE, SIGNATURE_FILE];
        for entry in &manifest.files {
            listed.push(&entry.path);
            let digest = match &records_digest {
                Some(digest) if entry.path == RECORDS_FILE => Some(digest.clone()),
                _ => file_digest(dir, &entry.path)?,
            };
            match digest {
                None => tail.push(missing(&entry.path)),
                Some((sha256, bytes)) => {
                    if sha256 != entry.sha256 || bytes != entry.bytes {
                        tail.push(ChainBreak::PackFile {
                            file: entry.path.clone(),
                            reason: "was altered (its SHA-256 differs from the manifest's)"
                                .to_owned(),
                        });
                    }
                }
            }
        }
        let mut extra: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, &e))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !listed.contains(&name.as_str()))
            .collect();
        extra.sort();
        for name in extra {
            tail.push(ChainBreak::PackFile {
                file: name,
                reason: "is not listed in the manifest".to_owned(),
            });
        }
    }
    report.breaks.extend(tail);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use causeway_contract::audit::{AuditEvent, sha256_hex};

    use super::*;

    #[test]
    fn lines_as_export_writes_them_are_split_without_parsing_and_others_are_not() {
        let record = AuditRecord {
            schema_version: AuditRecord::SCHEMA_VERSION,
            chain_id: "hub-a".into(),
            sequence: 1,
            prev_hash: "0".repeat(64),
            event: AuditEvent::sample(),
        };
        let body = String::from_utf8(record.canonical_bytes().unwrap()).unwrap();
        let hash = sha256_hex(body.as_bytes());
        let line = format!("{{\"record_hash\":\"{hash}\",\"record\":{body}}}");
        assert_eq!(
            split_line(line.as_bytes()),
            Some((hash.as_str(), body.as_bytes(), "hub-a"))
        );
        let parsed: RecordLine<'_> = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed.record.get(), body);
        for other in [
            line.replacen(":\"", ": \"", 1),
            line.replace(",\"record\":", ", \"record\":"),
            format!("{line} "),
            format!("{{\"record\":{body},\"record_hash\":\"{hash}\"}}"),
            line.replacen("{\"schema_version\"", "{ \"schema_version\"", 1),
        ] {
            assert_eq!(split_line(other.as_bytes()), None, "{other}");
        }
    }
}
