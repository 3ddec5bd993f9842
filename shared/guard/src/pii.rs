//! PII and secret detectors: a linear-time regex finds candidates, a validator (Luhn, mod-97, SSN rules,
//! octet ranges, context words) rejects near misses.
//!
//! Constraints: only the `regex` crate (no backtracking, no look-around), so boundaries and context are
//! checked in code around each match, and a rejected candidate is never re-searched from inside itself;
//! that keeps every detector a single left-to-right pass. Findings carry a type, a byte span and a
//! confidence; never the matched text.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::ops::Range;

use regex::Regex;

use crate::profile::EntityType;

/// One detected entity: its type, where it is and how sure the detector is. Holds no part of the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What was found.
    pub entity: EntityType,
    /// Byte range in the scanned text.
    pub span: Range<usize>,
    /// Detector confidence in `[0, 1]`.
    pub confidence: f32,
}

/// The compiled detectors.
#[derive(Debug)]
pub(crate) struct PiiDetector {
    email: Regex,
    phone_intl: Regex,
    phone_us: Regex,
    phone_uk: Regex,
    card: Regex,
    ssn: Regex,
    iban: Regex,
    aws_access: Regex,
    aws_secret: Regex,
    ipv4: Regex,
    ipv6: Regex,
    pem_block: Regex,
    pem_header: Regex,
    bearer: Regex,
    jwt: Regex,
}

impl PiiDetector {
    pub(crate) fn new() -> Result<Self, regex::Error> {
        Ok(PiiDetector {
            email: Regex::new(
                r"[A-Za-z0-9._%+_\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,63}",
            )?,
            phone_intl: Regex::new(r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,4}\)?){1,6}")?,
            phone_us: Regex::new(
                r"(?:1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ .\-]?|[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}",
            )?,
            phone_uk: Regex::new(r"\(?0[0-9]{2,4}\)?[ \-]?[0-9]{3,4}[ \-]?[0-9]{3,4}")?,
            card: Regex::new(r"[0-9](?:[ \-]?[0-9]){12,18}")?,
            ssn: Regex::new(r"[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}")?,
            iban: Regex::new(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")?,
            aws_access: Regex::new(r"(?:AKIA|ASIA)[A-Z0-9]{16}")?,
            aws_secret: Regex::new(r"[A-Za-z0-9/+]{40,}")?,
            ipv4: Regex::new(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")?,
            ipv6: Regex::new(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}")?,
            pem_block: Regex::new(
                r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s:,.\-]*?-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----",
            )?,
            pem_header: Regex::new(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s]*")?,
            bearer: Regex::new(r"(?i:bearer)[ \t]+[A-Za-z0-9\-._~+/]{8,}=*")?,
            jwt: Regex::new(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")?,
        })
    }

    /// Every entity in `text`, non-overlapping, sorted by start.
    pub(crate) fn detect(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        let mut push = |entity, span: Range<usize>, confidence| {
            found.push(Finding {
                entity,
                span,
                confidence,
            });
        };

        for m in self.email.find_iter(text) {
            if email_ok(m.as_str()) && !word_char_before(text, m.start()) {
                push(EntityType::Email, m.range(), 0.95);
            }
        }
        for (re, confidence, min, max) in [
            (&self.phone_intl, 0.8, 7, 15),
            (&self.phone_us, 0.75, 10, 11),
            (&self.phone_uk, 0.7, 10, 11),
        ] {
            for m in re.find_iter(text) {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                if (min..=max).contains(&digits)
                    && !alnum_before(text, m.start())
                    && !alnum_after(text, m.end())
                {
                    push(EntityType::Phone, m.range(), confidence);
                }
            }
        }
        for m in self.card.find_iter(text) {
            if let Some(span) = card_within(text, m.range()) {
                push(EntityType::CreditCard, span, 0.9);
            }
        }
        for m in self.ssn.find_iter(text) {
            if ssn_ok(m.as_str())
                && !alnum_before(text, m.start())
                && !text[..m.start()].ends_with('-')
                && !alnum_after(text, m.end())
            {
                push(EntityType::UsSsn, m.range(), 0.85);
            }
        }
        for m in self.iban.find_iter(text) {
            if alnum_before(text, m.start()) {
                continue;
            }
            if let Some((span, known_country)) = iban_within(text, m.range()) {
                push(
                    EntityType::Iban,
                    span,
                    if known_country { 0.95 } else { 0.8 },
                );
            }
        }
        for m in self.aws_access.find_iter(text) {
            if !alnum_before(text, m.start()) && !alnum_after(text, m.end()) {
                push(EntityType::AwsAccessKey, m.range(), 0.95);
            }
        }
        for m in self.aws_secret.find_iter(text) {
            if m.len() == 40
                && !text[m.end()..].starts_with('=')
                && secret_shape(m.as_str())
                && secret_context(text, m.start())
            {
                push(EntityType::AwsSecretKey, m.range(), 0.85);
            }
        }
        for m in self.ipv4.find_iter(text) {
            let after = &text[m.end()..];
            let dotted_more =
                after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit());
            if ipv4_ok(m.as_str())
                && !alnum_before(text, m.start())
                && !text[..m.start()].ends_with('.')
                && !alnum_after(text, m.end())
                && !dotted_more
            {
                push(EntityType::IpAddress, m.range(), 0.8);
            }
        }
        for m in self.ipv6.find_iter(text) {
            let before_ok =
                !alnum_before(text, m.start()) && !text[..m.start()].ends_with([':', '.']);
            let after_ok = !alnum_after(text, m.end()) && !text[m.end()..].starts_with(':');
            if before_ok && after_ok && ipv6_ok(m.as_str()) {
                push(EntityType::IpAddress, m.range(), 0.8);
            }
        }
        for m in self.pem_block.find_iter(text) {
            push(EntityType::PrivateKey, m.range(), 0.99);
        }
        for m in self.pem_header.find_iter(text) {
            push(EntityType::PrivateKey, m.range(), 0.98);
        }
        for m in self.bearer.find_iter(text) {
            if !alnum_before(text, m.start()) && token_shape(m.as_str()) {
                push(EntityType::BearerToken, m.range(), 0.95);
            }
        }
        for m in self.jwt.find_iter(text) {
            if !alnum_before(text, m.start()) {
                push(EntityType::BearerToken, m.range(), 0.95);
            }
        }
        resolve_overlaps(found)
    }
}

/// Keeps the most confident finding where findings overlap, then the longer one, then the earlier one.
fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| b.span.len().cmp(&a.span.len()))
            .then_with(|| a.span.start.cmp(&b.span.start))
    });
    // Kept spans are disjoint, so a new span overlaps one of them exactly when it overlaps the kept span
    // with the greatest start below its end: a logarithmic check per finding.
    let mut kept: BTreeMap<usize, Finding> = BTreeMap::new();
    for f in found {
        let clashes = kept
            .range(..f.span.end)
            .next_back()
            .is_some_and(|(_, k)| k.span.end > f.span.start);
        if !clashes {
            kept.insert(f.span.start, f);
        }
    }
    kept.into_values().collect()
}

// === boundaries ===

fn char_before(text: &str, at: usize) -> Option<char> {
    text.get(..at).and_then(|s| s.chars().next_back())
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text.get(at..).and_then(|s| s.chars().next())
}

fn alnum_before(text: &str, at: usize) -> bool {
    char_before(text, at).is_some_and(char::is_alphanumeric)
}

fn alnum_after(text: &str, at: usize) -> bool {
    char_after(text, at).is_some_and(char::is_alphanumeric)
}

fn word_char_before(text: &str, at: usize) -> bool {
    char_before(text, at).is_some_and(|c| c.is_alphanumeric() || c == '_')
}

// === validators ===

fn email_ok(candidate: &str) -> bool {
    let Some((local, _domain)) = candidate.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

/// The Luhn checksum over ASCII digits.
pub(crate) fn luhn_ok(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The card number inside a candidate run: the longest sub-run that starts and ends on a group boundary,
/// has 13 to 19 digits, starts with 2 to 6 (the card networks' ranges) and passes Luhn.
fn card_within(text: &str, run: Range<usize>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    // (byte offset of the group's first digit, byte offset after its last digit, digits so far before it)
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = run.start;
    for i in run.clone() {
        if !bytes[i].is_ascii_digit() {
            groups.push((start, i));
            start = i + 1;
        }
    }
    groups.push((start, run.end));
    if groups.len() > 19 {
        return None;
    }
    let digits_in = |a: usize, b: usize| -> Vec<u8> {
        bytes[a..b]
            .iter()
            .copied()
            .filter(u8::is_ascii_digit)
            .collect()
    };
    let mut best: Option<(usize, Range<usize>)> = None;
    for first in 0..groups.len() {
        for last in first..groups.len() {
            let (a, b) = (groups[first].0, groups[last].1);
            let digits = digits_in(a, b);
            if !(13..=19).contains(&digits.len())
                || !(b'2'..=b'6').contains(&digits[0])
                || !luhn_ok(&digits)
            {
                continue;
            }
            // A leading `-` or `.` makes the run part of a larger number or identifier.
            let joined = first == 0 && text[..a].ends_with(['-', '.']);
            let before_ok = !alnum_before(text, a) && !joined;
            let after_ok = !alnum_after(text, b);
            if before_ok && after_ok && best.as_ref().is_none_or(|(n, _)| digits.len() > *n) {
                best = Some((digits.len(), a..b));
            }
        }
    }
    best.map(|(_, span)| span)
}

fn ssn_ok(candidate: &str) -> bool {
    let b = candidate.as_bytes();
    if b.len() != 11 || b[3] != b[6] {
        return false;
    }
    let area = &candidate[0..3];
    let group = &candidate[4..6];
    let serial = &candidate[7..11];
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Known IBAN lengths by country (ISO 13616 registry, common entries).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VG", 24),
    ("XK", 20),
];

/// ISO 7064 mod-97-10 over an IBAN without spaces.
pub(crate) fn iban_checksum_ok(compact: &[u8]) -> bool {
    if compact.len() < 5 {
        return false;
    }
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut rem: u32 = 0;
    for &c in rearranged {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The IBAN inside a candidate run: ends at the country's length when known, otherwise at a space-separated
/// group boundary; returns the span and whether the country is known.
fn iban_within(text: &str, run: Range<usize>) -> Option<(Range<usize>, bool)> {
    let bytes = text.as_bytes();
    // Byte offset just after each alphanumeric character, in order.
    let mut ends = Vec::new();
    let mut compact = Vec::new();
    for i in run.clone() {
        if bytes[i] != b' ' {
            compact.push(bytes[i]);
            ends.push(i + 1);
        }
    }
    let country = text.get(run.start..run.start + 2)?;
    let expected = IBAN_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, n)| *n);
    let lengths: Vec<usize> = match expected {
        Some(n) => vec![n],
        None => (15..=compact.len().min(34)).rev().collect(),
    };
    for n in lengths {
        if n > compact.len() {
            continue;
        }
        let end = ends[n - 1];
        // A cut in the middle of a longer run is not an IBAN.
        if alnum_after(text, end) {
            continue;
        }
        if iban_checksum_ok(&compact[..n]) {
            return Some((run.start..end, expected.is_some()));
        }
    }
    None
}

/// The token after "Bearer" looks generated: it has a digit, or it is long and mixes cases. This keeps
/// "bearer securities" and "bearer instruments" out.
fn token_shape(candidate: &str) -> bool {
    let token = candidate
        .split_once([' ', '\t'])
        .map_or(candidate, |(_, t)| t.trim_start());
    let digit = token.bytes().any(|b| b.is_ascii_digit());
    let mixed = token.bytes().any(|b| b.is_ascii_uppercase())
        && token.bytes().any(|b| b.is_ascii_lowercase());
    digit || (token.len() >= 20 && mixed)
}

/// A secret key mixes cases and digits or symbols; this rejects hex digests and plain words.
fn secret_shape(candidate: &str) -> bool {
    let upper = candidate.bytes().any(|b| b.is_ascii_uppercase());
    let lower = candidate.bytes().any(|b| b.is_ascii_lowercase());
    let other = candidate
        .bytes()
        .any(|b| b.is_ascii_digit() || b == b'/' || b == b'+');
    upper && lower && other
}

/// True when "secret" appears within 80 bytes before `at` (`aws_secret_access_key`, `SecretAccessKey`,
/// "secret key:" ...).
fn secret_context(text: &str, at: usize) -> bool {
    let mut from = at.saturating_sub(80);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    text[from..at].to_ascii_lowercase().contains("secret")
}

fn ipv4_ok(candidate: &str) -> bool {
    candidate.split('.').all(|octet| {
        !(octet.len() > 1 && octet.starts_with('0')) && octet.parse::<u16>().is_ok_and(|v| v <= 255)
    })
}

fn ipv6_ok(candidate: &str) -> bool {
    let has_hex = candidate.bytes().any(|b| b.is_ascii_hexdigit());
    let colons = candidate.bytes().filter(|&b| b == b':').count();
    let groups = candidate.split(':').filter(|g| !g.is_empty()).count();
    let shaped = (candidate.contains("::") && groups >= 2) || colons == 7;
    has_hex && shaped && candidate.parse::<Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(text: &str) -> Vec<(EntityType, String)> {
        let d = PiiDetector::new().unwrap();
        d.detect(text)
            .into_iter()
            .map(|f| (f.entity, text[f.span].to_owned()))
            .collect()
    }

    fn one(entity: EntityType, value: &str) -> Vec<(EntityType, String)> {
        vec![(entity, value.to_owned())]
    }

    #[test]
    fn email() {
        assert_eq!(
            detect("write to jane.doe+x@mail.example.co.uk today"),
            one(EntityType::Email, "jane.doe+x@mail.example.co.uk")
        );
        assert!(detect("a..b@example.com is invalid, so is @example.com and x@y").is_empty());
    }

    #[test]
    fn phone_formats() {
        assert_eq!(
            detect("call +44 20 7946 0958 now"),
            one(EntityType::Phone, "+44 20 7946 0958")
        );
        assert_eq!(
            detect("E.164 +14155552671."),
            one(EntityType::Phone, "+14155552671")
        );
        assert_eq!(
            detect("US (415) 555-2671 ok"),
            one(EntityType::Phone, "(415) 555-2671")
        );
        assert_eq!(
            detect("US 415-555-2671 ok"),
            one(EntityType::Phone, "415-555-2671")
        );
        assert_eq!(
            detect("UK 07700 900123 ok"),
            one(EntityType::Phone, "07700 900123")
        );
    }

    #[test]
    fn phone_near_misses() {
        // Too few digits, a date, a version and an order number are not phones.
        assert!(detect("+44 123, 2024-01-15, v1.2.3, order 1234567").is_empty());
    }

    #[test]
    fn credit_card() {
        assert_eq!(
            detect("card 4111 1111 1111 1111 exp"),
            one(EntityType::CreditCard, "4111 1111 1111 1111")
        );
        assert_eq!(
            detect("amex 378282246310005."),
            one(EntityType::CreditCard, "378282246310005")
        );
        assert_eq!(
            detect("mc 5555-5555-5555-4444 2027"),
            one(EntityType::CreditCard, "5555-5555-5555-4444")
        );
    }

    #[test]
    fn credit_card_rejects_bad_luhn_and_long_runs() {
        assert!(detect("card 4111 1111 1111 1112 exp").is_empty());
        assert!(detect("id 41111111111111111111111").is_empty());
        assert!(luhn_ok(b"79927398713"));
        assert!(!luhn_ok(b"79927398710"));
    }

    #[test]
    fn ssn() {
        assert_eq!(
            detect("ssn 123-45-6789."),
            one(EntityType::UsSsn, "123-45-6789")
        );
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123-45 6789",
        ] {
            assert!(detect(&format!("ssn {bad}")).is_empty(), "{bad}");
        }
    }

    #[test]
    fn iban() {
        assert_eq!(
            detect("pay GB82 WEST 1234 5698 7654 32 THEN"),
            one(EntityType::Iban, "GB82 WEST 1234 5698 7654 32")
        );
        assert_eq!(
            detect("DE89370400440532013000"),
            one(EntityType::Iban, "DE89370400440532013000")
        );
        // One digit off: the checksum fails.
        assert!(detect("pay GB82 WEST 1234 5698 7654 33").is_empty());
        assert!(!iban_checksum_ok(b"DE89370400440532013001"));
    }

    #[test]
    fn aws_keys() {
        assert_eq!(
            detect("key AKIAIOSFODNN7EXAMPLE here"),
            one(EntityType::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE")
        );
        assert!(detect("AKIAIOSFODNN7EXAMPLE1 is too long").is_empty());
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            detect(&format!("aws_secret_access_key = {secret}")),
            one(EntityType::AwsSecretKey, secret)
        );
        // Without context, or a hex digest, it is not a secret key.
        assert!(detect(&format!("value {secret}")).is_empty());
        assert!(detect("secret 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12").is_empty());
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(
            detect("host 192.168.10.12."),
            one(EntityType::IpAddress, "192.168.10.12")
        );
        assert_eq!(
            detect("v6 2001:db8::8a2e:370:7334 up"),
            one(EntityType::IpAddress, "2001:db8::8a2e:370:7334")
        );
        assert_eq!(
            detect("link fe80::1 up"),
            one(EntityType::IpAddress, "fe80::1")
        );
        assert!(detect("256.1.1.1 and 1.2.3.4.5 and 01.2.3.4").is_empty());
        assert!(detect("std::vector at 10:30:45, mac 00:1A:2B:3C:4D:5E").is_empty());
    }

    #[test]
    fn private_key() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75\nabc+/=\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            detect(&format!("key:\n{pem}\nthanks!")),
            one(EntityType::PrivateKey, pem)
        );
        let found = detect("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, EntityType::PrivateKey);
        assert!(detect("-----BEGIN PUBLIC KEY-----").is_empty());
    }

    #[test]
    fn bearer_and_jwt() {
        assert_eq!(
            detect("Authorization: Bearer abcdef1234567890xyz"),
            one(EntityType::BearerToken, "Bearer abcdef1234567890xyz")
        );
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(
            detect(&format!("token {jwt} end")),
            one(EntityType::BearerToken, jwt)
        );
        assert!(detect("the bearer of bad news").is_empty());
        assert!(detect("bearer securities and bearer instruments").is_empty());
    }

    #[test]
    fn overlaps_keep_higher_confidence() {
        // The card wins over anything the phone patterns would see inside it.
        let found = detect("+4111 1111 1111 1111");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, EntityType::CreditCard);
    }
}
