//! `causeway evidence`: query, export, and verify against tampering, with the messages a person sees.

#![expect(clippy::unwrap_used, reason = "test set-up fails loudly")]

use std::path::{Path, PathBuf};

use causeway_audit::{AuditSink, EmbeddedStore, StoreOptions};
use causeway_cli::{Cli, CliExit, run};
use causeway_contract::TokenUsage;
use causeway_contract::audit::{AuditEvent, AuditRecord, Outcome, sha256_hex};
use clap::Parser;
use rusqlite::Connection;
use time::Duration;
use time::macros::datetime;
use uuid::Uuid;

fn event(n: u128, user: &str, minute: i64) -> AuditEvent {
    AuditEvent {
        id: Uuid::from_u128(n),
        call_id: Uuid::from_u128(n),
        timestamp: datetime!(2026-01-02 03:00 UTC) + Duration::minutes(minute),
        request_id: format!("req-{n}"),
        spoke_account: Some(
            if n.is_multiple_of(2) {
                "111122223333"
            } else {
                "444455556666"
            }
            .into(),
        ),
        user_sub: Some(user.into()),
        catalog_version: "2026-01".into(),
        guard_profile_version: "3".into(),
        policy_hash: "ab12".into(),
        outcome: if n.is_multiple_of(5) {
            Outcome::Denied
        } else {
            Outcome::Answered
        },
        reasons: vec![],
        usage: TokenUsage::default(),
        latency_us: 1,
        ..AuditEvent::sample()
    }
}

/// A data directory with chain `hub-a` (10 records, alice and bob) and `hub-b` (5 records, carol),
/// checkpointed every 4 records and at the end.
fn data_dir(root: &Path) -> PathBuf {
    let dir = root.join("data");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (chain, range) in [("hub-a", 1..=10_u128), ("hub-b", 11..=15)] {
        let store = EmbeddedStore::open_with(
            dir.join("audit.db"),
            StoreOptions {
                checkpoint_every: 4,
                chain_id: Some(chain.into()),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        runtime.block_on(async {
            for n in range {
                let user = match n {
                    11.. => "carol",
                    n if n.is_multiple_of(2) => "alice",
                    _ => "bob",
                };
                store
                    .append(event(n, user, i64::try_from(n).unwrap()), None)
                    .await
                    .unwrap();
            }
            store.checkpoint_now().await.unwrap();
        });
        store.close();
    }
    dir
}

/// Runs the CLI: the outcome (exit code and message) and stdout with `root` replaced by `<tmp>`.
fn cli(root: &Path, args: &[&str]) -> (Result<(), (CliExit, String)>, String) {
    let cli = Cli::try_parse_from(std::iter::once("causeway").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    let result = run(cli, &mut out).map_err(|e| (e.exit, e.message));
    let root = root.to_str().unwrap();
    let text = String::from_utf8(out).unwrap().replace(root, "<tmp>");
    (result.map_err(|(c, m)| (c, m.replace(root, "<tmp>"))), text)
}

fn export(root: &Path, data: &Path) -> PathBuf {
    let pack = root.join("pack");
    let (result, out) = cli(
        root,
        &[
            "evidence",
            "export",
            "--since",
            "2026-01-02",
            "--until",
            "2026-01-03",
            "--out",
            pack.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    result.unwrap();
    assert_eq!(
        out,
        "wrote <tmp>/pack: 15 record(s) in 2 chain(s), 7 checkpoint(s), 2026-01-02T00:00:00Z to 2026-01-03T00:00:00Z\n"
    );
    pack
}

fn verify_pack(root: &Path, pack: &Path) -> (Result<(), (CliExit, String)>, String) {
    cli(
        root,
        &["evidence", "verify", "--pack", pack.to_str().unwrap()],
    )
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[test]
fn query_by_user_and_time_as_a_table_and_as_json() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let data = data.to_str().unwrap();
    let (result, out) = cli(
        root.path(),
        &[
            "evidence",
            "query",
            "--user",
            "alice",
            "--since",
            "2026-01-02T03:03:00Z",
            "--until",
            "2026-01-02T03:09:00Z",
            "--data-dir",
            data,
        ],
    );
    result.unwrap();
    insta::assert_snapshot!(out, @r"
    TIME                  USER   ACCOUNT       MODEL      PURPOSE  OUTCOME   AUDIT ID
    2026-01-02T03:08:00Z  alice  111122223333  local-dev  support  answered  00000000-0000-0000-0000-000000000008
    2026-01-02T03:06:00Z  alice  111122223333  local-dev  support  answered  00000000-0000-0000-0000-000000000006
    2026-01-02T03:04:00Z  alice  111122223333  local-dev  support  answered  00000000-0000-0000-0000-000000000004
    3 record(s)
    ");

    let (result, out) = cli(
        root.path(),
        &[
            "--output",
            "json",
            "evidence",
            "query",
            "--decision",
            "denied",
            "--data-dir",
            data,
        ],
    );
    result.unwrap();
    let records: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "00000000-0000-0000-0000-00000000000f",
            "00000000-0000-0000-0000-00000000000a",
            "00000000-0000-0000-0000-000000000005"
        ]
    );
    assert_eq!(records[0]["record_hash"].as_str().unwrap().len(), 64);

    let (result, _) = cli(
        root.path(),
        &[
            "evidence",
            "query",
            "--since",
            "yesterday",
            "--data-dir",
            data,
        ],
    );
    let (exit, message) = result.unwrap_err();
    assert_eq!(exit, CliExit::Usage);
    insta::assert_snapshot!(message, @"`yesterday` is not a time: use RFC 3339 (`2026-01-02T03:04:05Z`), a date (`2026-01-02`) or an age (`90s`, `30m`, `24h`, `7d`)");
    let (result, _) = cli(
        root.path(),
        &["evidence", "query", "--data-dir", "/nonexistent/causeway"],
    );
    assert_eq!(result.unwrap_err().0, CliExit::Io);
}

#[test]
fn relative_times() {
    let now = datetime!(2026-01-02 03:00 UTC);
    let parse = |s| causeway_cli::evidence::parse_time(s, now).unwrap();
    assert_eq!(parse("24h"), datetime!(2026-01-01 03:00 UTC));
    assert_eq!(parse("7d"), datetime!(2025-12-26 03:00 UTC));
    assert_eq!(parse("90s"), datetime!(2026-01-02 02:58:30 UTC));
    assert_eq!(parse("2026-01-01"), datetime!(2026-01-01 00:00 UTC));
    assert_eq!(
        parse("2026-01-01T01:02:03+01:00"),
        datetime!(2026-01-01 00:02:03 UTC)
    );
}

#[test]
fn an_exported_pack_is_self_contained_and_verifies() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let pack = export(root.path(), &data);
    let mut files: Vec<String> = std::fs::read_dir(&pack)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "README.txt",
            "checkpoints.jsonl",
            "context.json",
            "manifest.json",
            "manifest.sig",
            "public-keys.json",
            "records.jsonl"
        ]
    );
    let context: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pack.join("context.json")).unwrap()).unwrap();
    assert_eq!(context["policy_hashes"][0]["value"], "ab12");
    assert_eq!(context["guard_profiles"][0]["value"], "default@3");
    assert_eq!(context["catalog_versions"][0]["records"], 15);

    // The store is not needed: move the data directory away.
    std::fs::rename(&data, root.path().join("gone")).unwrap();
    let (result, out) = verify_pack(root.path(), &pack);
    result.unwrap();
    let out: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("checkpoint log head"))
        .collect();
    insta::assert_snapshot!(out.join("\n"), @r"
    verified pack <tmp>/pack: 15 record(s) in 2 chain(s), 7 checkpoint(s)
    signatures checked against the keys it carries; pin a key kept elsewhere with `--key`
    ");

    // Pinning the right key verifies; pinning another fails on every signature.
    let (result, _) = cli(
        root.path(),
        &[
            "evidence",
            "verify",
            "--pack",
            pack.to_str().unwrap(),
            "--key",
            pack.join("public-keys.json").to_str().unwrap(),
        ],
    );
    result.unwrap();
    let other = root.path().join("other");
    causeway_audit::Ed25519FileSigner::load_or_create(&other).unwrap();
    let other_keys = other.join("keys.json");
    let signer = causeway_audit::Ed25519FileSigner::load(&other).unwrap();
    std::fs::write(
        &other_keys,
        serde_json::to_vec(&[causeway_audit::CheckpointSigner::public_key(&signer)]).unwrap(),
    )
    .unwrap();
    let (result, _) = cli(
        root.path(),
        &[
            "evidence",
            "verify",
            "--pack",
            pack.to_str().unwrap(),
            "--key",
            other_keys.to_str().unwrap(),
        ],
    );
    assert_eq!(result.unwrap_err().0, CliExit::VerificationFailed);
}

/// Tampers with a fresh pack and returns the CLI's error message and the breaks it listed.
fn tampered_pack(tamper: impl FnOnce(&Path)) -> String {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let pack = export(root.path(), &data);
    tamper(&pack);
    let (result, out) = verify_pack(root.path(), &pack);
    let (exit, message) = result.unwrap_err();
    assert_eq!(exit, CliExit::VerificationFailed, "{message}");
    let breaks: Vec<&str> = out.lines().filter(|l| l.starts_with("  - ")).collect();
    format!("{message}\n{}", breaks.join("\n"))
}

#[test]
fn pack_with_a_changed_field() {
    let out = tampered_pack(|pack| {
        let path = pack.join("records.jsonl");
        let mut records = lines(&path);
        records[2] = records[2].replace("\"user_sub\":\"alice\"", "\"user_sub\":\"mallory\"");
        records[2] = records[2].replace("\"user_sub\":\"bob\"", "\"user_sub\":\"mallory\"");
        write_lines(&path, &records);
    });
    insta::assert_snapshot!(out, @r"
    verification failed: chain `hub-a`: record 3 was altered after it was written (its content does not match its hash) (and 1 more)
      - chain `hub-a`: record 3 was altered after it was written (its content does not match its hash)
      - pack: `records.jsonl` was altered (its SHA-256 differs from the manifest's)
    ");
}

#[test]
fn pack_with_a_record_re_encoded_and_re_chained() {
    let out = tampered_pack(|pack| {
        let path = pack.join("records.jsonl");
        let mut records = lines(&path);
        // Record 3 of `hub-a` in another form with the same content, and every later record of the chain
        // re-linked and re-hashed: the records the checkpoints vouch for are hashed, not decoded, so the
        // signed heads are what no longer match, and the pack is checked again in full to name the record.
        let mut prev_hash = String::new();
        for (n, line) in records.iter_mut().enumerate().take(10).skip(2) {
            let (_, body) = line.split_once(",\"record\":").unwrap();
            let mut record: AuditRecord =
                serde_json::from_str(body.strip_suffix('}').unwrap()).unwrap();
            let bytes = if n == 2 {
                String::from_utf8(record.canonical_bytes().unwrap())
                    .unwrap()
                    .replacen(",\"id\":", ", \"id\":", 1)
            } else {
                record.prev_hash = prev_hash.clone();
                String::from_utf8(record.canonical_bytes().unwrap()).unwrap()
            };
            prev_hash = sha256_hex(bytes.as_bytes());
            *line = format!("{{\"record_hash\":\"{prev_hash}\",\"record\":{bytes}}}");
        }
        write_lines(&path, &records);
    });
    insta::assert_snapshot!(out, @r"
    verification failed: chain `hub-a`: record 3 was altered after it was written (its content does not match its hash) (and 1 more)
      - chain `hub-a`: record 3 was altered after it was written (its content does not match its hash)
      - pack: `records.jsonl` was altered (its SHA-256 differs from the manifest's)
    ");
}

#[test]
fn pack_with_a_deleted_record() {
    let out = tampered_pack(|pack| {
        let path = pack.join("records.jsonl");
        let mut records = lines(&path);
        records.remove(5);
        write_lines(&path, &records);
    });
    insta::assert_snapshot!(out, @r"
    verification failed: chain `hub-a`: record 7 stands where record 6 should: record 6 was deleted or moved (and 2 more)
      - chain `hub-a`: record 7 stands where record 6 should: record 6 was deleted or moved
      - pack: the manifest lists 15 records, `records.jsonl` holds 14
      - pack: `records.jsonl` was altered (its SHA-256 differs from the manifest's)
    ");
}

#[test]
fn pack_with_two_records_reordered() {
    let out = tampered_pack(|pack| {
        let path = pack.join("records.jsonl");
        let mut records = lines(&path);
        records.swap(4, 5);
        write_lines(&path, &records);
    });
    insta::assert_snapshot!(out, @r"
    verification failed: chain `hub-a`: record 6 stands where record 5 should: record 5 was deleted or moved (and 1 more)
      - chain `hub-a`: record 6 stands where record 5 should: record 5 was deleted or moved
      - pack: `records.jsonl` was altered (its SHA-256 differs from the manifest's)
    ");
}

#[test]
fn pack_with_a_truncated_tail() {
    let out = tampered_pack(|pack| {
        let path = pack.join("records.jsonl");
        let mut records = lines(&path);
        // hub-a's records are lines 1-10: drop its last three.
        records.drain(7..10);
        write_lines(&path, &records);
    });
    insta::assert_snapshot!(out, @r"
    verification failed: chain `hub-a`: records 8 to 10 are missing: the signed pack manifest vouches for 10 records, the chain ends at 7 (and 2 more)
      - chain `hub-a`: records 8 to 10 are missing: the signed pack manifest vouches for 10 records, the chain ends at 7
      - pack: the manifest lists 15 records, `records.jsonl` holds 12
      - pack: `records.jsonl` was altered (its SHA-256 differs from the manifest's)
    ");
}

#[test]
fn pack_with_a_whole_chain_deleted() {
    let out = tampered_pack(|pack| {
        let path = pack.join("records.jsonl");
        let records: Vec<String> = lines(&path)
            .into_iter()
            .filter(|l| !l.contains("\"chain_id\":\"hub-b\""))
            .collect();
        write_lines(&path, &records);
    });
    insta::assert_snapshot!(out, @r"
    verification failed: chain `hub-b` is missing: the signed pack manifest vouches for 5 records in it (and 2 more)
      - chain `hub-b` is missing: the signed pack manifest vouches for 5 records in it
      - pack: the manifest lists 15 records, `records.jsonl` holds 10
      - pack: `records.jsonl` was altered (its SHA-256 differs from the manifest's)
    ");
}

#[test]
fn pack_with_a_replaced_checkpoint() {
    let out = tampered_pack(|pack| {
        let path = pack.join("checkpoints.jsonl");
        let mut checkpoints = lines(&path);
        checkpoints[2] = checkpoints[2].replace("\"chain_sequence\":8", "\"chain_sequence\":7");
        write_lines(&path, &checkpoints);
    });
    insta::assert_snapshot!(out, @r"
    verification failed: checkpoint log: checkpoint 3 was altered (its content does not match its hash) (and 1 more)
      - checkpoint log: checkpoint 3 was altered (its content does not match its hash)
      - pack: `checkpoints.jsonl` was altered (its SHA-256 differs from the manifest's)
    ");
}

#[test]
fn pack_with_an_edited_manifest() {
    let out = tampered_pack(|pack| {
        let path = pack.join("manifest.json");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"records\": 15", "\"records\": 14")).unwrap();
    });
    insta::assert_snapshot!(out, @r"
    verification failed: pack: `manifest.sig` is missing or is not a valid signature of `manifest.json` by a trusted key (and 1 more)
      - pack: `manifest.sig` is missing or is not a valid signature of `manifest.json` by a trusted key
      - pack: the manifest lists 14 records, `records.jsonl` holds 15
    ");
}

/// Tampers with a fresh store and returns the CLI's error message and exit code.
fn tampered_store(tamper: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let conn = Connection::open(data.join("audit.db")).unwrap();
    conn.execute_batch(tamper).unwrap();
    let (result, out) = cli(
        root.path(),
        &["evidence", "verify", "--data-dir", data.to_str().unwrap()],
    );
    let (exit, message) = result.unwrap_err();
    assert_eq!(exit, CliExit::VerificationFailed, "{message}");
    assert!(out.starts_with("FAILED store <tmp>/data"), "{out}");
    message
}

#[test]
fn store_tampering_is_named() {
    let changed = tampered_store(
        "UPDATE records SET body = replace(body, '\"user_sub\":\"bob\"', '\"user_sub\":\"mallory\"')
         WHERE chain_id = 'hub-a' AND sequence = 3",
    );
    let deleted = tampered_store("DELETE FROM records WHERE chain_id = 'hub-a' AND sequence = 6");
    let reordered = tampered_store(
        "UPDATE records SET sequence = -1 WHERE chain_id = 'hub-a' AND sequence = 5;
         UPDATE records SET sequence = 5 WHERE chain_id = 'hub-a' AND sequence = 6;
         UPDATE records SET sequence = 6 WHERE chain_id = 'hub-a' AND sequence = -1;",
    );
    let truncated = tampered_store("DELETE FROM records WHERE chain_id = 'hub-a' AND sequence > 7");
    let chain = tampered_store("DELETE FROM records WHERE chain_id = 'hub-b'");
    let checkpoint = tampered_store(
        "UPDATE checkpoints SET body = replace(body, '\"chain_sequence\":8', '\"chain_sequence\":7') WHERE sequence = 3",
    );
    let all = [changed, deleted, reordered, truncated, chain, checkpoint].join("\n");
    insta::assert_snapshot!(all, @r"
    verification failed: chain `hub-a`: record 3 was altered after it was written (its content does not match its hash)
    verification failed: chain `hub-a`: record 7 stands where record 6 should: record 6 was deleted or moved
    verification failed: chain `hub-a`: record 6 stands where record 5 should: record 5 was deleted or moved
    verification failed: chain `hub-a`: records 8 to 10 are missing: signed checkpoint 4 vouches for 10 records, the chain ends at 7
    verification failed: chain `hub-b` is missing: signed checkpoint 7 vouches for 5 records in it
    verification failed: checkpoint log: checkpoint 3 was altered (its content does not match its hash)
    ");
}

#[test]
fn a_clean_store_verifies_and_missing_inputs_are_io_errors() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let (result, out) = cli(
        root.path(),
        &["evidence", "verify", "--data-dir", data.to_str().unwrap()],
    );
    result.unwrap();
    assert!(
        out.starts_with("verified store <tmp>/data: 15 record(s) in 2 chain(s), 7 checkpoint(s)"),
        "{out}"
    );
    let (result, _) = cli(
        root.path(),
        &["evidence", "keys", "--data-dir", data.to_str().unwrap()],
    );
    result.unwrap();
    let (result, _) = verify_pack(root.path(), &root.path().join("no-pack"));
    let (exit, message) = result.unwrap_err();
    assert_eq!(exit, CliExit::Io);
    insta::assert_snapshot!(message, @"audit store unavailable: `<tmp>/no-pack` is not a directory");
    let (result, _) = cli(
        root.path(),
        &[
            "evidence",
            "verify",
            "--data-dir",
            root.path().join("none").to_str().unwrap(),
        ],
    );
    assert_eq!(result.unwrap_err().0, CliExit::Io);
}
