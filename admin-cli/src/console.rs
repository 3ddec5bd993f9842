//! `causeway console`: the compliance console on this machine, over an evidence pack (for an auditor, fully
//! offline) or a local embedded store.
//!
//! Constraints:
//! - Serves loopback only, read-only: a pack is verified when opened and its result shown; payloads are
//!   never offered (a pack holds none, and a local store's reads could not be recorded in its chain here).
//! - Sign-in is a one-time link with a random token, printed for the person who started the command; no
//!   page answers without the session it opens.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use causeway_audit::{AuditReader, EmbeddedReader, PackReader};
use causeway_console::{Console, ConsoleConfig, SignIn};
use clap::Args;

use crate::{CliError, CliExit};

/// Where the console reads from and where it listens.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["pack", "data_dir"])))]
pub struct ConsoleArgs {
    /// An evidence pack directory (from `causeway evidence export` or the console's export).
    #[arg(long)]
    pub pack: Option<PathBuf>,
    /// A hub data directory holding the embedded store (`audit.db`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Checkpoint public keys to verify the pack against (JSON as `causeway evidence keys` prints them);
    /// default: the keys the pack carries.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The loopback address to serve on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,
}

/// The group an offline reviewer is in.
const LOCAL_REVIEWERS: &str = "local-reviewers";

/// Runs the console until interrupted (Ctrl-C or SIGTERM), printing its sign-in link to `out` first.
pub fn run(args: ConsoleArgs, out: &mut dyn Write) -> Result<(), CliError> {
    run_until(args, out, causeway_server::shutdown_signal())
}

/// Runs the console until `stop` completes, printing its sign-in link to `out` first.
pub fn run_until(
    args: ConsoleArgs,
    out: &mut dyn Write,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    if !args.listen.ip().is_loopback() {
        return Err(CliError::usage(format!(
            "`--listen {}` is not a loopback address: the offline console serves only this machine",
            args.listen
        )));
    }
    let trusted = args
        .key
        .as_deref()
        .map(crate::evidence::read_keys)
        .transpose()?;
    let (reader, opened): (Arc<dyn AuditReader>, _) = match (&args.pack, &args.data_dir) {
        (Some(pack), _) => {
            let reader = PackReader::open(pack, trusted.as_deref())
                .map_err(|e| CliError::io(format!("cannot open the pack: {e}")))?;
            let opened = reader.opened_verification().clone();
            (Arc::new(reader), Some(opened))
        }
        (None, Some(dir)) => (
            Arc::new(
                EmbeddedReader::open(dir)
                    .map_err(|e| CliError::io(format!("cannot open the store: {e}")))?,
            ),
            None,
        ),
        (None, None) => return Err(CliError::usage("give `--pack DIR` or `--data-dir DIR`")),
    };
    let token = causeway_console::random_token().map_err(|e| CliError {
        exit: CliExit::Failure,
        message: format!("cannot make the sign-in token: {e}"),
    })?;
    let source = reader.describe();
    let mut console = Console::new(
        Arc::clone(&reader),
        SignIn::Link {
            token: token.clone(),
        },
        ConsoleConfig {
            reviewer_groups: vec![LOCAL_REVIEWERS.to_owned()],
            payload_groups: Vec::new(),
            secure_cookies: false,
            source: source.clone(),
            account_budgets_usd: std::collections::HashMap::new(),
            trusted_keys: trusted,
            session_key: None,
        },
        None,
    )
    .map_err(|e| CliError {
        exit: CliExit::Failure,
        message: format!("cannot start the console: {e}"),
    })?;
    let broken = opened.as_ref().is_some_and(|v| !v.is_ok());
    if let Some(verification) = opened {
        console = console.with_opened_verification(verification);
    }
    let console = Arc::new(console);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::io(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::io(format!("cannot listen on {}: {e}", args.listen)))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::io(format!("cannot read the listening address: {e}")))?;
        let print = |out: &mut dyn Write, line: String| {
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(|e| CliError::io(format!("cannot write the output: {e}")))
        };
        print(out, format!("console for {source}"))?;
        if broken {
            print(
                out,
                "warning: the pack does not verify; the integrity page names every break"
                    .to_owned(),
            )?;
        }
        print(
            out,
            format!("open http://{address}/console/login?token={token}  (Ctrl-C stops it)"),
        )?;
        causeway_console::serve(listener, console, stop)
            .await
            .map_err(|e| CliError {
                exit: CliExit::Failure,
                message: format!("the console stopped: {e}"),
            })
    })
}
