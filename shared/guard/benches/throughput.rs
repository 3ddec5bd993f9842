//! Guard engine throughput on mixed text (prose, code, logs, a little PII) at several sizes, to show the cost
//! per byte stays flat as inputs grow (every detector is a linear pass): the input guard
//! ([`GuardEngine::check_input`]) on one message, and the streaming output guard fed in 16-byte chunks as a
//! model would stream an answer. Criterion runs one thread, so MB/s is per core. 4 KB is a typical prompt,
//! the unit the input guard's throughput target is stated in.
//!
//! Every group measures steady state: the engine (with the process-wide gazetteer and injection model) is
//! built, and each input checked once, before timing starts.
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

const SIZES: [(&str, usize); 5] = [
    ("1KB", 1024),
    ("4KB", 4 * 1024),
    ("16KB", 16 * 1024),
    ("256KB", 256 * 1024),
    ("1MB", 1024 * 1024),
];

/// Bytes per chunk of the simulated stream.
const CHUNK: usize = 16;

/// Blocks of mixed text; roughly one in four carries PII (masked by the default profile, none blocked),
/// and the rest carry the look-alikes detectors must reject: versions, UUIDs, timestamps, order numbers.
const BLOCKS: [&str; 8] = [
    "The customer reports that the monthly statement for the business account shows a duplicated direct \
     debit. They asked whether the second collection will be refunded automatically and how long it usually \
     takes, and would like a summary of the case history with a suggested reply.\n",
    "```rust\nfn retry_delay(attempt: u32) -> Duration {\n    let base = Duration::from_millis(200);\n    \
     base.saturating_mul(2u32.saturating_pow(attempt.min(6)))\n}\n```\n",
    "2024-01-15T10:30:45.123Z INFO request_id=550e8400-e29b-41d4-a716-446655440000 route=/v1/invoke \
     status=200 latency_ms=182 agent=causeway-agent/1.2.3.4\n",
    "Please forward the contract to jordan.lee@example.com and copy the account manager on +44 20 7946 0958; \
     the VPN gateway for the site is 10.20.30.40.\n",
    "def parse(line):\n    fields = line.strip().split(',')\n    return {'order': fields[0], 'sku': fields[1], \
     'qty': int(fields[2])}\n\n",
    "Order 112-3456789-1234567 shipped on 15/01/2024 and invoice INV-2024-000123 follows; the build 10.0.19045 \
     upgrade is scheduled for next Tuesday after the release notes are reviewed by the team.\n",
    "Quarterly planning notes: headcount stays flat, the data platform migration moves to the second half, \
     and the vendor review covers latency, cost per thousand requests and support response times.\n",
    "SELECT customer_id, SUM(amount) AS total FROM payments WHERE created_at >= '2024-01-01' GROUP BY \
     customer_id ORDER BY total DESC LIMIT 10;\n",
];

/// About `size` bytes of mixed text, cut on a character boundary.
fn mixed_text(size: usize) -> String {
    let mut text = String::with_capacity(size + 512);
    let mut i = 0;
    while text.len() < size {
        text.push_str(BLOCKS[i % BLOCKS.len()]);
        i += 1;
    }
    let mut end = size;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

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

/// Prose in other scripts, for the cost of folding look-alikes: Russian, Greek, Chinese and accented Latin
/// text with an e-mail address, emoji and a variation selector, none of it blocked.
const NON_LATIN_BLOCKS: [&str; 4] = [
    "Клиент сообщает, что в ежемесячной выписке по счёту дважды списан один и тот же платёж. Он просит \
     вернуть второе списание и прислать ответ на ivan.petrov@example.com до пятницы.\n",
    "Ο πελάτης αναφέρει ότι η μηνιαία κατάσταση του λογαριασμού δείχνει διπλή χρέωση και ζητά επιστροφή \
     του δεύτερου ποσού το συντομότερο δυνατό. ❤️\n",
    "客户反映本月的账单中同一笔直接借记被扣了两次，希望知道第二笔是否会自动退款，以及通常需要多长时间。\n",
    "Le client signale un prélèvement en double sur le relevé mensuel ; il souhaite être remboursé et \
     recevoir un résumé de l’historique du dossier. Über die Rückerstattung wird später entschieden.\n",
];

/// About `size` bytes of [`NON_LATIN_BLOCKS`], cut on a character boundary.
fn non_latin_text(size: usize) -> String {
    let mut text = String::with_capacity(size + 512);
    let mut i = 0;
    while text.len() < size {
        text.push_str(NON_LATIN_BLOCKS[i % NON_LATIN_BLOCKS.len()]);
        i += 1;
    }
    let mut end = size;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
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
        let chunks: Vec<&str> = chunk(&text, CHUNK);
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

/// `text` in pieces of about `size` bytes, each cut on a character boundary.
fn chunk(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / size + 1);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

criterion_group!(
    benches,
    check_input,
    check_input_non_latin,
    output_stream,
    tool_result_json,
    pdf_extract
);
criterion_main!(benches);
