//! A crash at any point of the write path loses no acknowledged record.
//!
//! `a_killed_writer_loses_no_acknowledged_record` runs this test binary again as a child that appends from
//! many tasks and prints each acknowledged record's id and position as soon as `append` returns `Ok`; the
//! parent kills it with SIGKILL after a varied delay (so at varied points: mid-group, between the log's sync
//! and the index commit, while the log grows), reopens the store, and checks every acknowledged record is
//! there and the store verifies. `an_index_commit_lost_to_power_loss_is_restored_from_the_log` makes the
//! state a power loss can leave (log frames synced, the index's last commits gone) and checks the store
//! restores them.

#![expect(clippy::unwrap_used, reason = "test set-up fails loudly")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use causeway_audit::{AuditSink, EmbeddedStore, StoreOptions};
use causeway_contract::TokenUsage;
use causeway_contract::audit::AuditEvent;
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use uuid::Uuid;

const CHILD: &str = "CAUSEWAY_AUDIT_CRASH_CHILD";

fn event(n: u64) -> AuditEvent {
    let id = Uuid::now_v7();
    AuditEvent {
        id,
        call_id: id,
        timestamp: OffsetDateTime::now_utc(),
        request_id: format!("req-{n}"),
        spoke_account: Some("111122223333".into()),
        user_sub: Some(format!("user{}", n % 7)),
        catalog_version: "c".into(),
        reasons: vec![],
        usage: TokenUsage::default(),
        latency_us: 1,
        ..AuditEvent::sample()
    }
}

fn options(every: u64) -> StoreOptions {
    StoreOptions {
        checkpoint_every: every,
        chain_id: Some("crash-chain".into()),
        ..StoreOptions::default()
    }
}

/// The child: appends until killed, printing `ack <id> <sequence>` after each `Ok`.
#[tokio::test(flavor = "multi_thread")]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let store =
        Arc::new(EmbeddedStore::open_with(Path::new(&dir).join("audit.db"), options(50)).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..64_u64 {
        let store = store.clone();
        tasks.spawn(async move {
            for n in 0.. {
                let receipt = store
                    .append(event(task * 1_000_000 + n), None)
                    .await
                    .unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {} {}", receipt.id, receipt.sequence).unwrap();
                out.flush().unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// A small pseudo-random sequence (xorshift), seeded from the clock: delays vary from run to run.
struct Delays(u64);

impl Delays {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn a_killed_writer_loses_no_acknowledged_record() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut delays = Delays(seed);
    let mut acked: BTreeMap<Uuid, u64> = BTreeMap::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for round in 0..24 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                if parts.next() == Some("ack")
                    && let (Some(id), Some(seq)) = (parts.next(), parts.next())
                    && let (Ok(id), Ok(seq)) = (id.parse::<Uuid>(), seq.parse::<u64>())
                {
                    seen.push((id, seq));
                }
            }
            seen
        });
        // Rounds alternate short and long lives: killed at start-up (opening, replaying) or under load.
        let delay = if round % 3 == 0 {
            delays.next_ms(40)
        } else {
            50 + delays.next_ms(700)
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        for (id, seq) in reader.join().unwrap() {
            acked.insert(id, seq);
        }

        // Every other round a read-only reader (another process's CLI) looks first: once a record has been
        // acknowledged, so the store is past its creation (a child killed while creating the store leaves a
        // database without its tables, which a reader refuses with an error and the next writer completes).
        let path = dir.path().join("audit.db");
        if round % 2 == 0 && !acked.is_empty() {
            let reader = EmbeddedStore::open_read_only(&path, None).unwrap();
            check(&reader, &acked, round);
        }
        let store = EmbeddedStore::open_with(&path, options(50)).unwrap();
        check(&store, &acked, round);
        // The chain continues after the crash.
        let next = runtime.block_on(store.append(event(0), None)).unwrap();
        acked.insert(next.id, next.sequence);
        store.close();
    }
    assert!(!acked.is_empty(), "the child never acknowledged a record");
}

fn check(store: &EmbeddedStore, acked: &BTreeMap<Uuid, u64>, round: usize) {
    for (id, sequence) in acked {
        let found = store.get(*id).unwrap();
        assert!(
            found.is_some(),
            "round {round}: acknowledged record {id} is missing"
        );
        let (record, _) = found.unwrap();
        assert_eq!(record.sequence, *sequence, "round {round}: record {id}");
    }
    let report = store.verify_report(None).unwrap();
    assert!(report.is_ok(), "round {round}: {:?}", report.breaks);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_whose_creation_was_cut_short_is_refused_by_a_reader_and_completed_by_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    // What a writer killed while creating the store leaves: a database file without its tables.
    let conn = Connection::open(&path).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let refused = EmbeddedStore::open_read_only(&path, None)
        .and_then(|reader| reader.verify_report(None).map(|_| ()));
    assert!(refused.is_err());
    let store = EmbeddedStore::open_with(&path, options(1000)).unwrap();
    let first = store.append(event(1), None).await.unwrap();
    assert_eq!(first.sequence, 1);
    assert_eq!(store.verify().unwrap(), None);
}

/// Where the index says the log ends: `(log_end, log_frame)` from the store's meta table.
fn log_position(path: &std::path::Path) -> (u64, u64) {
    let conn = Connection::open(path).unwrap();
    let get = |key: &str| {
        conn.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![key],
            |row| row.get::<_, String>(0),
        )
        .unwrap()
        .parse::<u64>()
        .unwrap()
    };
    (get("log_end"), get("log_frame"))
}

/// What a power loss can leave: the log frames synced, the index's commits after record `kept` (and the log
/// position they moved) never written.
fn lose_index_commits_after(path: &std::path::Path, kept: i64, (end, frame): (u64, u64)) {
    let conn = Connection::open(path).unwrap();
    conn.execute("DELETE FROM records WHERE sequence > ?1", params![kept])
        .unwrap();
    conn.execute(
        "DELETE FROM checkpoints WHERE chain_sequence > ?1",
        params![kept],
    )
    .unwrap();
    for (key, value) in [("log_end", end), ("log_frame", frame)] {
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = ?2",
            params![value.to_string(), key],
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_commit_lost_to_power_loss_is_restored_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = EmbeddedStore::open_with(&path, options(1000)).unwrap();
    for n in 0..5 {
        store.append(event(n), None).await.unwrap();
    }
    // A read through the store commits the index (another connection sees only what is committed).
    assert_eq!(store.count().unwrap(), 5);
    let position = log_position(&path);
    let mut later = Vec::new();
    for n in 5..12 {
        later.push(store.append(event(n), None).await.unwrap());
    }
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();

    lose_index_commits_after(&path, 5, position);

    // A read-only reader sees them (it restores the index under the write lock first)...
    let reader = EmbeddedStore::open_read_only(&path, None).unwrap();
    for receipt in &later {
        let (record, hash) = reader.get(receipt.id).unwrap().unwrap();
        assert_eq!(record.sequence, receipt.sequence);
        assert_eq!(hash, receipt.record_hash);
    }
    assert_eq!(reader.verify_report(None).unwrap().breaks, vec![]);
    drop(reader);
    // ...and the writer continues the chain after them.
    let store = EmbeddedStore::open_with(&path, options(1000)).unwrap();
    let next = store.append(event(99), None).await.unwrap();
    assert_eq!(next.sequence, 13);
    assert_eq!(store.verify().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_left_beside_a_new_database_is_not_replayed_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = EmbeddedStore::open_with(&path, options(1000)).unwrap();
    for n in 0..3 {
        store.append(event(n), None).await.unwrap();
    }
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
    for file in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let store = EmbeddedStore::open_with(&path, options(1000)).unwrap();
    assert_eq!(store.count().unwrap(), 0);
    let first = store.append(event(9), None).await.unwrap();
    assert_eq!(first.sequence, 1);
    assert_eq!(store.verify().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_starts_over_and_still_restores_what_the_index_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let small = || StoreOptions {
        log_wrap_bytes: 8 * 1024,
        ..options(1000)
    };
    let store = EmbeddedStore::open_with(&path, small()).unwrap();
    // Each record is about 1 KB of log: the log starts over several times.
    let mut receipts = Vec::new();
    for n in 0..40 {
        receipts.push(store.append(event(n), None).await.unwrap());
    }
    // Answers come once the log frame is durable, before the index commit: the store's own reader waits for
    // that commit, another connection does not.
    assert_eq!(store.count().unwrap(), 40);
    let (offset, frame) = log_position(&path);
    assert!(offset < 16 * 1024, "the log did not start over: {offset}");
    assert!(frame >= 40);
    for n in 40..43 {
        receipts.push(store.append(event(n), None).await.unwrap());
    }
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();

    // The index loses its last commits; the log, started over, still has them.
    lose_index_commits_after(&path, 40, (offset, frame));
    let store = EmbeddedStore::open_with(&path, small()).unwrap();
    for receipt in &receipts {
        let (record, hash) = store.get(receipt.id).unwrap().unwrap();
        assert_eq!(record.sequence, receipt.sequence);
        assert_eq!(hash, receipt.record_hash);
    }
    assert_eq!(store.verify().unwrap(), None);
}

/// A reader opened beside a live writer (the CLI beside a running hub) sees every record the writer
/// answered, though the writer's index commit is deferred.
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_beside_a_live_writer_sees_every_answered_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = EmbeddedStore::open_with(&path, options(1000)).unwrap();
    let mut answered = Vec::new();
    for n in 0..5 {
        answered.push(store.append(event(n), None).await.unwrap());
    }
    let reader_path = path.clone();
    let reader = tokio::task::spawn_blocking(move || {
        EmbeddedStore::open_read_only(&reader_path, None).unwrap()
    })
    .await
    .unwrap();
    for receipt in &answered {
        let (record, hash) = reader.get(receipt.id).unwrap().unwrap();
        assert_eq!(record.sequence, receipt.sequence);
        assert_eq!(hash, receipt.record_hash);
    }
    drop(reader);
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
}
