//! Where a row whose every match holds an ASCII digit (or a colon) can match: windows around the text's
//! digit runs (or colons).
//!
//! Most rows are shapes of numbers. A text has few digits, so such a row's pattern is searched only in
//! windows around the digit runs (found once per text), not over the whole text: the run, extended on
//! each side over the bytes the pattern can match (its byte set) and no further than its longest match.
//! A window holding fewer digits or bytes than the pattern's shortest match is not searched. A pattern
//! whose matches need no digit but hold colons (IPv6 addresses) is searched the same way around the
//! text's colons. A pattern
//! that can match lower-case letters and has no longest match (the address rows) would be extended over
//! whole sentences, so it is searched over the whole text instead.
//!
//! Rows whose bytes include no ASCII letter (the phone, card, SSN, IP address and expiry shapes) share
//! one set of windows per text, built for all of their bytes and their longest match: a window for the
//! group covers every window of each of its rows, so each row searches those of the group's windows that
//! hold enough digits and bytes for it. One set pass over a window (all the group's patterns in one lazy
//! DFA) says which of the rows match in it at all, and a row searches only the windows where it does: a
//! window's numbers are mostly versions, dates, ids and amounts, which match few of the shapes, and a
//! search costs about a thousand instructions whatever it finds.
//!
//! The windows give exactly the matches of a search over the whole text: the patterns have no anchors or
//! word boundaries, so a match depends only on its own bytes; every match lies inside one window (it holds
//! a digit, is made of the pattern's bytes and is no longer than the longest match); and the windows do
//! not overlap, so the leftmost-first matches of each window, in order, are those of the whole text.

use std::ops::Range;

use regex_syntax::hir::{Class, Hir, HirKind};

/// Windows closer than this are searched as one, which saves a search's fixed cost; the bytes between
/// them hold no match, so searching them changes nothing.
const JOIN_GAP: usize = 24;

/// What a pattern's matches are made of, for [`anchor_windows`].
#[derive(Debug, Clone)]
pub(crate) struct Around {
    /// Every byte a match can hold.
    bytes: [bool; 256],
    /// The bytes every match holds some of, whose runs the windows are built around.
    anchor: Anchor,
    /// Fewest anchor bytes in a match (at least one).
    min_anchors: usize,
    /// Shortest match in bytes.
    min_len: usize,
    /// Longest match in bytes, `usize::MAX` when unbounded.
    max_len: usize,
}

impl Around {
    /// `Some` when every match of `pattern` holds an ASCII digit and the pattern reads nothing outside its
    /// match (no anchors, no word boundaries), and its matches are either bounded in length or hold no
    /// lower-case ASCII letter; `None` otherwise, or when it does not parse.
    pub(crate) fn of(pattern: &str) -> Option<Around> {
        let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
        let props = hir.properties();
        if !props.look_set().is_empty() {
            return None;
        }
        let mut bytes = [false; 256];
        add_bytes(&hir, &mut bytes);
        let (anchor, min_anchors) = [Anchor::Digits, Anchor::Colons]
            .into_iter()
            .map(|anchor| (anchor, min_anchors(&hir, anchor)))
            .find(|&(_, n)| n > 0)?;
        let lower = bytes[usize::from(b'a')..=usize::from(b'z')].contains(&true);
        let max_len = match props.maximum_len() {
            Some(max) => max,
            None if !lower => usize::MAX,
            None => return None,
        };
        Some(Around {
            bytes,
            anchor,
            min_anchors,
            min_len: props.minimum_len().unwrap_or(0).max(1),
            max_len,
        })
    }

    /// The bytes whose runs the windows are built around.
    pub(crate) fn anchor(&self) -> Anchor {
        self.anchor
    }

    /// Whether the windows are built around digits and the pattern's bytes include no ASCII letter: the
    /// rows that share their windows.
    pub(crate) fn numeric(&self) -> bool {
        self.anchor == Anchor::Digits
            && !self.bytes[usize::from(b'A')..=usize::from(b'Z')].contains(&true)
            && !self.bytes[usize::from(b'a')..=usize::from(b'z')].contains(&true)
    }

    /// The shape whose windows cover those of every one of `shapes`: all their bytes, the longest of their
    /// longest matches (and the fewest digits and bytes, which [`anchor_windows`] does not read).
    pub(crate) fn union<'a>(shapes: impl Iterator<Item = &'a Around>) -> Option<Around> {
        shapes.cloned().reduce(|a, b| {
            let mut bytes = a.bytes;
            for (to, from) in bytes.iter_mut().zip(b.bytes) {
                *to |= from;
            }
            Around {
                bytes,
                anchor: a.anchor,
                min_anchors: a.min_anchors.min(b.min_anchors),
                min_len: a.min_len.min(b.min_len),
                max_len: a.max_len.max(b.max_len),
            }
        })
    }
}

/// Marks every byte a match of `hir` can hold (all of `0x80..=0xFF` for a class reaching beyond ASCII).
fn add_bytes(hir: &Hir, bytes: &mut [bool; 256]) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(literal) => {
            for &b in literal.0.iter() {
                bytes[usize::from(b)] = true;
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            for range in class.ranges() {
                let (start, end) = (u32::from(range.start()), u32::from(range.end()));
                for b in start..=end.min(0x7F) {
                    bytes[b as usize] = true;
                }
                if end >= 0x80 {
                    bytes[0x80..].fill(true);
                }
            }
        }
        HirKind::Class(Class::Bytes(class)) => {
            for range in class.ranges() {
                for b in range.start()..=range.end() {
                    bytes[usize::from(b)] = true;
                }
            }
        }
        HirKind::Repetition(rep) => add_bytes(&rep.sub, bytes),
        HirKind::Capture(capture) => add_bytes(&capture.sub, bytes),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            for sub in subs {
                add_bytes(sub, bytes);
            }
        }
    }
}

/// Bytes every match of a windowed pattern holds at least one of: ASCII digits, or, for a pattern whose
/// matches may hold none (an IPv6 address in hex), colons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Digits,
    Colons,
}

impl Anchor {
    pub(crate) fn has(self, b: u8) -> bool {
        match self {
            Anchor::Digits => b.is_ascii_digit(),
            Anchor::Colons => b == b':',
        }
    }
}

/// The maximal runs of `anchor`'s bytes in `text`, in order.
pub(crate) fn anchor_runs(text: &str, anchor: Anchor) -> Vec<Range<usize>> {
    match anchor {
        Anchor::Digits => crate::pii::ascii_digit_runs(text),
        Anchor::Colons => {
            // Room for the colon runs of a few timestamps and lines of code: a prompt's list rarely grows.
            let mut runs: Vec<Range<usize>> = Vec::with_capacity(64);
            for at in memchr::memchr_iter(b':', text.as_bytes()) {
                match runs.last_mut() {
                    Some(run) if run.end == at => run.end = at + 1,
                    _ => runs.push(at..at + 1),
                }
            }
            runs
        }
    }
}

/// Fewest of `anchor`'s bytes a match of `hir` holds: one for each class of those bytes only, and each
/// of them in a literal.
fn min_anchors(hir: &Hir, anchor: Anchor) -> usize {
    let in_anchor = |c: char| u8::try_from(c).is_ok_and(|b| anchor.has(b));
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => 0,
        HirKind::Literal(literal) => literal.0.iter().filter(|&&b| anchor.has(b)).count(),
        HirKind::Class(Class::Unicode(class)) => usize::from(
            !class.ranges().is_empty()
                && class
                    .ranges()
                    .iter()
                    .all(|r| in_anchor(r.start()) && in_anchor(r.end()) && r.end() <= '\x7f'),
        ),
        HirKind::Class(Class::Bytes(class)) => usize::from(
            !class.ranges().is_empty()
                && class
                    .ranges()
                    .iter()
                    .all(|r| (r.start()..=r.end()).all(|b| anchor.has(b))),
        ),
        HirKind::Repetition(rep) => usize::try_from(rep.min).map_or(usize::MAX, |min| {
            min.saturating_mul(min_anchors(&rep.sub, anchor))
        }),
        HirKind::Capture(capture) => min_anchors(&capture.sub, anchor),
        HirKind::Concat(subs) => subs
            .iter()
            .map(|sub| min_anchors(sub, anchor))
            .fold(0, usize::saturating_add),
        HirKind::Alternation(subs) => subs
            .iter()
            .map(|sub| min_anchors(sub, anchor))
            .min()
            .unwrap_or(0),
    }
}

/// A window: its span and the anchor bytes in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    pub(crate) span: Range<usize>,
    anchors: usize,
}

impl Window {
    /// Whether the window holds enough anchor bytes and bytes for a match of a pattern shaped as
    /// `around`.
    pub(crate) fn fits(&self, around: &Around) -> bool {
        self.anchors >= around.min_anchors && self.span.len() >= around.min_len
    }
}

/// The windows of `text` (whose ASCII digit runs are `runs`, in order) where a pattern shaped as `around`
/// can match: every run extended over the pattern's bytes, at most its longest match on each side, those
/// that touch joined; in order, disjoint, on character boundaries; appended to `out`. Windows too small
/// for a match are kept (see [`searched`]).
pub(crate) fn anchor_windows(
    text: &str,
    runs: &[Range<usize>],
    around: &Around,
    out: &mut Vec<Window>,
) {
    let bytes = text.as_bytes();
    let fits = |b: u8| around.bytes[usize::from(b)];
    let mut current: Option<Window> = None;
    for run in runs {
        // Back from the run over the pattern's bytes, but not into the current window (already read).
        let floor = current
            .as_ref()
            .map_or(0, |w| w.span.end)
            .max(run.start.saturating_sub(around.max_len));
        let mut start = run.start;
        while start > floor && fits(bytes[start - 1]) {
            start -= 1;
        }
        let joins = current.as_ref().is_some_and(|w| start <= w.span.end);
        // Forward from the run (or from the current window's end, when it joins it).
        let mut end = match &current {
            Some(w) if joins => w.span.end.max(run.end),
            _ => run.end,
        };
        let limit = run.end.saturating_add(around.max_len).min(bytes.len());
        while end < limit && fits(bytes[end]) {
            end += 1;
        }
        match current.as_mut() {
            Some(w) if joins => {
                w.span.end = end;
                w.anchors += run.len();
            }
            _ => {
                if let Some(done) = current.replace(Window {
                    span: start..end,
                    anchors: run.len(),
                }) {
                    push_window(text, done, out);
                }
            }
        }
    }
    if let Some(done) = current {
        push_window(text, done, out);
    }
}

/// Appends `window` to `out`, widened to character boundaries and joined to the last window if they
/// then overlap.
fn push_window(text: &str, window: Window, out: &mut Vec<Window>) {
    let Range { mut start, mut end } = window.span;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    match out.last_mut() {
        Some(last) if start < last.span.end => {
            last.span.end = last.span.end.max(end);
            last.anchors += window.anchors;
        }
        _ => out.push(Window {
            span: start..end,
            anchors: window.anchors,
        }),
    }
}

/// The spans to search for a pattern shaped as `around`, from windows [`anchor_windows`] built for it (or
/// for a shape covering it, see [`Around::union`]): those holding enough digits and bytes for a match,
/// joined when they stand closer than [`JOIN_GAP`]; appended to `out`.
pub(crate) fn searched(windows: &[Window], around: &Around, out: &mut Vec<Range<usize>>) {
    searched_where(windows, around, |_| true, out);
}

/// As [`searched`], leaving out the windows for which `may_match` (given a window's index) is false: those
/// where the pattern is known not to match. Every match lies inside one window, so leaving out a window
/// without one, even from between two that are joined, changes no match.
pub(crate) fn searched_where(
    windows: &[Window],
    around: &Around,
    mut may_match: impl FnMut(usize) -> bool,
    out: &mut Vec<Range<usize>>,
) {
    for (k, w) in windows.iter().enumerate() {
        if !w.fits(around) || !may_match(k) {
            continue;
        }
        match out.last_mut() {
            Some(last) if w.span.start <= last.end.saturating_add(JOIN_GAP) => {
                last.end = w.span.end
            }
            _ => out.push(w.span.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lazy::WindowRegex;
    use crate::pii::NEVER;
    use crate::pii::detectors::DETECTORS;
    use crate::set::PatternSet;
    use regex::Regex;

    /// The matches of a row's expression in the spans searched from `windows` (those `may_match` keeps),
    /// found by the detector's [`WindowRegex`], which must find in each span what the `regex` crate finds
    /// there.
    fn in_windows(
        (pattern, lazy): &(Regex, WindowRegex),
        around: &Around,
        text: &str,
        windows: &[Window],
        may_match: impl Fn(usize) -> bool,
    ) -> Vec<Range<usize>> {
        for pair in windows.windows(2) {
            assert!(pair[0].span.end <= pair[1].span.start, "{windows:?}");
        }
        let mut spans = Vec::new();
        searched_where(windows, around, may_match, &mut spans);
        let mut found = Vec::new();
        for w in spans {
            let from = found.len();
            assert!(lazy.find_in(text, w.clone(), &mut found), "{text:?}");
            let expected: Vec<Range<usize>> = pattern
                .find_iter(&text[w.clone()])
                .map(|m| w.start + m.start()..w.start + m.end())
                .collect();
            assert_eq!(found[from..], expected, "{:?} in {text:?}", &text[w]);
        }
        found
    }

    #[test]
    fn shapes() {
        let card = Around::of(r"[0-9](?:[ \-]?[0-9]){12,18}").unwrap();
        assert_eq!((card.min_anchors, card.min_len, card.max_len), (13, 13, 37));
        assert!(card.bytes[usize::from(b' ')] && !card.bytes[usize::from(b'a')] && card.numeric());
        // No digit needed, a word boundary, an empty match: searched over the whole text.
        assert!(Around::of(r"[A-Z]{2}[0-9]?").is_none());
        assert!(Around::of(r"(?-u:\b)[0-9]{3}").is_none());
        assert!(Around::of(r"[0-9]*").is_none());
        let date = Around::of(r"[0-9]{1,2}(?i-u:jan|feb)|(?i-u:mar)[0-9]{4}").unwrap();
        assert_eq!((date.min_anchors, date.min_len), (1, 4));
        assert!(date.bytes[usize::from(b'J')] && date.bytes[usize::from(b'r')] && !date.numeric());
        let street = Around::of(r"[0-9]+ [A-ZÀ-Ö][A-Z]*").unwrap();
        assert_eq!(street.max_len, usize::MAX);
        assert!(street.bytes[0xC3] && street.bytes[0x80]);
        // Lower-case letters and no longest match: the whole text.
        assert!(Around::of(r"[0-9]+ [A-ZÀ-Ö][a-z]*").is_none());
        // No digit needed but two colons: windows around the colons.
        let v6 = Around::of(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}").unwrap();
        assert_eq!(
            (v6.anchor, v6.min_anchors, v6.max_len),
            (Anchor::Colons, 2, 39)
        );
        assert!(!v6.numeric());
        let both = Around::union([&card, &date].into_iter()).unwrap();
        assert_eq!((both.min_anchors, both.min_len, both.max_len), (1, 4, 37));
        assert!(both.bytes[usize::from(b' ')] && both.bytes[usize::from(b'J')]);
    }

    /// Every row searched in windows finds, on generated texts, exactly what the search over the whole
    /// text finds, in its own windows and in those its group shares.
    #[test]
    fn windows_find_what_the_whole_text_search_finds() {
        let rows: Vec<(usize, (Regex, WindowRegex), Around)> = DETECTORS
            .iter()
            .enumerate()
            .filter_map(|(i, row)| {
                Around::of(row.pattern).map(|a| {
                    let engines = (
                        Regex::new(row.pattern).unwrap(),
                        WindowRegex::new(row.pattern),
                    );
                    (i, engines, a)
                })
            })
            .collect();
        assert!(rows.len() >= 25, "{}", rows.len());
        let shared = Around::union(rows.iter().map(|(_, _, a)| a).filter(|a| a.numeric())).unwrap();
        // The numeric rows as one set, as the detector builds it: which of them match in each window.
        let numeric_set = PatternSet::new(
            &DETECTORS
                .iter()
                .map(|row| match Around::of(row.pattern) {
                    Some(a) if a.numeric() => row.pattern,
                    _ => NEVER,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let pieces = [
            "0",
            "1",
            "4",
            "9",
            "12",
            "07",
            "415",
            "2024",
            "4111",
            "98765",
            "123456",
            "1234567890",
            " ",
            " ",
            "  ",
            "-",
            ".",
            "/",
            ",",
            ":",
            "(",
            ")",
            "+",
            "#",
            "\n",
            "\t",
            "x",
            "Ab",
            "Jan",
            "march",
            "st",
            "Street",
            "Rd",
            "Apt",
            "Suite",
            "rue",
            "Main",
            "Ørsted",
            "Łódź",
            "straße",
            "P.O. Box",
            "APO AE",
            "AKIA",
            "GB82",
            "WEST",
            "address:",
            "lives at",
            "é",
            "٣",
            "::",
            "fe80",
            "db8",
            "a:b",
            "３",
            "€",
            "👍",
            "’",
            "AB",
            "cd",
            "ZZ",
        ];
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x1B87_3593);
        let (mut own, mut group) = (Vec::new(), Vec::new());
        for n in 0..4_000 {
            let text = texts.text(n % 40);
            let runs = anchor_runs(&text, Anchor::Digits);
            let colons = text.bytes().enumerate().filter(|&(_, b)| b == b':');
            let mut expected: Vec<Range<usize>> = Vec::new();
            for (at, _) in colons {
                match expected.last_mut() {
                    Some(run) if run.end == at => run.end = at + 1,
                    _ => expected.push(at..at + 1),
                }
            }
            assert_eq!(anchor_runs(&text, Anchor::Colons), expected);
            group.clear();
            anchor_windows(&text, &runs, &shared, &mut group);
            for (i, engines, around) in &rows {
                let whole: Vec<Range<usize>> =
                    engines.0.find_iter(&text).map(|m| m.range()).collect();
                own.clear();
                anchor_windows(&text, &anchor_runs(&text, around.anchor), around, &mut own);
                assert_eq!(
                    in_windows(engines, around, &text, &own, |_| true),
                    whole,
                    "row {i} on {text:?}"
                );
                if around.numeric() {
                    assert_eq!(
                        in_windows(engines, around, &text, &group, |_| true),
                        whole,
                        "row {i} on {text:?}, shared windows"
                    );
                    let in_set: Vec<bool> = group
                        .iter()
                        .map(|w| numeric_set.matches(&text[w.span.clone()]).matched(*i))
                        .collect();
                    assert_eq!(
                        in_windows(engines, around, &text, &group, |k| in_set[k]),
                        whole,
                        "row {i} on {text:?}, shared windows where the set matches"
                    );
                }
            }
        }
    }
}
