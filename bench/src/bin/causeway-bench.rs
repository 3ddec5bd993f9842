//! `causeway-bench`: runs the side-by-side benchmark (`run`), the streaming client (`ttft`), the hub's
//! start-to-ready measurement (`startup`), and renders results (`report`). `bench/run.sh` is the
//! documented entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use causeway_bench::run::{Paths, Plan, RunResult, SystemId};
use causeway_bench::ttft::{StreamKind, TtftPlan};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "Side-by-side gateway benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure every selected system and write the results.
    Run {
        /// Short phases, for smoke runs.
        #[arg(long)]
        quick: bool,
        /// Only these systems (comma-separated); default all.
        #[arg(long, value_delimiter = ',', value_enum)]
        only: Vec<SystemId>,
        /// Repository root.
        #[arg(long)]
        repo: PathBuf,
        /// `causeway-hub` binary.
        #[arg(long)]
        hub_bin: PathBuf,
        /// `bench-passthrough` binary.
        #[arg(long)]
        passthrough_bin: PathBuf,
        /// `bench-mock` binary.
        #[arg(long)]
        mock_bin: PathBuf,
        /// `oha` binary.
        #[arg(long)]
        oha: PathBuf,
        /// The LiteLLM virtualenv.
        #[arg(long)]
        venv: PathBuf,
        /// Transient files.
        #[arg(long)]
        scratch: PathBuf,
        /// Where results go.
        #[arg(long)]
        results: PathBuf,
        /// The command line to record.
        #[arg(long, default_value = "bench/run.sh")]
        record_command: String,
    },
    /// Stream `--requests` answers one after another and print time-to-first-token percentiles as JSON.
    Ttft {
        /// Request URL.
        #[arg(long)]
        url: String,
        /// JSON body file.
        #[arg(long)]
        body: PathBuf,
        /// Header, `name: value`; repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Stream format.
        #[arg(long, value_enum, default_value = "sse")]
        kind: StreamKind,
        /// Measured requests.
        #[arg(long, default_value_t = 200)]
        requests: u32,
        /// Unmeasured requests first.
        #[arg(long, default_value_t = 10)]
        warmup: u32,
    },
    /// Start the hub on the embedded default again and again and print how long it takes to be ready.
    Startup {
        /// `causeway-hub` binary.
        #[arg(long)]
        hub_bin: PathBuf,
        /// Directory for the per-start data directories.
        #[arg(long)]
        scratch: PathBuf,
        /// Fresh starts (each followed by a restart on the data it left).
        #[arg(long, default_value_t = 15)]
        runs: u32,
        /// Pin the hub to this CPU.
        #[arg(long)]
        cpu: Option<u32>,
        /// First port to listen on.
        #[arg(long, default_value_t = 18_700)]
        port: u16,
        /// Also write the result as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Re-render the table and the chart from a `latest.json`.
    Report {
        /// The results file.
        #[arg(long)]
        input: PathBuf,
        /// Directory for `side-by-side.md` and `side-by-side.svg`.
        #[arg(long)]
        out: PathBuf,
    },
}

fn render(result: &RunResult, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(result)?;
    std::fs::write(dir.join("latest.json"), json + "\n")?;
    std::fs::write(
        dir.join("side-by-side.md"),
        causeway_bench::report::markdown(result),
    )?;
    std::fs::write(
        dir.join("side-by-side.svg"),
        causeway_bench::report::svg(result),
    )?;
    Ok(())
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            quick,
            only,
            repo,
            hub_bin,
            passthrough_bin,
            mock_bin,
            oha,
            venv,
            scratch,
            results,
            record_command,
        } => {
            let bench_dir = repo.join("bench");
            let paths = Paths {
                self_bin: std::env::current_exe().context("finding this binary")?,
                repo,
                hub_bin,
                passthrough_bin,
                mock_bin,
                oha,
                venv,
                bench_dir,
                scratch,
                results: results.clone(),
            };
            let plan = if quick { Plan::quick() } else { Plan::full() };
            let result = causeway_bench::run::run(paths, plan, quick, &only, record_command)?;
            render(&result, &results)?;
            causeway_bench::out(&causeway_bench::report::markdown(&result))?;
            Ok(())
        }
        Command::Ttft {
            url,
            body,
            headers,
            kind,
            requests,
            warmup,
        } => {
            let headers = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                        .with_context(|| format!("header `{h}` is not `name: value`"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let plan = TtftPlan {
                url,
                headers,
                body: std::fs::read(&body)
                    .with_context(|| format!("reading `{}`", body.display()))?,
                kind,
                requests,
                warmup,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let summary = runtime.block_on(causeway_bench::ttft::measure(&plan))?;
            causeway_bench::out(&serde_json::to_string(&summary)?)?;
            Ok(())
        }
        Command::Startup {
            hub_bin,
            scratch,
            runs,
            cpu,
            port,
            json,
        } => {
            let plan = causeway_bench::startup::StartupPlan {
                hub_bin,
                scratch,
                runs,
                cpu,
                port,
            };
            let result = causeway_bench::startup::measure(&plan)?;
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&result)? + "\n")
                    .with_context(|| format!("writing `{}`", path.display()))?;
            }
            causeway_bench::out(&causeway_bench::startup::markdown(&result))?;
            Ok(())
        }
        Command::Report { input, out } => {
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("reading `{}`", input.display()))?;
            let result: RunResult = serde_json::from_str(&text)?;
            render(&result, &out)?;
            causeway_bench::out(&causeway_bench::report::markdown(&result))?;
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            causeway_bench::note(&format!("causeway-bench: {err:#}"));
            ExitCode::FAILURE
        }
    }
}
