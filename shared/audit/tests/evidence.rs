//! Checkpoints, payloads and erasure, indexes, and tampering with the embedded store.

#![expect(clippy::unwrap_used, reason = "test set-up fails loudly")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use causeway_audit::verify::Voucher;
use causeway_audit::{
    AuditError, AuditSink, ChainBreak, CheckpointKind, EmbeddedStore, Payload, PayloadState,
    RecordFilter, StoreOptions,
};
use causeway_contract::TokenUsage;
use causeway_contract::audit::{AuditEvent, AuditRecord, sha256_hex};
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

fn event(user: &str, at: OffsetDateTime) -> AuditEvent {
    let id = Uuid::now_v7();
    AuditEvent {
        id,
        call_id: id,
        timestamp: at,
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

fn options(chain: &str, every: u64) -> StoreOptions {
    StoreOptions {
        checkpoint_every: every,
        chain_id: Some(chain.into()),
        ..StoreOptions::default()
    }
}

/// Chain `hub-a` with 10 records and `hub-b` with 5, checkpointed every 4 and at the end.
async fn fixture(dir: &Path) -> PathBuf {
    let path = dir.join("audit.db");
    for (chain, n) in [("hub-a", 10), ("hub-b", 5)] {
        let store = EmbeddedStore::open_with(&path, options(chain, 4)).unwrap();
        for i in 0..n {
            store
                .append(event(&format!("user{i}"), OffsetDateTime::now_utc()), None)
                .await
                .unwrap();
        }
        store.checkpoint_now().await.unwrap();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
    }
    path
}

fn verify(path: &Path) -> Vec<ChainBreak> {
    EmbeddedStore::open_read_only(path, None)
        .unwrap()
        .verify_report(None)
        .unwrap()
        .breaks
}

fn canonical(record: &AuditRecord) -> String {
    String::from_utf8(record.canonical_bytes().unwrap()).unwrap()
}

/// Rewrites `hub-a` from record `from` to its end (10): each record linked to the one before it, then
/// written as `encode` makes it from its sequence and the record, and hashed.
fn rechain(conn: &Connection, from: i64, encode: impl Fn(i64, AuditRecord) -> String) {
    let mut prev_hash = sha256_hex(body(conn, "hub-a", from - 1).as_bytes());
    for seq in from..=10 {
        let mut record: AuditRecord = serde_json::from_str(&body(conn, "hub-a", seq)).unwrap();
        record.prev_hash = prev_hash;
        let bytes = encode(seq, record);
        prev_hash = sha256_hex(bytes.as_bytes());
        conn.execute(
            "UPDATE records SET body = ?1, record_hash = ?2 WHERE chain_id = 'hub-a' AND sequence = ?3",
            params![bytes, prev_hash, seq],
        )
        .unwrap();
    }
}

fn body(conn: &Connection, chain: &str, seq: i64) -> String {
    conn.query_row(
        "SELECT body FROM records WHERE chain_id = ?1 AND sequence = ?2",
        params![chain, seq],
        |row| row.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_every_n_records_signed_and_registered() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let store = EmbeddedStore::open_read_only(&path, None).unwrap();
    let log = store.checkpoints().unwrap();
    let summary: Vec<(u64, CheckpointKind, &str, u64)> = log
        .iter()
        .map(|c| {
            let c = &c.checkpoint;
            (c.sequence, c.kind, c.chain_id.as_str(), c.chain_sequence)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, CheckpointKind::Genesis, "hub-a", 0),
            (2, CheckpointKind::Periodic, "hub-a", 4),
            (3, CheckpointKind::Periodic, "hub-a", 8),
            (4, CheckpointKind::Periodic, "hub-a", 10),
            (5, CheckpointKind::Genesis, "hub-b", 0),
            (6, CheckpointKind::Periodic, "hub-b", 4),
            (7, CheckpointKind::Periodic, "hub-b", 5),
        ]
    );
    let keys = store.public_keys().unwrap();
    assert_eq!(keys.len(), 1);
    for c in &log {
        let bytes = c.checkpoint.canonical_bytes().unwrap();
        assert_eq!(sha256_hex(&bytes), c.checkpoint_hash);
        assert!(keys[0].verify(&bytes, &c.signature));
    }
    let report = store.verify_report(None).unwrap();
    assert!(report.is_ok(), "{:?}", report.breaks);
    assert_eq!(
        (report.records, report.chains, report.checkpoints),
        (15, 2, 7)
    );
    assert!(
        matches!(
            store
                .append(event("x", OffsetDateTime::now_utc()), None)
                .await,
            Err(AuditError::Unavailable(_))
        ),
        "a read-only store takes no writes"
    );
    // The key files are private.
    #[cfg(unix)]
    for file in ["audit-signing-key.p8", "audit-master.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_chain_is_checkpointed_after_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(
        dir.path().join("audit.db"),
        StoreOptions {
            checkpoint_interval: Duration::from_millis(200),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store
        .append(event("a", OffsetDateTime::now_utc()), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let log = store.checkpoints().unwrap();
    assert_eq!(log.len(), 2, "genesis, then the timed checkpoint");
    assert_eq!(log[1].checkpoint.chain_sequence, 1);
}

fn with_payload(mut event: AuditEvent, prompt: &str, answer: &str) -> (AuditEvent, Payload) {
    event.prompt_sha256 = Some(sha256_hex(prompt.as_bytes()));
    event.response_sha256 = Some(sha256_hex(answer.as_bytes()));
    let payload = Payload {
        prompt: prompt.into(),
        response: answer.into(),
    };
    (event, payload)
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_are_encrypted_and_erasing_a_period_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = EmbeddedStore::open(&path).unwrap();
    let (old, old_payload) = with_payload(
        event("alice", datetime!(2026-01-01 10:00 UTC)),
        r#"{"messages":"secret plan"}"#,
        "the answer",
    );
    let (new, new_payload) = with_payload(
        event("bob", OffsetDateTime::now_utc()),
        "today's prompt",
        "today's answer",
    );
    let old_id = store
        .append(old, Some(old_payload.clone()))
        .await
        .unwrap()
        .id;
    let new_id = store
        .append(new, Some(new_payload.clone()))
        .await
        .unwrap()
        .id;
    let refused = store
        .append(event("carol", OffsetDateTime::now_utc()), None)
        .await
        .unwrap()
        .id;

    // The record commits to the payload stored with it, whatever hashes the event carried.
    let (other_hashes, _) = with_payload(event("eve", OffsetDateTime::now_utc()), "a", "b");
    let stored = Payload {
        prompt: "not a".into(),
        response: "b".into(),
    };
    let eve_id = store
        .append(other_hashes, Some(stored.clone()))
        .await
        .unwrap()
        .id;
    let eve = store.get(eve_id).unwrap().unwrap().0.event;
    assert_eq!(eve.prompt_sha256, Some(sha256_hex(b"not a")));
    assert_eq!(eve.response_sha256, Some(sha256_hex(b"b")));
    assert_eq!(store.payload(eve_id).unwrap(), PayloadState::Stored(stored));

    assert_eq!(
        store.payload(old_id).unwrap(),
        PayloadState::Stored(old_payload)
    );
    assert_eq!(store.payload(refused).unwrap(), PayloadState::Absent);
    // Nothing of the text is stored in the clear.
    drop(store);
    let raw = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("audit.db-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(
            !bytes.windows(11).any(|w| w == b"secret plan"),
            "prompt text in the clear"
        );
    }

    let store = EmbeddedStore::open(&path).unwrap();
    let erased = store
        .erase_period(time::macros::date!(2026 - 01 - 01))
        .unwrap();
    assert_eq!(erased.payloads, 1);
    assert_eq!(
        store.payload(old_id).unwrap(),
        PayloadState::Erased {
            period: "2026-01-01".into()
        }
    );
    assert_eq!(
        store.payload(new_id).unwrap(),
        PayloadState::Stored(new_payload)
    );
    assert_eq!(store.verify().unwrap(), None, "the chain still verifies");
    // The record keeps its hashes.
    let (record, _) = store.get(old_id).unwrap().unwrap();
    assert_eq!(
        record.event.prompt_sha256.as_deref(),
        Some(sha256_hex(br#"{"messages":"secret plan"}"#).as_str())
    );

    // An erased period takes no new payloads; today cannot be erased.
    let (late, late_payload) =
        with_payload(event("dan", datetime!(2026-01-01 23:00 UTC)), "p", "a");
    assert!(store.append(late, Some(late_payload)).await.is_err());
    let today = OffsetDateTime::now_utc().date();
    assert!(store.erase_period(today).is_err());
    assert!(store.erase_period(today.previous_day().unwrap()).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn user_and_time_query_uses_the_user_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("audit.db")).unwrap();
    for i in 0..20 {
        store
            .append(
                event(&format!("user{}", i % 4), OffsetDateTime::now_utc()),
                None,
            )
            .await
            .unwrap();
    }
    let filter = RecordFilter {
        user_sub: Some("user1".into()),
        since_unix_ms: Some(0),
        until_unix_ms: Some(i64::MAX),
        ..RecordFilter::default()
    };
    let plan = store.query_plan(&filter).unwrap();
    insta::assert_snapshot!(plan, @"SEARCH r USING INDEX records_by_user (user_sub=? AND ts_unix_ms>? AND ts_unix_ms<?)");
    assert_eq!(store.query(&filter).unwrap().len(), 5);
    // The console's other filters are answered from indexes too, in order, with no sort.
    for (filter, index) in [
        (
            RecordFilter {
                application: Some("claims".into()),
                ..RecordFilter::default()
            },
            "records_by_application",
        ),
        (
            RecordFilter {
                guard_entity: Some("EMAIL".into()),
                user_sub: Some("user1".into()),
                ..RecordFilter::default()
            },
            "SEARCH g USING PRIMARY KEY (entity=?)",
        ),
    ] {
        let plan = store.query_plan(&filter).unwrap();
        assert!(
            plan.contains(index) && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }
    let by_purpose = RecordFilter {
        purpose: Some("support".into()),
        outcome: Some("answered".into()),
        limit: 3,
        ..RecordFilter::default()
    };
    assert!(
        store
            .query_plan(&by_purpose)
            .unwrap()
            .contains("USING INDEX")
    );
    assert_eq!(store.query(&by_purpose).unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_by_cursor_cover_every_record_once_and_filters_agree_across_stores() {
    use causeway_audit::{AuditReader, EmbeddedReader, PackReader};
    use causeway_contract::guard::{GuardAction, GuardEvent, GuardStage};

    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("audit.db")).unwrap();
    // Many records in the same millisecond, so the order within one needs the tie-break.
    let at = OffsetDateTime::now_utc();
    for i in 0..130 {
        let when = if i < 100 {
            at
        } else {
            at + time::Duration::seconds(1)
        };
        let mut e = event(&format!("user{}", i % 3), when);
        e.application = Some(if i % 2 == 0 { "claims" } else { "chat" }.to_owned());
        if i % 10 == 0 {
            e.guard_events = vec![GuardEvent {
                stage: GuardStage::Input,
                kind: "pii".into(),
                entity: "EMAIL".into(),
                action: GuardAction::Mask,
                count: 1,
                source: "text".into(),
            }];
        }
        store.append(e, None).await.unwrap();
    }
    store.checkpoint_now().await.unwrap();
    drop(store);
    let embedded = EmbeddedReader::open(dir.path()).unwrap();
    let pack_dir = dir.path().join("pack");
    embedded
        .export(
            at - time::Duration::hours(1),
            at + time::Duration::hours(1),
            &pack_dir,
        )
        .await
        .unwrap();
    let pack = PackReader::open(&pack_dir, None).unwrap();
    assert!(pack.opened_verification().is_ok());
    assert_eq!(pack.len(), 130);

    for reader in [&embedded as &dyn AuditReader, &pack as &dyn AuditReader] {
        let mut seen = Vec::new();
        let mut filter = RecordFilter {
            limit: 50,
            ..RecordFilter::default()
        };
        loop {
            let page = reader.query(&filter).await.unwrap();
            if page.is_empty() {
                break;
            }
            let last = &page.last().unwrap().0.event;
            filter.before = Some((
                i64::try_from(last.timestamp.unix_timestamp_nanos() / 1_000_000).unwrap(),
                last.id.to_string(),
            ));
            seen.extend(page.into_iter().map(|(r, _)| r.event.id));
        }
        let unique: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(
            (seen.len(), unique.len()),
            (130, 130),
            "{}",
            reader.describe()
        );

        let count =
            |filter: RecordFilter| async move { reader.query(&filter).await.unwrap().len() };
        let by_app = RecordFilter {
            application: Some("claims".into()),
            ..RecordFilter::default()
        };
        assert_eq!(count(by_app).await, 65);
        let by_entity = RecordFilter {
            guard_entity: Some("EMAIL".into()),
            ..RecordFilter::default()
        };
        assert_eq!(count(by_entity).await, 13);
        let all_three = RecordFilter {
            user_sub: Some("user1".into()),
            application: Some("claims".into()),
            guard_entity: Some("EMAIL".into()),
            ..RecordFilter::default()
        };
        // Records 10, 40, 70 and 100.
        assert_eq!(count(all_three).await, 4);
        let newest = RecordFilter {
            limit: 1,
            ..RecordFilter::default()
        };
        let id = reader.query(&newest).await.unwrap()[0]
            .0
            .event
            .id
            .to_string();
        let by_id = RecordFilter {
            record_id: Some(id.clone()),
            ..RecordFilter::default()
        };
        assert_eq!(
            reader.query(&by_id).await.unwrap()[0]
                .0
                .event
                .id
                .to_string(),
            id
        );
        let chains = reader.chains().await.unwrap();
        let (at_five, _) = reader
            .record(&chains[0].chain_id, 5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(at_five.sequence, 5);
        assert!(
            reader
                .record(&chains[0].chain_id, 131)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].head_sequence, 130);
        assert_eq!(chains[0].checkpoint_sequence, Some(130));
    }
}

// === tampering with the store ===

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_field_is_detected_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE records SET body = replace(body, '\"user_sub\":\"user2\"', '\"user_sub\":\"mallory\"')
         WHERE chain_id = 'hub-a' AND sequence = 3",
        [],
    )
    .unwrap();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::Content {
            chain_id: "hub-a".into(),
            sequence: 3
        }]
    );
    // Re-hashing the altered record moves the break to the link of the next one.
    let altered = body(&conn, "hub-a", 3);
    conn.execute(
        "UPDATE records SET record_hash = ?1 WHERE chain_id = 'hub-a' AND sequence = 3",
        params![sha256_hex(altered.as_bytes())],
    )
    .unwrap();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::Link {
            chain_id: "hub-a".into(),
            sequence: 4
        }]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_and_rehashed_chain_is_caught_by_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let conn = Connection::open(&path).unwrap();
    // Alter record 2 and re-chain every later record, as someone without the signing key could.
    rechain(&conn, 2, |seq, mut record| {
        if seq == 2 {
            record.event.user_sub = Some("mallory".into());
        }
        canonical(&record)
    });
    assert_eq!(
        verify(&path),
        vec![ChainBreak::CheckpointMismatch {
            chain_id: "hub-a".into(),
            sequence: 4,
            by: Voucher::Checkpoint(2)
        }]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_re_encoded_and_re_chained_is_named_though_its_form_is_left_to_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let conn = Connection::open(&path).unwrap();
    // Record 3, which signed checkpoints vouch for, in another form with the same content, and every later
    // record re-chained: verify reads vouched records without decoding them, meets the checkpoint, and
    // checks the chain again in full to name the record.
    rechain(&conn, 3, |seq, record| {
        let bytes = canonical(&record);
        if seq == 3 {
            bytes.replacen(",\"id\":", ", \"id\":", 1)
        } else {
            bytes
        }
    });
    assert_eq!(
        verify(&path),
        vec![ChainBreak::Content {
            chain_id: "hub-a".into(),
            sequence: 3
        }]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_reordered_and_truncated_records_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let conn = Connection::open(&path).unwrap();
    let copy = dir.path().join("pristine.db");
    conn.execute("VACUUM INTO ?1", params![copy.to_str().unwrap()])
        .unwrap();
    let reset = || {
        drop(std::fs::remove_file(dir.path().join("audit.db-wal")));
        std::fs::copy(&copy, &path).unwrap();
    };

    // Delete one record.
    conn.execute(
        "DELETE FROM records WHERE chain_id = 'hub-a' AND sequence = 6",
        [],
    )
    .unwrap();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::Gap {
            chain_id: "hub-a".into(),
            expected: 6,
            found: 7
        }]
    );
    drop(conn);

    // Reorder two: swap the contents of positions 5 and 6.
    reset();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE records SET sequence = -1 WHERE chain_id = 'hub-a' AND sequence = 5;
         UPDATE records SET sequence = 5 WHERE chain_id = 'hub-a' AND sequence = 6;
         UPDATE records SET sequence = 6 WHERE chain_id = 'hub-a' AND sequence = -1;",
    )
    .unwrap();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::Gap {
            chain_id: "hub-a".into(),
            expected: 5,
            found: 6
        }]
    );
    drop(conn);

    // Truncate the tail behind the latest checkpoint (which vouches for 10 records).
    reset();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "DELETE FROM records WHERE chain_id = 'hub-a' AND sequence > 7",
        [],
    )
    .unwrap();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::Truncated {
            chain_id: "hub-a".into(),
            last: 7,
            expected: 10,
            by: Voucher::Checkpoint(4)
        }]
    );
    drop(conn);

    // Delete a whole chain.
    reset();
    let conn = Connection::open(&path).unwrap();
    conn.execute("DELETE FROM records WHERE chain_id = 'hub-b'", [])
        .unwrap();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::ChainMissing {
            chain_id: "hub-b".into(),
            expected: 5,
            by: Voucher::Checkpoint(7)
        }]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn truncation_after_the_last_checkpoint_is_not_detectable() {
    // The documented limit: records after the latest checkpoint are vouched for by nothing but the chain
    // itself, so cutting them off leaves a shorter chain that verifies. Checkpoint often (N, T) to bound it.
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let store = EmbeddedStore::open_with(&path, options("hub-a", 4)).unwrap();
    store
        .append(event("late", OffsetDateTime::now_utc()), None)
        .await
        .unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "DELETE FROM records WHERE chain_id = 'hub-a' AND sequence = 11",
        [],
    )
    .unwrap();
    assert_eq!(verify(&path), vec![]);
    // Once the writer checkpoints again, the record is vouched for: delete it now and verify says so.
    store
        .append(event("later", OffsetDateTime::now_utc()), None)
        .await
        .unwrap();
    store.checkpoint_now().await.unwrap();
    conn.execute(
        "DELETE FROM records WHERE chain_id = 'hub-a' AND sequence = 11",
        [],
    )
    .unwrap();
    assert!(
        matches!(
            verify(&path).first(),
            Some(ChainBreak::Truncated {
                last: 10,
                expected: 11,
                ..
            })
        ),
        "{:?}",
        verify(&path)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_checkpoints_and_unknown_keys_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let conn = Connection::open(&path).unwrap();
    let original: String = conn
        .query_row("SELECT body FROM checkpoints WHERE sequence = 3", [], |r| {
            r.get(0)
        })
        .unwrap();
    // Edit a checkpoint's content.
    let forged = original.replace("\"chain_sequence\":8", "\"chain_sequence\":7");
    conn.execute(
        "UPDATE checkpoints SET body = ?1 WHERE sequence = 3",
        params![forged],
    )
    .unwrap();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::CheckpointContent { sequence: 3 }]
    );
    // Also fix its hash: the signature gives it away.
    conn.execute(
        "UPDATE checkpoints SET checkpoint_hash = ?1 WHERE sequence = 3",
        params![sha256_hex(forged.as_bytes())],
    )
    .unwrap();
    let key_id = EmbeddedStore::open_read_only(&path, None)
        .unwrap()
        .public_keys()
        .unwrap()[0]
        .key_id
        .clone();
    assert_eq!(
        verify(&path),
        vec![ChainBreak::CheckpointSignature {
            sequence: 3,
            key_id: key_id.clone()
        }]
    );

    // Pinning another key: every checkpoint is then untrusted.
    let other = tempfile::tempdir().unwrap();
    let other_key = causeway_audit::Ed25519FileSigner::load_or_create(other.path()).unwrap();
    let pinned = EmbeddedStore::open_read_only(&path, None)
        .unwrap()
        .verify_report(Some(&[causeway_audit::CheckpointSigner::public_key(
            &other_key,
        )
        .clone()]))
        .unwrap();
    assert_eq!(
        pinned.breaks.last(),
        Some(&ChainBreak::CheckpointUnknownKey {
            sequence: 1,
            key_id
        })
    );
    assert!(
        matches!(pinned.breaks[0], ChainBreak::Unregistered { .. }),
        "{:?}",
        pinned.breaks
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_made_before_the_console_indexes_gets_them_from_its_own_records() {
    use causeway_contract::guard::{GuardAction, GuardEvent, GuardStage};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = EmbeddedStore::open(&path).unwrap();
    for i in 0..6 {
        let mut e = event("alice", OffsetDateTime::now_utc());
        e.application = Some(format!("app{}", i % 2));
        e.guard_events = vec![GuardEvent {
            stage: GuardStage::Input,
            kind: "pii".into(),
            entity: if i % 3 == 0 { "EMAIL" } else { "PHONE" }.into(),
            action: GuardAction::Mask,
            count: 1,
            source: "text".into(),
        }];
        store.append(e, None).await.unwrap();
    }
    drop(store);
    // Back to the schema of a store from before the indexes.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX records_by_application; ALTER TABLE records DROP COLUMN application;
         DELETE FROM guard_findings; DELETE FROM meta WHERE key LIKE 'migration:%';",
    )
    .unwrap();
    drop(conn);
    let reader = EmbeddedStore::open_read_only(&path, None).unwrap();
    let by_app = RecordFilter {
        application: Some("app1".into()),
        ..RecordFilter::default()
    };
    assert!(matches!(
        reader.query(&by_app),
        Err(AuditError::Unsupported(_))
    ));
    drop(reader);

    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.query(&by_app).unwrap().len(), 3);
    let by_entity = RecordFilter {
        guard_entity: Some("EMAIL".into()),
        ..RecordFilter::default()
    };
    assert_eq!(store.query(&by_entity).unwrap().len(), 2);
    assert!(verify(&path).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verification_that_cannot_read_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let store = EmbeddedStore::open_read_only(&path, None).unwrap();
    // The open store still reads its file; the connections verify opens for its workers cannot.
    std::fs::remove_file(&path).unwrap();
    let err = store.verify_report(None).unwrap_err().to_string();
    assert!(err.contains("cannot open"), "{err}");
}
