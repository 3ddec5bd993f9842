//! The AWS audit store against moto: conditional record writes that refuse a fork, the by-user index, payloads
//! in S3 with SSE-KMS and Object Lock compliance retention, the lifecycle rule, and verification against the
//! signed checkpoint log; checkpoints signed by a KMS key (moto) verified offline; a hub configured with `audit.store = "aws"` writing there, and refusing calls when
//! it cannot; `causeway evidence query|export|verify --store aws`, naming altered and deleted records; payloads
//! envelope-encrypted under per-day KMS data keys and a day erased with `causeway evidence erase --store aws`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use causeway_audit::{
    AuditError, AuditSink, ChainBreak, CheckpointSigner, Ed25519FileSigner, Payload,
};
use causeway_audit_aws::kms::KmsSigner;
use causeway_audit_aws::{AwsAuditOptions, AwsAuditStore, configure_bucket, create_table};
use causeway_cli::CliExit;
use causeway_contract::TokenUsage;
use causeway_contract::audit::{AuditEvent, AuditRecord, Outcome, sha256_hex};
use causeway_hub::app::Overrides;
use causeway_hub::config::HubConfig;
use causeway_testkit::hub::{HubOptions, spawn_hub_with};
use causeway_testkit::moto::MotoServer;
use clap::Parser;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

const TABLE: &str = "causeway-audit";
const BUCKET: &str = "causeway-audit-payloads";

fn call(user: &str, prompt: &str, answer: &str) -> (AuditEvent, Payload) {
    let id = Uuid::now_v7();
    let event = AuditEvent {
        id,
        call_id: id,
        timestamp: OffsetDateTime::now_utc(),
        request_id: "req".into(),
        spoke_account: Some("111122223333".into()),
        application: Some("app".into()),
        user_sub: Some(user.into()),
        user_issuer: None,
        data_classification: None,
        model_alias: Some("claude-haiku".into()),
        model_id: None,
        model_version: None,
        provider: Some("bedrock".into()),
        development_model: false,
        catalog_version: "c".into(),
        reasons: vec![],
        usage: TokenUsage::default(),
        latency_us: 1,
        prompt_sha256: Some(sha256_hex(prompt.as_bytes())),
        response_sha256: Some(sha256_hex(answer.as_bytes())),
        ..AuditEvent::sample()
    };
    let payload = Payload {
        prompt: prompt.into(),
        response: answer.into(),
    };
    (event, payload)
}

fn options(chain: &str) -> AwsAuditOptions {
    AwsAuditOptions {
        table: TABLE.into(),
        bucket: BUCKET.into(),
        kms_key_id: Some("alias/causeway-audit".into()),
        retention_days: 30,
        chain_id: chain.into(),
        checkpoint_every: 4,
        checkpoint_interval: Duration::from_secs(3600),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_store_writes_conditionally_locks_payloads_and_verifies() {
    let moto = MotoServer::start().await.unwrap();
    let config = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    create_table(&ddb, TABLE).await.unwrap();
    s3.create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    configure_bucket(&s3, BUCKET, 30).await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let signer = Arc::new(Ed25519FileSigner::load_or_create(keys.path()).unwrap());
    let trusted = [signer.public_key().clone()];

    let store = AwsAuditStore::open(ddb.clone(), s3.clone(), options("lambda-a"), signer.clone())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        let (event, payload) = call(user, &format!("prompt {i}"), &format!("answer {i}"));
        ids.push((
            event.id,
            event.timestamp,
            store.append(event, Some(payload)).await.unwrap(),
        ));
    }
    assert_eq!(ids.last().unwrap().2.sequence, 6);

    // The console's reads: a record by its position, each chain's head and latest checkpoint, a payload.
    let table = causeway_audit_aws::AwsAuditReader::new(ddb.clone(), TABLE);
    let chain = store.chain_id().to_owned();
    let (third, hash) = table.record(&chain, 3).await.unwrap().unwrap();
    assert_eq!((third.sequence, third.event.id), (3, ids[2].0));
    assert_eq!(third.record_hash().unwrap(), hash);
    assert!(table.record(&chain, 7).await.unwrap().is_none());
    // Filters no index holds are read from the chains, newest first, down to the range.
    let newest = table
        .query_chains(&causeway_audit::RecordFilter {
            limit: 4,
            ..causeway_audit::RecordFilter::default()
        })
        .await
        .unwrap();
    let sequences: Vec<u64> = newest.iter().map(|(r, _)| r.sequence).collect();
    assert_eq!(sequences, [6, 5, 4, 3]);
    let bobs_after_the_first = table
        .query_chains(&causeway_audit::RecordFilter {
            user_sub: Some("bob".into()),
            outcome: Some("answered".into()),
            since_unix_ms: Some(ids[1].1.unix_timestamp() * 1000),
            before: Some((
                i64::try_from(ids[5].1.unix_timestamp_nanos() / 1_000_000).unwrap(),
                ids[5].0.to_string(),
            )),
            ..causeway_audit::RecordFilter::default()
        })
        .await
        .unwrap();
    let sequences: Vec<u64> = bobs_after_the_first
        .iter()
        .map(|(r, _)| r.sequence)
        .collect();
    assert_eq!(sequences, [4, 2]);
    let heads = table.chains().await.unwrap();
    let head = heads.iter().find(|c| c.chain_id == chain).unwrap();
    assert_eq!(head.head_sequence, 6);
    assert!(head.checkpoint_sequence.is_some());

    // The by-user index answers one user over a time range.
    let now = OffsetDateTime::now_utc();
    let day_ago = now - time::Duration::days(1);
    let alice = store
        .query_user(
            "alice",
            day_ago.unix_timestamp() * 1000,
            (now.unix_timestamp() + 60) * 1000,
        )
        .await
        .unwrap();
    assert_eq!(alice.len(), 3);
    assert!(
        alice
            .iter()
            .all(|r| r.event.user_sub.as_deref() == Some("alice"))
    );

    // Payloads: SSE-KMS and Object Lock in compliance mode; the record holds only their hash.
    let (id, at, _) = ids[0];
    let key = format!("payloads/{}/{id}.json", causeway_audit::period_of(at));
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    // (moto does not serve GetObjectRetention; the object's headers carry the same.)
    assert_eq!(
        head.object_lock_mode(),
        Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
    );
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let expected = (OffsetDateTime::now_utc() + time::Duration::days(30)).unix_timestamp();
    assert!((until - expected).abs() < 120, "{until} vs {expected}");
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    let payload: Payload = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(payload.prompt, "prompt 0");
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        lifecycle.rules()[0].expiration().and_then(|e| e.days()),
        Some(31)
    );

    // A second writer on the same chain with a stale head cannot fork it.
    let stale = AwsAuditStore::open(ddb.clone(), s3.clone(), options("lambda-a"), signer.clone())
        .await
        .unwrap();
    let (event, payload) = call("mallory", "x", "y");
    store.append(event, Some(payload)).await.unwrap();
    let (event, payload) = call("mallory", "x", "y");
    let err = stale.append(event, Some(payload)).await.unwrap_err();
    assert!(
        matches!(err, AuditError::Write(ref m) if m.contains("another writer")),
        "{err}"
    );
    // A second chain of its own is fine.
    let other = AwsAuditStore::open(ddb.clone(), s3.clone(), options("lambda-b"), signer.clone())
        .await
        .unwrap();
    let (event, payload) = call("carol", "p", "a");
    other.append(event, Some(payload)).await.unwrap();

    let report = store.verify_report(&trusted).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.breaks);
    assert_eq!((report.records, report.chains), (8, 2));

    // Tampering with an item is caught, naming the record.
    ddb.update_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("chain#lambda-a".into()))
        .key("sk", AttributeValue::N("2".into()))
        .update_expression("SET body = :b")
        .expression_attribute_values(
            ":b",
            AttributeValue::S(
                ddb.get_item()
                    .table_name(TABLE)
                    .key("pk", AttributeValue::S("chain#lambda-a".into()))
                    .key("sk", AttributeValue::N("2".into()))
                    .send()
                    .await
                    .unwrap()
                    .item()
                    .unwrap()["body"]
                    .as_s()
                    .unwrap()
                    .replace("\"user_sub\":\"bob\"", "\"user_sub\":\"eve\""),
            ),
        )
        .send()
        .await
        .unwrap();
    let report = store.verify_report(&trusted).await.unwrap();
    assert_eq!(
        report.breaks,
        vec![ChainBreak::Content {
            chain_id: "lambda-a".into(),
            sequence: 2
        }]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_configured_for_aws_audits_to_dynamodb_and_s3_and_refuses_when_it_cannot() {
    let moto = MotoServer::start().await.unwrap();
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    create_table(&ddb, TABLE).await.unwrap();
    s3.create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    configure_bucket(&s3, BUCKET, 30).await.unwrap();
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    kms.create_alias()
        .alias_name("alias/causeway-checkpoints")
        .target_key_id(key.key_metadata().unwrap().key_id())
        .send()
        .await
        .unwrap();
    // The payload key: payloads are sealed under per-day data keys generated with it.
    let payload_key = kms.create_key().send().await.unwrap();
    kms.create_alias()
        .alias_name("alias/causeway-audit")
        .target_key_id(payload_key.key_metadata().unwrap().key_id())
        .send()
        .await
        .unwrap();

    let config = HubConfig::parse(
        "causeway.toml",
        &format!(
            "[audit]\nstore = \"aws\"\ntable = \"{TABLE}\"\nbucket = \"{BUCKET}\"\n\
             kms_key_id = \"alias/causeway-audit\"\nsigning_key_id = \"alias/causeway-checkpoints\"\n\
             retention_days = 30\nchain_id = \"hub-e2e\"\n\
             region = \"us-east-1\"\nendpoint_url = \"{}\"\n",
            moto.endpoint_url()
        ),
    )
    .unwrap();
    let hub = spawn_hub_with(HubOptions {
        config,
        overrides: Overrides {
            aws: Some(sdk.clone()),
            ..Overrides::default()
        },
        ..HubOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(hub.state.audit.kind(), "aws");
    let token = hub.token("alice", &[]);
    let body = json!({"model": "local-dev", "purpose": "evaluation",
        "messages": [{"role": "user", "content": "hello from the hub"}]});

    let response = reqwest::Client::new()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    let text = answer["answer"].as_str().unwrap().to_owned();

    // The record is in the table, at the head of the configured chain.
    let item = ddb
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("chain#hub-e2e".into()))
        .key("sk", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap()
        .item()
        .unwrap()
        .clone();
    let record: AuditRecord = serde_json::from_str(item["body"].as_s().unwrap()).unwrap();
    assert_eq!(record.chain_id, "hub-e2e");
    assert_eq!(record.event.user_sub.as_deref(), Some("alice"));
    assert_eq!(record.event.outcome, Outcome::Answered);

    // Its payload is in the bucket and hashes to what the record holds.
    let key = format!(
        "payloads/{}/{}.json",
        causeway_audit::period_of(record.event.timestamp),
        record.event.id
    );
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        object.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("hello from the hub"),
        "payloads are sealed before they reach S3"
    );
    // Open it the way an auditor with KMS access would: unwrap the day's data key, then AES-GCM.
    let day = causeway_audit::period_of(record.event.timestamp);
    let key_item = ddb
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(format!("datakey#{day}")))
        .key("sk", AttributeValue::N("0".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let wrapped = key_item.item().unwrap()["wrapped_key"]
        .as_b()
        .unwrap()
        .clone();
    let data_key = kms
        .decrypt()
        .ciphertext_blob(wrapped)
        .encryption_context("causeway-day", &day)
        .send()
        .await
        .unwrap();
    let plain = causeway_audit::open_payload(
        data_key.plaintext().unwrap().as_ref(),
        &record.event.id.to_string(),
        &day,
        &bytes,
    )
    .unwrap()
    .unwrap();
    let payload: Payload = serde_json::from_slice(&plain).unwrap();
    assert!(
        payload.prompt.contains("hello from the hub"),
        "{}",
        payload.prompt
    );
    assert_eq!(payload.response, text);
    assert_eq!(
        record.event.response_sha256,
        Some(sha256_hex(payload.response.as_bytes()))
    );

    // Checkpoints are signed by the KMS key; its public key verifies them with no AWS access.
    let signer = KmsSigner::new(kms.clone(), "alias/causeway-checkpoints")
        .await
        .unwrap();
    let public = signer.public_key().clone();
    assert!(
        public.key_id.starts_with("ecdsa-p256:"),
        "{}",
        public.key_id
    );
    let genesis = ddb
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("checkpoints".into()))
        .key("sk", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap()
        .item()
        .unwrap()
        .clone();
    let signed = genesis["body"].as_s().unwrap();
    assert!(signed.contains(&public.key_id), "{signed}");
    assert!(public.verify(signed.as_bytes(), genesis["signature"].as_s().unwrap()));
    assert!(!public.verify(b"another body", genesis["signature"].as_s().unwrap()));
    let blocking: String = signer
        .sign(b"from blocking code")
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(public.verify(b"from blocking code", &blocking));
    let reader = AwsAuditStore::open(ddb.clone(), s3.clone(), options("reader"), Arc::new(signer))
        .await
        .unwrap();
    let report = reader.verify_report(&[public]).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.breaks);
    assert_eq!((report.records, report.chains), (1, 2));
    let files = tempfile::tempdir().unwrap();
    let stranger = Ed25519FileSigner::load_or_create(files.path()).unwrap();
    let report = reader
        .verify_report(&[stranger.public_key().clone()])
        .await
        .unwrap();
    assert!(!report.is_ok());

    // When DynamoDB refuses the write, the caller gets 503 and no answer.
    ddb.delete_table().table_name(TABLE).send().await.unwrap();
    let response = reqwest::Client::new()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "audit_unavailable", "{refused}");
    assert!(refused.get("answer").is_none(), "{refused}");
}

/// Runs `causeway <args>` (an `evidence` command) against moto, off the async runtime as the CLI blocks.
async fn causeway(
    sdk: &aws_config::SdkConfig,
    args: Vec<String>,
) -> (Result<(), causeway_cli::CliError>, String) {
    let sdk = sdk.clone();
    tokio::task::spawn_blocking(move || {
        let cli = causeway_cli::Cli::parse_from(std::iter::once("causeway".to_owned()).chain(args));
        let causeway_cli::Command::Evidence(command) = cli.command else {
            unreachable!("only evidence commands are run here")
        };
        let mut out = Vec::new();
        let result =
            causeway_cli::evidence::run_with_aws(command, cli.output, &mut out, Some(&sdk));
        (result, String::from_utf8(out).unwrap())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_cli_queries_exports_and_verifies_the_aws_table_and_names_altered_and_deleted_records()
 {
    let moto = MotoServer::start().await.unwrap();
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    create_table(&ddb, TABLE).await.unwrap();
    s3.create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let signer = Arc::new(KmsSigner::new(kms.clone(), &key_id).await.unwrap());
    for chain in ["lambda-a", "lambda-b"] {
        let store = AwsAuditStore::open(ddb.clone(), s3.clone(), options(chain), signer.clone())
            .await
            .unwrap();
        for i in 0..5 {
            let (event, payload) = call("alice", &format!("prompt {i}"), &format!("answer {i}"));
            store.append(event, Some(payload)).await.unwrap();
        }
    }
    let aws = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| (*a).to_owned())
            .chain([
                "--store".into(),
                "aws".into(),
                "--region".into(),
                "us-east-1".into(),
                "--endpoint-url".into(),
                moto.endpoint_url(),
            ])
            .collect()
    };

    // The public key comes from KMS, to keep apart from the table and pin.
    let (result, keys) = causeway(
        &sdk,
        aws(&["evidence", "keys", "--signing-key-id", &key_id]),
    )
    .await;
    result.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys.json");
    std::fs::write(&key_file, &keys).unwrap();
    let key_path = key_file.display().to_string();
    let verify = aws(&["evidence", "verify", "--table", TABLE, "--key", &key_path]);

    let (result, text) = causeway(&sdk, verify.clone()).await;
    result.unwrap();
    assert!(
        text.starts_with("verified table causeway-audit: 10 record(s) in 2 chain(s)"),
        "{text}"
    );

    // Queries go through the table's indexes.
    let (result, text) = causeway(
        &sdk,
        aws(&[
            "evidence", "query", "--table", TABLE, "--user", "alice", "--limit", "0",
        ]),
    )
    .await;
    result.unwrap();
    assert!(text.ends_with("10 record(s)\n"), "{text}");
    let (result, text) = causeway(
        &sdk,
        aws(&[
            "evidence",
            "query",
            "--table",
            TABLE,
            "--account",
            "111122223333",
            "--limit",
            "3",
            "--output",
            "json",
        ]),
    )
    .await;
    result.unwrap();
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["record_hash"].as_str().unwrap().len() == 64)
    );
    // Two filters no single index holds: the chains are read newest first, from both instances.
    let (result, text) = causeway(
        &sdk,
        aws(&[
            "evidence",
            "query",
            "--table",
            TABLE,
            "--user",
            "alice",
            "--model",
            "claude-haiku",
            "--output",
            "json",
        ]),
    )
    .await;
    result.unwrap();
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(rows.len(), 10);
    let (result, text) = causeway(
        &sdk,
        aws(&[
            "evidence", "query", "--table", TABLE, "--user", "alice", "--model", "m", "--output",
            "json",
        ]),
    )
    .await;
    result.unwrap();
    assert_eq!(serde_json::from_str::<Vec<Value>>(&text).unwrap().len(), 0);

    // An evidence pack exported from the table, its manifest signed by the KMS key, verifies with no AWS.
    let pack = dir.path().join("pack").display().to_string();
    let (result, text) = causeway(
        &sdk,
        aws(&[
            "evidence",
            "export",
            "--table",
            TABLE,
            "--signing-key-id",
            &key_id,
            "--since",
            "1d",
            "--out",
            &pack,
        ]),
    )
    .await;
    result.unwrap();
    assert!(text.contains("10 record(s) in 2 chain(s)"), "{text}");
    let args = [
        "causeway", "evidence", "verify", "--pack", &pack, "--key", &key_path,
    ];
    let cli = causeway_cli::Cli::parse_from(args);
    let causeway_cli::Command::Evidence(command) = cli.command else {
        unreachable!("an evidence command")
    };
    let mut out = Vec::new();
    causeway_cli::evidence::run(command, cli.output, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("10 record(s) in 2 chain(s)"), "{text}");

    // Without a pinned key there is nothing to trust: a usage error.
    let (result, _) = causeway(&sdk, aws(&["evidence", "verify", "--table", TABLE])).await;
    assert_eq!(result.unwrap_err().exit, CliExit::Usage);

    // Alter a field in one chain's item, delete an item of the other: both are named.
    let item = |chain: &str, sequence: u64| {
        (
            AttributeValue::S(format!("chain#{chain}")),
            AttributeValue::N(sequence.to_string()),
        )
    };
    let (pk, sk) = item("lambda-a", 2);
    let body = ddb
        .get_item()
        .table_name(TABLE)
        .key("pk", pk.clone())
        .key("sk", sk.clone())
        .send()
        .await
        .unwrap()
        .item()
        .unwrap()["body"]
        .as_s()
        .unwrap()
        .replace("\"purpose\":\"support\"", "\"purpose\":\"marketing\"");
    ddb.update_item()
        .table_name(TABLE)
        .key("pk", pk)
        .key("sk", sk)
        .update_expression("SET body = :b")
        .expression_attribute_values(":b", AttributeValue::S(body))
        .send()
        .await
        .unwrap();
    let (pk, sk) = item("lambda-b", 3);
    ddb.delete_item()
        .table_name(TABLE)
        .key("pk", pk)
        .key("sk", sk)
        .send()
        .await
        .unwrap();

    let (result, text) = causeway(&sdk, verify).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit, CliExit::VerificationFailed);
    assert!(
        err.message
            .contains("chain `lambda-a`: record 2 was altered"),
        "{}",
        err.message
    );
    assert!(
        text.contains("chain `lambda-b`: record 4 stands where record 3 should"),
        "{text}"
    );
}

/// A moto-backed table and bucket, an Ed25519 checkpoint signer and the key that verifies it.
struct Tamper {
    _moto: MotoServer,
    _keys: tempfile::TempDir,
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    signer: Arc<Ed25519FileSigner>,
    trusted: Vec<causeway_audit::PublicKeyInfo>,
}

impl Tamper {
    async fn start() -> Self {
        let moto = MotoServer::start().await.unwrap();
        let config = moto.sdk_config().await;
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        create_table(&ddb, TABLE).await.unwrap();
        s3.create_bucket()
            .bucket(BUCKET)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .unwrap();
        let keys = tempfile::tempdir().unwrap();
        let signer = Arc::new(Ed25519FileSigner::load_or_create(keys.path()).unwrap());
        let trusted = vec![signer.public_key().clone()];
        Self {
            _moto: moto,
            _keys: keys,
            ddb,
            s3,
            signer,
            trusted,
        }
    }

    /// Opens `chain` (registering it) and appends `records` records; returns the store.
    async fn write(&self, chain: &str, records: usize) -> AwsAuditStore {
        let store = AwsAuditStore::open(
            self.ddb.clone(),
            self.s3.clone(),
            options(chain),
            self.signer.clone(),
        )
        .await
        .unwrap();
        for i in 0..records {
            let (event, payload) = call("alice", &format!("prompt {i}"), &format!("answer {i}"));
            store.append(event, Some(payload)).await.unwrap();
        }
        store
    }

    async fn item(&self, pk: &str, sk: u64) -> std::collections::HashMap<String, AttributeValue> {
        self.ddb
            .get_item()
            .table_name(TABLE)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::N(sk.to_string()))
            .send()
            .await
            .unwrap()
            .item()
            .unwrap()
            .clone()
    }

    async fn put(&self, item: std::collections::HashMap<String, AttributeValue>) {
        self.ddb
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    async fn delete(&self, pk: &str, sk: u64) {
        self.ddb
            .delete_item()
            .table_name(TABLE)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::N(sk.to_string()))
            .send()
            .await
            .unwrap();
    }

    /// What verification of the table reports, one line per break.
    async fn breaks(&self, store: &AwsAuditStore) -> Vec<String> {
        let report = store.verify_report(&self.trusted).await.unwrap();
        let key = &self.trusted[0].key_id;
        report
            .breaks
            .iter()
            .map(|b| b.to_string().replace(key, "<trusted key>"))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_verify_names_two_reordered_records() {
    let t = Tamper::start().await;
    let store = t.write("lambda-a", 6).await;
    assert_eq!(t.breaks(&store).await, Vec::<String>::new());

    // Swap the contents of records 2 and 3, keeping each item's key.
    let mut second = t.item("chain#lambda-a", 2).await;
    let mut third = t.item("chain#lambda-a", 3).await;
    for key in ["pk", "sk"] {
        let (a, b) = (second[key].clone(), third[key].clone());
        second.insert(key.into(), b);
        third.insert(key.into(), a);
    }
    t.put(second).await;
    t.put(third).await;

    insta::assert_debug_snapshot!(t.breaks(&store).await, @r#"
    [
        "chain `lambda-a`: record 3 stands where record 2 should: record 2 was deleted or moved",
    ]
    "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_verify_names_the_records_truncated_behind_a_signed_checkpoint() {
    let t = Tamper::start().await;
    // `checkpoint_every: 4`: checkpoints 2 and 3 of the log cover records 4 and 8.
    let store = t.write("lambda-a", 8).await;
    assert_eq!(t.breaks(&store).await, Vec::<String>::new());

    t.delete("chain#lambda-a", 8).await;
    t.delete("chain#lambda-a", 7).await;

    insta::assert_debug_snapshot!(t.breaks(&store).await, @r#"
    [
        "chain `lambda-a`: records 7 to 8 are missing: signed checkpoint 3 vouches for 8 records, the chain ends at 6",
    ]
    "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_verify_says_a_deleted_chain_is_missing() {
    let t = Tamper::start().await;
    let store = t.write("lambda-a", 5).await;
    t.write("lambda-b", 5).await;
    let report = store.verify_report(&t.trusted).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.breaks);
    assert_eq!((report.records, report.chains), (10, 2));

    for sequence in 1..=5 {
        t.delete("chain#lambda-b", sequence).await;
    }

    insta::assert_debug_snapshot!(t.breaks(&store).await, @r#"
    [
        "chain `lambda-b` is missing: signed checkpoint 4 vouches for 4 records in it",
    ]
    "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_verify_reports_an_altered_checkpoint() {
    let t = Tamper::start().await;
    let store = t.write("lambda-a", 8).await;
    assert_eq!(t.breaks(&store).await, Vec::<String>::new());

    // Checkpoint 2 vouched for record 4; make it vouch for record 3. Its stored hash gives that away...
    let mut item = t.item("checkpoints", 2).await;
    let body = item["body"]
        .as_s()
        .unwrap()
        .replace("\"chain_sequence\":4", "\"chain_sequence\":3");
    assert_ne!(&body, item["body"].as_s().unwrap());
    let mut stale = item.clone();
    stale.insert("body".into(), AttributeValue::S(body.clone()));
    t.put(stale).await;
    insta::assert_debug_snapshot!(t.breaks(&store).await, @r#"
    [
        "checkpoint log: checkpoint 2 was altered (its content does not match its hash)",
    ]
    "#);

    // ...and with a matching stored hash, its signature does (the log reports its first break).
    item.insert(
        "checkpoint_hash".into(),
        AttributeValue::S(sha256_hex(body.as_bytes())),
    );
    item.insert("chain_sequence".into(), AttributeValue::N("3".into()));
    item.insert("body".into(), AttributeValue::S(body));
    t.put(item).await;

    insta::assert_debug_snapshot!(t.breaks(&store).await, @r#"
    [
        "checkpoint log: checkpoint 2 does not carry a valid signature of key `<trusted key>`",
    ]
    "#);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_store_envelope_encrypts_payloads_per_day_and_erases_a_day() {
    let moto = MotoServer::start().await.unwrap();
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    create_table(&ddb, TABLE).await.unwrap();
    s3.create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms.create_key().send().await.unwrap();
    let payload_key = key.key_metadata().unwrap().key_id().to_owned();
    let keys = tempfile::tempdir().unwrap();
    let signer = Arc::new(Ed25519FileSigner::load_or_create(keys.path()).unwrap());
    let trusted = [signer.public_key().clone()];
    let mut opts = options("lambda-erase");
    opts.kms_key_id = Some(payload_key);
    let store = AwsAuditStore::open(ddb.clone(), s3.clone(), opts, signer.clone())
        .await
        .unwrap()
        .with_payload_kms(kms.clone());

    // Two records three days ago, one today: the record's day is its event's timestamp.
    let now = OffsetDateTime::now_utc();
    let old_day = (now - time::Duration::days(3)).date();
    let mut written = Vec::new();
    for (i, at) in [
        now - time::Duration::days(3),
        now - time::Duration::days(3),
        now,
    ]
    .into_iter()
    .enumerate()
    {
        let (mut event, payload) = call("alice", &format!("prompt {i}"), &format!("answer {i}"));
        event.timestamp = at;
        written.push((event.id, at.date()));
        store.append(event, Some(payload)).await.unwrap();
    }
    let (old_id, _) = written[0];
    let (new_id, today) = written[2];

    // Sealed client-side: the S3 object is not the plaintext; the store reads it back.
    let object = s3
        .get_object()
        .bucket(BUCKET)
        .key(format!(
            "payloads/{}/{old_id}.json",
            causeway_audit::period_of(now - time::Duration::days(3))
        ))
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert!(serde_json::from_slice::<Payload>(&bytes).is_err());
    assert_eq!(
        store.payload(old_id, old_day).await.unwrap().prompt,
        "prompt 0"
    );
    assert_eq!(
        store.payload(new_id, today).await.unwrap().response,
        "answer 2"
    );
    // The console's payload read: found by the record, checked against its hashes.
    let table = causeway_audit_aws::AwsAuditReader::new(ddb.clone(), TABLE);
    let (record, _) = table.record(store.chain_id(), 3).await.unwrap().unwrap();
    assert_eq!(record.event.id, new_id);
    let state = store.payload_state(&record).await.unwrap();
    assert!(
        matches!(&state, causeway_audit::PayloadState::Stored(p) if p.response == "answer 2"),
        "{state:?}"
    );
    // One wrapped key per day in the table.
    let wrapped = ddb
        .get_item()
        .table_name(TABLE)
        .key(
            "pk",
            AttributeValue::S(format!("datakey#{}", causeway_audit::period_of(now))),
        )
        .key("sk", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    assert!(wrapped.item().is_some());

    // A day that has not ended a full day ago is refused.
    let yesterday = (now - time::Duration::days(1)).date();
    let refused = store.erase_period(yesterday).await.unwrap_err();
    assert!(
        refused.to_string().contains("can be erased from"),
        "{refused}"
    );
    let refused = store.erase_period(today).await.unwrap_err();
    assert!(
        refused.to_string().contains("can be erased from"),
        "{refused}"
    );

    // Erasing the older day through the CLI: its payloads become unreadable, today's still read.
    let day = causeway_audit::period_of(now - time::Duration::days(3));
    let args: Vec<String> = [
        "--output",
        "json",
        "evidence",
        "erase",
        "--store",
        "aws",
        "--table",
        TABLE,
        "--bucket",
        BUCKET,
        "--day",
        &day,
        "--region",
        "us-east-1",
        "--endpoint-url",
        &moto.endpoint_url(),
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    let (result, out) = causeway(&sdk, args).await;
    result.unwrap();
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out, json!({"period": day, "payloads": 2}));

    let fresh = AwsAuditStore::open(
        ddb.clone(),
        s3.clone(),
        options("reader-erase"),
        signer.clone(),
    )
    .await
    .unwrap()
    .with_payload_kms(kms.clone());
    for reader in [&store, &fresh] {
        let err = reader.payload(old_id, old_day).await.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("the payloads of {day} are erased")),
            "{err}"
        );
        assert_eq!(
            reader.payload(new_id, today).await.unwrap().prompt,
            "prompt 2"
        );
    }
    // A later write for the erased day is refused.
    let (mut event, payload) = call("alice", "late", "late");
    event.timestamp = now - time::Duration::days(3);
    let err = store.append(event, Some(payload)).await.unwrap_err();
    assert!(err.to_string().contains("erased"), "{err}");

    // Records and checkpoints are untouched: the table still verifies.
    let report = store.verify_report(&trusted).await.unwrap();
    assert!(report.breaks.is_empty(), "{:?}", report.breaks);
}
