//! Typed agent configuration, read from TOML and overridden by a few environment variables.
//!
//! Every setting has a default, so an empty file (or no file) gives an agent on `127.0.0.1:8790` that
//! forwards to a hub on `http://127.0.0.1:8080`. Unknown keys are refused with a message naming the key and
//! its line, so a typo never silently falls back to a default. Nothing secret belongs here: the end user's
//! token travels in each request, and workload credentials come from the workload's own environment.
//!
//! The environment is read only through a lookup closure passed in by the caller, so tests pass a map and
//! nothing ever mutates the process environment.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// Overrides `hub_url`.
pub const ENV_HUB_URL: &str = "CAUSEWAY_AGENT_HUB_URL";
/// Overrides `application`.
pub const ENV_APPLICATION: &str = "CAUSEWAY_AGENT_APPLICATION";
/// Overrides `default_purpose`.
pub const ENV_PURPOSE: &str = "CAUSEWAY_AGENT_PURPOSE";
/// Overrides `listen`.
pub const ENV_LISTEN: &str = "CAUSEWAY_AGENT_LISTEN";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Local address apps call. Default `127.0.0.1:8790`: only processes on this machine can reach it.
    pub listen: SocketAddr,
    /// Base URL of the hub, e.g. `https://hub.example.internal` or an API Gateway stage URL; request paths
    /// are appended to it. Default `http://127.0.0.1:8080` (a hub on this machine in its embedded default).
    pub hub_url: String,
    /// The application these calls come from, sent as `x-causeway-application` on every call (replacing
    /// any value the app sent). Default: none, and the header is not sent.
    pub application: Option<String>,
    /// Purpose sent as `x-causeway-purpose` on the OpenAI-compatible door (`/v1/chat/completions`,
    /// `/v1/models`) when the app sends none; OpenAI clients have no field for it. Default: none.
    pub default_purpose: Option<String>,
    /// Largest request body accepted from an app, in bytes. Default 1 MiB, the hub's own default.
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
    /// Log output.
    pub log: LogConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8790)),
            hub_url: "http://127.0.0.1:8080".to_owned(),
            application: None,
            default_purpose: None,
            max_body_bytes: 1024 * 1024,
            connect_timeout_secs: 5,
            request_timeout_secs: 130,
            stream_idle_timeout_secs: 60,
            connect_retries: 2,
            retry_backoff_ms: 100,
            log: LogConfig::default(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `causeway_agent=debug`. `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
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
        assert_eq!(config.max_body_bytes, 1_048_576);
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
}
