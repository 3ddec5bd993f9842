//! `causeway-hub`: parses arguments and config, builds the hub, serves it, and maps failure to an exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use causeway_hub::app::{Overrides, build_state};
use causeway_hub::config::{HubConfig, IdentityMode, LogFormat};
use causeway_hub::serve;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The Causeway hub: the governed way to reach a model.
#[derive(Debug, Parser)]
#[command(name = "causeway-hub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the hub (the default). On AWS Lambda the Lambda runtime is used instead of a listener.
    Serve {
        /// Configuration file. Without it every setting takes its embedded-mode default.
        #[arg(long, env = "CAUSEWAY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and the policies and guard profile it points at, then exit.
    CheckConfig {
        /// Configuration file.
        #[arg(long, env = "CAUSEWAY_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// mimalloc instead of the C library's allocator: a governed call allocates and frees many small buffers
/// across the runtime's threads (parsed bodies, guard findings, the audit record), and glibc's allocator was
/// a tenth of the hub's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes: 0 ok, 2 usage or configuration error, 3 start-up failure, 1 runtime failure.
const EXIT_CONFIG: u8 = 2;
const EXIT_STARTUP: u8 = 3;

fn load_config(path: Option<&PathBuf>) -> Result<HubConfig, String> {
    match path {
        Some(path) => HubConfig::load(path).map_err(|e| e.to_string()),
        None => Ok(HubConfig::default()),
    }
}

fn init_tracing(config: &HubConfig) {
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

fn banner(config: &HubConfig, addr: std::net::SocketAddr) {
    let data = config.data_dir.0.display();
    let scheme = if config.server.tls().is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!(
        "\nCauseway hub listening on {scheme}://{addr}\n\n\
         Mint a development token (trusted only in dev identity mode) and call the local development model:\n\n\
         \x20 TOKEN=$(cargo run -q -p causeway-cli -- dev token --sub alice --group engineers --data-dir {data})\n\
         \x20 curl -s {scheme}://{addr}/v1/invoke -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n\
         \x20   -d '{{\"model\":\"local-dev\",\"purpose\":\"evaluation\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'\n\n\
         Or with the OpenAI Python SDK:\n\n\
         \x20 from openai import OpenAI\n\
         \x20 client = OpenAI(base_url=\"{scheme}://{addr}/v1\", api_key=TOKEN,\n\
         \x20                 default_headers={{\"x-causeway-purpose\": \"evaluation\"}})\n\
         \x20 print(client.chat.completions.create(model=\"local-dev\",\n\
         \x20       messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}]).choices[0].message.content)\n"
    );
}

async fn run(cli: Cli) -> ExitCode {
    let lambda = serve::on_lambda(|k| std::env::var(k).ok());
    let (config_path, check_only) = match cli.command {
        Some(Command::Serve { config }) => (config, false),
        Some(Command::CheckConfig { config }) => (config, true),
        None => (
            std::env::var_os("CAUSEWAY_CONFIG").map(PathBuf::from),
            false,
        ),
    };
    let config = match load_config(config_path.as_ref()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("causeway-hub: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if !check_only {
        init_tracing(&config);
    }
    let listen = config.server.listen;
    let dev_mode = config.identity.mode == IdentityMode::Dev;
    let state = match build_state(config, Overrides::default(), lambda).await {
        Ok(state) => Arc::new(state),
        Err(err) => {
            eprintln!("causeway-hub: {err}");
            return ExitCode::from(if check_only {
                EXIT_CONFIG
            } else {
                EXIT_STARTUP
            });
        }
    };
    if check_only {
        eprintln!("causeway-hub: configuration is valid");
        return ExitCode::SUCCESS;
    }
    if dev_mode {
        tracing::warn!(
            "development identity mode: tokens signed by the local development key are trusted"
        );
    }
    if lambda {
        return match serve::serve_lambda(state).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %err, "lambda runtime failed");
                ExitCode::FAILURE
            }
        };
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("causeway-hub: cannot listen on {listen}: {err}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    let addr = listener.local_addr().unwrap_or(listen);
    if dev_mode && !addr.ip().to_canonical().is_loopback() {
        // Config validation lets this through only with `identity.allow_dev_on_network = true`.
        tracing::warn!(
            %addr,
            "development identity on a network address (`identity.allow_dev_on_network = true`): anyone who \
             holds the data directory's key can mint a token for any user and group and call this hub as them"
        );
    }
    banner(&state.config, addr);
    tracing::info!(%addr, audit = state.audit.kind(), "hub started");
    match serve::serve_local(state, listener, serve::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("causeway-hub: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    runtime.block_on(run(cli))
}
