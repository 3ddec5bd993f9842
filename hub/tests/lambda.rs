//! The router serves Lambda events: a Lambda function URL event, converted by `lambda_http`, goes through the
//! same governed path as a local request.

use std::sync::Arc;

use causeway_contract::dev::DevKey;
use causeway_hub::app::{Overrides, build_state, router};
use causeway_hub::config::HubConfig;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn function_url_event_is_governed_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::default();
    config.data_dir.0 = dir.path().to_path_buf();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key.mint("alice", &[], now, 300).unwrap();
    let state = Arc::new(
        build_state(config, Overrides::default(), false)
            .await
            .unwrap(),
    );

    let event = include_str!("data/function_url_invoke.json").replace("__TOKEN__", &token);
    let request = lambda_http::request::from_str(&event).unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["model"], "local-dev");
    assert!(body["audit_id"].is_string());
}

#[tokio::test]
async fn development_identity_is_refused_on_lambda() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::default();
    config.data_dir.0 = dir.path().to_path_buf();
    let err = build_state(config, Overrides::default(), true)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config: `identity.mode = \"dev\"` is refused on AWS Lambda; configure `oidc`"
    );
}
