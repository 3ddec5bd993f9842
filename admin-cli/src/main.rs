//! `causeway`: parses arguments, runs the command, maps failure to an exit code.

use std::process::ExitCode;

use causeway_cli::{Cli, run};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match run(cli, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("causeway: {err}");
            ExitCode::from(err.exit as u8)
        }
    }
}
