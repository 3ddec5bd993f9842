//! Workload identity end to end: a workload assumes its invoker role in moto's STS, pre-signs
//! `sts:GetCallerIdentity` with the role's credentials, and calls the real hub, which checks the proof,
//! forwards it to moto's STS, maps the returned role to its spoke and audits the call under it.
//!
//! moto answers `GetCallerIdentity` for any request made with credentials it issued, without checking the
//! SigV4 signature, so a forged signature is not caught here; what the hub itself checks (target endpoint,
//! action, freshness, server-id binding, registration and status of the principal) is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use causeway_audit::RecordFilter;
use causeway_cli::orgfile::{DesiredAccount, OrgFile, SpokeBudgets, SpokeSettings};
use causeway_contract::audit::{AuditRecord, Outcome};
use causeway_contract::registry::{EntryBudgets, SpokeEntry};
use causeway_hub::app::Overrides;
use causeway_hub::auth::workload::{SignedCallerIdentity, WORKLOAD_HEADER};
use causeway_hub::budget::dynamodb::DynamoDbStore;
use causeway_hub::config::{
    BudgetStoreKind, HubConfig, RegistryStoreKind, SpokeBudgetsConfig, SpokeConfig, SpokeStatus,
};
use causeway_hub::registry::DynamoDbRegistry;
use causeway_testkit::bedrock_mock::BedrockMock;
use causeway_testkit::hub::{HubOptions, TestHub, spawn_hub_with};
use causeway_testkit::moto::MotoServer;
use serde_json::{Value, json};

const SPOKE_ACCOUNT: &str = "111122223333";
const INVOKER_ROLE: &str = "arn:aws:iam::111122223333:role/causeway-invoker";
const SUSPENDED_ACCOUNT: &str = "444455556666";
const SUSPENDED_ROLE: &str = "arn:aws:iam::444455556666:role/causeway-invoker";
const SANDBOX_ROLE: &str = "arn:aws:iam::777788889999:role/sandbox-invoker";
const SERVER_ID: &str = "causeway-hub-test";
const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// Credentials of a role session, as the spoke agent holds them after `sts:AssumeRole`.
async fn assume(moto: &MotoServer, role: &str, session: &str) -> Credentials {
    let sts = aws_sdk_sts::Client::new(&moto.sdk_config().await);
    let out = sts
        .assume_role()
        .role_arn(role)
        .role_session_name(session)
        .external_id("causeway-hub")
        .send()
        .await
        .unwrap();
    let c = out.credentials.unwrap();
    Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "assumed-role",
    )
}

/// A pre-signed `GetCallerIdentity` for `url`, signed at `time`, binding `server_id` when given.
fn presign(
    creds: &Credentials,
    url: &str,
    body: &str,
    time: SystemTime,
    server_id: Option<&str>,
) -> SignedCallerIdentity {
    let mut headers = vec![(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
    )];
    if let Some(id) = server_id {
        headers.push(("x-causeway-server-id".to_owned(), id.to_owned()));
    }
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::builder().uri(url).method("POST");
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    SignedCallerIdentity {
        method: "POST".into(),
        url: url.into(),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect::<BTreeMap<_, _>>(),
        body: body.into(),
    }
}

/// `config`, after checking that the hub's own validation accepts it as an operator's file would be.
fn valid(config: HubConfig) -> HubConfig {
    config.validate("hub.toml").unwrap();
    config
}

fn spoke(principal: &str, account: &str, status: SpokeStatus) -> SpokeConfig {
    SpokeConfig {
        principal: principal.into(),
        account: account.into(),
        ou: "workloads-prod".into(),
        team: "claims".into(),
        applications: vec!["claims-triage".into(), "claims-search".into()],
        status,
        allowed_models: Vec::new(),
        budgets: SpokeBudgetsConfig::default(),
        data_classification: None,
        application_classifications: BTreeMap::new(),
    }
}

async fn hub_for(moto: &MotoServer) -> TestHub {
    let mut config = HubConfig::default();
    config.identity.require_workload = Some(true);
    config.identity.sts_endpoint = moto.endpoint_url();
    config.identity.server_id = Some(SERVER_ID.into());
    config.spokes = vec![
        spoke(INVOKER_ROLE, SPOKE_ACCOUNT, SpokeStatus::Active),
        spoke(SUSPENDED_ROLE, SUSPENDED_ACCOUNT, SpokeStatus::Suspended),
        // The sandbox's data is registered as public: it may declare more, never less.
        SpokeConfig {
            ou: "sandbox".into(),
            data_classification: Some("public".into()),
            ..spoke(SANDBOX_ROLE, "777788889999", SpokeStatus::Active)
        },
    ];
    spawn_hub_with(HubOptions {
        config: valid(config),
        ..HubOptions::default()
    })
    .await
    .unwrap()
}

async fn call(hub: &TestHub, proof: Option<&SignedCallerIdentity>, app: &str) -> (u16, Value) {
    call_with(hub, proof, app, "internal").await
}

async fn call_with(
    hub: &TestHub,
    proof: Option<&SignedCallerIdentity>,
    app: &str,
    classification: &str,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(hub.token("alice", &["engineers"]))
        .header("x-causeway-application", app)
        .header("x-causeway-data-classification", classification)
        .json(&json!({
            "model": "local-dev", "purpose": "evaluation",
            "messages": [{"role": "user", "content": "hello"}],
        }));
    if let Some(proof) = proof {
        request = request.header(WORKLOAD_HEADER, proof.to_header_value());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn records(hub: &TestHub) -> Vec<AuditRecord> {
    let mut records: Vec<_> = hub
        .audit_reader()
        .unwrap()
        .query(&RecordFilter::default())
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    records.sort_by_key(|r| r.sequence);
    records
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workload_with_a_presigned_identity_is_mapped_to_its_spoke() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let creds = assume(&moto, INVOKER_ROLE, "claims-triage@claims-host").await;
    let url = format!("{}/", moto.endpoint_url());
    let proof = presign(&creds, &url, BODY, SystemTime::now(), Some(SERVER_ID));

    let (status, body) = call(&hub, Some(&proof), "claims-triage").await;
    assert_eq!(status, 200, "{body}");
    let all = records(&hub);
    assert_eq!(all.len(), 1);
    let event = &all[0].event;
    assert_eq!(event.outcome, Outcome::Answered);
    assert_eq!(event.workload_principal.as_deref(), Some(INVOKER_ROLE));
    assert_eq!(event.spoke_account.as_deref(), Some(SPOKE_ACCOUNT));
    assert_eq!(event.application.as_deref(), Some("claims-triage"));
    assert_eq!(event.user_sub.as_deref(), Some("alice"));

    // The same principal may not speak for an application it did not register.
    let (status, body) = call(&hub, Some(&proof), "payroll").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains("application `payroll` is not registered"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proofs_that_do_not_hold_are_refused() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let creds = assume(&moto, INVOKER_ROLE, "claims-triage@claims-host").await;
    let url = format!("{}/", moto.endpoint_url());

    // No proof at all, with workload identity required.
    let (status, body) = call(&hub, None, "claims-triage").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        message(&body).starts_with("workload identity required"),
        "{body}"
    );

    // Signed ten minutes ago.
    let stale = presign(
        &creds,
        &url,
        BODY,
        SystemTime::now() - Duration::from_secs(600),
        Some(SERVER_ID),
    );
    let (status, body) = call(&hub, Some(&stale), "claims-triage").await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("is stale"), "{body}");

    // Signed for another endpoint.
    let elsewhere = presign(
        &creds,
        "https://sts.amazonaws.com/",
        BODY,
        SystemTime::now(),
        Some(SERVER_ID),
    );
    let (status, body) = call(&hub, Some(&elsewhere), "claims-triage").await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("this hub accepts only"), "{body}");

    // Another action than GetCallerIdentity.
    let other_action = presign(
        &creds,
        &url,
        "Action=GetSessionToken&Version=2011-06-15",
        SystemTime::now(),
        Some(SERVER_ID),
    );
    let (status, body) = call(&hub, Some(&other_action), "claims-triage").await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("must be exactly"), "{body}");

    // Made for another hub (a different signed server id), or without the binding.
    for server_id in [Some("another-hub"), None] {
        let unbound = presign(&creds, &url, BODY, SystemTime::now(), server_id);
        let (status, body) = call(&hub, Some(&unbound), "claims-triage").await;
        assert_eq!(status, 401, "{body}");
        assert!(message(&body).contains("x-causeway-server-id"), "{body}");
    }

    // Refusals of the proof itself are not model calls: nothing was audited.
    assert!(records(&hub).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_suspended_principals_are_denied_and_audited() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let url = format!("{}/", moto.endpoint_url());

    let stranger = assume(&moto, "arn:aws:iam::999988887777:role/someone", "x").await;
    let proof = presign(&stranger, &url, BODY, SystemTime::now(), Some(SERVER_ID));
    let (status, body) = call(&hub, Some(&proof), "claims-triage").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        message(&body),
        "principal `arn:aws:iam::999988887777:role/someone` is not registered as a spoke of this hub"
    );

    let suspended = assume(&moto, SUSPENDED_ROLE, "old-agent").await;
    let proof = presign(&suspended, &url, BODY, SystemTime::now(), Some(SERVER_ID));
    let (status, body) = call(&hub, Some(&proof), "claims-triage").await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("is suspended"), "{body}");

    let all = records(&hub);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.event.outcome == Outcome::Denied));
    assert_eq!(
        all[0].event.reasons,
        vec!["workload:unknown_principal".to_owned()]
    );
    assert_eq!(all[0].event.spoke_account.as_deref(), Some("999988887777"));
    assert_eq!(
        all[1].event.reasons,
        vec!["workload:spoke_suspended".to_owned()]
    );
    assert_eq!(
        all[1].event.workload_principal.as_deref(),
        Some(SUSPENDED_ROLE)
    );
    assert_eq!(
        body["error"]["audit_id"].as_str().unwrap(),
        all[1].event.id.to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spoke_ou_reaches_the_cedar_context() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let url = format!("{}/", moto.endpoint_url());
    let creds = assume(&moto, SANDBOX_ROLE, "claims-search@lab-host").await;
    let proof = presign(&creds, &url, BODY, SystemTime::now(), Some(SERVER_ID));

    // The sandbox OU may send public data only (policy `sandbox-ou-public-data-only`).
    let (status, body) = call_with(&hub, Some(&proof), "claims-search", "internal").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains("forbid:sandbox-ou-public-data-only"),
        "{body}"
    );
    let (status, body) = call_with(&hub, Some(&proof), "claims-search", "public").await;
    assert_eq!(status, 200, "{body}");

    let all = records(&hub);
    assert_eq!(all[0].event.outcome, Outcome::Denied);
    assert_eq!(all[0].event.spoke_account.as_deref(), Some("777788889999"));
    assert_eq!(all[1].event.application.as_deref(), Some("claims-search"));
}

/// The registry in DynamoDB (moto), as onboarding writes it.
async fn registry_table(moto: &MotoServer) -> aws_sdk_dynamodb::Client {
    causeway_testkit::moto::create_pk_table(&moto.sdk_config().await, REGISTRY_TABLE)
        .await
        .unwrap()
}

async fn register(dynamodb: &aws_sdk_dynamodb::Client, status: SpokeStatus) {
    let entry = SpokeEntry {
        principal: INVOKER_ROLE.to_owned(),
        account: SPOKE_ACCOUNT.to_owned(),
        ou: "workloads-prod".to_owned(),
        team: "claims".to_owned(),
        applications: vec!["claims-triage".to_owned()],
        status,
        allowed_models: Vec::new(),
        budgets: EntryBudgets::default(),
        data_classification: None,
        application_classifications: std::collections::BTreeMap::new(),
        managed_by: None,
    };
    dynamodb
        .put_item()
        .table_name(REGISTRY_TABLE)
        .set_item(Some(causeway_registry_aws::to_attributes(&entry.to_item())))
        .send()
        .await
        .unwrap();
}

const REGISTRY_TABLE: &str = "causeway-spoke-registry";

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_in_dynamodb_maps_spokes_and_suspends_them_at_once() {
    let moto = MotoServer::start().await.unwrap();
    let dynamodb = registry_table(&moto).await;
    register(&dynamodb, SpokeStatus::Active).await;

    let mut config = HubConfig::default();
    config.identity.require_workload = Some(true);
    config.identity.sts_endpoint = moto.endpoint_url();
    config.identity.server_id = Some(SERVER_ID.into());
    config.registry.store = RegistryStoreKind::Dynamodb;
    config.registry.table = Some(REGISTRY_TABLE.into());
    let registry = DynamoDbRegistry::new(
        aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        REGISTRY_TABLE,
    );
    let hub = spawn_hub_with(HubOptions {
        config: valid(config),
        overrides: Overrides {
            registry: Some(Arc::new(registry)),
            ..Overrides::default()
        },
        ..HubOptions::default()
    })
    .await
    .unwrap();

    let creds = assume(&moto, INVOKER_ROLE, "claims-triage@claims-host").await;
    let url = format!("{}/", moto.endpoint_url());
    let proof = presign(&creds, &url, BODY, SystemTime::now(), Some(SERVER_ID));
    let (status, body) = call(&hub, Some(&proof), "claims-triage").await;
    assert_eq!(status, 200, "{body}");

    // Onboarding suspends the spoke: the next call is refused, with no restart.
    register(&dynamodb, SpokeStatus::Suspended).await;
    let (status, body) = call(&hub, Some(&proof), "claims-triage").await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("is suspended"), "{body}");

    let all = records(&hub);
    assert_eq!(all[0].event.spoke_account.as_deref(), Some(SPOKE_ACCOUNT));
    assert_eq!(
        all[1].event.reasons,
        vec!["workload:spoke_suspended".to_owned()]
    );
}

// === a spoke's own allowed models and budgets ===

const OTHER_ACCOUNT: &str = "555566667777";
const OTHER_ROLE: &str = "arn:aws:iam::555566667777:role/causeway-invoker";

/// A hub with Bedrock (the wire mock) whose first spoke is `restricted` and whose second is not.
async fn hub_with_spokes(
    moto: &MotoServer,
    mock: &BedrockMock,
    restricted: SpokeConfig,
) -> TestHub {
    let mut config = HubConfig::default();
    config.identity.require_workload = Some(true);
    config.identity.sts_endpoint = moto.endpoint_url();
    config.identity.server_id = Some(SERVER_ID.into());
    config.spokes = vec![
        restricted,
        spoke(OTHER_ROLE, OTHER_ACCOUNT, SpokeStatus::Active),
    ];
    spawn_hub_with(HubOptions {
        config: valid(config),
        bedrock: Some(mock.endpoint_url()),
        ..HubOptions::default()
    })
    .await
    .unwrap()
}

async fn proof_for(moto: &MotoServer, role: &str) -> SignedCallerIdentity {
    let creds = assume(moto, role, "claims-triage@claims-host").await;
    let url = format!("{}/", moto.endpoint_url());
    presign(&creds, &url, BODY, SystemTime::now(), Some(SERVER_ID))
}

async fn invoke_model(
    hub: &TestHub,
    proof: &SignedCallerIdentity,
    model: &str,
) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(hub.token("alice", &["engineers"]))
        .header("x-causeway-application", "claims-triage")
        .header(WORKLOAD_HEADER, proof.to_header_value())
        .json(&json!({
            "model": model, "purpose": "evaluation",
            "messages": [{"role": "user", "content": "hello"}],
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn models(hub: &TestHub, proof: &SignedCallerIdentity) -> Vec<String> {
    let body: Value = reqwest::Client::new()
        .get(hub.url("/v1/models"))
        .bearer_auth(hub.token("alice", &["engineers"]))
        .header("x-causeway-application", "claims-triage")
        .header("x-causeway-purpose", "evaluation")
        .header(WORKLOAD_HEADER, proof.to_header_value())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spoke_may_use_only_its_allowed_models() {
    let moto = MotoServer::start().await.unwrap();
    let mock = BedrockMock::start().await.unwrap();
    let restricted = SpokeConfig {
        allowed_models: vec!["nova-lite".into()],
        ..spoke(INVOKER_ROLE, SPOKE_ACCOUNT, SpokeStatus::Active)
    };
    let hub = hub_with_spokes(&moto, &mock, restricted).await;
    let proof = proof_for(&moto, INVOKER_ROLE).await;
    let other = proof_for(&moto, OTHER_ROLE).await;

    let (status, _, body) = invoke_model(&hub, &proof, "nova-lite").await;
    assert_eq!(status, 200, "{body}");
    // Cedar lets engineers use every Bedrock model for evaluation; the spoke's registration does not.
    let (status, _, denied) = invoke_model(&hub, &proof, "claude-haiku").await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["error"]["code"], "forbidden", "{denied}");
    assert_eq!(
        message(&denied),
        "spoke account `111122223333` may not use the model `claude-haiku`; its allowed models: `nova-lite`"
    );
    let (status, _, body) = invoke_model(&hub, &other, "claude-haiku").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.requests().len(), 2);

    // The model list shows a spoke only what it may use.
    assert_eq!(models(&hub, &proof).await, vec!["nova-lite".to_owned()]);
    let unrestricted = models(&hub, &other).await;
    assert!(
        unrestricted.contains(&"claude-haiku".to_owned())
            && unrestricted.contains(&"nova-lite".to_owned()),
        "{unrestricted:?}"
    );

    let all = records(&hub);
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].event.outcome, Outcome::Denied);
    assert_eq!(
        all[1].event.reasons,
        vec!["spoke:model_not_allowed".to_owned()]
    );
    assert_eq!(all[1].event.spoke_account.as_deref(), Some(SPOKE_ACCOUNT));
    assert_eq!(all[1].event.model_alias.as_deref(), Some("claude-haiku"));
    assert_eq!(
        denied["error"]["audit_id"].as_str().unwrap(),
        all[1].event.id.to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spokes_daily_request_budget_stops_it_and_no_other_spoke() {
    let moto = MotoServer::start().await.unwrap();
    let mock = BedrockMock::start().await.unwrap();
    let limited = SpokeConfig {
        budgets: SpokeBudgetsConfig {
            requests_per_day: Some(2),
            ..SpokeBudgetsConfig::default()
        },
        ..spoke(INVOKER_ROLE, SPOKE_ACCOUNT, SpokeStatus::Active)
    };
    let hub = hub_with_spokes(&moto, &mock, limited).await;
    let proof = proof_for(&moto, INVOKER_ROLE).await;
    let other = proof_for(&moto, OTHER_ROLE).await;

    for _ in 0..2 {
        let (status, _, body) = invoke_model(&hub, &proof, "local-dev").await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) = invoke_model(&hub, &proof, "local-dev").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        message(&body).starts_with(
            "budget `spoke_requests_per_day` (2) is exhausted for `111122223333`; retry in"
        ),
        "{body}"
    );
    let retry_after: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    for _ in 0..3 {
        let (status, _, body) = invoke_model(&hub, &other, "local-dev").await;
        assert_eq!(status, 200, "{body}");
    }

    let all = records(&hub);
    assert_eq!(all.len(), 6);
    assert_eq!(all[2].event.outcome, Outcome::Throttled);
    // After the Cedar reasons that let the call through.
    assert_eq!(
        all[2].event.reasons.last().map(String::as_str),
        Some("budget:spoke_requests_per_day")
    );
    assert_eq!(all[2].event.spoke_account.as_deref(), Some(SPOKE_ACCOUNT));
    assert!(all[3..].iter().all(|r| r.event.outcome == Outcome::Answered
        && r.event.spoke_account.as_deref() == Some(OTHER_ACCOUNT)));
}

/// Writes the registry item `causeway org apply` writes for the claims spoke (its own codec, not a copy),
/// under the test's invoker role: `allowed_models: [local-dev]`, `budgets: { requests_per_day,
/// tokens_per_day: 20000000, cost_usd_per_month: 2000.5 }` plus `extra`'s settings; `requests_per_day`
/// replaces the budget attribute as stored, so a mistyped one can be written too.
async fn register_as_org_apply(
    dynamodb: &aws_sdk_dynamodb::Client,
    requests_per_day: AttributeValue,
    extra: SpokeSettings,
) {
    let file = OrgFile::parse(
        "org.yaml",
        "version: 1\n\
         hub: { account: \"999999999999\", region: us-east-1, approved_regions: [us-east-1] }\n\
         root: {}\n",
    )
    .unwrap();
    let account = DesiredAccount {
        id: Some(SPOKE_ACCOUNT.to_owned()),
        name: "claims-prod".to_owned(),
        email: None,
        ou: vec!["Workloads".to_owned(), "Prod".to_owned()],
        scps: std::collections::BTreeSet::new(),
        spoke: None,
    };
    let settings = SpokeSettings {
        team: Some("claims".to_owned()),
        applications: Some(vec!["claims-triage".to_owned()]),
        allowed_models: Some(vec!["local-dev".to_owned()]),
        budgets: Some(SpokeBudgets {
            requests_per_day: Some(2),
            tokens_per_day: Some(20_000_000),
            cost_usd_per_month: Some(2000.5),
        }),
        ..extra
    };
    let item =
        causeway_cli::org::registry::item(&file, SPOKE_ACCOUNT, &account, &settings).unwrap();
    let mut item = causeway_registry_aws::to_attributes(&item);
    item.insert("pk".to_owned(), AttributeValue::S(INVOKER_ROLE.into()));
    item.insert("budget_requests_per_day".to_owned(), requests_per_day);
    dynamodb
        .put_item()
        .table_name(REGISTRY_TABLE)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

/// A hub on the DynamoDB registry and the DynamoDB budget table in moto.
async fn dynamodb_hub(moto: &MotoServer) -> TestHub {
    let mut config = HubConfig::default();
    config.identity.require_workload = Some(true);
    config.identity.sts_endpoint = moto.endpoint_url();
    config.identity.server_id = Some(SERVER_ID.into());
    config.registry.store = RegistryStoreKind::Dynamodb;
    config.registry.table = Some(REGISTRY_TABLE.into());
    config.budgets.store = BudgetStoreKind::Dynamodb;
    config.budgets.table = Some("causeway-budgets".into());
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    spawn_hub_with(HubOptions {
        config: valid(config),
        overrides: Overrides {
            registry: Some(Arc::new(DynamoDbRegistry::new(
                client.clone(),
                REGISTRY_TABLE,
            ))),
            budget_store: Some(Arc::new(DynamoDbStore::new(client, "causeway-budgets"))),
            ..Overrides::default()
        },
        ..HubOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hubs_honour_a_dynamodb_registry_items_models_and_budget() {
    let moto = MotoServer::start().await.unwrap();
    let registry = registry_table(&moto).await;
    crate::budgets::budget_table(&moto).await;
    // A budget as onboarding would record it by mistake, as text: the spoke is refused, not unlimited.
    register_as_org_apply(
        &registry,
        AttributeValue::S("2".into()),
        SpokeSettings::default(),
    )
    .await;

    let hubs = [dynamodb_hub(&moto).await, dynamodb_hub(&moto).await];
    let creds = assume(&moto, INVOKER_ROLE, "claims-triage@claims-host").await;
    let url = format!("{}/", moto.endpoint_url());
    let proof = presign(&creds, &url, BODY, SystemTime::now(), Some(SERVER_ID));

    let (status, _, body) = invoke_model(&hubs[0], &proof, "local-dev").await;
    assert_eq!(status, 500, "{body}");
    assert!(records(&hubs[0]).is_empty());

    register_as_org_apply(
        &registry,
        AttributeValue::N("2".into()),
        SpokeSettings::default(),
    )
    .await;
    // Only the allowed model, and two calls a day across both hubs.
    let (status, _, body) = invoke_model(&hubs[0], &proof, "nova-lite").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains("its allowed models: `local-dev`"),
        "{body}"
    );
    let (status, _, body) = invoke_model(&hubs[0], &proof, "local-dev").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = invoke_model(&hubs[1], &proof, "local-dev").await;
    assert_eq!(status, 200, "{body}");
    for hub in &hubs {
        let (status, _, body) = invoke_model(hub, &proof, "local-dev").await;
        assert_eq!(status, 429, "{body}");
        assert!(
            message(&body).contains("`spoke_requests_per_day` (2)"),
            "{body}"
        );
    }

    let first = records(&hubs[0]);
    assert_eq!(
        first[0].event.reasons,
        vec!["spoke:model_not_allowed".to_owned()]
    );
    assert_eq!(first[2].event.outcome, Outcome::Throttled);
    assert_eq!(
        records(&hubs[1])[1]
            .event
            .reasons
            .last()
            .map(String::as_str),
        Some("budget:spoke_requests_per_day")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_application_registered_restricted_by_org_apply_cannot_declare_itself_public() {
    let moto = MotoServer::start().await.unwrap();
    let registry = registry_table(&moto).await;
    crate::budgets::budget_table(&moto).await;
    register_as_org_apply(
        &registry,
        AttributeValue::N("100".into()),
        SpokeSettings {
            data_classification: Some("internal".to_owned()),
            application_classifications: Some(
                [("claims-triage".to_owned(), "restricted".to_owned())].into(),
            ),
            ..SpokeSettings::default()
        },
    )
    .await;
    let hub = dynamodb_hub(&moto).await;
    let creds = assume(&moto, INVOKER_ROLE, "claims-triage@claims-host").await;
    let url = format!("{}/", moto.endpoint_url());
    let proof = presign(&creds, &url, BODY, SystemTime::now(), Some(SERVER_ID));
    let response = reqwest::Client::new()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(hub.token("alice", &["engineers"]))
        .header("x-causeway-application", "claims-triage")
        .header("x-causeway-data-classification", "public")
        .header(WORKLOAD_HEADER, proof.to_header_value())
        .json(&json!({
            "model": "local-dev", "purpose": "evaluation",
            "messages": [{"role": "user", "content": "hello"}],
        }))
        .send()
        .await
        .unwrap();
    // Restricted data stays on Bedrock: the local model is denied, whatever the caller declared.
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 403, "{body}");
    let all = records(&hub);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].event.data_classification.as_deref(),
        Some("restricted")
    );
}
