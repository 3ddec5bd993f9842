//! Gazetteers: first names, surnames, cities, countries, regions and organisation suffixes (and which of them
//! are also ordinary words), compiled at build time into one finite-state transducer that the engine reads
//! in place: nothing is parsed or built when a process starts. Smaller towns (about 110,000) are a set
//! beside it, compiled the same way and looked up only after a place word.
//!
//! The lists are plain text files under `shared/guard/data/gazetteers/`, built by
//! `shared/guard/data/build_gazetteers.py` from public data shipped in PyPI packages (the README there names
//! each source and its licence); `build.rs` compiles them (`lists::LISTS` names each file and its kind). An entry
//! may hold several words (`New York`, `South Africa`); one entry can be several kinds at once (`Jordan`: a
//! first name, a surname and a country).
//!
//! A lookup is anchored at a word start and takes the longest entry that is a prefix of the text there
//! (ASCII letters compared without case), which it refuses unless it ends on a word boundary; each costs at
//! most the length of the longest entry, so the detectors stay linear in the input. It first looks up the
//! text's word at that start in a bit table of the entries' leading words, built with the transducer: most
//! words of ordinary text start no entry and cost a hash, not a walk of the transducer.

use std::sync::OnceLock;

use fst::Set;
use fst::raw::{Fst, Output};

use crate::pii::{alnum_after, next_word};

#[path = "gazetteer_lists.rs"]
#[expect(
    dead_code,
    reason = "which file holds which list is the build script's concern"
)]
mod lists;

#[cfg(test)]
use lists::LISTS;

/// The compiled lists (see `build.rs`).
const COMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gazetteer.fst"));
/// The smaller towns, lower case (see `build.rs`).
const COMPILED_TOWNS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/towns.fst"));
/// The entries' leading words as bits ([`lists::first_word_bit`]; see `build.rs`).
const FIRST_WORDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/first_words.bin"));

/// The kinds an entry belongs to, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Kinds(u8);

impl Kinds {
    pub(crate) const FIRST: Kinds = Kinds(lists::FIRST);
    pub(crate) const LAST: Kinds = Kinds(lists::LAST);
    pub(crate) const CITY: Kinds = Kinds(lists::CITY);
    pub(crate) const COUNTRY: Kinds = Kinds(lists::COUNTRY);
    pub(crate) const REGION: Kinds = Kinds(lists::REGION);
    pub(crate) const ORG_SUFFIX: Kinds = Kinds(lists::ORG_SUFFIX);
    /// Also an ordinary lower-case word (`Mode`, `Story`): a capital alone says little.
    pub(crate) const COMMON: Kinds = Kinds(lists::COMMON);

    pub(crate) fn has(self, kind: Kinds) -> bool {
        self.0 & kind.0 != 0
    }
}

/// An entry found in a text: where it ends and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) end: usize,
    pub(crate) kinds: Kinds,
}

/// Every list in one transducer: folded entry to its kinds and [`lists::EXACT`].
pub(crate) struct Gazetteer {
    fst: Fst<&'static [u8]>,
    /// Smaller towns (lower case), kept out of [`Self::fst`]: a town is asked for only after a place word,
    /// as a whole run of words, so a set lookup serves.
    towns: Set<&'static [u8]>,
}

impl std::fmt::Debug for Gazetteer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gazetteer")
            .field("entries", &self.fst.len())
            .field("bytes", &self.fst.size())
            .field("towns", &self.towns.len())
            .finish()
    }
}

static GAZETTEER: OnceLock<Result<Gazetteer, String>> = OnceLock::new();

/// The process-wide gazetteer. An error here means the embedded transducer is damaged; the engine that asked
/// fails to build rather than run without it.
pub(crate) fn gazetteer() -> Result<&'static Gazetteer, String> {
    GAZETTEER
        .get_or_init(|| {
            let fst = Fst::new(COMPILED).map_err(|e| format!("gazetteer: {e}"))?;
            let towns = Set::new(COMPILED_TOWNS).map_err(|e| format!("gazetteer towns: {e}"))?;
            if fst.is_empty() || towns.is_empty() {
                return Err("gazetteer: no entries".to_owned());
            }
            Ok(Gazetteer { fst, towns })
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl Gazetteer {
    /// Whether `name` (as written, any case) is one of the smaller towns.
    pub(crate) fn is_town(&self, name: &str) -> bool {
        self.towns.contains(name.to_lowercase())
    }

    /// The longest entry that starts at byte `at` of `text`, when it ends on a word boundary.
    pub(crate) fn lookup(&self, text: &str, at: usize) -> Option<Entry> {
        let bytes = text.as_bytes().get(at..)?;
        // An entry that matches ends where the text's word ends or further, on a character that is not
        // alphanumeric: its leading word is the text's word at `at`. A word whose bit is clear starts none.
        let bit = lists::first_word_bit(next_word(text.get(at..)?).as_bytes());
        if FIRST_WORDS
            .get(bit / 8)
            .is_some_and(|byte| byte & (1 << (bit % 8)) == 0)
        {
            return None;
        }
        let mut node = self.fst.root();
        let mut output = Output::zero();
        let mut longest: Option<(usize, u64)> = None;
        for (i, &b) in bytes.iter().enumerate() {
            let Some(t) = node.find_input(b.to_ascii_lowercase()) else {
                break;
            };
            let t = node.transition(t);
            output = output.cat(t.out);
            node = self.fst.node(t.addr);
            if node.is_final() {
                longest = Some((at + i + 1, output.cat(node.final_output()).value()));
            }
        }
        let (end, value) = longest?;
        if alnum_after(text, end) {
            return None;
        }
        // An entry in capitals matches only as written: every byte an ASCII capital.
        if value & lists::EXACT != 0 && !bytes[..end - at].iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        Some(Entry {
            end,
            #[expect(
                clippy::cast_possible_truncation,
                reason = "the kinds are the value's low byte"
            )]
            kinds: Kinds(value as u8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind, StartKind};
    use std::collections::HashMap;

    #[test]
    fn lists_load_and_merge_kinds() {
        let g = gazetteer().unwrap();
        let text = "Jordan";
        let e = g.lookup(text, 0).unwrap();
        assert!(e.kinds.has(Kinds::FIRST) && e.kinds.has(Kinds::COUNTRY));
        assert_eq!(e.end, text.len());
        let e = g.lookup("South Africa is", 0).unwrap();
        assert_eq!(e.end, "South Africa".len());
        assert!(e.kinds.has(Kinds::COUNTRY));
        // A prefix of a longer word is no entry.
        assert!(g.lookup("Marylandia", 0).is_none());
        // Entries in capitals match only as written.
        assert!(
            g.lookup("AG", 0)
                .is_some_and(|e| e.kinds.has(Kinds::ORG_SUFFIX))
        );
        assert!(g.lookup("Ag", 0).is_none());
        // Towns: any case, whole names only; no ordinary word or listed name among them.
        assert!(g.is_town("Knonau") && g.is_town("KNONAU") && g.is_town("Sint Anthonis"));
        assert!(!g.is_town("Knona") && !g.is_town("Progress") && !g.is_town("Nan"));
    }

    /// The lists as an anchored, leftmost-longest, ASCII case-insensitive Aho-Corasick automaton, each
    /// entry with its merged kinds and its written form when in capitals everywhere: the lookup's
    /// specification, built the slow way.
    struct Reference {
        automaton: AhoCorasick,
        kinds: Vec<u8>,
        exact: Vec<Option<String>>,
    }

    impl Reference {
        fn new() -> Reference {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gazetteers");
            let mut index: HashMap<String, usize> = HashMap::new();
            let (mut patterns, mut kinds, mut exact) = (Vec::new(), Vec::new(), Vec::new());
            for (file, kind) in LISTS {
                let list = std::fs::read_to_string(dir.join(file)).unwrap();
                for entry in list.lines().map(str::trim).filter(|e| !e.is_empty()) {
                    let capitals = entry.bytes().all(|b| b.is_ascii_uppercase());
                    match index.get(&entry.to_ascii_lowercase()) {
                        Some(&i) => {
                            kinds[i] |= kind;
                            if !capitals {
                                exact[i] = None;
                            }
                        }
                        None => {
                            index.insert(entry.to_ascii_lowercase(), patterns.len());
                            patterns.push(entry.to_owned());
                            kinds.push(kind);
                            exact.push(capitals.then(|| entry.to_owned()));
                        }
                    }
                }
            }
            let automaton = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .start_kind(StartKind::Anchored)
                .build(&patterns)
                .unwrap();
            Reference {
                automaton,
                kinds,
                exact,
            }
        }

        fn lookup(&self, text: &str, at: usize) -> Option<Entry> {
            let input = Input::new(text).range(at..).anchored(Anchored::Yes);
            let m = self.automaton.find(input)?;
            let i = m.pattern().as_usize();
            if alnum_after(text, m.end()) {
                return None;
            }
            if let Some(written) = &self.exact[i]
                && &text[m.range()] != written
            {
                return None;
            }
            Some(Entry {
                end: m.end(),
                kinds: Kinds(self.kinds[i]),
            })
        }
    }

    /// The bit table the build wrote holds every entry's leading word, as the engine hashes it.
    #[test]
    fn every_entry_starts_with_a_word_of_the_bit_table() {
        use fst::Streamer;
        assert_eq!(FIRST_WORDS.len(), 1 << (lists::FIRST_WORD_BITS - 3));
        let g = gazetteer().unwrap();
        let mut keys = g.fst.stream();
        let mut n = 0;
        while let Some((key, _)) = keys.next() {
            let entry = std::str::from_utf8(key).unwrap();
            let bit = lists::first_word_bit(next_word(entry).to_ascii_uppercase().as_bytes());
            assert!(FIRST_WORDS[bit / 8] & (1 << (bit % 8)) != 0, "{entry}");
            n += 1;
        }
        assert!(n > 50_000, "{n}");
        // Most words of ordinary text start no entry and are answered by the table alone.
        let set: u32 = FIRST_WORDS.iter().map(|b| b.count_ones()).sum();
        assert!(set < 1 << (lists::FIRST_WORD_BITS - 3), "{set} bits set");
    }

    #[test]
    fn lookups_are_the_automatons() {
        let g = gazetteer().unwrap();
        let reference = Reference::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gazetteers");
        // Every entry as written, in capitals, in lower case, cut short, run on, and followed by a word.
        let mut texts: Vec<String> = Vec::new();
        for (file, _) in LISTS {
            let list = std::fs::read_to_string(dir.join(file)).unwrap();
            for entry in list.lines().map(str::trim).filter(|e| !e.is_empty()) {
                texts.push(entry.to_owned());
                texts.push(entry.to_ascii_uppercase());
                texts.push(entry.to_ascii_lowercase());
                texts.push(format!("{entry}s"));
                texts.push(format!("{entry} Street, and"));
                texts.push(format!("{entry}-based"));
                let mut cut = entry.len().saturating_sub(1);
                while !entry.is_char_boundary(cut) {
                    cut -= 1;
                }
                texts.push(entry[..cut].to_owned());
            }
        }
        texts.push(
            "Dr. Anna Müller of New York City met María José in São Paulo, Ägypten.".to_owned(),
        );
        for text in &texts {
            for (at, _) in text.char_indices() {
                assert_eq!(
                    g.lookup(text, at),
                    reference.lookup(text, at),
                    "{text:?} at {at}"
                );
            }
        }
    }
}
