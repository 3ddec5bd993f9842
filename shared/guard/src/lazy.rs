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

use std::sync::OnceLock;

use regex::Regex;

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
}
