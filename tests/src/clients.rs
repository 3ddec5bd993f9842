//! Runs the scripts in `tests/clients/`, which drive the hub with the official client SDKs (OpenAI,
//! Anthropic, boto3), with the test virtualenv's Python (`scripts/ensure-moto.sh` creates it).
//!
//! A script prints one JSON document of what it saw and exits non-zero, naming the failed check, when the
//! hub does not behave as its SDK expects. Scripts run isolated from the machine's own settings: no proxy
//! for 127.0.0.1 or localhost, and no AWS profile, config or credentials files.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::moto::MotoServer;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Runs `tests/clients/<script>` with `env` set; returns what it printed.
///
/// # Errors
///
/// When the virtualenv is missing (it names the script that creates it), the script cannot start, exits
/// non-zero (with everything it printed) or prints something that is not JSON.
pub async fn run_client_script(script: &str, env: &[(&str, String)]) -> anyhow::Result<Value> {
    let python = MotoServer::venv_path().join("bin").join("python");
    if !python.exists() {
        bail!(
            "{} is missing; run scripts/ensure-moto.sh",
            python.display()
        );
    }
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(workspace_root().join("tests/clients").join(script))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_BEARER_TOKEN_BEDROCK");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command
        .output()
        .await
        .with_context(|| format!("starting {script}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "{script} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("{script} printed something that is not JSON: {stdout}"))
}
