//! The AWS audit store against moto: conditional record writes that refuse a fork, the by-user index, payloads
//! in S3 with SSE-KMS and Object Lock compliance retention, the lifecycle rule, and verification against the
//! signed checkpoint log.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use causeway_audit::{
    AuditError, AuditSink, ChainBreak, CheckpointSigner, Ed25519FileSigner, Payload,
};
use causeway_contract::TokenUsage;
use causeway_contract::audit::{AuditEvent, Outcome, sha256_hex};
use causeway_hub::audit_aws::{AwsAuditOptions, AwsAuditStore, configure_bucket, create_table};
use causeway_testkit::moto::MotoServer;
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
        api: "invoke".into(),
        workload_principal: None,
        spoke_account: Some("111122223333".into()),
        application: Some("app".into()),
        user_sub: Some(user.into()),
        user_issuer: None,
        purpose: Some("support".into()),
        data_classification: None,
        model_alias: Some("claude-haiku".into()),
        model_id: None,
        model_version: None,
        provider: Some("bedrock".into()),
        development_model: false,
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
        prompt_sha256: Some(sha256_hex(prompt.as_bytes())),
        response_sha256: Some(sha256_hex(answer.as_bytes())),
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
