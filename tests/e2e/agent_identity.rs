//! The spoke agent's workload identity end to end: an app calls the agent with an OpenAI-shaped request; the
//! agent assumes the spoke's invoker role in moto's STS with the workload's own credentials, proves the role
//! to the real hub with a pre-signed `sts:GetCallerIdentity`, and the hub maps it to the spoke and audits the
//! call under it. Also: credentials rotating under continuous traffic, and `causeway-agent doctor` for a
//! healthy setup and for each broken link.
//!
//! What moto does not enforce, and so is not shown here: it lets any role be assumed (the role need not exist,
//! no trust policy is checked) and ignores the external id. A wrong role is therefore caught by the hub's
//! registry, not by STS, and a wrong external id is not caught at all against moto. The assume-role failure
//! path is shown with an error moto does raise (a session name STS refuses).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use causeway_agent::AgentState;
use causeway_agent::config::{AgentConfig, WorkloadIdentityMode};
use causeway_agent::credentials::{
    AssumeError, AssumeRoleSettings, CredentialCache, RoleAssumer, RoleCredentials, StsRoleAssumer,
};
use causeway_agent::doctor;
use causeway_agent::identity::{StsProofSigner, Workload};
use causeway_contract::audit::Outcome;
use causeway_hub::config::{HubConfig, SpokeBudgetsConfig, SpokeConfig, SpokeStatus};
use causeway_testkit::agent::{TestAgent, spawn_agent_state};
use causeway_testkit::hub::{HubOptions, TestHub, spawn_hub_with};
use causeway_testkit::moto::MotoServer;
use secrecy::SecretString;
use serde_json::{Value, json};

const HUB_ACCOUNT: &str = "111122223333";
const INVOKER_ROLE: &str = "arn:aws:iam::111122223333:role/causeway-invoker-444455556666";
const SUSPENDED_ROLE: &str = "arn:aws:iam::111122223333:role/causeway-invoker-777788889999";
const UNKNOWN_ROLE: &str = "arn:aws:iam::111122223333:role/causeway-invoker-000000000000";
const SERVER_ID: &str = "causeway-hub-test";
const APPLICATION: &str = "claims-triage";

// === helpers ===

async fn hub_for(moto: &MotoServer) -> TestHub {
    let mut config = HubConfig::default();
    config.identity.require_workload = Some(true);
    config.identity.sts_endpoint = moto.endpoint_url();
    config.identity.server_id = Some(SERVER_ID.into());
    // Continuous traffic in the rotation test; the per-user rate limit is not what is tested here.
    config.budgets.user_requests_per_minute = 0;
    let spoke = |principal: &str, status| SpokeConfig {
        principal: principal.into(),
        account: HUB_ACCOUNT.into(),
        ou: "workloads-prod".into(),
        team: "claims".into(),
        applications: vec![APPLICATION.into()],
        status,
        allowed_models: Vec::new(),
        budgets: SpokeBudgetsConfig::default(),
        data_classification: None,
        application_classifications: std::collections::BTreeMap::new(),
    };
    config.spokes = vec![
        spoke(INVOKER_ROLE, SpokeStatus::Active),
        spoke(SUSPENDED_ROLE, SpokeStatus::Suspended),
    ];
    // The hub's own validation accepts it, as it would an operator's file.
    config.validate("hub.toml").unwrap();
    spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap()
}

/// The agent's config as an operator would write it.
fn agent_config(hub_url: &str, moto: &MotoServer, role: &str, purpose: &str) -> AgentConfig {
    let text = format!(
        r#"
hub_url = "{hub_url}"
application = "{APPLICATION}"
default_purpose = "{purpose}"
connect_retries = 0

[workload_identity]
mode = "sts_proof"
role_arn = "{role}"
external_id = "spoke-444455556666-secret"
sts_endpoint = "{sts}"
region = "us-east-1"
server_id = "{SERVER_ID}"
"#,
        sts = moto.endpoint_url()
    );
    let config = AgentConfig::from_toml("agent.toml", &text, |_| None).unwrap();
    assert_eq!(
        config.workload_identity.mode,
        WorkloadIdentityMode::StsProof
    );
    config
}

/// Counts `AssumeRole` calls made through the real STS assumer.
#[derive(Debug)]
struct Counting {
    inner: StsRoleAssumer,
    calls: AtomicUsize,
}

#[async_trait]
impl RoleAssumer for Counting {
    fn role_arn(&self) -> &str {
        self.inner.role_arn()
    }

    async fn assume(&self) -> Result<RoleCredentials, AssumeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.assume().await
    }
}

/// An OpenAI-shaped chat completion from an app, as the OpenAI SDKs send it: no purpose, no application.
async fn chat(agent: &TestAgent, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", agent.base_url))
        .bearer_auth(token)
        .json(&json!({
            "model": "local-dev",
            "messages": [{"role": "user", "content": "Summarise claim 42"}],
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The doctor's output with ports made stable.
async fn doctor_text(
    config: &AgentConfig,
    workload: &Workload,
    token: Option<&str>,
) -> (u8, String) {
    let token = token.map(|t| SecretString::from(t.to_owned()));
    let report = doctor::run(config, workload, token.as_ref()).await;
    let mut out = Vec::new();
    report.write_to(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut normalised = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("127.0.0.1:") {
        normalised.push_str(&rest[..at + "127.0.0.1:".len()]);
        rest = rest[at + "127.0.0.1:".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        normalised.push_str("PORT");
    }
    normalised.push_str(rest);
    (report.exit_code(), normalised)
}

// === tests ===

#[tokio::test(flavor = "multi_thread")]
async fn an_app_reaches_the_hub_as_its_spoke_through_the_agent() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    let workload = Workload::from_config(&config, &moto.sdk_config().await, "test-host").unwrap();
    let agent = spawn_agent_state(AgentState::new(config, workload.signer).unwrap())
        .await
        .unwrap();

    let (status, body) = chat(&agent, &hub.token("alice", &["engineers"])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion", "{body}");

    let all = hub.audit_records().unwrap();
    assert_eq!(all.len(), 1);
    let event = &all[0].event;
    assert_eq!(event.outcome, Outcome::Answered);
    assert_eq!(event.workload_principal.as_deref(), Some(INVOKER_ROLE));
    assert_eq!(event.spoke_account.as_deref(), Some(HUB_ACCOUNT));
    assert_eq!(event.application.as_deref(), Some(APPLICATION));
    assert_eq!(event.user_sub.as_deref(), Some("alice"));
    assert_eq!(event.purpose.as_deref(), Some("evaluation"));

    // Without the agent, the same app call is refused: the app holds nothing that proves a workload.
    let response = reqwest::Client::new()
        .post(hub.url("/v1/chat/completions"))
        .bearer_auth(hub.token("alice", &["engineers"]))
        .header("x-causeway-purpose", "evaluation")
        .json(&json!({"model": "local-dev", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_rotate_under_continuous_traffic_without_a_failed_call() {
    const WORKERS: usize = 4;
    const ROTATIONS: usize = 4;
    /// Far more calls than rotation needs (each credential set lives about 2 s); a cap, not a clock.
    const MAX_CALLS: usize = 20_000;

    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let mut config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    // Short-lived sessions: moto issues credentials valid for exactly `DurationSeconds`.
    config.workload_identity.duration_secs = 4;
    config.workload_identity.refresh_before_secs = 2;
    let assumer = Arc::new(Counting {
        inner: StsRoleAssumer::new(
            &moto.sdk_config().await,
            AssumeRoleSettings {
                role_arn: INVOKER_ROLE.into(),
                external_id: Some(SecretString::from("spoke-444455556666-secret")),
                session_name: "claims-triage@test-host".into(),
                source_identity: None,
                duration_secs: 4,
            },
        ),
        calls: AtomicUsize::new(0),
    });
    let cache = Arc::new(CredentialCache::new(
        assumer.clone(),
        Duration::from_secs(2),
    ));
    let signer = StsProofSigner::new(
        cache,
        &moto.endpoint_url(),
        "us-east-1",
        Some(SERVER_ID.into()),
    );
    let agent = spawn_agent_state(AgentState::new(config, Arc::new(signer)).unwrap())
        .await
        .unwrap();
    let token = hub.token("alice", &["engineers"]);

    let calls = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    let worker = || async {
        while assumer.calls.load(Ordering::SeqCst) <= ROTATIONS
            && calls.fetch_add(1, Ordering::SeqCst) < MAX_CALLS
        {
            let (status, body) = chat(&agent, &token).await;
            if status != 200 {
                failures.lock().unwrap().push((status, body));
            }
        }
    };
    futures::future::join_all((0..WORKERS).map(|_| worker())).await;

    let assumed = assumer.calls.load(Ordering::SeqCst);
    let made = calls.load(Ordering::SeqCst).min(MAX_CALLS);
    assert!(
        assumed > ROTATIONS,
        "only {assumed} AssumeRole calls in {made} requests: the credentials were not refreshed"
    );
    assert_eq!(failures.lock().unwrap().as_slice(), &[], "failed calls");
    // Single flight: one AssumeRole per rotation, not one per concurrent caller.
    assert!(
        assumed <= made / WORKERS,
        "{assumed} AssumeRole calls for {made} requests"
    );
    let all = hub.audit_records().unwrap();
    assert!(
        all.len() >= made.saturating_sub(WORKERS),
        "{} records",
        all.len()
    );
    assert!(all.iter().all(|r| r.event.outcome == Outcome::Answered
        && r.event.workload_principal.as_deref() == Some(INVOKER_ROLE)));
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_every_link_of_a_healthy_setup() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    let workload = Workload::from_config(&config, &moto.sdk_config().await, "test-host").unwrap();
    let (code, text) = doctor_text(
        &config,
        &workload,
        Some(&hub.token("alice", &["engineers"])),
    )
    .await;
    assert_eq!(code, 0, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker-444455556666/claims-triage@test-host
      ok    hub reachable      `/healthz` answered 200
      ok    identity accepted  the hub accepted the user and the workload `arn:aws:iam::111122223333:role/causeway-invoker-444455556666`
      ok    authorization      purpose `evaluation`: local-dev, local-embed
    every link works
    ");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_broken_link() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let sdk = moto.sdk_config().await;
    let token = hub.token("alice", &["engineers"]);

    // Local credentials: the provider chain found none.
    let config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    let no_credentials = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint_url())
        .build();
    let workload = Workload::from_config(&config, &no_credentials, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, Some(&token)).await;
    assert_eq!(code, 10, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      FAIL  local credentials  the workload's own aws credentials do not work: no aws credentials were found (environment, profile, container or instance role)
                               what to do: give the workload AWS credentials through the standard provider chain (task or instance role, `AWS_PROFILE`, or environment variables) and check `workload_identity.sts_endpoint`
      --    assume role        not checked
      --    hub reachable      not checked
      --    identity accepted  not checked
      --    authorization      not checked
    `local credentials` failed (exit code 10)
    ");

    // Assume role: STS refuses the call (here: a session name longer than STS allows).
    let mut config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    config.workload_identity.session_name = Some("s".repeat(65));
    let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, Some(&token)).await;
    assert_eq!(code, 11, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      FAIL  assume role        cannot assume `arn:aws:iam::111122223333:role/causeway-invoker-444455556666` in account `111122223333`: sts refused with `ValidationError`: 1 validation error detected: Value 'sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64
                               what to do: check `workload_identity.role_arn`, `session_name`, `source_identity` and `duration_secs`
      --    hub reachable      not checked
      --    identity accepted  not checked
      --    authorization      not checked
    `assume role` failed (exit code 11)
    ");

    // Hub down.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = agent_config(
        &format!("http://{closed}"),
        &moto,
        INVOKER_ROLE,
        "evaluation",
    );
    let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, Some(&token)).await;
    assert_eq!(code, 12, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker-444455556666/claims-triage@test-host
      FAIL  hub reachable      cannot reach the hub at `http://127.0.0.1:PORT`: connection refused
                               what to do: check `hub_url`, that the hub runs, and that this host can reach it
      --    identity accepted  not checked
      --    authorization      not checked
    `hub reachable` failed (exit code 12)
    ");

    // Wrong role: moto lets it be assumed, the hub's registry does not know it.
    let config = agent_config(&hub.base_url, &moto, UNKNOWN_ROLE, "evaluation");
    let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, Some(&token)).await;
    assert_eq!(code, 13, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker-000000000000/claims-triage@test-host
      ok    hub reachable      `/healthz` answered 200
      FAIL  identity accepted  the hub answered 403: principal `arn:aws:iam::111122223333:role/causeway-invoker-000000000000` is not registered as a spoke of this hub
                               what to do: register `arn:aws:iam::111122223333:role/causeway-invoker-000000000000` as an active spoke in the hub's registry, with application `claims-triage`
      --    authorization      not checked
    `identity accepted` failed (exit code 13)
    ");

    // A registered but suspended spoke.
    let config = agent_config(&hub.base_url, &moto, SUSPENDED_ROLE, "evaluation");
    let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, Some(&token)).await;
    assert_eq!(code, 13, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker-777788889999/claims-triage@test-host
      ok    hub reachable      `/healthz` answered 200
      FAIL  identity accepted  the hub answered 403: spoke account `111122223333` (principal `arn:aws:iam::111122223333:role/causeway-invoker-777788889999`) is suspended
                               what to do: the spoke is suspended in the hub's registry; ask the hub's operators to reactivate it
      --    authorization      not checked
    `identity accepted` failed (exit code 13)
    ");

    // A proof bound to another hub.
    let mut config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    config.workload_identity.server_id = Some("another-hub".into());
    let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, Some(&token)).await;
    assert_eq!(code, 13, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker-444455556666/claims-triage@test-host
      ok    hub reachable      `/healthz` answered 200
      FAIL  identity accepted  the hub answered 401: invalid workload identity: the signed request must sign `x-causeway-server-id: causeway-hub-test`
                               what to do: make `workload_identity.sts_endpoint`, `region` and `server_id` match the hub's `identity.sts_endpoint` and `identity.server_id`, and set `workload_identity.mode` if the hub requires a workload
      --    authorization      not checked
    `identity accepted` failed (exit code 13)
    ");

    // No user token.
    let config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, None).await;
    assert_eq!(code, 13, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker-444455556666/claims-triage@test-host
      ok    hub reachable      `/healthz` answered 200
      FAIL  identity accepted  no user token to call the hub with
                               what to do: pass `--token` or set `CAUSEWAY_AGENT_TOKEN` to a token the hub accepts
      --    authorization      not checked
    `identity accepted` failed (exit code 13)
    ");

    // Authorization: a purpose the hub does not declare.
    let config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "astrology");
    let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
    let (code, text) = doctor_text(&config, &workload, Some(&token)).await;
    assert_eq!(code, 14, "{text}");
    insta::assert_snapshot!(text, @r"
    causeway-agent doctor: hub `http://127.0.0.1:PORT`
      ok    local credentials  arn:aws:sts::123456789012:user/moto
      ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker-444455556666/claims-triage@test-host
      ok    hub reachable      `/healthz` answered 200
      ok    identity accepted  the hub accepted the user and the workload `arn:aws:iam::111122223333:role/causeway-invoker-444455556666`
      FAIL  authorization      the hub refused purpose `astrology`: unknown purpose `astrology`; declare one of `analytics`, `customer_support`, `evaluation`, `general_assistance`, `software_development`
                               what to do: set `default_purpose` to a purpose the hub declares
    `authorization` failed (exit code 14)
    ");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_gets_a_clear_error_when_the_role_cannot_be_assumed() {
    let moto = MotoServer::start().await.unwrap();
    let hub = hub_for(&moto).await;
    let mut config = agent_config(&hub.base_url, &moto, INVOKER_ROLE, "evaluation");
    // A session name STS refuses: the one AssumeRole failure moto raises.
    config.workload_identity.session_name = Some("s".repeat(65));
    let workload = Workload::from_config(&config, &moto.sdk_config().await, "test-host").unwrap();
    let agent = spawn_agent_state(AgentState::new(config, workload.signer).unwrap())
        .await
        .unwrap();

    let (status, body) = chat(&agent, &hub.token("alice", &["engineers"])).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "workload_identity_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "cannot prove the workload's identity to the hub: cannot assume `arn:aws:iam::111122223333:role/causeway-invoker-444455556666` in account `111122223333`: sts refused with `ValidationError`: "
        ),
        "{message}"
    );
    assert!(!message.contains("spoke-444455556666-secret"), "{message}");
    assert!(
        hub.audit_records().unwrap().is_empty(),
        "nothing reached the hub"
    );
}
