//! Benchmarks of the hub's own cost: the input guard on a realistic prompt, and a whole governed call
//! (token verification, Cedar, budget, guards, the local development model, a durable audit append)
//! through the router with no socket.
//!
//! Run: `cargo bench -p causeway-hub --bench governed`

#![expect(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]

use std::sync::Arc;

use axum::body::Body;
use causeway_contract::dev::DevKey;
use causeway_contract::{GuardReport, Message, Role};
use causeway_hub::app::{Overrides, build_state, router};
use causeway_hub::config::HubConfig;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// About 3 KB of support-ticket text with an e-mail address and a phone number in it.
fn prompt() -> String {
    let paragraph = "Customer reports that the monthly statement for the business account shows a duplicated \
        direct debit. They asked us to confirm whether the second collection will be refunded automatically \
        and how long it usually takes. Please summarise the case history and suggest a reply. ";
    let mut text = paragraph.repeat(10);
    text.push_str("Contact: jordan.lee@example.com or +44 20 7946 0958.");
    text
}

fn guard(c: &mut Criterion) {
    let engine = causeway_hub::guardrails::load_engine(None).unwrap();
    let messages = vec![Message::text(Role::User, prompt())];
    let mut group = c.benchmark_group("guard");
    group.throughput(Throughput::Bytes(prompt().len() as u64));
    group.bench_function("check_input_3kb", |b| {
        b.iter(|| {
            let mut report = GuardReport::default();
            engine.check_input(&messages, &mut report)
        });
    });
    group.finish();
}

fn governed_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::default();
    config.data_dir.0 = dir.path().to_path_buf();
    config.budgets.user_requests_per_minute = 0;
    config.budgets.user_tokens_per_day = 0;
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = key
        .mint("bench", &["engineers".to_owned()], now, 86_400)
        .unwrap();
    let state = Arc::new(
        runtime
            .block_on(build_state(config, Overrides::default(), false))
            .unwrap(),
    );
    let app = router(state);
    let body = serde_json::json!({
        "model": "local-dev",
        "purpose": "evaluation",
        "messages": [{"role": "user", "content": prompt()}],
    })
    .to_string();

    c.bench_function("governed_invoke_local_model_durable_audit", |b| {
        b.to_async(&runtime).iter(|| {
            let request = http::Request::post("/v1/invoke")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.unwrap()
            }
        });
    });
}

criterion_group!(benches, guard, governed_call);
criterion_main!(benches);
