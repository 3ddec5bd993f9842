//! How much slower the input guard is on a call that follows a pause than on one that follows another call:
//! the cost, at low request rates, of the guard's tables having left the CPU's caches in between.
//!
//! Calls alternate: one right after a pause of `PAUSE_US` microseconds, then one right after it. The pause is
//! a busy wait (`spin`: the core stays busy and this process touches no memory meanwhile, so whatever the
//! guard loses from the caches, something else took) or a sleep (`sleep`: the core may idle). Prints the
//! median and 90th percentile of each kind.
//!
//! Run: `cargo run --release -p causeway-guard --example input_after_pause -- [BYTES] [CALLS] [PAUSE_US]
//! [spin|sleep]` (defaults 3000, 100, 50000 and `spin`), pinned to one core (`taskset -c 1`) for steadier
//! figures. The text is the benchmarks' prose, the shape of the hub benchmark's request.

#![expect(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]
#![expect(clippy::print_stdout, reason = "reports what it measured")]

use std::time::{Duration, Instant};

use causeway_contract::{GuardReport, Message, Role};
use causeway_guard::{DEFAULT_PROFILE, GuardEngine, GuardProfile};

#[path = "../benches/texts/mod.rs"]
#[expect(dead_code, reason = "the example runs on the prose text only")]
mod texts;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let bytes: usize = args.next().map_or(3000, |a| a.parse().unwrap());
    let calls: usize = args.next().map_or(100, |a| a.parse().unwrap());
    let pause = Duration::from_micros(args.next().map_or(50_000, |a| a.parse().unwrap()));
    let spin = match args.next().as_deref() {
        None | Some("spin") => true,
        Some("sleep") => false,
        Some(other) => return Err(format!("unknown pause `{other}`: spin or sleep")),
    };
    let engine = GuardEngine::new(GuardProfile::from_toml(DEFAULT_PROFILE).unwrap()).unwrap();
    let messages = vec![Message::text(Role::User, texts::prose_text(bytes))];
    let mut after_pause = Vec::with_capacity(calls);
    let mut back_to_back = Vec::with_capacity(calls);
    // The first calls build the lazy automata's states; they are not measured.
    for n in 0..calls + 10 {
        if spin {
            let started = Instant::now();
            while started.elapsed() < pause {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(pause);
        }
        for times in [&mut after_pause, &mut back_to_back] {
            let started = Instant::now();
            let verdict = engine.check_input(&messages, &mut GuardReport::default());
            let took = started.elapsed();
            assert!(verdict.blocked.is_none());
            if n >= 10 {
                times.push(took);
            }
        }
    }
    let quantile = |times: &mut Vec<Duration>, q: f64| {
        times.sort();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a short list"
        )]
        let i = ((times.len().saturating_sub(1)) as f64 * q).round() as usize;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "{bytes} bytes, {calls} pairs, pause {} us ({}): after the pause p50 {:.0} us, p90 {:.0} us; \
         back to back p50 {:.0} us, p90 {:.0} us",
        pause.as_micros(),
        if spin { "spin" } else { "sleep" },
        quantile(&mut after_pause, 0.5),
        quantile(&mut after_pause, 0.9),
        quantile(&mut back_to_back, 0.5),
        quantile(&mut back_to_back, 0.9),
    );
    Ok(())
}
