//! The OpenAI Responses door through the router (`oneshot`, no sockets), with a fake model and a fake audit
//! sink: answers, function calls and their outputs, structured output and streams in the Responses API's
//! shapes; what the hub refuses is refused before anything is recorded, naming the field.

use causeway_contract::StopReason;
use causeway_contract::audit::Outcome;
use causeway_contract::content::{ContentBlock, ToolChoice};
use serde_json::{Value, json};

use super::test_support::{Answer, Fake, Hub, hub, sse_events};

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
           "strict": true})
}

fn weather_call(id: &str, city: &str) -> ContentBlock {
    ContentBlock::ToolUse {
        id: id.into(),
        name: "get_weather".into(),
        input: json!({ "city": city }),
    }
}

async fn create(hub: &Hub, body: Value) -> Answer {
    hub.send(hub.bearer("/v1/responses"), body.to_string())
        .await
}

/// The audit id of an answer, from its header, as a UUID's simple form.
fn simple_audit_id(answer: &Answer) -> String {
    let id = answer.headers["x-causeway-audit-id"].to_str().unwrap();
    uuid::Uuid::parse_str(id).unwrap().simple().to_string()
}

fn refused(answer: &Answer, field: &str) -> String {
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], "invalid_request");
    let message = answer.body["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(&format!("`{field}`")), "{message}");
    message
}

#[tokio::test]
async fn a_plain_input_is_answered_in_the_responses_shape() {
    let model = Fake::answering(vec![ContentBlock::text("It is sunny.")]);
    let hub = hub(model.clone()).await;
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "input": "Weather in Leeds?", "instructions": "You are terse.",
               "max_output_tokens": 200, "temperature": 0.2, "metadata": {"team": "weather"},
               "store": true, "user": "u-1", "include": ["message.output_text.logprobs"],
               "reasoning": {"effort": "low"}, "truncation": "auto"}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let simple = simple_audit_id(&answer);
    let body = &answer.body;
    assert_eq!(body["id"], format!("resp_{simple}"));
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "claude-haiku");
    assert_eq!(
        body["output"],
        json!([{"type": "message", "id": format!("msg_{simple}_0"), "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "It is sunny.", "annotations": [], "logprobs": []}]}])
    );
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
               "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15})
    );
    // The request's settings are echoed; nothing is stored for later.
    assert_eq!(body["instructions"], "You are terse.");
    assert_eq!(body["max_output_tokens"], 200);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["metadata"], json!({"team": "weather"}));
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"], json!([]));
    assert_eq!(body["parallel_tool_calls"], true);
    assert_eq!(body["text"], json!({"format": {"type": "text"}}));
    assert_eq!(body["store"], false);
    assert!(body["previous_response_id"].is_null());
    assert!(body["created_at"].as_i64().unwrap() > 0);
    assert!(body["completed_at"].as_i64().unwrap() >= body["created_at"].as_i64().unwrap());

    // The instructions follow the hub's guardrail instructions; the input is one user turn.
    let call = model.last_call();
    // Without a verified workload, the caller's system text is fenced as data below the hub's own.
    let system = call.system.last().unwrap();
    assert!(
        system.starts_with("<<<CAUSEWAY_DATA_") && system.contains("\nYou are terse.\n"),
        "{system}"
    );
    assert_eq!(call.messages.len(), 1);
    assert_eq!(call.messages[0].role, causeway_contract::Role::User);
    assert!(call.messages[0].joined_text().contains("Weather in Leeds?"));
    assert_eq!(call.max_tokens, 200);

    let event = hub.last_event();
    assert_eq!(event.outcome, Outcome::Answered);
    assert_eq!(event.api, "responses");
    assert_eq!(body["causeway"]["audit_id"], event.id.to_string());
    assert_eq!(
        answer.headers["x-causeway-audit-id"],
        event.id.to_string().as_str()
    );
}

#[tokio::test]
async fn a_function_call_is_answered_as_a_function_call_item() {
    let model = Fake::answering(vec![
        ContentBlock::text("Checking."),
        weather_call("toolu_1", "Leeds"),
    ]);
    let hub = hub(model.clone()).await;
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "input": "Weather in Leeds?", "tools": [weather_tool()],
               "tool_choice": "required", "parallel_tool_calls": false}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let simple = simple_audit_id(&answer);
    let output = answer.body["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["content"][0]["text"], "Checking.");
    assert_eq!(
        output[1],
        json!({"type": "function_call", "id": format!("fc_{simple}_1"), "call_id": "toolu_1",
               "name": "get_weather", "arguments": "{\"city\":\"Leeds\"}", "status": "completed"})
    );
    assert_eq!(answer.body["status"], "completed");
    assert_eq!(answer.body["tool_choice"], "required");
    assert_eq!(answer.body["parallel_tool_calls"], false);
    assert_eq!(answer.body["tools"], json!([weather_tool()]));

    let call = model.last_call();
    assert_eq!(call.tools[0].name, "get_weather");
    assert_eq!(call.tools[0].input_schema["required"], json!(["city"]));
    assert_eq!(call.tool_choice, Some(ToolChoice::Any));
    let event = hub.last_event();
    assert_eq!(event.content.tools_called[0].name, "get_weather");

    // A named function.
    create(
        &hub,
        json!({"model": "claude-haiku", "input": "Weather?", "tools": [weather_tool()],
               "tool_choice": {"type": "function", "name": "get_weather"}}),
    )
    .await;
    assert_eq!(
        model.last_call().tool_choice,
        Some(ToolChoice::Tool {
            name: "get_weather".into()
        })
    );
}

#[tokio::test]
async fn a_function_output_reaches_the_model_as_a_guarded_tool_result() {
    let model = Fake::answering(vec![ContentBlock::text("14 degrees in Leeds.")]);
    let hub = hub(model.clone()).await;
    // The conversation as the SDK sends it after `input += response.output`, then the function's output.
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "tools": [weather_tool()], "input": [
            {"role": "user", "content": "Weather in Leeds?"},
            {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "toolu_1", "name": "get_weather",
             "arguments": "{\"city\":\"Leeds\"}", "status": "completed"},
            {"type": "function_call_output", "call_id": "toolu_1",
             "output": "{\"temp_c\": 14, \"reported_by\": \"jane.doe@example.com\"}"}
        ]}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let call = model.last_call();
    assert_eq!(call.messages.len(), 3);
    // The earlier answer's text and function call are one assistant turn.
    assert!(matches!(
        call.messages[1].content.as_slice(),
        [ContentBlock::Text { text }, ContentBlock::ToolUse { id, input, .. }]
            if text == "Checking." && id == "toolu_1" && input == &json!({"city": "Leeds"})
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
    let event = hub.last_event();
    assert!(event.content.blocks.iter().any(|b| b.kind == "tool_result"));
    assert!(
        event
            .guard_events
            .iter()
            .any(|e| e.source == "tool_result" && e.entity == "EMAIL")
    );
}

#[tokio::test]
async fn text_format_sets_the_response_schema() {
    let model = Fake::answering(vec![ContentBlock::text("{\"city\": \"Leeds\"}")]);
    let hub = hub(model.clone()).await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"], "additionalProperties": false});
    let format = json!({"type": "json_schema", "name": "City", "strict": true, "schema": schema});
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "input": "Where?", "text": {"format": format}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(model.last_call().response_schema, Some(schema));
    let text = answer.body["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"city": "Leeds"})
    );
    assert_eq!(answer.body["text"]["format"], format);

    create(
        &hub,
        json!({"model": "claude-haiku", "input": "Where?", "text": {"format": {"type": "json_object"}}}),
    )
    .await;
    assert_eq!(
        model.last_call().response_schema,
        Some(json!({"type": "object"}))
    );
    let missing = create(
        &hub,
        json!({"model": "claude-haiku", "input": "Where?", "text": {"format": {"type": "json_schema", "name": "x"}}}),
    )
    .await;
    refused(&missing, "text.format.schema");
}

/// Event names, with runs of text and argument deltas collapsed (the stream guard decides how text is cut).
fn names(events: &[(String, Value)]) -> Vec<&str> {
    let mut names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup_by(|a, b| *a == "response.output_text.delta" && *b == "response.output_text.delta");
    names
}

/// Checks what every streamed answer holds: each event's `type` is its name, and sequence numbers count
/// from 0.
fn check_events(events: &[(String, Value)]) {
    for ((name, data), n) in events.iter().zip(0_u64..) {
        assert_eq!(&data["type"], name, "{data}");
        assert_eq!(data["sequence_number"], n, "{data}");
    }
}

fn data<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, d)| d)
        .collect()
}

#[tokio::test]
async fn streamed_text_follows_the_responses_event_order() {
    let hub = hub(Fake::answering(vec![ContentBlock::text(
        "It is sunny in Leeds today.",
    )]))
    .await;
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "input": "Weather in Leeds?", "stream": true}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let simple = simple_audit_id(&answer);
    let events = sse_events(&answer.text);
    check_events(&events);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let created = &data(&events, "response.created")[0]["response"];
    assert_eq!(created["id"], format!("resp_{simple}"));
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert!(created["usage"].is_null());

    let item_id = format!("msg_{simple}_0");
    assert_eq!(
        *data(&events, "response.output_item.added")[0],
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
               "item": {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant",
                        "content": []}})
    );
    let text: String = data(&events, "response.output_text.delta")
        .iter()
        .map(|d| {
            assert_eq!(d["item_id"], item_id);
            assert_eq!(d["output_index"], 0);
            assert_eq!(d["content_index"], 0);
            d["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "It is sunny in Leeds today.");
    assert_eq!(data(&events, "response.output_text.done")[0]["text"], text);
    assert_eq!(
        data(&events, "response.content_part.done")[0]["part"]["text"],
        text
    );
    let done = &data(&events, "response.output_item.done")[0]["item"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["content"][0]["text"], text);

    let completed = &data(&events, "response.completed")[0]["response"];
    assert_eq!(completed["id"], format!("resp_{simple}"));
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"], json!([done]));
    assert_eq!(completed["usage"]["total_tokens"], 15);
    assert!(completed["causeway"]["guards"].is_object());

    let outcomes: Vec<Outcome> = hub.events().iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [Outcome::StreamStarted, Outcome::StreamCompleted]);
    assert!(hub.events().iter().all(|e| e.api == "responses"));
}

#[tokio::test]
async fn a_streamed_function_call_follows_the_responses_event_order() {
    let model = Fake::answering(vec![
        ContentBlock::text("Let me check."),
        ContentBlock::ToolUse {
            id: "toolu_7".into(),
            name: "send_mail".into(),
            input: json!({"to": "jane.doe@example.com", "subject": "weather"}),
        },
    ]);
    let hub = hub(model).await;
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "input": "Mail the forecast", "stream": true,
               "tools": [{"type": "function", "name": "send_mail", "parameters": {"type": "object"}}]}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        !answer.text.contains("jane.doe@example.com"),
        "an address left the hub"
    );
    let simple = simple_audit_id(&answer);
    let events = sse_events(&answer.text);
    check_events(&events);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let item_id = format!("fc_{simple}_1");
    let added = data(&events, "response.output_item.added");
    assert_eq!(
        added[1]["item"],
        json!({"type": "function_call", "id": item_id, "call_id": "toolu_7", "name": "send_mail",
               "arguments": "", "status": "in_progress"})
    );
    assert_eq!(added[1]["output_index"], 1);
    let arguments: String = data(&events, "response.function_call_arguments.delta")
        .iter()
        .map(|d| {
            assert_eq!(d["item_id"], item_id);
            d["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"to": "{EMAIL}", "subject": "weather"})
    );
    let done = data(&events, "response.function_call_arguments.done")[0];
    assert_eq!(done["arguments"], arguments);
    assert_eq!(done["name"], "send_mail");
    let item = &data(&events, "response.output_item.done")[1]["item"];
    assert_eq!(item["status"], "completed");
    assert_eq!(item["arguments"], arguments);

    let completed = &data(&events, "response.completed")[0]["response"];
    let output = completed["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_eq!(output[0]["content"][0]["text"], "Let me check.");
    assert_eq!(output[1], *item);
}

#[tokio::test]
async fn an_answer_cut_at_the_limit_is_incomplete() {
    let hub = hub(Fake::stopping(
        vec![ContentBlock::text("Once upon a")],
        StopReason::MaxTokens,
    ))
    .await;
    let body = json!({"model": "claude-haiku", "input": "Tell me a story", "max_output_tokens": 3});
    let answer = create(&hub, body.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["status"], "incomplete");
    assert_eq!(
        answer.body["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(answer.body["output"][0]["status"], "incomplete");
    assert!(answer.body.get("completed_at").is_none());

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let answer = create(&hub, streamed).await;
    let events = sse_events(&answer.text);
    check_events(&events);
    let (last, response) = events.last().unwrap();
    assert_eq!(last, "response.incomplete");
    assert_eq!(response["response"]["status"], "incomplete");
    assert_eq!(
        response["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(
        data(&events, "response.output_item.done")[0]["item"]["status"],
        "incomplete"
    );
}

#[tokio::test]
async fn a_stream_the_output_guard_stops_ends_with_error_and_response_failed() {
    let hub = hub(Fake::answering(vec![ContentBlock::text(
        "The customer's SSN is 123-45-6789, as requested.",
    )]))
    .await;
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "input": "What is the SSN?", "stream": true}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(!answer.text.contains("123-45-6789"), "{}", answer.text);
    let events = sse_events(&answer.text);
    check_events(&events);
    let tail: Vec<&str> = events[events.len() - 2..]
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(tail, ["error", "response.failed"]);
    let error = data(&events, "error")[0];
    assert_eq!(error["code"], "guard_blocked");
    assert!(error["message"].is_string());
    let audit_id = error["audit_id"].as_str().unwrap();
    let failed = &data(&events, "response.failed")[0]["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "invalid_prompt");
    let event = hub.last_event();
    assert_eq!(event.id.to_string(), audit_id);
    assert_eq!(event.api, "responses");
    assert_eq!(event.outcome, Outcome::Blocked);
}

#[tokio::test]
async fn what_the_hub_cannot_honour_is_refused_naming_the_field() {
    let model = Fake::answering(vec![ContentBlock::text("ok")]);
    let hub = hub(model.clone()).await;
    let with = |field: &str, value: Value| {
        let mut body = json!({"model": "claude-haiku", "input": "hello"});
        body[field] = value;
        body
    };

    // The hub keeps no conversation state.
    let message = refused(
        &create(&hub, with("previous_response_id", json!("resp_0190"))).await,
        "previous_response_id",
    );
    assert!(
        message.contains("no conversation state") && message.contains("`input`"),
        "{message}"
    );
    refused(
        &create(&hub, with("conversation", json!({"id": "conv_1"}))).await,
        "conversation",
    );
    let reference = create(
        &hub,
        with("input", json!([{"type": "item_reference", "id": "msg_9"}])),
    )
    .await;
    refused(&reference, "input[0]");
    refused(
        &create(&hub, with("background", json!(true))).await,
        "background",
    );

    // Images and files travel as bytes.
    let remote = create(
        &hub,
        with(
            "input",
            json!([{"role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"}
            ]}]),
        ),
    )
    .await;
    let message = refused(&remote, "input[0].content[1].image_url");
    assert!(
        message.contains("data:") && message.contains("fetches nothing"),
        "{message}"
    );
    let file_id = create(
        &hub,
        with(
            "input",
            json!([{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]),
        ),
    )
    .await;
    refused(&file_id, "input[0].content[0].file_id");

    // Built-in tools and their items.
    let message = refused(
        &create(&hub, with("tools", json!([{"type": "web_search"}]))).await,
        "tools[0].type",
    );
    assert!(message.contains("`web_search`"), "{message}");
    refused(
        &create(&hub, with("tool_choice", json!({"type": "file_search"}))).await,
        "tool_choice.type",
    );
    refused(
        &create(
            &hub,
            with("input", json!([{"type": "web_search_call", "id": "ws_1"}])),
        )
        .await,
        "input[0].type",
    );
    refused(
        &create(
            &hub,
            with(
                "input",
                json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]),
            ),
        )
        .await,
        "input[0].arguments",
    );

    // A body that does not parse names where.
    let bad_part = create(
        &hub,
        with(
            "input",
            json!([{"role": "user", "content": [{"type": "input_audio"}]}]),
        ),
    )
    .await;
    assert_eq!(bad_part.status, 400, "{}", bad_part.text);
    let message = bad_part.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("input[0]") && message.contains("input_audio"),
        "{message}"
    );

    // Nothing was recorded, and the model was never called.
    assert!(hub.events().is_empty());
    assert!(model.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refusal_carries_its_audit_id_in_the_header() {
    let hub = hub(Fake::answering(vec![ContentBlock::text("ok")])).await;
    let answer = create(
        &hub,
        json!({"model": "claude-haiku", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "file my claim"},
            {"type": "input_file", "filename": "claim.txt",
             "file_data": "data:text/plain;base64,U1NOIDEyMy00NS02Nzg5"}
        ]}]}),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], "guard_blocked");
    let audit_id = answer.body["error"]["audit_id"].as_str().unwrap();
    assert_eq!(answer.headers["x-causeway-audit-id"], audit_id);
    let event = hub.last_event();
    assert_eq!(event.outcome, Outcome::Blocked);
    assert_eq!(event.api, "responses");
    assert_eq!(event.id.to_string(), audit_id);
}
