//! Gazetteers: first names, surnames, cities, countries, regions and organisation suffixes (and which of them
//! are also ordinary words), compiled into one
//! Aho-Corasick automaton the first time a detector needs it, and shared by every engine in the process;
//! smaller towns (about 110,000) are a set beside it, looked up only after a place word.
//!
//! The lists are plain text files under `shared/guard/data/gazetteers/`, built by
//! `shared/guard/data/build_gazetteers.py` from public data shipped in PyPI packages (the README there names
//! each source and its licence). An entry may hold several words (`New York`, `South Africa`); one entry can
//! be several kinds at once (`Jordan`: a first name, a surname and a country).
//!
//! Lookups are anchored at a word start and take the longest entry that ends on a word boundary, so each
//! costs at most the length of the longest entry: the detectors stay linear in the input.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind, StartKind};

use crate::pii::alnum_after;

const FIRST_NAMES: &str = include_str!("../../data/gazetteers/first_names.txt");
const SURNAMES: &str = include_str!("../../data/gazetteers/surnames.txt");
const CITIES: &str = include_str!("../../data/gazetteers/cities.txt");
const COUNTRIES: &str = include_str!("../../data/gazetteers/countries.txt");
const REGIONS: &str = include_str!("../../data/gazetteers/regions.txt");
const ORG_SUFFIXES: &str = include_str!("../../data/gazetteers/org_suffixes.txt");
const COMMON_WORDS: &str = include_str!("../../data/gazetteers/common_words.txt");
const TOWNS: &str = include_str!("../../data/gazetteers/towns.txt");

/// The kinds an entry belongs to, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Kinds(u8);

impl Kinds {
    pub(crate) const FIRST: Kinds = Kinds(1);
    pub(crate) const LAST: Kinds = Kinds(1 << 1);
    pub(crate) const CITY: Kinds = Kinds(1 << 2);
    pub(crate) const COUNTRY: Kinds = Kinds(1 << 3);
    pub(crate) const REGION: Kinds = Kinds(1 << 4);
    pub(crate) const ORG_SUFFIX: Kinds = Kinds(1 << 5);
    /// Also an ordinary lower-case word (`Mode`, `Story`): a capital alone says little.
    pub(crate) const COMMON: Kinds = Kinds(1 << 6);

    pub(crate) fn has(self, kind: Kinds) -> bool {
        self.0 & kind.0 != 0
    }

    fn with(self, kind: Kinds) -> Kinds {
        Kinds(self.0 | kind.0)
    }
}

/// An entry found in a text: where it ends and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) end: usize,
    pub(crate) kinds: Kinds,
}

/// Every list in one automaton.
#[derive(Debug)]
pub(crate) struct Gazetteer {
    automaton: AhoCorasick,
    /// Per pattern: its kinds, and whether it must match as written (entries in capitals, like `AG`).
    kinds: Vec<Kinds>,
    exact: Vec<Option<&'static str>>,
    /// Smaller towns (lower case), kept out of the automaton: a town is asked for only after a place word,
    /// as a whole run of words, so a set lookup serves, and building it costs far less than more patterns.
    towns: HashSet<String>,
}

static GAZETTEER: OnceLock<Result<Gazetteer, String>> = OnceLock::new();

/// The process-wide gazetteer, built on first use. An error here is a bug in the checked-in lists; the
/// engine that asked fails to build rather than run without them.
pub(crate) fn gazetteer() -> Result<&'static Gazetteer, String> {
    GAZETTEER
        .get_or_init(Gazetteer::build)
        .as_ref()
        .map_err(Clone::clone)
}

impl Gazetteer {
    fn build() -> Result<Gazetteer, String> {
        let lists = [
            (FIRST_NAMES, Kinds::FIRST),
            (SURNAMES, Kinds::LAST),
            (CITIES, Kinds::CITY),
            (COUNTRIES, Kinds::COUNTRY),
            (REGIONS, Kinds::REGION),
            (ORG_SUFFIXES, Kinds::ORG_SUFFIX),
            (COMMON_WORDS, Kinds::COMMON),
        ];
        // One pattern per entry, case folded (ASCII), with the kinds of every list that holds it.
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut patterns: Vec<&'static str> = Vec::new();
        let mut kinds: Vec<Kinds> = Vec::new();
        let mut exact: Vec<Option<&'static str>> = Vec::new();
        for (list, kind) in lists {
            for entry in list.lines().map(str::trim).filter(|e| !e.is_empty()) {
                let capitals = entry.bytes().all(|b| b.is_ascii_uppercase());
                match index.get(&entry.to_ascii_lowercase()) {
                    Some(&i) => {
                        kinds[i] = kinds[i].with(kind);
                        if !capitals {
                            exact[i] = None;
                        }
                    }
                    None => {
                        index.insert(entry.to_ascii_lowercase(), patterns.len());
                        patterns.push(entry);
                        kinds.push(kind);
                        exact.push(capitals.then_some(entry));
                    }
                }
            }
        }
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(StartKind::Anchored)
            .build(&patterns)
            .map_err(|e| e.to_string())?;
        let towns = TOWNS
            .lines()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_lowercase)
            .collect();
        Ok(Gazetteer {
            automaton,
            kinds,
            exact,
            towns,
        })
    }

    /// Whether `name` (as written, any case) is one of the smaller towns.
    pub(crate) fn is_town(&self, name: &str) -> bool {
        self.towns.contains(&name.to_lowercase())
    }

    /// The longest entry that starts at byte `at` of `text` and ends on a word boundary.
    pub(crate) fn lookup(&self, text: &str, at: usize) -> Option<Entry> {
        let input = Input::new(text).range(at..).anchored(Anchored::Yes);
        let m = self.automaton.find(input)?;
        let i = m.pattern().as_usize();
        if alnum_after(text, m.end()) {
            return None;
        }
        if let Some(written) = self.exact[i]
            && &text[m.range()] != written
        {
            return None;
        }
        Some(Entry {
            end: m.end(),
            kinds: self.kinds[i],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
