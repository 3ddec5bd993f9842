//! Starts a private moto server for a test, so AWS APIs are reached through the real SDK clients.
//!
//! moto keeps its state per process, so every test starts its own [`MotoServer`]: it is a child process on
//! `127.0.0.1` and a free port, up in well under a second, killed when the handle drops. The executable
//! comes from a Python virtualenv: `$CAUSEWAY_MOTO_VENV` when set, else `.venv-moto` at the workspace root,
//! which `scripts/ensure-moto.sh` creates with the pinned moto. A missing virtualenv is an error naming the
//! path and the script, never a silently skipped test.
//!
//! [`local_sdk_config`] builds the SDK config every local peer uses (region `us-east-1`, static test
//! credentials, an explicit endpoint); the Bedrock Runtime mock uses it too.

use std::fs::File;
use std::io::Read as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

/// The environment variable that names the moto virtualenv, overriding `<workspace root>/.venv-moto`.
pub const VENV_ENV: &str = "CAUSEWAY_MOTO_VENV";

/// The region every local peer is addressed in.
pub const TEST_REGION: &str = "us-east-1";

/// The access key id of the static test credentials (AWS's documented example key).
pub const TEST_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";

/// The secret access key of the static test credentials (AWS's documented example key).
pub const TEST_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The account moto resolves the static test credentials to.
pub const MOTO_DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// How long moto may take to answer HTTP after it was started. Readiness waiting, not a test time limit:
/// moto answers in well under a second here, so reaching this means it is broken, not slow.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// How long one readiness probe may wait for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a start is retried when another process took the free port between our pick and moto's bind.
const PORT_ATTEMPTS: usize = 3;

/// How much of moto's log (in characters, from its end) goes into an error.
const LOG_TAIL_CHARS: usize = 4000;

// === impl MotoServer ===

/// A running moto server owned by one test. Dropping it kills the process and waits for it.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl MotoServer {
    /// Starts moto from the virtualenv [`MotoServer::venv_path`] names and waits until it answers HTTP.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_in(&Self::venv_path()).await
    }

    /// Starts moto from `<venv>` (through `tests/moto_server.py`, which applies one request at a time, as AWS
    /// applies conditional writes atomically) on `127.0.0.1` and a free port, and waits until it answers HTTP.
    ///
    /// Fails, naming the path and `scripts/ensure-moto.sh`, when the executable is missing; fails with the
    /// tail of moto's log when it exits or does not answer in time.
    pub async fn start_in(venv: &Path) -> anyhow::Result<Self> {
        let executable = venv.join("bin").join("moto_server");
        if !executable.is_file() {
            bail!(
                "moto server not found at `{}`: run `scripts/ensure-moto.sh` to create the virtualenv, or set \
                 {VENV_ENV} to a virtualenv that has moto[server]",
                executable.display()
            );
        }
        let mut attempt = 1;
        loop {
            let mut server = Self::spawn(&executable)?;
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(err)
                    if attempt < PORT_ATTEMPTS
                        && server.log_tail().contains("Address already in use") =>
                {
                    tracing::debug!(error = %err, port = server.port, "moto lost its port, retrying");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The virtualenv [`MotoServer::start`] uses: `$CAUSEWAY_MOTO_VENV` when set, else `.venv-moto` at the
    /// workspace root.
    pub fn venv_path() -> PathBuf {
        std::env::var_os(VENV_ENV)
            .filter(|value| !value.is_empty())
            .map_or_else(|| workspace_root().join(".venv-moto"), PathBuf::from)
    }

    /// The base URL to give the SDK as `endpoint_url`, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// An SDK config for this server; see [`local_sdk_config`]. S3 clients also need
    /// `force_path_style(true)`.
    pub async fn sdk_config(&self) -> SdkConfig {
        local_sdk_config(&self.endpoint_url()).await
    }

    fn spawn(executable: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = tempfile::Builder::new()
            .prefix("causeway-moto-")
            .suffix(".log")
            .tempfile()
            .context("create a temporary file for moto's log")?;
        let stdout = log
            .as_file()
            .try_clone()
            .context("open moto's log for its stdout")?;
        let stderr = log
            .as_file()
            .try_clone()
            .context("open moto's log for its stderr")?;
        // moto's own server, with a lock around each request (tests/moto_server.py says why).
        let python = executable.with_file_name("python");
        let child = Command::new(&python)
            .arg(workspace_root().join("tests").join("moto_server.py"))
            .arg("127.0.0.1")
            .arg(port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("start `{}` with moto's server", python.display()))?;
        Ok(Self { child, port, log })
    }

    /// Polls `/moto-api/` with backoff until moto answers, it exits, or [`READY_DEADLINE`] passes.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_DEADLINE;
        let mut pause = Duration::from_millis(10);
        loop {
            if answers_http(self.port).await {
                return Ok(());
            }
            let exited = self
                .child
                .try_wait()
                .context("check whether the moto server is still running")?;
            if let Some(status) = exited {
                bail!(
                    "moto server exited ({status}) before answering on port {}; its log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "moto server on port {} did not answer HTTP within {}s; its log:\n{}",
                    self.port,
                    READY_DEADLINE.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// The last [`LOG_TAIL_CHARS`] of what moto wrote, for error messages.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        let read = File::open(self.log.path()).and_then(|mut file| file.read_to_string(&mut text));
        if let Err(err) = read {
            return format!("(could not read moto's log: {err})");
        }
        let start = text
            .char_indices()
            .rev()
            .nth(LOG_TAIL_CHARS)
            .map_or(0, |(index, _)| index);
        text[start..].trim_end().to_owned()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // An error here means the process is already gone; `wait` then only reaps it.
        if let Err(err) = self.child.kill() {
            tracing::debug!(error = %err, "moto server was already stopped");
        }
        if let Err(err) = self.child.wait() {
            tracing::warn!(error = %err, pid = self.child.id(), "could not reap the moto server");
        }
    }
}

// === SDK config for local peers ===

/// The static credentials every local peer accepts: AWS's documented example key pair, provider name
/// `causeway-test`.
pub fn test_credentials() -> Credentials {
    Credentials::new(
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        None,
        None,
        "causeway-test",
    )
}

/// An SDK config for a local peer at `endpoint_url`: region [`TEST_REGION`], [`test_credentials`],
/// `BehaviorVersion::latest()`.
pub async fn local_sdk_config(endpoint_url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .credentials_provider(test_credentials())
        .endpoint_url(endpoint_url)
        .load()
        .await
}

/// Creates an on-demand DynamoDB table keyed by the string `pk`, the shape of the hub's budget and spoke
/// registry tables (the hub stack creates them on AWS), and returns a client for it.
pub async fn create_pk_table(
    config: &SdkConfig,
    name: &str,
) -> anyhow::Result<aws_sdk_dynamodb::Client> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let client = aws_sdk_dynamodb::Client::new(config);
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("create the table `{name}` in moto"))?;
    Ok(client)
}

// === Helpers ===

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// A port that was free a moment ago. Another process may take it before moto binds it; `start_in`
/// retries then.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("find a free port on 127.0.0.1 for moto")?;
    let port = listener
        .local_addr()
        .context("read the free port picked for moto")?
        .port();
    Ok(port)
}

/// Whether something on `port` answers an HTTP request for `/moto-api/` (any status: it is up).
async fn answers_http(port: u16) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        stream
            .write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut status_line = [0_u8; 9];
        stream.read_exact(&mut status_line).await?;
        Ok::<_, std::io::Error>(status_line.starts_with(b"HTTP/1."))
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, probe).await,
        Ok(Ok(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_path_defaults_to_the_workspace_root() {
        if std::env::var_os(VENV_ENV).is_none() {
            let path = MotoServer::venv_path();
            assert!(path.ends_with(".venv-moto"));
            assert!(
                path.parent()
                    .is_some_and(|root| root.join("Cargo.toml").is_file())
            );
        }
    }
}
