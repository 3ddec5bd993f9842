//! The invoker role's credentials: assumed with the workload's own credentials, cached, and refreshed ahead of
//! expiry without a gap.
//!
//! Rules, each for a reason:
//! - The workload's own credentials come from the standard AWS provider chain and are used for one thing:
//!   `sts:AssumeRole` into the spoke's invoker role in the hub account, with the external id its trust
//!   policy requires. Only the role session's credentials ever sign anything the hub sees.
//! - Credentials are refreshed when less than `refresh_before` remains. One caller refreshes at a time; the
//!   others keep using the current credentials while they are still valid, so rotation never stalls or
//!   fails a call. Only a caller that has no valid credentials at all waits for the refresh.
//! - A failed refresh while the current credentials are still valid is logged and retried after a pause,
//!   not turned into failed calls.
//! - Secrets (the external id, the secret key, the session token) are never logged or shown by `Debug`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use secrecy::{ExposeSecret, SecretString};

use crate::config::role_account;

/// Temporary credentials of the invoker role session.
#[derive(Clone)]
pub struct RoleCredentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: SecretString,
    expires_at: SystemTime,
    assumed_arn: String,
}

impl fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("assumed_arn", &self.assumed_arn)
            .finish()
    }
}

impl RoleCredentials {
    /// Credentials of the role session `assumed_arn`, valid until `expires_at`.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: impl Into<String>,
        expires_at: SystemTime,
        assumed_arn: impl Into<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretString::from(secret_access_key.into()),
            session_token: SecretString::from(session_token.into()),
            expires_at,
            assumed_arn: assumed_arn.into(),
        }
    }

    /// When the credentials stop working.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The role session, `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub fn assumed_arn(&self) -> &str {
        &self.assumed_arn
    }

    /// Time left at `now`; zero once expired.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }

    /// The credentials in the form the SigV4 signer takes.
    pub fn to_sdk(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            Some(self.session_token.expose_secret().to_owned()),
            Some(self.expires_at),
            "causeway-agent-invoker-role",
        )
    }
}

/// The invoker role could not be assumed, or the workload's own identity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssumeError {
    /// STS answered with an error.
    #[error("cannot assume `{role}` in account `{account}`: sts refused with `{code}`: {message}")]
    Refused {
        /// The invoker role.
        role: String,
        /// The hub account.
        account: String,
        /// The STS error code, e.g. `AccessDenied`.
        code: String,
        /// The STS error message.
        message: String,
    },
    /// STS could not be reached, or the workload has no credentials to call it with.
    #[error("cannot assume `{role}` in account `{account}`: {reason}")]
    Unavailable {
        /// The invoker role.
        role: String,
        /// The hub account.
        account: String,
        /// What went wrong.
        reason: String,
    },
    /// The workload's own credentials are missing or refused.
    #[error("the workload's own aws credentials do not work: {0}")]
    LocalCredentials(String),
}

/// Assumes the invoker role.
#[async_trait]
pub trait RoleAssumer: Send + Sync + fmt::Debug {
    /// The invoker role's ARN.
    fn role_arn(&self) -> &str;

    /// New credentials of a session of the invoker role.
    async fn assume(&self) -> Result<RoleCredentials, AssumeError>;
}

// === impl StsRoleAssumer ===

/// The settings of the `sts:AssumeRole` call.
#[derive(Clone)]
pub struct AssumeRoleSettings {
    /// The invoker role.
    pub role_arn: String,
    /// The external id the role's trust policy requires.
    pub external_id: Option<SecretString>,
    /// The role session name.
    pub session_name: String,
    /// A fixed source identity, when configured.
    pub source_identity: Option<String>,
    /// Session lifetime asked for, seconds.
    pub duration_secs: u64,
}

impl fmt::Debug for AssumeRoleSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleSettings")
            .field("role_arn", &self.role_arn)
            .field(
                "external_id",
                &self.external_id.as_ref().map(|_| "<redacted>"),
            )
            .field("session_name", &self.session_name)
            .field("source_identity", &self.source_identity)
            .field("duration_secs", &self.duration_secs)
            .finish()
    }
}

/// Assumes the invoker role through STS with the workload's own credentials. The client is built once.
#[derive(Debug, Clone)]
pub struct StsRoleAssumer {
    client: aws_sdk_sts::Client,
    settings: AssumeRoleSettings,
}

impl StsRoleAssumer {
    /// An assumer calling STS as `sdk_config` says (credentials, region, endpoint).
    pub fn new(sdk_config: &aws_config::SdkConfig, settings: AssumeRoleSettings) -> Self {
        Self {
            client: aws_sdk_sts::Client::new(sdk_config),
            settings,
        }
    }

    /// The settings of the `AssumeRole` call.
    pub fn settings(&self) -> &AssumeRoleSettings {
        &self.settings
    }

    fn account(&self) -> String {
        role_account(&self.settings.role_arn)
            .unwrap_or("unknown")
            .to_owned()
    }

    /// Who the workload's own credentials belong to (`sts:GetCallerIdentity`).
    pub async fn workload_arn(&self) -> Result<String, AssumeError> {
        let out = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(|err| {
                let text = match (err.code(), err.message()) {
                    (Some(code), Some(message)) => format!("sts refused with `{code}`: {message}"),
                    (Some(code), None) => format!("sts refused with `{code}`"),
                    _ => failure(&DisplayErrorContext(&err).to_string()),
                };
                AssumeError::LocalCredentials(one_line(&text))
            })?;
        out.arn.ok_or_else(|| {
            AssumeError::LocalCredentials("sts answered without a caller arn".to_owned())
        })
    }
}

#[async_trait]
impl RoleAssumer for StsRoleAssumer {
    fn role_arn(&self) -> &str {
        &self.settings.role_arn
    }

    async fn assume(&self) -> Result<RoleCredentials, AssumeError> {
        let settings = &self.settings;
        let out = self
            .client
            .assume_role()
            .role_arn(&settings.role_arn)
            .role_session_name(&settings.session_name)
            .set_external_id(
                settings
                    .external_id
                    .as_ref()
                    .map(|id| id.expose_secret().to_owned()),
            )
            .set_source_identity(settings.source_identity.clone())
            .duration_seconds(i32::try_from(settings.duration_secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|err| match (err.code(), err.message()) {
                (Some(code), message) => AssumeError::Refused {
                    role: settings.role_arn.clone(),
                    account: self.account(),
                    code: code.to_owned(),
                    message: one_line(message.unwrap_or("no message")),
                },
                _ => AssumeError::Unavailable {
                    role: settings.role_arn.clone(),
                    account: self.account(),
                    reason: failure(&DisplayErrorContext(&err).to_string()),
                },
            })?;
        let unavailable = |reason: &str| AssumeError::Unavailable {
            role: settings.role_arn.clone(),
            account: self.account(),
            reason: reason.to_owned(),
        };
        let credentials = out
            .credentials
            .ok_or_else(|| unavailable("sts answered without credentials"))?;
        let expires_at = SystemTime::try_from(credentials.expiration)
            .map_err(|_| unavailable("sts answered with an unreadable expiry"))?;
        let assumed_arn = out
            .assumed_role_user
            .map(|user| user.arn)
            .unwrap_or_default();
        Ok(RoleCredentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
            expires_at,
            assumed_arn,
        ))
    }
}

/// What went wrong with an STS call that got no answer, in one line. The SDK's text for missing credentials
/// is a paragraph about auth schemes; it is replaced by what it means.
fn failure(context: &str) -> String {
    if context.contains("no identity resolver") || context.contains("NoIdentityResolver") {
        "no aws credentials were found (environment, profile, container or instance role)"
            .to_owned()
    } else {
        one_line(context)
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

// === impl CredentialCache ===

/// The longest pause between refresh attempts that failed while the current credentials still work.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(10);

/// The current invoker role credentials, refreshed ahead of expiry by one caller at a time.
#[derive(Debug)]
pub struct CredentialCache {
    assumer: Arc<dyn RoleAssumer>,
    refresh_before: Duration,
    retry_pause: Duration,
    current: Mutex<Option<Arc<RoleCredentials>>>,
    last_failure: Mutex<Option<(Instant, AssumeError)>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl CredentialCache {
    /// A cache that assumes through `assumer` and refreshes when less than `refresh_before` remains.
    pub fn new(assumer: Arc<dyn RoleAssumer>, refresh_before: Duration) -> Self {
        Self {
            assumer,
            refresh_before,
            retry_pause: (refresh_before / 10).min(MAX_RETRY_PAUSE),
            current: Mutex::new(None),
            last_failure: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The invoker role's ARN.
    pub fn role_arn(&self) -> &str {
        self.assumer.role_arn()
    }

    fn current(&self) -> Option<Arc<RoleCredentials>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last refresh failure, while it is recent enough not to call STS again.
    fn recent_failure(&self) -> Option<AssumeError> {
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.retry_pause)
            .map(|(_, err)| err.clone())
    }

    /// Valid credentials: the cached ones, or new ones when they are about to expire.
    pub async fn get(&self) -> Result<Arc<RoleCredentials>, AssumeError> {
        if let Some(current) = self.current() {
            let remaining = current.remaining(SystemTime::now());
            if remaining > self.refresh_before {
                return Ok(current);
            }
            if !remaining.is_zero() {
                // Still valid: refresh only if nobody else is, and keep serving these if it fails.
                if self.recent_failure().is_some() {
                    return Ok(current);
                }
                let Ok(_guard) = self.refreshing.try_lock() else {
                    return Ok(current);
                };
                if let Some(fresh) = self
                    .current()
                    .filter(|c| c.remaining(SystemTime::now()) > self.refresh_before)
                {
                    return Ok(fresh);
                }
                return match self.refresh().await {
                    Ok(fresh) => Ok(fresh),
                    Err(err) => {
                        tracing::warn!(
                            error = %err, remaining_secs = remaining.as_secs(),
                            "could not refresh the invoker role credentials; using the current ones"
                        );
                        Ok(current)
                    }
                };
            }
        }
        let _guard = self.refreshing.lock().await;
        if let Some(current) = self
            .current()
            .filter(|c| !c.remaining(SystemTime::now()).is_zero())
        {
            return Ok(current);
        }
        // During an STS outage, calls fail fast with the last error instead of queueing for STS one by one.
        if let Some(err) = self.recent_failure() {
            return Err(err);
        }
        self.refresh().await
    }

    async fn refresh(&self) -> Result<Arc<RoleCredentials>, AssumeError> {
        match self.assumer.assume().await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                tracing::info!(
                    role = self.assumer.role_arn(),
                    session = fresh.assumed_arn(),
                    valid_secs = fresh.remaining(SystemTime::now()).as_secs(),
                    "assumed the invoker role"
                );
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
                *self
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                Ok(fresh)
            }
            Err(err) => {
                *self
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), err.clone()));
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Hands out credentials valid for `valid`, or fails once `fail_after` calls were made.
    #[derive(Debug)]
    struct Scripted {
        calls: AtomicUsize,
        valid: Duration,
        fail_after: usize,
    }

    #[async_trait]
    impl RoleAssumer for Scripted {
        fn role_arn(&self) -> &str {
            "arn:aws:iam::111122223333:role/causeway-invoker"
        }

        async fn assume(&self) -> Result<RoleCredentials, AssumeError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n >= self.fail_after {
                return Err(AssumeError::Refused {
                    role: self.role_arn().to_owned(),
                    account: "111122223333".to_owned(),
                    code: "AccessDenied".to_owned(),
                    message: "not authorized".to_owned(),
                });
            }
            Ok(RoleCredentials::new(
                format!("AKIA{n}"),
                "secret",
                "token",
                SystemTime::now() + self.valid,
                "arn:aws:sts::111122223333:assumed-role/causeway-invoker/s",
            ))
        }
    }

    fn cache(
        valid: Duration,
        refresh_before: Duration,
        fail_after: usize,
    ) -> (Arc<Scripted>, CredentialCache) {
        let assumer = Arc::new(Scripted {
            calls: AtomicUsize::new(0),
            valid,
            fail_after,
        });
        (
            assumer.clone(),
            CredentialCache::new(assumer, refresh_before),
        )
    }

    #[tokio::test]
    async fn credentials_are_reused_until_the_refresh_window() {
        let (assumer, cache) = cache(
            Duration::from_secs(3600),
            Duration::from_secs(300),
            usize::MAX,
        );
        let first = cache.get().await.unwrap();
        let second = cache.get().await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(assumer.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_inside_the_refresh_window_are_replaced() {
        let (assumer, cache) = cache(
            Duration::from_secs(200),
            Duration::from_secs(300),
            usize::MAX,
        );
        let first = cache.get().await.unwrap();
        let second = cache.get().await.unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(assumer.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_valid_credentials_and_pauses() {
        let (assumer, cache) = cache(Duration::from_secs(200), Duration::from_secs(300), 1);
        let first = cache.get().await.unwrap();
        let second = cache.get().await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "the old credentials keep serving"
        );
        let third = cache.get().await.unwrap();
        assert!(Arc::ptr_eq(&first, &third));
        assert_eq!(
            assumer.calls.load(Ordering::SeqCst),
            2,
            "a failed refresh is not retried at once"
        );
    }

    #[tokio::test]
    async fn without_valid_credentials_the_error_is_returned_and_sts_is_not_hammered() {
        let (assumer, cache) = cache(Duration::from_secs(200), Duration::from_secs(300), 0);
        let err = cache.get().await.unwrap_err();
        assert_eq!(cache.get().await.unwrap_err(), err);
        assert_eq!(assumer.calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            err.to_string(),
            "cannot assume `arn:aws:iam::111122223333:role/causeway-invoker` in account `111122223333`: sts refused with `AccessDenied`: not authorized"
        );
    }

    #[test]
    fn debug_hides_the_secrets() {
        let credentials =
            RoleCredentials::new("AKIA1", "s3cr3t", "t0k3n", SystemTime::now(), "arn");
        let text = format!("{credentials:?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
    }
}
