//! `bench-mock`: the mock model server (OpenAI chat completions and Bedrock Converse) for `bench/run.sh`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Mock model server on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18000")]
    listen: SocketAddr,
    /// Milliseconds before the answer, or before the first streamed event.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Content deltas per streamed answer.
    #[arg(long, default_value_t = 16)]
    stream_chunks: usize,
    /// Milliseconds between streamed events.
    #[arg(long, default_value_t = 2)]
    stream_chunk_delay_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let behaviour = causeway_bench::mock::MockBehaviour {
        latency: Duration::from_millis(cli.latency_ms),
        stream_chunks: cli.stream_chunks,
        stream_chunk_delay: Duration::from_millis(cli.stream_chunk_delay_ms),
    };
    match causeway_bench::mock::serve(cli.listen, behaviour).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            causeway_bench::note(&format!("bench-mock: {err:#}"));
            ExitCode::FAILURE
        }
    }
}
