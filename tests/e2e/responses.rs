//! The OpenAI Responses door with the official OpenAI Python SDK (`tests/clients/openai_responses.py`, run
//! with the test virtualenv's Python): responses, streams, a function tool and its output, structured output
//! and refusals as the SDK's exception classes, to the local development model, to Amazon Bedrock through the
//! wire mock, and through the spoke agent; every call audited as the `responses` door, and PII in a function's
//! output never reaches the model.

use causeway_contract::audit::Outcome;
use causeway_testkit::agent::{agent_config, spawn_agent};
use causeway_testkit::bedrock_mock::{BedrockMock, Reply};
use causeway_testkit::hub::{TestHub, spawn_hub, spawn_hub_with_bedrock};
use serde_json::{Value, json};

/// Runs the Responses script against `base_url` (the hub's or an agent's, up to `/v1`) as `alice` (an
/// engineer) calling `model`; returns what it printed. Fails loudly when the virtualenv or the SDK is missing:
/// `scripts/ensure-moto.sh` installs both.
async fn run_responses_script(
    hub: &TestHub,
    base_url: &str,
    model: &str,
    structured: bool,
) -> Value {
    causeway_testkit::clients::run_client_script(
        "openai_responses.py",
        &[
            ("CAUSEWAY_HUB_URL", String::from(base_url)),
            ("CAUSEWAY_TOKEN", hub.token("alice", &["engineers"])),
            ("CAUSEWAY_MODEL", String::from(model)),
            (
                "CAUSEWAY_STRUCTURED",
                String::from(if structured { "1" } else { "0" }),
            ),
        ],
    )
    .await
    .unwrap()
}

/// What holds whatever model answered: the refusals' statuses, and every call audited as the `responses`
/// door under the user who made it.
fn check_common(hub: &TestHub, results: &Value) {
    assert_eq!(
        results["errors"],
        json!({
            "previous_response_id": 400,
            "remote_image": 400,
            "web_search": 400,
            "guard_audit_id": results["errors"]["guard_audit_id"],
            "not_found": 404,
        })
    );

    let records = hub.audit_records().unwrap();
    let answered = records
        .iter()
        .find(|r| Some(r.event.id.to_string().as_str()) == results["audit_id"].as_str())
        .unwrap();
    assert_eq!(answered.event.api, "responses");
    assert_eq!(answered.event.outcome, Outcome::Answered);
    assert_eq!(answered.event.user_sub.as_deref(), Some("alice"));
    let blocked = records
        .iter()
        .find(|r| {
            Some(r.event.id.to_string().as_str()) == results["errors"]["guard_audit_id"].as_str()
        })
        .unwrap();
    assert_eq!(blocked.event.outcome, Outcome::Blocked);
    assert!(records.iter().all(|r| r.event.api == "responses"));
    assert!(
        records
            .iter()
            .all(|r| r.event.user_sub.as_deref() == Some("alice"))
    );
    // Streams are recorded when they start and when they end; the function call and its output are named.
    assert!(
        records
            .iter()
            .any(|r| r.event.outcome == Outcome::StreamCompleted)
    );
    assert!(records.iter().any(|r| {
        r.event
            .content
            .tools_called
            .iter()
            .any(|t| t.name == "get_weather")
    }));
    assert!(records.iter().any(|r| {
        r.event
            .content
            .blocks
            .iter()
            .any(|b| b.kind == "tool_result")
    }));
}

/// What the Bedrock mock was sent: never the e-mail planted in the function's output, and the function
/// declared, called and answered as Converse blocks.
fn check_bedrock_requests(mock: &BedrockMock) {
    let requests = mock.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
        assert!(
            !body.contains("123-45-6789"),
            "a blocked prompt reached the model"
        );
    }
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
    assert!(
        bodies
            .iter()
            .any(|b| b["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather")
    );
    let blocks = |b: &Value, kind: &str| {
        b["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["content"].as_array().into_iter().flatten())
            .any(|c| c.get(kind).is_some())
    };
    assert!(
        bodies
            .iter()
            .any(|b| blocks(b, "toolUse") && blocks(b, "toolResult"))
    );
    // The instructions follow the hub's guardrail instructions.
    assert!(requests.iter().any(|r| {
        r.system_texts()
            .last()
            .is_some_and(|s| fenced_as_data(s, "You are terse."))
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_responses_with_the_local_model() {
    let hub = spawn_hub().await.unwrap();
    let results = run_responses_script(&hub, &hub.url("/v1"), "local-dev", true).await;
    // The local model calls the tool with the smallest arguments its schema accepts, and answers in text
    // after the function's output.
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "xx"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "xx"}));
    assert!(
        results["tool_result_answer"]
            .as_str()
            .unwrap()
            .contains("after 1 tool result(s)")
    );
    // Structured output: the smallest value the schema accepts, parsed by the SDK.
    assert_eq!(results["structured"], json!({"city": ""}));
    check_common(&hub, &results);
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_responses_tool_loop_through_bedrock_never_shows_the_model_pii() {
    let mock = BedrockMock::start().await.unwrap();
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let results = run_responses_script(&hub, &hub.url("/v1"), "claude-haiku", false).await;
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "Leeds"}));
    assert!(
        results["tool_call"]["call_id"]
            .as_str()
            .unwrap()
            .starts_with("tooluse_mock_")
    );
    assert_eq!(results["streamed_arguments"], json!({"city": "Leeds"}));
    // The mock echoes the function output it received: masked, still JSON.
    let answer = results["tool_result_answer"].as_str().unwrap();
    assert!(
        answer.contains("{EMAIL}") && answer.contains("temp_c"),
        "{answer}"
    );
    check_common(&hub, &results);
    check_bedrock_requests(&mock);
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_responses_through_the_agent() {
    let mock = BedrockMock::start().await.unwrap();
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, None).unwrap())
        .await
        .unwrap();
    let results = run_responses_script(&hub, &agent.url("/v1"), "claude-haiku", false).await;
    // The agent relays requests, streams and refusals as the hub made them.
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "Leeds"}));
    assert!(
        results["tool_result_answer"]
            .as_str()
            .unwrap()
            .contains("{EMAIL}")
    );
    check_common(&hub, &results);
    check_bedrock_requests(&mock);
}

/// True when `system` is `text` fenced as data, as the hub sends a caller's system text when the call has no
/// verified workload identity (it may not instruct above the fence).
fn fenced_as_data(system: &str, text: &str) -> bool {
    system.starts_with("<<<CAUSEWAY_DATA_") && system.contains(&format!("\n{text}\n"))
}
