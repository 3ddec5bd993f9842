//! What a caller with a valid token can make the hub do by repeating bad or refused calls: each refusal
//! costs little, counts against the caller, and cannot fill the audit store or the metrics.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use causeway_contract::audit::Outcome;
use causeway_contract::content::ContentBlock;
use causeway_contract::{StopReason, TokenUsage};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::test_support::{Fake, Recording, hub, hub_configured, hub_with_invoker};
use crate::invoke::{InvokeError, ModelCall, ModelInvoker, ModelReply, ModelStream};

/// A model that says when it has been called, then takes a while to answer.
#[derive(Debug, Default)]
struct Slow {
    called: Notify,
}

#[async_trait]
impl ModelInvoker for Slow {
    fn provider(&self) -> &'static str {
        "bedrock"
    }

    async fn invoke(&self, _call: &ModelCall) -> Result<ModelReply, InvokeError> {
        self.called.notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(ModelReply {
            content: vec![ContentBlock::text("late answer")],
            stop_reason: StopReason::EndTurn,
            usage: TokenUsage {
                input_tokens: 7,
                output_tokens: 2,
            },
        })
    }

    async fn invoke_stream(&self, _call: &ModelCall) -> Result<ModelStream, InvokeError> {
        Err(InvokeError::Unavailable("not streamed here".into()))
    }
}

fn invoke(model: &str, purpose: &str) -> Value {
    json!({"model": model, "purpose": purpose, "messages": [{"role": "user", "content": "hello"}]})
}

/// `{"type":"array","items":{…}}` nested `depth` times.
fn nested_schema(depth: usize) -> Value {
    let mut schema = json!({"type": "string"});
    for _ in 0..depth {
        schema = json!({"type": "array", "minItems": 16, "items": schema});
    }
    schema
}

#[tokio::test]
async fn a_flood_of_refused_calls_is_counted_not_recorded_one_by_one() {
    let hub = hub(Fake::answering(vec![ContentBlock::text("ok")])).await;
    let calls = 200_u32;
    for _ in 0..calls {
        let (status, _) = hub.post("/v1/invoke", invoke("gpt-9", "evaluation")).await;
        // Unknown model first; once the caller's admission rate is spent, throttled.
        assert!(status == 404 || status == 429, "{status}");
    }
    let written = hub.event_count();
    assert!(
        written < 50,
        "{written} records for {calls} refused calls: repeats were not collapsed"
    );
    // Once the seconds are over, the summaries account for every refused call.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let events = hub.events();
    let counted: u32 = events
        .iter()
        .map(|e| {
            e.reasons
                .iter()
                .find_map(|r| r.strip_prefix("repeats:"))
                .map_or(1, |n| n.parse::<u32>().unwrap())
        })
        .sum();
    assert_eq!(counted, calls, "{events:#?}");
    assert!(events.iter().any(|e| e.outcome == Outcome::Throttled));
}

#[tokio::test]
async fn refused_calls_spend_the_callers_admission_rate() {
    // Three calls a minute: the rate refills one call every 20 seconds, far slower than these calls come.
    let hub = hub_configured(
        Fake::answering(vec![ContentBlock::text("ok")]),
        Recording::default(),
        |config| config.budgets.user_requests_per_minute = 3,
    )
    .await;
    // A support agent offering tools is denied by Cedar.
    let mut denied = invoke("claude-haiku", "customer_support");
    denied["tools"] = json!([{"name": "refund", "input_schema": {"type": "object"}}]);
    for _ in 0..3 {
        let (status, _) = hub
            .post_as(&hub.support_token, "/v1/invoke", denied.clone())
            .await;
        assert_eq!(status, 403);
    }
    let (status, body) = hub.post_as(&hub.support_token, "/v1/invoke", denied).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`user_requests_per_minute` (3)"),
        "{body}"
    );
    // Another user is unaffected.
    let (status, _) = hub
        .post("/v1/invoke", invoke("claude-haiku", "evaluation"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_oversized_model_string_is_refused_unrecorded_and_never_becomes_a_metric_label() {
    let hub = hub(Fake::answering(vec![ContentBlock::text("ok")])).await;
    let long = "m".repeat(2048);
    let (status, body) = hub.post("/v1/invoke", invoke(&long, "evaluation")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        !body.to_string().contains(&long[..200]),
        "the value was echoed"
    );
    let (status, _) = hub
        .post("/v1/invoke", invoke("Robert'); DROP TABLE", "evaluation"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(hub.event_count(), 0);

    // A well-formed alias the catalog does not have is refused and recorded, labelled `other`.
    let (status, _) = hub.post("/v1/invoke", invoke("gpt-9", "evaluation")).await;
    assert_eq!(status, 404);
    let metrics = hub.state.metrics.render().unwrap();
    assert!(
        !metrics.contains("gpt-9"),
        "a caller's value became a label"
    );
    assert!(metrics.contains("model=\"other\""), "{metrics}");
}

#[tokio::test]
async fn a_schema_bomb_is_refused_at_the_door_for_every_provider() {
    let hub = hub(Fake::answering(vec![ContentBlock::text("ok")])).await;
    for model in ["local-dev", "claude-haiku"] {
        let mut body = invoke(model, "evaluation");
        body["response_schema"] = nested_schema(40);
        let (status, answer) = hub.post("/v1/invoke", body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nests deeper than 32 levels"),
            "{answer}"
        );

        let mut body = invoke(model, "evaluation");
        let wide: serde_json::Map<String, Value> = (0..4000)
            .map(|i| (format!("field_{i}"), json!({"type": "string"})))
            .collect();
        body["response_schema"] = json!({"type": "object", "properties": wide});
        let (status, answer) = hub.post("/v1/invoke", body).await;
        assert_eq!(status, 413, "{answer}");

        // The same bomb as a tool's input schema.
        let mut body = invoke(model, "evaluation");
        body["tools"] = json!([{"name": "t", "input_schema": {"type": "object",
            "properties": {"deep": nested_schema(40)}}}]);
        let (status, _) = hub.post("/v1/invoke", body).await;
        assert_eq!(status, 400);
    }
    assert_eq!(hub.event_count(), 0, "nothing was asked of the hub");
}

#[tokio::test]
async fn a_request_dropped_after_the_model_was_asked_still_leaves_its_record() {
    let slow = Arc::new(Slow::default());
    let hub = hub_with_invoker(slow.clone(), Recording::default()).await;
    let body = invoke("claude-haiku", "evaluation").to_string();
    let request = hub.send(hub.bearer("/v1/invoke"), body);
    // The client goes away once the prompt has reached the model.
    let dropped = tokio::select! {
        _ = request => false,
        () = slow.called.notified() => true,
    };
    assert!(dropped, "the call answered before the model was asked");
    let mut waited = 0;
    while hub.event_count() == 0 {
        waited += 1;
        assert!(waited < 1000, "no record was ever written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let event = hub.last_event();
    assert_eq!(event.outcome, Outcome::Answered);
    assert_eq!(event.usage.input_tokens, 7);
    assert!(event.prompt_sha256.is_some());
}

#[tokio::test]
async fn omitting_or_lowering_the_classification_does_not_evade_a_policy() {
    // The hub's default says restricted: restricted data stays on Bedrock.
    let hub = hub_configured(
        Fake::answering(vec![ContentBlock::text("ok")]),
        Recording::default(),
        |config| config.defaults.data_classification = "restricted".into(),
    )
    .await;
    for declared in [None, Some("public"), Some("internal")] {
        let mut request = hub.bearer("/v1/invoke");
        if let Some(declared) = declared {
            request = request.header("x-causeway-data-classification", declared);
        }
        let answer = hub
            .send(request, invoke("local-dev", "evaluation").to_string())
            .await;
        assert_eq!(answer.status, 403, "{declared:?}: {}", answer.body);
        let event = hub.last_event();
        assert_eq!(event.data_classification.as_deref(), Some("restricted"));
        assert!(
            event
                .reasons
                .contains(&"forbid:restricted-data-stays-on-bedrock".to_owned()),
            "{:?}",
            event.reasons
        );
    }
}

#[tokio::test]
async fn a_spokes_registered_classification_is_the_floor_and_a_caller_may_only_raise_it() {
    use crate::auth::WorkloadIdentity;
    use crate::routes::extract::classification;
    let hub = hub(Fake::answering(vec![ContentBlock::text("ok")])).await;
    let workload = WorkloadIdentity {
        principal: "arn:aws:iam::111122223333:role/causeway-invoker".into(),
        spoke_account: "111122223333".into(),
        ou: "workloads-prod".into(),
        application: "claims-triage".into(),
        allowed_models: Vec::new(),
        limits: crate::budget::SpokeLimits::default(),
        data_classification: Some("confidential".into()),
    };
    let headers = |value: Option<&str>| {
        let mut headers = axum::http::HeaderMap::new();
        if let Some(value) = value {
            headers.insert("x-causeway-data-classification", value.parse().unwrap());
        }
        headers
    };
    let class = |value| classification(&headers(value), &hub.state, Some(&workload)).unwrap();
    assert_eq!(class(None), "confidential");
    assert_eq!(class(Some("public")), "confidential");
    assert_eq!(class(Some("restricted")), "restricted");
    // Without a registered classification, the hub's default is the floor.
    let no_floor = classification(&headers(Some("public")), &hub.state, None).unwrap();
    assert_eq!(no_floor, "internal");
}

#[tokio::test]
async fn a_card_number_in_the_prompt_makes_the_call_confidential() {
    // A profile that masks card numbers rather than blocking them (the default blocks them).
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("masking.toml");
    std::fs::write(
        &profile,
        causeway_guard::DEFAULT_PROFILE
            .replace("CREDIT_CARD = \"block\"", "CREDIT_CARD = \"mask\""),
    )
    .unwrap();
    let hub = hub_configured(
        Fake::answering(vec![ContentBlock::text("ok")]),
        Recording::default(),
        |config| config.policy.guard_profile = Some(profile.clone()),
    )
    .await;
    let mut body = invoke("claude-haiku", "evaluation");
    body["messages"][0]["content"] = json!("Refund the card 4111 1111 1111 1111 today.");
    let (status, answer) = hub.post("/v1/invoke", body).await;
    assert_eq!(status, 200, "{answer}");
    let event = hub.last_event();
    assert_eq!(event.data_classification.as_deref(), Some("confidential"));
    assert!(
        event
            .reasons
            .contains(&"classification_raised:confidential".to_owned()),
        "{:?}",
        event.reasons
    );
}
