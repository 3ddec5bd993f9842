//! Runs the output stream guard on the benchmarks' mixed text, cut into 16-byte chunks, many times, for a
//! profiler (`valgrind --tool=callgrind`, whose instruction counts do not depend on what else the machine
//! is running): the difference between two call counts is the cost of the calls between them.
//!
//! Run: `cargo run --release -p causeway-guard --example stream_profile -- [BYTES] [CALLS]` (defaults 4096
//! and 200).

#![expect(clippy::unwrap_used, reason = "profiling set-up fails loudly")]
#![expect(clippy::print_stdout, reason = "reports what it ran")]
#![expect(
    clippy::panic,
    reason = "a blocked stream would measure the wrong thing"
)]

use causeway_contract::GuardReport;
use causeway_guard::{DEFAULT_PROFILE, GuardEngine, GuardProfile, PseudonymMap, StreamStep};

#[path = "../benches/texts/mod.rs"]
#[expect(dead_code, reason = "the example runs on the mixed text only")]
mod texts;

/// Bytes per chunk, as in the `output_stream` benchmark.
const CHUNK: usize = 16;

fn main() {
    let mut args = std::env::args().skip(1);
    let bytes: usize = args.next().map_or(4096, |a| a.parse().unwrap());
    let calls: usize = args.next().map_or(200, |a| a.parse().unwrap());
    let engine = GuardEngine::new(GuardProfile::from_toml(DEFAULT_PROFILE).unwrap()).unwrap();
    let pseudonyms = PseudonymMap::new();
    let text = texts::mixed_text(bytes);
    let chunks = texts::chunks(&text, CHUNK);
    let mut emitted = 0usize;
    let mut pieces = 0usize;
    for _ in 0..=calls {
        let mut report = GuardReport::default();
        let mut guard = engine.output_stream(&pseudonyms);
        for piece in &chunks {
            match guard.push(piece, &mut report) {
                StreamStep::Emit(t) => {
                    pieces += usize::from(!t.is_empty());
                    emitted += t.len();
                }
                StreamStep::Blocked(_) => panic!("the mixed text must not be blocked"),
            }
        }
        match guard.finish(&mut report) {
            StreamStep::Emit(t) => emitted += t.len(),
            StreamStep::Blocked(_) => panic!("the mixed text must not be blocked"),
        }
    }
    println!(
        "{} streams of {bytes} bytes, {emitted} bytes out in {pieces} pieces",
        calls + 1
    );
}
