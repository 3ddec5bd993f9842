//! Reversible per-request pseudonyms.
//!
//! The input guard replaces a value with a token such as `<EMAIL_1>`; the same value gets the same token
//! everywhere in one request, so the model can still reason about "the same person". The output guard
//! puts the original values back before the answer reaches the caller. A map lives for one request only
//! and is never logged: its `Debug` prints counts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::profile::EntityType;

/// Values and their tokens for one request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PseudonymMap {
    by_value: HashMap<(EntityType, String), String>,
    by_token: HashMap<String, String>,
    next: BTreeMap<EntityType, u32>,
}

impl fmt::Debug for PseudonymMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // INVARIANT: never print a value or a token, only how many there are.
        f.debug_struct("PseudonymMap")
            .field("len", &self.by_token.len())
            .finish_non_exhaustive()
    }
}

impl PseudonymMap {
    /// An empty map.
    pub fn new() -> Self {
        PseudonymMap::default()
    }

    /// How many distinct values have a token.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// True when nothing was pseudonymised.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// The token for `value`, creating `<ENTITY_n>` on first sight.
    pub(crate) fn token_for(&mut self, entity: EntityType, value: &str) -> String {
        let key = (entity, value.to_owned());
        if let Some(token) = self.by_value.get(&key) {
            return token.clone();
        }
        let n = self.next.entry(entity).or_insert(0);
        *n = n.saturating_add(1);
        let token = format!("<{}_{}>", entity.as_str(), n);
        self.by_token.insert(token.clone(), value.to_owned());
        self.by_value.insert(key, token.clone());
        token
    }

    /// The original value behind `token`, if this request issued it.
    pub fn value_of(&self, token: &str) -> Option<&str> {
        self.by_token.get(token).map(String::as_str)
    }

    /// Replaces every token this request issued with its original value; other text is unchanged.
    pub fn restore(&self, text: &str) -> String {
        if self.is_empty() || !text.contains('<') {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let candidate = &rest[open..];
            // Tokens are short ASCII (`<AWS_SECRET_KEY_123>`), so only a bounded window is examined.
            let close = candidate
                .bytes()
                .take(MAX_TOKEN_LEN)
                .position(|b| b == b'>');
            match close.and_then(|c| self.value_of(&candidate[..=c]).map(|v| (c, v))) {
                Some((c, value)) => {
                    out.push_str(value);
                    rest = &candidate[c + 1..];
                }
                None => {
                    out.push('<');
                    rest = &candidate[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Longer than any token this map issues.
const MAX_TOKEN_LEN: usize = 40;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_token_and_restore() {
        let mut map = PseudonymMap::new();
        let a = map.token_for(EntityType::Email, "a@example.com");
        let b = map.token_for(EntityType::Email, "b@example.com");
        let a2 = map.token_for(EntityType::Email, "a@example.com");
        let p = map.token_for(EntityType::Phone, "+44 20 7946 0958");
        assert_eq!(
            (a.as_str(), b.as_str(), a2.as_str(), p.as_str()),
            ("<EMAIL_1>", "<EMAIL_2>", "<EMAIL_1>", "<PHONE_1>")
        );
        assert_eq!(map.len(), 3);
        assert_eq!(
            map.restore("Mail <EMAIL_2> or <EMAIL_1>, call <PHONE_1>; <EMAIL_9> and a < b stay"),
            "Mail b@example.com or a@example.com, call +44 20 7946 0958; <EMAIL_9> and a < b stay"
        );
    }

    #[test]
    fn debug_prints_only_counts() {
        let mut map = PseudonymMap::new();
        map.token_for(EntityType::Email, "secret@example.com");
        let debug = format!("{map:?}");
        assert_eq!(debug, "PseudonymMap { len: 1, .. }");
    }
}
