//! Embeddings through the governed path with the official OpenAI Python SDK
//! (`tests/clients/openai_embeddings.py`): the local development embedding model, Amazon Titan Text
//! Embeddings through the Bedrock wire mock (through the spoke agent), and a self-hosted model behind an
//! OpenAI-compatible upstream.
//! The texts are guarded before any model sees them, and every call is audited.

use causeway_audit::RecordFilter;
use causeway_contract::audit::Outcome;
use causeway_hub::config::{HubConfig, OpenAiConfig};
use causeway_hub::invoke::local::embed_text;
use causeway_testkit::agent::{agent_config, spawn_agent};
use causeway_testkit::bedrock_mock::{BedrockMock, mock_embedding};
use causeway_testkit::hub::{
    HubOptions, TestHub, spawn_hub, spawn_hub_with, spawn_hub_with_bedrock,
};
use causeway_testkit::openai_mock::OpenAiMock;
use serde_json::Value;

/// An engineer evaluating models.
const ENGINEER: (&str, &[&str], &str) = ("alice", &["engineers"], "evaluation");

/// The second text of the script as the model must receive it: the e-mail address masked.
const MASKED: &str = "Contact the customer at {EMAIL} about the refund.";

/// Runs the script against `hub` as `user` in `groups` declaring `purpose`.
async fn run_script(
    hub: &TestHub,
    who: (&str, &[&str], &str),
    model: &str,
    dimensions: u32,
) -> Value {
    run_script_at(hub, &hub.url("/v1"), who, model, dimensions).await
}

/// [`run_script`] with the SDK's base URL at `base_url` (the hub's, or an agent's).
async fn run_script_at(
    hub: &TestHub,
    base_url: &str,
    (user, groups, purpose): (&str, &[&str], &str),
    model: &str,
    dimensions: u32,
) -> Value {
    causeway_testkit::clients::run_client_script(
        "openai_embeddings.py",
        &[
            ("CAUSEWAY_HUB_URL", String::from(base_url)),
            ("CAUSEWAY_TOKEN", hub.token(user, groups)),
            ("CAUSEWAY_PURPOSE", String::from(purpose)),
            ("CAUSEWAY_MODEL", String::from(model)),
            ("CAUSEWAY_CHAT_MODEL", String::from("local-dev")),
            ("CAUSEWAY_DIMENSIONS", dimensions.to_string()),
        ],
    )
    .await
    .unwrap()
}

fn vector(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// The answered embedding records, checked for what every one must say.
fn answered_records(hub: &TestHub) -> Vec<causeway_contract::AuditRecord> {
    let records: Vec<_> = hub
        .audit_reader()
        .unwrap()
        .query(&RecordFilter::default())
        .unwrap()
        .into_iter()
        .map(|(record, _)| record)
        .filter(|r| r.event.api == "embeddings" && r.event.outcome == Outcome::Answered)
        .collect();
    assert_eq!(records.len(), 3, "three answered embedding calls");
    let batch = records
        .iter()
        .find(|r| r.event.content.blocks[0].count == 2)
        .unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.event.content.blocks[0].kind == "embedding_input")
    );
    assert!(batch.event.guard_events.iter().any(|e| e.entity == "EMAIL"));
    assert!(batch.event.usage.input_tokens > 0);
    assert!(batch.event.prompt_sha256.is_some() && batch.event.response_sha256.is_some());
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_embedding_model_embeds_masked_text() {
    let hub = spawn_hub().await.unwrap();
    let results = run_script(&hub, ENGINEER, "local-embed", 64).await;
    let vectors = &results["vectors"];
    assert_eq!(vector(&vectors[1]).len(), 256);
    // The model embedded the masked text, never the address.
    assert_eq!(vector(&vectors[1]), embed_text(MASKED, 256));
    assert_eq!(vector(&results["short_vector"]).len(), 64);
    let records = answered_records(&hub);
    assert!(records.iter().all(|r| r.event.development_model));
}

#[tokio::test(flavor = "multi_thread")]
async fn titan_embeddings_through_bedrock_never_see_the_pii() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    // Through the spoke agent, as a RAG application in a spoke account calls it.
    let agent = spawn_agent(agent_config(&hub.base_url, None).unwrap())
        .await
        .unwrap();
    let results = run_script_at(&hub, &agent.url("/v1"), ENGINEER, "titan-embed", 256).await;
    assert_eq!(vector(&results["vectors"][1]), mock_embedding(MASKED, 1024));
    assert_eq!(vector(&results["short_vector"]).len(), 256);
    let requests = mock.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.model_id, "amazon.titan-embed-text-v2:0");
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
    }
    assert!(requests.iter().any(|r| r.body["inputText"] == MASKED));
    let records = answered_records(&hub);
    assert!(
        records
            .iter()
            .all(|r| r.event.model_alias.as_deref() == Some("titan-embed"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_hosted_embedding_model_behind_an_openai_compatible_upstream() {
    let upstream = OpenAiMock::start().await.unwrap();
    let mut config = HubConfig::default();
    config.providers.openai = Some(OpenAiConfig {
        base_url: upstream.base_url(),
        api_key_env: None,
    });
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    // Analysts may use self-hosted models for analytics.
    let results = run_script(
        &hub,
        ("bob", &["analysts"], "analytics"),
        "e5-internal",
        512,
    )
    .await;
    assert_eq!(vector(&results["vectors"][1]), mock_embedding(MASKED, 1024));
    let requests = upstream.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.body["model"] == "intfloat/multilingual-e5-large")
    );
    for request in &requests {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
    }
    answered_records(&hub);
}
