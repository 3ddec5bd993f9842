use super::*;
use crate::config::BudgetConfig;

fn config(rate: u32, tokens: u64, limits: Vec<BudgetLimitConfig>) -> Vec<BudgetLimitConfig> {
    BudgetConfig {
        user_requests_per_minute: rate,
        user_tokens_per_day: tokens,
        global_requests_per_minute: 0,
        limits,
        ..BudgetConfig::default()
    }
    .limits()
}

fn budgets(rate: u32, tokens: u64) -> Budgets {
    Budgets::new(config(rate, tokens, Vec::new()))
}

fn alice() -> BudgetSubjects<'static> {
    BudgetSubjects {
        user: "alice",
        application: None,
        spoke_account: None,
        spoke_limits: SpokeLimits::default(),
    }
}

fn tokens(n: u64) -> Usage {
    Usage {
        tokens: n,
        cost_micro_usd: 0,
    }
}

fn exceeded(refusal: BudgetRefusal) -> BudgetExceeded {
    match refusal {
        BudgetRefusal::Exceeded(e) => e,
        BudgetRefusal::Unavailable(e) => BudgetExceeded {
            budget: format!("unexpected: {e}"),
            limit: 0,
            subject: String::new(),
            retry_after_secs: 0,
        },
    }
}

#[tokio::test]
async fn request_rate_resets_each_minute() {
    let b = budgets(2, 0);
    let t = 1_000_040; // 20 s into a minute (1_000_020 is a minute boundary)
    b.release(b.reserve(&alice(), tokens(0), t).await.unwrap())
        .await;
    b.release(b.reserve(&alice(), tokens(0), t).await.unwrap())
        .await;
    let err = exceeded(b.reserve(&alice(), tokens(0), t).await.unwrap_err());
    assert_eq!(err.budget, "user_requests_per_minute");
    assert_eq!(err.subject, "alice");
    assert_eq!(err.retry_after_secs, 40);
    // Other users are unaffected; the next minute is fresh.
    let bob = BudgetSubjects {
        user: "bob",
        ..alice()
    };
    assert!(b.reserve(&bob, tokens(0), t).await.is_ok());
    assert!(b.reserve(&alice(), tokens(0), t + 40).await.is_ok());
}

#[tokio::test]
async fn reservations_prevent_overshoot_and_settle_to_real_usage() {
    let b = budgets(0, 1000);
    let first = b.reserve(&alice(), tokens(600), 0).await.unwrap();
    // A concurrent call that would overshoot with the first still in flight is refused.
    assert_eq!(
        exceeded(b.reserve(&alice(), tokens(600), 0).await.unwrap_err()).budget,
        "user_tokens_per_day"
    );
    b.settle(first, tokens(150)).await;
    assert_eq!(b.tokens_used("alice", 0).await, 150);
    let second = b.reserve(&alice(), tokens(600), 0).await.unwrap();
    b.release(second).await;
    assert_eq!(b.tokens_used("alice", 0).await, 150);
}

#[tokio::test]
async fn application_and_account_budgets_need_a_workload_and_count_cost() {
    let limits = vec![
        BudgetLimitConfig {
            subject: BudgetSubject::Application,
            metric: BudgetMetric::CostMicroUsd,
            window: BudgetWindow::Month,
            limit: 10_000,
        },
        BudgetLimitConfig {
            subject: BudgetSubject::SpokeAccount,
            metric: BudgetMetric::Requests,
            window: BudgetWindow::Day,
            limit: 3,
        },
    ];
    let b = Budgets::new(config(0, 0, limits));
    let claims = BudgetSubjects {
        user: "alice",
        application: Some("claims-triage"),
        spoke_account: Some("111122223333"),
        spoke_limits: SpokeLimits::default(),
    };
    let worst = Usage {
        tokens: 0,
        cost_micro_usd: 6_000,
    };
    // 2026-11-21T12:00:00Z: the month ends 2026-12-01T00:00:00Z.
    let now = 1_795_262_400;
    let first = b.reserve(&claims, worst, now).await.unwrap();
    let err = exceeded(b.reserve(&claims, worst, now).await.unwrap_err());
    assert_eq!(err.budget, "application_cost_micro_usd_per_month");
    assert_eq!(err.subject, "claims-triage");
    assert_eq!(
        err.retry_after_secs,
        u64::try_from(1_796_083_200 - now).unwrap()
    );
    // The refused call gave back its request on the account budget: settle the first cheaply and go on.
    b.settle(
        first,
        Usage {
            tokens: 10,
            cost_micro_usd: 1_000,
        },
    )
    .await;
    let second = b.reserve(&claims, worst, now).await.unwrap();
    b.release(second).await;
    // Two calls counted on the account (the refused one was rolled back): one more fits, then none.
    b.release(b.reserve(&claims, tokens(0), now).await.unwrap())
        .await;
    let err = exceeded(b.reserve(&claims, tokens(0), now).await.unwrap_err());
    assert_eq!(err.budget, "spoke_account_requests_per_day");
    // Without a workload, application and account budgets do not apply.
    assert!(b.reserve(&alice(), worst, now).await.is_ok());
}

#[tokio::test]
async fn a_store_that_cannot_answer_refuses_the_call() {
    let mut store = MockBudgetStore::new();
    store
        .expect_try_add()
        .returning(|_, _, _, _| Err(BudgetError::Unavailable("connection refused".into())));
    let b = Budgets::with_store(config(10, 0, Vec::new()), Arc::new(store));
    let refusal = b.reserve(&alice(), tokens(1), 0).await.unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "the budget store is unavailable: connection refused"
    );
}

#[test]
fn months_roll_over_at_the_year_end() {
    // 2026-12-31T23:00:00Z
    let (id, end) = window_bounds(BudgetWindow::Month, 1_798_758_000);
    assert_eq!(id, "M2026-12");
    assert_eq!(end, 1_798_761_600); // 2027-01-01T00:00:00Z
}

fn spoke(account: &'static str, limits: SpokeLimits) -> BudgetSubjects<'static> {
    BudgetSubjects {
        user: "alice",
        application: Some("claims-triage"),
        spoke_account: Some(account),
        spoke_limits: limits,
    }
}

#[tokio::test]
async fn a_spokes_own_limits_count_per_account_beside_the_configured_ones() {
    // A configured account budget of 5 a day, and the spoke's own of 2 a day.
    let b = Budgets::new(config(
        0,
        0,
        vec![BudgetLimitConfig {
            subject: BudgetSubject::SpokeAccount,
            metric: BudgetMetric::Requests,
            window: BudgetWindow::Day,
            limit: 5,
        }],
    ));
    let limits = SpokeLimits {
        requests_per_day: Some(2),
        ..SpokeLimits::default()
    };
    let claims = spoke("111122223333", limits);
    let now = 1_795_262_400; // 2026-11-21T12:00:00Z
    b.release(b.reserve(&claims, tokens(1), now).await.unwrap())
        .await;
    b.release(b.reserve(&claims, tokens(1), now).await.unwrap())
        .await;
    let err = exceeded(b.reserve(&claims, tokens(1), now).await.unwrap_err());
    assert_eq!(err.budget, "spoke_requests_per_day");
    assert_eq!(err.limit, 2);
    assert_eq!(err.subject, "111122223333");
    assert_eq!(err.retry_after_secs, 43_200);
    // Another spoke with the same limits has its own counter; so has the next UTC day.
    let payments = spoke("444455556666", limits);
    assert!(b.reserve(&payments, tokens(1), now).await.is_ok());
    assert!(b.reserve(&claims, tokens(1), now + 43_200).await.is_ok());
    // The configured account budget counted the spoke's calls on its own counter: 2 of 5 used today, so a
    // spoke registered without limits still has 3 calls left.
    let unlimited = spoke("111122223333", SpokeLimits::default());
    for _ in 0..3 {
        b.release(b.reserve(&unlimited, tokens(1), now).await.unwrap())
            .await;
    }
    let err = exceeded(b.reserve(&unlimited, tokens(1), now).await.unwrap_err());
    assert_eq!(err.budget, "spoke_account_requests_per_day");
}

#[tokio::test]
async fn a_spokes_token_and_cost_limits_reserve_and_settle() {
    let b = budgets(0, 0);
    let limits = SpokeLimits {
        requests_per_day: None,
        tokens_per_day: Some(1_000),
        cost_micro_usd_per_month: Some(micro_usd(0.01).unwrap()),
    };
    let claims = spoke("111122223333", limits);
    let now = 1_795_262_400;
    let worst = Usage {
        tokens: 600,
        cost_micro_usd: 4_000,
    };
    let first = b.reserve(&claims, worst, now).await.unwrap();
    let err = exceeded(b.reserve(&claims, worst, now).await.unwrap_err());
    assert_eq!(err.budget, "spoke_tokens_per_day");
    b.settle(
        first,
        Usage {
            tokens: 100,
            cost_micro_usd: 3_000,
        },
    )
    .await;
    // 100 tokens and 3,000 micro-dollars used: one more worst case fits today, then the day's tokens run out;
    // the next day the tokens are fresh but the month's cost runs out.
    b.settle(b.reserve(&claims, worst, now).await.unwrap(), worst)
        .await;
    let err = exceeded(b.reserve(&claims, worst, now).await.unwrap_err());
    assert_eq!(err.budget, "spoke_tokens_per_day");
    let next_day = now + 86_400;
    let err = exceeded(b.reserve(&claims, worst, next_day).await.unwrap_err());
    assert_eq!(err.budget, "spoke_cost_micro_usd_per_month");
    assert_eq!(err.limit, 10_000);
    // A call that is over a limit by itself is refused without touching the store, and a limit of 0 allows
    // nothing.
    let big = Usage {
        tokens: 5_000,
        cost_micro_usd: 0,
    };
    let err = exceeded(
        b.reserve(&spoke("444455556666", limits), big, now)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.budget, "spoke_tokens_per_day");
    let closed = SpokeLimits {
        requests_per_day: Some(0),
        ..SpokeLimits::default()
    };
    let err = exceeded(
        b.reserve(&spoke("444455556666", closed), tokens(1), now)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.budget, "spoke_requests_per_day");
    // Without a spoke account, spoke limits do not apply.
    let no_account = BudgetSubjects {
        spoke_account: None,
        ..spoke("111122223333", closed)
    };
    assert!(b.reserve(&no_account, tokens(1), now).await.is_ok());
}

#[test]
fn dollars_become_micro_dollars_within_range() {
    assert_eq!(micro_usd(2000.0), Some(2_000_000_000));
    assert_eq!(micro_usd(12.345_678_9), Some(12_345_679));
    assert_eq!(micro_usd(0.0), Some(0));
    assert_eq!(micro_usd(-1.0), None);
    assert_eq!(micro_usd(f64::NAN), None);
    assert_eq!(micro_usd(f64::INFINITY), None);
    assert_eq!(micro_usd(2e12), None);
}
