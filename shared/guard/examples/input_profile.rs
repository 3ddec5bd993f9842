//! Runs the input guard on the benchmarks' mixed text many times, for a profiler: `perf record` or
//! `valgrind --tool=callgrind --toggle-collect='*InputPass*guard*'`, whose instruction counts do not
//! depend on what else the machine is running. Builds the engine (and the process-wide gazetteer and
//! model) and checks the text once before the loop, and reports how long those two took (the guard's share
//! of a cold start).
//!
//! Run: `cargo run --release -p causeway-guard --example input_profile -- [BYTES] [CALLS] [TEXT]` (defaults
//! 4096, 2000 and `mixed`; `prose` is the benchmarks' prose blocks alone, a business document with a little
//! PII, like the hub benchmark's request; `non-latin` their prose in other scripts).

#![expect(clippy::unwrap_used, reason = "profiling set-up fails loudly")]
#![expect(clippy::print_stdout, reason = "reports what it ran")]

use std::time::Instant;

use causeway_contract::{GuardReport, Message, Role};
use causeway_guard::{DEFAULT_PROFILE, GuardEngine, GuardProfile};

#[path = "../benches/texts/mod.rs"]
#[expect(dead_code, reason = "the example runs on whole texts, never on chunks")]
mod texts;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let bytes: usize = args.next().map_or(4096, |a| a.parse().unwrap());
    let calls: usize = args.next().map_or(2000, |a| a.parse().unwrap());
    let text = match args.next().as_deref() {
        None | Some("mixed") => texts::mixed_text(bytes),
        Some("prose") => texts::prose_text(bytes),
        Some("non-latin") => texts::non_latin_text(bytes),
        Some(other) => return Err(format!("unknown text `{other}`: mixed, prose or non-latin")),
    };
    let started = Instant::now();
    let engine = GuardEngine::new(GuardProfile::from_toml(DEFAULT_PROFILE).unwrap()).unwrap();
    let built = started.elapsed();
    let messages = vec![Message::text(Role::User, text)];
    let mut report = GuardReport::default();
    assert!(engine.check_input(&messages, &mut report).blocked.is_none());
    let first = started.elapsed() - built;
    println!(
        "engine built in {:.1} ms, first check in {:.1} ms",
        built.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3
    );
    let mut findings = 0;
    let looped = Instant::now();
    for _ in 0..calls {
        let mut report = GuardReport::default();
        let verdict = engine.check_input(&messages, &mut report);
        assert!(verdict.blocked.is_none());
        findings += report.events.len();
    }
    #[expect(clippy::cast_precision_loss, reason = "a call count")]
    let per_call = looped.elapsed().as_secs_f64() * 1e6 / calls.max(1) as f64;
    println!("{calls} calls on {bytes} bytes, {findings} guard events, {per_call:.2} µs a call");
    Ok(())
}
