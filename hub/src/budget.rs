//! Budgets: request rate, tokens and cost, per user, application, spoke account or the whole hub, over fixed
//! UTC windows (minute, day, calendar month). Checked before a call and settled with the real usage after it.
//!
//! Constraints:
//! - A call reserves its worst case before the model is called: one request, the estimated input tokens plus
//!   the clamped `max_tokens`, and what that would cost at the catalog's prices. So concurrent calls cannot
//!   overshoot a limit: a reservation that would pass a limit is refused, never applied. Settling replaces the
//!   reservation with the usage the provider reported; a call that never reached the model gives back its
//!   tokens and cost (its request still counts).
//! - Counters live behind [`BudgetStore`]. [`MemoryStore`] is exact for one instance; [`dynamodb::DynamoDbStore`]
//!   makes every add a conditional update, so any number of instances share one exact limit.
//! - A store that cannot answer refuses the call (fail closed).
//! - A spoke's own limits come from the spoke registry with each call ([`BudgetSubjects::spoke_limits`]) and
//!   are counted in addition to the configured ones, on counters of their own (`spoke#<account>#…`), so they
//!   never share a counter with a configured `spoke_account` limit and hold across hub instances. A limit of 0
//!   allows nothing; only an absent limit means no limit.

pub mod dynamodb;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use serde::Deserialize;

/// A counter store failed.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The backing store cannot be reached or refused the request for another reason than the limit.
    #[error("the budget store is unavailable: {0}")]
    Unavailable(String),
}

/// Counters, one per subject and window.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait BudgetStore: Send + Sync + std::fmt::Debug {
    /// Adds `amount` to counter `key` unless the result would exceed `limit`; true when added. A counter that
    /// does not exist yet starts at zero and expires after `expires_unix`.
    async fn try_add(
        &self,
        key: &str,
        amount: u64,
        limit: u64,
        expires_unix: i64,
    ) -> Result<bool, BudgetError>;

    /// Adds `delta` (negative to give back) to counter `key` unconditionally.
    async fn adjust(&self, key: &str, delta: i64, expires_unix: i64) -> Result<(), BudgetError>;

    /// The counter's value (0 when absent).
    async fn used(&self, key: &str) -> Result<u64, BudgetError>;
}

// === windows ===

fn window_bounds(window: BudgetWindow, now_unix: i64) -> (String, i64) {
    match window {
        BudgetWindow::Minute => {
            let start = now_unix.div_euclid(60) * 60;
            (format!("m{start}"), start + 60)
        }
        BudgetWindow::Day => {
            let start = now_unix.div_euclid(86_400) * 86_400;
            (format!("d{start}"), start + 86_400)
        }
        BudgetWindow::Month => {
            let date = time::OffsetDateTime::from_unix_timestamp(now_unix)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                .date();
            let (year, month) = (date.year(), date.month());
            let (next_year, next_month) = match month {
                time::Month::December => (year + 1, time::Month::January),
                m => (year, m.next()),
            };
            let end = time::Date::from_calendar_date(next_year, next_month, 1)
                .map(|d| d.midnight().assume_utc().unix_timestamp())
                .unwrap_or(now_unix + 86_400);
            (format!("M{year}-{:02}", u8::from(month)), end)
        }
    }
}

fn window_name(window: BudgetWindow) -> &'static str {
    match window {
        BudgetWindow::Minute => "minute",
        BudgetWindow::Day => "day",
        BudgetWindow::Month => "month",
    }
}

fn subject_name(subject: BudgetSubject) -> &'static str {
    match subject {
        BudgetSubject::User => "user",
        BudgetSubject::Application => "application",
        BudgetSubject::SpokeAccount => "spoke_account",
        BudgetSubject::Global => "global",
    }
}

fn metric_name(metric: BudgetMetric) -> &'static str {
    match metric {
        BudgetMetric::Requests => "requests",
        BudgetMetric::Tokens => "tokens",
        BudgetMetric::CostMicroUsd => "cost_micro_usd",
    }
}

/// A limit's name as callers and audit records see it, e.g. `user_requests_per_minute`.
pub fn budget_name(limit: &BudgetLimitConfig) -> String {
    format!(
        "{}_{}_per_{}",
        subject_name(limit.subject),
        metric_name(limit.metric),
        window_name(limit.window)
    )
}

// === spoke limits ===

/// The largest `cost_usd_per_month` a spoke may be given (a trillion US dollars), so the micro-dollar limit
/// always fits a counter.
pub const MAX_SPOKE_COST_USD: f64 = 1e12;

/// A dollar amount in micro-dollars, or `None` when it is negative, not finite or above
/// [`MAX_SPOKE_COST_USD`].
pub fn micro_usd(dollars: f64) -> Option<u64> {
    if !dollars.is_finite() || !(0.0..=MAX_SPOKE_COST_USD).contains(&dollars) {
        return None;
    }
    // In range by the check above, so the conversion neither saturates nor truncates anything but the
    // sub-micro-dollar fraction, which is rounded.
    Some((dollars * 1_000_000.0).round() as u64)
}

/// A spoke's own limits, registered with the spoke (`[[spokes]] budgets` or the registry item's `budget_*`
/// attributes). `None` means no limit of that kind; `Some(0)` allows nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpokeLimits {
    /// Calls per UTC day.
    pub requests_per_day: Option<u64>,
    /// Input plus output tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Cost per UTC calendar month, in micro-dollars.
    pub cost_micro_usd_per_month: Option<u64>,
}

impl SpokeLimits {
    /// Each limit that is set, as metric, window and limit.
    fn entries(self) -> impl Iterator<Item = (BudgetMetric, BudgetWindow, u64)> {
        [
            (
                BudgetMetric::Requests,
                BudgetWindow::Day,
                self.requests_per_day,
            ),
            (BudgetMetric::Tokens, BudgetWindow::Day, self.tokens_per_day),
            (
                BudgetMetric::CostMicroUsd,
                BudgetWindow::Month,
                self.cost_micro_usd_per_month,
            ),
        ]
        .into_iter()
        .filter_map(|(metric, window, limit)| limit.map(|l| (metric, window, l)))
    }
}

// === budgets ===

/// Who a call counts for.
#[derive(Debug, Clone, Copy)]
pub struct BudgetSubjects<'a> {
    /// The user's `sub`.
    pub user: &'a str,
    /// The application, when a workload was verified.
    pub application: Option<&'a str>,
    /// The spoke account, when a workload was verified.
    pub spoke_account: Option<&'a str>,
    /// The spoke's own limits from the registry, counted for `spoke_account` in addition to the configured
    /// limits; ignored without a `spoke_account`.
    pub spoke_limits: SpokeLimits,
}

/// A call's worst case, reserved before the model is called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input plus output tokens.
    pub tokens: u64,
    /// Cost in micro-dollars.
    pub cost_micro_usd: u64,
}

/// A refused call: which budget, its limit, for whom, and when it resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// The budget's name, e.g. `user_requests_per_minute`.
    pub budget: String,
    /// The limit.
    pub limit: u64,
    /// The subject it ran out for (a user, application or account; `*` for the whole hub).
    pub subject: String,
    /// Seconds until the window resets.
    pub retry_after_secs: u64,
}

/// Why a reservation was refused.
#[derive(Debug, thiserror::Error)]
pub enum BudgetRefusal {
    /// A budget is exhausted (429).
    #[error("budget `{}` ({}) is exhausted for `{}`; retry in {} s", .0.budget, .0.limit, .0.subject, .0.retry_after_secs)]
    Exceeded(BudgetExceeded),
    /// The store cannot answer; the call is refused (fail closed).
    #[error(transparent)]
    Unavailable(#[from] BudgetError),
}

/// One counter a call must fit in.
#[derive(Debug)]
struct Counter {
    key: String,
    budget: String,
    subject: String,
    metric: BudgetMetric,
    limit: u64,
    end: i64,
}

#[derive(Debug)]
struct Held {
    key: String,
    metric: BudgetMetric,
    amount: u64,
    expires: i64,
}

/// What one in-flight call holds; give it back to [`Budgets::settle`] or [`Budgets::release`].
#[derive(Debug)]
#[must_use = "a reservation must be settled or released"]
pub struct Reservation {
    held: Vec<Held>,
}

/// Who a budget counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSubject {
    /// Each user (`sub`).
    User,
    /// Each application (needs a verified workload).
    Application,
    /// Each spoke account (needs a verified workload).
    SpokeAccount,
    /// The whole hub.
    Global,
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMetric {
    /// Calls.
    Requests,
    /// Input plus output tokens.
    Tokens,
    /// Cost in micro-dollars, from the catalog's prices.
    CostMicroUsd,
}

/// The fixed window a budget counts over (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetWindow {
    /// A clock minute.
    Minute,
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
}

/// `[[budgets.limits]]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLimitConfig {
    /// `user`, `application`, `spoke_account` or `global`.
    pub subject: BudgetSubject,
    /// `requests`, `tokens` or `cost_micro_usd`.
    pub metric: BudgetMetric,
    /// `minute`, `day` or `month`.
    pub window: BudgetWindow,
    /// The limit; 0 disables it.
    pub limit: u64,
}

/// The configured limits over a counter store.
#[derive(Debug)]
pub struct Budgets {
    limits: Vec<BudgetLimitConfig>,
    store: Arc<dyn BudgetStore>,
}

impl Budgets {
    /// Budgets with `limits` (from `BudgetConfig::limits`), counted in process.
    pub fn new(limits: Vec<BudgetLimitConfig>) -> Self {
        Self::with_store(limits, Arc::new(MemoryStore::default()))
    }

    /// Budgets with `limits` over `store`.
    pub fn with_store(limits: Vec<BudgetLimitConfig>, store: Arc<dyn BudgetStore>) -> Self {
        Self { limits, store }
    }

    fn key(
        limit: &BudgetLimitConfig,
        subjects: &BudgetSubjects<'_>,
        now_unix: i64,
    ) -> Option<(String, String, i64)> {
        let subject = match limit.subject {
            BudgetSubject::User => subjects.user,
            BudgetSubject::Application => subjects.application?,
            BudgetSubject::SpokeAccount => subjects.spoke_account?,
            BudgetSubject::Global => "*",
        };
        let (window_id, end) = window_bounds(limit.window, now_unix);
        let key = format!(
            "{}#{subject}#{}#{window_id}",
            subject_name(limit.subject),
            metric_name(limit.metric)
        );
        Some((key, subject.to_owned(), end))
    }

    /// Every counter a call at `now_unix` must fit in: the configured limits, then the spoke's own, request
    /// counts first so a call refused for its rate never touches token or cost counters.
    fn counters(&self, subjects: &BudgetSubjects<'_>, now_unix: i64) -> Vec<Counter> {
        let configured = self.limits.iter().filter_map(|limit| {
            let (key, subject, end) = Self::key(limit, subjects, now_unix)?;
            Some(Counter {
                key,
                budget: budget_name(limit),
                subject,
                metric: limit.metric,
                limit: limit.limit,
                end,
            })
        });
        let spoke = subjects.spoke_account.into_iter().flat_map(|account| {
            subjects
                .spoke_limits
                .entries()
                .map(move |(metric, window, limit)| {
                    let (window_id, end) = window_bounds(window, now_unix);
                    Counter {
                        key: format!("spoke#{account}#{}#{window_id}", metric_name(metric)),
                        budget: format!(
                            "spoke_{}_per_{}",
                            metric_name(metric),
                            window_name(window)
                        ),
                        subject: account.to_owned(),
                        metric,
                        limit,
                        end,
                    }
                })
        });
        let mut counters: Vec<Counter> = configured.chain(spoke).collect();
        counters.sort_by_key(|c| c.metric != BudgetMetric::Requests);
        counters
    }

    /// Reserves one request and `worst` for a call at `now_unix`, or says which budget ran out.
    pub async fn reserve(
        &self,
        subjects: &BudgetSubjects<'_>,
        worst: Usage,
        now_unix: i64,
    ) -> Result<Reservation, BudgetRefusal> {
        let mut reservation = Reservation { held: Vec::new() };
        for counter in self.counters(subjects, now_unix) {
            let amount = match counter.metric {
                BudgetMetric::Requests => 1,
                BudgetMetric::Tokens => worst.tokens,
                BudgetMetric::CostMicroUsd => worst.cost_micro_usd,
            };
            // Counters outlive their window by a day, so a late settle still finds them.
            let expires = counter.end + 86_400;
            let added = if amount > counter.limit {
                Ok(false)
            } else {
                self.store
                    .try_add(&counter.key, amount, counter.limit, expires)
                    .await
            };
            match added {
                Ok(true) => reservation.held.push(Held {
                    key: counter.key,
                    metric: counter.metric,
                    amount,
                    expires,
                }),
                Ok(false) => {
                    self.give_back(reservation, true).await;
                    return Err(BudgetRefusal::Exceeded(BudgetExceeded {
                        budget: counter.budget,
                        limit: counter.limit,
                        subject: counter.subject,
                        retry_after_secs: u64::try_from(counter.end - now_unix).unwrap_or(1).max(1),
                    }));
                }
                Err(err) => {
                    self.give_back(reservation, true).await;
                    return Err(err.into());
                }
            }
        }
        Ok(reservation)
    }

    /// Replaces the reservation with the usage really reported.
    pub async fn settle(&self, reservation: Reservation, used: Usage) {
        for held in reservation.held {
            let actual = match held.metric {
                BudgetMetric::Requests => continue,
                BudgetMetric::Tokens => used.tokens,
                BudgetMetric::CostMicroUsd => used.cost_micro_usd,
            };
            let delta = i128::from(actual) - i128::from(held.amount);
            if delta != 0 {
                let delta =
                    i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX });
                self.adjust(&held.key, delta, held.expires).await;
            }
        }
    }

    /// Gives back the tokens and cost of a call that never reached the model; its request still counts.
    pub async fn release(&self, reservation: Reservation) {
        self.give_back(reservation, false).await;
    }

    async fn give_back(&self, reservation: Reservation, requests_too: bool) {
        for held in reservation.held {
            if held.metric == BudgetMetric::Requests && !requests_too {
                continue;
            }
            let delta = i64::try_from(held.amount).unwrap_or(i64::MAX);
            self.adjust(&held.key, -delta, held.expires).await;
        }
    }

    async fn adjust(&self, key: &str, delta: i64, expires: i64) {
        if let Err(err) = self.store.adjust(key, delta, expires).await {
            // The counter keeps the reservation: conservative, never an overshoot.
            tracing::warn!(error = %err, "budget settlement failed; the reservation stays counted");
        }
    }

    /// Tokens counted for `user` in the UTC day of `now_unix` (reserved and settled).
    pub async fn tokens_used(&self, user: &str, now_unix: i64) -> u64 {
        let limit = BudgetLimitConfig {
            subject: BudgetSubject::User,
            metric: BudgetMetric::Tokens,
            window: BudgetWindow::Day,
            limit: 1,
        };
        let subjects = BudgetSubjects {
            user,
            application: None,
            spoke_account: None,
            spoke_limits: SpokeLimits::default(),
        };
        match Self::key(&limit, &subjects, now_unix) {
            Some((key, _, _)) => self.store.used(&key).await.unwrap_or(0),
            None => 0,
        }
    }
}

// === impl MemoryStore ===

/// Counters in this process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    counters: Mutex<HashMap<String, (u64, i64)>>,
}

impl MemoryStore {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, (u64, i64)>) -> T,
    ) -> Result<T, BudgetError> {
        let mut counters = self.counters.lock().map_err(|_| {
            BudgetError::Unavailable("the in-process counters are poisoned".to_owned())
        })?;
        Ok(f(&mut counters))
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn try_add(
        &self,
        key: &str,
        amount: u64,
        limit: u64,
        expires_unix: i64,
    ) -> Result<bool, BudgetError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.with(|counters| {
            // Drop expired counters so memory stays bounded by active subjects.
            if counters.len() > 4096 {
                counters.retain(|_, (_, expires)| *expires > now);
            }
            let (used, _) = counters.entry(key.to_owned()).or_insert((0, expires_unix));
            if used.saturating_add(amount) > limit {
                false
            } else {
                *used += amount;
                true
            }
        })
    }

    async fn adjust(&self, key: &str, delta: i64, expires_unix: i64) -> Result<(), BudgetError> {
        self.with(|counters| {
            let (used, _) = counters.entry(key.to_owned()).or_insert((0, expires_unix));
            *used = used.saturating_add_signed(delta);
        })
    }

    async fn used(&self, key: &str) -> Result<u64, BudgetError> {
        self.with(|counters| counters.get(key).map_or(0, |(used, _)| *used))
    }
}

#[cfg(test)]
mod tests;
