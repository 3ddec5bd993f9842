//! boto3's `bedrock-runtime` client against the Bedrock Runtime door (`tests/clients/boto3_bedrock.py`, run
//! with the test virtualenv's Python): straight to the hub over TLS with boto3's bearer-token mode, and
//! through the spoke agent with boto3 signing its calls with the app's own AWS credentials. Amazon Bedrock
//! is the wire mock behind the hub.

use std::path::{Path, PathBuf};

use causeway_contract::audit::Outcome;
use causeway_hub::config::HubConfig;
use causeway_testkit::agent::{agent_config, spawn_agent};
use causeway_testkit::bedrock_mock::{BedrockMock, Reply, mock_embedding};
use causeway_testkit::clients::run_client_script;
use causeway_testkit::hub::{HubOptions, TestHub, spawn_hub_with};
use serde_json::{Value, json};

/// The Bedrock model id code written against Bedrock uses; the catalog serves it as `claude-haiku`.
const MODEL_ID: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

/// A self-signed certificate for `localhost` in `dir`: (certificate, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("hub.crt");
    let key = dir.join("hub.key");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// A hub serving HTTPS with `cert`, Bedrock behind it answering with a tool call when tools are offered,
/// and a budget of 20 calls a minute per user.
async fn hub(mock: &BedrockMock, cert: &Path, key: &Path) -> TestHub {
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let mut config = HubConfig::default();
    config.server.tls_cert_file = Some(cert.to_path_buf());
    config.server.tls_key_file = Some(key.to_path_buf());
    config.budgets.user_requests_per_minute = 20;
    spawn_hub_with(HubOptions {
        config,
        bedrock: Some(mock.endpoint_url()),
        ..HubOptions::default()
    })
    .await
    .unwrap()
}

/// Runs the boto3 script against `endpoint` in `mode`; returns what it printed.
async fn run_boto3(hub: &TestHub, endpoint: &str, mode: &str, ca: Option<&Path>) -> Value {
    let mut env = vec![
        ("CAUSEWAY_ENDPOINT", endpoint.to_owned()),
        ("CAUSEWAY_MODE", mode.to_owned()),
        ("CAUSEWAY_TOKEN", hub.token("alice", &["engineers"])),
        ("CAUSEWAY_DENIED_TOKEN", hub.token("mallory", &[])),
        (
            "CAUSEWAY_THROTTLED_TOKEN",
            hub.token("carol", &["engineers"]),
        ),
        ("CAUSEWAY_MODEL", MODEL_ID.to_owned()),
        (
            "CAUSEWAY_EMBED_MODEL",
            "amazon.titan-embed-text-v2:0".to_owned(),
        ),
        ("CAUSEWAY_PURPOSE", "evaluation".to_owned()),
    ];
    if let Some(ca) = ca {
        env.push(("CAUSEWAY_CA", ca.display().to_string()));
    }
    run_client_script("boto3_bedrock.py", &env).await.unwrap()
}

fn check_results(results: &Value, mock: &BedrockMock) {
    assert_eq!(results["tool_input"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_tool_input"], json!({"city": "Leeds"}));
    // The mock echoes the tool result it received: the e-mail masked, the JSON intact.
    let answer = results["tool_result_answer"].as_str().unwrap();
    assert!(
        answer.contains("{EMAIL}") && answer.contains("temp_c"),
        "{answer}"
    );
    assert_eq!(results["denied"], "AccessDeniedException");
    // The embedding model saw the masked text.
    let embedding: Vec<f32> = results["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(embedding, mock_embedding("Write to {EMAIL}", 256));
    assert_eq!(results["throttled"], "ThrottlingException");
    for request in mock.requests() {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
        // Only the hub's own guardrail (none configured here) ever reaches Bedrock.
        assert!(request.guardrail_identifier().is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_converses_with_the_hub_over_tls_with_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let mock = BedrockMock::start().await.unwrap();
    let hub = hub(&mock, &cert, &key).await;
    let results = run_boto3(&hub, &hub.base_url, "bearer", Some(&cert)).await;
    check_results(&results, &mock);

    // Every call is audited as the Bedrock door, under the alias the model id maps to.
    let records = hub.audit_records().unwrap();
    let alice: Vec<_> = records
        .iter()
        .filter(|r| r.event.user_sub.as_deref() == Some("alice"))
        .collect();
    assert!(alice.iter().any(|r| r.event.api == "bedrock_converse"
        && r.event.outcome == Outcome::Answered
        && r.event.model_alias.as_deref() == Some("claude-haiku")));
    assert!(
        alice
            .iter()
            .any(|r| r.event.api == "bedrock_converse_stream"
                && r.event.outcome == Outcome::StreamCompleted)
    );
    assert!(
        records
            .iter()
            .any(|r| r.event.user_sub.as_deref() == Some("mallory")
                && r.event.outcome == Outcome::Denied)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_signing_with_its_own_credentials_reaches_the_hub_through_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let mock = BedrockMock::start().await.unwrap();
    let hub = hub(&mock, &cert, &key).await;
    let mut config = agent_config(&hub.base_url, Some("evaluation")).unwrap();
    config.hub_ca_file = Some(cert.clone());
    let agent = spawn_agent(config).await.unwrap();
    let results = run_boto3(&hub, &agent.base_url, "sigv4", None).await;
    check_results(&results, &mock);
    let records = hub.audit_records().unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.event.user_sub.as_deref() == Some("alice")
                && r.event.api == "bedrock_converse_stream")
    );
}
