//! Typed agent configuration, read from TOML and overridden by a few environment variables.
//!
//! Every setting has a default, so an empty file (or no file) gives an agent on `127.0.0.1:8790` that
//! forwards to a hub on `http://127.0.0.1:8080`. Unknown keys are refused with a message naming the key and
//! its line, so a typo never silently falls back to a default. Nothing secret belongs here: the end user's
//! token travels in each request, and workload credentials come from the workload's own environment.
//!
//! The environment is read only through a lookup closure passed in by the caller, so tests pass a map and
//! nothing ever mutates the process environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Overrides `hub_url`.
pub const ENV_HUB_URL: &str = "CAUSEWAY_AGENT_HUB_URL";
/// Overrides `application`.
pub const ENV_APPLICATION: &str = "CAUSEWAY_AGENT_APPLICATION";
/// Overrides `default_purpose`.
pub const ENV_PURPOSE: &str = "CAUSEWAY_AGENT_PURPOSE";
/// Overrides `listen`.
pub const ENV_LISTEN: &str = "CAUSEWAY_AGENT_LISTEN";
/// The region of STS calls and signatures when `workload_identity.region` is not set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Local address apps call. Default `127.0.0.1:8790`: only processes on this machine can reach it. An
    /// address beyond loopback is refused unless `allow_network_listen` is set.
    pub listen: SocketAddr,
    /// Listen on an address beyond loopback. Default false: every caller that reaches the agent calls the hub
    /// as this spoke, so only processes on this host (or in this pod or task, which share its loopback) should;
    /// when set, every start logs a warning.
    pub allow_network_listen: bool,
    /// Base URL of the hub, e.g. `https://hub.example.internal` or an API Gateway stage URL; request paths
    /// are appended to it. Default `http://127.0.0.1:8080` (a hub on this machine in its embedded default).
    pub hub_url: String,
    /// The application these calls come from, sent as `x-causeway-application` on every call (replacing
    /// any value the app sent). Default: none, and the header is not sent.
    pub application: Option<String>,
    /// Purpose sent as `x-causeway-purpose` on every door but the native one (OpenAI, Anthropic and Bedrock
    /// Runtime, and `/v1/models`) when the app sends none; those clients have no field for it. Default:
    /// none.
    pub default_purpose: Option<String>,
    /// Largest request body accepted from an app, in bytes. Default 8 MiB, the hub's own default.
    pub max_body_bytes: usize,
    /// Seconds to wait for a connection to the hub. Default 5.
    pub connect_timeout_secs: u64,
    /// Seconds a whole non-streaming call may take, retries included; for a streamed answer, the time until
    /// the hub starts answering. Default 130, a little above the hub's own 120 so the hub's timeout error
    /// reaches the app first.
    pub request_timeout_secs: u64,
    /// Seconds a streamed answer may go without a byte from the hub before the agent gives up on it. The hub
    /// sends a keep-alive comment every 15 s. Default 60.
    pub stream_idle_timeout_secs: u64,
    /// Extra attempts when the hub refuses the connection (nothing was sent, so a retry cannot repeat a
    /// call). Default 2. Calls are never retried once the request has gone out.
    pub connect_retries: u32,
    /// Wait before the first retry, in milliseconds; doubled for each further retry. Default 100.
    pub retry_backoff_ms: u64,
    /// A PEM bundle of the certificate authorities that may sign the hub's certificate (for a hub on a
    /// private CA), trusted instead of the system's roots. Default: none, the system's roots.
    pub hub_ca_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first): with `tls_key_file`, the agent itself serves HTTPS (needed by
    /// clients that send tokens only over TLS, such as boto3 with `AWS_BEARER_TOKEN_BEDROCK`). Default:
    /// plain HTTP on the loopback address.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Seconds between checks of the certificate files; a renewed pair is served without a restart.
    /// Default 60.
    pub tls_reload_secs: u64,
    /// Log output.
    pub log: LogConfig,
    /// How the agent proves the workload's identity to the hub.
    pub workload_identity: WorkloadIdentityConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8790)),
            allow_network_listen: false,
            hub_url: "http://127.0.0.1:8080".to_owned(),
            application: None,
            default_purpose: None,
            max_body_bytes: 8 * 1024 * 1024,
            connect_timeout_secs: 5,
            request_timeout_secs: 130,
            stream_idle_timeout_secs: 60,
            connect_retries: 2,
            retry_backoff_ms: 100,
            hub_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_reload_secs: 60,
            log: LogConfig::default(),
            workload_identity: WorkloadIdentityConfig::default(),
        }
    }
}

pub use causeway_contract::logging::{LogConfig, LogFormat};

/// How the agent proves the workload's identity to the hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadIdentityMode {
    /// No proof: for a hub reached directly that does not require a workload identity.
    #[default]
    None,
    /// A pre-signed `sts:GetCallerIdentity` made with the invoker role's credentials, in the header
    /// `x-causeway-workload-identity` of every call.
    StsProof,
    /// Every call is SigV4-signed for `execute-api` with the invoker role's credentials, for a hub behind
    /// API Gateway with IAM authorization; the user's token moves to `x-causeway-user-token`.
    Sigv4,
}

/// `[workload_identity]`: the invoker role in the hub account the agent assumes with the workload's own
/// credentials (from the standard AWS provider chain).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadIdentityConfig {
    /// `none` (default), `sts_proof` or `sigv4`.
    pub mode: WorkloadIdentityMode,
    /// The spoke's invoker role in the hub account, e.g.
    /// `arn:aws:iam::111122223333:role/causeway-invoker-444455556666`. Required for `sts_proof` and `sigv4`.
    pub role_arn: Option<String>,
    /// The external id the invoker role's trust policy requires. A per-spoke secret: never logged or shown.
    pub external_id: Option<SecretString>,
    /// The role session name, which appears in the hub account's CloudTrail. Default: `<application>@<host>`
    /// (`causeway-agent@<host>` without an application), cut to 64 characters.
    pub session_name: Option<String>,
    /// A fixed source identity set on the role session (the person or system the workload acts for).
    pub source_identity: Option<String>,
    /// Lifetime asked for the role session, seconds. Default 3600 (STS accepts 900 to the role's maximum).
    pub duration_secs: u64,
    /// Refresh the role credentials when less than this many seconds remain. Default 300.
    pub refresh_before_secs: u64,
    /// The STS endpoint used both to assume the role and as the target of the proof; it must be the hub's
    /// `identity.sts_endpoint`. Default `https://sts.amazonaws.com`.
    pub sts_endpoint: String,
    /// The region the STS calls and the proof are signed for, and in `sigv4` mode the hub API's region every
    /// call is signed for. Required for `sigv4`; otherwise default `us-east-1`.
    pub region: Option<String>,
    /// The hub's `identity.server_id`, signed into every proof when the hub requires it.
    pub server_id: Option<String>,
}

impl Default for WorkloadIdentityConfig {
    fn default() -> Self {
        Self {
            mode: WorkloadIdentityMode::None,
            role_arn: None,
            external_id: None,
            session_name: None,
            source_identity: None,
            duration_secs: 3600,
            refresh_before_secs: 300,
            sts_endpoint: "https://sts.amazonaws.com".to_owned(),
            region: None,
            server_id: None,
        }
    }
}

impl fmt::Debug for WorkloadIdentityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadIdentityConfig")
            .field("mode", &self.mode)
            .field("role_arn", &self.role_arn)
            .field(
                "external_id",
                &self.external_id.as_ref().map(|_| "<redacted>"),
            )
            .field("session_name", &self.session_name)
            .field("source_identity", &self.source_identity)
            .field("duration_secs", &self.duration_secs)
            .field("refresh_before_secs", &self.refresh_before_secs)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("region", &self.region)
            .field("server_id", &self.server_id)
            .finish()
    }
}

impl WorkloadIdentityConfig {
    /// The external id's value, for the `AssumeRole` call only.
    pub fn external_id_value(&self) -> Option<&str> {
        self.external_id.as_ref().map(ExposeSecret::expose_secret)
    }

    /// The region STS calls and signatures are made for: the configured one, else `us-east-1`.
    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    fn problems(&self, problems: &mut Vec<String>) {
        if self.mode == WorkloadIdentityMode::None {
            return;
        }
        match self.role_arn.as_deref() {
            None => problems.push(
                "`workload_identity.role_arn` is required when `workload_identity.mode` is not `none`"
                    .to_owned(),
            ),
            Some(arn) if role_account(arn).is_none() => problems.push(format!(
                "`workload_identity.role_arn` `{arn}` is not a role ARN, e.g. `arn:aws:iam::111122223333:role/causeway-invoker`"
            )),
            Some(_) => {}
        }
        if let Some(name) = &self.session_name
            && !is_session_name(name)
        {
            problems.push(format!(
                "`workload_identity.session_name` `{name}` must be 2 to 64 characters of letters, digits and `+=,.@-_`"
            ));
        }
        if let Some(id) = &self.source_identity
            && !is_session_name(id)
        {
            problems.push(format!(
                "`workload_identity.source_identity` `{id}` must be 2 to 64 characters of letters, digits and `+=,.@-_`"
            ));
        }
        if self.duration_secs == 0 || self.duration_secs > 43_200 {
            problems.push("`workload_identity.duration_secs` must be 1 to 43200".to_owned());
        }
        if self.refresh_before_secs >= self.duration_secs {
            problems.push(
                "`workload_identity.refresh_before_secs` must be less than `workload_identity.duration_secs`"
                    .to_owned(),
            );
        }
        match reqwest::Url::parse(&self.sts_endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
            _ => problems.push(format!(
                "`workload_identity.sts_endpoint` `{}` is not an http(s) URL",
                self.sts_endpoint
            )),
        }
        match self.region.as_deref() {
            Some(region) if region.trim().is_empty() => {
                problems.push("`workload_identity.region` must not be empty".to_owned());
            }
            None if self.mode == WorkloadIdentityMode::Sigv4 => problems.push(
                "`workload_identity.region` is required when `workload_identity.mode` is `sigv4`: the hub api's region, which every call is signed for"
                    .to_owned(),
            ),
            _ => {}
        }
        if let Some(id) = &self.server_id
            && !is_header_token(id)
        {
            problems.push(format!(
                "`workload_identity.server_id` `{id}` must be non-empty printable ASCII without spaces"
            ));
        }
    }
}

/// The account of a role ARN (`arn:<partition>:iam::<account>:role/<name>`).
pub fn role_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(_), Some("iam"), Some(""), Some(account), Some(resource))
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource
                    .strip_prefix("role/")
                    .is_some_and(|r| !r.is_empty()) =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// What STS accepts as a role session name or source identity.
pub fn is_session_name(value: &str) -> bool {
    (2..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
}

/// A role session name from `application` and `host`: characters STS refuses become `-`, cut to 64.
pub fn default_session_name(application: Option<&str>, host: &str) -> String {
    let raw = format!("{}@{host}", application.unwrap_or("causeway-agent"));
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

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
    /// The file is not valid TOML, or has unknown keys or wrong types.
    #[error("`{source_name}`: {message}")]
    Parse {
        /// Where the text came from.
        source_name: String,
        /// What is wrong, naming the key and line.
        message: String,
    },
    /// Settings (from the file or the environment) that parse but cannot be used.
    #[error("`{source_name}`: {}", problems.join("; "))]
    Invalid {
        /// Where the settings came from.
        source_name: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

impl AgentConfig {
    /// Reads `path` (or takes every default when there is none), applies the environment overrides found
    /// through `env`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                Self::from_toml(&path.display().to_string(), &text, env)
            }
            None => Self::from_toml("defaults", "", env),
        }
    }

    /// Parses config text (`source_name` names it in errors), applies the environment overrides found
    /// through `env`, and validates the result.
    pub fn from_toml(
        source_name: &str,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            source_name: source_name.to_owned(),
            message: e.message().to_owned()
                + &causeway_contract::catalog::span_hint(text, e.span()),
        })?;
        let config = config
            .with_env(env)
            .map_err(|problems| ConfigError::Invalid {
                source_name: source_name.to_owned(),
                problems,
            })?;
        config.validate(source_name)?;
        Ok(config)
    }

    /// Applies `CAUSEWAY_AGENT_HUB_URL`, `CAUSEWAY_AGENT_APPLICATION`, `CAUSEWAY_AGENT_PURPOSE` and
    /// `CAUSEWAY_AGENT_LISTEN` as found through `env`. A variable that is unset or blank leaves the setting
    /// alone. Returns every variable that cannot be used.
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let read = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        if let Some(url) = read(ENV_HUB_URL) {
            self.hub_url = url;
        }
        if let Some(application) = read(ENV_APPLICATION) {
            self.application = Some(application);
        }
        if let Some(purpose) = read(ENV_PURPOSE) {
            self.default_purpose = Some(purpose);
        }
        if let Some(listen) = read(ENV_LISTEN) {
            match listen.parse() {
                Ok(addr) => self.listen = addr,
                Err(_) => problems.push(format!(
                    "`{ENV_LISTEN}` `{listen}` is not an address with a port, e.g. `127.0.0.1:8790`"
                )),
            }
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(problems)
        }
    }

    /// Checks every setting; reports every problem at once.
    pub fn validate(&self, source_name: &str) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !self.listen.ip().to_canonical().is_loopback() && !self.allow_network_listen {
            problems.push(format!(
                "`listen` `{}` is reachable beyond this host, and every caller that reaches the agent calls the hub as this spoke: listen on `127.0.0.1` (a sidecar shares its app's loopback), or accept the risk with `allow_network_listen = true`",
                self.listen
            ));
        }
        if let Err(problem) = parse_hub_url(&self.hub_url) {
            problems.push(problem);
        }
        for (key, value) in [
            ("application", &self.application),
            ("default_purpose", &self.default_purpose),
        ] {
            if let Some(value) = value
                && !is_header_token(value)
            {
                problems.push(format!(
                    "`{key}` `{value}` must be non-empty printable ASCII without spaces, as it is sent in a header"
                ));
            }
        }
        if self.max_body_bytes < 1024 {
            problems.push("`max_body_bytes` must be at least 1024".to_owned());
        }
        for (key, secs) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("stream_idle_timeout_secs", self.stream_idle_timeout_secs),
        ] {
            if secs == 0 {
                problems.push(format!("`{key}` must be at least 1"));
            }
        }
        if self.connect_retries > 10 {
            problems.push("`connect_retries` must be at most 10".to_owned());
        }
        if self.retry_backoff_ms > 60_000 {
            problems.push("`retry_backoff_ms` must be at most 60000".to_owned());
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            problems.push("`tls_cert_file` and `tls_key_file` must be set together".to_owned());
        }
        if self.tls_reload_secs == 0 {
            problems.push("`tls_reload_secs` must be at least 1".to_owned());
        }
        self.workload_identity.problems(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                source_name: source_name.to_owned(),
                problems,
            })
        }
    }
}

impl AgentConfig {
    /// The certificate and key files when the agent serves HTTPS.
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

/// Parses a hub base URL: `http` or `https`, a host, no query, fragment or credentials.
pub fn parse_hub_url(text: &str) -> Result<reqwest::Url, String> {
    let url =
        reqwest::Url::parse(text).map_err(|e| format!("`hub_url` `{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`hub_url` `{text}` must start with `http://` or `https://`"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`hub_url` `{text}` has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`hub_url` `{text}` must not have a query or a fragment"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "`hub_url` must not carry credentials; nothing secret belongs in the agent's config"
                .to_owned(),
        );
    }
    Ok(url)
}

/// A value that can go in a header unchanged and reads the same in the hub's audit record.
fn is_header_token(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn empty_file_gives_every_default() {
        let config = AgentConfig::from_toml("agent.toml", "", no_env).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8790");
        assert_eq!(config.hub_url, "http://127.0.0.1:8080");
        assert_eq!(config.application, None);
        assert_eq!(config.default_purpose, None);
        assert_eq!(config.max_body_bytes, 8 * 1024 * 1024);
        assert_eq!(config.connect_timeout_secs, 5);
        assert_eq!(config.request_timeout_secs, 130);
        assert_eq!(config.stream_idle_timeout_secs, 60);
        assert_eq!(config.connect_retries, 2);
        assert_eq!(config.retry_backoff_ms, 100);
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(config.log.filter, "info");
    }

    #[test]
    fn a_full_file_is_read() {
        let text = r#"
listen = "0.0.0.0:9000"
allow_network_listen = true
hub_url = "https://hub.example.internal/prod"
application = "claims-triage"
default_purpose = "evaluation"
max_body_bytes = 4096
connect_timeout_secs = 2
request_timeout_secs = 30
stream_idle_timeout_secs = 20
connect_retries = 0
retry_backoff_ms = 250

[log]
format = "json"
filter = "causeway_agent=debug"
"#;
        let config = AgentConfig::from_toml("agent.toml", text, no_env).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert!(config.allow_network_listen);
        assert_eq!(config.hub_url, "https://hub.example.internal/prod");
        assert_eq!(config.application.as_deref(), Some("claims-triage"));
        assert_eq!(config.default_purpose.as_deref(), Some("evaluation"));
        assert_eq!(config.max_body_bytes, 4096);
        assert_eq!(config.connect_timeout_secs, 2);
        assert_eq!(config.request_timeout_secs, 30);
        assert_eq!(config.stream_idle_timeout_secs, 20);
        assert_eq!(config.connect_retries, 0);
        assert_eq!(config.retry_backoff_ms, 250);
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.log.filter, "causeway_agent=debug");
    }

    #[test]
    fn an_agent_on_a_network_address_refuses_to_start() {
        let refused = "`listen` `0.0.0.0:8790` is reachable beyond this host, and every caller that reaches the agent calls the hub as this spoke: listen on `127.0.0.1` (a sidecar shares its app's loopback), or accept the risk with `allow_network_listen = true`";
        let message = AgentConfig::from_toml("agent.toml", "listen = \"0.0.0.0:8790\"\n", no_env)
            .unwrap_err()
            .to_string();
        assert_eq!(message, format!("`agent.toml`: {refused}"));
        // The variable that overrides the file is held to the same rule.
        let env = env_of(&[(ENV_LISTEN, "0.0.0.0:8790")]);
        let message = AgentConfig::from_toml("agent.toml", "", env)
            .unwrap_err()
            .to_string();
        assert_eq!(message, format!("`agent.toml`: {refused}"));
        for listen in ["[::]:8790", "10.0.3.7:8790", "[::ffff:10.0.3.7]:8790"] {
            let text = format!("listen = \"{listen}\"\n");
            let message = AgentConfig::from_toml("agent.toml", &text, no_env)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("`allow_network_listen = true`"),
                "{listen}: {message}"
            );
        }

        // Loopback keeps working.
        for listen in [
            "127.0.0.1:8790",
            "127.0.0.2:8790",
            "[::1]:8790",
            "[::ffff:127.0.0.1]:8790",
        ] {
            let text = format!("listen = \"{listen}\"\n");
            assert!(
                AgentConfig::from_toml("agent.toml", &text, no_env).is_ok(),
                "{listen}"
            );
        }
        // An operator may accept the risk, in so many words.
        let text = "listen = \"0.0.0.0:8790\"\nallow_network_listen = true\n";
        let config = AgentConfig::from_toml("agent.toml", text, no_env).unwrap();
        assert!(config.allow_network_listen);
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = "application = \"claims\"\n\nhub_ur = \"http://hub\"\n";
        let err = AgentConfig::from_toml("agent.toml", text, no_env).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ConfigError::Parse { .. }), "{message}");
        assert!(message.starts_with("`agent.toml`: "), "{message}");
        assert!(message.contains("unknown field `hub_ur`"), "{message}");
        assert!(message.ends_with("(line 3)"), "{message}");
    }

    #[test]
    fn an_unknown_key_in_a_section_is_named() {
        let text = "[log]\nformat = \"text\"\nlevel = \"debug\"\n";
        let message = AgentConfig::from_toml("agent.toml", text, no_env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("unknown field `level`"), "{message}");
        assert!(message.ends_with("(line 3)"), "{message}");
    }

    #[test]
    fn a_wrong_type_is_named() {
        let message = AgentConfig::from_toml("agent.toml", "connect_retries = \"three\"\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("invalid type"), "{message}");
        assert!(message.ends_with("(line 1)"), "{message}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "hub_url = \"http://file-hub:8080\"\napplication = \"from-file\"\n";
        let env = env_of(&[
            (ENV_HUB_URL, "https://env-hub.example.internal"),
            (ENV_APPLICATION, "from-env"),
            (ENV_PURPOSE, " evaluation "),
            (ENV_LISTEN, "127.0.0.1:9999"),
        ]);
        let config = AgentConfig::from_toml("agent.toml", text, env).unwrap();
        assert_eq!(config.hub_url, "https://env-hub.example.internal");
        assert_eq!(config.application.as_deref(), Some("from-env"));
        assert_eq!(config.default_purpose.as_deref(), Some("evaluation"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
    }

    #[test]
    fn blank_environment_values_leave_the_file_alone() {
        let text = "application = \"from-file\"\n";
        let env = env_of(&[(ENV_APPLICATION, "  "), (ENV_HUB_URL, "")]);
        let config = AgentConfig::from_toml("agent.toml", text, env).unwrap();
        assert_eq!(config.application.as_deref(), Some("from-file"));
        assert_eq!(config.hub_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn a_bad_listen_variable_is_named() {
        let env = env_of(&[(ENV_LISTEN, "localhost")]);
        let message = AgentConfig::from_toml("agent.toml", "", env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "`agent.toml`: `CAUSEWAY_AGENT_LISTEN` `localhost` is not an address with a port, e.g. `127.0.0.1:8790`"
        );
    }

    #[test]
    fn every_invalid_setting_is_reported_at_once() {
        let text = r#"
hub_url = "ftp://hub"
application = "claims triage"
max_body_bytes = 10
request_timeout_secs = 0
connect_retries = 11
"#;
        let ConfigError::Invalid { problems, .. } =
            AgentConfig::from_toml("agent.toml", text, no_env).unwrap_err()
        else {
            unreachable!("expected an invalid configuration");
        };
        assert_eq!(
            problems,
            vec![
                "`hub_url` `ftp://hub` must start with `http://` or `https://`".to_owned(),
                "`application` `claims triage` must be non-empty printable ASCII without spaces, as it is sent in a header"
                    .to_owned(),
                "`max_body_bytes` must be at least 1024".to_owned(),
                "`request_timeout_secs` must be at least 1".to_owned(),
                "`connect_retries` must be at most 10".to_owned(),
            ]
        );
    }

    #[test]
    fn an_invalid_url_from_the_environment_is_refused() {
        let env = env_of(&[(ENV_HUB_URL, "not a url")]);
        let message = AgentConfig::from_toml("defaults", "", env)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("`defaults`: `hub_url` `not a url` is not a URL"),
            "{message}"
        );
    }

    #[test]
    fn hub_urls_are_checked() {
        assert!(parse_hub_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_hub_url("https://abc.execute-api.eu-west-1.amazonaws.com/prod/").is_ok());
        assert_eq!(
            parse_hub_url("https://user:secret@hub.example").unwrap_err(),
            "`hub_url` must not carry credentials; nothing secret belongs in the agent's config"
        );
        assert_eq!(
            parse_hub_url("https://hub.example/?a=b").unwrap_err(),
            "`hub_url` `https://hub.example/?a=b` must not have a query or a fragment"
        );
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let err =
            AgentConfig::load(Some(Path::new("/nonexistent/agent.toml")), no_env).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(
            err.to_string()
                .starts_with("cannot read `/nonexistent/agent.toml`: "),
            "{err}"
        );
    }

    #[test]
    fn no_file_takes_defaults_and_the_environment() {
        let env = env_of(&[(ENV_APPLICATION, "claims")]);
        let config = AgentConfig::load(None, env).unwrap();
        assert_eq!(config.application.as_deref(), Some("claims"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8790");
    }

    #[test]
    fn a_workload_identity_section_is_read_and_its_secret_hidden() {
        let text = r#"
application = "claims-triage"

[workload_identity]
mode = "sts_proof"
role_arn = "arn:aws:iam::111122223333:role/causeway-invoker-444455556666"
external_id = "per-spoke-secret"
source_identity = "batch-reports"
duration_secs = 900
refresh_before_secs = 120
sts_endpoint = "https://sts.eu-west-1.amazonaws.com"
region = "eu-west-1"
server_id = "causeway-prod"
"#;
        let config = AgentConfig::from_toml("agent.toml", text, no_env).unwrap();
        let identity = &config.workload_identity;
        assert_eq!(identity.mode, WorkloadIdentityMode::StsProof);
        assert_eq!(identity.external_id_value(), Some("per-spoke-secret"));
        assert_eq!(identity.duration_secs, 900);
        assert_eq!(identity.refresh_before_secs, 120);
        assert_eq!(identity.region(), "eu-west-1");
        assert_eq!(identity.server_id.as_deref(), Some("causeway-prod"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("per-spoke-secret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn an_sts_proof_without_a_usable_role_is_refused() {
        let text = "[workload_identity]\nmode = \"sts_proof\"\nrefresh_before_secs = 3600\nsession_name = \"a b\"\n";
        let ConfigError::Invalid { problems, .. } =
            AgentConfig::from_toml("agent.toml", text, no_env).unwrap_err()
        else {
            unreachable!("expected an invalid configuration");
        };
        assert_eq!(
            problems,
            vec![
                "`workload_identity.role_arn` is required when `workload_identity.mode` is not `none`".to_owned(),
                "`workload_identity.session_name` `a b` must be 2 to 64 characters of letters, digits and `+=,.@-_`".to_owned(),
                "`workload_identity.refresh_before_secs` must be less than `workload_identity.duration_secs`".to_owned(),
            ]
        );
        let text =
            "[workload_identity]\nmode = \"sts_proof\"\nrole_arn = \"arn:aws:iam::1:user/x\"\n";
        let message = AgentConfig::from_toml("agent.toml", text, no_env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("is not a role ARN"), "{message}");
    }

    #[test]
    fn sigv4_needs_a_role_and_a_region() {
        let text = "[workload_identity]\nmode = \"sigv4\"\n";
        let ConfigError::Invalid { problems, .. } =
            AgentConfig::from_toml("agent.toml", text, no_env).unwrap_err()
        else {
            unreachable!("expected an invalid configuration");
        };
        assert_eq!(
            problems,
            vec![
                "`workload_identity.role_arn` is required when `workload_identity.mode` is not `none`".to_owned(),
                "`workload_identity.region` is required when `workload_identity.mode` is `sigv4`: the hub api's region, which every call is signed for".to_owned(),
            ]
        );
        let text = r#"
[workload_identity]
mode = "sigv4"
role_arn = "arn:aws:iam::111122223333:role/causeway-invoker-444455556666"
region = "eu-west-2"
"#;
        let config = AgentConfig::from_toml("agent.toml", text, no_env).unwrap();
        assert_eq!(config.workload_identity.mode, WorkloadIdentityMode::Sigv4);
        assert_eq!(config.workload_identity.region(), "eu-west-2");
        let text = "[workload_identity]\nmode = \"sts_proof\"\nrole_arn = \"arn:aws:iam::111122223333:role/r\"\n";
        let config = AgentConfig::from_toml("agent.toml", text, no_env).unwrap();
        assert_eq!(config.workload_identity.region(), "us-east-1");
    }

    #[test]
    fn the_default_session_name_is_what_sts_accepts() {
        assert_eq!(
            default_session_name(Some("claims-triage"), "ip-10-0-0-1.ec2.internal"),
            "claims-triage@ip-10-0-0-1.ec2.internal"
        );
        assert_eq!(
            default_session_name(None, "my host"),
            "causeway-agent@my-host"
        );
        let long = default_session_name(Some(&"a".repeat(80)), "h");
        assert_eq!(long.len(), 64);
        assert!(is_session_name(&long));
        assert_eq!(
            role_account("arn:aws:iam::111122223333:role/causeway-invoker"),
            Some("111122223333")
        );
        assert_eq!(
            role_account("arn:aws:sts::111122223333:assumed-role/r/s"),
            None
        );
    }
}
