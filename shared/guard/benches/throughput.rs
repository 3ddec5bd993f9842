//! Guard engine throughput on mixed text (prose, code, logs, a little PII) at several sizes, to show the cost
//! per byte stays flat as inputs grow (every detector is a linear pass): the input guard
//! ([`GuardEngine::check_input`]) on one message, and the streaming output guard fed in 16-byte chunks as a
//! model would stream an answer. Criterion runs one thread, so MB/s is per core. 4 KB is a typical prompt,
//! the unit the input guard's throughput target is stated in.
//!
//! Every group measures steady state: the engine (with the process-wide gazetteer and injection model) is
//! built, and each input checked once, before timing starts.
//!
//! `check_input_prose` is the input guard on 4 KB of prose alone (a business document with a little PII, like
//! the hub benchmark's request), where the names pass and the injection classifier read the most words.
//!
//! `check_input_non_latin` is the input guard on prose in Russian, Greek, Chinese and accented Latin, where
//! most characters go through the look-alike folding of the denied-word matcher.
//!
//! `tool_result_json` is the input guard on a tool result holding a JSON array of records built from the same
//! text (masked value by value so it stays JSON), and `pdf_extract` the text extraction of a one-page PDF
//! before it is scanned.
//!
//! Run: `cargo bench -p causeway-guard --bench throughput -- --warm-up-time 1 --measurement-time 3`

#![expect(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]

use causeway_contract::content::{ContentBlock, DocumentFormat};
use causeway_contract::{GuardReport, Message, Role};
use causeway_guard::{DEFAULT_PROFILE, GuardEngine, GuardProfile, PseudonymMap, StreamStep};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod texts;
use texts::{BLOCKS, chunks, mixed_text, non_latin_text, prose_text};

const SIZES: [(&str, usize); 5] = [
    ("1KB", 1024),
    ("4KB", 4 * 1024),
    ("16KB", 16 * 1024),
    ("256KB", 256 * 1024),
    ("1MB", 1024 * 1024),
];

/// Bytes per chunk of the simulated stream.
const CHUNK: usize = 16;

fn engine() -> GuardEngine {
    GuardEngine::new(GuardProfile::from_toml(DEFAULT_PROFILE).unwrap()).unwrap()
}

fn check_input(c: &mut Criterion) {
    let engine = engine();
    let mut group = c.benchmark_group("check_input");
    for (name, size) in SIZES {
        let messages = vec![Message::text(Role::User, mixed_text(size))];
        // Sanity: the text is guarded (masked), not blocked, so the whole input is processed.
        let mut report = GuardReport::default();
        assert!(engine.check_input(&messages, &mut report).blocked.is_none());
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 256 * 1024 {
            group.sample_size(20);
        }
        group.bench_with_input(BenchmarkId::from_parameter(name), &messages, |b, m| {
            b.iter(|| {
                let mut report = GuardReport::default();
                engine.check_input(m, &mut report)
            });
        });
    }
    group.finish();
}

/// The input guard on prose alone at the typical prompt size (a business document with a little PII, the
/// shape of the hub benchmark's request), where the names pass and the classifier read the most words.
fn check_input_prose(c: &mut Criterion) {
    let engine = engine();
    let mut group = c.benchmark_group("check_input_prose");
    let size = 4 * 1024;
    let messages = vec![Message::text(Role::User, prose_text(size))];
    let mut report = GuardReport::default();
    assert!(engine.check_input(&messages, &mut report).blocked.is_none());
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_with_input(BenchmarkId::from_parameter("4KB"), &messages, |b, m| {
        b.iter(|| {
            let mut report = GuardReport::default();
            engine.check_input(m, &mut report)
        });
    });
    group.finish();
}

fn check_input_non_latin(c: &mut Criterion) {
    let engine = engine();
    let mut group = c.benchmark_group("check_input_non_latin");
    for (name, size) in &SIZES[..4] {
        let messages = vec![Message::text(Role::User, non_latin_text(*size))];
        let mut report = GuardReport::default();
        assert!(engine.check_input(&messages, &mut report).blocked.is_none());
        group.throughput(Throughput::Bytes(*size as u64));
        if *size >= 256 * 1024 {
            group.sample_size(20);
        }
        group.bench_with_input(BenchmarkId::from_parameter(name), &messages, |b, m| {
            b.iter(|| {
                let mut report = GuardReport::default();
                engine.check_input(m, &mut report)
            });
        });
    }
    group.finish();
}

fn output_stream(c: &mut Criterion) {
    let engine = engine();
    let pseudonyms = PseudonymMap::new();
    let mut group = c.benchmark_group("output_stream");
    for (name, size) in SIZES {
        let text = mixed_text(size);
        let chunks: Vec<&str> = chunks(&text, CHUNK);
        let run = || {
            let mut report = GuardReport::default();
            let mut guard = engine.output_stream(&pseudonyms);
            let mut emitted = 0usize;
            for piece in &chunks {
                match guard.push(piece, &mut report) {
                    StreamStep::Emit(t) => emitted += t.len(),
                    StreamStep::Blocked(_) => return 0,
                }
            }
            match guard.finish(&mut report) {
                StreamStep::Emit(t) => emitted + t.len(),
                StreamStep::Blocked(_) => 0,
            }
        };
        assert!(run() > 0, "the stream must not be blocked");
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 256 * 1024 {
            group.sample_size(20);
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(run));
    }
    group.finish();
}

/// A JSON array of records whose `note` values are the mixed text's blocks, about `size` bytes.
fn json_records(size: usize) -> String {
    let mut records = Vec::new();
    let mut len = 2;
    let mut i = 0;
    while len < size {
        let record = serde_json::json!({
            "id": i, "status": "open", "note": BLOCKS[i % BLOCKS.len()].trim_end(),
        });
        len += record.to_string().len() + 1;
        records.push(record);
        i += 1;
    }
    serde_json::Value::Array(records).to_string()
}

fn tool_result_json(c: &mut Criterion) {
    let engine = engine();
    let mut group = c.benchmark_group("tool_result_json");
    for (name, size) in &SIZES[..4] {
        let json = json_records(*size);
        let messages = vec![
            Message::text(Role::User, "Summarise the open cases."),
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult {
                    tool_use_id: "call_1".to_owned(),
                    content: vec![ContentBlock::text(json.clone())],
                    is_error: false,
                }],
            },
        ];
        let mut report = GuardReport::default();
        assert!(engine.check_input(&messages, &mut report).blocked.is_none());
        group.throughput(Throughput::Bytes(json.len() as u64));
        if *size >= 256 * 1024 {
            group.sample_size(20);
        }
        group.bench_with_input(BenchmarkId::from_parameter(name), &messages, |b, m| {
            b.iter(|| {
                let mut report = GuardReport::default();
                engine.check_input(m, &mut report)
            });
        });
    }
    group.finish();
}

fn pdf_extract(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ssn.pdf");
    let pdf = std::fs::read(path).unwrap();
    assert!(causeway_guard::extract_text(DocumentFormat::Pdf, &pdf).is_ok());
    let mut group = c.benchmark_group("pdf_extract");
    group.throughput(Throughput::Bytes(pdf.len() as u64));
    group.bench_function("one_page", |b| {
        b.iter(|| causeway_guard::extract_text(DocumentFormat::Pdf, &pdf))
    });
    group.finish();
}

criterion_group!(
    benches,
    check_input,
    check_input_prose,
    check_input_non_latin,
    output_stream,
    tool_result_json,
    pdf_extract
);
criterion_main!(benches);
