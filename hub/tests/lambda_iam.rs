//! On Lambda behind a function URL (or API Gateway) with IAM authorization, the workload is the caller ARN
//! AWS verified and put in the request context: it is mapped to its spoke without any proof header, and a
//! principal the registry does not know is denied and audited. Such a call's `authorization` header is the
//! SigV4 signature, so the user's token travels in `x-causeway-user-token`, a header the hub reads only when
//! the request context holds a verified IAM caller.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error, which is what a test wants"
)]

use std::sync::Arc;

use causeway_audit::RecordFilter;
use causeway_contract::audit::Outcome;
use causeway_contract::dev::DevKey;
use causeway_hub::app::{AppState, Overrides, build_state, router};
use causeway_hub::config::{HubConfig, SpokeBudgetsConfig, SpokeConfig, SpokeStatus};
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
        allowed_models: Vec::new(),
        budgets: SpokeBudgetsConfig::default(),
        data_classification: None,
        application_classifications: std::collections::BTreeMap::new(),
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
    send(state, &event).await
}

async fn send(state: &Arc<AppState>, event: &str) -> (u16, serde_json::Value) {
    let request = lambda_http::request::from_str(event).unwrap();
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

fn records(state: &AppState) -> Vec<causeway_contract::audit::AuditRecord> {
    let store = causeway_audit::EmbeddedStore::open(state.config.audit_path()).unwrap();
    let mut records: Vec<_> = store
        .query(&RecordFilter::default())
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    records.sort_by_key(|r| r.sequence);
    records
}

/// A REST API (v1) proxy event with IAM authorization, carrying `user_token` in `x-causeway-user-token`
/// (`None`: without that header) and `authorization` as given.
fn rest_api_event(user_token: Option<&str>, authorization: Option<&str>) -> String {
    let event = include_str!("data/rest_api_iam_invoke.json").replace(
        "__CALLER_ARN__",
        "arn:aws:sts::111122223333:assumed-role/causeway-invoker/claims-agent",
    );
    let mut event: serde_json::Value = serde_json::from_str(&event).unwrap();
    for map in ["headers", "multiValueHeaders"] {
        let headers = event[map].as_object_mut().unwrap();
        let single = map == "headers";
        let value = |v: &str| {
            if single {
                serde_json::json!(v)
            } else {
                serde_json::json!([v])
            }
        };
        match user_token {
            Some(token) => {
                headers.insert("x-causeway-user-token".into(), value(token));
            }
            None => {
                headers.remove("x-causeway-user-token");
            }
        }
        if let Some(authorization) = authorization {
            headers.insert("authorization".into(), value(authorization));
        }
    }
    event.to_string()
}

#[tokio::test]
async fn behind_a_rest_api_the_user_token_travels_in_its_own_header() {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key.mint("bob", &[], now, 300).unwrap();
    let state = state(dir.path()).await;

    // A bare JWT and `Bearer <jwt>` are both accepted; `authorization` holds the SigV4 signature.
    let (status, body) = send(&state, &rest_api_event(Some(&token), None)).await;
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Bearer {token}");
    let (status, body) = send(&state, &rest_api_event(Some(&bearer), None)).await;
    assert_eq!(status, 200, "{body}");

    let records = records(&state);
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record.event.outcome, Outcome::Answered);
        assert_eq!(record.event.user_sub.as_deref(), Some("bob"));
        assert_eq!(
            record.event.workload_principal.as_deref(),
            Some("arn:aws:iam::111122223333:role/causeway-invoker")
        );
        assert_eq!(record.event.application.as_deref(), Some("claims-triage"));
    }
}

#[tokio::test]
async fn with_iam_authorization_a_bearer_authorization_header_is_not_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key.mint("bob", &[], now, 300).unwrap();
    let state = state(dir.path()).await;

    let bearer = format!("Bearer {token}");
    let (status, body) = send(&state, &rest_api_event(None, Some(&bearer))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["message"],
        "missing user token: with iam authorization `authorization` carries the aws signature, so send the user's token in `x-causeway-user-token`"
    );

    let (status, body) = send(
        &state,
        &rest_api_event(Some("Basic Ym9iOnNlY3JldA=="), None),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["message"],
        "the `x-causeway-user-token` header must be `<token>` or `Bearer <token>`"
    );
}

#[tokio::test]
async fn without_a_verified_iam_caller_the_user_token_header_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key.mint("mallory", &[], now, 300).unwrap();
    let mut config = HubConfig::default();
    config.data_dir.0 = dir.path().to_path_buf();
    let state = Arc::new(
        build_state(config, Overrides::default(), false)
            .await
            .unwrap(),
    );

    // A function URL without IAM authorization: no caller in the request context.
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("data/function_url_invoke.json")).unwrap();
    let headers = event["headers"].as_object_mut().unwrap();
    headers.remove("authorization");
    headers.insert("x-causeway-user-token".into(), serde_json::json!(token));
    let (status, body) = send(&state, &event.to_string()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["message"],
        "missing bearer token: send `authorization: Bearer <token>`"
    );

    // An IAM-shaped request context with no verified caller in it is no IAM call either.
    let mut event: serde_json::Value =
        serde_json::from_str(&rest_api_event(Some(&token), None)).unwrap();
    event["requestContext"]["identity"]["userArn"] = serde_json::Value::Null;
    for map in ["headers", "multiValueHeaders"] {
        event[map].as_object_mut().unwrap().remove("authorization");
    }
    let (status, body) = send(&state, &event.to_string()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["message"],
        "missing bearer token: send `authorization: Bearer <token>`"
    );
    assert!(records(&state).is_empty());
}
