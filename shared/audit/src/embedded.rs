//! The embedded audit store: one SQLite file in the data directory, and its record log beside it.
//!
//! Constraints:
//! - A group of records is durable once its frame in the record log (`<file>-log`, see `log.rs`) is synced;
//!   only then are the callers answered. The SQLite transaction holding the same rows stays open for the
//!   groups that follow and commits within [`COMMIT_EVERY`] (at once when a read of this store asks: reads
//!   wait for it, see [`Settle`]). The database runs WAL with `synchronous = NORMAL` (consistent after
//!   a power loss, though it may lose its last commits); opening the store replays the log frames after the
//!   database's recorded position, and so does the writer after a commit that failed once its callers were
//!   answered, so an acknowledged record is never lost. `RULES.md` gives the whole argument.
//! - One writer thread writes records in groups: every append waiting when a group starts goes into it, and
//!   each caller is answered only once the group's frame is synced. One fsync then covers many records, their
//!   payloads and any checkpoint due. The group's rows are then inserted on a second thread, which has the
//!   write connection while the writer chains, logs and answers the next groups ([`Index`]).
//! - The chain head and the checkpoint log head are read inside the write transaction
//!   (`BEGIN IMMEDIATE`), so a failed commit, a restart, or a second process on the same file can never fork
//!   either: at worst a write fails and the caller gets an error.
//! - Every `checkpoint_every` records, and every `checkpoint_interval` when the chain moved, the writer appends
//!   a signed checkpoint over the chain head to the checkpoint log, in the same transaction as the records it
//!   covers. Opening a store registers its chain with a genesis checkpoint.
//! - Payloads (prompt and answer) go to `payloads`, sealed under the data key of the record's UTC day
//!   (`data_keys`, wrapped by the master key file); [`EmbeddedStore::erase_period`] destroys a day's key.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use causeway_contract::audit::{
    AuditEvent, AuditRecord, Checkpoint, CheckpointKind, GENESIS_HASH, SignedCheckpoint, sha256_hex,
};
use rusqlite::config::DbConfig;
use rusqlite::types::Value;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
    params_from_iter,
};
use time::{Date, OffsetDateTime};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::keys::{
    AeadKey, CheckpointSigner, Ed25519FileSigner, MasterKey, PublicKeyInfo, payload_aad,
};
use crate::log::{
    Frame, LogId, LogPosition, LoggedCheckpoint, LoggedPayload, LoggedRecord, RecordLog,
};
use crate::verify::{
    ChainCheck, CheckpointLog, Progress, Verification, Voucher, registration_breaks, verify_workers,
};
use crate::{AuditError, AuditReceipt, AuditSink, ChainBreak, Payload};

/// Appends queued beyond this wait for room (backpressure on the hub).
const QUEUE_DEPTH: usize = 8192;
/// Most records committed in one transaction.
const MAX_GROUP: usize = 512;
/// Longest a group waits for the callers of the previous one to come back (see `Writer::run`).
const GATHER_WAIT: Duration = Duration::from_millis(1);
/// Longest the index commit of an answered group is deferred: groups answered meanwhile share one commit
/// (a read in this process commits them first; see [`Settle`]).
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Most records one deferred index commit holds.
const MAX_UNCOMMITTED: usize = 8192;
/// The record log starts over at its beginning once it is this long (its file stays about this size).
const LOG_WRAP: u64 = 64 << 20;
/// How often the WAL is copied into the database file, off the writer's path. Not more often: once the WAL
/// is wholly copied, the next commit starts it over and syncs its new header, a sync on a caller's path
/// (at 100 ms, a caller sending a few requests a second paid it on nearly every call).
const WAL_COPY_EVERY: Duration = Duration::from_secs(1);
/// WAL bytes not yet copied after which the writer copies them itself.
const WAL_BEHIND: i64 = 64 << 20;
/// WAL bytes after which the writer wakes the copier rather than leave them to its next round (reached
/// within a second only under load, where the copy then follows each index commit).
const WAL_WAKE_COPIER: i64 = 16 << 20;
/// The page size of a new store (a store keeps the size it was made with). SQLite's default is 4 KiB; a
/// record's row is about 1.4 KB and a sealed payload about 2.3 KB, so at 4 KiB a payload took a page of
/// its own and a group's commit wrote about twice the pages it writes at 8 KiB.
const PAGE_SIZE: i64 = 8192;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    chain_id      TEXT    NOT NULL,
    sequence      INTEGER NOT NULL,
    id            TEXT    NOT NULL UNIQUE,
    ts_unix_ms    INTEGER NOT NULL,
    user_sub      TEXT,
    spoke_account TEXT,
    model_alias   TEXT,
    purpose       TEXT,
    outcome       TEXT    NOT NULL,
    record_hash   TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    PRIMARY KEY (chain_id, sequence)
);
CREATE INDEX IF NOT EXISTS records_by_time    ON records (ts_unix_ms);
CREATE INDEX IF NOT EXISTS records_by_user    ON records (user_sub, ts_unix_ms);
CREATE INDEX IF NOT EXISTS records_by_account ON records (spoke_account, ts_unix_ms);
CREATE INDEX IF NOT EXISTS records_by_model   ON records (model_alias, ts_unix_ms);
CREATE INDEX IF NOT EXISTS records_by_purpose ON records (purpose, ts_unix_ms);
CREATE INDEX IF NOT EXISTS records_by_outcome ON records (outcome, ts_unix_ms);
CREATE TABLE IF NOT EXISTS checkpoints (
    sequence        INTEGER PRIMARY KEY,
    chain_id        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    chain_sequence  INTEGER NOT NULL,
    ts_unix_ms      INTEGER NOT NULL,
    checkpoint_hash TEXT    NOT NULL,
    signature       TEXT    NOT NULL,
    body            TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_by_chain ON checkpoints (chain_id, chain_sequence);
CREATE TABLE IF NOT EXISTS signing_keys (
    key_id        TEXT PRIMARY KEY,
    algorithm     TEXT    NOT NULL,
    public_key    TEXT    NOT NULL,
    added_unix_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS data_keys (
    period          TEXT PRIMARY KEY,
    wrapped_key     BLOB,
    created_unix_ms INTEGER NOT NULL,
    erased_unix_ms  INTEGER
);
CREATE TABLE IF NOT EXISTS payloads (
    record_id TEXT PRIMARY KEY,
    period    TEXT NOT NULL,
    sealed    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS payloads_by_period ON payloads (period);
CREATE TABLE IF NOT EXISTS guard_findings (
    entity       TEXT    NOT NULL,
    ts_unix_ms   INTEGER NOT NULL,
    record_rowid INTEGER NOT NULL,
    PRIMARY KEY (entity, ts_unix_ms, record_rowid)
) WITHOUT ROWID;
";

/// Adds what later versions index to a store made before them, once, in one transaction: the records'
/// `application` column and its index, and one `guard_findings` row per record and entity type found by
/// its guards. Filled from the records' own bodies, so nothing is guessed.
const MIGRATIONS: [(&str, &str); 1] = [(
    "indexes-2",
    "ALTER TABLE records ADD COLUMN application TEXT;
     UPDATE records SET application = json_extract(body, '$.application');
     CREATE INDEX records_by_application ON records (application, ts_unix_ms);
     INSERT OR IGNORE INTO guard_findings (entity, ts_unix_ms, record_rowid)
         SELECT DISTINCT json_extract(g.value, '$.entity'), r.ts_unix_ms, r.rowid
         FROM records r, json_each(r.body, '$.guard_events') g;",
)];

fn migrate(conn: &mut Connection) -> Result<(), AuditError> {
    let fail =
        |e: rusqlite::Error| AuditError::Unavailable(format!("cannot update the schema: {e}"));
    for (name, sql) in MIGRATIONS {
        // Immediate: the write lock is taken (waiting on the busy timeout) before anything is read, so a
        // writer elsewhere makes this wait instead of failing on upgrade.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let done: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![format!("migration:{name}")],
                |row| row.get(0),
            )
            .optional()
            .map_err(fail)?;
        if done.is_none() {
            tx.execute_batch(sql).map_err(fail)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, 'done')",
                params![format!("migration:{name}")],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Job {
    Append(Box<Append>, Reply<AuditReceipt>),
    Checkpoint(Reply<Option<SignedCheckpoint>>),
}

/// How an embedded store checkpoints and where its keys live.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A checkpoint every this many records (at sequence N, 2N, …, in the commit of that record). Default 1000.
    pub checkpoint_every: u64,
    /// A checkpoint at least this often while records arrive. Default 60 s.
    pub checkpoint_interval: Duration,
    /// Where the signing key and master key files are. Default: the database file's directory (the data
    /// directory).
    pub key_dir: Option<PathBuf>,
    /// Signs checkpoints. Default: the Ed25519 key file in `key_dir`, created if missing.
    pub signer: Option<Arc<dyn CheckpointSigner>>,
    /// The chain this writer appends to. Default: the file's own chain, created on first open. Writers sharing
    /// a file may each keep their own chain; each is registered with its own genesis checkpoint.
    pub chain_id: Option<String>,
    /// The record log starts over at its beginning once it is this long, so its file stays about this size.
    /// Default 64 MiB.
    pub log_wrap_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            key_dir: None,
            signer: None,
            chain_id: None,
            log_wrap_bytes: LOG_WRAP,
        }
    }
}

/// Filters for reading records back. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only this user.
    pub user_sub: Option<String>,
    /// Only this spoke account.
    pub spoke_account: Option<String>,
    /// Only this model alias.
    pub model_alias: Option<String>,
    /// Only this declared purpose.
    pub purpose: Option<String>,
    /// Only this outcome (`answered`, `denied`, ...).
    pub outcome: Option<String>,
    /// From this time, Unix milliseconds, inclusive.
    pub since_unix_ms: Option<i64>,
    /// Until this time, Unix milliseconds, exclusive.
    pub until_unix_ms: Option<i64>,
    /// Only this application.
    pub application: Option<String>,
    /// Only records with a guard finding of this entity type (`EMAIL`, `prompt_injection`, ...).
    pub guard_entity: Option<String>,
    /// Only the record with this id.
    pub record_id: Option<String>,
    /// Only records after this cursor in the store's order (newest first): the `(ts_unix_ms, id)` of the last
    /// record of the previous page. Records of the same millisecond are in an order of the store's own, the
    /// same for every page.
    pub before: Option<(i64, String)>,
    /// At most this many records (newest first); 0 means no limit.
    pub limit: usize,
}

impl RecordFilter {
    /// Whether `record` passes every condition of the filter (but the limit): the one definition of what a
    /// filter selects, for stores that filter in memory.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let event = &record.event;
        let is = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let ts = unix_ms(event.timestamp);
        is(&self.user_sub, event.user_sub.as_deref())
            && is(&self.spoke_account, event.spoke_account.as_deref())
            && is(&self.model_alias, event.model_alias.as_deref())
            && is(&self.purpose, event.purpose.as_deref())
            && is(&self.outcome, Some(event.outcome.as_str()))
            && is(&self.application, event.application.as_deref())
            && self
                .guard_entity
                .as_deref()
                .is_none_or(|e| event.guard_events.iter().any(|g| g.entity == e))
            && self
                .record_id
                .as_deref()
                .is_none_or(|id| event.id.to_string() == id)
            && self.since_unix_ms.is_none_or(|since| ts >= since)
            && self.until_unix_ms.is_none_or(|until| ts < until)
            && self.before.as_ref().is_none_or(|(before_ts, before_id)| {
                ts < *before_ts || (ts == *before_ts && event.id.to_string() < *before_id)
            })
    }
}

impl RecordFilter {
    /// The SQL and its parameters: only the conditions set, so SQLite can pick the matching index.
    fn sql(&self, select: &str) -> (String, Vec<Value>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        // With a guard finding the query walks that finding's index (entity, time, record) and joins the
        // records; otherwise it walks the records' most selective index. Either way the order is time, then
        // rowid (which every index carries), newest first, so no sort is needed.
        let (from, ts, rowid) = match &self.guard_entity {
            Some(entity) => {
                values.push(Value::Text(entity.clone()));
                conditions.push(format!("g.entity = ?{}", values.len()));
                (
                    "guard_findings g JOIN records r ON r.rowid = g.record_rowid",
                    "g.ts_unix_ms",
                    "g.record_rowid",
                )
            }
            None => ("records r", "r.ts_unix_ms", "r.rowid"),
        };
        for (column, value) in [
            ("user_sub", &self.user_sub),
            ("spoke_account", &self.spoke_account),
            ("model_alias", &self.model_alias),
            ("purpose", &self.purpose),
            ("outcome", &self.outcome),
            ("application", &self.application),
            ("id", &self.record_id),
        ] {
            if let Some(value) = value {
                values.push(Value::Text(value.clone()));
                conditions.push(format!("r.{column} = ?{}", values.len()));
            }
        }
        if let Some(since) = self.since_unix_ms {
            values.push(Value::Integer(since));
            conditions.push(format!("{ts} >= ?{}", values.len()));
        }
        if let Some(until) = self.until_unix_ms {
            values.push(Value::Integer(until));
            conditions.push(format!("{ts} < ?{}", values.len()));
        }
        if let Some((before, id)) = &self.before {
            values.push(Value::Integer(*before));
            let ts_at = values.len();
            values.push(Value::Text(id.clone()));
            // The cursor's record is found by its unique id.
            conditions.push(format!(
                "({ts} < ?{ts_at} OR ({ts} = ?{ts_at} AND {rowid} < (SELECT rowid FROM records WHERE id = ?{})))",
                values.len()
            ));
        }
        let mut sql = format!("{select} FROM {from}");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY {ts} DESC, {rowid} DESC"));
        if self.limit > 0 {
            values.push(Value::Integer(
                i64::try_from(self.limit).unwrap_or(i64::MAX),
            ));
            sql.push_str(&format!(" LIMIT ?{}", values.len()));
        }
        (sql, values)
    }
}

/// A chain's head and the latest checkpoint that covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    /// The chain.
    pub chain_id: String,
    /// The sequence of its last record.
    pub head_sequence: u64,
    /// That record's hash.
    pub head_hash: String,
    /// When that record was made, Unix milliseconds.
    pub head_unix_ms: i64,
    /// The chain sequence its latest signed checkpoint covers, if it has one.
    pub checkpoint_sequence: Option<u64>,
    /// When that checkpoint was made, Unix milliseconds.
    pub checkpoint_unix_ms: Option<i64>,
}

/// What is stored of a record's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadState {
    /// The payload, decrypted, with hashes matching its record.
    Stored(Payload),
    /// The payload's period was erased: its data key is destroyed.
    Erased {
        /// The UTC day, `YYYY-MM-DD`.
        period: String,
    },
    /// No payload was stored for this record (refusals store none).
    Absent,
}

/// The result of erasing a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedPeriod {
    /// The UTC day, `YYYY-MM-DD`.
    pub period: String,
    /// Payloads that became unreadable.
    pub payloads: u64,
}

/// The payload period (UTC day, `YYYY-MM-DD`) of a record made at `timestamp`.
pub fn period_of(timestamp: OffsetDateTime) -> String {
    format_date(timestamp.to_offset(time::UtcOffset::UTC).date())
}

fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

pub(crate) fn unix_ms(ts: OffsetDateTime) -> i64 {
    i64::try_from(ts.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The single-file embedded audit store.
#[derive(Debug)]
pub struct EmbeddedStore {
    path: PathBuf,
    key_dir: PathBuf,
    chain_id: Option<String>,
    queue: Option<mpsc::Sender<Job>>,
    writer: Option<thread::JoinHandle<()>>,
    reader: Mutex<Connection>,
    /// What a read waits on: records answered and not yet in the index are committed first, so a read in
    /// this process after an answer sees the answered records.
    settle: Arc<Settle>,
}

/// Answered records the index does not hold yet. The writer answers a group's callers once its log frame is
/// synced and commits the index later, for several groups at once; a read in this process asks it to
/// commit now and waits ([`Settle::wait`]).
#[derive(Debug, Default)]
struct Settle {
    /// True from the answer of a group until the index commit that holds it is done (or has failed).
    pending: Mutex<bool>,
    done: std::sync::Condvar,
    /// Wakes the writer to commit now.
    asked: tokio::sync::Notify,
}

impl Settle {
    /// Blocks until every answered record is in the index (or its commit failed: the read then sees what is
    /// committed, as after a crash before the replay).
    fn wait(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if *pending {
            self.asked.notify_one();
        }
        while *pending {
            pending = self
                .done
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Answered records are about to wait for a later commit.
    fn answering(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// The index holds every answered record (or its commit failed).
    fn settled(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.done.notify_all();
    }
}

fn configure(conn: &Connection, path: &Path) -> Result<(), AuditError> {
    conn.busy_timeout(Duration::from_secs(5))
        // Before anything is written (it sets the size of a new file only).
        .and_then(|()| conn.pragma_update(None, "page_size", PAGE_SIZE))
        .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
        .and_then(|()| conn.pragma_update(None, "secure_delete", "ON"))
        // 64 MiB of page cache (the default is 2 MiB): the indexes of a large store stay in memory.
        .and_then(|()| conn.pragma_update(None, "cache_size", -65_536))
        .map_err(|e| AuditError::Unavailable(format!("cannot configure `{}`: {e}", path.display())))
}

/// The writer's statements are planned once, whatever values are bound to them. Without the query planner
/// stability guarantee SQLite marks a statement whose plan could depend on a bound value (the chain id of
/// `chain_head`, for one) and prepares it again each time a new value is bound: a parse and a plan on every
/// group, for a plan that never changes (the writer's lookups are by primary key or a covering index).
fn plan_once(conn: &Connection) -> Result<(), AuditError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(|_| ())
        .map_err(unavailable)
}

/// Reading connections read pages through a memory map (up to 4 GiB of the file) rather than copying them
/// with `read` calls; the writer does not, so a disk error on its path stays an error, never a signal.
fn map_pages(conn: &Connection) -> Result<(), AuditError> {
    conn.pragma_update(None, "mmap_size", 1_i64 << 32)
        .map_err(unavailable)
}

fn open_connection(path: &Path) -> Result<Connection, AuditError> {
    let conn = Connection::open(path)
        .map_err(|e| AuditError::Unavailable(format!("cannot open `{}`: {e}", path.display())))?;
    configure(&conn, path)?;
    Ok(conn)
}

fn unavailable(e: rusqlite::Error) -> AuditError {
    AuditError::Unavailable(e.to_string())
}

fn write_err(e: rusqlite::Error) -> AuditError {
    AuditError::Write(e.to_string())
}

fn key_dir_for(path: &Path, options: &StoreOptions) -> PathBuf {
    options.key_dir.clone().unwrap_or_else(|| {
        path.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    })
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path` with default options and starts its writer thread.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AuditError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (creating if needed) the store at `path` and starts its writer thread. Creates the signing and
    /// master key files when missing and registers the store's chain with a genesis checkpoint.
    pub fn open_with(path: impl Into<PathBuf>, options: StoreOptions) -> Result<Self, AuditError> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                AuditError::Unavailable(format!("cannot create `{}`: {e}", dir.display()))
            })?;
        }
        let key_dir = key_dir_for(&path, &options);
        let signer: Arc<dyn CheckpointSigner> = match &options.signer {
            Some(signer) => signer.clone(),
            None => Arc::new(Ed25519FileSigner::load_or_create(&key_dir)?),
        };
        let master = MasterKey::load_or_create(&key_dir)?;
        let mut writer = open_connection(&path)?;
        plan_once(&writer)?;
        // One transaction, so a new store's tables and indexes cost one synced commit, not one each.
        writer
            .execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
            .map_err(|e| AuditError::Unavailable(format!("cannot create the schema: {e}")))?;
        migrate(&mut writer)?;
        replay_log(&mut writer, &path, None)?;
        let (chain_id, log_id) =
            register_chain(&mut writer, signer.as_ref(), options.chain_id.as_deref())?;
        let log = RecordLog::open(&path, log_id)?;
        // From here on the log makes each group durable; the database only has to stay consistent, which
        // WAL with `synchronous = NORMAL` guarantees (a commit lost to power loss is replayed from the log).
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            // The WAL is copied into the database by a thread of its own (`copy_wal`); the writer copies
            // only when that falls behind by `WAL_BEHIND`, so commits rarely wait for it.
            .and_then(|()| {
                writer.pragma_update(None, "wal_autocheckpoint", wal_pages(&writer, WAL_BEHIND))
            })
            // Temporary files (a statement journal, should a statement need one) are held in memory.
            .and_then(|()| writer.pragma_update(None, "temp_store", "MEMORY"))
            .map_err(unavailable)?;
        let reader = open_connection(&path)?;
        map_pages(&reader)?;

        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let settle = Arc::new(Settle::default());
        let state = Writer {
            settle: Arc::clone(&settle),
            uncommitted: None,
            answered_end: None,
            open_head: None,
            keys: BTreeMap::new(),
            id_ceiling: None,
            open_ids: HashSet::new(),
            replay_to: None,
            chain_id: chain_id.clone(),
            signer,
            master,
            log,
            db_path: path.clone(),
            log_wrap: options.log_wrap_bytes.max(1),
            every: options.checkpoint_every.max(1),
            interval: options.checkpoint_interval.max(Duration::from_millis(100)),
            last_checkpoint: Instant::now(),
        };
        let handle = thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                crate::sched::run_in_batches("audit-writer");
                state.run(writer, rx);
            })
            .map_err(|e| AuditError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            path,
            key_dir,
            chain_id: Some(chain_id),
            queue: Some(queue),
            writer: Some(handle),
            reader: Mutex::new(reader),
            settle,
        })
    }

    /// Opens an existing store for reading only: no writer thread, no key created, nothing written.
    /// Payloads are readable when the master key file is in `key_dir` (default: beside the file).
    pub fn open_read_only(
        path: impl Into<PathBuf>,
        key_dir: Option<PathBuf>,
    ) -> Result<Self, AuditError> {
        let path = path.into();
        if !path.is_file() {
            return Err(AuditError::Unavailable(format!(
                "no audit store at `{}`",
                path.display()
            )));
        }
        let key_dir = key_dir_for(
            &path,
            &StoreOptions {
                key_dir,
                ..StoreOptions::default()
            },
        );
        // Records synced to the log whose database commit a crash or power loss undid are restored first
        // (under the write lock, so never racing a live writer), so a reader sees every acknowledged record.
        if let Err(err) = restore_pending(&path) {
            tracing::warn!(error = %err, "cannot restore the audit log's last records into the index");
        }
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| AuditError::Unavailable(format!("cannot open `{}`: {e}", path.display())))?;
        reader
            .busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        map_pages(&reader)?;
        let chain_id = reader
            .query_row("SELECT value FROM meta WHERE key = 'chain_id'", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| {
                AuditError::Unavailable(format!(
                    "`{}` is not a Causeway audit store: {e}",
                    path.display()
                ))
            })?;
        Ok(Self {
            path,
            key_dir,
            chain_id,
            queue: None,
            writer: None,
            reader: Mutex::new(reader),
            settle: Arc::new(Settle::default()),
        })
    }

    /// Stops the writer after it committed everything queued and wrote its closing checkpoint, and waits for
    /// it. (Dropping the store does the same without waiting.) Blocks: call it outside async code or from
    /// `spawn_blocking`.
    pub fn close(mut self) {
        self.queue = None;
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the signing and master key files.
    pub fn key_dir(&self) -> &Path {
        &self.key_dir
    }

    /// The chain this store appends to (empty for a read-only store opened on a store never written).
    pub fn chain_id(&self) -> &str {
        self.chain_id.as_deref().unwrap_or_default()
    }

    /// The reader connection, once every group whose callers were answered is committed.
    fn reader(&self) -> Result<MutexGuard<'_, Connection>, AuditError> {
        self.settle.wait();
        self.reader
            .lock()
            .map_err(|_| AuditError::Read("the reader connection is poisoned".into()))
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AuditError> {
        let conn = self.reader()?;
        f(&conn).map_err(|e| AuditError::Read(e.to_string()))
    }

    /// Reads one record by id, with its stored hash.
    pub fn get(&self, id: Uuid) -> Result<Option<(AuditRecord, String)>, AuditError> {
        let row = self.with_reader(|conn| {
            conn.query_row(
                "SELECT body, record_hash FROM records WHERE id = ?1",
                params![id.to_string()],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
        })?;
        row.map(|(body, hash)| decode(&body).map(|r| (r, hash)))
            .transpose()
    }

    /// Reads records matching `filter`, newest first, with their stored hashes. Uses the index of the first
    /// field set (user, account, model, purpose, outcome; by time).
    pub fn query(&self, filter: &RecordFilter) -> Result<Vec<(AuditRecord, String)>, AuditError> {
        let (sql, values) = filter.sql("SELECT r.body, r.record_hash");
        let rows = self
            .with_reader(|conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(values), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| match e {
                // A store last written by a hub older than the application and guard-finding indexes, opened
                // read-only, so not yet migrated.
                AuditError::Read(why) if why.contains("no such") => AuditError::Unsupported(format!(
                    "this store predates the application and guard-finding indexes ({why}); start the hub on it once to add them"
                )),
                other => other,
            })?;
        rows.into_iter()
            .map(|(body, hash)| decode(&body).map(|r| (r, hash)))
            .collect()
    }

    /// Calls `f` with the canonical bytes and stored hash of each record `filter` selects, newest first, as
    /// they are read (nothing is decoded or collected): for exporting or scanning many records.
    pub fn for_each_matching(
        &self,
        filter: &RecordFilter,
        mut f: impl FnMut(&str, &str) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let (sql, values) = filter.sql("SELECT r.body, r.record_hash");
        let conn = self.reader()?;
        let read = |e: rusqlite::Error| AuditError::Read(e.to_string());
        let mut stmt = conn.prepare_cached(&sql).map_err(read)?;
        let mut rows = stmt.query(params_from_iter(values)).map_err(read)?;
        while let Some(row) = rows.next().map_err(read)? {
            let body = row.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(read)?;
            let hash = row.get_ref(1).and_then(|v| Ok(v.as_str()?)).map_err(read)?;
            f(body, hash)?;
        }
        Ok(())
    }

    /// SQLite's plan for `filter` (`EXPLAIN QUERY PLAN`), one step a line: shows which index answers it.
    pub fn query_plan(&self, filter: &RecordFilter) -> Result<String, AuditError> {
        let (sql, values) = filter.sql("EXPLAIN QUERY PLAN SELECT r.body, r.record_hash");
        self.with_reader(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(values), |row| row.get::<_, String>(3))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map(|lines| lines.join("\n"))
    }

    /// The record at `sequence` of `chain_id`, with its hash.
    pub fn record(
        &self,
        chain_id: &str,
        sequence: u64,
    ) -> Result<Option<(AuditRecord, String)>, AuditError> {
        let row: Option<(String, String)> = self.with_reader(|conn| {
            conn.query_row(
                "SELECT body, record_hash FROM records WHERE chain_id = ?1 AND sequence = ?2",
                params![chain_id, i64::try_from(sequence).unwrap_or(i64::MAX)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
        })?;
        row.map(|(body, hash)| decode(&body).map(|r| (r, hash)))
            .transpose()
    }

    /// Each chain's head and its latest checkpoint, by chain id.
    pub fn chains(&self) -> Result<Vec<ChainSummary>, AuditError> {
        type Row = (String, i64, String, i64, Option<i64>, Option<i64>);
        let rows: Vec<Row> = self.with_reader(|conn| {
            let mut stmt = conn.prepare(
                "SELECT r.chain_id, r.sequence, r.record_hash, r.ts_unix_ms, c.chain_sequence, c.ts_unix_ms
                 FROM records r
                 JOIN (SELECT chain_id, MAX(sequence) AS head FROM records GROUP BY chain_id) h
                   ON h.chain_id = r.chain_id AND h.head = r.sequence
                 LEFT JOIN (SELECT chain_id, MAX(sequence) AS last FROM checkpoints GROUP BY chain_id) l
                   ON l.chain_id = r.chain_id
                 LEFT JOIN checkpoints c ON c.sequence = l.last
                 ORDER BY r.chain_id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(chain_id, head, head_hash, head_ms, checkpoint, checkpoint_ms)| ChainSummary {
                    chain_id,
                    head_sequence: u64::try_from(head).unwrap_or(0),
                    head_hash,
                    head_unix_ms: head_ms,
                    checkpoint_sequence: checkpoint.map(|c| u64::try_from(c).unwrap_or(0)),
                    checkpoint_unix_ms: checkpoint_ms,
                },
            )
            .collect())
    }

    /// Number of records in the store.
    pub fn count(&self) -> Result<u64, AuditError> {
        self.with_reader(|conn| {
            conn.query_row("SELECT COUNT(*) FROM records", [], |row| {
                row.get::<_, i64>(0)
            })
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// The public keys that signed this store's checkpoints, as registered in it.
    pub fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare(
                "SELECT key_id, algorithm, public_key FROM signing_keys ORDER BY added_unix_ms, key_id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(PublicKeyInfo {
                    key_id: row.get(0)?,
                    algorithm: row.get(1)?,
                    public_key: row.get(2)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    /// The checkpoint log, in order: `(canonical bytes, stored hash, signature)`.
    pub fn checkpoint_rows(&self) -> Result<Vec<(String, String, String)>, AuditError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare(
                "SELECT body, checkpoint_hash, signature FROM checkpoints ORDER BY sequence",
            )?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    /// The checkpoint log, decoded, in order.
    pub fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, AuditError> {
        self.checkpoint_rows()?
            .into_iter()
            .map(|(body, checkpoint_hash, signature)| {
                serde_json::from_str(&body)
                    .map(|checkpoint| SignedCheckpoint {
                        checkpoint,
                        checkpoint_hash,
                        signature,
                    })
                    .map_err(|e| {
                        AuditError::Read(format!("stored checkpoint does not decode: {e}"))
                    })
            })
            .collect()
    }

    /// Per chain, the first and last sequence of the records stamped in `[since, until)` (Unix ms).
    pub fn chain_ranges(
        &self,
        since_unix_ms: i64,
        until_unix_ms: i64,
    ) -> Result<Vec<(String, u64, u64)>, AuditError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare(
                "SELECT chain_id, MIN(sequence), MAX(sequence) FROM records
                 WHERE ts_unix_ms >= ?1 AND ts_unix_ms < ?2 GROUP BY chain_id ORDER BY chain_id",
            )?;
            let rows = stmt.query_map(params![since_unix_ms, until_unix_ms], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map(|rows| {
            rows.into_iter()
                .map(|(c, a, b)| {
                    (
                        c,
                        u64::try_from(a).unwrap_or(0),
                        u64::try_from(b).unwrap_or(0),
                    )
                })
                .collect()
        })
    }

    /// Calls `f` with the canonical bytes and stored hash of each record of `chain_id` from `first` to `last`
    /// (inclusive), in stored order.
    pub fn for_each_record(
        &self,
        chain_id: &str,
        first: u64,
        last: u64,
        mut f: impl FnMut(&str, &str) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        fn text(bytes: &[u8]) -> Result<&str, AuditError> {
            std::str::from_utf8(bytes).map_err(|e| AuditError::Read(format!("not text: {e}")))
        }
        for_each_stored_record(&*self.reader()?, chain_id, first, last, |body, hash| {
            f(text(body)?, text(hash)?)
        })
    }

    /// Verifies every chain in the store against its checkpoint log; returns the first break, if any.
    pub fn verify(&self) -> Result<Option<ChainBreak>, AuditError> {
        Ok(self.verify_report(None)?.breaks.into_iter().next())
    }

    /// Verifies the whole store: the checkpoint log (signatures by `trusted` keys, or by the keys the store
    /// registered when `None`), then every chain, record by record, against it, then that every registered
    /// chain is present and no unregistered one is.
    pub fn verify_report(
        &self,
        trusted: Option<&[PublicKeyInfo]>,
    ) -> Result<Verification, AuditError> {
        self.verify_report_counting(trusted, None)
    }

    /// [`Self::verify_report`], counting the records checked into `progress` as it goes.
    pub fn verify_report_counting(
        &self,
        trusted: Option<&[PublicKeyInfo]>,
        progress: Option<&Progress>,
    ) -> Result<Verification, AuditError> {
        let keys = match trusted {
            Some(keys) => keys.to_vec(),
            None => self.public_keys()?,
        };
        let rows = self.checkpoint_rows()?;
        let log = CheckpointLog::check(
            rows.iter()
                .map(|(b, h, s)| (b.as_bytes(), h.as_str(), s.as_str())),
            &keys,
        );
        let present = self.with_reader(|conn| {
            let mut stmt =
                conn.prepare("SELECT DISTINCT chain_id FROM records ORDER BY chain_id")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let chains: BTreeSet<&str> = present
            .iter()
            .map(String::as_str)
            .chain(log.registered.keys().map(String::as_str))
            .collect();
        let workers = verify_workers();
        let mut report = Verification {
            chains: chains.len(),
            checkpoints: log.count,
            log_head: log.head_hash.clone(),
            ..Verification::default()
        };
        for chain in chains {
            let anchors = log.anchors.get(chain);
            let mut check = self.check_chain(
                ChainCheck::new(chain, anchors, 1, GENESIS_HASH)
                    .counting(progress)
                    .trusting_vouched_form(),
                workers,
            )?;
            if check.needs_full_check() {
                check =
                    self.check_chain(ChainCheck::new(chain, anchors, 1, GENESIS_HASH), workers)?;
            }
            report.records += check.count();
            let end = log
                .vouched_end(chain)
                .map(|(seq, cp)| (seq, Voucher::Checkpoint(cp)));
            report.breaks.extend(check.finish(end));
        }
        report.breaks.extend(registration_breaks(
            &log,
            present.iter().map(String::as_str),
        ));
        report.breaks.extend(log.broken);
        Ok(report)
    }

    /// Pushes every record of `check`'s chain through it, in stored order. The chain is read in blocks of
    /// sequences by `workers` threads, each with a connection of its own, which hash (and where needed
    /// decode) the records they read; the blocks are linked in order here, so the result is that of one
    /// read in sequence order.
    fn check_chain<'c>(
        &self,
        mut check: ChainCheck<'c>,
        workers: usize,
    ) -> Result<ChainCheck<'c>, AuditError> {
        /// Sequences per block: enough to keep a worker busy between hand-overs, few enough that the blocks
        /// waiting to be linked stay small (a record's facts are about 200 bytes).
        const BLOCK: u64 = 4096;
        /// Blocks a worker may have read ahead of the linking.
        const AHEAD: usize = 2;
        let chain = check.chain_id().to_owned();
        let last: Option<i64> = self.with_reader(|conn| {
            conn.query_row(
                "SELECT max(sequence) FROM records WHERE chain_id = ?1",
                params![chain],
                |row| row.get(0),
            )
        })?;
        let Some(last) = last.and_then(|last| u64::try_from(last).ok()) else {
            return Ok(check);
        };
        // Blocks cover 1 to `last`; the last one is open-ended, for records appended meanwhile.
        let blocks = usize::try_from(last.div_ceil(BLOCK))
            .unwrap_or(usize::MAX)
            .max(1);
        let block = |b: usize| {
            let first = u64::try_from(b).unwrap_or(u64::MAX).saturating_mul(BLOCK) + 1;
            let last = if b + 1 == blocks {
                u64::MAX
            } else {
                first + BLOCK - 1
            };
            (first, last)
        };
        let workers = workers.clamp(1, 64).min(blocks);
        let examiner = check.examiner();
        std::thread::scope(|scope| {
            let mut handed: Vec<_> = (0..workers)
                .map(|w| {
                    let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
                    let (examiner, chain) = (&examiner, chain.as_str());
                    let handle = scope.spawn(move || {
                        let conn = self.read_connection()?;
                        let mut scratch = Vec::new();
                        for b in (w..blocks).step_by(workers) {
                            let (first, last) = block(b);
                            let mut facts = Vec::new();
                            let read =
                                for_each_stored_record(&conn, chain, first, last, |body, hash| {
                                    facts.push(examiner.examine(body, Some(hash), &mut scratch));
                                    Ok(())
                                });
                            // The receiver gone means the verification stopped: stop reading.
                            if tx.send(read.map(|()| facts)).is_err() {
                                break;
                            }
                        }
                        Ok::<(), AuditError>(())
                    });
                    (rx, handle)
                })
                .collect();
            let stopped = || AuditError::Read("a verification worker stopped".into());
            // A block's read error; a worker gone without one says why itself when joined.
            let mut linked = Ok(());
            for b in 0..blocks {
                match handed.get(b % workers).map(|(rx, _)| rx.recv()) {
                    Some(Ok(Ok(facts))) => facts.into_iter().for_each(|f| check.accept(f)),
                    Some(Ok(Err(e))) => {
                        linked = Err(Some(e));
                        break;
                    }
                    Some(Err(_)) | None => {
                        linked = Err(None);
                        break;
                    }
                }
            }
            // Joined here, so a worker that failed is reported rather than re-raised.
            for (rx, handle) in handed.drain(..) {
                drop(rx);
                let worked = handle.join().map_err(|_| stopped()).and_then(|r| r);
                if let (Ok(()) | Err(None), Err(e)) = (&linked, worked) {
                    linked = Err(Some(e));
                }
            }
            linked.map_err(|e| e.unwrap_or_else(stopped))
        })?;
        Ok(check)
    }

    /// A connection of its own for a verification worker: read-only, pages through the memory map.
    fn read_connection(&self) -> Result<Connection, AuditError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            AuditError::Unavailable(format!("cannot open `{}`: {e}", self.path.display()))
        })?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        map_pages(&conn)?;
        Ok(conn)
    }

    /// Reads the payload of record `id`, decrypted, and checks it against the record's hashes.
    pub fn payload(&self, id: Uuid) -> Result<PayloadState, AuditError> {
        type Row = (String, Vec<u8>, Option<Vec<u8>>, Option<String>);
        let row: Option<Row> = self.with_reader(|conn| {
            conn.query_row(
                "SELECT p.period, p.sealed, k.wrapped_key, r.body FROM payloads p
                 LEFT JOIN data_keys k ON k.period = p.period
                 LEFT JOIN records r ON r.id = p.record_id
                 WHERE p.record_id = ?1",
                params![id.to_string()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()
        })?;
        let Some((period, sealed, wrapped, body)) = row else {
            return Ok(PayloadState::Absent);
        };
        let Some(wrapped) = wrapped else {
            return Ok(PayloadState::Erased { period });
        };
        let master = MasterKey::load(&self.key_dir)?;
        let key = master.unwrap_data_key(&period, &wrapped)?;
        let plain = key
            .open(&payload_aad(&id.to_string(), &period), &sealed)
            .ok_or_else(|| AuditError::Read(format!("the payload of {id} does not decrypt")))?;
        let payload: Payload = serde_json::from_slice(&plain)
            .map_err(|e| AuditError::Read(format!("the payload of {id} does not decode: {e}")))?;
        if let Some(body) = body {
            let record = decode(&body)?;
            if !payload.matches(&record.event) {
                return Err(AuditError::Read(format!(
                    "the payload of {id} does not match its record's hashes"
                )));
            }
        }
        Ok(PayloadState::Stored(payload))
    }

    /// Erases a period (UTC day): destroys its data key, so its payloads can no longer be decrypted. The
    /// records, their hashes and the chain are untouched and still verify. A period can be erased once a whole
    /// day has passed since it ended (so no late write can still be using its key); an erased period never
    /// gets a new key.
    pub fn erase_period(&self, period: Date) -> Result<ErasedPeriod, AuditError> {
        let today = OffsetDateTime::now_utc().date();
        let name = format_date(period);
        if period.next_day().is_none_or(|next| next >= today) {
            return Err(AuditError::Write(format!(
                "period {name} can be erased from {} on",
                period
                    .next_day()
                    .and_then(Date::next_day)
                    .map_or_else(|| "never".to_owned(), format_date)
            )));
        }
        let mut conn = open_connection(&self.path)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(write_err)?;
        let now = unix_ms(OffsetDateTime::now_utc());
        tx.execute(
            "INSERT INTO data_keys (period, wrapped_key, created_unix_ms, erased_unix_ms)
             VALUES (?1, NULL, ?2, ?2)
             ON CONFLICT (period) DO UPDATE SET wrapped_key = NULL,
                 erased_unix_ms = coalesce(erased_unix_ms, excluded.erased_unix_ms)",
            params![name, now],
        )
        .map_err(write_err)?;
        let payloads: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM payloads WHERE period = ?1",
                params![name],
                |row| row.get(0),
            )
            .map_err(write_err)?;
        tx.commit().map_err(write_err)?;
        // Move the change into the main file and truncate the WAL, which still held the old key's page.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint after erasing a period failed; the key page stays in the WAL until the next one");
        }
        Ok(ErasedPeriod {
            period: name,
            payloads: u64::try_from(payloads).unwrap_or(0),
        })
    }

    /// Asks the writer to checkpoint the chain head now (if it moved since the last checkpoint). Returns the
    /// checkpoint written, if any.
    pub async fn checkpoint_now(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        let queue = self.queue.as_ref().ok_or_else(read_only)?;
        let (reply, answer) = oneshot::channel();
        queue
            .send(Job::Checkpoint(reply))
            .await
            .map_err(|_| AuditError::Unavailable("the writer thread has stopped".into()))?;
        answer.await.map_err(|_| {
            AuditError::Unavailable("the writer thread stopped before answering".into())
        })?
    }
}

/// Calls `f` with the canonical bytes and stored hash of each record of `chain_id` from `first` to `last`
/// (inclusive), in stored order, as stored (not checked to be UTF-8).
fn for_each_stored_record(
    conn: &Connection,
    chain_id: &str,
    first: u64,
    last: u64,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let read = |e: rusqlite::Error| AuditError::Read(e.to_string());
    let mut stmt = conn
        .prepare_cached(
            "SELECT body, record_hash FROM records
             WHERE chain_id = ?1 AND sequence >= ?2 AND sequence <= ?3 ORDER BY sequence",
        )
        .map_err(read)?;
    let mut rows = stmt
        .query(params![
            chain_id,
            i64::try_from(first).unwrap_or(i64::MAX),
            i64::try_from(last).unwrap_or(i64::MAX)
        ])
        .map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let body = row
            .get_ref(0)
            .and_then(|v| Ok(v.as_bytes()?))
            .map_err(read)?;
        let hash = row
            .get_ref(1)
            .and_then(|v| Ok(v.as_bytes()?))
            .map_err(read)?;
        f(body, hash)?;
    }
    Ok(())
}

fn read_only() -> AuditError {
    AuditError::Unavailable("the store was opened read-only".into())
}

fn decode(body: &str) -> Result<AuditRecord, AuditError> {
    serde_json::from_str(body)
        .map_err(|e| AuditError::Read(format!("stored record does not decode: {e}")))
}

/// Creates the chain id if the store has none, registers the signing key, and writes the chain's genesis
/// checkpoint if the log has none for it: all in one transaction, so two processes opening the same new file
/// agree on one chain and one genesis.
fn register_chain(
    conn: &mut Connection,
    signer: &dyn CheckpointSigner,
    chosen: Option<&str>,
) -> Result<(String, LogId), AuditError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let log_id = match log_id(&tx).map_err(unavailable)? {
        Some(id) => id,
        None => {
            let id = Uuid::now_v7();
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('log_id', ?1)",
                params![id.to_string()],
            )
            .map_err(unavailable)?;
            id.into_bytes()
        }
    };
    // Written on every open, so this commit (synced: the connection is still `synchronous = FULL`) makes
    // everything committed before it durable, whatever a crash left in the log after that point.
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_unix_ms', ?1)",
        params![unix_ms(OffsetDateTime::now_utc()).to_string()],
    )
    .map_err(unavailable)?;
    let existing: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'chain_id'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(unavailable)?;
    let chain = match (chosen, existing) {
        (Some(chosen), _) => chosen.to_owned(),
        (None, Some(chain)) => chain,
        (None, None) => {
            let chain = format!("embedded-{}", Uuid::now_v7());
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('chain_id', ?1)",
                params![chain],
            )
            .map_err(unavailable)?;
            chain
        }
    };
    let key = signer.public_key();
    tx.execute(
        "INSERT OR IGNORE INTO signing_keys (key_id, algorithm, public_key, added_unix_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            key.key_id,
            key.algorithm,
            key.public_key,
            unix_ms(OffsetDateTime::now_utc())
        ],
    )
    .map_err(unavailable)?;
    let registered: Option<i64> = tx
        .query_row(
            "SELECT sequence FROM checkpoints WHERE chain_id = ?1 AND kind = 'genesis' LIMIT 1",
            params![chain],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    if registered.is_none() {
        append_checkpoint(
            &tx,
            signer,
            CheckpointKind::Genesis,
            &chain,
            0,
            GENESIS_HASH,
        )?;
    }
    tx.commit().map_err(unavailable)?;
    Ok((chain, log_id))
}

/// Appends a checkpoint to the log inside `tx` (which must be `IMMEDIATE`): reads the log head, links to it,
/// signs, inserts.
fn append_checkpoint(
    tx: &Connection,
    signer: &dyn CheckpointSigner,
    kind: CheckpointKind,
    chain_id: &str,
    chain_sequence: u64,
    chain_head_hash: &str,
) -> Result<(SignedCheckpoint, LoggedCheckpoint), AuditError> {
    let head = checkpoint_log_head(tx)?;
    let (checkpoint, logged) = sign_checkpoint(
        &head,
        signer,
        kind,
        chain_id,
        chain_sequence,
        chain_head_hash,
    )?;
    insert_checkpoint(tx, &logged, false)?;
    Ok((checkpoint, logged))
}

/// The checkpoint log's last sequence and checkpoint hash (0 and the genesis hash when it is empty).
fn checkpoint_log_head(tx: &Connection) -> Result<(u64, String), AuditError> {
    let head: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT sequence, checkpoint_hash FROM checkpoints ORDER BY sequence DESC LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(write_err)?;
    let (last, hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    Ok((u64::try_from(last).unwrap_or(0), hash))
}

/// A checkpoint of the chain's head, linked to the checkpoint log's head `log_head` and signed; the row is
/// the caller's to insert.
fn sign_checkpoint(
    log_head: &(u64, String),
    signer: &dyn CheckpointSigner,
    kind: CheckpointKind,
    chain_id: &str,
    chain_sequence: u64,
    chain_head_hash: &str,
) -> Result<(SignedCheckpoint, LoggedCheckpoint), AuditError> {
    let checkpoint = Checkpoint {
        schema_version: Checkpoint::SCHEMA_VERSION,
        sequence: log_head.0 + 1,
        prev_hash: log_head.1.clone(),
        kind,
        timestamp: OffsetDateTime::now_utc(),
        chain_id: chain_id.to_owned(),
        chain_sequence,
        chain_head_hash: chain_head_hash.to_owned(),
        key_id: signer.public_key().key_id.clone(),
    };
    let bytes = checkpoint
        .canonical_bytes()
        .map_err(|e| AuditError::Encode(e.to_string()))?;
    let signature = hex::encode(signer.sign(&bytes)?);
    let checkpoint_hash = sha256_hex(&bytes);
    let body = String::from_utf8(bytes).map_err(|e| AuditError::Encode(e.to_string()))?;
    let logged = LoggedCheckpoint {
        sequence: checkpoint.sequence,
        chain_id: chain_id.to_owned(),
        kind: match kind {
            CheckpointKind::Genesis => "genesis",
            CheckpointKind::Periodic => "periodic",
        }
        .to_owned(),
        chain_sequence,
        ts_unix_ms: unix_ms(checkpoint.timestamp),
        checkpoint_hash: checkpoint_hash.clone(),
        signature: signature.clone(),
        body,
    };
    Ok((
        SignedCheckpoint {
            checkpoint,
            checkpoint_hash,
            signature,
        },
        logged,
    ))
}

/// The last record of a chain.
const CHAIN_HEAD: &str =
    "SELECT sequence, record_hash FROM records WHERE chain_id = ?1 ORDER BY sequence DESC LIMIT 1";

/// The last record of a chain a checkpoint covers.
const LAST_CHECKPOINTED: &str = "SELECT MAX(chain_sequence) FROM checkpoints WHERE chain_id = ?1";

fn chain_head(tx: &Connection, chain_id: &str) -> Result<(u64, String), AuditError> {
    let head: Option<(i64, String)> = tx
        .prepare_cached(CHAIN_HEAD)
        .and_then(|mut stmt| {
            stmt.query_row(params![chain_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(write_err)?;
    let (last, hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let last =
        u64::try_from(last).map_err(|_| AuditError::Read(format!("negative sequence {last}")))?;
    Ok((last, hash))
}

fn last_checkpointed(tx: &Connection, chain_id: &str) -> Result<u64, AuditError> {
    let last: Option<i64> = tx
        .prepare_cached(LAST_CHECKPOINTED)
        .and_then(|mut stmt| stmt.query_row(params![chain_id], |row| row.get(0)))
        .map_err(write_err)?;
    Ok(last.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

/// Where the next log frame goes, as the database last recorded it (in the transaction `conn` is in).
fn log_position(conn: &Connection) -> rusqlite::Result<LogPosition> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value FROM meta WHERE key IN ('log_end', 'log_frame')")?;
    let mut rows = stmt.query([])?;
    let mut at = LogPosition::default();
    while let Some(row) = rows.next()? {
        let key = row.get_ref(0)?.as_str()?;
        let value = row.get_ref(1)?.as_str()?.parse::<u64>().unwrap_or(0);
        match key {
            "log_end" => at.offset = value,
            _ => at.frame = value,
        }
    }
    Ok(at)
}

/// The database's log id (`meta.log_id`), if it has one yet.
fn log_id(conn: &Connection) -> rusqlite::Result<Option<LogId>> {
    let id: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'log_id'", [], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(id
        .and_then(|id| Uuid::parse_str(&id).ok())
        .map(|id| id.into_bytes()))
}

fn set_log_position(conn: &Connection, at: LogPosition) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
    stmt.execute(params!["log_end", at.offset.to_string()])?;
    stmt.execute(params!["log_frame", at.frame.to_string()])?;
    Ok(())
}

/// Answers with an error every append of `batch` whose record id is already stored, or taken by a record
/// of the open transaction or an earlier append of the batch, and returns the others (their replies stay in
/// `replies`, in order), whose ids join `open_ids`. A record the index would refuse is never logged: its
/// frame could not be replayed.
///
/// `open_ids` holds the ids of the open transaction's records, its rows in flight included. `ceiling`, when
/// known, is at least every id the database held when the transaction began: an id above it and not in
/// `open_ids` is new without a look-up in `conn` (ids are time-ordered UUIDs, so nearly every new one is).
/// An append whose look-up fails, or that needs one without `conn`, is answered with the error alone.
fn refuse_known_ids(
    conn: Option<&Connection>,
    ceiling: Option<Uuid>,
    open_ids: &mut HashSet<Uuid>,
    batch: Vec<Append>,
    replies: &mut Vec<Reply<AuditReceipt>>,
) -> Vec<Append> {
    let mut stored = conn.map(|conn| conn.prepare_cached("SELECT 1 FROM records WHERE id = ?1"));
    let mut kept = Vec::with_capacity(batch.len());
    let mut kept_replies = Vec::with_capacity(replies.len());
    let mut text = Uuid::encode_buffer();
    for (append, reply) in batch.into_iter().zip(replies.drain(..)) {
        let id = append.event.id;
        let known = if open_ids.contains(&id) {
            Ok(true)
        } else if ceiling.is_some_and(|ceiling| id > ceiling) {
            Ok(false)
        } else {
            match stored.as_mut() {
                Some(Ok(stmt)) => stmt
                    .exists(params![&*id.hyphenated().encode_lower(&mut text)])
                    .map_err(write_err),
                Some(Err(err)) => Err(AuditError::Write(format!(
                    "cannot look up record id {id}: {err}"
                ))),
                None => Err(AuditError::Write(format!(
                    "record id {id} cannot be looked up here"
                ))),
            }
        };
        match known {
            Ok(false) => {
                open_ids.insert(id);
                kept.push(append);
                kept_replies.push(reply);
            }
            Ok(true) => {
                let _ = reply.send(Err(AuditError::Write(format!(
                    "record id {id} is already in the store: each record needs an id of its own"
                ))));
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
    }
    *replies = kept_replies;
    kept
}

/// The highest record id stored ([`Uuid::nil`] for none), for [`refuse_known_ids`]; `None` if it cannot be
/// read, and then every id is looked up.
fn highest_id(conn: &Connection) -> Option<Uuid> {
    let highest: Option<String> = conn
        .query_row("SELECT max(id) FROM records", [], |row| row.get(0))
        .ok()?;
    match highest {
        None => Some(Uuid::nil()),
        Some(id) => Uuid::parse_str(&id).ok(),
    }
}

/// Inserts one record's row and its guard-finding rows.
fn insert_record(
    tx: &Connection,
    record: &LoggedRecord,
    event: &AuditEvent,
) -> Result<(), AuditError> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO records (chain_id, sequence, id, ts_unix_ms, user_sub, spoke_account, model_alias,
                                  purpose, outcome, record_hash, body, application)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(write_err)?;
    insert
        .execute(params![
            record.chain_id,
            i64::try_from(record.sequence).unwrap_or(i64::MAX),
            event.id.to_string(),
            unix_ms(event.timestamp),
            event.user_sub,
            event.spoke_account,
            event.model_alias,
            event.purpose,
            event.outcome.as_str(),
            record.record_hash,
            record.body,
            event.application,
        ])
        .map_err(write_err)?;
    if event.guard_events.is_empty() {
        return Ok(());
    }
    let rowid = tx.last_insert_rowid();
    let mut finding = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO guard_findings (entity, ts_unix_ms, record_rowid) VALUES (?1, ?2, ?3)",
        )
        .map_err(write_err)?;
    for (n, guard) in event.guard_events.iter().enumerate() {
        // One row per entity type: later events of the same type add nothing.
        if event.guard_events[..n]
            .iter()
            .all(|g| g.entity != guard.entity)
        {
            finding
                .execute(params![guard.entity, unix_ms(event.timestamp), rowid])
                .map_err(write_err)?;
        }
    }
    Ok(())
}

/// Inserts a checkpoint row; `replayed`: one restored from the log, which may already be there.
fn insert_checkpoint(
    tx: &Connection,
    c: &LoggedCheckpoint,
    replayed: bool,
) -> Result<(), AuditError> {
    tx.prepare_cached(if replayed {
        "INSERT OR IGNORE INTO checkpoints (sequence, chain_id, kind, chain_sequence, ts_unix_ms, checkpoint_hash, signature, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    } else {
        "INSERT INTO checkpoints (sequence, chain_id, kind, chain_sequence, ts_unix_ms, checkpoint_hash, signature, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    })
    .and_then(|mut stmt| {
        stmt.execute(params![
            i64::try_from(c.sequence).unwrap_or(i64::MAX),
            c.chain_id,
            c.kind,
            i64::try_from(c.chain_sequence).unwrap_or(i64::MAX),
            c.ts_unix_ms,
            c.checkpoint_hash,
            c.signature,
            c.body
        ])
    })
    .map_err(write_err)?;
    Ok(())
}

/// Inserts a payload row; `replayed`: one restored from the log, which may already be there.
fn insert_payload(tx: &Connection, p: &LoggedPayload, replayed: bool) -> Result<(), AuditError> {
    tx.prepare_cached(if replayed {
        "INSERT OR IGNORE INTO payloads (record_id, period, sealed) VALUES (?1, ?2, ?3)"
    } else {
        "INSERT INTO payloads (record_id, period, sealed) VALUES (?1, ?2, ?3)"
    })
    .and_then(|mut stmt| stmt.execute(params![p.record_id, p.period, p.sealed]))
    .map_err(write_err)?;
    Ok(())
}

/// Once the log has grown past `wrap` bytes, starts it over at its beginning: a synced commit makes every
/// record committed so far durable in the database, and moves the position to offset 0 with the next frame
/// number, so the frames before it are no longer needed (and, numbered lower, never read as new ones).
fn wrap_log_if_due(conn: &mut Connection, at: LogPosition, wrap: u64) {
    if at.offset < wrap {
        return;
    }
    let wrapped = synced_transaction(conn, |tx| {
        let at = log_position(tx).map_err(write_err)?;
        if at.offset >= wrap {
            set_log_position(
                tx,
                LogPosition {
                    offset: 0,
                    frame: at.frame,
                },
            )
            .map_err(write_err)?;
        }
        Ok(())
    });
    if let Err(err) = wrapped {
        tracing::warn!(error = %err, "cannot start the audit log over; it keeps growing");
    }
}

/// Applies the log frames after the position the database holds (frames synced by a writer whose database
/// commit did not reach the disk before a crash or power loss), up to the frame `until` begins if given (a
/// live writer's: the frames it answered; one written after them was not answered). Returns how many
/// records it restored.
fn replay_log(
    conn: &mut Connection,
    path: &Path,
    until: Option<LogPosition>,
) -> Result<u64, AuditError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let Some(id) = log_id(&tx).map_err(unavailable)? else {
        // A database this version has not written yet: nothing of its can be in a log.
        return Ok(0);
    };
    let at = log_position(&tx).map_err(unavailable)?;
    let (frames, end) = crate::log::read_from(path, &id, at, until.map(|u| u.frame))?;
    if frames.is_empty() {
        return Ok(0);
    }
    let mut restored = 0;
    for frame in &frames {
        for record in &frame.records {
            let decoded = decode(&record.body)?;
            let exists: bool = tx
                .prepare_cached("SELECT 1 FROM records WHERE chain_id = ?1 AND sequence = ?2")
                .and_then(|mut stmt| {
                    stmt.exists(params![
                        record.chain_id,
                        i64::try_from(record.sequence).unwrap_or(i64::MAX)
                    ])
                })
                .map_err(unavailable)?;
            if !exists {
                insert_record(&tx, record, &decoded.event)?;
                restored += 1;
            }
        }
        for checkpoint in &frame.checkpoints {
            insert_checkpoint(&tx, checkpoint, true)?;
        }
        for payload in &frame.payloads {
            insert_payload(&tx, payload, true)?;
        }
    }
    set_log_position(&tx, end).map_err(unavailable)?;
    tx.commit().map_err(unavailable)?;
    tracing::warn!(
        records = restored,
        frames = frames.len(),
        "audit records restored from the log"
    );
    Ok(restored)
}

/// Replays the log into the store at `path` if it holds frames the database lacks; reads only otherwise.
///
/// A live writer commits the frames it answered within [`COMMIT_EVERY`]: the frames found here are first
/// given twice that to reach the database, so a reader beside a running hub does not contend for its write
/// lock. Frames still missing then (a writer that crashed, or lost its commits to a power loss) are
/// replayed under the write lock.
fn restore_pending(path: &Path) -> Result<(), AuditError> {
    let pending = {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(unavailable)?;
        let (Ok(Some(id)), Ok(at)) = (log_id(&conn), log_position(&conn)) else {
            // Not a store this version wrote.
            return Ok(());
        };
        let (frames, end) = crate::log::read_from(path, &id, at, None)?;
        let deadline = Instant::now() + 2 * COMMIT_EVERY;
        let mut pending = !frames.is_empty();
        while pending && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
            pending = log_position(&conn).map_or(true, |at| at.frame < end.frame);
        }
        pending
    };
    if pending {
        let mut conn = open_connection(path)?;
        replay_log(&mut conn, path, None)?;
    }
    Ok(())
}

/// Runs `f` in a transaction that is synced to the database file on commit (for the rare writes that are
/// not in the log: data keys), whatever the connection's usual setting.
fn synced_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, AuditError>,
) -> Result<T, AuditError> {
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(write_err)?;
    let result = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write_err)
        .and_then(|tx| {
            let value = f(&tx)?;
            tx.commit().map_err(write_err)?;
            Ok(value)
        });
    let back = conn
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(write_err);
    let value = result?;
    back?;
    Ok(value)
}

/// What the WAL copier is asked to do.
enum CopyWal {
    /// Copy now: the WAL has grown past [`WAL_WAKE_COPIER`] bytes since the last copy.
    Now,
    /// The writer has stopped.
    Stop,
}

/// How many of `conn`'s pages make `bytes`.
fn wal_pages(conn: &Connection, bytes: i64) -> i64 {
    let page = conn
        .pragma_query_value(None, "page_size", |row| row.get::<_, i64>(0))
        .unwrap_or(PAGE_SIZE)
        .max(512);
    bytes / page
}

/// Has the writer's connection wake the WAL copier once a commit leaves [`WAL_WAKE_COPIER`] bytes in the
/// WAL, so that under load the copy keeps up on its own thread instead of the writer doing it (its
/// automatic checkpoint at [`WAL_BEHIND`] stays, for a copier that cannot keep up). Without the hook the
/// automatic checkpoint alone remains.
fn wake_copier_when_behind(conn: &mut Connection, copy: std::sync::mpsc::SyncSender<CopyWal>) {
    let (behind, wake) = (
        wal_pages(conn, WAL_BEHIND),
        wal_pages(conn, WAL_WAKE_COPIER),
    );
    let hooked = conn.wal_hook(Some(
        move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            let pages = i64::from(pages);
            if pages >= behind {
                // As SQLite's own automatic checkpoint: an error here is not the commit's (it is done).
                if let Err(err) = wal.checkpoint() {
                    tracing::warn!(error = %err, "copying the audit WAL into the database failed");
                }
            } else if pages >= wake {
                // Full: a wake-up is already waiting.
                let _ = copy.try_send(CopyWal::Now);
            }
            Ok(())
        },
    ));
    if let Err(err) = hooked {
        tracing::warn!(error = %err, "cannot watch the audit WAL; it is copied every second");
    }
}

/// Copies committed WAL pages into the database file every [`WAL_COPY_EVERY`], and when the writer asks
/// (a passive SQLite checkpoint, synced: the WAL before, the database after), so the writer seldom does it
/// on a commit's path. Stops when asked to, or when the writer's end is dropped.
fn copy_wal(path: &Path, asked: &std::sync::mpsc::Receiver<CopyWal>) {
    let conn = match open_connection(path) {
        Ok(conn) => conn,
        Err(err) => {
            tracing::warn!(error = %err, "cannot open the WAL copier's connection");
            return;
        }
    };
    loop {
        match asked.recv_timeout(WAL_COPY_EVERY) {
            Ok(CopyWal::Now) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Ok(CopyWal::Stop) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %err, "copying the audit WAL into the database failed");
        }
    }
}

// === writer thread ===

/// One answered group's rows, for the index: its frame, the events of its records (in the frame's order)
/// and where its frame ends in the log.
struct Rows {
    frame: Frame,
    events: Vec<AuditEvent>,
    end: LogPosition,
}

/// Inserts an answered group's rows into the open index transaction: its records (with their guard
/// findings), payloads and checkpoints, and the log position after its frame.
fn insert_rows(conn: &Connection, rows: &Rows) -> Result<(), AuditError> {
    for (record, event) in rows.frame.records.iter().zip(&rows.events) {
        insert_record(conn, record, event)?;
    }
    for payload in &rows.frame.payloads {
        insert_payload(conn, payload, false)?;
    }
    for checkpoint in &rows.frame.checkpoints {
        insert_checkpoint(conn, checkpoint, false)?;
    }
    set_log_position(conn, rows.end).map_err(write_err)
}

/// The write connection, and the thread that builds the index with it.
///
/// The rows of an answered group are inserted on the index thread (`audit-index`) while the writer
/// chains, seals, logs and answers the next groups: the two halves of a record's write run on two cores.
/// The connection goes to the index thread with the first rows and stays there, taking the rows of every
/// group that follows, until the writer needs the database (a look-up, a commit, a rollback, a replay) and
/// asks for it back ([`Index::back`]): it then comes back once every group handed over is in, with their
/// result. So it is only ever used by one thread at a time, and every read and write of the writer sees the
/// rows of every group it answered.
struct Index {
    /// The connection, when it is here; `None` while the index thread has it.
    conn: Option<Connection>,
    /// The result of the rows inserted since the connection last came back, until it is taken.
    rows: Result<(), AuditError>,
    /// To the index thread; `None` when it could not be started (the rows are then inserted here).
    send: Option<std::sync::mpsc::SyncSender<ToIndex>>,
    returned: std::sync::mpsc::Receiver<(Connection, Result<(), AuditError>)>,
    thread: Option<thread::JoinHandle<()>>,
}

/// What the writer sends the index thread.
enum ToIndex {
    /// The write connection, in the open transaction.
    Take(Connection),
    /// An answered group's rows, for the transaction.
    Rows(Rows),
    /// Send the connection back, with the result of the rows since it came.
    GiveBack,
}

/// Groups whose rows may wait for the index thread; the writer waits when it is further ahead.
const INDEX_QUEUE: usize = 4;

/// The index thread: inserts the rows it is sent with the connection it holds. After rows fail it skips the
/// rest (the writer rolls the transaction back and replays them from the log) until it gives the connection
/// back with the failure.
fn index_rows(
    asked: &std::sync::mpsc::Receiver<ToIndex>,
    give_back: &std::sync::mpsc::Sender<(Connection, Result<(), AuditError>)>,
) {
    let mut conn = None;
    let mut result = Ok(());
    for message in asked {
        match message {
            ToIndex::Take(taken) => conn = Some(taken),
            ToIndex::Rows(rows) => {
                if result.is_ok() {
                    result = match &conn {
                        Some(conn) => insert_rows(conn, &rows),
                        None => Err(AuditError::Unavailable(
                            "the audit index thread has no connection".into(),
                        )),
                    };
                }
            }
            ToIndex::GiveBack => {
                if let Some(conn) = conn.take()
                    && give_back
                        .send((conn, std::mem::replace(&mut result, Ok(()))))
                        .is_err()
                {
                    return;
                }
            }
        }
    }
}

impl Index {
    /// The write connection and its index thread.
    fn start(conn: Connection) -> Self {
        let (send, asked) = std::sync::mpsc::sync_channel::<ToIndex>(INDEX_QUEUE);
        let (give_back, returned) = std::sync::mpsc::channel();
        let thread = thread::Builder::new()
            .name("audit-index".into())
            .spawn(move || {
                crate::sched::run_in_batches("audit-index");
                index_rows(&asked, &give_back);
            });
        match thread {
            Ok(thread) => Self {
                conn: Some(conn),
                rows: Ok(()),
                send: Some(send),
                returned,
                thread: Some(thread),
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot start the audit index thread; the writer indexes");
                Self::here(conn)
            }
        }
    }

    /// The write connection with no index thread: rows are inserted on the writer's thread.
    fn here(conn: Connection) -> Self {
        Self {
            conn: Some(conn),
            rows: Ok(()),
            send: None,
            returned: std::sync::mpsc::channel().1,
            thread: None,
        }
    }

    /// The connection, once every group handed over is in, and their result (taken: reported once).
    fn back(&mut self) -> Result<(&mut Connection, Result<(), AuditError>), AuditError> {
        if self.conn.is_none() {
            let stopped = || AuditError::Unavailable("the audit index thread has stopped".into());
            let send = self.send.as_ref().ok_or_else(stopped)?;
            send.send(ToIndex::GiveBack).map_err(|_| stopped())?;
            let (conn, rows) = self.returned.recv().map_err(|_| stopped())?;
            self.conn = Some(conn);
            self.rows = rows;
        }
        let rows = std::mem::replace(&mut self.rows, Ok(()));
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| AuditError::Unavailable("the audit index thread has stopped".into()))?;
        Ok((conn, rows))
    }

    /// Whether rows handed over can still go in: the connection is here, or the index thread is running.
    fn alive(&self) -> bool {
        self.conn.is_some() || self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Hands `rows` to the index thread (with the connection, if it is here).
    fn lend(&mut self, rows: Rows) -> Result<(), AuditError> {
        let stopped = || AuditError::Unavailable("the audit index thread has stopped".into());
        match &self.send {
            Some(send) => {
                if let Some(conn) = self.conn.take() {
                    send.send(ToIndex::Take(conn)).map_err(|_| stopped())?;
                }
                send.send(ToIndex::Rows(rows)).map_err(|_| stopped())
            }
            None => {
                let conn = self.conn.as_ref().ok_or_else(stopped)?;
                if self.rows.is_ok() {
                    self.rows = insert_rows(conn, &rows);
                }
                Ok(())
            }
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which drops the connection if it still holds it.
        self.send = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the audit index thread panicked");
        }
    }
}

/// The chain and the checkpoint log as the last group answered in the open transaction left them.
#[derive(Debug, Clone)]
struct OpenHead {
    /// The chain's last sequence and record hash.
    sequence: u64,
    hash: String,
    /// The last chain sequence a checkpoint covers.
    checkpointed: u64,
    /// The checkpoint log's last sequence and checkpoint hash.
    checkpoint_log: (u64, String),
}

struct Writer {
    chain_id: String,
    /// See [`EmbeddedStore::settle`].
    settle: Arc<Settle>,
    /// The index transaction left open for answered groups (see [`COMMIT_EVERY`]): when it began and how
    /// many records it holds.
    uncommitted: Option<(Instant, usize)>,
    /// Where the last frame answered in the open index transaction ends.
    answered_end: Option<LogPosition>,
    /// The chain's and the checkpoint log's heads as the last group answered in the open transaction left
    /// them: nothing else writes while it is open, so the next group in it need not read them again.
    /// `None` when no transaction is open, and after a group that failed.
    open_head: Option<OpenHead>,
    /// The data keys read in the open transaction, unwrapped (a key is erased only under the write lock,
    /// which the open transaction holds).
    keys: BTreeMap<String, AeadKey>,
    /// At least every record id the database held when the open transaction began ([`refuse_known_ids`]);
    /// `None`: not known.
    id_ceiling: Option<Uuid>,
    /// The ids of the open transaction's records, its rows in flight included.
    open_ids: HashSet<Uuid>,
    /// The open transaction of answered groups was rolled back (its commit, or a later group, failed):
    /// their frames are in the log from the position the database holds up to this one, and are replayed
    /// before any other frame is written (never overwritten).
    replay_to: Option<LogPosition>,
    signer: Arc<dyn CheckpointSigner>,
    master: MasterKey,
    log: RecordLog,
    db_path: PathBuf,
    log_wrap: u64,
    every: u64,
    interval: Duration,
    last_checkpoint: Instant,
}

/// Room an event's JSON is encoded into at first.
const EVENT_JSON_CAPACITY: usize = 2048;

/// One append as the writer takes it. The caller encodes the event and the payload on its own thread, so
/// the writer, which every record passes through one at a time, only links, hashes and seals.
struct Append {
    event: AuditEvent,
    /// `serde_json::to_vec(&event)`: the record's canonical bytes but for the chain's fields
    /// ([`AuditRecord::canonical_bytes_of_encoded`]).
    event_json: Vec<u8>,
    /// The payload's plaintext (its JSON) and the period whose data key seals it.
    payload: Option<(String, Vec<u8>)>,
}

impl Append {
    fn new(event: AuditEvent, payload: Option<&Payload>) -> Result<Self, AuditError> {
        let encode = |e: serde_json::Error| AuditError::Encode(e.to_string());
        // Sized for what is written, so the encoder does not grow the buffer (copying it) as it goes: an
        // event is one to two kilobytes; a payload its two texts and their escapes.
        let mut event_json = Vec::with_capacity(EVENT_JSON_CAPACITY);
        serde_json::to_writer(&mut event_json, &event).map_err(encode)?;
        let payload = match payload {
            Some(payload) => {
                let text = payload.prompt.len() + payload.response.len();
                let mut json = Vec::with_capacity(text + text / 8 + 32);
                serde_json::to_writer(&mut json, payload).map_err(encode)?;
                Some((period_of(event.timestamp), json))
            }
            None => None,
        };
        Ok(Self {
            event,
            event_json,
            payload,
        })
    }
}

impl Writer {
    fn run(mut self, mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        let (copy, copy_asked) = std::sync::mpsc::sync_channel::<CopyWal>(1);
        let path = self.db_path.clone();
        let copier = thread::Builder::new()
            .name("audit-wal-copy".into())
            .spawn(move || {
                crate::sched::run_in_batches("audit-wal-copy");
                copy_wal(&path, &copy_asked);
            });
        match &copier {
            Ok(_) => wake_copier_when_behind(&mut conn, copy.clone()),
            Err(err) => tracing::warn!(
                error = %err,
                "cannot start the WAL copier; the writer copies the WAL itself"
            ),
        }
        let mut index = Index::start(conn);
        let mut appends: Vec<Append> = Vec::with_capacity(MAX_GROUP);
        let mut last_group = 0;
        let mut replies: Vec<Reply<AuditReceipt>> = Vec::with_capacity(MAX_GROUP);
        let mut checkpoints: Vec<Reply<Option<SignedCheckpoint>>> = Vec::new();
        loop {
            let mut wait = self.interval.saturating_sub(self.last_checkpoint.elapsed());
            if let Some((since, _)) = self.uncommitted {
                wait = wait.min(COMMIT_EVERY.saturating_sub(since.elapsed()));
            }
            let asked = &self.settle.asked;
            let woke = match &timer {
                Ok(rt) => rt.block_on(async {
                    tokio::select! {
                        job = rx.recv() => Some(job),
                        () = asked.notified() => None,
                        () = tokio::time::sleep(wait) => None,
                    }
                }),
                Err(_) => Some(rx.blocking_recv()),
            };
            let first = match woke {
                // A read asked for the index, or a deadline came.
                None => {
                    if let Err(err) = self.commit_open(&mut index) {
                        tracing::error!(error = %err, "audit index commit failed");
                    }
                    if self.last_checkpoint.elapsed() >= self.interval
                        && let Err(err) = self.checkpoint_if_moved(&mut index)
                    {
                        tracing::error!(error = %err, "audit checkpoint failed");
                    }
                    continue;
                }
                Some(None) => break,
                Some(Some(job)) => job,
            };
            let mut next = Some(first);
            let gather_until = Instant::now() + GATHER_WAIT;
            loop {
                while let Some(job) = next.take() {
                    match job {
                        Job::Append(append, reply) => {
                            appends.push(*append);
                            replies.push(reply);
                        }
                        Job::Checkpoint(reply) => checkpoints.push(reply),
                    }
                    if appends.len() < MAX_GROUP {
                        next = rx.try_recv().ok();
                    }
                }
                // Under load, the callers the last group answered are still coming back with their next
                // records: wait a moment for most of them rather than spend a sync on a few.
                if appends.len() >= MAX_GROUP
                    || appends.len() * 4 >= last_group * 3
                    || !checkpoints.is_empty()
                {
                    break;
                }
                let left = gather_until.saturating_duration_since(Instant::now());
                let Ok(rt) = &timer else { break };
                if left.is_zero() {
                    break;
                }
                match rt.block_on(async { tokio::time::timeout(left, rx.recv()).await }) {
                    Ok(Some(job)) => next = Some(job),
                    // Closed (handled by the next receive) or waited long enough.
                    Ok(None) | Err(_) => break,
                }
            }
            last_group = appends.len();
            if !appends.is_empty() {
                let count = appends.len();
                match self.write_group(&mut index, std::mem::take(&mut appends), &mut replies) {
                    Ok(()) => {}
                    Err(err) => {
                        tracing::error!(error = %err, records = count, "audit group commit failed");
                        for reply in replies.drain(..) {
                            let _ = reply.send(Err(AuditError::Write(err.to_string())));
                        }
                    }
                }
            }
            // Without a timer no deadline could be kept: every group commits at once.
            if (timer.is_err() || self.commit_due())
                && let Err(err) = self.commit_open(&mut index)
            {
                tracing::error!(error = %err, "audit index commit failed");
            }
            for reply in checkpoints.drain(..) {
                let _ = reply.send(self.checkpoint_if_moved(&mut index));
            }
        }
        // The store was dropped: commit and checkpoint what this writer left uncovered.
        if let Err(err) = self.checkpoint_if_moved(&mut index) {
            tracing::error!(error = %err, "closing audit checkpoint failed");
        }
        drop(index);
        // A wake-up still queued is taken first; a copier that is gone has dropped its end.
        let _ = copy.send(CopyWal::Stop);
        if let Ok(copier) = copier
            && copier.join().is_err()
        {
            tracing::error!("the audit WAL copier panicked");
        }
    }

    /// Writes `frame` to the log at the position `conn`'s transaction holds, syncs it and records the new
    /// position in that transaction. If the write or sync fails the position is unchanged, so the next frame
    /// is written over this one.
    fn log_frame(&mut self, conn: &Connection, frame: &Frame) -> Result<LogPosition, AuditError> {
        let at = log_position(conn).map_err(write_err)?;
        let next = self.log.append(at, frame)?;
        set_log_position(conn, next).map_err(write_err)?;
        Ok(next)
    }

    /// Logs `frame` ([`Self::log_frame`]) and commits `tx`. If the commit fails, the frame is replayed from
    /// the log before another is written.
    fn commit_logged(
        &mut self,
        tx: Transaction<'_>,
        frame: &Frame,
    ) -> Result<LogPosition, AuditError> {
        let next = self.log_frame(&tx, frame)?;
        if let Err(err) = tx.commit() {
            self.replay_to = Some(next);
            return Err(write_err(err));
        }
        Ok(next)
    }

    /// Applies the answered frames a failed commit left in the log; until that succeeds nothing else is
    /// written (callers get the error: no answer without a durable record).
    fn replay_if_needed(&mut self, conn: &mut Connection) -> Result<(), AuditError> {
        if let Some(to) = self.replay_to {
            replay_log(conn, &self.db_path, Some(to))?;
            self.replay_to = None;
        }
        Ok(())
    }

    /// The write connection, once the rows in flight are in the open transaction. If they failed, the open
    /// transaction is first rolled back and its answered frames replayed ([`Self::abandon_open`]).
    fn db<'i>(&mut self, index: &'i mut Index) -> Result<&'i mut Connection, AuditError> {
        let (conn, rows) = index.back()?;
        if let Err(err) = rows {
            tracing::error!(
                error = %err,
                "audit index rows failed; the answered records are restored from the log"
            );
            self.abandon_open(conn);
        }
        Ok(conn)
    }

    fn checkpoint_if_moved(
        &mut self,
        index: &mut Index,
    ) -> Result<Option<SignedCheckpoint>, AuditError> {
        self.commit_open(index)?;
        let conn = self.db(index)?;
        self.replay_if_needed(conn)?;
        self.last_checkpoint = Instant::now();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(write_err)?;
        let (sequence, hash) = chain_head(&tx, &self.chain_id)?;
        if sequence <= last_checkpointed(&tx, &self.chain_id)? {
            return Ok(None);
        }
        let (checkpoint, logged) = append_checkpoint(
            &tx,
            self.signer.as_ref(),
            CheckpointKind::Periodic,
            &self.chain_id,
            sequence,
            &hash,
        )?;
        let frame = Frame {
            checkpoints: vec![logged],
            ..Frame::default()
        };
        let next = self.commit_logged(tx, &frame)?;
        wrap_log_if_due(conn, next, self.log_wrap);
        Ok(Some(checkpoint))
    }

    /// Writes `batch` as one group and answers `replies` (one per append, in order) once it is durable: its
    /// log frame synced. Its rows join the open index transaction on the index thread ([`Index`]), which
    /// commits later for several groups at once ([`Self::commit_open`]). On an error the open transaction
    /// is rolled back and the groups answered in it are replayed from the log ([`Self::abandon_open`]); the
    /// replies of a group that failed before its answer are left in `replies`.
    fn write_group(
        &mut self,
        index: &mut Index,
        batch: Vec<Append>,
        replies: &mut Vec<Reply<AuditReceipt>>,
    ) -> Result<(), AuditError> {
        // No savepoint per group: inside one, SQLite copies every page before its first change, which cost
        // the writer about a tenth of its time. A failed group is rare; undoing it takes the whole open
        // transaction and a replay of what was answered in it.
        let written = self
            .prepare_group(index, batch, replies)
            .and_then(|batch| self.write_answered(index, batch, replies));
        match written {
            Ok(count) => {
                if let Some((_, records)) = &mut self.uncommitted {
                    *records += count;
                }
                Ok(())
            }
            Err(err) => {
                if let Ok(conn) = self.db(index) {
                    self.abandon_open(conn);
                }
                Err(err)
            }
        }
    }

    /// What a group needs from the database before it is chained: an open transaction (its first group
    /// reads the chain's and the checkpoint log's heads, the log position and the highest record id), the
    /// data keys of its payloads' periods, and a look-up of any record id that may already be stored
    /// ([`refuse_known_ids`]). Inside the open transaction a group usually needs none of it, and then it
    /// does not wait for the rows in flight. Returns the appends that are kept.
    fn prepare_group(
        &mut self,
        index: &mut Index,
        batch: Vec<Append>,
        replies: &mut Vec<Reply<AuditReceipt>>,
    ) -> Result<Vec<Append>, AuditError> {
        let ready = index.alive()
            && self.uncommitted.is_some()
            && self.replay_to.is_none()
            && self.open_head.is_some()
            && self.answered_end.is_some()
            && self.periods_without_keys(&batch).is_empty()
            && self
                .id_ceiling
                .is_some_and(|ceiling| batch.iter().all(|append| append.event.id > ceiling));
        if ready {
            return Ok(refuse_known_ids(
                None,
                self.id_ceiling,
                &mut self.open_ids,
                batch,
                replies,
            ));
        }
        self.ensure_data_keys(index, &batch)?;
        let conn = self.db(index)?;
        self.replay_if_needed(conn)?;
        if self.uncommitted.is_none() {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(write_err)?;
            self.uncommitted = Some((Instant::now(), 0));
            self.id_ceiling = highest_id(conn);
            self.open_ids.clear();
            self.open_head = None;
            self.answered_end = None;
            self.keys.clear();
        }
        if self.open_head.is_none() {
            let (sequence, hash) = chain_head(conn, &self.chain_id)?;
            self.open_head = Some(OpenHead {
                sequence,
                hash,
                checkpointed: last_checkpointed(conn, &self.chain_id)?,
                checkpoint_log: checkpoint_log_head(conn)?,
            });
        }
        if self.answered_end.is_none() {
            self.answered_end = Some(log_position(conn).map_err(write_err)?);
        }
        for period in self.periods_without_keys(&batch) {
            let key = self.data_key(conn, period)?;
            self.keys.insert(period.to_owned(), key);
        }
        Ok(refuse_known_ids(
            Some(conn),
            self.id_ceiling,
            &mut self.open_ids,
            batch,
            replies,
        ))
    }

    /// The inside of [`Self::write_group`], once [`Self::prepare_group`] has what it needs: the records
    /// chained and their frame written to the log and synced, the callers answered, then the group's rows
    /// handed to the index thread. Returns how many records.
    ///
    /// The rows come after the answer, off the callers' time and on another core: a record is durable once
    /// its frame is synced, and the index is built from the same bytes. Nothing a caller sends can make a
    /// row fail (a record id already stored is refused before the frame, [`refuse_known_ids`]), so a row
    /// that fails fails for the store's own reasons (a full disk, an I/O error): the open transaction is
    /// then rolled back and its answered frames, this one included, replayed before any other frame is
    /// written.
    fn write_answered(
        &mut self,
        index: &mut Index,
        batch: Vec<Append>,
        replies: &mut Vec<Reply<AuditReceipt>>,
    ) -> Result<usize, AuditError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let count = batch.len();
        let chain_id = self.chain_id.clone();
        // Taken, so that a group that fails leaves the next one to read the database again.
        let (Some(mut head), Some(at)) = (self.open_head.take(), self.answered_end) else {
            return Err(AuditError::Write(
                "the audit writer lost its transaction's state".into(),
            ));
        };
        let mut receipts = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut frame = Frame::default();
        frame.records.reserve(batch.len());
        let mut checkpoint_written = false;
        for Append {
            event,
            event_json,
            payload,
        } in batch
        {
            head.sequence += 1;
            let sequence = head.sequence;
            let body = AuditRecord::canonical_bytes_of_encoded(
                &chain_id,
                sequence,
                &head.hash,
                &event_json,
            )
            .map_err(|e| AuditError::Encode(e.to_string()))?;
            let hash = sha256_hex(&body);
            let body = String::from_utf8(body).map_err(|e| AuditError::Encode(e.to_string()))?;
            frame.records.push(LoggedRecord {
                chain_id: chain_id.clone(),
                sequence,
                record_hash: hash.clone(),
                body,
            });
            if let Some((period, plain)) = payload {
                let key = self.keys.get(&period).ok_or_else(|| {
                    AuditError::Write(format!("period {period} has no data key at hand"))
                })?;
                frame
                    .payloads
                    .push(logged_payload(key, &event, period, &plain)?);
            }
            // Every `every` records exactly, in the transaction that commits the record it covers.
            if sequence.saturating_sub(head.checkpointed) >= self.every {
                let (_, logged) = sign_checkpoint(
                    &head.checkpoint_log,
                    self.signer.as_ref(),
                    CheckpointKind::Periodic,
                    &chain_id,
                    sequence,
                    &hash,
                )?;
                head.checkpoint_log = (logged.sequence, logged.checkpoint_hash.clone());
                frame.checkpoints.push(logged);
                head.checkpointed = sequence;
                checkpoint_written = true;
            }
            receipts.push(AuditReceipt {
                id: event.id,
                chain_id: chain_id.clone(),
                sequence,
                record_hash: hash.clone(),
            });
            events.push(event);
            head.hash = hash;
        }
        // The callers are answered as soon as the frame is durable; the index holds their records once the
        // open transaction commits, and the store's reads wait for that (`Settle`). The frame goes where the
        // last one answered in the open transaction ended; the index records the new position with the
        // group's rows.
        let end = self.log.append(at, &frame)?;
        self.answered_end = Some(end);
        self.settle.answering();
        for (reply, receipt) in replies.drain(..).zip(receipts) {
            // A caller that went away (client disconnected) no longer needs the receipt.
            let _ = reply.send(Ok(receipt));
        }
        if checkpoint_written {
            self.last_checkpoint = Instant::now();
        }
        // Rows that fail are found when the writer next takes the connection back ([`Self::db`]): the open
        // transaction is then rolled back and every group answered in it, this one included, replayed.
        index.lend(Rows { frame, events, end })?;
        self.open_head = Some(head);
        Ok(count)
    }

    /// Whether the open index transaction is due: open for [`COMMIT_EVERY`] or holding
    /// [`MAX_UNCOMMITTED`] records.
    fn commit_due(&self) -> bool {
        self.uncommitted.is_some_and(|(since, records)| {
            since.elapsed() >= COMMIT_EVERY || records >= MAX_UNCOMMITTED
        })
    }

    /// Commits the open index transaction once the rows in flight are in it, starts the log over if that is
    /// due, and lets waiting reads in.
    fn commit_open(&mut self, index: &mut Index) -> Result<(), AuditError> {
        let conn = self.db(index)?;
        if self.uncommitted.is_none() {
            return Ok(());
        }
        if let Err(err) = conn.execute_batch("COMMIT") {
            self.abandon_open(conn);
            return Err(write_err(err));
        }
        self.uncommitted = None;
        self.answered_end = None;
        self.open_head = None;
        self.keys.clear();
        self.open_ids.clear();
        if let Ok(at) = log_position(conn) {
            wrap_log_if_due(conn, at, self.log_wrap);
        }
        self.settle.settled();
        Ok(())
    }

    /// The open transaction could not be committed, or a group in it failed: it is rolled back, and the
    /// frames answered in it, in the log after the position the database holds, are replayed before any
    /// other frame is written. A frame after them (the failed group's, if it was written) is not replayed;
    /// the next frame is written over it. `conn` must be back from the index thread ([`Index::back`]).
    fn abandon_open(&mut self, conn: &mut Connection) {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.uncommitted = None;
        self.open_head = None;
        self.keys.clear();
        self.open_ids.clear();
        if let Some(end) = self.answered_end.take() {
            self.replay_to = Some(end);
        }
        // At once if it can be, so that the reads let in below find every answered record; if not, before
        // anything else is written.
        if let Err(err) = self.replay_if_needed(conn) {
            tracing::error!(error = %err, "cannot restore answered audit records from the log yet");
        }
        self.settle.settled();
    }

    /// Creates the data key of every period a payload of `batch` needs and lacks, synced to the database
    /// before any payload sealed under it is acknowledged (keys are never in the log, so erasing a key's row
    /// leaves no copy behind).
    fn ensure_data_keys(&mut self, index: &mut Index, batch: &[Append]) -> Result<(), AuditError> {
        let periods = self.periods_without_keys(batch);
        if periods.is_empty() {
            return Ok(());
        }
        let conn = self.db(index)?;
        let mut missing = BTreeSet::new();
        for period in periods {
            let known = conn
                .prepare_cached("SELECT 1 FROM data_keys WHERE period = ?1")
                .and_then(|mut stmt| stmt.exists(params![period]))
                .map_err(write_err)?;
            if !known {
                missing.insert(period);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        self.commit_open(index)?;
        let conn = self.db(index)?;
        synced_transaction(conn, |tx| {
            for period in &missing {
                let (_, wrapped) = self.master.new_data_key(period)?;
                tx.execute(
                    "INSERT OR IGNORE INTO data_keys (period, wrapped_key, created_unix_ms) VALUES (?1, ?2, ?3)",
                    params![period, wrapped, unix_ms(OffsetDateTime::now_utc())],
                )
                .map_err(write_err)?;
            }
            Ok(())
        })
    }

    /// The periods `batch` seals payloads under whose data keys the open transaction has not read yet.
    fn periods_without_keys<'b>(&self, batch: &'b [Append]) -> BTreeSet<&'b str> {
        batch
            .iter()
            .filter_map(|append| append.payload.as_ref().map(|(period, _)| period.as_str()))
            .filter(|period| !self.keys.contains_key(*period))
            .collect()
    }

    /// The data key of `period`, unwrapped; an error if the period has none or was erased (it takes no new
    /// payloads).
    fn data_key(&self, tx: &Connection, period: &str) -> Result<AeadKey, AuditError> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> = tx
            .prepare_cached("SELECT wrapped_key, erased_unix_ms FROM data_keys WHERE period = ?1")
            .and_then(|mut stmt| {
                stmt.query_row(params![period], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(write_err)?;
        match row {
            Some((Some(wrapped), None)) => self.master.unwrap_data_key(period, &wrapped),
            Some(_) => Err(AuditError::Write(format!(
                "period {period} was erased; it takes no new payloads"
            ))),
            None => Err(AuditError::Write(format!(
                "period {period} has no data key"
            ))),
        }
    }
}

/// A payload's plaintext sealed under its period's data key and bound to its record (as
/// [`crate::seal_payload`] does with a raw key), as the log holds it.
fn logged_payload(
    key: &AeadKey,
    event: &AuditEvent,
    period: String,
    plain: &[u8],
) -> Result<LoggedPayload, AuditError> {
    let id = event.id.to_string();
    let sealed = key.seal(&payload_aad(&id, &period), plain)?;
    Ok(LoggedPayload {
        record_id: id,
        period,
        sealed,
    })
}

#[async_trait]
impl AuditSink for EmbeddedStore {
    async fn append(
        &self,
        mut event: AuditEvent,
        payload: Option<Payload>,
    ) -> Result<AuditReceipt, AuditError> {
        if let Some(payload) = &payload {
            payload.stamp(&mut event);
        }
        let queue = self.queue.as_ref().ok_or_else(read_only)?;
        let append = Append::new(event, payload.as_ref())?;
        let (reply, receipt) = oneshot::channel();
        queue
            .send(Job::Append(Box::new(append), reply))
            .await
            .map_err(|_| AuditError::Unavailable("the writer thread has stopped".into()))?;
        receipt.await.map_err(|_| {
            AuditError::Unavailable("the writer thread stopped before committing".into())
        })?
    }

    async fn health(&self) -> Result<(), AuditError> {
        match &self.queue {
            Some(queue) if !queue.is_closed() => {}
            Some(_) => {
                return Err(AuditError::Unavailable(
                    "the writer thread has stopped".into(),
                ));
            }
            None => return Err(read_only()),
        }
        self.with_reader(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use causeway_contract::TokenUsage;

    use super::*;

    fn event(user: &str) -> AuditEvent {
        let id = Uuid::now_v7();
        AuditEvent {
            id,
            call_id: id,
            timestamp: time::OffsetDateTime::now_utc(),
            request_id: "req".into(),
            spoke_account: Some("111122223333".into()),
            user_sub: Some(user.into()),
            user_issuer: None,
            data_classification: None,
            model_id: None,
            model_version: None,
            provider: None,
            catalog_version: "c".into(),
            reasons: vec![],
            usage: TokenUsage::default(),
            latency_us: 1,
            ..AuditEvent::sample()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_appends_form_one_verified_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(EmbeddedStore::open(dir.path().join("audit.db")).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.spawn(async move { store.append(event(&format!("user{}", i % 3)), None).await });
        }
        let mut sequences = Vec::new();
        while let Some(done) = tasks.join_next().await {
            sequences.push(done.unwrap().unwrap().sequence);
        }
        sequences.sort_unstable();
        assert_eq!(sequences, (1..=200).collect::<Vec<_>>());
        assert_eq!(store.count().unwrap(), 200);
        assert_eq!(store.verify().unwrap(), None);
        let alice = store
            .query(&RecordFilter {
                user_sub: Some("user1".into()),
                ..RecordFilter::default()
            })
            .unwrap();
        assert_eq!(alice.len(), 67);
        assert!(
            alice
                .iter()
                .all(|(r, _)| r.event.user_sub.as_deref() == Some("user1"))
        );
    }

    /// A commit that leaves more than [`WAL_WAKE_COPIER`] bytes in the WAL wakes the copier at once; a
    /// small one does not.
    #[test]
    fn a_commit_that_grows_the_wal_past_the_mark_wakes_the_copier() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("audit.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        let (copy, asked) = std::sync::mpsc::sync_channel(1);
        wake_copier_when_behind(&mut conn, copy);
        conn.execute("INSERT INTO t VALUES (zeroblob(1000))", [])
            .unwrap();
        assert!(asked.try_recv().is_err(), "a small commit woke the copier");
        let size = WAL_WAKE_COPIER;
        conn.execute("INSERT INTO t VALUES (zeroblob(?1))", [size])
            .unwrap();
        assert!(matches!(asked.try_recv(), Ok(CopyWal::Now)));
    }

    fn page_size(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .unwrap()
    }

    /// A new store has pages of [`PAGE_SIZE`]; a store made with SQLite's default 4 KiB pages keeps them,
    /// and is written and verified as before.
    #[tokio::test]
    async fn a_new_store_has_its_page_size_and_an_older_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.db");
        let store = EmbeddedStore::open(&new).unwrap();
        store.append(event("a"), None).await.unwrap();
        store.close();
        assert_eq!(page_size(&new), PAGE_SIZE);

        let older = dir.path().join("older.db");
        let conn = Connection::open(&older).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;"))
            .unwrap();
        drop(conn);
        for round in 0..2 {
            let store = EmbeddedStore::open(&older).unwrap();
            for n in 0..3 {
                store
                    .append(event(&format!("u{round}{n}")), None)
                    .await
                    .unwrap();
            }
            assert_eq!(store.verify().unwrap(), None);
            assert_eq!(store.count().unwrap(), 3 * (round + 1));
            store.close();
        }
        assert_eq!(page_size(&older), 4096);
    }

    /// A closed store holding one record, with its chain id.
    async fn store_with_one_record() -> (tempfile::TempDir, PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = EmbeddedStore::open(&path).unwrap();
        let chain_id = store.append(event("a"), None).await.unwrap().chain_id;
        drop(store);
        (dir, path, chain_id)
    }

    /// A writer on the store at `path` (made by [`store_with_one_record`]), driven by the test itself, and its
    /// connection with the index thread.
    fn writer_on(dir: &Path, path: &Path, chain_id: &str) -> (Writer, Index) {
        let conn = open_connection(path).unwrap();
        plan_once(&conn).unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let id = log_id(&conn).unwrap().unwrap();
        let writer = Writer {
            chain_id: chain_id.to_owned(),
            settle: Arc::new(Settle::default()),
            uncommitted: None,
            answered_end: None,
            open_head: None,
            keys: BTreeMap::new(),
            id_ceiling: None,
            open_ids: HashSet::new(),
            replay_to: None,
            signer: Arc::new(Ed25519FileSigner::load_or_create(dir).unwrap()),
            master: MasterKey::load_or_create(dir).unwrap(),
            log: RecordLog::open(path, id).unwrap(),
            db_path: path.to_owned(),
            log_wrap: 64 << 20,
            every: 1000,
            interval: Duration::from_secs(3600),
            last_checkpoint: Instant::now(),
        };
        (writer, Index::start(conn))
    }

    /// The write connection, back from the index thread with rows that went in.
    fn conn(index: &mut Index) -> &mut Connection {
        let (conn, rows) = index.back().unwrap();
        rows.unwrap();
        conn
    }

    impl Writer {
        /// Waits for the rows in flight; their error, once the open transaction is abandoned for it.
        fn rows_in(&mut self, index: &mut Index) -> Result<(), AuditError> {
            let (conn, rows) = index.back()?;
            if let Err(err) = rows {
                self.abandon_open(conn);
                return Err(err);
            }
            Ok(())
        }
    }

    /// Writes one append for `user` as a group, and unless `in_flight` waits for its rows; then commits if
    /// `commit`. Returns the group's result and the caller's answer (`None`: never answered).
    fn group(
        writer: &mut Writer,
        index: &mut Index,
        user: &str,
        in_flight: bool,
        commit: bool,
    ) -> (
        Result<(), AuditError>,
        Option<Result<AuditReceipt, AuditError>>,
    ) {
        let (reply, answer) = oneshot::channel();
        let mut replies = vec![reply];
        let mut result = writer.write_group(
            index,
            vec![Append::new(event(user), None).unwrap()],
            &mut replies,
        );
        if !in_flight {
            result = result.and_then(|()| writer.rows_in(index));
        }
        if commit {
            result = result.and_then(|()| writer.commit_open(index));
        }
        drop(replies);
        (result, answer.blocking_recv().ok())
    }

    /// The store at `path` holds `count` records, among them each of `answered` as it was answered, and
    /// verifies.
    fn assert_restored(path: &Path, count: u64, answered: &[&AuditReceipt]) {
        let store = EmbeddedStore::open_read_only(path, None).unwrap();
        assert_eq!(store.count().unwrap(), count);
        for receipt in answered {
            let (record, hash) = store.get(receipt.id).unwrap().unwrap();
            assert_eq!(
                (record.sequence, hash),
                (receipt.sequence, receipt.record_hash.clone())
            );
        }
        assert_eq!(store.verify().unwrap(), None);
    }

    /// Makes the index refuse the rows of `user`'s records, as a full disk would, until the open
    /// transaction is rolled back (the trigger is created in it).
    fn refuse_rows_of(conn: &Connection, user: &str) {
        conn.execute_batch(&format!(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.records WHEN NEW.user_sub = '{user}'
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        ))
        .unwrap();
    }

    /// [`group`], its rows in.
    fn one_group(
        writer: &mut Writer,
        index: &mut Index,
        user: &str,
        commit: bool,
    ) -> (
        Result<(), AuditError>,
        Option<Result<AuditReceipt, AuditError>>,
    ) {
        group(writer, index, user, false, commit)
    }

    /// A group whose rows fail after its answer takes the open transaction with it, and the groups answered
    /// before it in that transaction; all of them are replayed from the log before the next frame.
    #[tokio::test(flavor = "multi_thread")]
    async fn rows_that_fail_after_the_answer_are_replayed_with_the_groups_before_them() {
        let (dir, path, chain_id) = store_with_one_record().await;
        let (mut writer, mut index) = writer_on(dir.path(), &path, &chain_id);
        tokio::task::block_in_place(|| {
            let (written, b) = one_group(&mut writer, &mut index, "b", false);
            written.unwrap();
            let b = b.unwrap().unwrap();
            assert_eq!(b.sequence, 2);
            assert!(
                writer.uncommitted.is_some(),
                "b's rows wait for the deferred commit"
            );
            refuse_rows_of(conn(&mut index), "c");
            let (failed, c) = one_group(&mut writer, &mut index, "c", false);
            assert!(
                matches!(&failed, Err(AuditError::Write(m)) if m.contains("disk full")),
                "{failed:?}"
            );
            let c = c.unwrap().unwrap();
            assert_eq!(c.sequence, 3, "c was answered: its frame is durable");
            let conn = conn(&mut index);
            assert!(conn.is_autocommit(), "the open transaction was rolled back");
            assert_eq!(writer.replay_to, None, "b and c were restored at once");
            let stored: i64 = conn
                .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
                .unwrap();
            assert_eq!(stored, 3);
            conn.execute_batch("DROP TRIGGER IF EXISTS temp.refuse")
                .unwrap();

            let (written, d) = one_group(&mut writer, &mut index, "d", true);
            written.unwrap();
            assert_eq!(d.unwrap().unwrap().sequence, 4, "b and c were replayed");
            assert_eq!(writer.replay_to, None);
            drop(writer);
            drop(index);

            assert_restored(&path, 4, &[&b, &c]);
        });
    }

    /// The next groups are chained, logged and answered while earlier ones' rows are going in. When those
    /// fail, the writer learns it on taking the connection back, after it has answered the groups that
    /// followed: the open transaction is rolled back and every group answered in it is replayed from the
    /// log, in order, and the chain goes on after them.
    #[tokio::test(flavor = "multi_thread")]
    async fn rows_that_fail_while_the_next_group_is_written_are_restored_with_it() {
        let (dir, path, chain_id) = store_with_one_record().await;
        let (mut writer, mut index) = writer_on(dir.path(), &path, &chain_id);
        tokio::task::block_in_place(|| {
            let (written, b) = one_group(&mut writer, &mut index, "b", false);
            written.unwrap();
            assert_eq!(b.unwrap().unwrap().sequence, 2);
            refuse_rows_of(conn(&mut index), "c");
            let (written, c) = group(&mut writer, &mut index, "c", true, false);
            written.unwrap();
            let (written, d) = group(&mut writer, &mut index, "d", true, false);
            written.unwrap();
            let failed = writer.rows_in(&mut index);
            assert!(
                matches!(&failed, Err(AuditError::Write(m)) if m.contains("disk full")),
                "{failed:?}"
            );
            let (c, d) = (c.unwrap().unwrap(), d.unwrap().unwrap());
            assert_eq!((c.sequence, d.sequence), (3, 4), "both were answered");
            assert_eq!(writer.replay_to, None, "b, c and d were restored at once");
            let conn = conn(&mut index);
            assert!(conn.is_autocommit());
            let stored: i64 = conn
                .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
                .unwrap();
            assert_eq!(stored, 4);

            let (written, e) = one_group(&mut writer, &mut index, "e", true);
            written.unwrap();
            assert_eq!(e.unwrap().unwrap().sequence, 5);
            drop(writer);
            drop(index);

            assert_restored(&path, 5, &[&c, &d]);
        });
    }

    /// A group answered before its index commit, whose commit then fails, is not lost: the writer replays its
    /// frame from the log before writing the next one, and the chain continues from it.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_answered_group_whose_commit_fails_is_replayed_not_overwritten() {
        let (dir, path, chain_id) = store_with_one_record().await;
        let (mut writer, mut index) = writer_on(dir.path(), &path, &chain_id);
        // The next commit fails (a commit hook turns it into a rollback).
        let refuse = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let refusing = Arc::clone(&refuse);
        conn(&mut index)
            .commit_hook(Some(move || {
                refusing.swap(false, std::sync::atomic::Ordering::SeqCst)
            }))
            .unwrap();
        let (failed, answered) =
            tokio::task::block_in_place(|| one_group(&mut writer, &mut index, "b", true));
        assert!(failed.is_err());
        let answered = answered.unwrap().unwrap();
        assert_eq!(answered.sequence, 2);
        assert_eq!(writer.replay_to, None, "restored at once");
        let stored: i64 = conn(&mut index)
            .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, 2);
        let (written, next) =
            tokio::task::block_in_place(|| one_group(&mut writer, &mut index, "c", true));
        written.unwrap();
        assert_eq!(next.unwrap().unwrap().sequence, 3);
        assert_eq!(writer.replay_to, None);
        drop(writer);
        drop(index);

        let store = EmbeddedStore::open_read_only(&path, None).unwrap();
        let (record, hash) = store.get(answered.id).unwrap().unwrap();
        assert_eq!((record.sequence, hash), (2, answered.record_hash));
        assert_eq!(store.count().unwrap(), 3);
        assert_eq!(store.verify().unwrap(), None);
    }

    /// The writer's lookups keyed by the chain id are prepared once, not again on every group.
    #[tokio::test(flavor = "multi_thread")]
    async fn writer_statements_are_not_prepared_again() {
        let (_dir, path, chain) = store_with_one_record().await;
        let reprepared = |qpsg: bool| {
            let mut conn = open_connection(&path).unwrap();
            if qpsg {
                plan_once(&conn).unwrap();
            }
            for _ in 0..3 {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .unwrap();
                assert_eq!(chain_head(&tx, &chain).unwrap().0, 1);
                last_checkpointed(&tx, &chain).unwrap();
                tx.commit().unwrap();
            }
            [CHAIN_HEAD, LAST_CHECKPOINTED].map(|sql| {
                conn.prepare_cached(sql)
                    .unwrap()
                    .get_status(rusqlite::StatementStatus::RePrepare)
            })
        };
        // Without the guarantee SQLite prepares them again on each binding (what the writer used to pay).
        assert!(
            reprepared(false).iter().all(|&n| n > 0),
            "{:?}",
            reprepared(false)
        );
        assert_eq!(reprepared(true), [0, 0]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn reopening_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let first = {
            let store = EmbeddedStore::open(&path).unwrap();
            store.append(event("a"), None).await.unwrap()
        };
        let store = EmbeddedStore::open(&path).unwrap();
        let second = store.append(event("b"), None).await.unwrap();
        assert_eq!(first.chain_id, second.chain_id);
        assert_eq!(second.sequence, 2);
        let (record, _) = store.get(second.id).unwrap().unwrap();
        assert_eq!(record.prev_hash, first.record_hash);
    }

    /// A record is durable, and answered, once its frame is synced; its rows follow. When the index refuses
    /// them (here a trigger stands for a full disk), the writer fails closed: every later append gets an
    /// error until the answered record is restored from the log, and then the chain continues with no gap.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_record_the_index_refuses_after_its_answer_is_restored_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = EmbeddedStore::open(&path).unwrap();
        store.append(event("a"), None).await.unwrap();

        let saboteur = Connection::open(&path).unwrap();
        saboteur
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let b = store.append(event("b"), None).await.unwrap();
        assert_eq!(b.sequence, 2);
        // The next groups may be chained, logged and answered while b's rows are going in: they are
        // durable like b, and restored with it. Once the writer finds the rows failed (on its next commit,
        // within 200 ms), appends fail until the index takes them.
        let mut answered = vec![b];
        let err = loop {
            match store.append(event("c"), None).await {
                Ok(receipt) => answered.push(receipt),
                Err(err) => break err,
            }
        };
        assert!(
            matches!(err, AuditError::Write(ref m) if m.contains("disk full")),
            "{err}"
        );

        saboteur.execute_batch("DROP TRIGGER refuse;").unwrap();
        let e = store.append(event("e"), None).await.unwrap();
        let next = answered.len() as u64 + 2;
        assert_eq!(
            e.sequence, next,
            "what was answered is restored; what failed left no gap"
        );
        for receipt in &answered {
            let (record, hash) = store.get(receipt.id).unwrap().unwrap();
            assert_eq!(
                (record.sequence, hash),
                (receipt.sequence, receipt.record_hash.clone())
            );
        }
        assert_eq!(store.count().unwrap(), next);
        assert_eq!(store.verify().unwrap(), None);
        drop(store);
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.count().unwrap(), next);
    }

    /// An append whose record id is already stored, or taken by another append of its group, is refused
    /// alone: the appends beside it are stored, and the log never holds a record the index would refuse.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_record_id_already_stored_is_refused_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = std::sync::Arc::new(EmbeddedStore::open(&path).unwrap());
        // An id made before those stored, so below the highest: looked up, and new.
        let early = event("early");
        let first = event("a");
        store.append(first.clone(), None).await.unwrap();
        store.append(early, None).await.unwrap();

        let again = store.append(first.clone(), None).await.unwrap_err();
        assert!(
            matches!(&again, AuditError::Write(m) if m.contains(&first.id.to_string()) && m.contains("already")),
            "{again}"
        );
        let twin = event("b");
        let (one, other, beside) = tokio::join!(
            store.append(twin.clone(), None),
            store.append(twin.clone(), None),
            store.append(event("c"), None),
        );
        assert_eq!(
            [one.is_ok(), other.is_ok()]
                .iter()
                .filter(|ok| **ok)
                .count(),
            1,
            "exactly one of two appends with one id is stored"
        );
        beside.unwrap();
        assert_eq!(store.count().unwrap(), 4);
        assert_eq!(store.verify().unwrap(), None);

        drop(store);
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.count().unwrap(), 4);
        let again = store.append(first.clone(), None).await.unwrap_err();
        assert!(
            matches!(&again, AuditError::Write(m) if m.contains("already")),
            "{again}"
        );
        assert_eq!(store.verify().unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = EmbeddedStore::open(&path).unwrap();
        for user in ["a", "b", "c"] {
            store.append(event(user), None).await.unwrap();
        }
        let tamper = Connection::open(&path).unwrap();
        tamper
            .execute(
                "UPDATE records SET body = replace(body, '\"user_sub\":\"b\"', '\"user_sub\":\"z\"') WHERE sequence = 2",
                [],
            )
            .unwrap();
        let found = store.verify().unwrap().unwrap();
        assert!(
            matches!(found, ChainBreak::Content { sequence: 2, .. }),
            "{found}"
        );

        tamper
            .execute("DELETE FROM records WHERE sequence = 2", [])
            .unwrap();
        let found = store.verify().unwrap().unwrap();
        assert!(
            matches!(
                found,
                ChainBreak::Gap {
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{found}"
        );
    }
}
