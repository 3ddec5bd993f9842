//! `bench-passthrough`: the bare pass-through proxy (the floor of the side-by-side benchmark).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// An axum proxy that does nothing but forward.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18100")]
    listen: SocketAddr,
    /// Upstream base URL, e.g. `http://127.0.0.1:18000`.
    #[arg(long)]
    upstream: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match causeway_bench::passthrough::serve(cli.listen, &cli.upstream).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            causeway_bench::note(&format!("bench-passthrough: {err:#}"));
            ExitCode::FAILURE
        }
    }
}
