//! The governed path through the router (`oneshot`, no sockets), with a fake model and a fake audit sink:
//! every refusal is answered with the right status and audited with its outcome and reasons; tools, images
//! and documents reach the model guarded; the answer's tool calls pass the output guard.

use causeway_contract::audit::Outcome;
use causeway_contract::content::ContentBlock;
use serde_json::{Value, json};

use super::test_support::{Fake, Recording, hub, hub_with};
use crate::invoke::InvokeError;

fn invoke(purpose: &str, messages: Value) -> Value {
    json!({"model": "claude-haiku", "purpose": purpose, "messages": messages})
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Current weather", "input_schema": {"type": "object"}})
}

fn text_answer() -> Vec<ContentBlock> {
    vec![ContentBlock::text("It is sunny.")]
}

#[tokio::test]
async fn refusals_are_answered_and_audited_with_their_outcome() {
    let hub = hub(Fake::answering(text_answer())).await;
    let user = json!([{"role": "user", "content": "hello"}]);

    let (status, body) = hub.post("/v1/invoke", invoke("gossip", user.clone())).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(hub.last_event().outcome, Outcome::Rejected);
    assert_eq!(hub.last_event().reasons, vec!["unknown_purpose"]);

    let mut unknown = invoke("evaluation", user.clone());
    unknown["model"] = json!("gpt-9");
    let (status, _) = hub.post("/v1/invoke", unknown).await;
    assert_eq!(status, 404);
    assert_eq!(hub.last_event().reasons, vec!["unknown_model"]);

    // The Cedar context carries the tools offered: a support agent may call the model for customer support,
    // but not offer it tools.
    let support = invoke("customer_support", user.clone());
    let (status, body) = hub
        .post_as(&hub.support_token, "/v1/invoke", support.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    let mut with_tools = support;
    with_tools["tools"] = json!([weather_tool()]);
    let (status, body) = hub
        .post_as(&hub.support_token, "/v1/invoke", with_tools)
        .await;
    assert_eq!(status, 403, "{body}");
    let event = hub.last_event();
    assert_eq!(event.outcome, Outcome::Denied);
    assert_eq!(event.reasons, vec!["forbid:customer-support-no-tools"]);
    assert_eq!(event.content.tools_offered, vec!["get_weather"]);

    // PII the profile blocks, inside a tool result.
    let blocked = invoke(
        "evaluation",
        json!([
            {"role": "user", "content": "file my claim"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": [{"type": "text", "text": "{\"ssn\": \"123-45-6789\"}"}]}]}
        ]),
    );
    let (status, body) = hub.post("/v1/invoke", blocked).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "guard_blocked");
    let event = hub.last_event();
    assert_eq!(event.outcome, Outcome::Blocked);
    assert!(
        event
            .guard_events
            .iter()
            .any(|e| e.source == "tool_result" && e.entity == "US_SSN")
    );

    // Shape errors are 400s and 413s that name the block; nothing was asked of the hub, nothing recorded.
    let before = hub.event_count();
    let remote = invoke(
        "evaluation",
        json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "",
            "content": [{"type": "text", "text": "x"}]}]}]),
    );
    let (status, body) = hub.post("/v1/invoke", remote).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool_use_id")
    );
    let big = vec![0_u8; 4_000_000];
    let image = invoke(
        "evaluation",
        json!([{"role": "user", "content": [{"type": "image", "media_type": "image/png",
            "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &big)}]}]),
    );
    let (status, body) = hub.post("/v1/invoke", image).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the limit is 3750000 bytes")
    );
    assert_eq!(hub.event_count(), before);
}

#[tokio::test]
async fn a_failing_model_is_audited_as_failed() {
    let hub = hub(Fake::failing(InvokeError::Throttled)).await;
    let (status, body) = hub
        .post(
            "/v1/invoke",
            invoke("evaluation", json!([{"role": "user", "content": "hi"}])),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(hub.last_event().outcome, Outcome::Failed);
    assert_eq!(
        hub.last_event().reasons.last().unwrap(),
        "provider_throttled"
    );
}

#[tokio::test]
async fn no_answer_leaves_when_the_audit_store_is_down() {
    let hub = hub_with(
        Fake::answering(text_answer()),
        Recording {
            down: true,
            ..Recording::default()
        },
    )
    .await;
    let (status, body) = hub
        .post(
            "/v1/invoke",
            invoke("evaluation", json!([{"role": "user", "content": "hi"}])),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "audit_unavailable");
    assert!(body.get("answer").is_none());
}

#[tokio::test]
async fn tool_calls_are_guarded_and_counted_on_both_doors() {
    let model = Fake::answering(vec![ContentBlock::ToolUse {
        id: "call_1".into(),
        name: "send_mail".into(),
        input: json!({"to": "jane.doe@example.com", "subject": "hello"}),
    }]);
    let hub = hub(model.clone()).await;
    let mut body = invoke(
        "evaluation",
        json!([{"role": "user", "content": [
            {"type": "text", "text": "Mail the summary"},
            {"type": "document", "format": "txt", "name": "notes.txt",
             "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"call 555-0100 or mail bob@example.com")}
        ]}]),
    );
    body["tools"] = json!([{"name": "send_mail", "input_schema": {"type": "object"}}]);
    let (status, answer) = hub.post("/v1/invoke", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stop_reason"], "tool_use");
    assert_eq!(answer["content"][0]["type"], "tool_use");
    assert_eq!(answer["content"][0]["input"]["to"], "{EMAIL}");

    // The model saw the document with the e-mail masked, and the tool it was offered.
    let call = model.calls.lock().unwrap().last().cloned().unwrap();
    assert_eq!(call.tools[0].name, "send_mail");
    let ContentBlock::Document { data, .. } = &call.messages[0].content[1] else {
        unreachable!("{:?}", call.messages[0].content)
    };
    assert!(!String::from_utf8_lossy(&data.0).contains("bob@example.com"));

    let event = hub.last_event();
    assert_eq!(event.outcome, Outcome::Answered);
    assert_eq!(event.content.tools_called[0].name, "send_mail");
    assert_eq!(event.content.blocks[0].kind, "document");
    assert!(event.reasons.contains(&"stop:tool_use".to_owned()));

    // The OpenAI door answers the same call with `tool_calls`.
    let chat = json!({
        "model": "claude-haiku",
        "messages": [{"role": "user", "content": "Mail the summary"}],
        "tools": [{"type": "function", "function": {"name": "send_mail", "parameters": {"type": "object"}}}]
    });
    let (status, answer) = hub.post("/v1/chat/completions", chat).await;
    assert_eq!(status, 200, "{answer}");
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "send_mail");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["to"], "{EMAIL}");
}

#[tokio::test]
async fn streamed_tool_call_arguments_are_guarded_before_they_leave() {
    let model = Fake::answering(vec![
        ContentBlock::text("Sending it now."),
        ContentBlock::ToolUse {
            id: "call_1".into(),
            name: "send_mail".into(),
            input: json!({"to": "jane.doe@example.com", "subject": "hello", "cc": ["bob@example.com"]}),
        },
    ]);
    let hub = hub(model).await;
    let chat = json!({
        "model": "claude-haiku",
        "stream": true,
        "messages": [{"role": "user", "content": "Mail the summary"}],
        "tools": [{"type": "function", "function": {"name": "send_mail", "parameters": {"type": "object"}}}]
    });
    let (status, events) = hub.post_stream("/v1/chat/completions", chat).await;
    assert_eq!(status, 200, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let everything = events.join("\n");
    assert!(
        !everything.contains("jane.doe") && !everything.contains("bob@example.com"),
        "an address left the hub: {everything}"
    );

    // As OpenAI streams a tool call: index, id and name first, then fragments that concatenate to JSON.
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let fragments: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(fragments[0]["index"], 0);
    assert_eq!(fragments[0]["id"], "call_1");
    assert_eq!(fragments[0]["function"]["name"], "send_mail");
    assert!(fragments[1..].iter().all(|f| f.get("id").is_none()));
    let arguments: String = fragments
        .iter()
        .filter_map(|f| f["function"]["arguments"].as_str())
        .collect();
    let arguments: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(
        arguments,
        json!({"to": "{EMAIL}", "subject": "hello", "cc": ["{EMAIL}"]})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Sending it now.");
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, vec!["tool_calls"]);

    // The closing record names the tool called and what the output guard did to its arguments.
    let event = hub.last_event();
    assert_eq!(event.outcome, Outcome::StreamCompleted);
    assert_eq!(event.content.tools_called[0].name, "send_mail");
    assert!(
        event
            .guard_events
            .iter()
            .any(|e| e.source == "tool_use" && e.entity == "EMAIL"),
        "{:?}",
        event.guard_events
    );
}
