//! The text the denied-word and topic matcher reads: folded so that a look-alike of a word matches the
//! word, with a map back to the offsets of the text itself, so a match masks exactly the characters that
//! formed it.
//!
//! Each character of the text becomes, in order of the rules:
//! - nothing, when it is default-ignorable (zero-width characters, joiners, the combining grapheme joiner,
//!   variation selectors, Hangul fillers, soft hyphen, tags; see [`is_default_ignorable`]);
//! - one space for a whole run of whitespace of any kind (spaces, tabs, line breaks, no-break spaces, the
//!   ideographic space), so a phrase broken across lines or padded with double spaces still matches;
//! - `-` for every dash and hyphen (Unicode's `Dash` property: U+2010..U+2015, U+2212 minus sign, U+FE58,
//!   U+FE63, U+FF0D, ...);
//! - itself when it is ASCII: ASCII is never folded into other ASCII, because the confusable skeleton of
//!   TR39 makes `m` and `rn`, or `d` and `cl`, the same and ordinary words would collide (`dam`, `clam`);
//!   case is left to the automaton, which matches ASCII case-insensitively;
//! - its compatibility decomposition when that is ASCII (full-width forms, mathematical alphanumerics,
//!   ligatures, circled and super- or subscript digits);
//! - otherwise its confusable skeleton (Unicode TR39, from the `unicode-security` crate) when that is
//!   ASCII: Cyrillic `е` and `р`, Greek `ο` and `ν`, Cherokee `Ꭺ`. A skeleton that is the prototype of
//!   ASCII characters becomes one of them, the one of the same case or kind (`rn` is the prototype of `m`,
//!   and `l` of `l`, `I`, `1` and `|`: Cyrillic `І` folds to `I`, Cyrillic `ӏ` to `l`);
//! - itself otherwise, and also when the ASCII form is not of the character's kind (a letter or digit
//!   whose form holds punctuation, or a symbol whose form holds letters), so a fold never splits a word or
//!   joins two. Words in Cyrillic, Greek or any other script keep every letter that does not look Latin, so
//!   only a word every letter of which is a look-alike can match a Latin word.
//!
//! Patterns go through the same folding, so a denied word written in another script still matches itself.
//!
//! One pass over the text; text that is ASCII with no whitespace but single spaces is used as it is.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use unicode_normalization::char::decompose_compatible;

use crate::normalize::is_default_ignorable;

/// A folded text and the way back to the offsets of the text it was made from.
#[derive(Debug)]
pub(crate) struct Folded<'t> {
    /// The folded text.
    pub(crate) text: Cow<'t, str>,
    /// The places where folded and original bytes do not correspond one to one, in order. Between two of
    /// them (and before the first) each folded byte stands for the original byte at the same distance.
    pieces: Vec<Piece>,
}

/// Folded bytes `view` that stand for the original bytes `orig` as a whole.
#[derive(Debug, Clone, Copy)]
struct Piece {
    view_start: usize,
    view_end: usize,
    orig_start: usize,
    orig_end: usize,
}

impl Folded<'_> {
    /// The range of the original text that the folded range `span` was made from: every character that
    /// formed it, and the ignorable characters inside it.
    pub(crate) fn original(&self, span: Range<usize>) -> Range<usize> {
        self.start_of(span.start)..self.end_of(span.end)
    }

    fn start_of(&self, at: usize) -> usize {
        let k = self.pieces.partition_point(|p| p.view_start <= at);
        match k.checked_sub(1).and_then(|k| self.pieces.get(k)) {
            None => at,
            Some(p) if at < p.view_end => p.orig_start,
            Some(p) => p.orig_end + (at - p.view_end),
        }
    }

    fn end_of(&self, at: usize) -> usize {
        let k = self.pieces.partition_point(|p| p.view_start < at);
        match k.checked_sub(1).and_then(|k| self.pieces.get(k)) {
            None => at,
            Some(p) if at <= p.view_end => p.orig_end,
            Some(p) => p.orig_end + (at - p.view_end),
        }
    }
}

/// Folds `text` for matching (see the module docs).
pub(crate) fn fold(text: &str) -> Folded<'_> {
    if !needs_folding(text) {
        return Folded {
            text: Cow::Borrowed(text),
            pieces: Vec::new(),
        };
    }
    let mut builder = Builder {
        out: String::with_capacity(text.len()),
        pieces: Vec::new(),
        run: None,
        scratch: Scratch::default(),
    };
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < text.len() {
        // Printable ASCII folds to itself, and so does a single space between two printable characters
        // (unless it continues a run of whitespace): copied a stretch at a time.
        let printable = |b: u8| (0x21..=0x7E).contains(&b);
        let mut plain_end = at;
        while let Some(&b) = bytes.get(plain_end) {
            let plain = printable(b)
                || (b == b' '
                    && !(plain_end == at && builder.run.is_some())
                    && bytes
                        .get(plain_end + 1)
                        .is_some_and(|&next| printable(next)));
            if !plain {
                break;
            }
            plain_end += 1;
        }
        if plain_end > at {
            builder.end_run();
            builder.out.push_str(&text[at..plain_end]);
            at = plain_end;
            continue;
        }
        let Some(c) = text[at..].chars().next() else {
            break;
        };
        builder.push(at, c);
        at += c.len_utf8();
    }
    builder.end_run();
    Folded {
        text: Cow::Owned(builder.out),
        pieces: builder.pieces,
    }
}

/// The folded form of a pattern (a denied word or topic phrase), without the map.
pub(crate) fn fold_pattern(pattern: &str) -> String {
    fold(pattern).text.into_owned()
}

/// The byte index in `text` where its last `units` units start, a unit being a character that is not
/// ignorable or a whole run of whitespace (0 when the text has fewer). Every character that is not ignorable
/// folds to at least one character and a whitespace run to exactly one, so a match of `units` folded
/// characters that ends at the end of the text starts at or after this index.
pub(crate) fn start_of_last_units(text: &str, units: usize) -> usize {
    let mut counted = 0;
    let mut start = text.len();
    let mut in_space = false;
    for (at, c) in text.char_indices().rev() {
        // No ASCII character is ignorable, and ASCII whitespace is `is_ascii_space`.
        let space = if c.is_ascii() {
            is_ascii_space(c as u8)
        } else if is_default_ignorable(c) {
            continue;
        } else {
            c.is_whitespace()
        };
        if !(space && in_space) {
            if counted == units {
                return start;
            }
            counted += 1;
        }
        start = at;
        in_space = space;
    }
    0
}

fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// False for text that folds to itself: ASCII without whitespace other than single spaces.
fn needs_folding(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b >= 0x80
            || (b != b' ' && is_ascii_space(b))
            || (b == b' ' && bytes.get(i + 1) == Some(&b' '))
    })
}

/// Unicode's `Dash` property (`PropList.txt`), ASCII `-` aside.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '\u{058A}'
            | '\u{05BE}'
            | '\u{1400}'
            | '\u{1806}'
            | '\u{2010}'..='\u{2015}'
            | '\u{2053}'
            | '\u{207B}'
            | '\u{208B}'
            | '\u{2212}'
            | '\u{2E17}'
            | '\u{2E1A}'
            | '\u{2E3A}'..='\u{2E3B}'
            | '\u{2E40}'
            | '\u{2E5D}'
            | '\u{301C}'
            | '\u{3030}'
            | '\u{30A0}'
            | '\u{FE31}'..='\u{FE32}'
            | '\u{FE58}'
            | '\u{FE63}'
            | '\u{FF0D}'
            | '\u{10D6E}'
            | '\u{10EAD}'
    )
}

/// Buffers reused across the characters of one text, and the folds already worked out for it: text in
/// one script repeats a few dozen letters, so each is decomposed and looked up once.
#[derive(Debug)]
struct Scratch {
    decomposed: String,
    skeleton: String,
    cache: [Cached; CACHE_SLOTS],
}

/// Slots of [`Scratch::cache`], indexed by the low bits of the code point (a script's letters are
/// contiguous, so they rarely share a slot).
const CACHE_SLOTS: usize = 128;

/// A character and its fold: `len` ASCII bytes in `bytes`, or [`KEEP`] when it folds to itself.
#[derive(Debug, Clone, Copy)]
struct Cached {
    key: char,
    len: u8,
    bytes: [u8; 7],
}

const KEEP: u8 = u8::MAX;

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            decomposed: String::new(),
            skeleton: String::new(),
            // Only non-ASCII characters are looked up, so NUL marks an empty slot.
            cache: [Cached {
                key: '\0',
                len: KEEP,
                bytes: [0; 7],
            }; CACHE_SLOTS],
        }
    }
}

impl Scratch {
    /// [`fold_char`], remembered per character.
    fn fold(&mut self, c: char, out: &mut String) -> bool {
        let slot = (u32::from(c) as usize) % CACHE_SLOTS;
        let cached = self.cache[slot];
        if cached.key == c {
            if cached.len == KEEP {
                return false;
            }
            if let Ok(ascii) = std::str::from_utf8(&cached.bytes[..usize::from(cached.len)]) {
                out.push_str(ascii);
                return true;
            }
        }
        let start = out.len();
        let folded = fold_char(c, &mut self.decomposed, &mut self.skeleton, out);
        let added = &out.as_bytes()[start..];
        if !folded {
            self.cache[slot] = Cached {
                key: c,
                len: KEEP,
                bytes: [0; 7],
            };
        } else if let Ok(len) = u8::try_from(added.len())
            && added.len() <= 7
        {
            let mut bytes = [0; 7];
            bytes[..added.len()].copy_from_slice(added);
            self.cache[slot] = Cached { key: c, len, bytes };
        }
        folded
    }
}

struct Builder {
    out: String,
    pieces: Vec<Piece>,
    /// The whitespace run being read: where its space is in `out`, and the original bytes it covers.
    run: Option<(usize, Range<usize>)>,
    scratch: Scratch,
}

impl Builder {
    fn push(&mut self, at: usize, c: char) {
        let len = c.len_utf8();
        if c.is_ascii() && !is_ascii_space(c as u8) {
            self.end_run();
            self.out.push(c);
            return;
        }
        if c.is_whitespace() {
            match &mut self.run {
                Some((_, orig)) => orig.end = at + len,
                None => {
                    self.run = Some((self.out.len(), at..at + len));
                    self.out.push(' ');
                }
            }
            return;
        }
        if is_default_ignorable(c) {
            match &mut self.run {
                // Inside a run of whitespace it is part of the run.
                Some((_, orig)) => orig.end = at + len,
                None => self.piece(self.out.len(), at, at + len),
            }
            return;
        }
        self.end_run();
        let view_start = self.out.len();
        if is_dash(c) {
            self.out.push('-');
        } else if !self.scratch.fold(c, &mut self.out) {
            self.out.push(c);
            return;
        }
        self.piece(view_start, at, at + len);
    }

    /// Records that `out[view_start..]` stands for the original bytes `orig_start..orig_end`.
    fn piece(&mut self, view_start: usize, orig_start: usize, orig_end: usize) {
        self.pieces.push(Piece {
            view_start,
            view_end: self.out.len(),
            orig_start,
            orig_end,
        });
    }

    fn end_run(&mut self) {
        if let Some((view_start, orig)) = self.run.take()
            && orig.len() != 1
        {
            self.pieces.push(Piece {
                view_start,
                view_end: view_start + 1,
                orig_start: orig.start,
                orig_end: orig.end,
            });
        }
    }
}

/// Pushes the ASCII form of the non-ASCII character `c` onto `out` and returns true, or returns false
/// when it has none (see the module docs).
fn fold_char(c: char, decomposed: &mut String, skeleton: &mut String, out: &mut String) -> bool {
    decomposed.clear();
    decompose_compatible(c, |d| decomposed.push(d));
    if decomposed.is_ascii() {
        return push_same_kind(c, decomposed, out);
    }
    skeleton.clear();
    skeleton.extend(unicode_security::skeleton(decomposed));
    if skeleton.is_empty() || !skeleton.is_ascii() {
        return false;
    }
    match ascii_prototypes().get(skeleton.as_str()) {
        Some(candidates) => {
            let mut buf = [0; 4];
            push_same_kind(c, pick(candidates, c, skeleton).encode_utf8(&mut buf), out)
        }
        None => push_same_kind(c, skeleton, out),
    }
}

/// Pushes `folded` for `c` when every character of it is of `c`'s kind (word character or not), so a fold
/// never splits a word or joins two: Ukrainian `ґ` has the skeleton `r'`, which would make `Тсонґа` read as
/// `Tcoнr'` and `a`.
fn push_same_kind(c: char, folded: &str, out: &mut String) -> bool {
    let kind = is_word(c);
    if folded.is_empty() || folded.chars().any(|f| is_word(f) != kind) {
        return false;
    }
    out.push_str(folded);
    true
}

/// A letter, digit or `_`: what the whole-word test of the matcher treats as part of a word.
pub(crate) fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The printable ASCII characters that have each TR39 prototype.
fn ascii_prototypes() -> &'static HashMap<String, Vec<char>> {
    static PROTOTYPES: OnceLock<HashMap<String, Vec<char>>> = OnceLock::new();
    PROTOTYPES.get_or_init(|| {
        let mut map: HashMap<String, Vec<char>> = HashMap::new();
        for a in '!'..='~' {
            let mut buf = [0; 4];
            let prototype: String = unicode_security::skeleton(a.encode_utf8(&mut buf)).collect();
            map.entry(prototype).or_default().push(a);
        }
        map
    })
}

/// Which of the ASCII `candidates` sharing a prototype the look-alike `c` stands for: the one of its case
/// (or a digit for a digit), else the prototype itself when it is one of them, else the first.
fn pick(candidates: &[char], c: char, prototype: &str) -> char {
    let of_kind = |kind: fn(&char) -> bool| candidates.iter().copied().find(kind);
    let by_kind = if c.is_uppercase() {
        of_kind(char::is_ascii_uppercase)
    } else if c.is_lowercase() {
        of_kind(char::is_ascii_lowercase)
    } else if c.is_numeric() {
        of_kind(char::is_ascii_digit)
    } else {
        None
    };
    by_kind
        .or_else(|| {
            let mut chars = prototype.chars();
            match (chars.next(), chars.next()) {
                (Some(only), None) if candidates.contains(&only) => Some(only),
                _ => None,
            }
        })
        .or_else(|| candidates.first().copied())
        .unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(text: &str) -> String {
        fold(text).text.into_owned()
    }

    #[test]
    fn ascii_text_with_single_spaces_is_not_copied() {
        assert!(matches!(fold("plain text here").text, Cow::Borrowed(_)));
        assert!(matches!(fold("two  spaces").text, Cow::Owned(_)));
    }

    #[test]
    fn folds_dashes_confusables_ignorables_and_whitespace() {
        assert_eq!(folded("project\u{2010}bluebird"), "project-bluebird");
        assert_eq!(folded("project\u{2212}bluebird"), "project-bluebird");
        assert_eq!(folded("project\u{FF0D}bluebird"), "project-bluebird");
        assert_eq!(folded("projеct"), "project"); // Cyrillic е
        assert_eq!(folded("ΡΑΥΡΑL"), "PAYPAL"); // Greek capitals
        assert_eq!(folded("blue\u{034F}bird"), "bluebird");
        assert_eq!(folded("blue\u{FE0F}bird"), "bluebird");
        assert_eq!(folded("blue\u{E0100}bird\u{00AD}"), "bluebird");
        assert_eq!(
            folded("which  stocks\n\tshould\u{00A0}I buy"),
            "which stocks should I buy"
        );
        assert_eq!(folded("ｂｌｕｅ𝐛𝐢𝐫𝐝"), "bluebird");
        assert_eq!(folded("ﬁne"), "fine");
    }

    #[test]
    fn look_alikes_of_ascii_letters_fold_to_the_letter_of_their_case() {
        // Cyrillic capital Byelorussian-Ukrainian I looks like a Latin capital I, the palochka like `l`.
        assert_eq!(folded("\u{0406}BM"), "IBM");
        assert_eq!(folded("b\u{04CF}ue"), "blue");
        // The prototype of `m` is `rn`: a look-alike of `m` is `m`, and ASCII `rn` stays `rn`.
        assert_eq!(folded("rn"), "rn");
        assert_eq!(folded("\u{217F}"), "m"); // small roman numeral one thousand
    }

    #[test]
    fn a_fold_never_splits_or_joins_words() {
        // Ukrainian ґ has the skeleton `r'`: kept, so the word stays one word.
        assert_eq!(folded("Тсонґа"), "Tcoнґa");
        // A symbol that looks like a letter does not join the words around it.
        assert!(!folded("blue\u{2223}bird").contains("bluelbird"));
    }

    #[test]
    fn words_that_do_not_look_latin_keep_their_letters() {
        for text in ["привет мир", "Καλημέρα κόσμε", "שלום", "こんにちは"]
        {
            let f = folded(text);
            assert!(!f.is_ascii(), "{text} folded to {f}");
        }
    }

    #[test]
    fn spans_map_back_to_the_original_characters() {
        let text = "a\u{200B} pr\u{043E}ject\u{2010}blue\u{FE0F}bird \n\n end";
        let f = fold(text);
        assert_eq!(f.text, "a project-bluebird end");
        let at = f.text.find("project-bluebird").unwrap();
        let span = f.original(at..at + "project-bluebird".len());
        assert_eq!(&text[span], "pr\u{043E}ject\u{2010}blue\u{FE0F}bird");
        let end = f.text.find("end").unwrap();
        assert_eq!(&text[f.original(end..end + 3)], "end");
        assert_eq!(&text[f.original(0..1)], "a");
    }

    #[test]
    fn last_units_count_characters_and_whitespace_runs() {
        assert_eq!(start_of_last_units("abc def", 3), 4);
        assert_eq!(start_of_last_units("abc   def", 4), 3);
        assert_eq!(start_of_last_units("ab\u{200B}c", 2), 1);
        assert_eq!(start_of_last_units("ab", 5), 0);
        // A non-ASCII space and an ignorable character join the ASCII space's run.
        assert_eq!(start_of_last_units("a\u{00A0}\u{00AD} b\t\n", 2), 6);
        assert_eq!(start_of_last_units("a\u{00A0}\u{00AD} b\t\n", 3), 1);
    }

    /// The property list above is Unicode's: every code point whose TR39 skeleton is empty is ignorable
    /// (the skeleton drops exactly the `Default_Ignorable_Code_Point` characters), and no other.
    #[test]
    fn default_ignorable_matches_the_unicode_property() {
        let mut buf = [0; 4];
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let empty = unicode_security::skeleton(c.encode_utf8(&mut buf))
                .next()
                .is_none();
            assert_eq!(is_default_ignorable(c), empty, "U+{:04X}", u32::from(c));
        }
    }
}
