//! The Anthropic Messages door with the official Anthropic Python SDK (`tests/clients/anthropic_messages.py`,
//! run with the test virtualenv's Python): messages, streams, tools, images, stop sequences, token counting
//! and errors as the SDK's exception classes, to the local development model and to Amazon Bedrock through
//! the wire mock, and through the spoke agent (the SDK's `x-api-key` reaching the hub as the user's bearer
//! token); every call audited as the `messages` door.

use causeway_contract::audit::Outcome;
use causeway_testkit::agent::{agent_config, spawn_agent};
use causeway_testkit::bedrock_mock::{BedrockMock, Reply};
use causeway_testkit::hub::{TestHub, spawn_hub, spawn_hub_with_bedrock};
use serde_json::{Value, json};

/// Runs the Anthropic SDK script against `hub` as `alice` (an engineer) calling `model`; returns what it
/// printed. Fails loudly when the virtualenv or the SDK is missing: `scripts/ensure-moto.sh` installs both.
async fn run_anthropic_script(hub: &TestHub, model: &str) -> Value {
    run_anthropic_script_at(hub, &hub.url(""), model).await
}

/// [`run_anthropic_script`] with the SDK's base URL at `base_url` (the hub's, or an agent's).
async fn run_anthropic_script_at(hub: &TestHub, base_url: &str, model: &str) -> Value {
    causeway_testkit::clients::run_client_script(
        "anthropic_messages.py",
        &[
            ("CAUSEWAY_HUB_URL", String::from(base_url)),
            ("CAUSEWAY_TOKEN", hub.token("alice", &["engineers"])),
            ("CAUSEWAY_MODEL", String::from(model)),
        ],
    )
    .await
    .unwrap()
}

/// What holds whatever model answered: the errors' classes, and every call audited as the `messages` door.
fn check_common(hub: &TestHub, results: &Value) {
    assert_eq!(
        results["errors"],
        json!({
            "authentication": "authentication_error",
            "guard": "permission_error",
            "guard_audit_id": results["errors"]["guard_audit_id"],
            "not_found": "not_found_error",
            "bad_request": "invalid_request_error",
        })
    );
    assert!(results["input_tokens"].as_u64().unwrap() > 0);

    // The records named by the answer's `x-causeway-audit-id` and by the blocked call's error.
    let records = hub.audit_records().unwrap();
    let answered = records
        .iter()
        .find(|r| Some(r.event.id.to_string().as_str()) == results["audit_id"].as_str())
        .unwrap();
    assert_eq!(answered.event.api, "messages");
    assert_eq!(answered.event.outcome, Outcome::Answered);
    assert_eq!(answered.event.user_sub.as_deref(), Some("alice"));
    let blocked = records
        .iter()
        .find(|r| {
            Some(r.event.id.to_string().as_str()) == results["errors"]["guard_audit_id"].as_str()
        })
        .unwrap();
    assert_eq!(blocked.event.outcome, Outcome::Blocked);
    assert!(records.iter().all(|r| r.event.api == "messages"));
    // Streams are recorded when they start and when they end.
    assert!(
        records
            .iter()
            .any(|r| r.event.outcome == Outcome::StreamCompleted)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_sdk_with_the_local_model() {
    let hub = spawn_hub().await.unwrap();
    let results = run_anthropic_script(&hub, "local-dev").await;
    // The local model calls the tool with the smallest arguments its schema accepts.
    assert_eq!(results["tool_call"]["input"], json!({"city": "xx"}));
    assert_eq!(results["streamed_input"], json!({"city": "xx"}));
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
    // The local model ends its text before the stop sequence, as a model would.
    assert_eq!(
        results["stop"],
        json!({"reason": "stop_sequence", "sequence": "locally"})
    );
    check_common(&hub, &results);
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_sdk_tool_loop_through_bedrock_never_shows_the_model_pii() {
    let mock = BedrockMock::start().await.unwrap();
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let results = run_anthropic_script(&hub, "claude-haiku").await;
    assert_eq!(results["tool_call"]["input"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_input"], json!({"city": "Leeds"}));
    // The mock echoes the tool result it received: masked, still JSON.
    let answer = results["tool_result_answer"].as_str().unwrap();
    assert!(answer.contains("{EMAIL}"), "{answer}");
    check_common(&hub, &results);

    let requests = mock.requests();
    for request in &requests {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
        assert!(
            !body.contains("123-45-6789"),
            "a blocked document reached the model"
        );
    }
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
    // The system text follows the hub's guardrail instructions.
    assert!(requests.iter().any(|r| {
        r.system_texts()
            .last()
            .is_some_and(|s| fenced_as_data(s, "You are terse."))
    }));
    // The tool result went back as a Converse block, the image as PNG, the stop sequence as Bedrock's.
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
    assert!(
        bodies
            .iter()
            .any(|b| b["inferenceConfig"]["stopSequences"] == json!(["locally"]))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_sdk_through_the_agent() {
    let mock = BedrockMock::start().await.unwrap();
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, None).unwrap())
        .await
        .unwrap();
    let results = run_anthropic_script_at(&hub, &agent.base_url, "claude-haiku").await;
    assert_eq!(results["tool_call"]["input"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_input"], json!({"city": "Leeds"}));
    let answer = results["tool_result_answer"].as_str().unwrap();
    assert!(answer.contains("{EMAIL}"), "{answer}");
    // Errors keep Anthropic's shape through the agent, and every call is recorded under the user.
    check_common(&hub, &results);
    for request in mock.requests() {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
    }
}

/// True when `system` is `text` fenced as data, as the hub sends a caller's system text when the call has no
/// verified workload identity (it may not instruct above the fence).
fn fenced_as_data(system: &str, text: &str) -> bool {
    system.starts_with("<<<CAUSEWAY_DATA_") && system.contains(&format!("\n{text}\n"))
}
