//! The governed invoke path through the real hub over HTTP, with the Bedrock provider against the wire mock
//! and the embedded audit store.

use causeway_contract::audit::Outcome;
use causeway_hub::config::HubConfig;
use causeway_testkit::bedrock_mock::{BedrockMock, ECHO_PREFIX, Failure, Reply};
use causeway_testkit::hub::{
    HubOptions, TestHub, spawn_hub, spawn_hub_with, spawn_hub_with_bedrock,
};
use serde_json::{Value, json};

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(hub: &TestHub, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = http().post(hub.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn invoke_body(model: &str, purpose: &str, text: &str) -> Value {
    json!({"model": model, "purpose": purpose, "messages": [{"role": "user", "content": text}]})
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread")]
async fn native_invoke_through_bedrock_is_governed_and_audited() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("alice", &["engineers"]);

    let mut body = invoke_body(
        "claude-haiku",
        "evaluation",
        "Summarise the ticket from jane.doe@example.com please",
    );
    body["max_tokens"] = json!(100_000);
    let (status, answer) = post(&hub, "/v1/invoke", Some(&token), body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["answer"].as_str().unwrap().starts_with(ECHO_PREFIX),
        "{answer}"
    );
    assert_eq!(answer["model"], "claude-haiku");
    assert_eq!(
        answer["model_id"],
        "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    );
    assert_eq!(answer["development_model"], false);
    assert!(answer["usage"]["input_tokens"].as_u64().unwrap() > 0);

    // What the model received: the catalog's model id, guardrail instructions first, the e-mail masked,
    // max_tokens clamped to the catalog limit.
    let sent = mock.requests();
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(
        request.model_id,
        "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    );
    assert!(request.sigv4_signed);
    assert!(request.system_texts()[0].contains("Causeway governance hub"));
    let user_text = request.last_user_text().unwrap();
    assert!(user_text.contains("{EMAIL}"), "{user_text}");
    assert!(!user_text.contains("jane.doe@example.com"), "{user_text}");
    assert_eq!(request.max_tokens(), Some(8192));
    let pii = answer["guards"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == "EMAIL")
        .unwrap();
    assert_eq!(pii["action"], "mask");
    assert_eq!(pii["count"], 1);

    // The audit record is there, names the user and the decision, and holds no prompt text.
    let all = hub.audit_records().unwrap();
    assert_eq!(all.len(), 1);
    let record = &all[0];
    assert_eq!(
        record.event.id.to_string(),
        answer["audit_id"].as_str().unwrap()
    );
    assert_eq!(record.event.outcome, Outcome::Answered);
    assert_eq!(record.event.user_sub.as_deref(), Some("alice"));
    assert_eq!(record.event.purpose.as_deref(), Some("evaluation"));
    assert_eq!(record.event.provider.as_deref(), Some("bedrock"));
    assert!(
        record
            .event
            .reasons
            .contains(&"permit:engineers-code-and-evaluation".to_owned())
    );
    assert!(record.event.cost_micro_usd > 0);
    assert!(record.event.prompt_sha256.is_some() && record.event.response_sha256.is_some());
    let stored = serde_json::to_string(record).unwrap();
    assert!(
        !stored.contains("jane.doe"),
        "the audit record must not hold PII"
    );
    assert!(
        !stored.contains("Summarise the ticket"),
        "the audit record must not hold the prompt"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bedrock_guardrail_is_passed_through() {
    let mock = BedrockMock::start().await.unwrap();
    let mut config = HubConfig::default();
    config.providers.bedrock = Some(causeway_hub::config::BedrockConfig {
        region: None,
        endpoint_url: None,
        guardrail_id: Some("gr-123".into()),
        guardrail_version: Some("7".into()),
        max_attempts: 1,
    });
    let hub = spawn_hub_with(HubOptions {
        config,
        bedrock: Some(mock.endpoint_url()),
        ..HubOptions::default()
    })
    .await
    .unwrap();
    let token = hub.token("alice", &["engineers"]);
    let (status, _) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("nova-lite", "evaluation", "hi"),
    )
    .await;
    assert_eq!(status, 200);
    let request = &mock.requests()[0];
    assert_eq!(request.guardrail_identifier(), Some("gr-123"));
    assert_eq!(request.guardrail_version(), Some("7"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_completions_non_streaming() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("bob", &["analysts"]);
    let response = http()
        .post(hub.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-causeway-purpose", "analytics")
        .json(&json!({
            "model": "claude-sonnet",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is a ledger?"}]}
            ],
            "temperature": 0.2
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let audit_header = response.headers()["x-causeway-audit-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with(ECHO_PREFIX)
    );
    assert_eq!(body["causeway"]["audit_id"], audit_header.as_str());
    assert_eq!(body["id"], format!("chatcmpl-{audit_header}"));
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // The application's system message comes after the guardrail instructions, never instead of them.
    let system = mock.requests()[0].system_texts();
    assert!(system[0].contains("Causeway governance hub"));
    assert!(system.iter().any(|s| s.contains("Be brief.")));
    let all = hub.audit_records().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].event.api, "chat_completions");
    assert_eq!(all[0].event.user_sub.as_deref(), Some("bob"));
}

/// Parses an SSE body into its `data:` payloads.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|frame| {
            let data: Vec<&str> = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_completions_streaming_through_bedrock() {
    let mock = BedrockMock::start().await.unwrap();
    let long_answer =
        "Borrow checking proves at compile time that every reference is valid. ".repeat(12);
    mock.set_reply(Reply::text(long_answer.clone()));
    mock.set_stream_chunk_chars(20);
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("alice", &["engineers"]);
    let response = http()
        .post(hub.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-causeway-purpose", "software_development")
        .json(&json!({
            "model": "claude-sonnet",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Explain borrow checking in one line"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let audit_id = response.headers()["x-causeway-audit-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, long_answer);
    assert!(
        chunks.len() > 10,
        "the answer arrives in several chunks: {}",
        chunks.len()
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("stop"));
    let usage = chunks.iter().find(|c| !c["usage"].is_null()).unwrap();
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == format!("chatcmpl-{audit_id}"))
    );

    // Two records: the opening one (written before the first byte) and the closing one with usage.
    let all = hub.audit_records().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].event.outcome, Outcome::StreamStarted);
    assert_eq!(all[0].event.id.to_string(), audit_id);
    assert_eq!(all[1].event.outcome, Outcome::StreamCompleted);
    assert_eq!(all[1].event.call_id, all[0].event.call_id);
    assert!(all[1].event.usage.output_tokens > 0);
    assert_eq!(
        all[1].event.response_sha256.as_deref(),
        Some(causeway_contract::audit::sha256_hex(content.as_bytes()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_development_model_is_labelled() {
    let hub = spawn_hub().await.unwrap();
    let token = hub.token("carol", &[]);
    let (status, answer) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("local-dev", "evaluation", "hi"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["development_model"], true);
    assert!(
        answer["answer"]
            .as_str()
            .unwrap()
            .starts_with("[causeway local development model]")
    );
    let all = hub.audit_records().unwrap();
    assert!(all[0].event.development_model);
    assert_eq!(all[0].event.provider.as_deref(), Some("local"));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_names_the_field() {
    let hub = spawn_hub().await.unwrap();
    let token = hub.token("alice", &[]);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        json!({"model": "local-dev", "purpose": "evaluation", "messages": [{"role": "robot", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_request");
    assert!(
        error_message(&body)
            .starts_with("invalid JSON at `messages[0].role`: unknown variant `robot`"),
        "{body}"
    );

    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        json!({"model": "local-dev", "messages": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error_message(&body).contains("missing field `purpose`"),
        "{body}"
    );

    let response = http()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        error_message(&body).starts_with("invalid JSON body:"),
        "{body}"
    );

    let response = http()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(&token)
        .body("model=local-dev")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_bad_token_is_401() {
    let hub = spawn_hub().await.unwrap();
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        None,
        invoke_body("local-dev", "evaluation", "hi"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "unauthenticated");
    assert!(error_message(&body).contains("missing bearer token"));

    // A token from another hub's development key is not trusted.
    let other = spawn_hub().await.unwrap();
    let foreign = other.token("mallory", &["engineers"]);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&foreign),
        invoke_body("local-dev", "evaluation", "hi"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        error_message(&body),
        "invalid token: signed by an unknown key"
    );
    assert!(
        hub.audit_records().unwrap().is_empty(),
        "unidentified callers leave no governed-call record"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_deny_is_403_and_audited() {
    let hub = spawn_hub().await.unwrap();
    let token = hub.token("dave", &["support-agents"]);
    let mut config = HubConfig::default();
    config.providers.local.enabled = Some(true);
    // support-agents may use claude-haiku only for customer_support.
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("claude-haiku", "analytics", "hi"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), "forbidden");
    assert!(error_message(&body).contains("default_deny"), "{body}");
    let audit_id = body["error"]["audit_id"].as_str().unwrap();
    let all = hub.audit_records().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].event.id.to_string(), audit_id);
    assert_eq!(all[0].event.outcome, Outcome::Denied);
    assert_eq!(all[0].event.reasons, vec!["default_deny".to_owned()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_alias_is_404_listing_only_visible_models() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("dave", &["support-agents"]);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("gpt-9", "customer_support", "hi"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "model_not_found");
    insta::assert_snapshot!(error_message(&body), @"unknown model `gpt-9`; models available to you for purpose `customer_support`: `claude-haiku`, `local-dev`, `nova-lite`");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_purpose_is_400_naming_the_allowed_ones() {
    let hub = spawn_hub().await.unwrap();
    let token = hub.token("alice", &[]);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("local-dev", "marketing", "hi"),
    )
    .await;
    assert_eq!(status, 400);
    insta::assert_snapshot!(error_message(&body), @"unknown purpose `marketing`; declare one of `analytics`, `customer_support`, `evaluation`, `general_assistance`, `software_development`");

    let response = http()
        .post(hub.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&json!({"model": "local-dev", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        error_message(&body)
            .starts_with("declare the purpose of this call in header `x-causeway-purpose`")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_limit_is_413() {
    let mut config = HubConfig::default();
    config.server.max_body_bytes = 4096;
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    let token = hub.token("alice", &[]);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("local-dev", "evaluation", &"a".repeat(10_000)),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "payload_too_large");
    assert_eq!(
        error_message(&body),
        "request body is larger than the limit of 4096 bytes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn budget_exhausted_is_429_with_retry_after() {
    let mut config = HubConfig::default();
    config.budgets.user_requests_per_minute = 1;
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    let token = hub.token("alice", &[]);
    let (status, _) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("local-dev", "evaluation", "one"),
    )
    .await;
    assert_eq!(status, 200);
    let response = http()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(&token)
        .json(&invoke_body("local-dev", "evaluation", "two"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "budget_exceeded");
    assert!(
        error_message(&body).contains("`user_requests_per_minute` (1)"),
        "{body}"
    );
    let all = hub.audit_records().unwrap();
    assert_eq!(all[1].event.outcome, Outcome::Throttled);
}

#[tokio::test(flavor = "multi_thread")]
async fn guard_block_is_403_and_audited_without_the_value() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("alice", &["engineers"]);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body(
            "claude-haiku",
            "evaluation",
            "charge card 4111 1111 1111 1111 now",
        ),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "guard_blocked");
    assert!(error_message(&body).contains("CREDIT_CARD"), "{body}");
    // The card number in any form, not a fragment: ids, hashes and timestamps hold digit runs by chance.
    let holds_card =
        |text: &str| text.contains("4111 1111 1111 1111") || text.contains("4111111111111111");
    assert!(!holds_card(&body.to_string()), "{body}");
    assert!(
        mock.requests().is_empty(),
        "a blocked prompt never reaches the model"
    );
    let all = hub.audit_records().unwrap();
    assert_eq!(all[0].event.outcome, Outcome::Blocked);
    assert!(!holds_card(&serde_json::to_string(&all[0]).unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_write_failure_is_503_and_no_answer() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("alice", &["engineers"]);

    // Make the real store refuse writes, as a full or broken disk would: here the index rows every record
    // gets. A call's record is durable once its log frame is synced, so the calls whose rows go in after
    // the failure may still be answered (each record restored from the log later); once the store finds
    // its rows failed (at its next index commit, within 200 ms), every call gets a 503 until the records
    // are restored: `shared/audit/RULES.md`, "Failures".
    let saboteur = rusqlite::Connection::open(hub.audit_path()).unwrap();
    saboteur
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON records
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();

    let mut calls = 0;
    let body = loop {
        calls += 1;
        let (status, body) = post(
            &hub,
            "/v1/invoke",
            Some(&token),
            invoke_body("claude-haiku", "evaluation", "secret plan"),
        )
        .await;
        if status != 200 {
            assert_eq!(status, 503, "{body}");
            break body;
        }
    };
    assert_eq!(error_code(&body), "audit_unavailable");
    assert!(body.get("answer").is_none());
    assert!(
        !body.to_string().contains(ECHO_PREFIX),
        "no part of the answer may leave: {body}"
    );
    assert_eq!(
        mock.requests().len(),
        calls,
        "the model was called, but the last answer is withheld"
    );

    // Streaming: the opening record cannot be written, so not a byte of the answer is sent.
    let response = http()
        .post(hub.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-causeway-purpose", "evaluation")
        .json(&json!({"model": "claude-haiku", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "audit_unavailable");

    let health = http().get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "the store is reachable; only writes fail"
    );
    let metrics = http()
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("causeway_audit_write_failures_total 2"),
        "{metrics}"
    );

    saboteur.execute_batch("DROP TRIGGER refuse;").unwrap();
    let (status, _) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("claude-haiku", "evaluation", "again"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(hub.audit_reader().unwrap().verify().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn model_unavailable_is_503_and_audited() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("alice", &["engineers"]);
    mock.fail_next(1, Failure::ServiceUnavailable);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("claude-haiku", "evaluation", "x"),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(error_code(&body), "model_unavailable");
    assert!(error_message(&body).contains("`claude-haiku`"));
    mock.fail_next(1, Failure::Throttling);
    let (status, body) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("claude-haiku", "evaluation", "x"),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(
        error_message(&body),
        "model `claude-haiku` is throttling requests; retry later"
    );
    let all = hub.audit_records().unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.event.outcome == Outcome::Failed));
    assert_eq!(
        all[1].event.reasons.last().map(String::as_str),
        Some("provider_throttled")
    );

    // A provider the hub has not configured is also 503, before any call.
    let plain = spawn_hub().await.unwrap();
    let token = plain.token("alice", &["engineers"]);
    let (status, body) = post(
        &plain,
        "/v1/invoke",
        Some(&token),
        invoke_body("claude-haiku", "evaluation", "x"),
    )
    .await;
    assert_eq!(status, 503);
    assert!(
        error_message(&body)
            .contains("provider `bedrock`, which this hub does not have configured")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn models_health_metrics_and_unknown_routes() {
    let mock = BedrockMock::start().await.unwrap();
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let token = hub.token("dave", &["support-agents"]);
    let models: Value = http()
        .get(hub.url("/v1/models"))
        .bearer_auth(&token)
        .header("x-causeway-purpose", "customer_support")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // Chat and embedding models alike, each saying which kind it is.
    assert_eq!(
        ids,
        vec!["claude-haiku", "local-dev", "local-embed", "nova-lite"]
    );
    let kinds: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["chat", "chat", "embedding", "chat"]);

    let health: Value = http()
        .get(hub.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["audit_store"], "embedded");

    let (status, _) = post(
        &hub,
        "/v1/invoke",
        Some(&token),
        invoke_body("local-dev", "evaluation", "x"),
    )
    .await;
    assert_eq!(status, 200);
    let metrics = http()
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("causeway_governed_calls_total{outcome=\"answered\",model=\"local-dev\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("causeway_http_requests_total{route=\"/v1/invoke\",status=\"200\"} 1"),
        "{metrics}"
    );

    let response = http().get(hub.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "not_found");
    let response = http().get(hub.url("/v1/invoke")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("x-request-id"));
}

/// One HTTP/1.1 request on `stream`, and its status, headers (lowercase names) and body; `None` when the
/// server has closed the connection.
async fn exchange(
    stream: &mut tokio::net::TcpStream,
    host: &str,
) -> Option<(u16, Vec<(String, String)>, Vec<u8>)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = r#"{"model":"local-dev","purpose":"evaluation","messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/invoke HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let mut received = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    // Every answer here has a length (none is streamed).
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut body = received[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed inside a body");
        body.extend_from_slice(&chunk[..n]);
    }
    Some((status, headers, body))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_on_one_kept_alive_connection_is_cut_and_the_connection_closed() {
    use tokio::io::AsyncReadExt as _;
    let mut config = HubConfig::default();
    config.server.max_requests_per_source_per_second = 0;
    config.server.max_requests_per_connection_per_second = 5;
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    let url = reqwest::Url::parse(&hub.url("/")).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let mut statuses = Vec::new();
    let closing = loop {
        let (status, headers, _) = exchange(&mut stream, &host)
            .await
            .expect("the hub answers before it closes");
        statuses.push(status);
        if status == 429 {
            break headers;
        }
        // Unauthenticated calls within the ceiling reach identity and get a 401.
        assert_eq!(status, 401, "{statuses:?}");
        // Five a second: however slowly this machine sends, 50 requests cannot all fit.
        assert!(statuses.len() < 50, "{statuses:?}");
    };
    assert!(statuses.len() >= 2, "{statuses:?}");
    assert!(
        closing.contains(&("connection".to_owned(), "close".to_owned())),
        "{closing:?}"
    );
    // The hub has closed this connection: the next read is the end of the stream.
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).await.unwrap_or(0), 0);
    // A new connection starts with its own count.
    let mut fresh = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (status, _, _) = exchange(&mut fresh, &host).await.unwrap();
    assert_eq!(status, 401);
    assert!(hub.audit_records().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_from_one_address_is_cut_before_identity() {
    let mut config = HubConfig::default();
    config.server.max_requests_per_source_per_second = 1;
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        // No token at all: without the ceiling every one would cost a token check and a 401.
        let response = http()
            .post(hub.url("/v1/invoke"))
            .json(&invoke_body("local-dev", "evaluation", "hi"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 20, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(hub.audit_records().unwrap().is_empty());
}
