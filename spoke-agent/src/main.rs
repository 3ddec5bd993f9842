//! `causeway-agent`: parses arguments and config, builds the agent, serves it, and maps failure to an exit
//! code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use causeway_agent::config::{AgentConfig, LogFormat};
use causeway_agent::identity::Workload;
use causeway_agent::{AgentState, doctor, serve_state, shutdown_signal};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use tracing_subscriber::EnvFilter;

/// The Causeway spoke agent: a local endpoint that forwards your app's model calls to the Causeway hub.
#[derive(Debug, Parser)]
#[command(name = "causeway-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the local endpoint. `CAUSEWAY_AGENT_HUB_URL`, `CAUSEWAY_AGENT_APPLICATION`,
    /// `CAUSEWAY_AGENT_PURPOSE` and `CAUSEWAY_AGENT_LISTEN` override the file.
    Serve {
        /// Configuration file. Without it every setting takes its default.
        #[arg(long, env = "CAUSEWAY_AGENT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check each link to the hub in order (local credentials, assume role, hub reachable, identity
    /// accepted, authorization) and say which failed. Exit codes: 0 all passed, 10 to 14 the first failed
    /// link in that order, 2 configuration error.
    Doctor {
        /// Configuration file. Without it every setting takes its default.
        #[arg(long, env = "CAUSEWAY_AGENT_CONFIG")]
        config: Option<PathBuf>,
        /// An end user's token for the calls to the hub.
        #[arg(long, env = "CAUSEWAY_AGENT_TOKEN", hide_env_values = true, value_parser = secret)]
        token: Option<SecretString>,
    },
}

/// Exit codes: 0 ok, 2 usage or configuration error, 3 start-up failure, 1 runtime failure; `doctor`
/// exits 10 to 14 for the first link that failed.
const EXIT_CONFIG: u8 = 2;
const EXIT_STARTUP: u8 = 3;

/// Holds the token as a secret from the moment it is parsed, so no `Debug` can show it.
fn secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text.trim().to_owned()))
}

async fn workload(config: &AgentConfig) -> Result<Workload, String> {
    Workload::load(config).await.map_err(|e| e.to_string())
}

fn load(path: Option<&std::path::Path>) -> Result<AgentConfig, ExitCode> {
    AgentConfig::load(path, |key| std::env::var(key).ok()).map_err(|err| {
        eprintln!("causeway-agent: {err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

async fn doctor_run(path: Option<&std::path::Path>, token: Option<SecretString>) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let workload = match workload(&config).await {
        Ok(workload) => workload,
        Err(err) => {
            eprintln!("causeway-agent: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let token = token.filter(|t| !t.expose_secret().is_empty());
    let report = doctor::run(&config, &workload, token.as_ref()).await;
    let mut out = std::io::stdout().lock();
    if let Err(err) = report.write_to(&mut out) {
        eprintln!("causeway-agent: cannot write the report: {err}");
    }
    ExitCode::from(report.exit_code())
}

fn init_tracing(config: &AgentConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: a file, a pipe or a log service gets plain text.
        .with_ansi(std::io::stderr().is_terminal());
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(cli: Cli) -> ExitCode {
    let config = match cli.command {
        Command::Serve { config } => config,
        Command::Doctor { config, token } => return doctor_run(config.as_deref(), token).await,
    };
    let config = match load(config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    init_tracing(&config);
    let listen = config.listen;
    let workload = match workload(&config).await {
        Ok(workload) => workload,
        Err(err) => {
            eprintln!("causeway-agent: {err}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    if let Some((_, credentials)) = &workload.role {
        // Assume once before serving so a broken link shows at start; calls retry it on their own.
        if let Err(err) = credentials.get().await {
            tracing::warn!(error = %err, "cannot assume the invoker role yet; run `causeway-agent doctor`");
        }
    }
    let state = match AgentState::new(config, workload.signer) {
        Ok(state) => Arc::new(state),
        Err(err) => {
            eprintln!("causeway-agent: {err}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("causeway-agent: cannot listen on {listen}: {err}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    match serve_state(state, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "the agent stopped");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
