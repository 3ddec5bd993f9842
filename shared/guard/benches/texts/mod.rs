//! The texts the guard benchmarks and the profiling example run on: mixed enterprise text (prose, code,
//! logs, a little PII) and prose in other scripts.

/// Blocks of mixed text; roughly one in four carries PII (masked by the default profile, none blocked),
/// and the rest carry the look-alikes detectors must reject: versions, UUIDs, timestamps, order numbers.
pub const BLOCKS: [&str; 8] = [
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

/// `text` in pieces of `size` bytes, each moved forward to a character boundary: a streamed answer.
pub fn chunks(text: &str, size: usize) -> Vec<&str> {
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

/// About `size` bytes of mixed text, cut on a character boundary.
pub fn mixed_text(size: usize) -> String {
    repeated(&BLOCKS, size)
}

/// About `size` bytes of the prose blocks of [`BLOCKS`] (a case note, a request with contact details,
/// planning notes), cut on a character boundary.
pub fn prose_text(size: usize) -> String {
    repeated(&[BLOCKS[0], BLOCKS[3], BLOCKS[6]], size)
}

/// About `size` bytes of `blocks` repeated in order, cut on a character boundary.
fn repeated(blocks: &[&str], size: usize) -> String {
    let mut text = String::with_capacity(size + 512);
    let mut i = 0;
    while text.len() < size {
        text.push_str(blocks[i % blocks.len()]);
        i += 1;
    }
    let mut end = size;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Prose in other scripts, for the cost of folding look-alikes: Russian, Greek, Chinese and accented Latin
/// text with an e-mail address, emoji and a variation selector, none of it blocked.
pub const NON_LATIN_BLOCKS: [&str; 4] = [
    "Клиент сообщает, что в ежемесячной выписке по счёту дважды списан один и тот же платёж. Он просит \
     вернуть второе списание и прислать ответ на ivan.petrov@example.com до пятницы.\n",
    "Ο πελάτης αναφέρει ότι η μηνιαία κατάσταση του λογαριασμού δείχνει διπλή χρέωση και ζητά επιστροφή \
     του δεύτερου ποσού το συντομότερο δυνατό. ❤️\n",
    "客户反映本月的账单中同一笔直接借记被扣了两次，希望知道第二笔是否会自动退款，以及通常需要多长时间。\n",
    "Le client signale un prélèvement en double sur le relevé mensuel ; il souhaite être remboursé et \
     recevoir un résumé de l’historique du dossier. Über die Rückerstattung wird später entschieden.\n",
];

/// About `size` bytes of [`NON_LATIN_BLOCKS`], cut on a character boundary.
pub fn non_latin_text(size: usize) -> String {
    repeated(&NON_LATIN_BLOCKS, size)
}
