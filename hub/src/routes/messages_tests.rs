//! The Anthropic Messages door through the router (`oneshot`, no sockets), with a fake model and a fake
//! audit sink: answers, tool calls, tool results and streams in Anthropic's shapes, every error in
//! Anthropic's error body with the type the SDKs map to their exception classes, `count_tokens`, and stop
//! sequences from both the Anthropic and the OpenAI door.

use axum::http::Request;
use causeway_contract::StopReason;
use causeway_contract::audit::Outcome;
use causeway_contract::content::ContentBlock;
use serde_json::{Value, json};

use super::test_support::{Answer, Fake, hub, sse_events};
use crate::invoke::InvokeError;

fn message(messages: Value) -> Value {
    json!({"model": "claude-haiku", "max_tokens": 256, "messages": messages})
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Current weather", "input_schema": {"type": "object"}})
}

/// Checks an Anthropic error body and returns its `error` object.
fn anthropic_error(answer: &Answer, status: u16, kind: &str) -> Value {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.body["type"], "error", "{}", answer.text);
    assert_eq!(answer.body["error"]["type"], kind, "{}", answer.text);
    assert!(
        answer.body["error"]["message"].is_string(),
        "{}",
        answer.text
    );
    answer.body["error"].clone()
}

#[tokio::test]
async fn a_plain_message_is_answered_in_anthropic_shape() {
    let model = Fake::answering(vec![ContentBlock::text("It is sunny.")]);
    let hub = hub(model.clone()).await;
    let mut body = message(json!([{"role": "user", "content": "Weather in Leeds?"}]));
    body["system"] =
        json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]);
    body["metadata"] = json!({"user_id": "u-1"});
    body["temperature"] = json!(0.2);
    let answer = hub.anthropic("/v1/messages", body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let audit_id = answer.headers["x-causeway-audit-id"].to_str().unwrap();
    let simple = uuid::Uuid::parse_str(audit_id)
        .unwrap()
        .simple()
        .to_string();
    let body = &answer.body;
    assert_eq!(body["id"], format!("msg_{simple}"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-haiku");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "It is sunny."}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["stop_sequence"].is_null());
    assert_eq!(body["usage"]["input_tokens"], 10);
    assert_eq!(body["usage"]["output_tokens"], 5);
    assert_eq!(body["causeway"]["audit_id"], audit_id);

    // The caller's system text follows the hub's guardrail instructions; the conversation is one user turn.
    let call = model.last_call();
    // Without a verified workload, the caller's system text is fenced as data below the hub's own.
    let system = call.system.last().unwrap();
    assert!(
        system.starts_with("<<<CAUSEWAY_DATA_") && system.contains("\nYou are terse.\n"),
        "{system}"
    );
    assert_eq!(call.messages.len(), 1);
    assert_eq!(call.max_tokens, 256);

    let events = hub.events();
    let event = events.last().unwrap();
    assert_eq!(event.outcome, Outcome::Answered);
    assert_eq!(event.api, "messages");
    assert_eq!(event.id.to_string(), audit_id);

    // Claude Code's form: the token as a bearer token.
    let bearer = hub
        .send(
            Request::post("/v1/messages")
                .header("authorization", format!("Bearer {}", hub.token))
                .header("x-causeway-purpose", "evaluation"),
            message(json!([{"role": "user", "content": "hi"}])).to_string(),
        )
        .await;
    assert_eq!(bearer.status, 200, "{}", bearer.text);
}

#[tokio::test]
async fn a_tool_call_and_its_result_make_a_round_trip() {
    let model = Fake::answering(vec![ContentBlock::ToolUse {
        id: "toolu_1".into(),
        name: "get_weather".into(),
        input: json!({"city": "Leeds"}),
    }]);
    let hub = hub(model.clone()).await;
    let mut body = message(json!([{"role": "user", "content": "Weather in Leeds?"}]));
    body["tools"] = json!([weather_tool()]);
    body["tool_choice"] = json!({"type": "any"});
    let answer = hub.anthropic("/v1/messages", body.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["stop_reason"], "tool_use");
    assert_eq!(
        answer.body["content"],
        json!([{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Leeds"}}])
    );
    let call = model.last_call();
    assert_eq!(call.tools[0].name, "get_weather");
    assert_eq!(call.tool_choice, Some(causeway_contract::ToolChoice::Any));

    // The result goes back with earlier thinking, which is left out; the e-mail in it never reaches the model.
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Leeds?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig"},
            answer.body["content"][0].clone()
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "{\"temp_c\": 14, \"reported_by\": \"jane.doe@example.com\"}"}]}]}
    ]);
    let answer = hub.anthropic("/v1/messages", body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let call = model.last_call();
    assert_eq!(call.messages.len(), 3);
    assert!(matches!(
        call.messages[1].content.as_slice(),
        [ContentBlock::ToolUse { id, .. }] if id == "toolu_1"
    ));
    let ContentBlock::ToolResult {
        tool_use_id,
        content,
        is_error,
    } = &call.messages[2].content[0]
    else {
        unreachable!("{:?}", call.messages[2])
    };
    assert_eq!(tool_use_id, "toolu_1");
    assert!(!is_error);
    let text = content[0].as_text().unwrap();
    assert!(text.contains("{EMAIL}"), "{text}");
    assert!(!text.contains("jane.doe@example.com"));
    let event = hub.events().last().cloned().unwrap();
    assert_eq!(event.content.tools_called[0].name, "get_weather");
    assert!(event.content.blocks.iter().any(|b| b.kind == "tool_result"));
}

#[tokio::test]
async fn a_streamed_answer_follows_anthropic_event_order() {
    let model = Fake::answering(vec![
        ContentBlock::text("Let me check the weather."),
        ContentBlock::ToolUse {
            id: "toolu_7".into(),
            name: "get_weather".into(),
            input: json!({"city": "York"}),
        },
    ]);
    let hub = hub(model).await;
    let mut body = message(json!([{"role": "user", "content": "Weather in York?"}]));
    body["tools"] = json!([weather_tool()]);
    body["stream"] = json!(true);
    let answer = hub.anthropic("/v1/messages", body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let audit_id = answer.headers["x-causeway-audit-id"].to_str().unwrap();
    let events = sse_events(&answer.text);
    for (name, data) in &events {
        assert_eq!(&data["type"], name, "{data}");
    }
    // The order, text deltas collapsed (the stream guard decides how the text is cut).
    let mut names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup_by(|a, b| *a == "content_block_delta" && *b == "content_block_delta");
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data = |name: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, d)| d)
            .collect()
    };
    let start = &data("message_start")[0]["message"];
    let simple = uuid::Uuid::parse_str(audit_id)
        .unwrap()
        .simple()
        .to_string();
    assert_eq!(start["id"], format!("msg_{simple}"));
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let starts = data("content_block_start");
    assert_eq!(
        *starts[0],
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        *starts[1],
        json!({"type": "content_block_start", "index": 1,
               "content_block": {"type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {}}})
    );
    let deltas = data("content_block_delta");
    let text: String = deltas
        .iter()
        .filter(|d| d["index"] == 0)
        .map(|d| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Let me check the weather.");
    let input: String = deltas
        .iter()
        .filter(|d| d["index"] == 1)
        .map(|d| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"city": "York"})
    );
    let stops: Vec<&Value> = data("content_block_stop");
    assert_eq!(stops[0]["index"], 0);
    assert_eq!(stops[1]["index"], 1);
    assert_eq!(
        *data("message_delta")[0],
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
               "usage": {"output_tokens": 5, "input_tokens": 10}})
    );

    let outcomes: Vec<Outcome> = hub.events().iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [Outcome::StreamStarted, Outcome::StreamCompleted]);
    assert!(hub.events().iter().all(|e| e.api == "messages"));
}

#[tokio::test]
async fn every_error_is_an_anthropic_error() {
    let hub = hub(Fake::answering(vec![ContentBlock::text("ok")])).await;
    let hello = message(json!([{"role": "user", "content": "hello"}]));

    // 401: no token, and a token that does not verify.
    let missing = hub
        .send(
            Request::post("/v1/messages").header("x-causeway-purpose", "evaluation"),
            hello.to_string(),
        )
        .await;
    anthropic_error(&missing, 401, "authentication_error");
    let forged = hub
        .send(
            Request::post("/v1/messages").header("x-api-key", "not-a-token"),
            hello.to_string(),
        )
        .await;
    let error = anthropic_error(&forged, 401, "authentication_error");
    assert_eq!(error["code"], "unauthenticated");

    // 400: bad JSON, a missing `max_tokens`, and what the hub refuses, each naming the field.
    let broken = hub
        .send(
            Request::post("/v1/messages").header("x-api-key", &hub.token),
            "{not json".to_owned(),
        )
        .await;
    anthropic_error(&broken, 400, "invalid_request_error");
    let mut no_limit = hello.clone();
    no_limit.as_object_mut().unwrap().remove("max_tokens");
    let error = anthropic_error(
        &hub.anthropic("/v1/messages", no_limit).await,
        400,
        "invalid_request_error",
    );
    assert!(error["message"].as_str().unwrap().contains("max_tokens"));
    let remote_image = message(json!([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    ]}]));
    let error = anthropic_error(
        &hub.anthropic("/v1/messages", remote_image).await,
        400,
        "invalid_request_error",
    );
    let text = error["message"].as_str().unwrap();
    assert!(
        text.contains("`messages[0].content[1].source.type` `url`") && text.contains("base64"),
        "{text}"
    );
    let mut server_tool = hello.clone();
    server_tool["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let error = anthropic_error(
        &hub.anthropic("/v1/messages", server_tool).await,
        400,
        "invalid_request_error",
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`tools[0].type`")
    );
    let mut bad_block = hello.clone();
    bad_block["messages"][0]["content"] =
        json!([{"type": "text", "text": "a"}, {"type": "search_result"}]);
    let error = anthropic_error(
        &hub.anthropic("/v1/messages", bad_block).await,
        400,
        "invalid_request_error",
    );
    let text = error["message"].as_str().unwrap();
    assert!(text.contains("messages[0].content[1]"), "{text}");
    let mut stops = hello.clone();
    stops["stop_sequences"] = json!(["a", "b", "c", "d", "e"]);
    let error = anthropic_error(
        &hub.anthropic("/v1/messages", stops).await,
        400,
        "invalid_request_error",
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("the limit is 4")
    );
    // Shape errors are refused before anything is recorded.
    assert!(hub.events().is_empty());

    // 403: a guard blocks the prompt; the refusal is audited and its id travels with the error.
    let ssn = message(json!([{"role": "user", "content": [
        {"type": "text", "text": "file my claim"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "SSN 123-45-6789"}}
    ]}]));
    let blocked = hub.anthropic("/v1/messages", ssn).await;
    let error = anthropic_error(&blocked, 403, "permission_error");
    assert_eq!(error["code"], "guard_blocked");
    let audit_id = error["audit_id"].as_str().unwrap();
    assert_eq!(blocked.headers["x-causeway-audit-id"], audit_id);
    let event = hub.events().last().cloned().unwrap();
    assert_eq!(event.outcome, Outcome::Blocked);
    assert_eq!(event.api, "messages");
    assert_eq!(event.id.to_string(), audit_id);
    assert!(blocked.body["request_id"].is_string());

    // 403: policy denies a model; 404: an unknown model.
    let mut denied = hello.clone();
    denied["model"] = json!("claude-haiku");
    let support = &hub.support_token;
    denied["tools"] = json!([weather_tool()]);
    let refused = hub
        .send(
            Request::post("/v1/messages")
                .header("x-api-key", support)
                .header("x-causeway-purpose", "customer_support"),
            denied.to_string(),
        )
        .await;
    let error = anthropic_error(&refused, 403, "permission_error");
    assert_eq!(error["code"], "forbidden");
    let mut unknown = hello.clone();
    unknown["model"] = json!("claude-9");
    anthropic_error(
        &hub.anthropic("/v1/messages", unknown).await,
        404,
        "not_found_error",
    );

    // 405 and 413 from the router and the body limit.
    let get = hub
        .send(
            Request::get("/v1/messages").header("x-api-key", &hub.token),
            String::new(),
        )
        .await;
    anthropic_error(&get, 405, "invalid_request_error");
    let huge = "x".repeat(hub.state.config.server.max_body_bytes + 1);
    let too_large = hub
        .send(
            Request::post("/v1/messages").header("x-api-key", &hub.token),
            huge,
        )
        .await;
    anthropic_error(&too_large, 413, "request_too_large");
}

#[tokio::test]
async fn provider_failures_are_anthropic_server_errors() {
    let model = Fake::failing(InvokeError::Throttled);
    let hub = hub(model).await;
    let answer = hub
        .anthropic(
            "/v1/messages",
            message(json!([{"role": "user", "content": "hi"}])),
        )
        .await;
    let error = anthropic_error(&answer, 503, "overloaded_error");
    assert_eq!(error["code"], "model_unavailable");
    assert_eq!(
        answer.headers["x-causeway-audit-id"],
        error["audit_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn count_tokens_estimates_without_calling_the_model() {
    let model = Fake::answering(vec![ContentBlock::text("ok")]);
    let hub = hub(model.clone()).await;
    let short =
        json!({"model": "claude-haiku", "messages": [{"role": "user", "content": "hello"}]});
    let answer = hub
        .anthropic("/v1/messages/count_tokens", short.clone())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let few = answer.body["input_tokens"].as_u64().unwrap();
    assert!(few > 0);
    let mut long = short.clone();
    long["system"] = json!("Answer in the voice of a ship's captain, briefly.");
    long["tools"] = json!([weather_tool()]);
    let more = hub.anthropic("/v1/messages/count_tokens", long).await.body["input_tokens"]
        .as_u64()
        .unwrap();
    assert!(more > few, "{more} <= {few}");
    assert!(model.calls.lock().unwrap().is_empty());
    assert!(hub.events().is_empty());

    let anonymous = hub
        .send(
            Request::post("/v1/messages/count_tokens"),
            short.to_string(),
        )
        .await;
    anthropic_error(&anonymous, 401, "authentication_error");
    let mut unknown = short;
    unknown["model"] = json!("claude-9");
    anthropic_error(
        &hub.anthropic("/v1/messages/count_tokens", unknown).await,
        404,
        "not_found_error",
    );
}

#[tokio::test]
async fn stop_sequences_reach_the_model_from_both_doors() {
    let model = Fake::stopping(
        vec![ContentBlock::text("Step one")],
        StopReason::StopSequence,
    );
    let hub = hub(model.clone()).await;
    let mut body = message(json!([{"role": "user", "content": "List the steps"}]));
    body["stop_sequences"] = json!(["STEP 2"]);
    let answer = hub.anthropic("/v1/messages", body.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["stop_reason"], "stop_sequence");
    assert_eq!(answer.body["stop_sequence"], "STEP 2");
    assert_eq!(model.last_call().stop_sequences, ["STEP 2"]);

    // Streamed, the stop sequence is on `message_delta`.
    body["stream"] = json!(true);
    let answer = hub.anthropic("/v1/messages", body).await;
    let events = sse_events(&answer.text);
    let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_sequence"], "STEP 2");

    // The OpenAI door's `stop`: a string or a list.
    let chat = |stop: Value| json!({"model": "claude-haiku", "messages": [{"role": "user", "content": "List the steps"}], "stop": stop});
    let bearer = |path: &str| {
        Request::post(path)
            .header("authorization", format!("Bearer {}", hub.token))
            .header("x-causeway-purpose", "evaluation")
    };
    let answer = hub
        .send(
            bearer("/v1/chat/completions"),
            chat(json!("END")).to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(model.last_call().stop_sequences, ["END"]);
    hub.send(
        bearer("/v1/chat/completions"),
        chat(json!(["A", "B"])).to_string(),
    )
    .await;
    assert_eq!(model.last_call().stop_sequences, ["A", "B"]);
    let answer = hub
        .send(bearer("/v1/chat/completions"), chat(json!(7)).to_string())
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`stop`")
    );
    let answer = hub
        .send(
            bearer("/v1/chat/completions"),
            chat(json!([""])).to_string(),
        )
        .await;
    assert_eq!(answer.status, 400);
}
