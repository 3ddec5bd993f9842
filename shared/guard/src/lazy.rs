//! Regular expressions compiled the first time they are searched.
//!
//! The guard's set passes read every text, so their sets are compiled when the engine is built. A
//! detector row's own expression is searched only when the set pass says the row matches somewhere (or
//! when the text has digits for a row searched around them), an injection signal's only when the set
//! found the signal: most texts need few of them, and compiling them all was most of the hub's start-up.
//! Each is compiled on first use instead, once for the life of the engine, by whichever call needs it
//! first (others needing it at the same moment wait for that one).
//!
//! Every pattern is a constant of this crate and the crate's tests compile each one
//! (`every_lazy_pattern_compiles`), so a compile error cannot appear in a build that passed them. Should
//! one appear anyway, [`LazyRegex::get`] returns it and each caller fails closed, as its docs say: a PII
//! row reports the whole text as its entity, an injection signal counts as found.

use std::ops::Range;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::{Arc, OnceLock};

use regex::Regex;
use regex_automata::Input;
use regex_automata::hybrid::regex::{Cache, Regex as LazyDfaRegex};
use regex_automata::util::pool::Pool;

use crate::set::{PatternSet, SetError, SetMatches};

/// One regular expression, compiled on first use.
pub(crate) struct LazyRegex {
    pattern: String,
    compiled: OnceLock<Result<Regex, regex::Error>>,
}

impl LazyRegex {
    pub(crate) fn new(pattern: impl Into<String>) -> Self {
        LazyRegex {
            pattern: pattern.into(),
            compiled: OnceLock::new(),
        }
    }

    /// The pattern, as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The compiled expression, compiling it on the first call.
    ///
    /// # Errors
    ///
    /// The compile error, on this and every later call.
    pub(crate) fn get(&self) -> Result<&Regex, &regex::Error> {
        self.compiled
            .get_or_init(|| Regex::new(&self.pattern))
            .as_ref()
    }
}

impl std::fmt::Debug for LazyRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyRegex")
            .field("pattern", &self.pattern)
            .field("compiled", &self.compiled.get().is_some())
            .finish()
    }
}

type NewCache = Box<dyn Fn() -> Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// A [`WindowRegex`]'s compiled expression and its caches, pooled across calls.
type WindowEngine = (Arc<LazyDfaRegex>, Pool<Cache, NewCache>);

/// One regular expression searched in short windows of a text (a few dozen bytes around its digits),
/// compiled on first use: a forward lazy DFA finds where a match ends and a reverse one where it starts,
/// as the `regex` crate does, without its choice of strategy per search, whose fixed cost is about that of
/// the search itself in a window this short. Same matches as [`LazyRegex`] (leftmost-first, the same
/// syntax); the caller searches with that instead when this one cannot ([`Self::find_in`]).
pub(crate) struct WindowRegex {
    pattern: String,
    compiled: OnceLock<Option<WindowEngine>>,
}

impl WindowRegex {
    pub(crate) fn new(pattern: impl Into<String>) -> Self {
        WindowRegex {
            pattern: pattern.into(),
            compiled: OnceLock::new(),
        }
    }

    /// Appends to `out` the leftmost-first matches of the expression in `text[window]`, as ranges of
    /// `text`. `false` (with `out` as it was) when the expression cannot be compiled this way or a search
    /// gave up: the caller then searches the window with the expression's [`LazyRegex`].
    pub(crate) fn find_in(
        &self,
        text: &str,
        window: Range<usize>,
        out: &mut Vec<Range<usize>>,
    ) -> bool {
        let Some((regex, caches)) = self
            .compiled
            .get_or_init(|| {
                let regex = Arc::new(LazyDfaRegex::new(&self.pattern).ok()?);
                let for_caches = Arc::clone(&regex);
                let new: NewCache = Box::new(move || for_caches.create_cache());
                Some((regex, Pool::new(new)))
            })
            .as_ref()
        else {
            return false;
        };
        let Some(haystack) = text.get(window.clone()) else {
            return false;
        };
        let mut cache = caches.get();
        let kept = out.len();
        let mut at = 0;
        while at < haystack.len() {
            match regex.try_search(&mut cache, &Input::new(haystack).span(at..haystack.len())) {
                Ok(Some(m)) if !m.is_empty() => {
                    out.push(window.start + m.start()..window.start + m.end());
                    at = m.end();
                }
                Ok(None) => break,
                // An empty match (no row's pattern has one: the `regex` crate's iterator has its own rules
                // for where the next search starts after one), or a search that gave up.
                Ok(Some(_)) | Err(_) => {
                    out.truncate(kept);
                    return false;
                }
            }
        }
        true
    }
}

impl std::fmt::Debug for WindowRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowRegex")
            .field("pattern", &self.pattern)
            .field("compiled", &self.compiled.get().is_some())
            .finish()
    }
}

/// A set of regular expressions, compiled on first use.
pub(crate) struct LazySet {
    patterns: Vec<String>,
    compiled: OnceLock<Result<PatternSet, SetError>>,
}

impl LazySet {
    pub(crate) fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LazySet {
            patterns: patterns.into_iter().map(Into::into).collect(),
            compiled: OnceLock::new(),
        }
    }

    /// The patterns, in order.
    pub(crate) fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Which patterns match somewhere in `text`, or `None` when the set cannot be compiled (the caller
    /// then searches every pattern's own expression: the set only spares it the ones that cannot match).
    pub(crate) fn matches(&self, text: &str) -> Option<SetMatches> {
        self.compiled().map(|set| set.matches(text))
    }

    /// The compiled set, compiling it on the first call; `None` when it cannot be compiled (see
    /// [`Self::matches`]).
    pub(crate) fn compiled(&self) -> Option<&PatternSet> {
        self.compiled
            .get_or_init(|| PatternSet::new(&self.patterns))
            .as_ref()
            .ok()
    }
}

impl std::fmt::Debug for LazySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazySet")
            .field("patterns", &self.patterns.len())
            .field("compiled", &self.compiled.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_on_first_use_and_keeps_errors() {
        let re = LazyRegex::new(r"\d+");
        assert!(re.compiled.get().is_none());
        assert_eq!(
            re.get().map(|r| r.find("ab 12").map(|m| m.range())).ok(),
            Some(Some(3..5))
        );
        assert!(re.compiled.get().is_some());
        let bad = LazyRegex::new("(");
        assert!(bad.get().is_err());
        assert!(bad.get().is_err());
        assert_eq!(bad.as_str(), "(");
    }

    #[test]
    fn a_set_that_cannot_compile_says_so() {
        let set = LazySet::new([r"a+", r"\d"]);
        assert!(set.compiled.get().is_none());
        let m = set.matches("xa");
        assert_eq!(m.map(|m| m.iter().collect::<Vec<_>>()), Some(vec![0]));
        assert!(LazySet::new(["("]).matches("(").is_none());
    }

    #[test]
    fn a_window_search_finds_the_regex_crates_matches_or_says_it_cannot() {
        let text = "ref 12-34, call 555-0143 or 555 0143; 7";
        let window = 4..text.len();
        let re = WindowRegex::new(r"[0-9]{2,3}[ \-][0-9]{2,4}");
        assert!(re.compiled.get().is_none());
        let mut found = vec![0..1, 1..2];
        assert!(re.find_in(text, window.clone(), &mut found));
        let expected: Vec<Range<usize>> = Regex::new(re.pattern.as_str())
            .unwrap()
            .find_iter(&text[window.clone()])
            .map(|m| window.start + m.start()..window.start + m.end())
            .collect();
        assert_eq!(expected.len(), 3);
        assert_eq!(found[2..], expected);
        // A pattern that does not compile, or one that matches the empty string (whose next search the
        // `regex` crate places by its own rules): the caller is told to search with that crate instead, and
        // what it had found is left as it was.
        for pattern in ["(", r"[0-9]*"] {
            let mut found = vec![0..1, 1..2];
            assert!(!WindowRegex::new(pattern).find_in(text, window.clone(), &mut found));
            assert_eq!(found, vec![0..1, 1..2]);
        }
        assert!(!re.find_in(text, 3..text.len() + 1, &mut found));
    }
}
