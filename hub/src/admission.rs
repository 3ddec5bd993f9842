//! Admission rate limits: how many calls a user, and a workload, may start per minute on this instance,
//! refused calls included.
//!
//! Budgets (`crate::budget`) meter what a call costs once it is admitted, after policy and the input guard.
//! That leaves every refusal before them (an unknown model, a Cedar deny, a guard block) free to repeat as
//! fast as a client can send it, each one costing a policy decision, a guard pass over up to the body limit
//! and an audit write. This limiter runs first, ahead of policy and the guard: a caller over the limit is
//! refused with a 429 before any of that work, and its repeated refusals are collapsed by the audit layer
//! ([`crate::audit`]) instead of each writing a record.
//!
//! The limits are a token bucket per key (GCRA, from the `governor` crate): a caller may burst up to the
//! minute's allowance, then continues at the minute's rate. State is per hub instance and bounded: keys
//! idle for a full window are pruned.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Checks between two prunings of idle keys.
const PRUNE_EVERY: u64 = 4096;

/// A refused admission: which limit, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// `user` or `workload`.
    pub subject: &'static str,
    /// The limit, calls per minute.
    pub per_minute: u32,
    /// Seconds until one more call would be admitted (at least 1).
    pub retry_after_secs: u64,
}

/// Per-user and per-workload admission limits.
#[derive(Debug)]
pub struct Admission {
    users: Option<(DefaultKeyedRateLimiter<String>, u32)>,
    workloads: Option<(DefaultKeyedRateLimiter<String>, u32)>,
    checks: AtomicU64,
}

fn limiter(per_minute: u32) -> Option<(DefaultKeyedRateLimiter<String>, u32)> {
    NonZeroU32::new(per_minute).map(|n| (RateLimiter::dashmap(Quota::per_minute(n)), per_minute))
}

impl Admission {
    /// Limits of `user_per_minute` calls per user and `workload_per_minute` per workload principal; 0 turns
    /// a limit off.
    pub fn new(user_per_minute: u32, workload_per_minute: u32) -> Self {
        Self {
            users: limiter(user_per_minute),
            workloads: limiter(workload_per_minute),
            checks: AtomicU64::new(0),
        }
    }

    /// Admits one call by `user` (issuer and subject) through `workload` (its principal, when verified), or
    /// says which limit it is over. A refused call consumes nothing.
    ///
    /// # Errors
    ///
    /// [`Exceeded`] naming the limit and when to retry.
    pub fn admit(&self, user: &str, workload: Option<&str>) -> Result<(), Exceeded> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            for (limiter, _) in [&self.users, &self.workloads].into_iter().flatten() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        let check = |limit: &Option<(DefaultKeyedRateLimiter<String>, u32)>,
                     key: &str,
                     subject: &'static str| {
            let Some((limiter, per_minute)) = limit else {
                return Ok(());
            };
            limiter.check_key(&key.to_owned()).map_err(|not_until| {
                let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
                Exceeded {
                    subject,
                    per_minute: *per_minute,
                    retry_after_secs: wait.as_secs().max(1),
                }
            })
        };
        if let Some(workload) = workload {
            check(&self.workloads, workload, "workload")?;
        }
        check(&self.users, user, "user")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_admitted_up_to_the_minutes_allowance_then_refused() {
        let admission = Admission::new(3, 0);
        for _ in 0..3 {
            assert!(admission.admit("iss|alice", None).is_ok());
        }
        let refused = admission.admit("iss|alice", None).unwrap_err();
        assert_eq!(refused.subject, "user");
        assert_eq!(refused.per_minute, 3);
        assert!(refused.retry_after_secs >= 1 && refused.retry_after_secs <= 20);
        // Another user has an allowance of their own.
        assert!(admission.admit("iss|bob", None).is_ok());
    }

    #[test]
    fn a_workload_shares_one_allowance_across_its_users() {
        let admission = Admission::new(100, 2);
        assert!(admission.admit("iss|a", Some("role/app")).is_ok());
        assert!(admission.admit("iss|b", Some("role/app")).is_ok());
        let refused = admission.admit("iss|c", Some("role/app")).unwrap_err();
        assert_eq!(refused.subject, "workload");
        // Without the workload, the same user is admitted on their own allowance.
        assert!(admission.admit("iss|c", None).is_ok());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let admission = Admission::new(0, 0);
        for _ in 0..10_000 {
            assert!(admission.admit("iss|alice", Some("role/app")).is_ok());
        }
    }
}
