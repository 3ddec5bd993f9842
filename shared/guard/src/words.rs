//! Denied words and topic phrases: Aho-Corasick automata over both lists.
//!
//! Matching runs over the folded text ([`crate::fold`]): default-ignorable characters removed, whitespace
//! runs collapsed to one space, dashes folded to `-`, compatibility forms and confusable look-alikes of ASCII
//! (Cyrillic `е`, Greek `ο`, full-width and mathematical letters) folded to ASCII. Patterns are folded the
//! same way, and matches are mapped back to the characters of the text that formed them, so masking
//! replaces exactly those.
//!
//! Matching is ASCII case-insensitive and whole-word aware: a pattern that starts (ends) with a letter or
//! digit only counts when the character before (after) it is not one, so `bluebird` does not fire inside
//! `bluebirds`. The automaton reports every overlapping candidate in one pass, from where the first
//! pattern in the text starts (a second, leftmost-first automaton finds that place with a vectorised
//! prefilter, and a text without any pattern is not stepped through; an ASCII text in which no pattern's
//! longest piece without a space occurs is not even folded); the whole-word filter runs on those,
//! then the leftmost-longest survivors are kept. Doing the selection after the filter means a
//! longer pattern that fails the boundary test cannot hide a shorter one that passes. Non-ASCII letters
//! that do not fold to ASCII match case-sensitively (after NFKC).

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use unicode_normalization::UnicodeNormalization;

use crate::fold::{Folded, fold, fold_pattern, is_word, start_of_last_units};
use crate::profile::{GuardProfile, ProfileError};

/// What a pattern stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WordKind {
    /// A denied word.
    Denied,
    /// A phrase of the topic at this index in the profile.
    Topic(usize),
}

/// One whole-word match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WordMatch {
    pub(crate) kind: WordKind,
    /// Byte range in the text searched (not the folded text).
    pub(crate) span: Range<usize>,
}

/// The compiled denied-word and topic automata.
#[derive(Debug)]
pub(crate) struct WordMatcher {
    /// `None` when the profile has no denied word and no topic phrase.
    automata: Option<Automata>,
    kinds: Vec<WordKind>,
    /// The denied words, folded and ASCII-lower-cased, sorted: the words that start with a given text
    /// are the run from the first one not below it.
    denied_lower: Vec<Vec<u8>>,
    /// Whether a denied word starts with a character that is not a word character, so it can start inside
    /// a word.
    denied_starts_inside_words: bool,
    /// Folded characters of the longest denied word.
    longest_denied: usize,
}

/// Units at the end of a growing text whose folding can still change with what follows (a combining mark
/// joins the character before it; a whitespace run can grow): never released before more text settles them.
const UNSTABLE_UNITS: usize = 3;

impl WordMatcher {
    pub(crate) fn new(profile: &GuardProfile) -> Result<Self, ProfileError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut kinds = Vec::new();
        // Folded and ASCII-lowercased, as the text is before it is searched ([`Self::find_where`]).
        let folded = |text: &str| {
            let mut pattern = fold_pattern(&text.trim().nfkc().collect::<String>());
            pattern.make_ascii_lowercase();
            pattern
        };
        for word in &profile.denied_words {
            patterns.push(folded(word));
            kinds.push(WordKind::Denied);
        }
        for (i, topic) in profile.topics.iter().enumerate() {
            for phrase in &topic.phrases {
                patterns.push(folded(phrase));
                kinds.push(WordKind::Topic(i));
            }
        }
        let automata = if patterns.is_empty() {
            None
        } else {
            Some(Automata::new(&patterns)?)
        };
        let denied: Vec<&String> = patterns
            .iter()
            .zip(&kinds)
            .filter(|(_, kind)| **kind == WordKind::Denied)
            .map(|(pattern, _)| pattern)
            .collect();
        let longest_denied = denied.iter().map(|p| p.chars().count()).max().unwrap_or(0);
        let denied_starts_inside_words = denied
            .iter()
            .any(|p| p.chars().next().is_some_and(|c| !is_word(c)));
        let mut denied_lower: Vec<Vec<u8>> = denied.iter().map(|p| p.as_bytes().to_vec()).collect();
        denied_lower.sort_unstable();
        Ok(WordMatcher {
            automata,
            kinds,
            denied_lower,
            denied_starts_inside_words,
            longest_denied,
        })
    }

    /// The byte index in a growing `text` from which a [`Self::find_denied`] match could still appear or
    /// change as text is added at its end; `text.len()` without any denied word.
    ///
    /// A match that can still change ends at the end of the text or needs the character after it (the
    /// whole-word test), so it starts within the last units of the longest denied word plus one, counted
    /// back in characters and whitespace runs ([`start_of_last_units`]). Of those places, only one where the
    /// folded text so far is the start of a denied word (ASCII case ignored, as the automaton matches) can
    /// still begin one; elsewhere the text already differs from every denied word. Nor can a place right
    /// after a word character, unless some denied word starts with a character that is not one (the
    /// whole-word test again). The last [`UNSTABLE_UNITS`] units, whose folding may still change, are never
    /// counted as settled.
    pub(crate) fn unsettled_tail_start(&self, text: &str) -> usize {
        if self.longest_denied == 0 {
            return text.len();
        }
        let bound = start_of_last_units(text, self.longest_denied + 1);
        let unstable = start_of_last_units(text, UNSTABLE_UNITS).max(bound) - bound;
        let tail = fold(&text[bound..]);
        let view = tail.text.as_ref();
        // The folded text up to the unstable end (the original places grow with the folded ones).
        let stable_end = view
            .char_indices()
            .map(|(q, _)| q)
            .find(|&q| tail.original(q..q).start >= unstable)
            .unwrap_or(view.len());
        let stable = view.get(..stable_end).unwrap_or_default();
        let mut before = None;
        for (q, c) in stable.char_indices() {
            // A match starting with a word character right after one fails the whole-word test. The
            // place at the start of the tail is not judged: the character before it lies outside.
            let inside_word = q > 0 && before.is_some_and(is_word);
            before = Some(c);
            if (!inside_word || self.denied_starts_inside_words)
                && self.begins_denied_word(stable.get(q..).unwrap_or_default().as_bytes())
            {
                return bound + tail.original(q..q).start;
            }
        }
        bound + unstable
    }

    /// Whether `so_far` is the start of a denied word, ASCII case ignored.
    fn begins_denied_word(&self, so_far: &[u8]) -> bool {
        let lower = || so_far.iter().map(u8::to_ascii_lowercase);
        let first = self
            .denied_lower
            .partition_point(|w| w.iter().copied().lt(lower()));
        self.denied_lower.get(first).is_some_and(|w| {
            w.len() >= so_far.len() && w.iter().copied().zip(lower()).all(|(a, b)| a == b)
        })
    }

    /// Whole-word, non-overlapping, leftmost-longest matches of both lists, sorted by start.
    pub(crate) fn find(&self, text: &str) -> Vec<WordMatch> {
        self.find_where(text, |_| true)
    }

    /// As [`Self::find`], for denied words alone (the output rule): a topic phrase, which is not applied
    /// there, cannot hide a denied word it overlaps.
    pub(crate) fn find_denied(&self, text: &str) -> Vec<WordMatch> {
        self.find_where(text, |kind| kind == WordKind::Denied)
    }

    fn find_where(&self, text: &str, keep: impl Fn(WordKind) -> bool) -> Vec<WordMatch> {
        let Some(Automata {
            overlapping,
            first,
            pieces,
        }) = &self.automata
        else {
            return Vec::new();
        };
        if text.is_ascii() && pieces.find(text.to_ascii_lowercase().as_str()).is_none() {
            return Vec::new();
        }
        let folded = fold(text);
        // Lowercased patterns in the lowercased text are the ASCII case-insensitive match, and lowercasing
        // keeps every byte where it is, so spans map back unchanged. It lets `first` be case-sensitive:
        // only then does the crate give it its vectorised prefilter, which skips a text with no pattern in
        // a fraction of the time the overlapping automaton takes to step through it a byte at a time.
        let lowered = folded.text.to_ascii_lowercase();
        let view: &str = &lowered;
        let Some(leftmost) = first.find(view) else {
            return Vec::new();
        };
        let candidates: Vec<(Range<usize>, WordKind)> = overlapping
            .find_overlapping_iter(Input::new(view).range(leftmost.start()..))
            .filter(|m| whole_word(view, m.range()))
            .filter_map(|m| {
                self.kinds
                    .get(m.pattern().as_usize())
                    .filter(|k| keep(**k))
                    .map(|k| (m.range(), *k))
            })
            .collect();
        leftmost_longest(candidates, &folded)
    }
}

/// The automata over the folded, lowercased patterns.
#[derive(Debug)]
struct Automata {
    /// Every overlapping match of every pattern.
    overlapping: AhoCorasick,
    /// The same patterns, leftmost-first: where the first of them starts, found with the crate's
    /// vectorised prefilter (which an automaton reporting overlapping matches cannot use). No match starts
    /// before it, so the overlapping search begins there, and is skipped when there is none.
    first: AhoCorasick,
    /// Each pattern's longest piece without a space, leftmost-first: in an ASCII text, which folding
    /// changes only by collapsing whitespace, a pattern can match only where its pieces are in the text
    /// as they are (ASCII case aside), so a text holding none of these needs no folding and no search.
    pieces: AhoCorasick,
}

impl Automata {
    fn new(patterns: &[String]) -> Result<Self, ProfileError> {
        let build = |patterns: &[&str], kind: MatchKind| {
            AhoCorasickBuilder::new()
                .match_kind(kind)
                .build(patterns)
                .map_err(|e| ProfileError::Compile(e.to_string()))
        };
        let whole: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let pieces: Vec<&str> = patterns
            .iter()
            .map(|p| p.split(' ').max_by_key(|piece| piece.len()).unwrap_or(""))
            .collect();
        Ok(Automata {
            overlapping: build(&whole, MatchKind::Standard)?,
            first: build(&whole, MatchKind::LeftmostFirst)?,
            pieces: build(&pieces, MatchKind::LeftmostFirst)?,
        })
    }
}

/// Of the whole-word `candidates` (spans of `folded`'s text), the leftmost-longest ones that do not
/// overlap, as spans of the original text.
fn leftmost_longest(
    mut candidates: Vec<(Range<usize>, WordKind)>,
    folded: &Folded<'_>,
) -> Vec<WordMatch> {
    candidates.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
    let mut out: Vec<WordMatch> = Vec::new();
    let mut last_end = 0;
    for (span, kind) in candidates {
        if out.is_empty() || span.start >= last_end {
            last_end = span.end;
            out.push(WordMatch {
                kind,
                span: folded.original(span),
            });
        }
    }
    out
}

fn whole_word(text: &str, span: Range<usize>) -> bool {
    let matched = &text[span.clone()];
    let first = matched.chars().next();
    let last = matched.chars().next_back();
    let before = text[..span.start].chars().next_back();
    let after = text[span.end..].chars().next();
    let start_ok = !(first.is_some_and(is_word) && before.is_some_and(is_word));
    let end_ok = !(last.is_some_and(is_word) && after.is_some_and(is_word));
    start_ok && end_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Topic;

    fn matcher(words: &[&str], phrases: &[&str]) -> WordMatcher {
        let mut profile = GuardProfile::from_toml(crate::DEFAULT_PROFILE).unwrap();
        profile.denied_words = words.iter().map(|w| (*w).to_owned()).collect();
        profile.topics = vec![Topic {
            name: "t".into(),
            definition: "d".into(),
            phrases: phrases.iter().map(|w| (*w).to_owned()).collect(),
        }];
        WordMatcher::new(&profile).unwrap()
    }

    fn spans(m: &WordMatcher, text: &str) -> Vec<(WordKind, String)> {
        m.find(text)
            .into_iter()
            .map(|w| (w.kind, text[w.span].to_owned()))
            .collect()
    }

    #[test]
    fn whole_word_only_and_case_insensitive() {
        let m = matcher(&["bluebird"], &[]);
        assert_eq!(
            spans(&m, "Bluebird, bluebirds, xbluebird, BLUEBIRD."),
            vec![
                (WordKind::Denied, "Bluebird".to_owned()),
                (WordKind::Denied, "BLUEBIRD".to_owned())
            ]
        );
    }

    #[test]
    fn longer_pattern_failing_boundary_does_not_hide_shorter() {
        let m = matcher(&["acme", "acme-corp"], &[]);
        assert_eq!(
            spans(&m, "acme-corporation"),
            vec![(WordKind::Denied, "acme".to_owned())]
        );
        assert_eq!(
            spans(&m, "acme-corp."),
            vec![(WordKind::Denied, "acme-corp".to_owned())]
        );
    }

    /// What [`WordMatcher::find`] returned when it searched the whole folded text with an ASCII
    /// case-insensitive automaton: every overlapping candidate, the whole-word filter, then leftmost-longest.
    fn case_insensitive_reference(patterns: &[(&str, WordKind)], text: &str) -> Vec<WordMatch> {
        let folded_patterns: Vec<String> = patterns
            .iter()
            .map(|(p, _)| fold_pattern(&p.trim().nfkc().collect::<String>()))
            .collect();
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&folded_patterns)
            .unwrap();
        let folded = fold(text);
        let view: &str = &folded.text;
        let candidates: Vec<(Range<usize>, WordKind)> = automaton
            .find_overlapping_iter(view)
            .filter(|m| whole_word(view, m.range()))
            .map(|m| (m.range(), patterns[m.pattern().as_usize()].1))
            .collect();
        leftmost_longest(candidates, &folded)
    }

    /// The lowercased search that starts where the first pattern does, skipped for an ASCII text without
    /// any pattern's longest piece, finds what the case-insensitive search of the whole text found, on texts
    /// that join the patterns in mixed case, look-alikes, dashes, whitespace runs, prefixes and suffixes
    /// that break the whole-word test, overlaps, and other scripts.
    #[test]
    fn lowercased_search_from_the_first_match_finds_what_a_case_insensitive_one_does() {
        let words = [
            "project-bluebird",
            "acme",
            "acme-corp",
            "Nightjar",
            "é-mail",
        ];
        let phrases = [
            "which stocks should i buy",
            "should i buy",
            "guaranteed returns",
        ];
        let m = matcher(&words, &phrases);
        let patterns: Vec<(&str, WordKind)> = words
            .iter()
            .map(|w| (*w, WordKind::Denied))
            .chain(phrases.iter().map(|p| (*p, WordKind::Topic(0))))
            .collect();
        let pieces = [
            "Project-Bluebird",
            "PROJECT-BLUEBIRD",
            "project\u{2013}bluebird",
            "prоject-bluebird",
            "ACME",
            "Acme-Corp",
            "acme-corporation",
            "xacme",
            "nightjar",
            "NIGHTJAR",
            "nightjars",
            "É-MAIL",
            "é-mail",
            "Which stocks should I buy",
            "which  stocks\tshould i buy",
            "SHOULD I BUY",
            "Guaranteed Returns",
            "guaranteed\u{200B} returns",
            "Guaranteed  Returns",
            "should\ti\nbuy",
            " ",
            " ",
            "\n",
            ", ",
            ". ",
            "-",
            "the ",
            "bluebird ",
            "Клиент ",
            "東京 ",
            "9",
            "_",
        ];
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x3C6E_F372);
        let mut found = 0;
        for n in 0..3000 {
            let text = texts.text(1 + n % 12);
            let ours = m.find(&text);
            assert_eq!(
                ours,
                case_insensitive_reference(&patterns, &text),
                "{text:?}"
            );
            found += ours.len();
        }
        assert!(found > 1000, "{found} matches");
    }

    #[test]
    fn topic_phrases_are_tagged_with_their_topic() {
        let m = matcher(&[], &["which stocks should i buy"]);
        assert_eq!(
            spans(&m, "Which stocks should I buy now?"),
            vec![(WordKind::Topic(0), "Which stocks should I buy".to_owned())]
        );
    }
}
