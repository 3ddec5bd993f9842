//! The output guard for streamed answers.
//!
//! Chunks arrive in arbitrary places, so a value can be split across them (`jane.doe@exa` + `mple.com`).
//! The guard holds back a carry-over window of the last [`STREAM_WINDOW_CHARS`] characters and only
//! emits text before it, after running the same filters as [`GuardEngine::check_output`]. The cut point
//! is moved back so that it never falls inside a finding or between two characters that could belong to
//! one value (ASCII letters, digits and `+/=_.-@:<>%~`), so no partial match is ever emitted and pseudonym
//! tokens are restored whole. The last emitted characters are kept as look-behind context for boundary
//! and context checks.
//!
//! A run of value characters longer than [`MAX_HOLD_BYTES`] (no real entity is that long, but a PEM body
//! is close) is released anyway, with any finding that straddles the cut replaced whole, so memory stays
//! bounded. Detection only runs when something could be emitted, which keeps the work per byte constant.

use std::fmt;

use causeway_contract::{GuardAction, GuardReport, GuardStage};

use crate::engine::{GuardEngine, Hit, apply};
use crate::normalize::strip_invisible;
use crate::pseudonym::PseudonymMap;

/// Characters held back at the end of the stream until more text (or the end) shows what they are.
pub const STREAM_WINDOW_CHARS: usize = 128;

/// Most bytes held back waiting for a run of value characters to end.
pub const MAX_HOLD_BYTES: usize = 8 * 1024;

/// Bytes of already-emitted text kept for look-behind (context words, boundaries).
const CONTEXT_BYTES: usize = 128;

/// Text is released in pieces of at least this many bytes (except at the end), so the filters run once
/// per few model tokens rather than once per token.
const MIN_EMIT_BYTES: usize = 32;

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
}

impl fmt::Debug for OutputStreamGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // INVARIANT: the buffers hold answer text that may contain values; print sizes only.
        f.debug_struct("OutputStreamGuard")
            .field("pending_bytes", &self.pending().len())
            .field("context_bytes", &self.context_len)
            .field("blocked", &self.blocked.is_some())
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
        }
    }

    /// Takes the next chunk of the answer and returns the text that is safe to emit now.
    ///
    /// Once a step is [`StreamStep::Blocked`], every later call returns the same reason.
    pub fn push(&mut self, chunk: &str, report: &mut GuardReport) -> StreamStep {
        if let Some(reason) = &self.blocked {
            return StreamStep::Blocked(reason.clone());
        }
        let (clean, stripped, _) = strip_invisible(chunk);
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
        if window_cut < MIN_EMIT_BYTES && !last && self.pending().len() < MAX_HOLD_BYTES {
            return StreamStep::Emit(String::new());
        }

        let offset = self.context_len;
        let hits: Vec<Hit> = self
            .engine
            .hits(&self.buf, stage)
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

    /// [`Self::raw_window_cut`] moved back so it does not split a run of value characters.
    fn window_cut(&mut self) -> usize {
        let raw = self.raw_window_cut();
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
