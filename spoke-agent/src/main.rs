//! `causeway-agent`: parses arguments and config, builds the agent, serves it, and maps failure to an exit
//! code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use causeway_agent::config::{AgentConfig, LogFormat};
use causeway_agent::identity::NoWorkloadIdentity;
use causeway_agent::{AgentState, serve_state, shutdown_signal};
use clap::{Parser, Subcommand};
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
}

/// Exit codes: 0 ok, 2 usage or configuration error, 3 start-up failure, 1 runtime failure.
const EXIT_CONFIG: u8 = 2;
const EXIT_STARTUP: u8 = 3;

fn init_tracing(config: &AgentConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(cli: Cli) -> ExitCode {
    let Command::Serve { config } = cli.command;
    let config = match AgentConfig::load(config.as_deref(), |key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("causeway-agent: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_tracing(&config);
    let listen = config.listen;
    let state = match AgentState::new(config, Arc::new(NoWorkloadIdentity)) {
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
