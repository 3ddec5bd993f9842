//! The Causeway guard engine: what the hub does to a prompt before a model sees it and to an answer before
//! the caller sees it (steps 5 and 7 of the governed request path in `DESIGN.md`).
//!
//! - Input: normalise (NFKC; strip every default-ignorable character: zero-width, bidi-control, variation
//!   selectors, tags), detect PII and secrets and block, mask or reversibly pseudonymise them, match denied
//!   words and topics (with look-alikes, dashes, invisible characters and whitespace runs folded), score
//!   prompt injection (phrasing signals and a small learned classifier, over the text and its decoded
//!   views: base64, hex, URL and HTML escapes, ROT13, leetspeak, spaced-out and look-alike letters), then assemble the prompt with the profile's guardrail instructions first and
//!   user text fenced as data ("spotlighting"). Every string the caller sends that reaches the model is
//!   guarded: messages, tool definitions, the response schema, names and ids; system messages are trusted
//!   above the fence only from a verified workload (see [`SystemTrust`]).
//! - Output: the same PII and word filters on whole or streamed answers (streamed text is held back only
//!   where a value could still be forming, so a value split across chunks is still caught), pseudonym
//!   restoration, JSON-schema validation of structured answers and a lexical grounding score.
//! - Trying a profile: [`GuardEngine::scan`] runs the input guard on one text and also says where each
//!   finding is (type, span, confidence, action; never the value), for `causeway guard scan`.
//!
//! Rules come from a [`GuardProfile`] (TOML, see `policies/guard-profiles/README.md`); a [`GuardEngine`]
//! is the compiled form, built once and shared.
//!
//! Constraints:
//! - No network and no I/O: everything is a pure function of the profile and the text, so it runs the same
//!   in a Lambda, a test or a CLI. JSON Schema `$ref`s to remote documents do not resolve.
//! - Linear time in the input: only the `regex` crate (no backtracking) and Aho-Corasick automata; every
//!   validator runs on a bounded candidate.
//! - No values leave the engine except in the guarded text itself: reports, block reasons, errors and
//!   `Debug` output carry entity types, rule names, spans and counts only.

#![warn(missing_docs)]

mod bits;
mod classifier;
mod decode;
mod document;
mod engine;
mod fold;
mod grounding;
mod injection;
mod lazy;
mod normalize;
mod pii;
mod profile;
mod pseudonym;
mod schema;
mod set;
mod words;

#[cfg(test)]
mod content_tests;
#[cfg(test)]
mod tests;

pub use document::{DocumentError, ExtractedText, extract_text};
pub use engine::stream::{MAX_HOLD_BYTES, OutputStreamGuard, STREAM_WINDOW_CHARS, StreamStep};
pub use engine::{
    AssembledPrompt, CallInput, GuardEngine, InputVerdict, MAX_NAME_CHARS, OutputBlocks,
    OutputVerdict, ScanFinding, SystemTrust, TextScan,
};
pub use grounding::grounding_score;
pub use normalize::is_default_ignorable;
pub use pii::Finding;
pub use profile::{
    ContentPolicy, ContentRule, EntityType, GuardProfile, InjectionPolicy, OutputPolicy, PiiPolicy,
    ProfileError, Topic,
};
pub use pseudonym::PseudonymMap;
pub use schema::{SchemaError, check_schema, validate_structured};

/// The default guard profile (`policies/guard-profiles/default.toml`), embedded so the hub always has one.
pub const DEFAULT_PROFILE: &str = include_str!("../../../policies/guard-profiles/default.toml");
