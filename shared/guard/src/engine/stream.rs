//! The output guard for streamed answers.
//!
//! Chunks arrive in arbitrary places, so a value can be split across them (`jane.doe@exa` + `mple.com`).
//! The guard releases text as soon as nothing in it can still change with more text, after running the same
//! filters as [`GuardEngine::check_output`] over it; the rest is held back. A place is settled when:
//! - no detector pattern can still match from it, or every match from it ended with two whole words (or
//!   [`LOOKAHEAD_BYTES`](crate::pii) bytes) after it, since the checks around a value read what follows it
//!   (a run of capitalised words, which the names pass reads up to the next word only, needs that word);
//!   this comes from one lazy DFA over the detectors' patterns run anchored at each place
//!   ([`PiiDetector::reach_from`](crate::pii::PiiDetector)), so ordinary prose is released word by word;
//! - no denied word can still start there: it lies more than the longest denied word (plus one character)
//!   before the end, counted in the characters and whitespace runs the word matcher folds (a look-alike
//!   letter can take four bytes), or the folded text from it to the end already differs from the start of
//!   every denied word ([`WordMatcher::unsettled_tail_start`](crate::words::WordMatcher)); the last three
//!   characters, whose folding may still change, always wait;
//! - no final candidate before it reaches past the first unsettled place, whose value could otherwise win
//!   an overlap with it.
//!
//! The cut is also never put inside a finding or between two characters that could belong to one value
//! (ASCII letters, digits and `+/=_.-@:<>%~`), so pseudonym tokens are restored whole. The last emitted
//! characters are kept as look-behind context for boundary and context checks.
//!
//! A run of held text longer than [`MAX_HOLD_BYTES`] (no real entity is that long, but a PEM body is close)
//! is released anyway, all but the last [`STREAM_WINDOW_CHARS`] characters, with any finding that straddles
//! the cut replaced whole, so memory stays bounded. Places already found settled are not searched again,
//! and the filters run only when at least [`MIN_EMIT_BYTES`] can be released (any amount for the first
//! piece, which decides the time to first token), which keeps the work per byte bounded.

use std::fmt;

use causeway_contract::{GuardAction, GuardReport, GuardStage};

use crate::engine::{GuardEngine, Hit, apply};
use crate::normalize::strip_invisible;
use crate::pii::{Reach, ReachCache, lookahead_from};
use crate::pseudonym::PseudonymMap;

/// Characters still held back when [`MAX_HOLD_BYTES`] forces a release.
pub const STREAM_WINDOW_CHARS: usize = 128;

/// Most bytes held back waiting for a run of value characters to end.
pub const MAX_HOLD_BYTES: usize = 8 * 1024;

/// Bytes of already-emitted text kept for look-behind (context words, boundaries).
const CONTEXT_BYTES: usize = 128;

/// Text is released in pieces of at least this many bytes (except the first and the last), so the filters
/// run once per few model tokens rather than once per token.
pub const MIN_EMIT_BYTES: usize = 32;

/// What to do after a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStep {
    /// Send this text to the caller now (possibly empty while text is held back).
    Emit(String),
    /// Stop the stream: the answer must not be returned. The reason names types and rules, never values.
    Blocked(String),
}

/// Guards one streamed answer; get one from [`GuardEngine::output_stream`].
pub struct OutputStreamGuard<'a> {
    engine: &'a GuardEngine,
    pseudonyms: &'a PseudonymMap,
    /// The look-behind context (`buf[..context_len]`) followed by the pending text, in one buffer that is
    /// reused for the whole stream: each step scans it in place, with no copy.
    buf: String,
    context_len: usize,
    blocked: Option<String>,
    /// No cut is allowed anywhere in `pending[..no_cut_until]` (a run of value characters); `pending` only
    /// grows at the end between emits, so this stays true and spares rescanning the run on every chunk.
    no_cut_until: usize,
    /// Every place in `buf[context_len..settled]` is settled for the PII detectors; settled places stay
    /// settled as text is added, so they are searched once.
    settled: usize,
    /// `(start, end)` in `buf` of the final candidates found in `buf[context_len..settled]`.
    candidates: Vec<(usize, usize)>,
    reach_cache: Option<ReachCache<'a>>,
    emitted: bool,
}

impl fmt::Debug for OutputStreamGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // INVARIANT: the buffers hold answer text that may contain values; print sizes only.
        f.debug_struct("OutputStreamGuard")
            .field("pending_bytes", &self.pending().len())
            .field("context_bytes", &self.context_len)
            .field("blocked", &self.blocked.is_some())
            .field(
                "settled_bytes",
                &self.settled.saturating_sub(self.context_len),
            )
            .finish_non_exhaustive()
    }
}

impl<'a> OutputStreamGuard<'a> {
    pub(crate) fn new(engine: &'a GuardEngine, pseudonyms: &'a PseudonymMap) -> Self {
        OutputStreamGuard {
            engine,
            pseudonyms,
            buf: String::new(),
            context_len: 0,
            blocked: None,
            no_cut_until: 0,
            settled: 0,
            candidates: Vec::new(),
            reach_cache: engine.pii().reach_cache(),
            emitted: false,
        }
    }

    /// Takes the next chunk of the answer and returns the text that is safe to emit now.
    ///
    /// Once a step is [`StreamStep::Blocked`], every later call returns the same reason.
    pub fn push(&mut self, chunk: &str, report: &mut GuardReport) -> StreamStep {
        if let Some(reason) = &self.blocked {
            return StreamStep::Blocked(reason.clone());
        }
        let (clean, stripped, _) = strip_invisible(chunk, self.buf.chars().next_back());
        stripped.record(GuardStage::Output, report);
        self.buf.push_str(&clean);
        self.step(false, report)
    }

    /// Ends the answer and returns the rest of the text.
    pub fn finish(&mut self, report: &mut GuardReport) -> StreamStep {
        if let Some(reason) = &self.blocked {
            return StreamStep::Blocked(reason.clone());
        }
        self.step(true, report)
    }

    fn step(&mut self, last: bool, report: &mut GuardReport) -> StreamStep {
        let stage = GuardStage::Output;
        let window_cut = if last {
            self.pending().len()
        } else {
            self.window_cut()
        };
        let too_small = window_cut == 0 || (self.emitted && window_cut < MIN_EMIT_BYTES);
        if too_small && !last && self.pending().len() < MAX_HOLD_BYTES {
            return StreamStep::Emit(String::new());
        }

        let offset = self.context_len;
        let hits: Vec<Hit> = self
            .engine
            .output_hits(&self.buf)
            .into_iter()
            .filter(|h| h.span.end > offset)
            .collect();

        let blocking: Vec<&Hit> = hits
            .iter()
            .filter(|h| h.action == GuardAction::Block)
            .collect();
        if !blocking.is_empty() {
            let mut reasons: Vec<String> = Vec::new();
            for hit in blocking {
                hit.record(stage, report);
                let reason = hit.reason(stage);
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
            let reason = reasons.join("; ");
            self.blocked = Some(reason.clone());
            self.buf.clear();
            self.context_len = 0;
            self.no_cut_until = 0;
            self.settled = 0;
            self.candidates.clear();
            return StreamStep::Blocked(reason);
        }

        let mut cut = offset + window_cut;
        if !last {
            // Never cut inside a finding: move back to its start.
            while cut > offset {
                match hits.iter().find(|h| h.span.start < cut && h.span.end > cut) {
                    Some(h) => cut = h.span.start.max(offset),
                    None => break,
                }
            }
            if cut == offset && self.pending().len() >= MAX_HOLD_BYTES {
                // Forced release: cut at the window and replace any straddling finding whole.
                cut = offset + self.raw_window_cut();
                while let Some(h) = hits.iter().find(|h| h.span.start < cut && h.span.end > cut) {
                    cut = h.span.end;
                }
            }
        }
        if cut == offset {
            return StreamStep::Emit(String::new());
        }

        let committed: Vec<Hit> = hits
            .into_iter()
            .filter(|h| h.span.start < cut)
            .map(|h| Hit {
                span: h.span.start.saturating_sub(offset)..h.span.end.min(cut) - offset,
                ..h
            })
            .collect();
        for hit in &committed {
            hit.record(stage, report);
        }
        let segment = apply(&self.buf[offset..cut], &committed, None);
        let text = self.pseudonyms.restore(&segment);

        let mut keep_from = cut.saturating_sub(CONTEXT_BYTES);
        while !self.buf.is_char_boundary(keep_from) {
            keep_from += 1;
        }
        self.buf.drain(..keep_from);
        self.context_len = cut - keep_from;
        self.no_cut_until = 0;
        self.settled = self.settled.max(cut) - keep_from;
        self.candidates.retain(|&(start, _)| start >= cut);
        for (start, end) in &mut self.candidates {
            *start -= keep_from;
            *end -= keep_from;
        }
        self.emitted = true;
        StreamStep::Emit(text)
    }

    /// The text not yet emitted.
    fn pending(&self) -> &str {
        self.buf.get(self.context_len..).unwrap_or_default()
    }

    /// Byte index in `pending` that leaves [`STREAM_WINDOW_CHARS`] characters after it, or 0.
    fn raw_window_cut(&self) -> usize {
        self.pending()
            .char_indices()
            .rev()
            .nth(STREAM_WINDOW_CHARS - 1)
            .map_or(0, |(i, _)| i)
    }

    /// Byte index in `pending` before which all text is settled (see the module docs), moved back so it
    /// does not split a run of value characters; 0 when nothing can be released.
    fn window_cut(&mut self) -> usize {
        let offset = self.context_len;
        let words_bound = self.engine.words().unsettled_tail_start(&self.buf);
        let lookahead = lookahead_from(&self.buf);
        let mut at = self.settled.max(offset);
        while at < words_bound {
            if self.buf.is_char_boundary(at) {
                match self.engine.pii().reach_from(
                    self.reach_cache.as_mut(),
                    &self.buf,
                    at,
                    lookahead,
                ) {
                    Reach::Open => break,
                    Reach::Nothing => {}
                    Reach::Until(end) => self.candidates.push((at, end)),
                }
            }
            at += 1;
        }
        self.settled = at;
        let mut raw = at.min(words_bound.max(offset));
        // A final candidate reaching past the cut might lose or win an overlap with a value not final yet.
        while let Some(&(start, _)) = self
            .candidates
            .iter()
            .find(|&&(start, end)| start < raw && end > raw)
        {
            raw = start;
        }
        let raw = raw - offset;

        let mut cut = raw;
        while cut > self.no_cut_until {
            let pending = self.pending();
            let prev = pending[..cut].chars().next_back();
            let next = pending[cut..].chars().next();
            match (prev, next) {
                (Some(p), Some(n)) if is_value_char(p) && is_value_char(n) => cut -= p.len_utf8(),
                _ => return cut,
            }
        }
        self.no_cut_until = raw;
        0
    }
}

/// Characters that can appear inside one detected value or pseudonym token.
fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+/=_.-@:<>%~".contains(c)
}
