//! The side-by-side benchmark harness behind `bench/run.sh`: the hub against a bare pass-through and the
//! gateways people use today (LiteLLM proxy, Portkey gateway), each forwarding to the same mock model.
//!
//! Constraints:
//! - Everything binds 127.0.0.1; nothing reaches beyond it at run time.
//! - The system under test runs on CPU 0; the mock, the load generator and the streaming client on CPU 1, so
//!   the figures are what one core of the system under test carries.
//! - Figures are reported with their ratio to the bare pass-through, which is what carries from one machine
//!   to another.

pub mod mock;
pub mod passthrough;
pub mod procfs;
pub mod prompt;
pub mod report;
pub mod run;
pub mod startup;
pub mod token;
pub mod ttft;

/// Writes one line to stdout. The workspace denies `println!` so that debug output never ships; a CLI's
/// real output goes through here.
pub fn out(line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Writes one progress line to stderr.
pub fn note(line: &str) {
    use std::io::Write as _;
    let mut stderr = std::io::stderr().lock();
    // Progress lines are best effort: a closed stderr must not stop a measurement.
    let _ = writeln!(stderr, "{line}");
}
