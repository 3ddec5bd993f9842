//! The AWS side of the org commands: SDK clients for the management account, sessions in member accounts
//! through their admin role, and the retry policy for what the SDK does not retry by itself.
//!
//! Constraints:
//! - Throttling and transient errors are retried by the SDK (standard mode, exponential backoff with jitter,
//!   [`MAX_SDK_ATTEMPTS`] attempts). Organizations' `ConcurrentModificationException` and a new account's
//!   admin role that cannot be assumed yet are retried here ([`retry`]), because they clear with time but the
//!   SDK treats them as final.
//! - Every error message names the call and the account it was made in; no credential is ever printed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::Mutex;

/// SDK attempts per call (throttling, 5xx, timeouts).
pub const MAX_SDK_ATTEMPTS: u32 = 8;

/// Attempts for conditions that clear with time (a new account, a concurrent Organizations change).
pub const MAX_SLOW_ATTEMPTS: u32 = 12;

/// The SDK sessions the org commands use: the management account, and member accounts through their admin
/// role (cached per account).
#[derive(Debug, Clone)]
pub struct Aws {
    base: SdkConfig,
    admin_role: String,
    backoff: Duration,
    sessions: Arc<Mutex<HashMap<String, SdkConfig>>>,
    calls: CallCounter,
}

/// Counts the HTTP requests (attempts included) every client made: the API calls a command cost.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicU64>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CausewayCallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Aws {
    /// Sessions from `base` (the management account's credentials, region, endpoint); `admin_role` is assumed
    /// in member accounts.
    pub fn new(base: &SdkConfig, admin_role: &str) -> Self {
        let base = base
            .clone()
            .into_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_SDK_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .build();
        Self {
            base,
            admin_role: admin_role.to_owned(),
            backoff: Duration::from_millis(500),
            sessions: Arc::default(),
            calls: CallCounter::default(),
        }
    }

    /// The same sessions with a different first backoff for slow conditions (tests use a short one).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The first backoff for slow conditions.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    /// The management account's SDK config.
    pub fn management(&self) -> &SdkConfig {
        &self.base
    }

    /// Organizations in the management account.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&self.base)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// CloudFormation in the account `config` is a session of.
    pub fn cloudformation(&self, config: &SdkConfig) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::from_conf(
            aws_sdk_cloudformation::config::Builder::from(config)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// IAM in the account `config` is a session of.
    pub fn iam(&self, config: &SdkConfig) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(config)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// DynamoDB in the account `config` is a session of.
    pub fn dynamodb(&self, config: &SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.base)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// API requests made so far by every client of these sessions (retries included).
    pub fn calls(&self) -> u64 {
        self.calls.0.load(Ordering::Relaxed)
    }

    /// A session in `account` (the management account's own session when `account` is it), through the admin
    /// role, retried while a new account's role is not assumable yet.
    pub async fn session(&self, account: &str, management: &str) -> Result<SdkConfig, String> {
        if account == management {
            return Ok(self.base.clone());
        }
        if let Some(config) = self.sessions.lock().await.get(account) {
            return Ok(config.clone());
        }
        let role_arn = format!("arn:aws:iam::{account}:role/{}", self.admin_role);
        let sts = self.sts();
        let assumed = retry(
            self,
            &format!("sts:AssumeRole {role_arn}"),
            is_not_ready,
            || {
                sts.assume_role()
                    .role_arn(&role_arn)
                    .role_session_name("causeway-admin")
                    .duration_seconds(3600)
                    .send()
            },
        )
        .await?;
        let credentials = assumed
            .credentials()
            .ok_or_else(|| format!("sts:AssumeRole {role_arn} returned no credentials"))?;
        let config = self
            .base
            .clone()
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                    credentials.access_key_id(),
                    credentials.secret_access_key(),
                    Some(credentials.session_token().to_owned()),
                    None,
                    "causeway-admin-role",
                )),
            )
            .build();
        self.sessions
            .lock()
            .await
            .insert(account.to_owned(), config.clone());
        Ok(config)
    }
}

/// Runs `call` until it succeeds, fails with an error `slow` does not accept, or [`MAX_SLOW_ATTEMPTS`] are
/// spent, doubling the wait (from [`Aws::backoff`], capped at 30 s). Errors are rendered with the operation.
pub async fn retry<T, E, F, Fut>(
    aws: &Aws,
    operation: &str,
    slow: impl Fn(&str) -> bool,
    mut call: F,
) -> Result<T, String>
where
    E: std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = aws.backoff;
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) => {
                let text = DisplayErrorContext(&err).to_string();
                if attempt >= MAX_SLOW_ATTEMPTS || !slow(&text) {
                    return Err(format!("{operation}: {}", one_line(&text)));
                }
                tracing::debug!(
                    operation,
                    attempt,
                    "retrying a condition that clears with time"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
                attempt += 1;
            }
        }
    }
}

/// Whether an error means "not yet" rather than "no": a new account whose admin role is not assumable yet,
/// or a concurrent change in Organizations.
pub fn is_not_ready(text: &str) -> bool {
    [
        "AccessDenied",
        "InvalidClientTokenId",
        "ConcurrentModificationException",
        "TooManyRequestsException",
        "AccountNotFoundException",
        "OptInRequired",
        "SubscriptionRequiredException",
    ]
    .iter()
    .any(|code| text.contains(code))
}

/// Whether an error is a concurrent-modification or rate error of Organizations.
pub fn is_busy(text: &str) -> bool {
    [
        "ConcurrentModificationException",
        "TooManyRequestsException",
    ]
    .iter()
    .any(|code| text.contains(code))
}

/// An SDK error on one line, for messages.
pub fn sdk_error(operation: &str, err: &(dyn std::error::Error + 'static)) -> String {
    format!(
        "{operation}: {}",
        one_line(&DisplayErrorContext(err).to_string())
    )
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_covers_new_accounts_and_concurrent_changes() {
        assert!(is_not_ready(
            "AccessDenied: not authorized to perform sts:AssumeRole"
        ));
        assert!(is_not_ready("ConcurrentModificationException: try again"));
        assert!(!is_not_ready("DuplicatePolicyException: exists"));
        assert!(is_busy("TooManyRequestsException"));
        assert!(!is_busy("AccessDenied"));
    }

    #[test]
    fn errors_are_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
