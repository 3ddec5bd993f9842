//! The official client SDKs against the hub, unchanged but for the endpoint: tools, images and documents
//! with the OpenAI Python SDK (`tests/clients/openai_content.py`, run with the test virtualenv's Python),
//! to the local development model, to Amazon Bedrock through the wire mock and to an OpenAI-compatible
//! upstream, directly and through the spoke agent.

use causeway_contract::audit::Outcome;
use causeway_hub::config::{HubConfig, OpenAiConfig};
use causeway_testkit::agent::{agent_config, spawn_agent};
use causeway_testkit::bedrock_mock::{BedrockMock, Reply};
use causeway_testkit::clients::workspace_root;
use causeway_testkit::hub::{
    HubOptions, TestHub, spawn_hub, spawn_hub_with, spawn_hub_with_bedrock,
};
use causeway_testkit::openai_mock::OpenAiMock;
use serde_json::{Value, json};

/// Who runs the script, against what.
struct Run<'a> {
    /// The base URL up to `/v1`: the hub's or an agent's.
    base_url: String,
    hub: &'a TestHub,
    user: &'a str,
    groups: &'a [&'a str],
    model: &'a str,
    purpose: &'a str,
}

impl<'a> Run<'a> {
    /// `alice`, an engineer, straight at `hub` with purpose `evaluation`.
    fn engineer(hub: &'a TestHub, model: &'a str) -> Self {
        Self {
            base_url: hub.url("/v1"),
            hub,
            user: "alice",
            groups: &["engineers"],
            model,
            purpose: "evaluation",
        }
    }
}

/// Runs the OpenAI SDK script as `run` says; returns what it printed. Fails loudly when the virtualenv or
/// the SDK is missing: `scripts/ensure-moto.sh` installs both.
async fn run_openai_script(run: Run<'_>) -> Value {
    causeway_testkit::clients::run_client_script(
        "openai_content.py",
        &[
            ("CAUSEWAY_HUB_URL", String::from(&run.base_url)),
            ("CAUSEWAY_TOKEN", run.hub.token(run.user, run.groups)),
            ("CAUSEWAY_MODEL", String::from(run.model)),
            ("CAUSEWAY_PURPOSE", String::from(run.purpose)),
            (
                "CAUSEWAY_SSN_PDF",
                workspace_root()
                    .join("tests/data/ssn.pdf")
                    .display()
                    .to_string(),
            ),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_tools_images_and_documents_with_the_local_model() {
    let hub = spawn_hub().await.unwrap();
    let results = run_openai_script(Run::engineer(&hub, "local-dev")).await;
    // The local model calls the tool with the smallest arguments its schema accepts.
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "xx"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "xx"}));
    assert!(
        results["tool_result_answer"]
            .as_str()
            .unwrap()
            .contains("after 1 tool result(s)")
    );
    assert!(
        results["image_answer"]
            .as_str()
            .unwrap()
            .contains("1 image(s)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_tool_loop_through_bedrock_never_shows_the_model_pii() {
    let mock = BedrockMock::start().await.unwrap();
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let results = run_openai_script(Run::engineer(&hub, "claude-haiku")).await;
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "Leeds"}));
    // The mock echoes the tool result it received: masked, still JSON.
    let answer = results["tool_result_answer"].as_str().unwrap();
    assert!(answer.contains("{EMAIL}"), "{answer}");

    let requests = mock.requests();
    for request in &requests {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
    }
    // What the hub sent: the tool declared, the tool call and its result as Converse blocks, the image.
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
    assert!(bodies.iter().all(|b| {
        b["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
            || b["toolConfig"].is_null()
    }));
    assert!(bodies.iter().any(|b| {
        b["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["content"].as_array().into_iter().flatten())
            .any(|c| c.get("toolResult").is_some())
    }));
    assert!(bodies.iter().any(|b| {
        b["messages"][0]["content"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["image"]["format"] == "png")
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_tools_images_and_documents_through_the_agent() {
    let mock = BedrockMock::start().await.unwrap();
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, None).unwrap())
        .await
        .unwrap();
    let results = run_openai_script(Run {
        base_url: agent.url("/v1"),
        ..Run::engineer(&hub, "claude-haiku")
    })
    .await;
    // The agent relays tools, tool results, images and documents unchanged; refusals come back as the hub
    // made them (the script checks the remote image, the PDF holding an SSN and the corrupt PDF).
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "Leeds"}));
    assert!(
        results["tool_result_answer"]
            .as_str()
            .unwrap()
            .contains("{EMAIL}")
    );
    assert_eq!(results["pdf_refusal"], 403);
    for request in mock.requests() {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
    }
    // Every call was recorded under the user and the agent's application.
    let records = hub
        .audit_reader()
        .unwrap()
        .query(&causeway_audit::RecordFilter::default())
        .unwrap();
    let answered: Vec<_> = records
        .iter()
        .map(|(record, _)| record)
        .filter(|r| r.event.outcome == Outcome::Answered)
        .collect();
    assert!(answered.len() >= 3, "{} answered records", answered.len());
    assert!(
        answered
            .iter()
            .all(|r| r.event.user_sub.as_deref() == Some("alice"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_tool_loop_through_an_openai_compatible_upstream() {
    let upstream = OpenAiMock::start().await.unwrap();
    upstream.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
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
    // Analysts may use the self-hosted model for analytics.
    let results = run_openai_script(Run {
        user: "bob",
        groups: &["analysts"],
        purpose: "analytics",
        ..Run::engineer(&hub, "llama-internal")
    })
    .await;
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "Leeds"}));
    // The upstream echoes the tool result it received: masked, still JSON.
    let answer = results["tool_result_answer"].as_str().unwrap();
    assert!(
        answer.contains("{EMAIL}") && answer.contains("temp_c"),
        "{answer}"
    );

    let requests = upstream.requests();
    for request in &requests {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
        // The user's token never goes upstream.
        assert!(request.authorization.is_none());
    }
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
    // What the hub sent, in chat completions form: the tool declared, the assistant's call and the `tool`
    // message answering it, the image as a data URI, streamed calls asking for usage.
    assert!(
        bodies
            .iter()
            .all(|b| b["model"] == "meta-llama/Llama-3.1-8B-Instruct")
    );
    assert!(
        bodies
            .iter()
            .any(|b| b["tools"][0]["function"]["name"] == "get_weather")
    );
    let round_trip = bodies
        .iter()
        .find(|b| {
            b["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
        })
        .expect("a request carried the tool result");
    let messages = round_trip["messages"].as_array().unwrap();
    let call_id = results["tool_call"]["id"].as_str().unwrap();
    assert!(messages.iter().any(|m| m["role"] == "assistant"
        && m["tool_calls"][0]["id"] == call_id
        && m["tool_calls"][0]["function"]["name"] == "get_weather"));
    assert!(
        messages
            .iter()
            .any(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
    );
    assert!(bodies.iter().any(|b| {
        b["messages"].as_array().into_iter().flatten().any(|m| {
            m["content"].as_array().into_iter().flatten().any(|p| {
                p["image_url"]["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("data:image/png;base64,"))
            })
        })
    }));
    assert!(
        bodies
            .iter()
            .any(|b| b["stream"] == json!(true)
                && b["stream_options"]["include_usage"] == json!(true))
    );
}
