//! Audit store benchmark: append rate with group commit and concurrent appenders, verify rate, and the
//! latency of one user's records over a day, on a store of a million records.
//!
//! Run: `cargo run --release -p causeway-audit --example audit_bench -- [RECORDS] [APPENDERS] [PHASE]`
//! (defaults 1000000 and 256). Prints one line per measurement; the numbers go to BENCHMARKS.md. With
//! `append`, only the group append runs (for a profiler); with `payload`, only the group append of
//! records with an encrypted payload each (what the hub writes for an answered call). With `verify DIR [ROUNDS]`, the store is kept in
//! `DIR` (filled the first time) and only verified, `ROUNDS` times (default 5).
//!
//! The store is measured with the hub's allocator (mimalloc). The group append also reports the CPU time per record of the whole process and of the store's writer
//! thread (`audit-writer`, through which every record passes one at a time), which move less with the
//! machine's load than the rate does.
//!
//! First it measures the disk's sync floor in the same directory: 300 times a small record written and
//! `fdatasync`ed, to a growing file and to a preallocated (zero-filled, synced) one. A durable append can be
//! no faster than that.

#![expect(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use causeway_audit::{AuditSink, EmbeddedStore, Payload, RecordFilter, StoreOptions};
use causeway_contract::TokenUsage;
use causeway_contract::audit::{AuditEvent, Outcome, sha256_hex};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

/// The hub's allocator, so the store is measured as the hub runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USERS: u64 = 1000;
const DAY: OffsetDateTime = datetime!(2026-01-02 00:00 UTC);

fn event(n: u64, records: u64) -> AuditEvent {
    let id = Uuid::now_v7();
    // Spread evenly over one day, users round-robin: about records / USERS per user per day.
    let offset_ms = i64::try_from(n * 86_400_000 / records.max(1)).unwrap();
    AuditEvent {
        id,
        call_id: id,
        timestamp: DAY + time::Duration::milliseconds(offset_ms),
        request_id: format!("{id}"),
        workload_principal: Some("arn:aws:sts::111122223333:assumed-role/app/session".into()),
        spoke_account: Some(format!("{:012}", 111_122_223_333 + n % 20)),
        application: Some("support-bot".into()),
        user_sub: Some(format!("user-{}", n % USERS)),
        user_issuer: Some("https://idp.example.com".into()),
        model_alias: Some(["claude-haiku", "claude-sonnet", "local-dev"][(n % 3) as usize].into()),
        model_id: Some("anthropic.claude-3-haiku-20240307-v1:0".into()),
        provider: Some("bedrock".into()),
        development_model: false,
        catalog_version: "2026-01".into(),
        guard_profile_version: "3".into(),
        policy_hash: sha256_hex(b"policy"),
        outcome: if n.is_multiple_of(17) {
            Outcome::Denied
        } else {
            Outcome::Answered
        },
        reasons: vec![
            "policy:engineers-code-and-evaluation".into(),
            "stop:end_turn".into(),
        ],
        injection_permille: 12,
        usage: TokenUsage {
            input_tokens: 420,
            output_tokens: 180,
        },
        cost_micro_usd: 330,
        latency_us: 812_345,
        prompt_sha256: Some(sha256_hex(b"prompt")),
        response_sha256: Some(sha256_hex(b"answer")),
        ..AuditEvent::sample()
    }
}

async fn append_all(store: &Arc<EmbeddedStore>, records: u64, appenders: u64, payload: bool) {
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..appenders {
        let store = store.clone();
        tasks.spawn(async move {
            let mut n = a;
            while n < records {
                let mut e = event(n, records);
                let p = payload.then(|| {
                    let prompt = "p".repeat(1500);
                    let response = "r".repeat(600);
                    e.prompt_sha256 = Some(sha256_hex(prompt.as_bytes()));
                    e.response_sha256 = Some(sha256_hex(response.as_bytes()));
                    Payload { prompt, response }
                });
                store.append(e, p).await.unwrap();
                n += appenders;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Appends `records` records from `appenders` concurrent appenders (with an encrypted payload each if
/// `payload`) and prints the rate, the process's CPU time per record and the writer thread's.
async fn measured_append(store: &Arc<EmbeddedStore>, records: u64, appenders: u64, payload: bool) {
    let cpu_before = process_cpu();
    // A thread names itself once it runs: one not found yet has not run.
    let writer_before = Some(thread_cpu("audit-writer").unwrap_or_default());
    let started = Instant::now();
    append_all(store, records, appenders, payload).await;
    let elapsed = started.elapsed();
    let per_record = |after: Option<Duration>, before: Option<Duration>| {
        after
            .zip(before)
            .map(|(after, before)| (after - before).as_secs_f64() * 1e6 / records as f64)
    };
    let cpu = per_record(process_cpu(), cpu_before);
    let writer = per_record(thread_cpu("audit-writer"), writer_before);
    println!(
        "{}: {:.0} records/s ({records} in {:.1} s){}{}",
        if payload {
            "append with encrypted payload"
        } else {
            "append (index record only)"
        },
        records as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        cpu.map_or(String::new(), |cpu| format!(
            ", {cpu:.1} us of CPU per record (whole process)"
        )),
        writer.map_or(String::new(), |writer| format!(
            ", {writer:.1} us in the writer thread"
        ))
    );
}

/// 300 small writes each followed by `fdatasync`: to a file that grows with each write, or to one
/// preallocated (zero-filled and synced) beforehand. Returns the sorted latencies.
fn sync_floor(dir: &std::path::Path, preallocated: bool) -> Vec<Duration> {
    use std::os::unix::fs::FileExt;
    const N: u64 = 300;
    const RECORD: usize = 256;
    let path = dir.join(if preallocated {
        "floor-pre"
    } else {
        "floor-grow"
    });
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    if preallocated {
        file.write_all_at(&vec![0; RECORD * N as usize + 4096], 0)
            .unwrap();
        file.sync_all().unwrap();
    }
    let record = [b'r'; RECORD];
    let mut times = Vec::new();
    for n in 0..N {
        let t = Instant::now();
        file.write_all_at(&record, n * RECORD as u64).unwrap();
        file.sync_data().unwrap();
        times.push(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).unwrap();
    times.sort();
    times
}

/// The CPU time this process has used (every thread, user and system), from `/proc/self/stat`; `None`
/// where there is no such file.
fn process_cpu() -> Option<Duration> {
    cpu_in_stat(Path::new("/proc/self/stat"))
}

/// CPU time of this process's thread named `name`, if there is one.
fn thread_cpu(name: &str) -> Option<Duration> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        (comm.trim_end() == name)
            .then(|| cpu_in_stat(&dir.join("stat")))
            .flatten()
    })
}

/// User plus system time from a `/proc` `stat` file, whose counts are in units of 1/100 s on Linux
/// (`USER_HZ`).
fn cpu_in_stat(path: &Path) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / u32::try_from(times.len()).unwrap().max(1)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The `verify` phase: a store of `records` records kept in `dir` (filled by group appends the first time,
/// reused after), verified `rounds` times; each round prints its rate and the process's CPU time per record,
/// which moves less with the machine's load than the rate does.
async fn verify_rounds(dir: &Path, records: u64, appenders: u64, rounds: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let store =
        Arc::new(EmbeddedStore::open_with(dir.join("audit.db"), StoreOptions::default()).unwrap());
    let stored = store.count().unwrap();
    if stored < records {
        append_all(&store, records - stored, appenders, false).await;
    }
    for _ in 0..rounds {
        verify_once(&store);
    }
}

/// Verifies `store` once and prints the rate and the process's CPU time per record.
fn verify_once(store: &EmbeddedStore) {
    let cpu_before = process_cpu();
    let verified = Instant::now();
    let report = store.verify_report(None).unwrap();
    let elapsed = verified.elapsed();
    assert!(report.is_ok(), "{:?}", report.breaks);
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| (after - before).as_secs_f64() * 1e6 / report.records as f64);
    println!(
        "verify (chain + {} checkpoints): {:.0} records/s ({} in {:.2} s){}",
        report.checkpoints,
        report.records as f64 / elapsed.as_secs_f64(),
        report.records,
        elapsed.as_secs_f64(),
        cpu.map_or(String::new(), |cpu| format!(
            ", {cpu:.2} us of CPU per record"
        ))
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let appenders: u64 = args.next().map_or(256, |a| a.parse().unwrap());
    let only_append = match args.next().as_deref() {
        None => false,
        Some("append") => true,
        Some("payload") => {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(
                EmbeddedStore::open_with(dir.path().join("payloads.db"), StoreOptions::default())
                    .unwrap(),
            );
            measured_append(&store, records, appenders, true).await;
            return std::process::ExitCode::SUCCESS;
        }
        Some("verify") => {
            let Some(dir) = args.next() else {
                eprintln!("audit_bench: `verify` needs the directory to keep its store in");
                return std::process::ExitCode::from(2);
            };
            let rounds = args.next().map_or(5, |a| a.parse().unwrap());
            verify_rounds(Path::new(&dir), records, appenders, rounds).await;
            return std::process::ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!(
                "audit_bench: unknown phase `{other}`: the phases are `append`, `payload` and `verify`"
            );
            return std::process::ExitCode::from(2);
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    println!(
        "store: {records} records, {appenders} concurrent appenders, checkpoint every 1000, {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );

    for preallocated in [false, true] {
        if only_append {
            break;
        }
        let floor = sync_floor(dir.path(), preallocated);
        println!(
            "sync floor, 256-byte write + fdatasync, {} file: mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms",
            if preallocated {
                "preallocated"
            } else {
                "growing"
            },
            ms(mean(&floor)),
            ms(percentile(&floor, 0.5)),
            ms(percentile(&floor, 0.99))
        );
    }

    let store = Arc::new(EmbeddedStore::open_with(&path, StoreOptions::default()).unwrap());
    measured_append(&store, records, appenders, false).await;
    if only_append {
        return std::process::ExitCode::SUCCESS;
    }
    let mut single = Vec::new();
    for n in 0..300 {
        let t = Instant::now();
        store.append(event(n, records), None).await.unwrap();
        single.push(t.elapsed());
    }
    // The slowest appends and where they fell, since a few of them can move the mean more than p99 shows.
    let mut slowest: Vec<(usize, Duration)> = single.iter().copied().enumerate().collect();
    slowest.sort_by_key(|&(_, d)| std::cmp::Reverse(d));
    single.sort();
    println!(
        "append, one appender at a time: {:.2} ms per durable record (300: mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms; slowest {})",
        ms(mean(&single)),
        ms(mean(&single)),
        ms(percentile(&single, 0.5)),
        ms(percentile(&single, 0.99)),
        slowest
            .iter()
            .take(3)
            .map(|(n, d)| format!("{:.2} ms (append {})", ms(*d), n + 1))
            .collect::<Vec<_>>()
            .join(", ")
    );

    verify_once(&store);

    let day_ms = DAY.unix_timestamp() * 1000;
    let mut latencies = Vec::new();
    let mut found = 0;
    for u in 0..200 {
        let filter = RecordFilter {
            user_sub: Some(format!("user-{}", (u * 7) % USERS)),
            since_unix_ms: Some(day_ms),
            until_unix_ms: Some(day_ms + 86_400_000),
            ..RecordFilter::default()
        };
        let t = Instant::now();
        found += store.query(&filter).unwrap().len();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "query one user over a day (~{} records each, decoded): p50 {:.2} ms, p99 {:.2} ms",
        found / 200,
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    let mut limited = Vec::new();
    for u in 0..200 {
        let filter = RecordFilter {
            user_sub: Some(format!("user-{}", (u * 7) % USERS)),
            since_unix_ms: Some(day_ms),
            until_unix_ms: Some(day_ms + 86_400_000),
            limit: 100,
            ..RecordFilter::default()
        };
        let t = Instant::now();
        store.query(&filter).unwrap();
        limited.push(t.elapsed());
    }
    limited.sort();
    println!(
        "query one user over a day, newest 100: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&limited, 0.5).as_secs_f64() * 1000.0,
        percentile(&limited, 0.99).as_secs_f64() * 1000.0
    );
    let whole_day = RecordFilter {
        since_unix_ms: Some(day_ms),
        until_unix_ms: Some(day_ms + 86_400_000),
        ..RecordFilter::default()
    };
    let t = Instant::now();
    let mut streamed = 0_u64;
    let mut bytes = 0;
    store
        .for_each_matching(&whole_day, |body, _hash| {
            streamed += 1;
            bytes += body.len();
            Ok(())
        })
        .unwrap();
    let elapsed = t.elapsed();
    println!(
        "stream the whole day (canonical bytes, newest first): {:.0} records/s ({streamed} in {:.2} s, {:.0} MB/s)",
        streamed as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );

    // The whole day as an evidence pack, as `causeway evidence export` writes it, then verified as
    // `causeway evidence verify --pack` does.
    let pack = dir.path().join("pack");
    let signer = causeway_audit::Ed25519FileSigner::load(store.key_dir()).unwrap();
    let t = Instant::now();
    let exported =
        causeway_audit::pack::export(&*store, &signer, DAY, DAY + time::Duration::days(1), &pack)
            .unwrap();
    let elapsed = t.elapsed();
    println!(
        "export the whole day as a pack: {:.0} records/s ({} in {:.1} s)",
        exported.records as f64 / elapsed.as_secs_f64(),
        exported.records,
        elapsed.as_secs_f64()
    );
    let t = Instant::now();
    let report = causeway_audit::pack::verify_pack(&pack, None).unwrap();
    let elapsed = t.elapsed();
    assert!(report.is_ok(), "{:?}", report.breaks);
    println!(
        "verify the pack: {:.0} records/s ({} in {:.1} s)",
        report.records as f64 / elapsed.as_secs_f64(),
        report.records,
        elapsed.as_secs_f64()
    );
    std::fs::remove_dir_all(&pack).unwrap();

    let size = std::fs::metadata(&path).map_or(0, |m| m.len())
        + std::fs::metadata(dir.path().join("audit.db-log")).map_or(0, |m| m.len())
        + std::fs::metadata(dir.path().join("audit.db-wal")).map_or(0, |m| m.len());
    println!(
        "store size: {:.0} MiB ({:.0} bytes per record)",
        size as f64 / 1_048_576.0,
        size as f64 / (records + 300) as f64
    );

    // Appends with an encrypted payload (1.5 KB prompt, 0.6 KB answer) on a fresh store.
    let with_payloads = (records / 10).max(1000);
    // Closed first, so that the writer thread measured is the new store's.
    if let Ok(store) = Arc::try_unwrap(store) {
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
    }
    let store = Arc::new(
        EmbeddedStore::open_with(dir.path().join("payloads.db"), StoreOptions::default()).unwrap(),
    );
    measured_append(&store, with_payloads, appenders, true).await;
    std::process::ExitCode::SUCCESS
}
