//! The spoke agent in front of the real hub: apps call the agent on 127.0.0.1, the agent forwards to the hub
//! over HTTP, and the hub's answers, streams and errors come back through it.

use std::time::Duration;

use causeway_audit::RecordFilter;
use causeway_contract::InvokeResponse;
use causeway_contract::audit::{AuditRecord, Outcome};
use causeway_testkit::agent::{agent_config, spawn_agent};
use causeway_testkit::hub::{TestHub, spawn_hub};
use futures::StreamExt as _;
use serde_json::{Value, json};

// === helpers ===

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn invoke_body() -> Value {
    json!({"model": "local-dev", "purpose": "evaluation", "messages": [{"role": "user", "content": "Hello from a spoke"}]})
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "local-dev", "stream": stream, "messages": [{"role": "user", "content": "Hello from an OpenAI client"}]})
}

fn audit_record(hub: &TestHub, id: &str) -> AuditRecord {
    let id = uuid::Uuid::parse_str(id).unwrap();
    hub.audit_reader().unwrap().get(id).unwrap().unwrap().0
}

/// The `data:` payloads of a server-sent event stream, in order.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

// === tests ===

#[tokio::test(flavor = "multi_thread")]
async fn native_invoke_through_the_agent_is_answered_and_audited() {
    let hub = spawn_hub().await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, None).unwrap())
        .await
        .unwrap();
    let token = hub.token("alice", &["engineers"]);

    let response = http()
        .post(agent.url("/v1/invoke"))
        .bearer_auth(&token)
        .header("x-request-id", "spoke-call-1")
        .header("x-causeway-data-classification", "confidential")
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "spoke-call-1");
    let audit_header = response.headers()["x-causeway-audit-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer: InvokeResponse = response.json().await.unwrap();
    assert_eq!(answer.audit_id.get_version_num(), 7);
    assert_eq!(answer.audit_id.to_string(), audit_header);
    assert_eq!(answer.model, "local-dev");
    assert!(answer.development_model);
    assert!(
        answer
            .answer
            .starts_with("[causeway local development model]"),
        "{}",
        answer.answer
    );

    // The hub saw the user's own token and the classification the app declared; the record carries the
    // hub's own request id (the app's came back in the response), so no client text reaches it.
    let record = audit_record(&hub, &audit_header);
    assert_eq!(record.event.outcome, Outcome::Answered);
    assert_eq!(record.event.user_sub.as_deref(), Some("alice"));
    assert_eq!(record.event.purpose.as_deref(), Some("evaluation"));
    assert_eq!(
        uuid::Uuid::parse_str(&record.event.request_id)
            .unwrap()
            .get_version_num(),
        7
    );
    assert_eq!(
        record.event.data_classification.as_deref(),
        Some("confidential")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_chat_completion_arrives_as_events_with_the_agents_purpose() {
    let hub = spawn_hub().await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, Some("evaluation")).unwrap())
        .await
        .unwrap();
    let token = hub.token("alice", &["engineers"]);

    // No `x-causeway-purpose`: an OpenAI client cannot send one; the agent supplies it.
    let response = http()
        .post(agent.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        response.headers()
    );
    let audit_id = response.headers()["x-causeway-audit-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut text = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .unwrap()
    {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }

    let events = sse_data(&text);
    assert!(
        events.len() >= 4,
        "expected a role chunk, content chunks, a finish chunk and [DONE]: {text}"
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"),
        "{text}"
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == format!("chatcmpl-{audit_id}")),
        "{text}"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        content.starts_with("[causeway local development model]"),
        "{content}"
    );
    let content_chunks = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert!(
        content_chunks > 1,
        "the answer must come in several pieces: {text}"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );

    // The opening record carries the purpose the agent declared; the closing one follows it.
    let opening = audit_record(&hub, &audit_id);
    assert_eq!(opening.event.outcome, Outcome::StreamStarted);
    assert_eq!(opening.event.user_sub.as_deref(), Some("alice"));
    assert_eq!(opening.event.purpose.as_deref(), Some("evaluation"));
    let all = hub
        .audit_reader()
        .unwrap()
        .query(&RecordFilter::default())
        .unwrap();
    assert!(
        all.iter()
            .any(|(r, _)| r.event.outcome == Outcome::StreamCompleted
                && r.event.call_id == opening.event.call_id),
        "{all:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_default_purpose_the_hubs_refusal_reaches_the_app() {
    let hub = spawn_hub().await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, None).unwrap())
        .await
        .unwrap();
    let token = hub.token("alice", &["engineers"]);

    let response = http()
        .post(agent.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("declare the purpose of this call in header `x-causeway-purpose`"),
        "{message}"
    );

    // The app's own header is used as sent.
    let response = http()
        .post(agent.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-causeway-purpose", "evaluation")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        audit_record(&hub, body["causeway"]["audit_id"].as_str().unwrap())
            .event
            .purpose
            .as_deref(),
        Some("evaluation")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn models_are_listed_through_the_agent() {
    let hub = spawn_hub().await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, Some("evaluation")).unwrap())
        .await
        .unwrap();
    let token = hub.token("alice", &["engineers"]);

    let response = http()
        .get(agent.url("/v1/models"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"local-dev"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_error_is_passed_through_with_its_body() {
    let hub = spawn_hub().await.unwrap();
    let agent = spawn_agent(agent_config(&hub.base_url, None).unwrap())
        .await
        .unwrap();

    let direct = http()
        .post(hub.url("/v1/invoke"))
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    let via_agent = http()
        .post(agent.url("/v1/invoke"))
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    assert_eq!(via_agent.status(), 401);
    assert_eq!(via_agent.headers()["content-type"], "application/json");
    let direct: Value = direct.json().await.unwrap();
    let via_agent: Value = via_agent.json().await.unwrap();
    assert_eq!(via_agent["error"]["code"], "unauthenticated");
    assert_eq!(
        via_agent, direct,
        "the agent must not rewrite the hub's error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_that_is_down_is_a_502_naming_it() {
    let hub = spawn_hub().await.unwrap();
    let hub_url = hub.base_url.clone();
    let agent = spawn_agent(agent_config(&hub_url, None).unwrap())
        .await
        .unwrap();
    let token = hub.token("alice", &["engineers"]);

    let up = http()
        .post(agent.url("/v1/invoke"))
        .bearer_auth(&token)
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);

    // Stop the hub and wait until its port refuses connections.
    let addr = hub_url.trim_start_matches("http://").to_owned();
    drop(hub);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub did not stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let down = http()
        .post(agent.url("/v1/invoke"))
        .bearer_auth(&token)
        .header("x-request-id", "spoke-call-down")
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 502);
    assert_eq!(down.headers()["x-request-id"], "spoke-call-down");
    let body: Value = down.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "hub_unreachable", "message": format!("cannot reach the hub at `{hub_url}`: connection refused")}})
    );
}
