//! The console's search over a million records: the whole page (session check, the store's indexed query,
//! rendering 50 rows) answered through the console's router in-process, for the filters a reviewer uses.
//!
//! Run: `cargo run --release -p causeway-console --example console_search -- [RECORDS]` (default 1000000).
//! Builds an embedded store of RECORDS records over one day (1,000 users, 20 accounts, 8 applications,
//! 3 models, one call in 17 denied, one in 10 with a guard finding), then times 200 requests per search
//! shape and prints p50 and p99. The numbers go to BENCHMARKS.md.

#![expect(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use causeway_audit::{AuditSink, EmbeddedReader, EmbeddedStore, StoreOptions};
use causeway_console::{Console, ConsoleConfig, SignIn};
use causeway_contract::TokenUsage;
use causeway_contract::audit::{AuditEvent, Outcome, sha256_hex};
use causeway_contract::guard::{GuardAction, GuardEvent, GuardStage};
use tower::ServiceExt as _;
use uuid::Uuid;

const USERS: u64 = 1000;

/// A search shape: its name, and the query string of its `i`-th request.
type Shape = (&'static str, fn(u64) -> String);

fn event(n: u64, records: u64, start: time::OffsetDateTime) -> AuditEvent {
    let id = Uuid::now_v7();
    let offset_ms = i64::try_from(n * 86_400_000 / records.max(1)).unwrap();
    AuditEvent {
        id,
        call_id: id,
        timestamp: start + time::Duration::milliseconds(offset_ms),
        request_id: format!("{id}"),
        spoke_account: Some(format!("{:012}", 111_122_223_333 + n % 20)),
        application: Some(format!("app-{}", n % 8)),
        user_sub: Some(format!("user-{}", n % USERS)),
        user_issuer: Some("https://idp.example.com".into()),
        purpose: Some(["support", "evaluation", "coding"][(n % 3) as usize].into()),
        model_alias: Some(["claude-haiku", "claude-sonnet", "nova-lite"][(n % 3) as usize].into()),
        outcome: if n.is_multiple_of(17) {
            Outcome::Denied
        } else {
            Outcome::Answered
        },
        reasons: vec!["policy:engineers".into(), "stop:end_turn".into()],
        guard_events: if n.is_multiple_of(10) {
            vec![GuardEvent {
                stage: GuardStage::Input,
                kind: "pii".into(),
                entity: ["EMAIL", "PHONE_NUMBER", "PERSON"][(n / 10 % 3) as usize].into(),
                action: GuardAction::Mask,
                count: 1,
                source: "text".into(),
            }]
        } else {
            Vec::new()
        },
        usage: TokenUsage {
            input_tokens: 420,
            output_tokens: 180,
        },
        cost_micro_usd: 330,
        prompt_sha256: Some(sha256_hex(b"prompt")),
        response_sha256: Some(sha256_hex(b"answer")),
        ..AuditEvent::sample()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let records: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(23);
    {
        let store = Arc::new(
            EmbeddedStore::open_with(dir.path().join("audit.db"), StoreOptions::default()).unwrap(),
        );
        let built = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for a in 0..256 {
            let store = store.clone();
            tasks.spawn(async move {
                let mut n = a;
                while n < records {
                    store.append(event(n, records, start), None).await.unwrap();
                    n += 256;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        println!(
            "store: {records} records built in {:.0} s",
            built.elapsed().as_secs_f64()
        );
    }
    let reader = Arc::new(EmbeddedReader::open(dir.path()).unwrap());
    let token = causeway_console::random_token().unwrap();
    let console = Arc::new(
        Console::new(
            reader,
            SignIn::Link {
                token: token.clone(),
            },
            ConsoleConfig {
                reviewer_groups: vec!["local".into()],
                payload_groups: Vec::new(),
                secure_cookies: false,
                source: "bench".into(),
                account_budgets_usd: std::collections::HashMap::new(),
                trusted_keys: None,
                session_key: None,
            },
            None,
        )
        .unwrap(),
    );
    let app = causeway_console::router::<()>(console);
    let login = app
        .clone()
        .oneshot(
            Request::get(format!("/console/login?token={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let cookie = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let shapes: [Shape; 8] = [
        ("no filter, newest page", |_| String::new()),
        ("one user, last 24 h", |i| {
            format!("user=user-{}&since=24h", i * 7 % USERS)
        }),
        ("one user, second page", |i| {
            format!("user=user-{}&cursor=", i * 7 % USERS)
        }),
        ("outcome denied", |_| "outcome=denied".to_owned()),
        ("one application", |i| format!("application=app-{}", i % 8)),
        ("one account and model", |i| {
            format!(
                "account={:012}&model=claude-haiku",
                111_122_223_333 + i % 20
            )
        }),
        ("guard finding EMAIL", |_| "entity=EMAIL".to_owned()),
        ("one user with guard finding PERSON", |i| {
            format!("user=user-{}&entity=PERSON", i * 10 % USERS)
        }),
    ];
    for (name, query) in shapes {
        let mut latencies = Vec::new();
        let mut bytes = 0;
        for i in 0..200 {
            let mut q = query(i);
            if q.ends_with("cursor=") {
                // The second page: the cursor the first page's "older" link carries.
                let first = app
                    .clone()
                    .oneshot(
                        Request::get(format!("/console?{}", q.trim_end_matches("cursor=")))
                            .header(header::COOKIE, &cookie)
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let page = axum::body::to_bytes(first.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let page = String::from_utf8_lossy(&page);
                assert!(
                    page.contains("Older records"),
                    "{} rows",
                    page.matches("<tr>").count()
                );
                let cursor = page
                    .split("cursor=")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap()
                    .to_owned();
                q.push_str(&cursor);
            }
            let request = Request::get(format!("/console?{q}"))
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap();
            let t = Instant::now();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            latencies.push(t.elapsed());
            bytes += body.len();
        }
        latencies.sort();
        println!(
            "{name}: p50 {:.2} ms, p99 {:.2} ms ({} KiB a page)",
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            bytes / 200 / 1024
        );
    }
}
