//! The compliance console on the hub: `[console]` turned into a [`causeway_console::Console`] over this
//! hub's audit store.
//!
//! Constraints:
//! - The console reads the store the hub writes (`[audit]`): the embedded store through a read-only
//!   connection, the AWS store through its table, with payloads opened by the hub's own data keys.
//! - Reviewers sign in through the identity provider in `oidc` mode (their ID token checked like an API
//!   token, with the console's client as audience), through a development form in `dev` mode (which serves
//!   loopback only).
//! - A payload read is appended to this hub's chain before the payload is read.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use causeway_audit::{AuditReader, AuditSink, EmbeddedReader};
use causeway_console::{
    Console, ConsoleConfig, ContextSource, EventContext, Oidc, PayloadAudit, SignIn, TokenCheck,
    Viewer,
};
use causeway_guard::GuardEngine;

use crate::auth::jwt::{JwtVerifier, KeySource};
use crate::config::{AuditStoreKind, HubConfig, IdentityMode};
use crate::policy::PolicyStore;

/// Checks a reviewer's ID token with the hub's verifier settings and the console's client as audience.
#[derive(Debug)]
struct IdToken(JwtVerifier);

#[async_trait]
impl TokenCheck for IdToken {
    async fn viewer(&self, id_token: &str) -> Result<Viewer, String> {
        let user = self.0.verify(id_token).await.map_err(|e| e.to_string())?;
        Ok(Viewer {
            sub: user.sub,
            issuer: user.issuer,
            groups: user.groups,
        })
    }
}

/// The versions in force, read at the time of a payload read.
#[derive(Debug)]
struct InForce {
    policy: Arc<PolicyStore>,
    guard: Arc<GuardEngine>,
}

impl ContextSource for InForce {
    fn context(&self) -> EventContext {
        let policy = self.policy.current();
        let guard = self.guard.profile();
        EventContext {
            catalog_version: policy.catalog().version.clone(),
            guard_profile: guard.name.clone(),
            guard_profile_version: guard.version.clone(),
            policy_hash: policy.hash().to_owned(),
        }
    }
}

/// What the console needs from start-up.
pub(crate) struct Parts<'a> {
    pub config: &'a HubConfig,
    pub sink: Arc<dyn AuditSink>,
    /// The reader of the store (built beside the sink).
    pub reader: Arc<dyn AuditReader>,
    pub policy: Arc<PolicyStore>,
    pub guard: Arc<GuardEngine>,
    pub secret: Option<String>,
    /// The session key's base64 text, from `console.session_key_env`.
    pub session_key: Option<String>,
    /// Running on AWS Lambda (several instances: a shared session key is required).
    pub on_lambda: bool,
}

/// The reader of the embedded store at `[audit]`'s path.
pub(crate) fn embedded_reader(
    config: &HubConfig,
) -> Result<Arc<dyn AuditReader>, causeway_audit::AuditError> {
    debug_assert_eq!(config.audit.store, AuditStoreKind::Embedded);
    let path = config.audit_path();
    let key_dir = path.parent().map_or_else(
        || std::path::PathBuf::from("."),
        std::path::Path::to_path_buf,
    );
    Ok(Arc::new(EmbeddedReader::open_at(&path, &key_dir)?))
}

/// The console of `[console]`, or `None` when it is off; an error says which setting is missing.
pub(crate) async fn build(parts: Parts<'_>) -> Result<Option<Arc<Console>>, String> {
    let config = parts.config;
    let section = &config.console;
    if !section.enabled {
        return Ok(None);
    }
    let sign_in = match (config.identity.mode, &section.oidc) {
        (_, Some(oidc)) => {
            let source = match (&config.identity.jwks_url, &config.identity.jwks_file) {
                (Some(url), _) => KeySource::Url(url.clone()),
                (None, Some(file)) => KeySource::File(file.clone()),
                (None, None) => {
                    return Err(
                        "`[console.oidc]` checks ID tokens against `identity.jwks_url` or `identity.jwks_file`; set one".to_owned(),
                    );
                }
            };
            let verifier = JwtVerifier::new(
                config.identity.issuer.clone().unwrap_or_default(),
                oidc.client_id.clone(),
                config.identity.leeway_secs,
                config.identity.groups_claim.clone(),
                source,
            );
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            SignIn::Oidc(Oidc {
                authorization_endpoint: oidc.authorization_endpoint.clone(),
                token_endpoint: oidc.token_endpoint.clone(),
                client_id: oidc.client_id.clone(),
                client_secret: parts.secret,
                redirect_uri: oidc.redirect_uri.clone(),
                check: Arc::new(IdToken(verifier)),
                http,
            })
        }
        (IdentityMode::Dev, None) => SignIn::Development,
        (IdentityMode::Oidc, None) => {
            return Err("`[console.oidc]` is required in `oidc` identity mode".to_owned());
        }
    };
    let session_key = match parts.session_key {
        Some(text) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| format!("the console session key is not base64: {e}"))?;
            Some(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                format!(
                    "the console session key must be 32 bytes, not {}; make one with `openssl rand -base64 32`",
                    bytes.len()
                )
            })?)
        }
        None if parts.on_lambda => {
            return Err(
                "`console.session_key_env` is required on AWS Lambda: every instance must read the sessions the others sealed".to_owned(),
            );
        }
        None => None,
    };
    let account_budgets_usd: HashMap<String, f64> = config
        .spokes
        .iter()
        .filter_map(|s| s.budgets.cost_usd_per_month.map(|c| (s.account.clone(), c)))
        .collect();
    let console = Console::new(
        Arc::clone(&parts.reader),
        sign_in,
        ConsoleConfig {
            reviewer_groups: section.reviewer_groups.clone(),
            payload_groups: section.payload_groups.clone(),
            // Plain HTTP only on loopback off Lambda (a browser on the same machine); behind Lambda's HTTPS
            // front door, with TLS, or on any other address the cookie is `Secure`.
            secure_cookies: parts.on_lambda
                || config.server.tls_cert_file.is_some()
                || !config.server.listen.ip().is_loopback(),
            source: format!("this hub's audit store ({})", parts.reader.describe()),
            account_budgets_usd,
            trusted_keys: None,
            session_key,
        },
        Some(PayloadAudit {
            sink: parts.sink,
            context: Arc::new(InForce {
                policy: parts.policy,
                guard: parts.guard,
            }),
        }),
    )
    .map_err(|e| format!("cannot start the console: {e}"))?;
    Ok(Some(Arc::new(console)))
}
