//! The embedded audit store: one SQLite file in the data directory.
//!
//! Constraints:
//! - WAL journal with `synchronous = FULL`: a committed transaction survives a crash or power loss, so an
//!   acknowledged record is never lost.
//! - One writer thread owns the write connection and commits records in groups: every append waiting when a
//!   transaction starts goes into it, and each caller is answered only after the commit. One fsync then
//!   covers many records.
//! - The chain head is re-read inside every write transaction (`BEGIN IMMEDIATE`), so a failed commit, a
//!   restart, or a second process on the same file can never fork the chain: at worst a write fails and the
//!   caller gets an error.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;

use async_trait::async_trait;
use causeway_contract::audit::{AuditEvent, AuditRecord, GENESIS_HASH};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{AuditError, AuditReceipt, AuditSink, ChainBreak, verify_chain};

/// Appends queued beyond this wait for room (backpressure on the hub).
const QUEUE_DEPTH: usize = 8192;
/// Most records committed in one transaction.
const MAX_GROUP: usize = 512;

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
";

type Job = (
    AuditEvent,
    oneshot::Sender<Result<AuditReceipt, AuditError>>,
);

/// Filters for reading records back. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only this user.
    pub user_sub: Option<String>,
    /// Only this spoke account.
    pub spoke_account: Option<String>,
    /// Only this model alias.
    pub model_alias: Option<String>,
    /// Only this outcome (`answered`, `denied`, ...).
    pub outcome: Option<String>,
    /// From this time, Unix milliseconds, inclusive.
    pub since_unix_ms: Option<i64>,
    /// Until this time, Unix milliseconds, exclusive.
    pub until_unix_ms: Option<i64>,
    /// At most this many records (newest first); 0 means no limit.
    pub limit: usize,
}

/// The single-file embedded audit store.
#[derive(Debug)]
pub struct EmbeddedStore {
    path: PathBuf,
    chain_id: String,
    queue: mpsc::Sender<Job>,
    reader: Mutex<Connection>,
}

fn open_connection(path: &Path) -> Result<Connection, AuditError> {
    let conn = Connection::open(path)
        .map_err(|e| AuditError::Unavailable(format!("cannot open `{}`: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
        .map_err(|e| {
            AuditError::Unavailable(format!("cannot configure `{}`: {e}", path.display()))
        })?;
    Ok(conn)
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path` and starts its writer thread.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                AuditError::Unavailable(format!("cannot create `{}`: {e}", dir.display()))
            })?;
        }
        let writer = open_connection(&path)?;
        writer
            .execute_batch(SCHEMA)
            .map_err(|e| AuditError::Unavailable(format!("cannot create the schema: {e}")))?;
        let chain_id = load_or_create_chain_id(&writer)?;
        let reader = open_connection(&path)?;

        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread_chain = chain_id.clone();
        thread::Builder::new()
            .name("causeway-audit-writer".into())
            .spawn(move || writer_loop(writer, &thread_chain, rx))
            .map_err(|e| AuditError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            path,
            chain_id,
            queue,
            reader: Mutex::new(reader),
        })
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The chain this store appends to.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AuditError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| AuditError::Read("the reader connection is poisoned".into()))?;
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

    /// Reads records matching `filter`, newest first, with their stored hashes.
    pub fn query(&self, filter: &RecordFilter) -> Result<Vec<(AuditRecord, String)>, AuditError> {
        let limit = if filter.limit == 0 {
            -1
        } else {
            i64::try_from(filter.limit).unwrap_or(i64::MAX)
        };
        let rows = self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT body, record_hash FROM records
                 WHERE (?1 IS NULL OR user_sub = ?1)
                   AND (?2 IS NULL OR spoke_account = ?2)
                   AND (?3 IS NULL OR model_alias = ?3)
                   AND (?4 IS NULL OR outcome = ?4)
                   AND (?5 IS NULL OR ts_unix_ms >= ?5)
                   AND (?6 IS NULL OR ts_unix_ms < ?6)
                 ORDER BY ts_unix_ms DESC, chain_id, sequence DESC
                 LIMIT ?7",
            )?;
            let rows = stmt.query_map(
                params![
                    filter.user_sub,
                    filter.spoke_account,
                    filter.model_alias,
                    filter.outcome,
                    filter.since_unix_ms,
                    filter.until_unix_ms,
                    limit
                ],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|(body, hash)| decode(&body).map(|r| (r, hash)))
            .collect()
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

    /// Verifies every chain in the store; returns the first break, if any.
    pub fn verify(&self) -> Result<Option<ChainBreak>, AuditError> {
        let chains = self.with_reader(|conn| {
            let mut stmt =
                conn.prepare("SELECT DISTINCT chain_id FROM records ORDER BY chain_id")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        for chain in chains {
            let rows = self.with_reader(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT body, record_hash FROM records WHERE chain_id = ?1 ORDER BY sequence",
                )?;
                let rows = stmt.query_map(params![chain], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })?;
            let records = rows
                .iter()
                .map(|(body, hash)| decode(body).map(|r| (r, hash.clone())))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(found) = verify_chain(records.iter().map(|(r, h)| (r, h.as_str()))) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

fn decode(body: &str) -> Result<AuditRecord, AuditError> {
    serde_json::from_str(body)
        .map_err(|e| AuditError::Read(format!("stored record does not decode: {e}")))
}

fn load_or_create_chain_id(conn: &Connection) -> Result<String, AuditError> {
    let existing: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'chain_id'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|e| AuditError::Unavailable(e.to_string()))?;
    if let Some(chain) = existing {
        return Ok(chain);
    }
    let chain = format!("embedded-{}", Uuid::now_v7());
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('chain_id', ?1)",
        params![chain],
    )
    .map_err(|e| AuditError::Unavailable(e.to_string()))?;
    // Another process may have won the race; read back whichever is stored.
    conn.query_row("SELECT value FROM meta WHERE key = 'chain_id'", [], |row| {
        row.get(0)
    })
    .map_err(|e| AuditError::Unavailable(e.to_string()))
}

// === writer thread ===

fn writer_loop(mut conn: Connection, chain_id: &str, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match write_group(&mut conn, chain_id, &batch) {
            Ok(receipts) => {
                for ((_, reply), receipt) in batch.drain(..).zip(receipts) {
                    // A caller that went away (client disconnected) no longer needs the receipt.
                    let _ = reply.send(Ok(receipt));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, records = batch.len(), "audit group commit failed");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(AuditError::Write(err.to_string())));
                }
            }
        }
    }
}

fn write_group(
    conn: &mut Connection,
    chain_id: &str,
    batch: &[Job],
) -> Result<Vec<AuditReceipt>, AuditError> {
    let write = |e: rusqlite::Error| AuditError::Write(e.to_string());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(write)?;
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT sequence, record_hash FROM records WHERE chain_id = ?1 ORDER BY sequence DESC LIMIT 1",
            params![chain_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(write)?;
    let (last, mut prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut sequence =
        u64::try_from(last).map_err(|_| AuditError::Read(format!("negative sequence {last}")))?;
    let mut receipts = Vec::with_capacity(batch.len());
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO records (chain_id, sequence, id, ts_unix_ms, user_sub, spoke_account, model_alias,
                                      purpose, outcome, record_hash, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(write)?;
        for (event, _) in batch {
            sequence += 1;
            let record = AuditRecord {
                schema_version: AuditRecord::SCHEMA_VERSION,
                chain_id: chain_id.to_owned(),
                sequence,
                prev_hash: prev_hash.clone(),
                event: event.clone(),
            };
            let body = record
                .canonical_bytes()
                .map_err(|e| AuditError::Encode(e.to_string()))?;
            let hash = causeway_contract::audit::sha256_hex(&body);
            let body = String::from_utf8(body).map_err(|e| AuditError::Encode(e.to_string()))?;
            let ts_ms = i64::try_from(event.timestamp.unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(i64::MAX);
            insert
                .execute(params![
                    chain_id,
                    i64::try_from(sequence).unwrap_or(i64::MAX),
                    event.id.to_string(),
                    ts_ms,
                    event.user_sub,
                    event.spoke_account,
                    event.model_alias,
                    event.purpose,
                    event.outcome.as_str(),
                    hash,
                    body
                ])
                .map_err(write)?;
            receipts.push(AuditReceipt {
                id: event.id,
                chain_id: chain_id.to_owned(),
                sequence,
                record_hash: hash.clone(),
            });
            prev_hash = hash;
        }
    }
    tx.commit().map_err(write)?;
    Ok(receipts)
}

#[async_trait]
impl AuditSink for EmbeddedStore {
    async fn append(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        let (reply, receipt) = oneshot::channel();
        self.queue
            .send((event, reply))
            .await
            .map_err(|_| AuditError::Unavailable("the writer thread has stopped".into()))?;
        receipt.await.map_err(|_| {
            AuditError::Unavailable("the writer thread stopped before committing".into())
        })?
    }

    async fn health(&self) -> Result<(), AuditError> {
        if self.queue.is_closed() {
            return Err(AuditError::Unavailable(
                "the writer thread has stopped".into(),
            ));
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
    use causeway_contract::audit::Outcome;

    use super::*;

    fn event(user: &str) -> AuditEvent {
        let id = Uuid::now_v7();
        AuditEvent {
            id,
            call_id: id,
            timestamp: time::OffsetDateTime::now_utc(),
            request_id: "req".into(),
            api: "invoke".into(),
            workload_principal: None,
            spoke_account: Some("111122223333".into()),
            application: None,
            user_sub: Some(user.into()),
            user_issuer: None,
            purpose: Some("support".into()),
            data_classification: None,
            model_alias: Some("local-dev".into()),
            model_id: None,
            model_version: None,
            provider: None,
            development_model: true,
            catalog_version: "c".into(),
            guard_profile: "default".into(),
            guard_profile_version: "1".into(),
            policy_hash: "p".into(),
            outcome: Outcome::Answered,
            error_code: None,
            reasons: vec![],
            guard_events: vec![],
            injection_permille: 0,
            grounding_permille: None,
            low_trust: false,
            usage: TokenUsage::default(),
            cost_micro_usd: 0,
            latency_us: 1,
            prompt_sha256: None,
            response_sha256: None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_appends_form_one_verified_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(EmbeddedStore::open(dir.path().join("audit.db")).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.spawn(async move { store.append(event(&format!("user{}", i % 3))).await });
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

    #[tokio::test(flavor = "multi_thread")]
    async fn reopening_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let first = {
            let store = EmbeddedStore::open(&path).unwrap();
            store.append(event("a")).await.unwrap()
        };
        let store = EmbeddedStore::open(&path).unwrap();
        let second = store.append(event("b")).await.unwrap();
        assert_eq!(first.chain_id, second.chain_id);
        assert_eq!(second.sequence, 2);
        let (record, _) = store.get(second.id).unwrap().unwrap();
        assert_eq!(record.prev_hash, first.record_hash);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn failed_write_is_an_error_and_the_chain_stays_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = EmbeddedStore::open(&path).unwrap();
        store.append(event("a")).await.unwrap();

        let saboteur = Connection::open(&path).unwrap();
        saboteur
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let err = store.append(event("b")).await.unwrap_err();
        assert!(
            matches!(err, AuditError::Write(ref m) if m.contains("disk full")),
            "{err}"
        );

        saboteur.execute_batch("DROP TRIGGER refuse;").unwrap();
        let next = store.append(event("c")).await.unwrap();
        assert_eq!(next.sequence, 2, "the failed record must not leave a gap");
        assert_eq!(store.verify().unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let store = EmbeddedStore::open(&path).unwrap();
        for user in ["a", "b", "c"] {
            store.append(event(user)).await.unwrap();
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
