//! On Lambda behind a function URL (or API Gateway) with IAM authorization, the workload is the caller ARN
//! AWS verified and put in the request context: it is mapped to its spoke without any proof header, and a
//! principal the registry does not know is denied and audited.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error, which is what a test wants"
)]

use std::sync::Arc;

use causeway_audit::RecordFilter;
use causeway_contract::audit::Outcome;
use causeway_hub::app::{AppState, Overrides, build_state, router};
use causeway_hub::auth::dev::DevKey;
use causeway_hub::config::{HubConfig, SpokeConfig, SpokeStatus};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn state(dir: &std::path::Path) -> Arc<AppState> {
    let mut config = HubConfig::default();
    config.data_dir.0 = dir.to_path_buf();
    config.identity.require_workload = Some(true);
    config.spokes = vec![SpokeConfig {
        principal: "arn:aws:iam::111122223333:role/causeway-invoker".into(),
        account: "111122223333".into(),
        ou: "workloads-prod".into(),
        team: "claims".into(),
        applications: vec!["claims-triage".into()],
        status: SpokeStatus::Active,
    }];
    Arc::new(
        build_state(config, Overrides::default(), false)
            .await
            .unwrap(),
    )
}

async fn call(state: &Arc<AppState>, token: &str, caller_arn: &str) -> (u16, serde_json::Value) {
    let event = include_str!("data/function_url_iam_invoke.json")
        .replace("__TOKEN__", token)
        .replace("__CALLER_ARN__", caller_arn);
    let request = lambda_http::request::from_str(&event).unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_iam_caller_from_the_request_context_is_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key.mint("alice", &[], now, 300).unwrap();
    let state = state(dir.path()).await;

    let (status, body) = call(
        &state,
        &token,
        "arn:aws:sts::111122223333:assumed-role/causeway-invoker/claims-agent",
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = call(
        &state,
        &token,
        "arn:aws:sts::999988887777:assumed-role/causeway-invoker/intruder",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "principal `arn:aws:iam::999988887777:role/causeway-invoker` is not registered as a spoke of this hub"
    );

    let store = causeway_audit::EmbeddedStore::open(state.config.audit_path()).unwrap();
    let mut records: Vec<_> = store
        .query(&RecordFilter::default())
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    records.sort_by_key(|r| r.sequence);
    assert_eq!(records[0].event.outcome, Outcome::Answered);
    assert_eq!(
        records[0].event.workload_principal.as_deref(),
        Some("arn:aws:iam::111122223333:role/causeway-invoker")
    );
    assert_eq!(
        records[0].event.application.as_deref(),
        Some("claims-triage")
    );
    assert_eq!(records[1].event.outcome, Outcome::Denied);
    assert_eq!(
        records[1].event.reasons,
        vec!["workload:unknown_principal".to_owned()]
    );
}
