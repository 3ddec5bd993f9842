//! Request-rate and token budgets, checked before a call and settled with the real usage after it.
//!
//! This is the in-process implementation used by the embedded mode: fixed windows (a minute for request
//! rates, a UTC day for tokens) keyed by scope and subject. A call reserves its worst case (estimated input
//! plus the clamped `max_tokens`) so concurrent calls cannot overshoot a token budget, and settling replaces
//! the reservation with the tokens the provider reported.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::BudgetConfig;

const MINUTE: i64 = 60;
const DAY: i64 = 86_400;

/// A refused call: which budget, its limit, and when it resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// The budget's name, e.g. `user_requests_per_minute`.
    pub budget: &'static str,
    /// The limit.
    pub limit: u64,
    /// Seconds until the window resets.
    pub retry_after_secs: u64,
}

/// Tokens held for one in-flight call; give it back to [`Budgets::settle`] or [`Budgets::release`].
#[derive(Debug)]
#[must_use = "a reservation must be settled or released"]
pub struct Reservation {
    user_key: Option<(String, i64)>,
    reserved: u64,
}

#[derive(Debug, Default)]
struct Windows {
    requests: HashMap<(String, i64), u64>,
    tokens: HashMap<(String, i64), u64>,
}

/// In-process budgets.
#[derive(Debug)]
pub struct Budgets {
    config: BudgetConfig,
    windows: Mutex<Windows>,
}

impl Budgets {
    /// Budgets with the configured limits.
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            config,
            windows: Mutex::new(Windows::default()),
        }
    }

    /// Counts one call for `user` at `now_unix` and reserves `estimated_tokens`.
    pub fn reserve(
        &self,
        user: &str,
        estimated_tokens: u64,
        now_unix: i64,
    ) -> Result<Reservation, BudgetExceeded> {
        let minute = now_unix.div_euclid(MINUTE);
        let day = now_unix.div_euclid(DAY);
        let until = |len: i64| u64::try_from(len - now_unix.rem_euclid(len)).unwrap_or(1);
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic mid-update: refuse rather than guess (fail closed).
            return Err(BudgetExceeded {
                budget: "unavailable",
                limit: 0,
                retry_after_secs: 1,
            });
        };
        // Drop windows that have ended so memory stays bounded by active subjects.
        windows.requests.retain(|(_, w), _| *w >= minute);
        windows.tokens.retain(|(_, w), _| *w >= day);

        let global_limit = u64::from(self.config.global_requests_per_minute);
        let user_rate = u64::from(self.config.user_requests_per_minute);
        let token_limit = self.config.user_tokens_per_day;
        let global_key = ("*".to_owned(), minute);
        let user_key = (format!("user:{user}"), minute);
        let token_key = (format!("user:{user}"), day);

        if global_limit > 0
            && windows.requests.get(&global_key).copied().unwrap_or(0) >= global_limit
        {
            return Err(BudgetExceeded {
                budget: "global_requests_per_minute",
                limit: global_limit,
                retry_after_secs: until(MINUTE),
            });
        }
        if user_rate > 0 && windows.requests.get(&user_key).copied().unwrap_or(0) >= user_rate {
            return Err(BudgetExceeded {
                budget: "user_requests_per_minute",
                limit: user_rate,
                retry_after_secs: until(MINUTE),
            });
        }
        if token_limit > 0 {
            let used = windows.tokens.get(&token_key).copied().unwrap_or(0);
            if used.saturating_add(estimated_tokens) > token_limit {
                return Err(BudgetExceeded {
                    budget: "user_tokens_per_day",
                    limit: token_limit,
                    retry_after_secs: until(DAY),
                });
            }
        }
        if global_limit > 0 {
            *windows.requests.entry(global_key).or_default() += 1;
        }
        *windows.requests.entry(user_key).or_default() += 1;
        let user_key = if token_limit > 0 {
            *windows.tokens.entry(token_key.clone()).or_default() += estimated_tokens;
            Some(token_key)
        } else {
            None
        };
        Ok(Reservation {
            user_key,
            reserved: estimated_tokens,
        })
    }

    /// Replaces the reservation with the tokens really used.
    pub fn settle(&self, reservation: Reservation, used_tokens: u64) {
        self.adjust(reservation, used_tokens);
    }

    /// Gives the whole reservation back (the model was never called).
    pub fn release(&self, reservation: Reservation) {
        self.adjust(reservation, 0);
    }

    fn adjust(&self, reservation: Reservation, used: u64) {
        let Some(key) = reservation.user_key else {
            return;
        };
        if let Ok(mut windows) = self.windows.lock()
            && let Some(total) = windows.tokens.get_mut(&key)
        {
            *total = total
                .saturating_sub(reservation.reserved)
                .saturating_add(used);
        }
    }

    /// Tokens counted for `user` in the day of `now_unix` (reserved and settled).
    pub fn tokens_used(&self, user: &str, now_unix: i64) -> u64 {
        self.windows
            .lock()
            .ok()
            .and_then(|w| {
                w.tokens
                    .get(&(format!("user:{user}"), now_unix.div_euclid(DAY)))
                    .copied()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(rate: u32, tokens: u64) -> Budgets {
        Budgets::new(BudgetConfig {
            user_requests_per_minute: rate,
            user_tokens_per_day: tokens,
            global_requests_per_minute: 0,
        })
    }

    #[test]
    fn request_rate_resets_each_minute() {
        let b = budgets(2, 0);
        let t = 1_000_040; // 20 s into a minute (1_000_020 is a minute boundary)
        b.release(b.reserve("alice", 0, t).unwrap());
        b.release(b.reserve("alice", 0, t).unwrap());
        let err = b.reserve("alice", 0, t).unwrap_err();
        assert_eq!(err.budget, "user_requests_per_minute");
        assert_eq!(err.retry_after_secs, 40);
        // Other users are unaffected; the next minute is fresh.
        assert!(b.reserve("bob", 0, t).is_ok());
        assert!(b.reserve("alice", 0, t + 40).is_ok());
    }

    #[test]
    fn reservations_prevent_overshoot_and_settle_to_real_usage() {
        let b = budgets(0, 1000);
        let first = b.reserve("alice", 600, 0).unwrap();
        // A concurrent call that would overshoot with the first still in flight is refused.
        assert_eq!(
            b.reserve("alice", 600, 0).unwrap_err().budget,
            "user_tokens_per_day"
        );
        b.settle(first, 150);
        assert_eq!(b.tokens_used("alice", 0), 150);
        let second = b.reserve("alice", 600, 0).unwrap();
        b.release(second);
        assert_eq!(b.tokens_used("alice", 0), 150);
    }
}
