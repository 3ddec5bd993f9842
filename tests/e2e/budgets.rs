//! Budgets shared by several hub instances: two hubs count one user's calls in one DynamoDB table (moto), and a
//! concurrent burst of ten times the budget lets exactly the budget through.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveSpecification};
use causeway_hub::app::Overrides;
use causeway_hub::budget::dynamodb::DynamoDbStore;
use causeway_hub::config::{
    BudgetLimitConfig, BudgetMetric, BudgetSubject, BudgetWindow, HubConfig,
};
use causeway_testkit::hub::{HubOptions, TestHub, spawn_hub_with};
use causeway_testkit::moto::{MotoServer, create_pk_table};
use serde_json::{Value, json};

const TABLE: &str = "causeway-budgets";
const BUDGET: usize = 5;

pub(crate) async fn budget_table(moto: &MotoServer) -> aws_sdk_dynamodb::Client {
    let client = create_pk_table(&moto.sdk_config().await, TABLE)
        .await
        .unwrap();
    client
        .update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    client
}

/// A hub whose only budget is `BUDGET` calls per user per month, counted in the shared table through its own
/// DynamoDB client.
async fn hub(moto: &MotoServer) -> TestHub {
    let mut config = HubConfig::default();
    config.budgets.user_requests_per_minute = 0;
    config.budgets.user_tokens_per_day = 0;
    // A month window, so the burst cannot straddle a reset.
    config.budgets.limits = vec![BudgetLimitConfig {
        subject: BudgetSubject::User,
        metric: BudgetMetric::Requests,
        window: BudgetWindow::Month,
        limit: BUDGET as u64,
    }];
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    spawn_hub_with(HubOptions {
        config,
        overrides: Overrides {
            budget_store: Some(Arc::new(DynamoDbStore::new(client, TABLE))),
            ..Overrides::default()
        },
        ..HubOptions::default()
    })
    .await
    .unwrap()
}

async fn invoke(hub: &TestHub, token: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(token)
        .json(&json!({
            "model": "local-dev", "purpose": "evaluation",
            "messages": [{"role": "user", "content": "hello"}],
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hubs_share_one_exact_budget() {
    let moto = MotoServer::start().await.unwrap();
    let dynamodb = budget_table(&moto).await;
    let hubs = [hub(&moto).await, hub(&moto).await];
    let tokens: Vec<String> = hubs.iter().map(|h| h.token("alice", &[])).collect();

    let burst = (0..BUDGET * 10).map(|i| invoke(&hubs[i % 2], &tokens[i % 2]));
    let results = futures::future::join_all(burst).await;

    let passed = results.iter().filter(|(s, _, _)| *s == 200).count();
    let throttled: Vec<_> = results.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(passed, BUDGET, "{results:?}");
    assert_eq!(throttled.len(), BUDGET * 9, "{results:?}");
    for (_, retry_after, body) in &throttled {
        assert!(retry_after.as_deref().unwrap().parse::<u64>().unwrap() > 0);
        assert_eq!(body["error"]["code"], "budget_exceeded");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("budget `user_requests_per_month` (5) is exhausted for `alice`"),
            "{body}"
        );
    }
    // One counter item, holding exactly the budget (refused adds never landed), with its expiry.
    let items = dynamodb.scan().table_name(TABLE).send().await.unwrap();
    let items = items.items();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["used"], AttributeValue::N(BUDGET.to_string()));
    assert!(
        items[0]["pk"]
            .as_s()
            .unwrap()
            .starts_with("user#alice#requests#M")
    );
    assert!(items[0].contains_key("expires_at"));

    // Another user has a budget of their own.
    let (status, _, body) = invoke(&hubs[1], &hubs[1].token("bob", &[])).await;
    assert_eq!(status, 200, "{body}");
}
