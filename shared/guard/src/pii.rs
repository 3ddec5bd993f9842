//! PII and secret detectors: the rows of the detector table ([`DETECTORS`], one per entity type and shape)
//! compiled and run. A linear-time regex finds candidates, a validator (Luhn, mod-97, mod-11, Verhoeff, ABA,
//! SSN and NINO rules, octet ranges, context words) rejects near misses.
//!
//! Constraints: only the `regex` crate (no backtracking, no look-around), so boundaries and context are
//! checked in code around each match, and a rejected candidate is never re-searched from inside itself;
//! that keeps every detector a single left-to-right pass. Findings carry a type, a byte span and a
//! confidence; never the matched text.
//!
//! Some shapes are ambiguous on their own, so a few validators also read the words around a candidate (a
//! bounded window): a dotted quad after "version" or before "upgrade" is a version, not an address; a
//! Luhn-valid number after "order" or "invoice" (and no card word) is a reference, not a card; a bare group
//! of digits is a phone number only next to a phone word.
//!
//! Most text holds few kinds of value, so one set pass over the candidate patterns first says which can
//! match at all, and only those are searched again for their matches; a text without digits, `@` or key
//! headers costs one pass, not one per detector (the engine's pass also carries the injection scanner's
//! patterns, on input and output alike: [`PiiDetector::detect_rows`]). Rows whose pattern is a plain run of digits
//! (`[0-9]{min,max}`) are not searched at all: their matches are cut from the text's digit runs, found
//! once per text. Rows whose every match holds a digit are searched only in windows around the digit runs
//! (`windows`); those whose bytes include no letter share one set of windows per text and are left out of
//! the set pass, as are the digit-run rows: where a text has no place for them they cost next to nothing.
//! A row that requires context words is searched only when one of its words occurs in the text: the same
//! set pass carries each such row's words, as whole words, as one more pattern.
//!
//! Names of people, places and organisations are not rows: `names` reads runs of capitalised words against
//! the gazetteers (one finite-state transducer, compiled at build time and read in place) after the rows have run, and their
//! findings go through the same overlap resolution.
//!
//! For streamed answers the same patterns (and the shape of a run of capitalised words) also run as one lazy DFA anchored at a given start
//! ([`PiiDetector::reach_from`]): it tells whether a candidate starting there is final in a growing text, so
//! the stream guard releases text as soon as nothing before it can still turn into a value.

pub(crate) mod detectors;
pub(crate) mod gazetteer;
pub(crate) mod names;
mod windows;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv6Addr;
use std::ops::Range;

use std::sync::OnceLock;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::pool::{Pool, PoolGuard};
use regex_automata::{Anchored, Input};

use detectors::{DETECTORS, Need, Valid, context_near};
use gazetteer::{Gazetteer, gazetteer};
use windows::{Anchor, Around, Window, anchor_runs, anchor_windows, searched, searched_where};

use crate::bits::{BitRuns, HIGH, ONES, ascii_digits, block_bitmap, with_block};
use crate::lazy::{LazyRegex, LazySet, WindowRegex};
use crate::profile::EntityType;
use crate::set::{NewCache, PatternSet, cache_pool, every_match_dfa, step};

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

/// The compiled detectors of [`DETECTORS`].
#[derive(Debug)]
pub(crate) struct PiiDetector {
    /// Each row's pattern, in table order, compiled when the row is first searched (never for a row cut
    /// from digit runs; for a row searched in windows, only when [`Self::in_windows`] cannot search one).
    patterns: Vec<LazyRegex>,
    /// The same expressions as lazy DFA regexes, for the rows searched in windows ([`Self::around`]),
    /// compiled when such a row is first searched.
    in_windows: Vec<WindowRegex>,
    /// Per row, `Some((min, max))` when its pattern is a plain run of ASCII digits (`[0-9]{min,max}`):
    /// its matches are cut from the text's digit runs ([`digit_run_matches`]) rather than searched for.
    digit_rows: Vec<Option<(usize, usize)>>,
    /// Per row (other than those), `Some` when every match of its pattern holds an ASCII digit: it is
    /// searched only in windows around the text's digit runs ([`anchor_windows`]).
    around: Vec<Option<Around>>,
    /// The shape covering every such row whose bytes include no ASCII letter: those rows search the
    /// windows built for it, once per text.
    numeric: Option<Around>,
    /// The patterns of the rows that search the shared digit windows, as one set (a pattern that matches
    /// nothing in every other row's place), compiled on first use: one pass over each window says which of
    /// those rows can match in it, and each row searches only those windows.
    numeric_set: LazySet,
    /// Per row, whether it is searched whatever the set pass says (cut from digit runs, or searching
    /// the shared digit windows); the set has a pattern that matches nothing in its place.
    always: Vec<bool>,
    /// The same patterns as one set, followed by one pattern per row in [`Self::gated`]: one pass says
    /// which rows can match at all and which rows' context words occur. The engine runs them in its own
    /// set, with the injection scanner's after them ([`Self::set_patterns`]), for input and output alike,
    /// so this one is compiled only when the tests' `detect` first runs.
    any: LazySet,
    /// The rows that find nothing without a context word near a match, in table order. The set's pattern
    /// `DETECTORS.len() + k` is row `gated[k]`'s context words as whole words ([`context_words_pattern`]),
    /// so the same pass that says which rows can match says which of these have a word in the text.
    gated: Vec<usize>,
    /// The same patterns as one lazy DFA reporting every pattern's matches, searched anchored, with its
    /// caches: built when the first stream needs it (only the stream guard does); `None` if it could not be.
    reach: OnceLock<Option<ReachDfa>>,
    /// First names, surnames, places and organisation suffixes, for [`names`].
    gazetteer: &'static Gazetteer,
}

/// The [`PiiDetector::reach_from`] DFA and its caches, reused from one stream to the next: a lazy DFA builds
/// its states in its cache as it meets them, so a fresh cache per stream would build them all again.
struct ReachDfa {
    dfa: DFA,
    caches: Pool<Cache, NewCache>,
}

impl ReachDfa {
    /// The detectors' patterns and [`names::SHAPE`] (where a name can start and how far it can reach) as
    /// one DFA.
    fn build() -> Option<Self> {
        let sources: Vec<&str> = DETECTORS
            .iter()
            .map(|d| d.pattern)
            .chain([names::SHAPE])
            .collect();
        let dfa = every_match_dfa(&sources).ok()?;
        Some(ReachDfa {
            caches: cache_pool(&dfa),
            dfa,
        })
    }
}

impl std::fmt::Debug for ReachDfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReachDfa")
    }
}

/// The automaton and a cache for [`PiiDetector::reach_from`], for one stream; the cache goes back to the pool
/// when dropped.
pub(crate) struct ReachCache<'a> {
    dfa: &'a DFA,
    cache: PoolGuard<'a, Cache, NewCache>,
}

/// The rows of a digit window's set pass are read as bits of a `u128` ([`crate::set::SetSearcher::mask`]).
const _: () = assert!(
    DETECTORS.len() <= 128,
    "more detector rows than bits in a window's set mask"
);

/// The shared digit windows of one text, and per window which of the rows that search them match in it
/// (bits of the detector's numeric set, found once per window that any of the rows fits).
struct DigitWindows {
    windows: Vec<Window>,
    /// Per window, the rows that match in it: every bit when the set could not be compiled (every row
    /// then searches every window it fits), none for a window too small for any row.
    rows_in: Vec<u128>,
    /// The rows that match in some window: a row outside it has nothing to search.
    rows_anywhere: u128,
}

impl DigitWindows {
    /// The windows of `text` (whose digit runs are `runs`) for `shape`, the union of the rows' shapes,
    /// and their set passes.
    fn new(text: &str, runs: &[Range<usize>], shape: &Around, set: Option<&PatternSet>) -> Self {
        // At most one window a run.
        let mut windows = Vec::with_capacity(runs.len());
        anchor_windows(text, runs, shape, &mut windows);
        let mut search = set.map(PatternSet::searcher);
        // A window the union does not fit fits none of its rows.
        let rows_in: Vec<u128> = windows
            .iter()
            .map(|w| match search.as_mut() {
                _ if !w.fits(shape) => 0,
                Some(search) => search.mask(&text[w.span.clone()]),
                None => u128::MAX,
            })
            .collect();
        DigitWindows {
            rows_anywhere: rows_in.iter().fold(0, |all, rows| all | rows),
            rows_in,
            windows,
        }
    }

    /// Appends to `spans` the spans row `row` (shaped `around`) searches: the windows that fit it and in
    /// which the set says it matches.
    fn spans(&self, row: usize, around: &Around, spans: &mut Vec<Range<usize>>) {
        let bit = 1u128 << row;
        if self.rows_anywhere & bit == 0 {
            return;
        }
        let may_match = |k: usize| self.rows_in.get(k).is_none_or(|rows| rows & bit != 0);
        searched_where(&self.windows, around, may_match, spans);
    }
}

/// A pattern that matches nothing: the set pass's place for a row it does not decide.
pub(crate) const NEVER: &str = r"[^\s\S]";

/// Bytes a phone extension (` extension 123456`) can add after a phone candidate's match.
const PHONE_EXT_MAX_BYTES: usize = 20;

/// Bytes a finding of `row` can reach past its pattern's match: a phone number takes the extension after it
/// (see [`phone_extension`]); every other row's validator keeps its finding inside the match, which
/// [`PiiDetector::detect_rows`] enforces, so the stream guard's [`PiiDetector::reach_from`] can rely on it.
fn reach_past_match(row: usize) -> usize {
    match DETECTORS.get(row) {
        Some(d) if d.entity == EntityType::Phone => PHONE_EXT_MAX_BYTES,
        _ => 0,
    }
}

/// Text after a candidate's end that settles the checks reading what follows it, even without two whole words.
const LOOKAHEAD_BYTES: usize = 64;

/// Where a candidate starting at a given place stands in the text seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// More text could still start, extend or change a value there.
    Open,
    /// Final, and no value can start there.
    Nothing,
    /// Final: a value may start there and end no later than this byte offset.
    Until(usize),
}

/// Builds a [`PiiDetector`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum DetectorError {
    #[error("gazetteers: {0}")]
    Gazetteer(String),
}

impl PiiDetector {
    pub(crate) fn new() -> Result<Self, DetectorError> {
        let sources: Vec<&str> = DETECTORS.iter().map(|d| d.pattern).collect();
        let patterns = sources.iter().map(|p| LazyRegex::new(*p)).collect();
        let in_windows = sources.iter().map(|p| WindowRegex::new(*p)).collect();
        let digit_rows: Vec<_> = sources.iter().map(|p| digit_run_shape(p)).collect();
        let around: Vec<Option<Around>> = sources
            .iter()
            .zip(&digit_rows)
            .map(|(p, digits)| digits.is_none().then(|| Around::of(p)).flatten())
            .collect();
        let numeric = Around::union(around.iter().flatten().filter(|a| a.numeric()));
        // The rows that search the shared digit windows.
        let in_digit_windows: Vec<bool> = around
            .iter()
            .map(|a| a.as_ref().is_some_and(Around::numeric))
            .collect();
        // Rows cut from digit runs or searching the shared digit windows need no set pass: where the text
        // has no place for them, they cost next to nothing.
        let always: Vec<bool> = digit_rows
            .iter()
            .zip(&in_digit_windows)
            .map(|(digits, &windowed)| digits.is_some() || windowed)
            .collect();
        // The patterns of the rows `keep` says, a pattern that matches nothing in every other row's place.
        let only = |keep: &dyn Fn(usize) -> bool| {
            sources
                .iter()
                .enumerate()
                .map(|(i, p)| if keep(i) { *p } else { NEVER })
                .collect::<Vec<_>>()
        };
        let gated: Vec<usize> = (0..DETECTORS.len()).filter(|&i| needs_context(i)).collect();
        let mut set: Vec<String> = only(&|i| !always[i])
            .into_iter()
            .map(str::to_owned)
            .collect();
        set.extend(gated.iter().map(|&i| context_words_pattern(&DETECTORS[i])));
        let any = LazySet::new(set);
        let numeric_set = LazySet::new(only(&|i| in_digit_windows[i]));
        let gazetteer = gazetteer().map_err(DetectorError::Gazetteer)?;
        Ok(PiiDetector {
            patterns,
            in_windows,
            digit_rows,
            around,
            numeric,
            numeric_set,
            always,
            any,
            reach: OnceLock::new(),
            gated,
            gazetteer,
        })
    }

    /// A cache for [`Self::reach_from`], taken from the pool for one stream; the automaton is built by the
    /// first stream. `None` when it cannot be built (its patterns are this crate's constants, which the
    /// crate's tests compile, so not in a build that passed them): the stream then holds every place.
    pub(crate) fn reach_cache(&self) -> Option<ReachCache<'_>> {
        self.reach_dfa().map(|reach| ReachCache {
            dfa: &reach.dfa,
            cache: reach.caches.get(),
        })
    }

    /// Makes every later stream run without the automaton, as when it cannot be built; false when a stream
    /// has built it already.
    #[cfg(test)]
    pub(crate) fn without_reach(&self) -> bool {
        self.reach.set(None).is_ok()
    }

    fn reach_dfa(&self) -> Option<&ReachDfa> {
        self.reach.get_or_init(ReachDfa::build).as_ref()
    }

    /// Whether a candidate starting at byte `start` of `text` (a text that may still grow) is final.
    ///
    /// `Open` when a candidate pattern could still match from `start` with more text, or when one matched
    /// and ends at or after `lookahead_from` (see [`lookahead_from`]): the checks around a candidate read
    /// the characters and the word after it. Otherwise the matches from `start` cannot change, and
    /// `Until` gives the furthest any finding from `start` can reach: a match's end, plus room for an
    /// extension when the pattern is a phone row's ([`reach_past_match`]); a run of capitalised words
    /// ([`names::SHAPE`]) bounds its findings itself. A DFA error, or no automaton or cache, counts as
    /// `Open`, which holds text back rather than release it.
    pub(crate) fn reach_from(
        &self,
        cache: Option<&mut ReachCache<'_>>,
        text: &str,
        start: usize,
        lookahead_from: usize,
    ) -> Reach {
        let Some(ReachCache { dfa: reach, cache }) = cache else {
            return Reach::Open;
        };
        let cache: &mut Cache = cache;
        let input = Input::new(text).range(start..).anchored(Anchored::Yes);
        let Ok(mut state) = reach.start_state_forward(cache, &input) else {
            return Reach::Open;
        };
        let mut furthest = None;
        let bytes = text.as_bytes();
        let mut next = start;
        while next < bytes.len() {
            let Ok(stepped) = step(reach, cache, state, bytes, next) else {
                return Reach::Open;
            };
            (state, next) = stepped;
            // The byte just stepped.
            let at = next - 1;
            if state.is_tagged() {
                if state.is_dead() {
                    return match furthest {
                        None => Reach::Nothing,
                        Some(end) => Reach::Until(end),
                    };
                }
                if state.is_quit() {
                    return Reach::Open;
                }
                // Matches are reported one byte late: this state says a match ended just before `at`.
                if state.is_match() {
                    let mut past = 0;
                    let mut rows = 0;
                    for i in 0..reach.match_len(cache, state) {
                        let pattern = reach.match_pattern(cache, state, i).as_usize();
                        past = past.max(reach_past_match(pattern));
                        rows += usize::from(pattern < DETECTORS.len());
                    }
                    // A row's checks read up to two words after its match; a run of capitalised words is
                    // read up to the next word only (see `names`).
                    let settled =
                        at < lookahead_from || (rows == 0 && names::next_word_settled(text, at));
                    if !settled {
                        return Reach::Open;
                    }
                    furthest = Some(furthest.map_or(at + past, |f: usize| f.max(at + past)));
                }
            }
        }
        Reach::Open
    }

    /// Every entity in `text`, non-overlapping, sorted by start.
    ///
    /// One set pass says which rows can match (but those cut from digit runs or searching the shared
    /// digit windows, which are always searched); only those are searched, and each match goes through
    /// its row's validator and context words.
    /// If the set cannot be compiled, every row is searched: the set only spares the rows that cannot
    /// match.
    #[cfg(test)]
    pub(crate) fn detect(&self, text: &str) -> Vec<Finding> {
        match self.any.matches(text) {
            Some(on) => self.detect_rows(text, on.iter()),
            None => self.detect_rows(text, 0..self.any.patterns().len()),
        }
    }

    /// The patterns of the PII set pass: the rows' in table order (a row the pass does not decide
    /// has a pattern that matches nothing), then the context words of each [`Self::gated`] row, for a
    /// caller that runs them in a set of its own (with other patterns after them) and passes what matched
    /// to [`Self::detect_rows`].
    pub(crate) fn set_patterns(&self) -> impl Iterator<Item = &str> {
        self.any.patterns().iter().map(String::as_str)
    }

    /// The findings of every row in `text`, with `on` the patterns of [`Self::set_patterns`] that match
    /// somewhere in `text`, ascending (what the set pass over them found; every one of them when it could
    /// not run).
    pub(crate) fn detect_rows(&self, text: &str, on: impl Iterator<Item = usize>) -> Vec<Finding> {
        // Room for what a prompt usually holds, so the buffers below rarely grow.
        let mut found = Vec::with_capacity(16);
        // The rows the set pass found and those it does not decide, in table order; and the rows that
        // find nothing without a context word near a match whose words occur somewhere in the text.
        let mut rows = vec![false; DETECTORS.len()];
        let mut with_words = vec![false; DETECTORS.len()];
        for i in on {
            match i.checked_sub(DETECTORS.len()) {
                None => rows[i] = true,
                Some(k) => {
                    if let Some(&row) = self.gated.get(k) {
                        with_words[row] = true;
                    }
                }
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            *row |= self.always[i];
        }
        // The text's runs of ASCII digits, found once for every row that is such a run.
        let mut digit_runs: Option<Vec<Range<usize>>> = None;
        let mut candidates: Vec<Range<usize>> = Vec::with_capacity(64);
        // The shared digit windows, built when a row first needs them.
        let mut digit_windows: Option<DigitWindows> = None;
        let mut own_windows: Vec<Window> = Vec::with_capacity(64);
        let mut spans: Vec<Range<usize>> = Vec::with_capacity(64);
        for i in (0..rows.len()).filter(|&i| rows[i]) {
            let row = &DETECTORS[i];
            if needs_context(i) {
                let mut no_digits = || {
                    digit_runs
                        .get_or_insert_with(|| ascii_digit_runs(text))
                        .is_empty()
                };
                if (self.always[i] && no_digits()) || !with_words[i] {
                    continue;
                }
            }
            candidates.clear();
            if let Some(shape) = self.digit_rows[i] {
                let runs = digit_runs.get_or_insert_with(|| ascii_digit_runs(text));
                digit_run_matches(runs, shape, &mut candidates);
            } else {
                // Whether the row's expression could be searched where it had to be.
                let mut searched_all = true;
                match &self.around[i] {
                    Some(around) => {
                        spans.clear();
                        match &self.numeric {
                            Some(numeric) if around.numeric() => {
                                let runs = digit_runs.get_or_insert_with(|| ascii_digit_runs(text));
                                digit_windows
                                    .get_or_insert_with(|| {
                                        let set = self.numeric_set.compiled();
                                        DigitWindows::new(text, runs, numeric, set)
                                    })
                                    .spans(i, around, &mut spans);
                            }
                            _ => {
                                own_windows.clear();
                                match around.anchor() {
                                    Anchor::Digits => {
                                        let runs = digit_runs
                                            .get_or_insert_with(|| ascii_digit_runs(text));
                                        anchor_windows(text, runs, around, &mut own_windows);
                                    }
                                    anchor => {
                                        let runs = anchor_runs(text, anchor);
                                        anchor_windows(text, &runs, around, &mut own_windows);
                                    }
                                }
                                searched(&own_windows, around, &mut spans);
                            }
                        }
                        for w in &spans {
                            if self.in_windows[i].find_in(text, w.clone(), &mut candidates) {
                                continue;
                            }
                            // The lazy DFA could not search this window: the `regex` crate does.
                            let Ok(pattern) = self.patterns[i].get() else {
                                searched_all = false;
                                break;
                            };
                            candidates.extend(
                                pattern
                                    .find_iter(&text[w.clone()])
                                    .map(|m| w.start + m.start()..w.start + m.end()),
                            );
                        }
                    }
                    None => match self.patterns[i].get() {
                        Ok(pattern) => {
                            candidates.extend(pattern.find_iter(text).map(|m| m.range()))
                        }
                        Err(_) => searched_all = false,
                    },
                }
                // A row whose expression cannot be compiled fails closed: the whole text is its entity.
                if !searched_all {
                    found.push(Finding {
                        entity: row.entity,
                        span: 0..text.len(),
                        confidence: 1.0,
                    });
                    continue;
                }
            }
            for m in candidates.drain(..) {
                let match_end = m.end;
                let valid = match row.validate {
                    Some(check) => check(text, m),
                    None => Valid::at(m),
                };
                let Some(mut valid) = valid else { continue };
                // A finding reaches no further past its match than the stream guard allows for
                // (`reach_past_match`): a validator that went further would let a stream release text the
                // whole-answer check redacts. None does; the bound makes it so by construction.
                let limit = match_end + reach_past_match(i);
                debug_assert!(valid.span.end <= limit, "row {i} reached past its match");
                valid.span.end = valid.span.end.min(limit);
                valid.span.start = valid.span.start.min(valid.span.end);
                let mut confidence = valid.confidence.unwrap_or(row.confidence);
                if let Some(context) = &row.context {
                    let near = context_near(text, valid.span.clone(), context);
                    match context.need {
                        Need::Required if !near => continue,
                        Need::Boost(by) if near => confidence = (confidence + by).min(1.0),
                        _ => {}
                    }
                }
                found.push(Finding {
                    entity: row.entity,
                    span: valid.span,
                    confidence,
                });
            }
        }
        names::detect(text, self.gazetteer, &mut found);
        resolve_overlaps(found)
    }
}

/// Whether row `i` finds nothing without one of its context words (or the words its validator reads) near
/// a match.
fn needs_context(i: usize) -> bool {
    DETECTORS
        .get(i)
        .is_some_and(|row| row.gate_words().is_some())
}

/// The set pass's pattern for `row`'s context words ([`detectors::Detector::gate_words`]): any of them as a
/// whole word, ASCII case ignored.
///
/// [`context_near`] counts a word only as a whole run of alphanumeric characters of the text: it skips a
/// word its window's start cuts, and every row that needs a context word rejects a match glued to a letter
/// or digit, so the words right before and after the match are whole too. The loose phone row's
/// [`phone_context`] reads whole words the same way ([`words_before`], [`next_word`] after a separator, and
/// a candidate glued to a letter is rejected before its context is read). Such a word is at the start of
/// the text or after a character that is not an ASCII letter or digit, and at the end or before one. The
/// pattern asks exactly that, so it matches wherever a word could be found, and in a few more places
/// (beside a letter of another script, which [`context_near`] would count as part of the word). As a
/// substring, a common word would be found inside many others (`age` in `message`, `turn` in `return`),
/// and a one-letter word (`y` for ages, `b` and `d` for dates of birth) in nearly every text.
fn context_words_pattern(row: &detectors::Detector) -> String {
    let words: Vec<String> = row
        .gate_words()
        .unwrap_or_default()
        .iter()
        .map(|w| regex_syntax::escape(w))
        .collect();
    format!(
        "(?:^|[^0-9A-Za-z])(?i-u:{})(?:[^0-9A-Za-z]|$)",
        words.join("|")
    )
}

/// `Some((min, max))` when `pattern` is exactly `[0-9]{min,max}` (or `[0-9]{n}`): a run of ASCII digits.
fn digit_run_shape(pattern: &str) -> Option<(usize, usize)> {
    let counts = pattern.strip_prefix("[0-9]{")?.strip_suffix('}')?;
    let (min, max) = match counts.split_once(',') {
        Some((min, max)) => (min.parse().ok()?, max.parse().ok()?),
        None => {
            let n = counts.parse().ok()?;
            (n, n)
        }
    };
    (1 <= min && min <= max).then_some((min, max))
}

/// The maximal runs of ASCII digits in `text`, in order: runs of ones in a bitmap of the text's digits
/// ([`BitRuns`]).
fn ascii_digit_runs(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    // Room for a run every 16 bytes (a log line or a table holds about that many), up to 4,096 runs.
    let mut runs = Vec::with_capacity((bytes.len() / 16).min(4096));
    runs.extend(BitRuns::new(bytes.len(), |base| {
        with_block(bytes, base, |block| block_bitmap(block, ascii_digits).0)
    }));
    runs
}

/// The high bit of each byte of `word` (eight ASCII bytes) that is an ASCII capital. Each byte plus `0x3F`
/// reaches `0x80` from `A` up, plus `0x25` from `[` up, and no sum carries into the next byte.
pub(crate) fn ascii_capitals(word: u64) -> u64 {
    let from_a = word + ONES * u64::from(0x80 - b'A');
    let from_after_z = word + ONES * u64::from(0x80 - b'[');
    from_a & !from_after_z & HIGH
}

/// The matches `[0-9]{min,max}` finds, left to right, in a text whose digit runs are `runs`: a match never
/// crosses the end of a run, and within a run of `n` digits the leftmost-first search takes `max` digits
/// at a time from its start while at least `min` are left (greedy, resuming where the last match ended).
fn digit_run_matches(
    runs: &[Range<usize>],
    (min, max): (usize, usize),
    out: &mut Vec<Range<usize>>,
) {
    for run in runs {
        let mut at = run.start;
        while run.end - at >= min {
            let end = at + max.min(run.end - at);
            out.push(at..end);
            at = end;
        }
    }
}

// === the existing types' validators, as table rows call them ===

/// Not preceded or followed by a letter or digit.
pub(crate) fn word_bounded(text: &str, span: Range<usize>) -> Option<Valid> {
    (!alnum_before(text, span.start) && !alnum_after(text, span.end)).then_some(())?;
    Valid::at(span)
}

pub(crate) fn email_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    (email_ok(&text[span.clone()]) && !word_char_before(text, span.start)).then_some(())?;
    Valid::at(span)
}

/// A phone extension (`x1234`, ` ext. 12`) right after a number.
fn phone_extension(after: &str) -> usize {
    let b = after.as_bytes();
    let mut i = usize::from(b.first() == Some(&b' '));
    let rest = &after[i..];
    let label = ["extension", "ext.", "ext", "x"]
        .into_iter()
        .find(|l| rest.starts_with(l));
    let Some(label) = label else { return 0 };
    i += label.len();
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let digits = b[i.min(b.len())..]
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 { 0 } else { i + digits }
}

/// The checks every phone row shares: digit count, boundaries, the separator shape (`strict`) and a phone
/// word next to it (`context`); an extension belongs to the number.
fn phone_checked(
    text: &str,
    span: Range<usize>,
    (min, max): (usize, usize),
    strict: bool,
    context: bool,
) -> Option<Valid> {
    let digits = text[span.clone()]
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    let end = span.end + phone_extension(&text[span.end..]);
    let ok = (min..=max).contains(&digits)
        && !alnum_before(text, span.start)
        && !alnum_after(text, end)
        && (!strict || phone_shape_ok(text, span.clone()))
        && (!context || phone_context(text, span.start..end));
    ok.then_some(())?;
    Valid::at(span.start..end)
}

pub(crate) fn phone_intl(text: &str, span: Range<usize>) -> Option<Valid> {
    phone_checked(text, span, (7, 15), false, false)
}

pub(crate) fn phone_us(text: &str, span: Range<usize>) -> Option<Valid> {
    phone_checked(text, span, (10, 14), false, false)
}

pub(crate) fn phone_uk(text: &str, span: Range<usize>) -> Option<Valid> {
    phone_checked(text, span, (10, 11), false, false)
}

/// A national number with a trunk `0`: 8 to 12 digits (Bulgaria's `02 143 640`, Germany's
/// `01522 2340298`), of the separator shape [`phone_shape_ok`] allows. Eight digits holding a year are a date
/// (`05.01.2024`, `01 12 2023`); digits right after a number and a colon are the rest of a time
/// (`19:18:01.314329`).
pub(crate) fn phone_national(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let dated = digits == 8
        && s.split(|c: char| !c.is_ascii_digit())
            .any(detectors::year_like);
    let timed = text[..span.start]
        .strip_suffix(':')
        .is_some_and(|head| head.ends_with(|c: char| c.is_ascii_digit()));
    (!dated && !timed).then_some(())?;
    phone_checked(text, span, (8, 12), true, false)
}

pub(crate) fn phone_loose(text: &str, span: Range<usize>) -> Option<Valid> {
    phone_checked(text, span, (6, 12), true, true)
}

pub(crate) fn card_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let span = card_within(text, span)?;
    (!reference_context(text, span.start)).then_some(())?;
    Valid::at(span)
}

pub(crate) fn ssn_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let ok = ssn_ok(&text[span.clone()])
        && !alnum_before(text, span.start)
        && !text[..span.start].ends_with('-')
        && !alnum_after(text, span.end);
    ok.then_some(())?;
    Valid::at(span)
}

pub(crate) fn iban_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    if alnum_before(text, span.start) {
        return None;
    }
    let (span, known_country) = iban_within(text, span)?;
    Some(Valid {
        span,
        confidence: (!known_country).then_some(0.8),
    })
}

pub(crate) fn secret_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let candidate = &text[span.clone()];
    let ok = candidate.len() == 40
        && !text[span.end..].starts_with('=')
        && secret_shape(candidate)
        && secret_context(text, span.start);
    ok.then_some(())?;
    Valid::at(span)
}

pub(crate) fn ipv4_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let after = &text[span.end..];
    let dotted_more =
        after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit());
    let ok = ipv4_ok(&text[span.clone()])
        && !alnum_before(text, span.start)
        && !text[..span.start].ends_with('.')
        && !alnum_after(text, span.end)
        && !dotted_more
        && !version_like(text, span.clone());
    ok.then_some(())?;
    Valid::at(span)
}

pub(crate) fn ipv6_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let before_ok = !alnum_before(text, span.start) && !text[..span.start].ends_with([':', '.']);
    let after_ok = !alnum_after(text, span.end) && !text[span.end..].starts_with(':');
    (before_ok && after_ok && ipv6_ok(&text[span.clone()])).then_some(())?;
    Valid::at(span)
}

pub(crate) fn token_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    (!alnum_before(text, span.start) && token_shape(&text[span.clone()])).then_some(())?;
    Valid::at(span)
}

/// The offset from which a candidate's end is too close to the end of a growing `text` for the checks that
/// read after it: an end before it has two whole words after it (an extension like ` ext 12` and the word
/// a context check reads both end there) or [`LOOKAHEAD_BYTES`] of text.
pub(crate) fn lookahead_from(text: &str) -> usize {
    // Read from the end: the last two ends of alphanumeric runs followed by another character, and no
    // further back than the last `LOOKAHEAD_BYTES` (an end before that gives the same answer). A growing
    // answer is checked after every piece, so this stays the same cost however long the text grows.
    let floor = text.len().saturating_sub(LOOKAHEAD_BYTES);
    let mut found = 0;
    // Where the character to the right of the one read starts, when it is not alphanumeric.
    let mut after: Option<usize> = None;
    for (i, c) in text.char_indices().rev() {
        if c.is_alphanumeric() {
            if let Some(end) = after {
                found += 1;
                if found == 2 {
                    return end.max(floor);
                }
            }
            after = None;
        } else {
            after = Some(i);
        }
        if i <= floor {
            break;
        }
    }
    floor
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

pub(crate) fn alnum_before(text: &str, at: usize) -> bool {
    char_before(text, at).is_some_and(char::is_alphanumeric)
}

pub(crate) fn alnum_after(text: &str, at: usize) -> bool {
    char_after(text, at).is_some_and(char::is_alphanumeric)
}

fn word_char_before(text: &str, at: usize) -> bool {
    char_before(text, at).is_some_and(|c| c.is_alphanumeric() || c == '_')
}

// === validators ===

fn email_ok(candidate: &str) -> bool {
    let Some((local, domain)) = candidate.rsplit_once('@') else {
        return false;
    };
    // `icon@2x.png`: a high-density image asset name, not an address.
    let (first, tld) = (
        domain.split('.').next().unwrap_or(""),
        domain.rsplit('.').next().unwrap_or(""),
    );
    let scale = first.len() > 1
        && first.ends_with(['x', 'X'])
        && first[..first.len() - 1].bytes().all(|b| b.is_ascii_digit());
    let image = ["png", "jpg", "jpeg", "gif", "svg", "webp", "avif"]
        .iter()
        .any(|ext| tld.eq_ignore_ascii_case(ext));
    if scale && image {
        return false;
    }
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
    /// Most groups a card number is written in (19 digits, each its own group).
    const MOST_GROUPS: usize = 19;
    let bytes = text.as_bytes();
    // (byte offset of the group's first digit, byte offset after its last digit), on the stack: a run of
    // more groups is no card.
    let mut groups = [(0usize, 0usize); MOST_GROUPS];
    let mut len = 0;
    let mut start = run.start;
    for i in run.clone() {
        if !bytes[i].is_ascii_digit() {
            *groups.get_mut(len)? = (start, i);
            len += 1;
            start = i + 1;
        }
    }
    *groups.get_mut(len)? = (start, run.end);
    let groups = &groups[..=len];
    let mut best: Option<(usize, Range<usize>)> = None;
    for first in 0..groups.len() {
        // A group is digits only, so a sub-run's digits are its groups' bytes.
        let mut count = 0;
        for last in first..groups.len() {
            count += groups[last].1 - groups[last].0;
            // Longer sub-runs from the same group hold more digits still.
            if count > 19 {
                break;
            }
            if count < 13 {
                continue;
            }
            let (a, b) = (groups[first].0, groups[last].1);
            let mut digits = [0u8; 19];
            for (to, &from) in digits
                .iter_mut()
                .zip(bytes[a..b].iter().filter(|d| d.is_ascii_digit()))
            {
                *to = from;
            }
            let digits = &digits[..count];
            // Written in a card grouping, a Luhn-valid number is a card whatever its issuer range.
            let grouped = last > first;
            if !(grouped || card_network_ok(digits))
                || !card_layout_ok(text, &groups[first..=last])
                || !luhn_ok(digits)
            {
                continue;
            }
            // A `-` or `.` joining the run to more digits or letters makes it part of a larger number or
            // identifier (a UUID, an order number, a version); a space does not.
            let joined_before = text[..a].ends_with(['-', '.']) && alnum_before(text, a - 1);
            let joined_after = text[b..].starts_with(['-', '.']) && alnum_after(text, b + 1);
            let before_ok = !alnum_before(text, a) && !joined_before;
            let after_ok = !alnum_after(text, b) && !joined_after;
            if before_ok && after_ok && best.as_ref().is_none_or(|(n, _)| digits.len() > *n) {
                best = Some((digits.len(), a..b));
            }
        }
    }
    best.map(|(_, span)| span)
}

/// The issuer ranges and lengths of the card networks (Visa, Mastercard, Amex, Diners, JCB, Discover,
/// UnionPay, Maestro, Mir; 12-digit Maestro numbers are not matched). A run of digits outside them is an account, order or reference number.
fn card_network_ok(digits: &[u8]) -> bool {
    let prefix = |n: usize| -> u32 {
        digits
            .iter()
            .take(n)
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let len = digits.len();
    match digits[0] {
        // Legacy 15-digit JCB.
        b'1' => len == 15 && prefix(4) == 1800,
        b'4' => matches!(len, 13 | 16 | 19),
        b'2' => {
            (len == 16 && matches!(prefix(4), 2200..=2204 | 2221..=2720))
                || (len == 15 && prefix(4) == 2131)
        }
        b'3' => match prefix(2) {
            34 | 37 => len == 15,
            30 | 36 | 38 | 39 => (14..=19).contains(&len),
            35 => (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&len),
            _ => false,
        },
        b'5' => match prefix(2) {
            51..=55 => len == 16,
            50 | 56..=59 => (13..=19).contains(&len),
            _ => false,
        },
        b'6' => (13..=19).contains(&len),
        _ => false,
    }
}

/// Card numbers are written unbroken or in the networks' groupings: fours (the last group may be shorter),
/// 4-6-5 (Amex) or 4-6-4 (Diners), with one kind of separator throughout. Other groupings (3-7-7 order
/// numbers, the 8-4-4 head of a UUID) are not cards.
fn card_layout_ok(text: &str, groups: &[(usize, usize)]) -> bool {
    let n = groups.len();
    if n <= 1 {
        return true;
    }
    let mut separators = groups.windows(2).filter_map(|w| text.get(w[0].1..w[1].0));
    if let Some(first) = separators.next()
        && separators.any(|s| s != first)
    {
        return false;
    }
    let len = |k: usize| groups[k].1 - groups[k].0;
    let fours = (0..n - 1).all(|k| len(k) == 4) && (1..=4).contains(&len(n - 1));
    let five_tail = n == 5 && (0..4).all(|k| len(k) == 4) && len(4) == 3;
    let amex_or_diners = n == 3 && len(0) == 4 && len(1) == 6 && matches!(len(2), 4 | 5);
    fours || five_tail || amex_or_diners
}

/// Words that say a number is a telephone number: calling and messaging words, and the labels of a
/// signature block's lines (`Desk:`, `Mob:`; not `Direct:`, which is as often a direct debit). Without one of
/// them in the text the loose phone row finds nothing ([`phone_context`]), so the set pass skips that row
/// when none occurs.
#[rustfmt::skip]
pub(crate) const PHONE_WORDS: &[&str] = &[
    "phone", "phones", "telephone", "tel", "call", "calls", "called", "calling", "mobile", "cell",
    "cellphone", "fax", "office", "home", "whatsapp", "sms", "text", "ring", "dial", "reach",
    "contact", "landline", "hotline", "helpline", "ext", "extension", "phoned",
    "message", "messages", "messaging", "texts", "texted", "texting", "mms", "voicemail", "pager",
    "telegram", "viber", "desk", "switchboard", "mob", "tlf", "telefon", "telefono",
];

/// Words that say a number is a telephone number only after one of [`PHONE_WORDS`] ("phone number",
/// "tel no").
const PHONE_NUMBER_WORDS: &[&str] = &["number", "no"];

/// One kind of separator throughout (`05.01.2024 12` is a date and an hour, not a number), and not joined
/// by `-` or `.` to more letters or digits (a UUID or reference fragment).
fn phone_shape_ok(text: &str, span: Range<usize>) -> bool {
    let candidate = &text[span.clone()];
    // An area code in parentheses may be followed by its own separator: "(82) 871-235"; so may a trunk-`0`
    // area code and a hyphen, as Sweden writes its numbers: "070-431 80 78", "08-11 23 41".
    let body = match candidate.rsplit_once(')') {
        Some((_, rest)) => rest.trim_start_matches([' ', '.', '-']),
        None => match candidate.split_once('-') {
            Some((area, rest))
                if (2..=4).contains(&area.len())
                    && area.starts_with('0')
                    && area.bytes().all(|b| b.is_ascii_digit())
                    && rest.contains(' ') =>
            {
                rest
            }
            _ => candidate,
        },
    };
    let mut separators = body
        .chars()
        .filter(|c| !c.is_ascii_digit() && !matches!(c, '(' | ')'));
    let consistent = match separators.next() {
        Some(first) => separators.all(|c| c == first),
        None => true,
    };
    let before = &text[..span.start];
    let after = &text[span.end..];
    let joined_before = before.ends_with(['-', '.', '/']) && alnum_before(text, span.start - 1);
    // A label may follow a dash ("0480-7814618-Office"); more digits may not.
    let joined_after = after.starts_with(['-', '.', '/'])
        && char_after(text, span.end + 1).is_some_and(|c| c.is_ascii_digit());
    consistent && !joined_before && !joined_after
}

/// A phone word in the few words before `span` (see [`words_before`]) or right after it (`... 661 office`),
/// and no reference word (`order`, `invoice`, ...) closer to it.
pub(crate) fn phone_context(text: &str, span: Range<usize>) -> bool {
    let next =
        next_word(text[span.end..].trim_start_matches([' ', '\t', ')', ']', '-', ',', ':', '(']));
    let named_phone = |w: &str| !listed(PHONE_NUMBER_WORDS, w);
    if word_lists(next) & IN_PHONE != 0 && named_phone(next) {
        return true;
    }
    // A form label may stand on the line before: "Phone:\n(02) 4958 3734". The nearest listed word decides;
    // "number" and "no" count only after a phone word ("phone number", "tel no").
    let (mut last, mut named) = (None, false);
    for w in words_before(text, span.start, false) {
        let lists = word_lists(w);
        if lists & IN_PHONE != 0 {
            last = Some(true);
            named |= named_phone(w);
        } else if lists & (IN_REFERENCE | IN_CARD) != 0 {
            last = Some(false);
        }
    }
    last == Some(true) && named
}

/// Whether `word` is in `list` (lower-case ASCII words), ASCII letters compared without case.
pub(crate) fn listed(list: &[&str], word: &str) -> bool {
    list.iter().any(|l| word.eq_ignore_ascii_case(l))
}

/// [`word_lists`]' bit for [`PHONE_WORDS`] and [`PHONE_NUMBER_WORDS`].
const IN_PHONE: u8 = 1;
/// [`word_lists`]' bit for [`REFERENCE_WORDS`].
const IN_REFERENCE: u8 = 2;
/// [`word_lists`]' bit for [`CARD_WORDS`].
const IN_CARD: u8 = 4;
/// [`word_lists`]' bit for [`VERSION_WORDS`].
const IN_VERSION: u8 = 8;
/// [`word_lists`]' bit for [`NETWORK_WORDS`].
const IN_NETWORK: u8 = 16;
/// [`word_lists`]' bit for [`detectors::UNIT_WORDS`].
const IN_UNIT: u8 = 32;

/// Whether `word` is one of [`detectors::UNIT_WORDS`] (ASCII letters compared without case).
pub(crate) fn unit_word(word: &str) -> bool {
    word_lists(word) & IN_UNIT != 0
}

/// The word lists the phone, card-reference, version and amount checks read, with their bits.
const WORD_LISTS: [(&[&str], u8); 7] = [
    (PHONE_WORDS, IN_PHONE),
    (PHONE_NUMBER_WORDS, IN_PHONE),
    (REFERENCE_WORDS, IN_REFERENCE),
    (CARD_WORDS, IN_CARD),
    (VERSION_WORDS, IN_VERSION),
    (NETWORK_WORDS, IN_NETWORK),
    (detectors::UNIT_WORDS, IN_UNIT),
];

/// Longest word of [`WORD_LISTS`], in bytes, and of any [`ShortWords`]: its packing keeps the 16th byte for
/// the length.
const LONGEST_LISTED: usize = 15;

/// Which of [`WORD_LISTS`] hold `word` (ASCII letters compared without case, as [`listed`] does), as
/// their bits: one lookup for every list.
fn word_lists(word: &str) -> u8 {
    static BITS: OnceLock<ShortWords<u8>> = OnceLock::new();
    BITS.get_or_init(|| {
        let mut bits = ShortWords::default();
        for (list, bit) in WORD_LISTS {
            for word in list {
                if let Some(bits) = bits.entry(word) {
                    *bits |= bit;
                }
            }
        }
        bits
    })
    .get(word)
    .unwrap_or(0)
}

/// A map from short ASCII words (up to [`LONGEST_LISTED`] bytes) to values, looked up with ASCII case
/// ignored and without an allocation: a word is lowercased and packed into a `u128`, which is hashed with
/// one multiplication.
#[derive(Debug)]
pub(crate) struct ShortWords<V>(HashMap<u128, V, BuildHasherDefault<PackedHasher>>);

impl<V> Default for ShortWords<V> {
    fn default() -> Self {
        ShortWords(HashMap::default())
    }
}

impl<V: Copy + Default> ShortWords<V> {
    /// The entry of `word`; `None` when it is not ASCII or is longer than [`LONGEST_LISTED`] bytes (the
    /// tests check that every listed word has one).
    pub(crate) fn entry(&mut self, word: &str) -> Option<&mut V> {
        Some(self.0.entry(packed_lower(word)?).or_default())
    }

    /// The value of `word`, ASCII case ignored; `None` for a word not in the map (every word that is not
    /// ASCII or is longer than [`LONGEST_LISTED`] bytes).
    pub(crate) fn get(&self, word: &str) -> Option<V> {
        self.0.get(&packed_lower(word)?).copied()
    }
}

/// `word` lowercased (ASCII) and packed little-endian into a `u128`, zero-padded, its length in the last
/// byte (so that a word ending in zero bytes is not another word): `None` when it is not ASCII or is
/// longer than [`LONGEST_LISTED`] bytes.
fn packed_lower(word: &str) -> Option<u128> {
    let len = word.len();
    if len > LONGEST_LISTED {
        return None;
    }
    let (low, high) = packed_le(word.as_bytes());
    if (low | high) & HIGH != 0 {
        return None;
    }
    // Capitals to lower case (`A` + 0x20 is `a`); the length in the last byte, which no word reaches.
    let low = low | (ascii_capitals(low) >> 2);
    let high = (high | (ascii_capitals(high) >> 2)) | (len as u64) << 56;
    Some(u128::from(low) | u128::from(high) << 64)
}

/// `bytes` (at most 16) read little-endian into two `u64`s, zero-padded: loads from both ends that overlap
/// where the bytes are fewer (the shared bytes agree, so OR-ing them is exact), with no copy through memory
/// (a copy into a buffer read back as integers stalls on the store).
pub(crate) fn packed_le(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
    };
    match len {
        1..=3 => {
            let middle = u64::from(bytes[len / 2]) << (8 * (len / 2));
            let last = u64::from(bytes[len - 1]) << (8 * (len - 1));
            (u64::from(bytes[0]) | middle | last, 0)
        }
        4..=7 => (u32_at(0) | u32_at(len - 4) << (8 * (len - 4)), 0),
        8 => (u64_at(0), 0),
        9..=16 => (u64_at(0), u64_at(len - 8) >> (8 * (16 - len))),
        // Empty, or longer than callers pass.
        _ => (0, 0),
    }
}

/// The hasher of [`ShortWords`]' packed words: the two halves folded and multiplied once.
#[derive(Debug, Default)]
pub(crate) struct PackedHasher(u64);

impl Hasher for PackedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, value: u128) {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the two halves of a u128, taken apart on purpose"
        )]
        let (low, high) = (value as u64, (value >> 64) as u64);
        let h = (low ^ high.rotate_left(29) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The table indexes by the low bits and tags by the high: fold the product's high half down.
        self.0 = h ^ (h >> 29);
    }
}

/// The word `text` starts with: its leading alphanumeric characters.
pub(crate) fn next_word(text: &str) -> &str {
    // Up to the first byte that is not an ASCII letter or digit; a character from U+0080 up is decoded
    // there and decides whether the word goes on.
    let ascii = text
        .bytes()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(text.len());
    if text.as_bytes().get(ascii).is_none_or(u8::is_ascii) {
        return &text[..ascii];
    }
    let end = text[ascii..]
        .char_indices()
        .find(|(_, c)| !c.is_alphanumeric())
        .map_or(text.len(), |(i, _)| ascii + i);
    &text[..end]
}

/// Words that say a number is a card (they win over reference words).
#[rustfmt::skip]
pub(crate) const CARD_WORDS: &[&str] = &[
    "card", "cards", "cc", "ccn", "pan", "visa", "mastercard", "amex", "discover", "maestro", "jcb",
    "diners", "unionpay", "credit", "debit", "payment", "pay", "paid", "cardholder",
];

/// Words that say a number is a reference of some kind, not a card.
#[rustfmt::skip]
const REFERENCE_WORDS: &[&str] = &[
    "order", "orders", "invoice", "inv", "receipt", "tracking", "shipment", "parcel", "consignment",
    "awb", "reference", "ref", "ticket", "case", "booking", "confirmation", "reservation",
    "transaction", "txn", "po", "sku", "serial", "isbn", "ean", "upc", "gtin", "imei", "claim",
    "id",
];

/// Words that say a dotted quad is a version.
#[rustfmt::skip]
const VERSION_WORDS: &[&str] = &[
    "version", "versions", "ver", "v", "release", "released", "releases", "build", "builds",
    "firmware", "fw", "patch", "patched", "revision", "rev", "assembly", "fileversion",
    "productversion", "sdk", "bios", "kernel", "upgrade", "upgraded", "upgrades", "upgrading",
    "update", "updated", "updates", "updating", "downgrade", "downgraded", "install", "installed",
    "installing", "bump", "bumped", "pin", "pinned", "changelog", "hotfix", "tag", "tagged",
];

/// Words that say a dotted quad is an address.
#[rustfmt::skip]
const NETWORK_WORDS: &[&str] = &[
    "ip", "ips", "ipv4", "ipaddress", "address", "addr", "host", "hostname", "server", "dns",
    "nameserver", "resolver", "gateway", "gw", "subnet", "netmask", "route", "router", "ping",
    "connect", "connected", "connecting", "proxy", "endpoint", "client", "peer", "remote", "src",
    "source", "dst", "destination", "origin", "listen", "listening", "bind", "firewall", "allow",
    "deny", "allowlist", "whitelist", "blocklist", "blacklist", "ssh", "http", "https", "tcp",
    "udp", "port", "inet", "lan", "wan", "vpn", "nat", "node", "machine", "device", "login",
    "logged",
];

/// Bytes of text before a candidate searched for context words.
const CONTEXT_WINDOW: usize = 40;

/// The words just before `at` (at most [`CONTEXT_WINDOW`] bytes, on the same line when `same_line`, after
/// the last digit so an earlier number's label does not carry over), in order; compare them with
/// [`listed`]. Only the text's own words: a run of alphanumeric characters the window's start or its last
/// digit cuts (`phone` of `microphone`, `tel` of `5tel`) is not one, as in [`detectors::context_near`]; the
/// set pass, which skips the loose phone row when no phone word occurs in the text, asks for whole words.
fn words_before(text: &str, at: usize, same_line: bool) -> impl DoubleEndedIterator<Item = &str> {
    let mut from = at.saturating_sub(CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let mut window = &text[from..at];
    if same_line && let Some(i) = window.rfind('\n') {
        window = &window[i + 1..];
    }
    // An ASCII digit is a character of its own, so its byte is where it starts.
    if let Some(i) = window.bytes().rposition(|b| b.is_ascii_digit()) {
        window = &window[i + 1..];
    }
    let start = at - window.len();
    if alnum_before(text, start) {
        window = window
            .find(|c: char| !c.is_alphanumeric())
            .map_or("", |i| &window[i..]);
    }
    // An ASCII window is read a byte at a time: there `char::is_alphanumeric` is ASCII's, so the words
    // are the same.
    let words = if window.is_ascii() {
        WordsOf::Ascii {
            window,
            front: 0,
            back: window.len(),
        }
    } else {
        WordsOf::Chars(window.split(|c: char| !c.is_alphanumeric()))
    };
    words.filter(|w| !w.is_empty())
}

/// The words of [`words_before`]'s window, from either end.
enum WordsOf<'t> {
    /// An ASCII window, and the part of it not yet read.
    Ascii {
        window: &'t str,
        front: usize,
        back: usize,
    },
    /// Any other window, split by `char::is_alphanumeric` (with empty pieces).
    Chars(std::str::Split<'t, fn(char) -> bool>),
}

impl<'t> Iterator for WordsOf<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        match self {
            WordsOf::Ascii {
                window,
                front,
                back,
            } => {
                let bytes = window.as_bytes();
                while *front < *back && !bytes[*front].is_ascii_alphanumeric() {
                    *front += 1;
                }
                let start = *front;
                while *front < *back && bytes[*front].is_ascii_alphanumeric() {
                    *front += 1;
                }
                (start < *front).then(|| &window[start..*front])
            }
            WordsOf::Chars(split) => split.next(),
        }
    }
}

impl DoubleEndedIterator for WordsOf<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            WordsOf::Ascii {
                window,
                front,
                back,
            } => {
                let bytes = window.as_bytes();
                while *back > *front && !bytes[*back - 1].is_ascii_alphanumeric() {
                    *back -= 1;
                }
                let end = *back;
                while *back > *front && bytes[*back - 1].is_ascii_alphanumeric() {
                    *back -= 1;
                }
                (*back < end).then(|| &window[*back..end])
            }
            WordsOf::Chars(split) => split.next_back(),
        }
    }
}

/// True when the words before a card-shaped number call it an order, invoice, tracking or other
/// reference number and none calls it a card.
pub(crate) fn reference_context(text: &str, at: usize) -> bool {
    let lists = words_before(text, at, true).fold(0, |bits, w| bits | word_lists(w));
    lists & IN_CARD == 0 && lists & IN_REFERENCE != 0
}

/// True when a valid dotted quad reads as a version number rather than an address: the nearest context
/// word before it is a version word, or the word right after it is; it is glued to a package name
/// (`pkg-1.2.3.4`, `pkg@1.2.3.4`, `Chrome/1.2.3.4`, `==1.2.3.4`) or a suffix (`1.2.3.4-beta`, `+build`,
/// `.tar.gz`); or every part is a single digit (`1.2.3.4`, `2.0.0.1`) and no network word comes before it.
fn version_like(text: &str, span: Range<usize>) -> bool {
    let before = &text[..span.start];
    let after = &text[span.end..];
    let letter_before = |s: &str| s.chars().next_back().is_some_and(char::is_alphabetic);
    let glued_before = (before.ends_with(['-', '/']) && letter_before(&before[..before.len() - 1]))
        || before.ends_with(['@', '~', '^'])
        || before.ends_with("==");
    let glued_after = after.starts_with('+')
        || (after.starts_with(['-', '.']) && after[1..].starts_with(char::is_alphabetic));
    if glued_before || glued_after {
        return true;
    }
    // A version word right after it: "the 10.2.0.1 upgrade", "1.2.3.4 release notes".
    let next = next_word(after.trim_start_matches([' ', '\t']));
    if word_lists(next) & IN_VERSION != 0 && !next.eq_ignore_ascii_case("v") {
        return true;
    }
    let last = words_before(text, span.start, true).rev().find_map(|w| {
        let lists = word_lists(w);
        if lists & IN_NETWORK != 0 {
            Some(false)
        } else if lists & IN_VERSION != 0 {
            Some(true)
        } else {
            None
        }
    });
    match last {
        Some(version) => version,
        None => text[span].split('.').all(|part| part.len() == 1),
    }
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

    /// [`card_within`] as it was written with a vector per candidate sub-run: the reference the one
    /// on the stack must equal.
    fn card_within_reference(text: &str, run: Range<usize>) -> Option<Range<usize>> {
        let bytes = text.as_bytes();
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
        let mut best: Option<(usize, Range<usize>)> = None;
        for first in 0..groups.len() {
            for last in first..groups.len() {
                let (a, b) = (groups[first].0, groups[last].1);
                let digits: Vec<u8> = bytes[a..b]
                    .iter()
                    .copied()
                    .filter(u8::is_ascii_digit)
                    .collect();
                let grouped = last > first;
                if !(13..=19).contains(&digits.len())
                    || !(grouped || card_network_ok(&digits))
                    || !card_layout_ok(text, &groups[first..=last])
                    || !luhn_ok(&digits)
                {
                    continue;
                }
                let joined_before = text[..a].ends_with(['-', '.']) && alnum_before(text, a - 1);
                let joined_after = text[b..].starts_with(['-', '.']) && alnum_after(text, b + 1);
                let before_ok = !alnum_before(text, a) && !joined_before;
                let after_ok = !alnum_after(text, b) && !joined_after;
                if before_ok && after_ok && best.as_ref().is_none_or(|(n, _)| digits.len() > *n) {
                    best = Some((digits.len(), a..b));
                }
            }
        }
        best.map(|(_, span)| span)
    }

    #[test]
    fn card_within_is_the_reference() {
        const PIECES: [&str; 16] = [
            "4111 1111 1111 1111",
            "4111111111111111",
            "5500-0000-0000-0004",
            "378282246310005",
            "3782 822463 10005",
            "6011.0009.9013.9424",
            "4",
            "12",
            "345",
            "6789",
            "00000",
            " ",
            "-",
            ".",
            "  ",
            "4012888888881881",
        ];
        let mut texts = crate::tests::PieceTexts::new(&PIECES, 0x3C6E_F372);
        let mut cards = 0;
        for _ in 0..4000 {
            let n = 1 + texts.below(7);
            let run = texts.text(n);
            let run = run.trim_matches([' ', '-', '.']);
            for text in [
                run.to_owned(),
                format!("card {run} ok"),
                format!("x-{run}.y"),
            ] {
                let Some(at) = text.find(run) else { continue };
                let span = at..at + run.len();
                let expected = card_within_reference(&text, span.clone());
                cards += usize::from(expected.is_some());
                assert_eq!(card_within(&text, span), expected, "{text:?}");
            }
        }
        assert!(
            cards > 500,
            "too few cards among the generated runs: {cards}"
        );
    }

    /// Two integers read from both ends are the bytes copied into a zeroed buffer, for every length.
    #[test]
    fn packed_bytes_are_the_copied_ones() {
        let mut next = crate::tests::xorshift(0x2F1B_7A33);
        for len in 0..=16 {
            for _ in 0..500 {
                let bytes: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
                let mut copied = [0u8; 16];
                copied[..len].copy_from_slice(&bytes);
                let expected = (
                    u64::from_le_bytes(copied[..8].try_into().unwrap()),
                    u64::from_le_bytes(copied[8..].try_into().unwrap()),
                );
                assert_eq!(packed_le(&bytes), expected, "{bytes:?}");
            }
        }
    }

    #[test]
    fn packed_lower_is_the_word_lowercased_with_its_length() {
        let reference = |word: &str| -> Option<u128> {
            if word.len() > LONGEST_LISTED || !word.is_ascii() {
                return None;
            }
            let mut bytes = [0u8; 16];
            for (to, from) in bytes.iter_mut().zip(word.bytes()) {
                *to = from.to_ascii_lowercase();
            }
            bytes[15] = u8::try_from(word.len()).unwrap();
            Some(u128::from_le_bytes(bytes))
        };
        let mut next = crate::tests::xorshift(0x9B05_688C);
        for _ in 0..20_000 {
            let len = next() as usize % 18;
            let word: String = (0..len)
                .map(|_| match next() % 8 {
                    0 => 'é',
                    _ => char::from(u8::try_from(next() % 128).unwrap()),
                })
                .collect();
            assert_eq!(packed_lower(&word), reference(&word), "{word:?}");
        }
    }

    #[test]
    fn words_before_are_the_unicode_split_ones() {
        let pieces = [
            "call",
            "Tel",
            "no",
            "ORDER",
            "ref.",
            "  ",
            "\n",
            "-",
            "(",
            ")",
            ":",
            "x",
            "é",
            "ünïcode",
            "mobile",
            "12",
            "3",
            "phone:",
            "id",
            "\u{a0}",
            "—",
            "fax",
        ];
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x510E_527F);
        for _ in 0..3_000 {
            let n = 1 + texts.below(12);
            let text = texts.text(n);
            for at in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
                for same_line in [false, true] {
                    let mut from = at.saturating_sub(CONTEXT_WINDOW);
                    while !text.is_char_boundary(from) {
                        from += 1;
                    }
                    let mut window = &text[from..at];
                    if same_line && let Some(i) = window.rfind('\n') {
                        window = &window[i + 1..];
                    }
                    if let Some(i) = window.rfind(|c: char| c.is_ascii_digit()) {
                        window = &window[i + 1..];
                    }
                    let start = at - window.len();
                    // The text's own words: whole runs of alphanumeric characters.
                    let cut = text[..start]
                        .chars()
                        .next_back()
                        .is_some_and(char::is_alphanumeric);
                    let expected: Vec<&str> = window
                        .split(|c: char| !c.is_alphanumeric())
                        .skip(usize::from(cut))
                        .filter(|w| !w.is_empty())
                        .collect();
                    let forward: Vec<&str> = words_before(&text, at, same_line).collect();
                    assert_eq!(forward, expected, "{text:?} at {at}");
                    let mut backward: Vec<&str> =
                        words_before(&text, at, same_line).rev().collect();
                    backward.reverse();
                    assert_eq!(backward, expected, "{text:?} at {at}, from the back");
                }
            }
        }
    }

    #[test]
    fn next_word_is_the_leading_alphanumeric_run() {
        for text in [
            "",
            "abc",
            "abc def",
            "abcé-x",
            "é",
            "-x",
            "ab12_cd",
            "Zürich, CH",
            "x\u{a0}y",
            "東京 都",
        ] {
            let end = text
                .char_indices()
                .find(|(_, c)| !c.is_alphanumeric())
                .map_or(text.len(), |(i, _)| i);
            assert_eq!(next_word(text), &text[..end], "{text:?}");
        }
    }

    /// The rows' expressions are compiled on first use ([`LazyRegex`], and [`WindowRegex`] for the rows
    /// searched in windows): each must compile.
    #[test]
    fn every_lazy_pattern_compiles() {
        let d = PiiDetector::new().unwrap();
        for (i, (row, pattern)) in DETECTORS.iter().zip(&d.patterns).enumerate() {
            assert!(pattern.get().is_ok(), "{}: {}", row.entity, row.pattern);
            if d.around[i].is_some() {
                let mut found = Vec::new();
                assert!(
                    d.in_windows[i].find_in("0", 0..1, &mut found),
                    "{}: {}",
                    row.entity,
                    row.pattern
                );
            }
        }
    }

    /// The stream guard's automaton is built by the first stream: it must build.
    #[test]
    fn the_reach_automaton_builds() {
        assert!(ReachDfa::build().is_some());
        let d = PiiDetector::new().unwrap();
        assert!(d.reach.get().is_none(), "built before a stream needed it");
        assert!(d.reach_cache().is_some());
        assert!(!d.without_reach(), "the first stream built it");
    }

    #[test]
    fn a_row_that_cannot_be_compiled_reports_the_whole_text() {
        let mut d = PiiDetector::new().unwrap();
        let email = DETECTORS
            .iter()
            .position(|r| r.entity == EntityType::Email)
            .unwrap();
        d.patterns[email] = LazyRegex::new("(");
        let text = "write to ada@example.org today";
        let found = d.detect(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].entity, EntityType::Email);
        assert_eq!(found[0].span, 0..text.len());
        // A text the set rules the row out of is not touched.
        assert!(d.detect("nothing to see here").is_empty());
        // A row searched in windows: the whole text where it has a window to search, nothing where it has
        // none (no match can be there).
        let ssn = DETECTORS
            .iter()
            .position(|r| r.entity == EntityType::UsSsn)
            .unwrap();
        assert!(d.around[ssn].is_some());
        d.patterns[ssn] = LazyRegex::new("(");
        d.in_windows[ssn] = WindowRegex::new("(");
        let text = "ssn 123-45-6789 on file";
        let found = d.detect(text);
        assert!(
            found
                .iter()
                .any(|f| f.entity == EntityType::UsSsn && f.span == (0..text.len())),
            "{found:?}"
        );
        assert!(d.detect("nothing to see here").is_empty());
    }

    #[test]
    fn the_set_and_the_patterns_follow_the_table() {
        let d = PiiDetector::new().unwrap();
        assert_eq!(d.any.patterns().len(), DETECTORS.len() + d.gated.len());
        assert_eq!(d.patterns.len(), DETECTORS.len());
        for (k, &i) in d.gated.iter().enumerate() {
            assert!(needs_context(i));
            assert_eq!(
                d.any.patterns()[DETECTORS.len() + k],
                context_words_pattern(&DETECTORS[i])
            );
        }
        for (i, row) in DETECTORS.iter().enumerate() {
            assert_eq!(d.gated.contains(&i), needs_context(i));
            let expected = if d.always[i] { NEVER } else { row.pattern };
            assert_eq!(d.any.patterns()[i], expected);
            assert_eq!(d.patterns[i].as_str(), row.pattern);
            assert!((0.0..=1.0).contains(&row.confidence), "{}", row.entity);
        }
        // Every entity type has at least one row, but names, places and organisations (`names`).
        let named = [
            EntityType::Person,
            EntityType::Location,
            EntityType::Organization,
        ];
        for entity in EntityType::ALL.into_iter().filter(|e| !named.contains(e)) {
            assert!(DETECTORS.iter().any(|r| r.entity == entity), "{entity}");
        }
    }

    /// The look-ahead offset read from the end of the text is the one a scan from its start finds.
    #[test]
    fn lookahead_from_the_end_is_the_scan_from_the_start() {
        fn from_start(text: &str) -> usize {
            let mut ends = [0usize; 2];
            let mut prev_alnum = false;
            for (i, c) in text.char_indices() {
                let alnum = c.is_alphanumeric();
                if prev_alnum && !alnum {
                    ends = [ends[1], i];
                }
                prev_alnum = alnum;
            }
            ends[0].max(text.len().saturating_sub(LOOKAHEAD_BYTES))
        }
        let pieces = [
            "a",
            "word",
            "Ünïcode",
            "東京",
            "42",
            " ",
            "  ",
            ",",
            ".",
            "-",
            "\n",
            "é",
            "😀",
            "x1",
            "a-very-long-hyphenated-compound-word-of-the-kind",
        ];
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x0A11_CE55);
        for n in 0..4_000 {
            let text = texts.text(n % 60);
            assert_eq!(lookahead_from(&text), from_start(&text), "{text:?}");
        }
        for text in ["", "a", "a ", "ab cd", " ab", "ab  cd ef"] {
            assert_eq!(lookahead_from(text), from_start(text), "{text:?}");
        }
    }

    /// One lookup gives, for every word, what a scan of each list gives.
    #[test]
    fn word_lists_are_the_lists_scanned() {
        let mut words: Vec<String> = Vec::new();
        for (list, _) in WORD_LISTS {
            for w in list {
                assert!(w.len() <= LONGEST_LISTED && w.bytes().all(|b| !b.is_ascii_uppercase()));
                assert!(w.is_ascii(), "{w}");
                words.push((*w).to_owned());
                words.push(w.to_ascii_uppercase());
                words.push(format!("{w}s"));
                words.push(w[1..].to_owned());
                words.push(format!("{w}\0"));
                words.push(format!("{w}\u{e9}"));
            }
        }
        words.extend(
            [
                "",
                "Phone",
                "pHoNe",
                "ﬁrmware",
                "İp",
                "K",
                "callé",
                "a-very-long-word-indeed",
            ]
            .iter()
            .map(|w| (*w).to_owned()),
        );
        for w in &words {
            let expected = WORD_LISTS
                .iter()
                .filter(|(list, _)| listed(list, w))
                .fold(0, |bits, (_, bit)| bits | bit);
            assert_eq!(word_lists(w), expected, "{w:?}");
        }
    }

    #[test]
    fn the_never_pattern_matches_nothing() {
        let never = regex::Regex::new(NEVER).unwrap();
        for text in ["", "a", " ", "\n", "é", "1234", "\u{10FFFF}"] {
            assert!(!never.is_match(text), "{text:?}");
        }
    }

    /// The PII pass's sets compile (a set of more patterns than a set holds would not, and every text
    /// would then search every row's own expression: right, but slow).
    #[test]
    fn the_pii_sets_compile() {
        let d = PiiDetector::new().unwrap();
        assert!(d.any.compiled().is_some());
        assert!(d.numeric_set.compiled().is_some());
        assert!(d.any.patterns().len() <= crate::set::MAX_PATTERNS);
    }

    #[test]
    fn digit_run_rows_find_what_their_patterns_find() {
        let d = PiiDetector::new().unwrap();
        let rows: Vec<usize> = (0..DETECTORS.len())
            .filter(|&i| d.digit_rows[i].is_some())
            .collect();
        // The table's plain digit rows: a card next to its word, SIN and routing numbers, bank accounts,
        // CVVs and ages.
        assert!(rows.len() >= 5, "{rows:?}");
        // Runs longer than a 64-byte block and as long as one, so runs start, end and go on across blocks.
        let long_run = "8".repeat(70);
        let block_run = "3".repeat(64);
        let pieces = [
            "1",
            "12",
            "123",
            "1234",
            "12345",
            "123456789",
            "1234567890123",
            "12345678901234567890",
            "4111111111111111111111",
            " ",
            "-",
            ".",
            "a",
            "x9",
            &long_run,
            &block_run,
            "٣",
            "３",
            "Ⅻ",
            "\n",
            "/",
        ];
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x9E37_79B9);
        for _ in 0..500 {
            let count = 1 + texts.below(12);
            let text = texts.text(count);
            let runs = ascii_digit_runs(&text);
            let mut expected: Vec<Range<usize>> = Vec::new();
            for (at, _) in text.bytes().enumerate().filter(|(_, b)| b.is_ascii_digit()) {
                match expected.last_mut() {
                    Some(run) if run.end == at => run.end = at + 1,
                    _ => expected.push(at..at + 1),
                }
            }
            assert_eq!(runs, expected, "{text:?}");
            for &i in &rows {
                let expected: Vec<Range<usize>> = d.patterns[i]
                    .get()
                    .unwrap()
                    .find_iter(&text)
                    .map(|m| m.range())
                    .collect();
                let mut found = Vec::new();
                digit_run_matches(&runs, d.digit_rows[i].unwrap(), &mut found);
                assert_eq!(found, expected, "row {i} on {text:?}");
            }
        }
    }

    /// The rows whose context words the set pass says occur in a text are those with a word
    /// [`context_near`] could find: a whole run of alphanumeric characters that is one of the row's words,
    /// ASCII case ignored. In an ASCII text exactly those; with letters of other scripts beside a word the
    /// pass also reports it (a superset, which costs a search and never a finding).
    #[test]
    fn the_set_pass_finds_the_rows_whose_context_words_occur() {
        let d = PiiDetector::new().unwrap();
        let mut words: Vec<&str> = Vec::new();
        for &i in &d.gated {
            for word in DETECTORS[i].gate_words().unwrap() {
                assert!(!word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric()));
                words.push(word);
            }
        }
        let mut pieces: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        pieces.extend(words.iter().map(|w| w.to_ascii_uppercase()));
        pieces.extend(words.iter().map(|w| format!("{w} ")));
        pieces.extend(
            words
                .iter()
                .filter(|w| w.len() > 1)
                .map(|w| w[..w.len() - 1].to_owned()),
        );
        pieces.extend(
            [
                " ", " ", ", ", "x", "_", "é", "9", "\n", "-", "/", "Ş", "K", "\u{212A}", "ſ",
                "message", "return",
            ]
            .iter()
            .map(|p| (*p).to_owned()),
        );
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x51ED_270B);
        let mut rows_found = 0;
        for n in 0..3_000 {
            let text = texts.text(1 + n % 9);
            let mut expected = vec![false; DETECTORS.len()];
            for word in text.split(|c: char| !c.is_alphanumeric()) {
                for &i in &d.gated {
                    if listed(DETECTORS[i].gate_words().unwrap(), word) {
                        expected[i] = true;
                    }
                }
            }
            let mut found = vec![false; DETECTORS.len()];
            for i in d.any.matches(&text).unwrap().iter() {
                if let Some(k) = i.checked_sub(DETECTORS.len()) {
                    found[d.gated[k]] = true;
                }
            }
            if text.is_ascii() {
                assert_eq!(found, expected, "{text:?}");
            } else {
                for i in 0..DETECTORS.len() {
                    assert!(found[i] || !expected[i], "row {i} in {text:?}");
                }
            }
            rows_found += expected.iter().filter(|e| **e).count();
        }
        assert!(rows_found > 1_000, "{rows_found}");
    }

    /// Skipping the rows the set pass rules out, context words included, never loses a finding: on texts
    /// that mix every gated row's words (whole, glued to numbers, inside longer words, cut by the context
    /// window) with numbers of their rows' shapes, the findings are those of every row searched.
    #[test]
    fn the_rows_the_set_pass_skips_find_nothing() {
        let d = PiiDetector::new().unwrap();
        let mut pieces: Vec<String> = Vec::new();
        for &i in &d.gated {
            for word in DETECTORS[i].gate_words().unwrap() {
                pieces.push(format!("{word} "));
                pieces.push(format!("{} ", word.to_ascii_uppercase()));
                pieces.push(format!("x{word}"));
            }
        }
        pieces.extend(
            [
                "42",
                "42 ",
                "7",
                "119",
                "42yo ",
                "age42 ",
                "42 y/o ",
                "30-year-old ",
                "4111111111111111 ",
                "4111 1111 1111 1111 ",
                "046 454 286",
                "123456789 ",
                "912-70-1234 ",
                "234567890123 ",
                "021000021 ",
                "12345678 ",
                "01/02/1990 ",
                "1990-02-01 ",
                "4 Nov 1987 ",
                "123 ",
                "12/27 ",
                "AB1234567 ",
                "D1234567 ",
                "(02) 4958 3734 ",
                "555 0143",
                "5550143 ",
                "number ",
                "no. ",
                "microphone ",
                "usage ",
                "message ",
                "return ",
                "business ",
                ": ",
                ", ",
                ". ",
                "\n",
                " ",
                " ",
                "-",
                "/",
                "é",
                "the customer said ",
            ]
            .map(str::to_owned),
        );
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x1F83_D9AB);
        let every = d.any.patterns().len();
        let mut found = 0;
        for n in 0..6_000 {
            let text = texts.text(2 + n % 14);
            let gated = d.detect(&text);
            assert_eq!(gated, d.detect_rows(&text, 0..every), "{text:?}");
            found += gated.len();
        }
        assert!(found > 500, "{found} findings");
    }

    /// A phone word counts only as a word of its own: one the context window's start cuts
    /// (`microphone` read from `phone` on) is not one, so the set pass may skip the loose phone row when no
    /// whole phone word occurs, whatever the distance.
    #[test]
    fn a_phone_word_the_window_cuts_is_not_one() {
        let d = PiiDetector::new().unwrap();
        let every = d.any.patterns().len();
        let mut phones = 0;
        for word in PHONE_WORDS {
            for gap in 1..CONTEXT_WINDOW + 4 {
                for glued in ["", "micro", "9"] {
                    let text = format!("{glued}{word}{}5550143 today", " ".repeat(gap));
                    let found = d.detect(&text);
                    assert_eq!(found, d.detect_rows(&text, 0..every), "{text:?}");
                    let whole = glued.is_empty() && word.len() + gap <= CONTEXT_WINDOW;
                    let phone = found.iter().any(|f| f.entity == EntityType::Phone);
                    assert_eq!(phone, whole, "{text:?}");
                    phones += usize::from(phone);
                }
            }
        }
        assert!(phones > 500, "{phones}");
    }

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
        assert!(detect("std::vector at 10:30:45").is_empty());
        assert_eq!(
            detect("mac 00:1A:2B:3C:4D:5E"),
            one(EntityType::MacAddress, "00:1A:2B:3C:4D:5E")
        );
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

    /// Each entity type: values that must be found, and look-alikes one check away (a bad checksum, a
    /// reserved range, a wrong length or layout) that must not be.
    #[test]
    fn each_entity_type_valid_and_invalid_lookalikes() {
        let cases: &[(EntityType, &[&str], &[&str])] = &[
            (
                EntityType::Email,
                &[
                    "jane@example.com",
                    "j.o-e+tag@sub.example.org",
                    "X_Y%z@EXAMPLE.IO",
                ],
                &[
                    "jane..doe@example.com",
                    ".jane@example.com",
                    "jane@localhost",
                    "icon@2x.png",
                ],
            ),
            (
                EntityType::Phone,
                &[
                    "+1 415 555 2671",
                    "+33 1 23 45 67 89",
                    "(415) 555-2671",
                    "call 1 415-555-2671",
                    "001-415-555-2671",
                    "415.555.2671x6942",
                    "020 7946 0958",
                    "07700 900123",
                    "06-10446904",
                    "03.57.67.20.11",
                    "043 289 16 80",
                    // Without a trunk `0`, by a grouping only phone numbers are written in.
                    "555-2671",
                    "21-97-83-32",
                    // Other shapes only next to a phone word, before (same or previous line) or after.
                    "Phone: 21-97-83-32",
                    "Phone:\n(02) 4958 3734",
                    "call me on (82) 871-235",
                    "fax 5382655570",
                    "9469 9966 office",
                    "Mobile: 25 833307",
                    "Desk: 5382655570",
                    "Mob: 612 34 56 78",
                    "send text messages to 84 42 54",
                    "leave a voicemail on (44) 132-611",
                ],
                &[
                    "+44 12 34",
                    "(415) 555-26",
                    "12 345 678",
                    "5382655570",
                    "order 9469 9966",
                    "05.01.2024 12",
                    "ref 06-10446904-7",
                    "84 42 54",
                    "message 12 of 5382655570",
                ],
            ),
            (
                EntityType::CreditCard,
                &[
                    "4111111111111111",    // Visa
                    "4222222222222",       // Visa, 13 digits
                    "5555 5555 5555 4444", // Mastercard
                    "2221-0000-0000-0009", // Mastercard 2-series
                    "3782 822463 10005",   // Amex 4-6-5
                    "30569309025904",      // Diners
                    "213144757710461",     // legacy 15-digit JCB
                    "3530111333300000",    // JCB
                    "6011111111111117",    // Discover
                    "6200000000000005",    // UnionPay
                    "6759649826438453",    // Maestro
                ],
                &[
                    "4111111111111112",    // Luhn fails
                    "5555 5555 5555 4445", // Luhn fails
                    "378282246310006",     // Luhn fails
                    "3312345678000007",    // Luhn passes, no network starts with 33
                    "7012345678000001",    // Luhn passes, no network starts with 7
                    "412300000000006",     // Luhn passes, Visa is never 15 digits
                    "210000000000006",     // Luhn passes, 2100 is no network's range
                    "4111 11 1111 111111", // Luhn passes, not a card grouping
                    "4111-1111 1111-1111", // Luhn passes, mixed separators
                ],
            ),
            (
                EntityType::UsSsn,
                &["123-45-6789", "078 05 1120"],
                &[
                    "000-45-6789",
                    "666-45-6789",
                    "900-45-6789",
                    "123-00-6789",
                    "123-45-0000",
                    "123-456-789",
                ],
            ),
            (
                EntityType::Iban,
                &[
                    "GB82 WEST 1234 5698 7654 32",
                    "DE89370400440532013000",
                    "FR14 2004 1010 0505 0001 3M02 606",
                    "NL91ABNA0417164300",
                    "CH9300762011623852957",
                ],
                &[
                    "GB82 WEST 1234 5698 7654 31", // mod-97 fails
                    "DE88370400440532013000",      // check digits wrong
                    "NL91ABNA041716430",           // one character short for NL
                ],
            ),
            (
                EntityType::AwsAccessKey,
                &["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"],
                &[
                    "AKIAIOSFODNN7EXAMPL",
                    "AKIAIOSFODNN7EXAMPLE2",
                    "akiaiosfodnn7example",
                    "AIDAIOSFODNN7EXAMPLE",
                ],
            ),
            (
                EntityType::IpAddress,
                &[
                    "ip 10.0.0.12",
                    "server 8.8.8.8",
                    "192.168.1.254",
                    "2001:db8::ff00:42:8329",
                    "::ffff:192.0.2.128",
                ],
                &[
                    "256.10.10.10",
                    "10.0.0",
                    "10.01.0.1",
                    "1.2.3.4.5",
                    "fe80::1::2",
                    "12:34:56",
                ],
            ),
            (
                EntityType::BearerToken,
                &[
                    "Bearer 4f9a1c2e7b3d8f60",
                    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                ],
                &["Bearer token", "the bearer bonds", "eyJhbGciOiJIUzI1NiJ9"],
            ),
        ];
        for (entity, valid, invalid) in cases {
            for value in *valid {
                let text = format!("here: {value} .");
                let found = detect(&text);
                assert!(
                    found
                        .iter()
                        .any(|(e, v)| e == entity && value.contains(v.as_str())),
                    "{entity} not found in {text:?}: {found:?}"
                );
            }
            for value in *invalid {
                let text = format!("here: {value} .");
                let found = detect(&text);
                assert!(
                    !found.iter().any(|(e, _)| e == entity),
                    "{entity} wrongly found in {text:?}: {found:?}"
                );
            }
        }
    }

    /// Identifiers that are shaped like PII but are not: none may be flagged as anything.
    #[test]
    fn order_numbers_uuids_versions_and_timestamps_are_not_flagged() {
        for text in [
            // Order, invoice and tracking numbers, some of which pass Luhn.
            "Order #100234567 has shipped",
            "order number 4000123456789017",
            "Order 112-3456789-1234567 (3-7-7 marketplace format)",
            "ORD-2024-000123, INV-4111111111111111",
            "invoice 5500005555555559 is due",
            "tracking 1Z999AA10123456784",
            "ref: 6011000990139424",
            // UUIDs, including all-digit groups.
            "request 550e8400-e29b-41d4-a716-446655440000",
            "12345678-1234-5678-1234-567812345678",
            "40936093-7735-2800-1334-16d45f1e820d",
            "09c55c7c-085d-06c8-5645-521809193720",
            "{58288258-8661-0913-a65e-0abfeac6907d}",
            // Version strings, four-part ones included.
            "version 1.2.3.4",
            "upgrade to 1.2.3.4 now",
            "1.2.3.4",
            "v1.2.3.4 and V2.0.0.1",
            "Version=4.0.0.0, Culture=neutral",
            "release 3.14.15.92 is out",
            "build 10.0.19045.3803",
            "Chrome/120.0.6099.109 Safari/537.36",
            "Mozilla/5.0 AppleWebKit/537.36 Chrome/120.0.0.0",
            "pkg-1.2.3.4.tar.gz, pkg@1.2.3.4, numpy==1.26.4.1",
            "2.0.0.1-beta, 1.0.0.0+build",
            "firmware 2.10.100.200",
            // Timestamps and dates.
            "2024-01-15",
            "2024-01-15T10:30:45Z",
            "2024-01-15T10:30:45.123456+05:30",
            "2024-01-15 10:30:45 -0500",
            "15/01/2024 10:30",
            "01.15.2024 and 15.01.2024 12:30:45",
            "2024.01.15",
            "Mon, 15 Jan 2024 10:30:45 GMT",
            "10:30:45 and 12:00:00:000",
            "epoch 1700000000, millis 1700000000123, nanos 1700000000123456789",
            "20240115103045",
            "Build 20240115.1",
        ] {
            assert!(detect(text).is_empty(), "{text:?}: {:?}", detect(text));
        }
    }

    /// Many random UUIDs and timestamps from a fixed-seed generator: none may be flagged.
    #[test]
    fn random_uuids_and_timestamps_are_not_flagged() {
        // SplitMix64, so the test needs no dependency and is the same on every run.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut text = String::new();
        for _ in 0..5_000 {
            let (a, b) = (next(), next());
            text.push_str(&format!(
                "id {:08x}-{:04x}-{:04x}-{:04x}-{:012x} at {}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z ver {}.{}.{}.{}\n",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xffff,
                b >> 48,
                b & 0xffff_ffff_ffff,
                2000 + a % 40,
                1 + b % 12,
                1 + a % 28,
                b % 24,
                a % 60,
                b % 60,
                a % 1_000_000,
                a % 256,
                b % 10,
                a % 40,
                b % 300,
            ));
        }
        let found = detect(&text);
        assert!(
            found.is_empty(),
            "{} findings, first: {:?}",
            found.len(),
            found.first()
        );
    }

    #[test]
    fn overlaps_keep_higher_confidence() {
        // The card wins over anything the phone patterns would see inside it.
        let found = detect("+4111 1111 1111 1111");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, EntityType::CreditCard);
    }
}
