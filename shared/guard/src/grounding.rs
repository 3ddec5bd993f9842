//! A simple, deterministic grounding score: how much of an answer's content is found in the context the
//! caller supplied.
//!
//! Text is split into words (runs of letters and digits), lowercased, with a trailing plural `s` folded and
//! common English function words dropped; what is left are *content words*. The score is the mean of
//!
//! - the share of the answer's content words that occur anywhere in the context, and
//! - the share of the answer's adjacent content-word pairs (within one sentence) that occur as adjacent
//!   content words in the context,
//!
//! or the first share alone when the answer has no pairs. Pairs make the score sensitive to facts being
//! recombined ("Paris is in Germany" from a context about Paris and about Germany). It is a lexical check,
//! not an entailment model: it flags answers that bring in material the context does not contain, which is
//! what "low trust" means in the report. An answer with no content words scores 1.0 (it asserts nothing);
//! any content against an empty context scores 0.0.

use std::collections::HashSet;

const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Content words per sentence.
fn sentences(text: &str) -> Vec<Vec<String>> {
    text.split(['.', '!', '?', ';', '\n'])
        .map(|sentence| {
            sentence
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .filter(|w| !STOPWORDS.contains(&w.as_str()))
                .map(fold)
                .collect::<Vec<String>>()
        })
        .filter(|words| !words.is_empty())
        .collect()
}

/// Folds a simple plural (`records` -> `record`) so singular and plural forms match.
fn fold(mut word: String) -> String {
    if word.chars().count() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word.pop();
    }
    word
}

fn ratio(supported: usize, total: usize) -> f32 {
    supported as f32 / total as f32
}

/// The grounding score of `answer` against `context`, in `[0, 1]`; see the module documentation.
pub fn grounding_score(answer: &str, context: &[String]) -> f32 {
    let answer = sentences(answer);
    let words: usize = answer.iter().map(Vec::len).sum();
    if words == 0 {
        return 1.0;
    }
    let mut known_words: HashSet<&str> = HashSet::new();
    let mut known_pairs: HashSet<(&str, &str)> = HashSet::new();
    let context: Vec<Vec<Vec<String>>> = context.iter().map(|c| sentences(c)).collect();
    for sentence in context.iter().flatten() {
        known_words.extend(sentence.iter().map(String::as_str));
        known_pairs.extend(sentence.windows(2).map(|p| (p[0].as_str(), p[1].as_str())));
    }
    if known_words.is_empty() {
        return 0.0;
    }
    let supported_words = answer
        .iter()
        .flatten()
        .filter(|w| known_words.contains(w.as_str()))
        .count();
    let pairs: Vec<(&str, &str)> = answer
        .iter()
        .flat_map(|s| s.windows(2).map(|p| (p[0].as_str(), p[1].as_str())))
        .collect();
    let word_share = ratio(supported_words, words);
    if pairs.is_empty() {
        return word_share.clamp(0.0, 1.0);
    }
    let supported_pairs = pairs.iter().filter(|p| known_pairs.contains(*p)).count();
    (0.5 * word_share + 0.5 * ratio(supported_pairs, pairs.len())).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Vec<String> {
        vec![
            "The Causeway hub writes an audit record for every model call. Records are chained by hash.".into(),
            "Audit payloads are encrypted with per-period data keys.".into(),
        ]
    }

    #[test]
    fn copied_answer_is_fully_grounded() {
        let s = grounding_score("Records are chained by hash.", &ctx());
        assert!((s - 1.0).abs() < 1e-6, "{s}");
    }

    #[test]
    fn scores_order_by_support() {
        let grounded = grounding_score("The hub writes an audit record for every call.", &ctx());
        let mixed = grounding_score(
            "The hub writes audit records to a blockchain on Mars.",
            &ctx(),
        );
        let unrelated = grounding_score("Bananas grow quickly in tropical climates.", &ctx());
        assert!(grounded > mixed, "{grounded} {mixed}");
        assert!(mixed > unrelated, "{mixed} {unrelated}");
        assert!(unrelated.abs() < 1e-6, "{unrelated}");
        assert!(grounded > 0.7, "{grounded}");
    }

    #[test]
    fn recombined_facts_score_below_copied_ones() {
        let copied = grounding_score("Payloads are encrypted with data keys.", &ctx());
        let recombined = grounding_score("Payloads are chained with model keys.", &ctx());
        assert!(copied > recombined, "{copied} {recombined}");
    }

    #[test]
    fn edge_cases() {
        assert_eq!(grounding_score("", &ctx()), 1.0);
        assert_eq!(grounding_score("It is what it is.", &ctx()), 1.0);
        assert_eq!(grounding_score("Audit records.", &[]), 0.0);
    }
}
