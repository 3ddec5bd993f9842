//! `causeway`: the admin CLI of the cloud centre of excellence and of compliance.
//!
//! Every command returns a [`CliError`] (an exit code and a one-line message) on failure; `main` only parses and
//! runs. Output for people goes to stdout as text; `--output json` prints one JSON document for scripts.

pub mod account;
pub mod console;
pub mod dev;
pub mod evidence;
pub mod guard;
pub mod iam;
pub mod org;
pub mod orgfile;
pub mod policy;
pub mod scp;

use std::io::{Read, Write};

use clap::{Parser, Subcommand, ValueEnum};

/// Output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Text for people.
    #[default]
    Text,
    /// JSON for scripts.
    Json,
}

/// The Causeway admin CLI.
#[derive(Debug, Parser)]
#[command(
    name = "causeway",
    version,
    about = "Causeway admin CLI: governance for generative AI on AWS"
)]
pub struct Cli {
    /// Output format.
    #[arg(long, value_enum, global = true, default_value_t = Output::Text)]
    pub output: Output,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One account at a time: `create` a new account, `onboard` an existing one (SCPs, spoke role and
    /// boundary, invoker role, registry), as the org file says.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// The compliance console on this machine, over an evidence pack (`--pack`, offline) or a local store
    /// (`--data-dir`), at a sign-in link it prints.
    Console(console::ConsoleArgs),
    /// Development helpers for the embedded default (never for production).
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Audit evidence: query records, export and verify tamper-evident evidence packs.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Try a guard profile on sample text (`guard scan`) before rolling it out.
    #[command(subcommand)]
    Guard(guard::GuardCommand),
    /// IAM rendered from the model catalog: the hub stack's model parameters (`iam hub-parameters`).
    #[command(subcommand)]
    Iam(iam::IamCommand),
    /// The Organization as code: `init` an org file from the live Organization, `plan` and `apply` changes,
    /// report `drift`.
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// Would this principal be allowed? Decide a request against the Cedar policies (`policy check`).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Service control policies: render them from the model catalog and the org file, lint them against the
    /// Organizations limits.
    #[command(subcommand)]
    Scp(scp::ScpCommand),
}

/// Exit codes that mean something to scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliExit {
    /// Success.
    Ok = 0,
    /// Unexpected failure.
    Failure = 1,
    /// Bad arguments or input.
    Usage = 2,
    /// A file or store could not be read or written.
    Io = 3,
    /// `guard scan`: at least one input would be blocked by the guard profile.
    Blocked = 4,
    /// `evidence verify`: the audit trail or evidence pack is broken (tampered, truncated, missing).
    VerificationFailed = 5,
    /// `policy check`: the policies deny the request.
    Denied = 6,
    /// `org plan`: the Organization differs from the org file; `org apply` would make changes.
    ChangesPending = 7,
    /// `org drift`: something changed outside Causeway (an SCP edited, an account moved, a boundary detached).
    DriftFound = 8,
    /// `scp lint`: a policy breaks a rule or an Organizations limit.
    LintFailed = 9,
}

/// A command failure: an exit code and a one-line message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The exit code.
    pub exit: CliExit,
    /// The message, lowercase, one line.
    pub message: String,
}

impl CliError {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: CliExit::Usage,
            message: message.into(),
        }
    }

    /// An I/O error (exit 3).
    pub fn io(message: impl Into<String>) -> Self {
        Self {
            exit: CliExit::Io,
            message: message.into(),
        }
    }
}

/// Runs a parsed command, writing its output to `out`; commands that read standard input read the process's.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    run_with_stdin(cli, &mut std::io::stdin().lock(), out)
}

/// Runs a parsed command with `stdin` as its standard input, writing its output to `out`.
pub fn run_with_stdin(cli: Cli, stdin: &mut dyn Read, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Account(command) => account::run(command, cli.output, out),
        Command::Console(args) => console::run(args, out),
        Command::Dev(command) => dev::run(command, cli.output, out),
        Command::Evidence(command) => evidence::run(command, cli.output, out),
        Command::Guard(command) => guard::run(command, stdin, out),
        Command::Iam(command) => iam::run(command, cli.output, out),
        Command::Org(command) => org::run(command, cli.output, out),
        Command::Policy(command) => policy::run(command, cli.output, out),
        Command::Scp(command) => scp::run(command, cli.output, out),
    }
}

/// The SDK config a command runs with: `base` (or the standard provider chain) with `--region` and
/// `--endpoint-url` on top.
pub(crate) async fn aws_sdk_config(
    region: Option<&str>,
    endpoint_url: Option<&str>,
    base: Option<&aws_config::SdkConfig>,
) -> aws_config::SdkConfig {
    let mut config = match base {
        Some(base) => base.clone().into_builder(),
        None => aws_config::load_defaults(aws_config::BehaviorVersion::latest())
            .await
            .into_builder(),
    };
    if let Some(region) = region {
        config = config.region(aws_config::Region::new(region.to_owned()));
    }
    if let Some(endpoint) = endpoint_url {
        config = config.endpoint_url(endpoint);
    }
    config.build()
}

/// Runs `future` on a runtime of its own: AWS is reached through the async SDK.
pub(crate) fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}
