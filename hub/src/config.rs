//! Typed hub configuration, read from TOML.
//!
//! Every setting has a default that gives a working hub in the embedded mode: local development identity,
//! the policy bundle compiled into the binary, the local development model, the embedded audit store under
//! `.causeway/`. Unknown keys are refused with a message naming the key and its line, so a typo never
//! silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use causeway_contract::classification::DataClassification;

use crate::budget::{SpokeLimits, micro_usd};
use crate::registry::{EmbeddedRegistry, Spoke};
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// Listener and HTTP limits.
    pub server: ServerConfig,
    /// Where the embedded stores and the development key live.
    pub data_dir: DataDir,
    /// How callers are identified.
    pub identity: IdentityConfig,
    /// Where the policy bundle and the guard profile come from.
    pub policy: PolicyConfig,
    /// Defaults for values a door cannot carry.
    pub defaults: DefaultsConfig,
    /// Model providers.
    pub providers: ProvidersConfig,
    /// Request-rate and token budgets.
    pub budgets: BudgetConfig,
    /// The spoke registry: which IAM principals may call, and as which spoke account and applications.
    pub spokes: Vec<SpokeConfig>,
    /// Where the spoke registry lives: these `[[spokes]]` (default) or a DynamoDB table.
    pub registry: RegistryConfig,
    /// The audit store.
    pub audit: AuditConfig,
    /// The compliance console at `/console`.
    pub console: ConsoleSection,
    /// Log output.
    pub log: LogConfig,
}

/// `[console]`: the compliance console served at `/console`, reading this hub's audit store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Serve the console. Default false.
    pub enabled: bool,
    /// Members of any of these groups may read the console (at least one when enabled).
    pub reviewer_groups: Vec<String>,
    /// Members of any of these groups may also read payloads, with a stated reason that is audited.
    pub payload_groups: Vec<String>,
    /// Sign-in through the organisation's OIDC provider (required in `oidc` identity mode).
    pub oidc: Option<ConsoleOidcConfig>,
    /// The environment variable holding the key that seals session cookies (32 bytes, base64), shared by
    /// every instance serving the console. Required on AWS Lambda; without it a random key of the process is
    /// used (one instance; a restart signs reviewers out).
    pub session_key_env: Option<String>,
}

/// `[console.oidc]`: the console's OIDC client (authorization code with PKCE). ID tokens are checked like
/// API tokens (`identity.issuer`, the JWKS), with this client as their audience.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleOidcConfig {
    /// The provider's authorization endpoint.
    pub authorization_endpoint: String,
    /// The provider's token endpoint.
    pub token_endpoint: String,
    /// The console's client id (the ID token's audience).
    pub client_id: String,
    /// The environment variable holding the client secret, for clients that have one (never the secret
    /// itself in the file).
    pub client_secret_env: Option<String>,
    /// This console's callback as registered with the provider: `https://<hub>/console/callback`.
    pub redirect_uri: String,
}

impl ConsoleSection {
    /// Problems with `[console]` for a hub in `mode`.
    fn problems(&self, mode: IdentityMode) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.enabled {
            return problems;
        }
        if self.reviewer_groups.iter().all(|g| g.trim().is_empty()) {
            problems.push("`console.reviewer_groups` must name at least one group when the console is enabled".to_owned());
        }
        match (&self.oidc, mode) {
            (None, IdentityMode::Oidc) => problems.push(
                "`[console.oidc]` is required in `oidc` identity mode: reviewers sign in through the identity provider".to_owned(),
            ),
            (Some(oidc), _) => {
                for (name, value) in [
                    ("authorization_endpoint", &oidc.authorization_endpoint),
                    ("token_endpoint", &oidc.token_endpoint),
                    ("redirect_uri", &oidc.redirect_uri),
                ] {
                    if reqwest::Url::parse(value).is_err() {
                        problems.push(format!("`console.oidc.{name}` must be a URL"));
                    }
                }
                if oidc.client_id.trim().is_empty() {
                    problems.push("`console.oidc.client_id` must not be empty".to_owned());
                }
            }
            (None, IdentityMode::Dev) => {}
        }
        problems
    }
}

/// The data directory (default `.causeway`, relative to the working directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct DataDir(pub PathBuf);

impl Default for DataDir {
    fn default() -> Self {
        Self(PathBuf::from(".causeway"))
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes. Default 8 MiB, room for a few images or documents (as base64) in one call.
    pub max_body_bytes: usize,
    /// Seconds a whole request may take, model call included. Default 120. Must be above
    /// `providers.timeout_secs`, so a model call that runs out of time still ends with its audit record
    /// before the request is cut.
    pub request_timeout_secs: u64,
    /// PEM certificate chain (leaf first): with `tls_key_file`, the hub serves HTTPS. Default: plain HTTP.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Seconds between checks of the certificate files; a renewed pair is served without a restart.
    /// Default 60.
    pub tls_reload_secs: u64,
    /// Requests a second one source address (the connection's peer) may send, counted before identity;
    /// over it, 429. Default 200; 0 turns it off. Behind a load balancer every request has the balancer's
    /// address: raise it or turn it off there, and limit at the balancer.
    pub max_requests_per_source_per_second: u32,
    /// Requests a second one connection may send (HTTP/1.1 keep-alive, pipelining, HTTP/2 streams),
    /// counted before identity; over it, 429 and the connection is closed. Default 100; 0 turns it off.
    /// Behind a load balancer that pools its connections to the hub, raise it or turn it off there.
    pub max_requests_per_connection_per_second: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout_secs: 120,
            tls_cert_file: None,
            tls_key_file: None,
            tls_reload_secs: 60,
            max_requests_per_source_per_second: 200,
            max_requests_per_connection_per_second: 100,
        }
    }
}

impl ServerConfig {
    /// The certificate and key files when HTTPS is configured.
    pub fn tls(&self) -> Option<causeway_server::tls::TlsFiles> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(causeway_server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }
}

/// How human callers are identified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// Trust tokens signed by the development key in the data directory (`causeway dev token`). Refused on
    /// Lambda, and on a listener beyond loopback unless `identity.allow_dev_on_network` says otherwise.
    #[default]
    Dev,
    /// Verify OIDC tokens from `issuer` against its JWKS.
    Oidc,
}

/// `[identity]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// `dev` (default) or `oidc`.
    pub mode: IdentityMode,
    /// Expected `iss` (oidc mode).
    pub issuer: Option<String>,
    /// Expected `aud` (or Cognito `client_id`) (oidc mode).
    pub audience: Option<String>,
    /// Where to fetch the JWKS (oidc mode); one of `jwks_url` and `jwks_file`.
    pub jwks_url: Option<String>,
    /// A local JWKS file (oidc mode).
    pub jwks_file: Option<PathBuf>,
    /// Claim holding the user's groups. Default `groups`; `cognito:groups` is always read too.
    pub groups_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, seconds. Default 30.
    pub leeway_secs: u64,
    /// Refuse calls without a verified workload identity. Default: true in `oidc` mode, false in `dev`
    /// mode.
    pub require_workload: Option<bool>,
    /// The STS endpoint pre-signed `GetCallerIdentity` requests must target and are forwarded to. Default
    /// `https://sts.amazonaws.com`.
    pub sts_endpoint: String,
    /// The value a workload proof must sign in the header `x-causeway-server-id`, so a proof made for
    /// another service cannot be replayed here. Required whenever workload identity is required.
    pub server_id: Option<String>,
    /// Serve development identity on a listener beyond loopback. Default false: in `dev` mode anyone who
    /// holds the data directory's key can mint a token for any user and group, so `server.listen` must be a
    /// loopback address unless this is set; when it is, every start logs a warning.
    pub allow_dev_on_network: bool,
}

/// The STS endpoint used when `identity.sts_endpoint` is not set.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.amazonaws.com";

impl IdentityConfig {
    /// Whether calls need a verified workload identity.
    pub fn workload_required(&self) -> bool {
        self.require_workload
            .unwrap_or(self.mode == IdentityMode::Oidc)
    }

    /// Problems with the identity mode for a hub listening on `listen`.
    fn problems(&self, listen: SocketAddr) -> Vec<String> {
        let mut problems = Vec::new();
        match self.mode {
            IdentityMode::Dev => {
                if !listen.ip().to_canonical().is_loopback() && !self.allow_dev_on_network {
                    problems.push(format!(
                        "`server.listen` `{listen}` is reachable beyond this host, and `identity.mode` is `dev` (the default without `[identity]`), where anyone holding the data directory's key mints tokens for any user: configure `oidc`, listen on `127.0.0.1`, or accept the risk with `identity.allow_dev_on_network = true`"
                    ));
                }
            }
            IdentityMode::Oidc => {
                if self.issuer.is_none() {
                    problems.push(
                        "`identity.issuer` is required when `identity.mode` is `oidc`".to_owned(),
                    );
                }
                if self.audience.is_none() {
                    problems.push(
                        "`identity.audience` is required when `identity.mode` is `oidc`".to_owned(),
                    );
                }
                match (&self.jwks_url, &self.jwks_file) {
                    (None, None) => problems.push(
                        "one of `identity.jwks_url` and `identity.jwks_file` is required in `oidc` mode"
                            .to_owned(),
                    ),
                    (Some(_), Some(_)) => problems.push(
                        "set only one of `identity.jwks_url` and `identity.jwks_file`".to_owned(),
                    ),
                    _ => {}
                }
                if self.allow_dev_on_network {
                    problems.push(
                        "`identity.allow_dev_on_network` applies only when `identity.mode` is `dev`"
                            .to_owned(),
                    );
                }
            }
        }
        problems
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            mode: IdentityMode::Dev,
            issuer: None,
            audience: None,
            jwks_url: None,
            jwks_file: None,
            groups_claim: "groups".to_owned(),
            leeway_secs: 30,
            require_workload: None,
            sts_endpoint: DEFAULT_STS_ENDPOINT.to_owned(),
            server_id: None,
            allow_dev_on_network: false,
        }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A directory laid out like `policies/` (catalog, purposes, Cedar). Default: the bundle compiled into
    /// the binary.
    pub dir: Option<PathBuf>,
    /// A guard profile TOML file. Default: the `default` profile compiled into the binary.
    pub guard_profile: Option<PathBuf>,
    /// Seconds between checks of `dir` for changed policies; 0 reloads on `SIGHUP` only. Default 30.
    pub reload_secs: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dir: None,
            guard_profile: None,
            reload_secs: 30,
        }
    }
}

/// `[defaults]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultsConfig {
    /// Purpose for OpenAI-compatible calls that send no `x-causeway-purpose` header. Default: none (the
    /// header is required).
    pub purpose: Option<String>,
    /// Data classification when a call sends no `x-causeway-data-classification` header. Default `internal`.
    pub data_classification: String,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        Self {
            purpose: None,
            data_classification: "internal".to_owned(),
        }
    }
}

/// `[providers]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// Seconds a model call may take before it fails with 504. Default 60.
    pub timeout_secs: u64,
    /// The local development model.
    pub local: LocalProviderConfig,
    /// Amazon Bedrock Runtime; absent means Bedrock models are unavailable.
    pub bedrock: Option<BedrockConfig>,
    /// An OpenAI-compatible upstream; absent means such models are unavailable.
    pub openai: Option<OpenAiConfig>,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 60,
            local: LocalProviderConfig::default(),
            bedrock: None,
            openai: None,
        }
    }
}

/// `[providers.local]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalProviderConfig {
    /// Serve `local`-provider catalog entries with the deterministic development models. Default: only in
    /// `dev` identity mode, so a production hub never answers with a development model (whose answers are
    /// built from the request: a response schema becomes an example answer) unless this says so.
    pub enabled: Option<bool>,
}

impl LocalProviderConfig {
    /// Whether the local development models are served by a hub identifying callers with `mode`.
    pub fn serves(&self, mode: IdentityMode) -> bool {
        self.enabled.unwrap_or(mode == IdentityMode::Dev)
    }
}

/// `[providers.bedrock]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockConfig {
    /// AWS region. Default: from the AWS environment.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override, e.g. a VPC endpoint DNS name.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Amazon Bedrock Guardrail id applied to every call.
    #[serde(default)]
    pub guardrail_id: Option<String>,
    /// Guardrail version (required with `guardrail_id`).
    #[serde(default)]
    pub guardrail_version: Option<String>,
    /// SDK attempts per call, retries included. Default 3.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_attempts() -> u32 {
    3
}

/// `[providers.openai]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Base URL up to and including `/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the upstream API key, if it needs one. The key itself is
    /// never written in config.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

/// `[budgets]`: limits per fixed window; 0 disables a limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Calls per minute per user. Default 60. Counted twice over: as a budget of admitted calls (shared
    /// across instances with the `dynamodb` store) and, on each instance, as an admission limit that counts
    /// refused calls too, before policy and the guard run.
    pub user_requests_per_minute: u32,
    /// Tokens (input + output) per UTC day per user. Default 1,000,000.
    pub user_tokens_per_day: u64,
    /// Calls per minute for the whole hub (across instances with the `dynamodb` store). Default 0 (off).
    pub global_requests_per_minute: u32,
    /// Calls per minute one workload (a spoke's invoker role) may start on each hub instance, refused calls
    /// included; checked with the per-user `user_requests_per_minute` before policy and the guard. Default
    /// 600; 0 turns it off.
    pub workload_requests_per_minute: u32,
    /// Further limits: `{ subject, metric, window, limit }`.
    pub limits: Vec<BudgetLimitConfig>,
    /// Where counters live: `memory` (this instance only; default) or `dynamodb` (shared by every instance).
    pub store: BudgetStoreKind,
    /// The DynamoDB table (store `dynamodb`): partition key `pk` (string), TTL attribute `expires_at`.
    pub table: Option<String>,
    /// DynamoDB region. Default: from the AWS environment.
    pub region: Option<String>,
    /// DynamoDB endpoint override, e.g. a VPC endpoint.
    pub endpoint_url: Option<String>,
}

impl BudgetConfig {
    /// Every limit in force: the per-minute and per-day defaults, then `[[budgets.limits]]`; 0 disables one.
    pub fn limits(&self) -> Vec<BudgetLimitConfig> {
        let mut limits = vec![
            BudgetLimitConfig {
                subject: BudgetSubject::Global,
                metric: BudgetMetric::Requests,
                window: BudgetWindow::Minute,
                limit: u64::from(self.global_requests_per_minute),
            },
            BudgetLimitConfig {
                subject: BudgetSubject::User,
                metric: BudgetMetric::Requests,
                window: BudgetWindow::Minute,
                limit: u64::from(self.user_requests_per_minute),
            },
            BudgetLimitConfig {
                subject: BudgetSubject::User,
                metric: BudgetMetric::Tokens,
                window: BudgetWindow::Day,
                limit: self.user_tokens_per_day,
            },
        ];
        limits.extend(self.limits.iter().copied());
        limits.retain(|l| l.limit > 0);
        limits
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            user_requests_per_minute: 60,
            user_tokens_per_day: 1_000_000,
            global_requests_per_minute: 0,
            workload_requests_per_minute: 600,
            limits: Vec::new(),
            store: BudgetStoreKind::Memory,
            table: None,
            region: None,
            endpoint_url: None,
        }
    }
}

/// Where budget counters live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetStoreKind {
    /// In this process: exact for one instance.
    #[default]
    Memory,
    /// A DynamoDB table with conditional updates: exact across any number of instances.
    Dynamodb,
}

pub use crate::budget::{BudgetLimitConfig, BudgetMetric, BudgetSubject, BudgetWindow};

pub use crate::registry::SpokeStatus;

/// `[[spokes]]`: one IAM principal allowed to call the hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpokeConfig {
    /// The role (or user) ARN, e.g. `arn:aws:iam::111122223333:role/causeway-invoker`. Sessions of the role
    /// (`arn:aws:sts::…:assumed-role/causeway-invoker/…`) match it. Role paths are not part of the match.
    pub principal: String,
    /// The spoke's AWS account id. The principal is usually the spoke's invoker role in the hub account, so
    /// this is set here rather than read from the principal's ARN.
    pub account: String,
    /// The organizational unit the account sits in.
    #[serde(default)]
    pub ou: String,
    /// The owning team.
    #[serde(default)]
    pub team: String,
    /// Applications that may call through this principal (sent as `x-causeway-application`).
    pub applications: Vec<String>,
    /// `active` (default) or `suspended`.
    #[serde(default)]
    pub status: SpokeStatus,
    /// Catalog model aliases this spoke may use. Empty (default): every model its Cedar policies allow.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// The spoke's own budgets, counted for its account in addition to `[budgets]`.
    #[serde(default)]
    pub budgets: SpokeBudgetsConfig,
    /// The data classification of this spoke's calls (`public`, `internal`, `confidential`, `restricted`).
    /// It is the floor: a call may declare a higher one, never a lower. Absent: `defaults.data_classification`.
    #[serde(default)]
    pub data_classification: Option<String>,
    /// The floor per application, where one of `applications` differs from the spoke's
    /// (`[spokes.application_classifications]`, `claims-triage = "restricted"`).
    #[serde(default)]
    pub application_classifications: BTreeMap<String, String>,
}

/// `[spokes.budgets]`: a spoke's own limits, named as in the org file. An absent limit means no limit; 0
/// allows nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpokeBudgetsConfig {
    /// Calls per UTC day.
    pub requests_per_day: Option<u64>,
    /// Input plus output tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Cost per UTC calendar month, in US dollars (from the catalog's prices).
    pub cost_usd_per_month: Option<f64>,
}

// === the spoke registry from `[[spokes]]` ===

impl From<&SpokeBudgetsConfig> for SpokeLimits {
    fn from(config: &SpokeBudgetsConfig) -> Self {
        Self {
            requests_per_day: config.requests_per_day,
            tokens_per_day: config.tokens_per_day,
            // Config validation refuses a cost out of range; should one get here anyway, it allows nothing.
            cost_micro_usd_per_month: config
                .cost_usd_per_month
                .map(|dollars| micro_usd(dollars).unwrap_or(0)),
        }
    }
}

impl From<&SpokeConfig> for Spoke {
    fn from(config: &SpokeConfig) -> Self {
        Self {
            principal: causeway_contract::workload::normalise_principal(&config.principal)
                .map_or_else(|| config.principal.clone(), |p| p.arn),
            account: config.account.clone(),
            ou: config.ou.clone(),
            team: config.team.clone(),
            applications: config.applications.clone(),
            status: config.status,
            allowed_models: config.allowed_models.clone(),
            limits: SpokeLimits::from(&config.budgets),
            data_classification: config.data_classification.clone(),
            application_classifications: config.application_classifications.clone(),
        }
    }
}

impl EmbeddedRegistry {
    /// A registry of the configured spokes.
    pub fn from_config(spokes: &[SpokeConfig]) -> Self {
        Self::new(spokes.iter().map(Spoke::from))
    }
}

/// Where the spoke registry lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryStoreKind {
    /// The `[[spokes]]` of this file (default).
    #[default]
    Config,
    /// A DynamoDB table written by onboarding, shared by every instance.
    Dynamodb,
}

/// `[registry]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// `config` (default) or `dynamodb`.
    pub store: RegistryStoreKind,
    /// The DynamoDB table (store `dynamodb`): partition key `pk` (string), the principal ARN.
    pub table: Option<String>,
    /// DynamoDB region. Default: from the AWS environment.
    pub region: Option<String>,
    /// DynamoDB endpoint override, e.g. a VPC endpoint.
    pub endpoint_url: Option<String>,
}

/// Where audit records live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStoreKind {
    /// A single-file database under the data directory (default).
    #[default]
    Embedded,
    /// A DynamoDB index table and an S3 payload bucket with SSE-KMS and Object Lock.
    Aws,
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `embedded` (default) or `aws`.
    pub store: AuditStoreKind,
    /// The embedded store's file. Default `<data_dir>/audit.db`. Its signing and master key files live in the
    /// same directory.
    pub path: Option<PathBuf>,
    /// A signed checkpoint after at most this many records. Default 1000.
    pub checkpoint_every: u64,
    /// A signed checkpoint at least this often (seconds) while records arrive. Default 60.
    pub checkpoint_interval_secs: u64,
    /// The DynamoDB index table (store `aws`).
    pub table: Option<String>,
    /// The S3 payload bucket, created with Object Lock enabled (store `aws`).
    pub bucket: Option<String>,
    /// The KMS key for the payloads' SSE-KMS (store `aws`). Default: the bucket's default `aws:kms` key.
    pub kms_key_id: Option<String>,
    /// How long payloads stay locked in compliance mode, in days (store `aws`). Default 365.
    pub retention_days: u32,
    /// The KMS asymmetric key (`ECC_NIST_P256`, `SIGN_VERIFY`; id, ARN or alias) that signs checkpoints (store
    /// `aws`). Default: an Ed25519 key file in the data directory (refused on AWS Lambda).
    pub signing_key_id: Option<String>,
    /// This instance's chain (store `aws`). Default: `lambda-<UUID v7>` on Lambda, `hub-<UUID v7>` elsewhere,
    /// new at every start, so no two instances ever share a chain.
    pub chain_id: Option<String>,
    /// DynamoDB and S3 region (store `aws`). Default: from the AWS environment.
    pub region: Option<String>,
    /// DynamoDB and S3 endpoint override (store `aws`), e.g. a VPC endpoint; S3 is then addressed path-style.
    pub endpoint_url: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            store: AuditStoreKind::Embedded,
            path: None,
            checkpoint_every: 1000,
            checkpoint_interval_secs: 60,
            table: None,
            bucket: None,
            kms_key_id: None,
            signing_key_id: None,
            retention_days: 365,
            chain_id: None,
            region: None,
            endpoint_url: None,
        }
    }
}

impl AuditConfig {
    /// Settings of `[audit]` that cannot be used together.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let aws_keys = [
            ("table", self.table.is_some()),
            ("bucket", self.bucket.is_some()),
            ("kms_key_id", self.kms_key_id.is_some()),
            ("signing_key_id", self.signing_key_id.is_some()),
            ("chain_id", self.chain_id.is_some()),
            ("region", self.region.is_some()),
            ("endpoint_url", self.endpoint_url.is_some()),
        ];
        match self.store {
            AuditStoreKind::Aws => {
                if self.table.as_deref().is_none_or(str::is_empty) {
                    problems
                        .push("`audit.table` is required when `audit.store` is `aws`".to_owned());
                }
                if self.bucket.as_deref().is_none_or(str::is_empty) {
                    problems
                        .push("`audit.bucket` is required when `audit.store` is `aws`".to_owned());
                }
                if self.retention_days == 0 {
                    problems.push("`audit.retention_days` must be at least 1".to_owned());
                }
                if self.path.is_some() {
                    problems.push(
                        "`audit.path` applies only when `audit.store` is `embedded`".to_owned(),
                    );
                }
                if let Some(chain) = &self.chain_id
                    && (chain.is_empty()
                        || !chain
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
                {
                    problems.push(format!(
                        "`audit.chain_id` `{chain}` must be letters, digits, `-`, `_` or `.`"
                    ));
                }
            }
            AuditStoreKind::Embedded => {
                for (key, set) in aws_keys {
                    if set {
                        problems.push(format!(
                            "`audit.{key}` applies only when `audit.store` is `aws`"
                        ));
                    }
                }
            }
        }
        problems
    }
}

pub use causeway_contract::logging::{LogConfig, LogFormat};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read `{path}`: {message}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("`{path}`: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, naming the key and line.
        message: String,
    },
    /// Settings that parse but do not fit together.
    #[error("`{path}`: {}", problems.join("; "))]
    Invalid {
        /// The file.
        path: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

impl HubConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates config text; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: source.to_owned(),
            message: e.message().to_owned()
                + &causeway_contract::catalog::span_hint(text, e.span()),
        })?;
        config.validate(source)?;
        Ok(config)
    }

    /// Checks settings that depend on each other; reports every problem at once.
    pub fn validate(&self, source: &str) -> Result<(), ConfigError> {
        let mut problems = self.identity.problems(self.server.listen);
        problems.extend(workload_problems(self));
        problems.extend(self.audit.problems());
        problems.extend(self.console.problems(self.identity.mode));
        if self.registry.store == RegistryStoreKind::Dynamodb
            && self.registry.table.as_deref().is_none_or(str::is_empty)
        {
            problems.push(
                "`registry.table` is required when `registry.store` is `dynamodb`".to_owned(),
            );
        }
        if self.budgets.store == BudgetStoreKind::Dynamodb
            && self.budgets.table.as_deref().is_none_or(str::is_empty)
        {
            problems
                .push("`budgets.table` is required when `budgets.store` is `dynamodb`".to_owned());
        }
        if self.server.max_body_bytes < 1024 {
            problems.push("`server.max_body_bytes` must be at least 1024".to_owned());
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            problems.push(
                "`server.tls_cert_file` and `server.tls_key_file` must be set together".to_owned(),
            );
        }
        if self.server.tls_reload_secs == 0 {
            problems.push("`server.tls_reload_secs` must be at least 1".to_owned());
        }
        if self.server.request_timeout_secs == 0 || self.providers.timeout_secs == 0 {
            problems.push("timeouts must be at least 1 second".to_owned());
        } else if self.server.request_timeout_secs <= self.providers.timeout_secs {
            // A request cut while its model call still runs would leave the call with no closing record.
            problems.push(format!(
                "`server.request_timeout_secs` ({}) must be above `providers.timeout_secs` ({}), so a model call that runs out of time is recorded before the request is cut",
                self.server.request_timeout_secs, self.providers.timeout_secs
            ));
        }
        if let Some(bedrock) = &self.providers.bedrock {
            if bedrock.guardrail_id.is_some() != bedrock.guardrail_version.is_some() {
                problems.push(
                    "`providers.bedrock.guardrail_id` and `guardrail_version` must be set together"
                        .to_owned(),
                );
            }
            if bedrock.max_attempts == 0 {
                problems.push("`providers.bedrock.max_attempts` must be at least 1".to_owned());
            }
        }
        if !DataClassification::NAMES.contains(&self.defaults.data_classification.as_str()) {
            problems.push(format!(
                "`defaults.data_classification` must be one of {}",
                DataClassification::NAMES.join(", ")
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                path: source.to_owned(),
                problems,
            })
        }
    }

    /// The audit database path.
    pub fn audit_path(&self) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.0.join("audit.db"))
    }
}

/// Problems with `[identity]` workload settings and `[[spokes]]`, for config validation.
fn workload_problems(config: &HubConfig) -> Vec<String> {
    let mut problems = Vec::new();
    match reqwest::Url::parse(&config.identity.sts_endpoint) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.query().is_none() => {}
        _ => problems.push(format!(
            "`identity.sts_endpoint` must be an http(s) URL with no query, not `{}`",
            config.identity.sts_endpoint
        )),
    }
    if config
        .identity
        .server_id
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        problems.push("`identity.server_id` must not be empty when set".to_owned());
    }
    if config.identity.workload_required() && config.identity.server_id.is_none() {
        problems.push(
            "`identity.server_id` is required when workload identity is required (`identity.require_workload`, on by default in `oidc` mode): without it a proof signed for another service is accepted here for 5 minutes"
                .to_owned(),
        );
    }
    if config.identity.workload_required()
        && config.spokes.is_empty()
        && config.registry.store == RegistryStoreKind::Config
    {
        problems.push(
            "workload identity is required (`identity.require_workload`, on by default in `oidc` mode) but no `[[spokes]]` are registered"
                .to_owned(),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, spoke) in config.spokes.iter().enumerate() {
        match causeway_contract::workload::normalise_principal(&spoke.principal) {
            None => problems.push(format!(
                "`spokes[{i}].principal` `{}` is not an IAM role or user ARN",
                spoke.principal
            )),
            Some(p) => {
                // The principal is usually the spoke's invoker role in the hub account, so the spoke
                // account is its own setting, not derived from the principal's ARN.
                if spoke.account.len() != 12 || !spoke.account.bytes().all(|b| b.is_ascii_digit()) {
                    problems.push(format!(
                        "`spokes[{i}].account` `{}` is not a 12-digit AWS account id",
                        spoke.account
                    ));
                }
                if !seen.insert(p.arn.clone()) {
                    problems.push(format!(
                        "`spokes[{i}].principal` `{}` is registered twice",
                        p.arn
                    ));
                }
            }
        }
        if let Some(class) = spoke
            .data_classification
            .as_deref()
            .filter(|c| !DataClassification::NAMES.contains(c))
        {
            problems.push(format!(
                "`spokes[{i}].data_classification` `{class}` must be one of {}",
                DataClassification::NAMES.join(", ")
            ));
        }
        for (application, class) in &spoke.application_classifications {
            if !spoke.applications.contains(application) {
                problems.push(format!(
                    "`spokes[{i}].application_classifications` names `{application}`, which is not in `applications`"
                ));
            }
            if !DataClassification::NAMES.contains(&class.as_str()) {
                problems.push(format!(
                    "`spokes[{i}].application_classifications.{application}` `{class}` must be one of {}",
                    DataClassification::NAMES.join(", ")
                ));
            }
        }
        if spoke.applications.is_empty() || spoke.applications.iter().any(|a| a.trim().is_empty()) {
            problems.push(format!(
                "`spokes[{i}].applications` must list at least one non-empty application"
            ));
        }
        if spoke.allowed_models.iter().any(|m| m.trim().is_empty()) {
            problems.push(format!(
                "`spokes[{i}].allowed_models` must not contain an empty alias"
            ));
        }
        if let Some(dollars) = spoke.budgets.cost_usd_per_month
            && crate::budget::micro_usd(dollars).is_none()
        {
            problems.push(format!(
                "`spokes[{i}].budgets.cost_usd_per_month` `{dollars}` must be a number of US dollars from 0 to {}",
                crate::budget::MAX_SPOKE_COST_USD
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let config = HubConfig::parse("causeway.toml", "").unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.identity.mode, IdentityMode::Dev);
        assert!(config.providers.local.serves(config.identity.mode));
        assert!(config.providers.bedrock.is_none());
        assert_eq!(config.audit_path(), PathBuf::from(".causeway/audit.db"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = HubConfig::parse(
            "causeway.toml",
            "[server]\nlisten = \"127.0.0.1:9000\"\nlisten_port = 1\n",
        )
        .unwrap_err()
        .to_string();
        insta::assert_snapshot!(err, @"`causeway.toml`: unknown field `listen_port`, expected one of `listen`, `max_body_bytes`, `request_timeout_secs`, `tls_cert_file`, `tls_key_file`, `tls_reload_secs`, `max_requests_per_source_per_second`, `max_requests_per_connection_per_second` (line 3)");
    }

    #[test]
    fn a_production_hub_does_not_serve_the_development_model_unless_told() {
        let dev = HubConfig::default();
        assert!(dev.providers.local.serves(dev.identity.mode));
        let oidc = LocalProviderConfig::default();
        assert!(!oidc.serves(IdentityMode::Oidc));
        let explicit: HubConfig = toml::from_str("[providers.local]\nenabled = true\n").unwrap();
        assert!(explicit.providers.local.serves(IdentityMode::Oidc));
        let off: HubConfig = toml::from_str("[providers.local]\nenabled = false\n").unwrap();
        assert!(!off.providers.local.serves(IdentityMode::Dev));
    }

    #[test]
    fn tls_files_are_set_together() {
        let err = HubConfig::parse("c.toml", "[server]\ntls_cert_file = \"hub.crt\"\n")
            .unwrap_err()
            .to_string();
        insta::assert_snapshot!(err, @"`c.toml`: `server.tls_cert_file` and `server.tls_key_file` must be set together");
        let config = HubConfig::parse(
            "c.toml",
            "[server]\ntls_cert_file = \"hub.crt\"\ntls_key_file = \"hub.key\"\n",
        )
        .unwrap();
        assert_eq!(
            config.server.tls().map(|f| f.key),
            Some(std::path::PathBuf::from("hub.key"))
        );
    }

    #[test]
    fn aws_audit_store_reports_every_problem() {
        let err = HubConfig::parse(
            "c.toml",
            "[audit]\nstore = \"aws\"\npath = \"a.db\"\nretention_days = 0\nchain_id = \"a/b\"\n",
        )
        .unwrap_err()
        .to_string();
        insta::assert_snapshot!(err, @"`c.toml`: `audit.table` is required when `audit.store` is `aws`; `audit.bucket` is required when `audit.store` is `aws`; `audit.retention_days` must be at least 1; `audit.path` applies only when `audit.store` is `embedded`; `audit.chain_id` `a/b` must be letters, digits, `-`, `_` or `.`");
        let err = HubConfig::parse("c.toml", "[audit]\ntable = \"t\"\n")
            .unwrap_err()
            .to_string();
        insta::assert_snapshot!(err, @"`c.toml`: `audit.table` applies only when `audit.store` is `aws`");
        let config = HubConfig::parse(
            "c.toml",
            "[audit]\nstore = \"aws\"\ntable = \"t\"\nbucket = \"b\"\n",
        )
        .unwrap();
        assert_eq!(config.audit.store, AuditStoreKind::Aws);
        assert_eq!(config.audit.retention_days, 365);
    }

    #[test]
    fn oidc_without_issuer_reports_every_problem() {
        let err = HubConfig::parse("c.toml", "[identity]\nmode = \"oidc\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`identity.issuer` is required"), "{err}");
        assert!(err.contains("`identity.audience` is required"), "{err}");
        assert!(err.contains("`identity.jwks_url`"), "{err}");
    }

    #[test]
    fn spokes_and_budget_limits_parse_and_are_checked() {
        let config = HubConfig::parse(
            "c.toml",
            r#"
[identity]
require_workload = true
server_id = "hub-prod"

[[spokes]]
principal = "arn:aws:iam::111122223333:role/causeway-invoker"
account = "111122223333"
ou = "workloads-prod"
team = "claims"
applications = ["claims-triage"]

[budgets]
store = "dynamodb"
table = "causeway-budgets"

[[budgets.limits]]
subject = "application"
metric = "cost_micro_usd"
window = "month"
limit = 50000000
"#,
        )
        .unwrap();
        assert!(config.identity.workload_required());
        assert_eq!(config.spokes[0].status, SpokeStatus::Active);
        assert_eq!(config.budgets.limits[0].subject, BudgetSubject::Application);

        let err = HubConfig::parse(
            "c.toml",
            r#"
[[spokes]]
principal = "arn:aws:iam::111122223333:role/causeway-invoker"
account = "4444-5555-6666"
applications = []
application_classifications = { chat = "secret" }

[budgets]
store = "dynamodb"
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`spokes[0].account` `4444-5555-6666` is not a 12-digit AWS account id"),
            "{err}"
        );
        assert!(err.contains("`spokes[0].applications` must list"), "{err}");
        assert!(
            err.contains("`spokes[0].application_classifications` names `chat`, which is not in `applications`"),
            "{err}"
        );
        assert!(
            err.contains("`spokes[0].application_classifications.chat` `secret` must be one of"),
            "{err}"
        );
        assert!(err.contains("`budgets.table` is required"), "{err}");

        // oidc mode requires a workload identity unless told otherwise, so it needs spokes.
        let err = HubConfig::parse(
            "c.toml",
            "[identity]\nmode = \"oidc\"\nissuer = \"i\"\naudience = \"a\"\njwks_file = \"j.json\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no `[[spokes]]` are registered"), "{err}");
    }

    #[test]
    fn a_spokes_allowed_models_and_budgets_parse_and_are_checked() {
        let config = HubConfig::parse(
            "c.toml",
            r#"
[[spokes]]
principal = "arn:aws:iam::111122223333:role/causeway-invoker"
account = "111122223333"
applications = ["claims-triage"]
allowed_models = ["claude-haiku", "nova-lite"]

[spokes.budgets]
requests_per_day = 50000
cost_usd_per_month = 2000

[[spokes]]
principal = "arn:aws:iam::444455556666:role/causeway-invoker"
account = "444455556666"
applications = ["fraud-summary"]
budgets = { tokens_per_day = 20000000 }
"#,
        )
        .unwrap();
        assert_eq!(
            config.spokes[0].allowed_models,
            ["claude-haiku", "nova-lite"]
        );
        assert_eq!(
            config.spokes[0].budgets,
            SpokeBudgetsConfig {
                requests_per_day: Some(50_000),
                tokens_per_day: None,
                cost_usd_per_month: Some(2000.0),
            }
        );
        assert!(config.spokes[1].allowed_models.is_empty());
        assert_eq!(config.spokes[1].budgets.tokens_per_day, Some(20_000_000));

        let err = HubConfig::parse(
            "c.toml",
            r#"
[[spokes]]
principal = "arn:aws:iam::111122223333:role/causeway-invoker"
account = "111122223333"
applications = ["claims-triage"]
allowed_models = [""]
budgets = { cost_usd_per_month = -5.0 }
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`spokes[0].allowed_models` must not contain an empty alias"),
            "{err}"
        );
        assert!(
            err.contains(
                "`spokes[0].budgets.cost_usd_per_month` `-5` must be a number of US dollars"
            ),
            "{err}"
        );
        // A budget key the org file does not have is refused, never ignored; so is a negative count.
        for budgets in ["cost_micro_usd_per_month = 5", "requests_per_day = -1"] {
            let text = format!(
                "[[spokes]]\nprincipal = \"arn:aws:iam::111122223333:role/r\"\naccount = \"111122223333\"\napplications = [\"a\"]\nbudgets = {{ {budgets} }}\n"
            );
            assert!(HubConfig::parse("c.toml", &text).is_err(), "{budgets}");
        }
    }

    #[test]
    fn a_dev_hub_on_a_network_address_refuses_to_start() {
        for listen in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.3.7:8080",
            "[::ffff:10.0.3.7]:8080",
        ] {
            let text = format!("[server]\nlisten = \"{listen}\"\n");
            let err = HubConfig::parse("c.toml", &text).unwrap_err().to_string();
            assert!(err.contains("`server.listen` `"), "{listen}: {err}");
            assert!(
                err.contains("`identity.allow_dev_on_network = true`"),
                "{listen}: {err}"
            );
        }
        let err = HubConfig::parse("c.toml", "[server]\nlisten = \"0.0.0.0:8080\"\n")
            .unwrap_err()
            .to_string();
        insta::assert_snapshot!(err, @"`c.toml`: `server.listen` `0.0.0.0:8080` is reachable beyond this host, and `identity.mode` is `dev` (the default without `[identity]`), where anyone holding the data directory's key mints tokens for any user: configure `oidc`, listen on `127.0.0.1`, or accept the risk with `identity.allow_dev_on_network = true`");

        // Loopback keeps working, IPv4, IPv6 and IPv4-mapped alike.
        for listen in [
            "127.0.0.1:9000",
            "127.8.9.10:9000",
            "[::1]:9000",
            "[::ffff:127.0.0.1]:9000",
        ] {
            let text = format!("[server]\nlisten = \"{listen}\"\n");
            assert!(HubConfig::parse("c.toml", &text).is_ok(), "{listen}");
        }
        // An operator may accept the risk, in so many words.
        let config = HubConfig::parse(
            "c.toml",
            "[server]\nlisten = \"0.0.0.0:8080\"\n\n[identity]\nallow_dev_on_network = true\n",
        )
        .unwrap();
        assert!(config.identity.allow_dev_on_network);
        // An OIDC hub listens where it likes; the dev-only setting is refused there.
        let oidc = "[server]\nlisten = \"0.0.0.0:8080\"\n\n[identity]\nmode = \"oidc\"\nissuer = \"i\"\naudience = \"a\"\njwks_file = \"j.json\"\nserver_id = \"hub-prod\"\n\n[[spokes]]\nprincipal = \"arn:aws:iam::111122223333:role/r\"\naccount = \"111122223333\"\napplications = [\"a\"]\n";
        assert!(HubConfig::parse("c.toml", oidc).is_ok());
        let err = HubConfig::parse(
            "c.toml",
            &oidc.replace("[identity]\n", "[identity]\nallow_dev_on_network = true\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "`identity.allow_dev_on_network` applies only when `identity.mode` is `dev`"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_replayed_proof_for_another_service_is_refused() {
        // Without `server_id` a proof signed for any other service that checks `GetCallerIdentity` would be
        // accepted here while fresh: wherever workloads are required, the hub refuses to start without it.
        let spoke = "[[spokes]]\nprincipal = \"arn:aws:iam::111122223333:role/r\"\naccount = \"111122223333\"\napplications = [\"a\"]\n";
        let required = format!("[identity]\nrequire_workload = true\n\n{spoke}");
        let oidc = format!(
            "[identity]\nmode = \"oidc\"\nissuer = \"i\"\naudience = \"a\"\njwks_file = \"j.json\"\n\n{spoke}"
        );
        for text in [&required, &oidc] {
            let err = HubConfig::parse("c.toml", text).unwrap_err().to_string();
            assert_eq!(
                err,
                "`c.toml`: `identity.server_id` is required when workload identity is required (`identity.require_workload`, on by default in `oidc` mode): without it a proof signed for another service is accepted here for 5 minutes"
            );
        }
        let bound = required.replace(
            "require_workload = true\n",
            "require_workload = true\nserver_id = \"hub-prod\"\n",
        );
        assert!(HubConfig::parse("c.toml", &bound).is_ok());
        // A hub that does not require workloads (dev's default, or oidc that opts out) needs none.
        assert!(HubConfig::parse("c.toml", spoke).is_ok());
        let optional = oidc.replace(
            "mode = \"oidc\"\n",
            "mode = \"oidc\"\nrequire_workload = false\n",
        );
        assert!(HubConfig::parse("c.toml", &optional).is_ok());
    }

    #[test]
    fn a_request_timeout_that_would_cut_a_model_call_short_is_refused() {
        for (request, provider) in [(60, 60), (30, 60)] {
            let text = format!(
                "[server]\nrequest_timeout_secs = {request}\n\n[providers]\ntimeout_secs = {provider}\n"
            );
            let err = HubConfig::parse("c.toml", &text).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "`c.toml`: `server.request_timeout_secs` ({request}) must be above `providers.timeout_secs` ({provider}), so a model call that runs out of time is recorded before the request is cut"
                )
            );
        }
        let text = "[server]\nrequest_timeout_secs = 61\n\n[providers]\ntimeout_secs = 60\n";
        assert!(HubConfig::parse("c.toml", text).is_ok());
    }

    #[test]
    fn guardrail_id_needs_version() {
        let err = HubConfig::parse("c.toml", "[providers.bedrock]\nguardrail_id = \"gr-1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be set together"), "{err}");
    }
}
