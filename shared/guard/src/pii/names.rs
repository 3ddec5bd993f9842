//! Names of people, places and organisations, found without a model: runs of capitalised words are read
//! against the gazetteers ([`crate::pii::gazetteer`](mod@crate::pii::gazetteer)) and the words around them.
//!
//! - A person: a first name followed by a surname or another capitalised word (`Helena Gregorová`), a
//!   surname after a known first name or a title (`Dr Okafor`), any capitalised word after a greeting or a
//!   naming phrase (`Hi Elbio`, `my name is Namihiko`), and a known first name on its own when it is not the
//!   first word of a sentence (a capitalised word there says little).
//! - A place: a country or a US state; a city after a place word (`in`, `from`, `near` ...) or before `,`
//!   and a region or country; any capitalised words after a moving or living phrase (`moved here from Eiðar`).
//! - An organisation: capitalised words ending in a legal form or an organisation noun (`Prosus N.V.`,
//!   `McCormick & Company Incorporated`).
//!
//! Constraints, for the stream guard to stay exact: a finding starts at a capitalised word and ends inside
//! the run of capitalised words it starts in (the run is the [`SHAPE`] pattern, which the stream guard's
//! automaton includes); the words read before a run lie within [`MAX_CONTEXT_WINDOW`] bytes of it, and the
//! only text read after a run is the next word ([`next_word_settled`] says when a growing text holds it).
//! Every step is a bounded look at a word or a gazetteer
//! lookup, so the pass is linear in the text.

use std::sync::OnceLock;

use crate::bits::HIGH;
use crate::pii::detectors::MAX_CONTEXT_WINDOW;
use crate::pii::gazetteer::{Gazetteer, Kinds};
use crate::pii::{Finding, ShortWords, ascii_capitals};
use crate::profile::EntityType;

/// A run of capitalised words (with the joining words of names: `&`, `of`, `de`, `van` ...), as a pattern:
/// every name finding starts where this matches and ends no later than the furthest match from there.
pub(crate) const SHAPE: &str = r"[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*(?:,? (?:(?:&|and|of|de|del|della|di|da|das|do|dos|du|la|le|les|van|von|der|den|y|the) )*[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*)*";

/// Joining words allowed inside a run (must match [`SHAPE`]).
const JOINERS: &[&str] = &[
    "&", "and", "of", "de", "del", "della", "di", "da", "das", "do", "dos", "du", "la", "le",
    "les", "van", "von", "der", "den", "y", "the",
];

/// Bytes of the longest of [`JOINERS`].
const LONGEST_JOINER: usize = 5;

/// Titles before a name.
#[rustfmt::skip]
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "madam", "madame",
    "mister", "monsieur", "mme", "herr", "frau", "señor", "señora", "sr", "sra", "rev", "fr",
];

/// Greetings and sign-offs that put a name right after them.
#[rustfmt::skip]
const GREETINGS: &[&str] = &["hi", "hello", "hey", "dear", "thanks", "cheers", "attn", "regards"];

/// Phrases (lower case, the words right before a run) after which any capitalised word is a person's name.
#[rustfmt::skip]
const NAMING: &[&[&str]] = &[
    &["name", "is"], &["name", "was"], &["named"], &["called"], &["i", "am"], &["this", "is"],
    &["call", "me"], &["calls", "me"], &["mr"], &["mrs"], &["ms"], &["dr"], &["miss"],
    &["name"], &["signed"], &["regards"], &["patient"], &["applicant"], &["employee"],
];

/// Credits of a work (who directed, wrote, sang or played in it): a person's name follows when it is two
/// name words or a known name (`written by Finance` is a department).
#[rustfmt::skip]
const CREDITS: &[&[&str]] = &[
    &["directed", "by"], &["written", "by"], &["sung", "by"], &["composed", "by"], &["performed", "by"],
    &["narrated", "by"], &["illustrated", "by"], &["painted", "by"], &["authored", "by"], &["starring"],
];

/// Possessives before a word for a relative or an acquaintance (`my son Tomas`, `her colleague Ines`):
/// the capitalised word right after such a pair is that person's name.
#[rustfmt::skip]
const POSSESSIVES: &[&str] = &["my", "his", "her", "our", "their", "your"];
#[rustfmt::skip]
const RELATIVES: &[&str] = &[
    "son", "daughter", "kid", "child", "baby", "wife", "husband", "brother", "sister",
    "mother", "father", "mom", "mum", "dad", "grandson", "granddaughter", "grandmother", "grandfather",
    "grandma", "grandpa", "uncle", "aunt", "cousin", "nephew", "niece", "fiancé", "fiancée", "fiance",
    "fiancee", "boyfriend", "girlfriend", "friend", "colleague", "neighbour", "neighbor", "boss",
    "stepson", "stepdaughter", "stepmother", "stepfather",
];

/// Words after which a capitalised word is a person's name when the gazetteers know it as a first name or
/// a surname (`by Lundberg`, not `by Amazon`).
#[rustfmt::skip]
const NAMING_WEAK: &[&[&str]] = &[
    &["by"], &["with"], &["contact"], &["ask"], &["from"], &["customer"], &["client"], &["user"],
    &["and"], &["to"], &["for"], &["cc"], &["starring"],
];

/// Phrases after which capitalised words are a place, known or not.
#[rustfmt::skip]
const PLACE_PHRASES: &[&[&str]] = &[
    &["live", "in"], &["lives", "in"], &["lived", "in"], &["living", "in"], &["moved", "to"],
    &["moved", "from"], &["here", "from"], &["born", "in"], &["based", "in"], &["located", "in"],
    &["relocated", "to"], &["come", "from"], &["comes", "from"], &["came", "from"], &["grew", "up", "in"],
    &["travel", "to"], &["travelling", "to"], &["traveling", "to"], &["flew", "to"], &["flying", "to"],
    &["resident", "of"], &["citizen", "of"], &["office", "in"],
];

/// Phrases of where someone lives or comes from, after which a name written in capitals (`lives in
/// KNONAU`) is a place: an address block or a form often capitalises the town.
#[rustfmt::skip]
const RESIDENCE_PHRASES: &[&[&str]] = &[
    &["live", "in"], &["lives", "in"], &["lived", "in"], &["living", "in"], &["born", "in"],
    &["grew", "up", "in"], &["based", "in"], &["resident", "of"], &["citizen", "of"], &["come", "from"],
    &["comes", "from"], &["came", "from"], &["here", "from"], &["originally", "from"],
];

/// Words before a known city that make it a place.
#[rustfmt::skip]
const PLACE_WORDS: &[&str] = &[
    "in", "from", "to", "at", "near", "around", "outside", "visit", "visiting", "via", "city", "town",
    "where", "address", "located", "based",
];

/// Words right after a lone first name that make it a person.
#[rustfmt::skip]
const PERSON_VERBS: &[&str] = &[
    "is", "was", "said", "says", "told", "asked", "wrote", "writes", "called", "has", "had", "will",
    "would", "can", "wants", "thinks", "and", "s", "just", "also", "were", "are",
];

/// Verbs only people do (not `is`, `has`, `will`), after a full name that opens a sentence; not read after
/// a single word (`the Games began`).
#[rustfmt::skip]
const HUMAN_VERBS: &[&str] = &[
    "said", "says", "told", "asked", "wrote", "writes", "wants", "thinks", "lives", "lived", "works",
    "worked", "joined", "spent", "began", "died", "married", "explained", "believes",
];

/// Capitalised words that open sentences and headings: never a name on their own, whatever the lists say.
#[rustfmt::skip]
const NOT_NAMES: &[&str] = &[
    "the", "a", "an", "this", "that", "these", "those", "i", "we", "you", "he", "she", "it", "they",
    "my", "our", "your", "his", "her", "their", "its", "please", "thanks", "thank", "hi", "hello",
    "dear", "yes", "no", "ok", "if", "when", "where", "why", "how", "what", "who", "which", "can",
    "could", "would", "should", "will", "may", "might", "must", "do", "does", "did", "is", "are",
    "was", "were", "be", "in", "on", "at", "to", "for", "from", "with", "by", "of", "and", "or", "but",
    "not", "all", "any", "some", "each", "every", "new", "old", "mr", "mrs", "ms", "dr", "miss",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "name", "address", "phone", "email", "city", "state", "country",
    "street", "road", "avenue", "apt", "suite", "unit", "box", "inc", "ltd", "llc", "corp", "co",
    "company", "group", "bank", "user", "bot", "customer", "agent", "patient", "client", "team",
    "account", "order", "note", "notes", "re", "fw", "fwd", "cc", "subject", "from", "sent", "date",
    "time", "today", "tomorrow", "yesterday", "also", "after", "before", "then", "there", "here",
    "so", "just", "still", "only", "even", "very", "more", "most", "such", "other", "one", "two",
    "first", "last", "next", "same", "well", "now", "let", "lets", "let's", "see", "get", "go",
    "make", "use", "add", "set", "run", "check", "send", "call", "help", "find", "show", "tell",
    "give", "take", "keep", "write", "read", "ask", "try", "need", "want", "like", "know",
    "directed", "starring", "dept", "department", "director", "manager", "officer", "president",
    "ceo", "cto", "cfo", "vp", "head", "lead", "senior", "junior", "chief", "jan", "feb", "mar",
    "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed",
    "thu", "thur", "thurs", "fri", "sat", "sun", "i'm", "i'll", "i've", "i'd", "im",
];

/// Whether `word`, in any case, is one of [`NOT_NAMES`]: an ASCII word is looked up as it is (the lookup
/// ignores ASCII case), any other in lower case first (the Kelvin sign `K` lowercases to an ASCII `k`).
fn is_stop_word_any_case(word: &str) -> bool {
    if word.is_ascii() {
        is_stop_word(word)
    } else {
        is_stop_word(Lower::of(word).as_str())
    }
}

/// Whether `word` (lower case) is one of [`NOT_NAMES`]: a lookup of the word packed into a `u128` (the
/// set is built on first use).
fn is_stop_word(word: &str) -> bool {
    static SET: OnceLock<ShortWords<bool>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = ShortWords::default();
        for word in NOT_NAMES {
            if let Some(stop) = set.entry(word) {
                *stop = true;
            }
        }
        set
    })
    .get(word)
    .unwrap_or(false)
}

/// A word of the text.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    /// End of the word without trailing dots.
    end: usize,
    /// End with trailing dots (`D.`, `Inc.`).
    end_dots: usize,
}

/// Confidence at or above which a name finding is reported; weaker ones are dropped here.
pub(crate) const MIN_NAME_CONFIDENCE: f32 = 0.6;

fn is_upper_start(c: char) -> bool {
    c.is_ascii_uppercase()
        || matches!(c, 'À'..='Ö' | 'Ø'..='Þ')
        || (matches!(c, 'Ā'..='ž') && c.is_uppercase())
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, 'À'..='Ö' | 'Ø'..='ö' | 'ø'..='ÿ' | 'Ā'..='ž' | '\'' | '’' | '.' | '-')
}

/// Written like a name: a capital, then lower case, with a capital again only after `Mc`, `Mac`, `O'`, a
/// hyphen or an apostrophe (`McDonald`, `O'Brien`, `Jean-Luc`), not inside a product name (`ChatGPT`,
/// `OpenAI`, `JailBreak`).
fn name_shaped(word: &str) -> bool {
    let mut prev: Option<char> = None;
    let mut lower = false;
    for (i, c) in word.char_indices() {
        if i > 0 && c.is_uppercase() {
            let after_mark = matches!(prev, Some('-' | '\'' | '’'));
            let prefix = matches!(
                &word[..i],
                "Mc" | "Mac" | "De" | "Di" | "La" | "Le" | "Van" | "O"
            );
            if !(after_mark || prefix) {
                return false;
            }
        }
        lower |= c.is_lowercase();
        prev = Some(c);
    }
    lower
}

/// The capitalised word at `at` (which starts with a capital), if the character before it does not glue
/// it to a longer word.
fn word_at(text: &str, at: usize) -> Word {
    // ASCII bytes one at a time; from the first byte outside ASCII on, characters.
    let bytes = text.as_bytes();
    let mut end_dots = at;
    while let Some(&b) = bytes.get(end_dots)
        && (b.is_ascii_alphabetic() || matches!(b, b'\'' | b'.' | b'-'))
    {
        end_dots += 1;
    }
    if bytes.get(end_dots).is_some_and(|b| !b.is_ascii()) {
        let rest = &text[end_dots..];
        end_dots += rest
            .char_indices()
            .find(|&(_, c)| !is_word_char(c))
            .map_or(rest.len(), |(i, _)| i);
    }
    let core = text[at..end_dots].trim_end_matches(['.', '-', '\'', '’']);
    // A possessive is not part of the name: `Brandt's`.
    let core = core
        .strip_suffix("'s")
        .or_else(|| core.strip_suffix("’s"))
        .filter(|c| !c.is_empty())
        .unwrap_or(core);
    let end = at + core.len();
    Word {
        start: at,
        end,
        end_dots,
    }
}

/// The runs of capitalised words in `text`, each as its words.
#[cfg(test)]
fn runs(text: &str) -> Vec<Vec<Word>> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    let mut i = 0;
    while let Some(next) = next_run(text, i, &mut run) {
        out.push(run.clone());
        i = next;
    }
    out
}

/// The first run of capitalised words in `text` at or after byte `i`, its words written into `run`; the
/// byte to look for the next run from, or `None` when there is no run left.
fn next_run(text: &str, mut i: usize, run: &mut Vec<Word>) -> Option<usize> {
    let bytes = text.as_bytes();
    while i < text.len() {
        // Eight ASCII bytes at a time while none is a capital.
        if let Some(eight) = bytes
            .get(i..i + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            && !may_hold_capital(u64::from_le_bytes(eight))
        {
            i += 8;
            continue;
        }
        // A capital is an ASCII capital or a Latin-1 / Latin Extended-A letter (lead byte C3 to C5): skip the
        // rest without decoding.
        if !(bytes[i].is_ascii_uppercase() || (0xC3..=0xC5).contains(&bytes[i])) {
            i += 1;
            continue;
        }
        let c = text[i..].chars().next()?;
        let glued = text[..i]
            .chars()
            .next_back()
            .is_some_and(|p| p.is_alphanumeric() || is_word_char(p) || p == '_' || p == '@');
        if !is_upper_start(c) || glued {
            i += c.len_utf8();
            continue;
        }
        run.clear();
        run.push(word_at(text, i));
        let mut at = run[0].end_dots;
        // Further words: `,`? ` ` (joiner ` `)* capitalised word.
        loop {
            let mut j = at;
            if bytes.get(j) == Some(&b',') {
                j += 1;
            }
            if bytes.get(j) != Some(&b' ') {
                break;
            }
            j += 1;
            // A joining word is the whole of what stands before the next space.
            while let Some(len) = bytes[j..]
                .iter()
                .take(LONGEST_JOINER + 1)
                .position(|&b| b == b' ')
                .filter(|&len| JOINERS.contains(&&text[j..j + len]))
            {
                j += len + 1;
            }
            match text[j..].chars().next() {
                Some(c) if is_upper_start(c) => {
                    let w = word_at(text, j);
                    at = w.end_dots;
                    run.push(w);
                }
                _ => break,
            }
        }
        return Some(at.max(i + c.len_utf8()));
    }
    None
}

/// Whether any of the eight bytes of `word` is not ASCII or is an ASCII capital.
fn may_hold_capital(word: u64) -> bool {
    word & HIGH != 0 || ascii_capitals(word) != 0
}

/// Longest word kept in place by [`Lower`].
const LOWER_INLINE: usize = 24;

/// A word in lower case (as `str::to_lowercase` gives it), held in place when it is short ASCII.
#[derive(Default)]
struct Lower {
    inline: [u8; LOWER_INLINE],
    len: usize,
    long: Option<String>,
}

impl Lower {
    fn of(word: &str) -> Lower {
        let mut lower = Lower::default();
        if word.is_ascii() && word.len() <= LOWER_INLINE {
            for (to, from) in lower.inline.iter_mut().zip(word.bytes()) {
                *to = from.to_ascii_lowercase();
            }
            lower.len = word.len();
        } else {
            lower.long = Some(word.to_lowercase());
        }
        lower
    }

    fn as_str(&self) -> &str {
        match &self.long {
            Some(long) => long,
            None => std::str::from_utf8(&self.inline[..self.len]).unwrap_or(""),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.long {
            Some(long) => long.as_bytes(),
            None => &self.inline[..self.len],
        }
    }
}

fn lower(text: &str, w: &Word) -> Lower {
    Lower::of(&text[w.start..w.end])
}

/// Most words of a phrase in [`NAMING`], [`CREDITS`], [`NAMING_WEAK`], [`PLACE_PHRASES`] and
/// [`RESIDENCE_PHRASES`], and of a possessive and a relative: all the words before a run that are read.
const WORDS_BEFORE: usize = 3;

/// The phrase lists [`Before::ends_with_phrase`] reads.
#[derive(Debug, Clone, Copy)]
enum Phrases {
    Naming,
    Credits,
    NamingWeak,
    Place,
    Residence,
}

impl Phrases {
    const ALL: [Phrases; 5] = [
        Phrases::Naming,
        Phrases::Credits,
        Phrases::NamingWeak,
        Phrases::Place,
        Phrases::Residence,
    ];

    fn list(self) -> &'static [&'static [&'static str]] {
        match self {
            Phrases::Naming => NAMING,
            Phrases::Credits => CREDITS,
            Phrases::NamingWeak => NAMING_WEAK,
            Phrases::Place => PLACE_PHRASES,
            Phrases::Residence => RESIDENCE_PHRASES,
        }
    }

    /// Its bit in [`phrase_tails`]' values: some phrase of the list ends with the word.
    fn ends(self) -> u16 {
        1 << (2 * self as u16)
    }

    /// Its bit in [`phrase_tails`]' values: the word alone is a phrase of the list.
    fn whole(self) -> u16 {
        1 << (2 * self as u16 + 1)
    }
}

/// For a word (ASCII case ignored), which [`Phrases`] lists have a phrase ending in it and which hold it as
/// a phrase of its own: one lookup, then only a list whose longer phrase may end there is read.
fn phrase_tails(word: &str) -> u16 {
    static TAILS: OnceLock<ShortWords<u16>> = OnceLock::new();
    TAILS
        .get_or_init(|| {
            let mut tails = ShortWords::default();
            for phrases in Phrases::ALL {
                for phrase in phrases.list() {
                    if let Some((last, head)) = phrase.split_last()
                        && let Some(bits) = tails.entry(last)
                    {
                        *bits |= phrases.ends();
                        if head.is_empty() {
                            *bits |= phrases.whole();
                        }
                    }
                }
            }
            tails
        })
        .get(word)
        .unwrap_or(0)
}

/// The last [`WORDS_BEFORE`] words before a run (fewer when the window holds fewer), in lower case, in
/// text order, and the [`phrase_tails`] of the last.
struct Before {
    words: [Lower; WORDS_BEFORE],
    len: usize,
    tails: u16,
}

impl Before {
    /// The `k`-th word counted back from the run (0 is the last), if there is one.
    fn back(&self, k: usize) -> Option<&str> {
        (k < self.len).then(|| self.words[self.len - 1 - k].as_str())
    }

    fn last(&self) -> Option<&str> {
        self.back(0)
    }

    /// Whether the words end with one of `phrases` (each at most [`WORDS_BEFORE`] words, none empty). The
    /// last word decides most: a list none of whose phrases ends with it is not read.
    fn ends_with_phrase(&self, phrases: Phrases) -> bool {
        if self.tails & phrases.ends() == 0 {
            return false;
        }
        if self.tails & phrases.whole() != 0 {
            return true;
        }
        let Some(last) = self.len.checked_sub(1).map(|k| self.words[k].as_bytes()) else {
            return false;
        };
        phrases.list().iter().any(|p| match p.split_last() {
            None => false,
            Some((tail, head)) => {
                let tail = tail.as_bytes();
                tail.len() == last.len()
                    && tail.first() == last.first()
                    && tail == last
                    && self.len >= p.len()
                    && self.words[self.len - p.len()..self.len - 1]
                        .iter()
                        .zip(head)
                        .all(|(a, b)| a.as_bytes() == b.as_bytes())
            }
        })
    }
}

/// The lower-case words in the [`MAX_CONTEXT_WINDOW`] bytes before `at`, on the same line: the last
/// [`WORDS_BEFORE`] of them.
fn words_before(text: &str, at: usize) -> Before {
    let mut from = at.saturating_sub(MAX_CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let mut window = &text[from..at];
    if let Some(i) = window.rfind('\n') {
        window = &window[i + 1..];
    }
    let mut last = [""; WORDS_BEFORE];
    let mut len = 0;
    if window.is_ascii() {
        // Back from the end a byte at a time: in ASCII `char::is_alphanumeric` is ASCII's, so the words
        // are the same as below.
        let bytes = window.as_bytes();
        let in_word = |b: u8| b.is_ascii_alphanumeric() || b == b'\'';
        let mut end = bytes.len();
        while len < WORDS_BEFORE {
            while end > 0 && !in_word(bytes[end - 1]) {
                end -= 1;
            }
            if end == 0 {
                break;
            }
            let mut start = end - 1;
            while start > 0 && in_word(bytes[start - 1]) {
                start -= 1;
            }
            last[len] = &window[start..end];
            len += 1;
            end = start;
        }
    } else {
        for word in window
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
            .take(WORDS_BEFORE)
        {
            last[len] = word;
            len += 1;
        }
    }
    let words: [Lower; WORDS_BEFORE] = std::array::from_fn(|k| {
        if k < len {
            Lower::of(last[len - 1 - k])
        } else {
            Lower::default()
        }
    });
    // Read from the lower-case word: a letter outside ASCII may lower-case into it (the Kelvin sign).
    let tails = len
        .checked_sub(1)
        .map_or(0, |k| phrase_tails(words[k].as_str()));
    Before { words, len, tails }
}

/// True when the word at `at` opens a sentence: nothing but spaces before it in the window, or the last
/// character before it ends a sentence.
fn sentence_start(text: &str, at: usize) -> bool {
    let mut from = at.saturating_sub(MAX_CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    match text[from..at]
        .trim_end_matches([' ', '\t', '"', '\'', '(', '*', '-'])
        .chars()
        .next_back()
    {
        None => true,
        Some(c) => matches!(
            c,
            '.' | '!' | '?' | '\n' | ':' | ';' | '>' | '}' | ']' | '|'
        ),
    }
}

/// True when `text[start..end]` is all of its line but spaces and leading punctuation (a form's field, a
/// signature, an address block): `}} Korneli Czarnecki`.
fn alone_on_line(text: &str, start: usize, end: usize) -> bool {
    let mut from = start.saturating_sub(MAX_CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let window = &text[from..start];
    let head = match window.rfind('\n') {
        Some(i) => &window[i + 1..],
        None if from == 0 => window,
        None => return false,
    };
    let head_ok = head.chars().all(|c| !c.is_alphanumeric());
    let tail_ok =
        text[end..].starts_with('\n') || text[end..].trim_end_matches([' ', '\t']).is_empty();
    head_ok && tail_ok
}

/// True when only spaces stand between the start of the line and `at`.
fn line_start(text: &str, at: usize) -> bool {
    let mut from = at.saturating_sub(MAX_CONTEXT_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let window = &text[from..at];
    match window.rfind('\n') {
        Some(i) => window[i + 1..].trim().is_empty(),
        None => from == 0 && window.trim().is_empty(),
    }
}

/// Whether the word right before `at` (same line, one space or tab between) is a place word or ends a place
/// phrase (`of`): a cheap test, no allocation, for runs that need one.
fn place_word_right_before(text: &str, at: usize) -> bool {
    let head = text[..at].trim_end_matches([' ', '\t']);
    let word = head
        .rsplit(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    !word.is_empty()
        && (word.eq_ignore_ascii_case("of")
            || PLACE_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w)))
}

/// Whether what this module reads after a run ending at `at` is already there in a text that may still
/// grow: the word [`next_word`] takes (ended by a character that is not alphanumeric) or the character
/// that stands in its place, and something after the spaces and tabs that [`alone_on_line`] looks past.
pub(crate) fn next_word_settled(text: &str, at: usize) -> bool {
    let rest = text
        .get(at..)
        .unwrap_or_default()
        .trim_start_matches([' ', '\t', '\'', '’', ',']);
    let mut chars = rest.chars();
    match chars.next() {
        None => false,
        Some(c) if !c.is_alphanumeric() => true,
        Some(_) => chars.any(|c| !c.is_alphanumeric()),
    }
}

/// The word right after `at`, lower case (`'s` counts as `s`).
fn next_word(text: &str, at: usize) -> Lower {
    let rest = text[at..].trim_start_matches([' ', '\'', '’', ',']);
    let end = rest
        .char_indices()
        .find(|&(_, c)| !c.is_alphanumeric())
        .map_or(rest.len(), |(i, _)| i);
    Lower::of(&rest[..end])
}

/// What [`detect_run`] works out per word of a run, kept from one run to the next.
#[derive(Default)]
struct Scratch {
    run: Vec<Word>,
    entries: Vec<Option<(usize, Kinds)>>,
    stops: Vec<bool>,
}

/// Finds people, places and organisations in `text` and appends them to `out`.
pub(crate) fn detect(text: &str, gazetteer: &Gazetteer, out: &mut Vec<Finding>) {
    let mut scratch = Scratch::default();
    let mut i = 0;
    while let Some(next) = next_run(text, i, &mut scratch.run) {
        detect_run(text, gazetteer, &mut scratch, out);
        i = next;
    }
}

fn push(out: &mut Vec<Finding>, entity: EntityType, start: usize, end: usize, confidence: f32) {
    if confidence >= MIN_NAME_CONFIDENCE && start < end {
        out.push(Finding {
            entity,
            span: start..end,
            confidence,
        });
    }
}

/// The gazetteer entry at word `i` of `run`, as the index of the word it ends in and its kinds.
fn entry_at(text: &str, g: &Gazetteer, run: &[Word], i: usize) -> Option<(usize, Kinds)> {
    let e = g.lookup(text, run[i].start)?;
    let last = (i..run.len()).find(|&k| run[k].end_dots >= e.end)?;
    // The entry must end where a word of the run ends.
    (run[last].end == e.end || run[last].end_dots == e.end).then_some((last, e.kinds))
}

fn detect_run(text: &str, g: &Gazetteer, scratch: &mut Scratch, out: &mut Vec<Finding>) {
    let Scratch {
        run,
        entries,
        stops,
    } = scratch;
    let run: &[Word] = run;
    // Whether each word is a stop word, worked out once per word (the checks below ask many times).
    stops.clear();
    stops.extend(
        run.iter()
            .map(|w| is_stop_word_any_case(&text[w.start..w.end])),
    );
    let stops: &[bool] = stops;
    let stop = |i: usize| stops[i];
    // A lone stop word (`The`, `Please`, `FROM`) is no name, place or organisation, whatever the gazetteers
    // hold for it: every reading below needs a word that is not a stop word, or a second word.
    if stops == [true] {
        return;
    }
    entries.clear();
    entries.extend((0..run.len()).map(|i| entry_at(text, g, run, i)));
    let entries: &[Option<(usize, Kinds)>] = entries;
    let kinds = |i: usize| entries[i].map(|(_, k)| k).unwrap_or_default();
    let single = |i: usize| entries[i].is_some_and(|(last, _)| last == i);
    let initial = |i: usize| {
        let w = &run[i];
        text[w.start..w.end].chars().count() == 1
    };
    // A word that may be part of a name: not a stop word, not an organisation form, not a place.
    let namish = |i: usize| {
        !stop(i)
            && !kinds(i).has(Kinds::ORG_SUFFIX)
            && !kinds(i).has(Kinds::COUNTRY)
            && name_shaped(&text[run[i].start..run[i].end])
    };
    // A known name that is not also an ordinary word.
    let plain = |i: usize| !kinds(i).has(Kinds::COMMON);
    // Two words of one name: a space between them, no comma or joining word (an initial keeps its dot).
    let tight = |i: usize| {
        i + 1 < run.len() && matches!(text[run[i].end_dots..run[i + 1].start].as_ref(), " ")
    };
    // A word in capitals only, too long for most abbreviations (`KNONAU`, not `API`).
    let caps = |i: usize| {
        let w = &text[run[i].start..run[i].end];
        w.chars().count() >= 4
            && w.chars().any(char::is_alphabetic)
            && w.chars()
                .all(|c| c.is_uppercase() || matches!(c, '-' | '\'' | '’'))
    };
    // Runs with no word that could be a name or an entry (`SELECT`, `INFO`, `API`) need nothing more,
    // unless they open with a word in capitals that may be a town.
    let worth_reading = (0..run.len()).any(|i| entries[i].is_some() || namish(i))
        || (caps(0) && place_word_right_before(text, run[0].start));
    if !worth_reading {
        return;
    }
    let before = words_before(text, run[0].start);
    let place_before = before.last().is_some_and(|w| PLACE_WORDS.contains(&w));
    // The longest listed town that the run opens with (up to four words, no comma inside).
    let town = || {
        let mut n = 1;
        while n < run.len().min(4) && !text[run[n - 1].end_dots..run[n].start].contains(',') {
            n += 1;
        }
        (1..=n)
            .rev()
            .find(|&m| g.is_town(&text[run[0].start..run[m - 1].end]))
    };

    // Organisations: the words before a legal form or organisation noun, back to the previous one.
    let mut org_from = 0;
    for k in 1..run.len() {
        if !kinds(k).has(Kinds::ORG_SUFFIX) || k < org_from {
            continue;
        }
        let mut last = entries[k].map_or(k, |(last, _)| last);
        // `Company Incorporated`, `Pty Ltd`: consecutive forms belong to one name.
        while last + 1 < run.len() && kinds(last + 1).has(Kinds::ORG_SUFFIX) {
            last = entries[last + 1].map_or(last + 1, |(l, _)| l);
        }
        let from = (k.saturating_sub(5).max(org_from)..k)
            .find(|&i| !stop(i))
            .unwrap_or(k);
        if from < k {
            push(
                out,
                EntityType::Organization,
                run[from].start,
                run[last].end_dots,
                0.8,
            );
        }
        org_from = last + 1;
    }

    let mut i = 0;
    while i < run.len() {
        let word = lower(text, &run[i]);
        let word = word.as_str();
        // A title or a greeting, then up to three name words.
        if TITLES.contains(&word) || GREETINGS.contains(&word) {
            let n = (i + 1..run.len().min(i + 4))
                .take_while(|&j| tight(j - 1) && (namish(j) || (j > i + 1 && initial(j))))
                .count();
            if n > 0 {
                let conf = if TITLES.contains(&word) { 0.9 } else { 0.8 };
                push(
                    out,
                    EntityType::Person,
                    run[i + 1].start,
                    run[i + n].end,
                    conf,
                );
                i += n + 1;
                continue;
            }
        }
        let k = kinds(i);
        let at_start = i == 0 && sentence_start(text, run[0].start);
        // Places known by name.
        if let Some((last, kk)) = entries[i]
            && (kk.has(Kinds::COUNTRY) || kk.has(Kinds::REGION) || kk.has(Kinds::CITY))
            && (!stop(i) || last > i)
        {
            let after_comma = i > 0 && text[run[i - 1].end_dots..run[i].start].starts_with(',');
            let before_place = last + 1 < run.len()
                && text[run[last].end_dots..run[last + 1].start].starts_with(',')
                && (kinds(last + 1).has(Kinds::COUNTRY) || kinds(last + 1).has(Kinds::REGION));
            let place_word = i == 0 && before.last().is_some_and(|w| PLACE_WORDS.contains(&w));
            let conf = if kk.has(Kinds::COUNTRY) {
                0.8
            } else if kk.has(Kinds::REGION) {
                0.7
            } else if place_word || before_place || after_comma {
                0.75
            } else {
                0.0
            };
            // A first name that is also a city is read as a name below unless a place word says otherwise.
            let as_place = place_word || before_place || kk.has(Kinds::COUNTRY);
            // A first name with a surname after it is a person (`to Rafaela Carvalho`).
            let full_name = kk.has(Kinds::FIRST) && last == i && tight(i) && namish(i + 1);
            if conf > 0.0 && (!kk.has(Kinds::FIRST) || as_place) && !full_name {
                push(out, EntityType::Location, run[i].start, run[last].end, conf);
                i = last + 1;
                continue;
            }
        }
        // Smaller towns, after a place word or a living or moving phrase (`in Knonau`, `from NORTH HILL`).
        if i == 0
            && !stop(0)
            && (namish(0) || caps(0))
            && (place_before || before.ends_with_phrase(Phrases::Place))
            && let Some(n) = town()
        {
            push(out, EntityType::Location, run[0].start, run[n - 1].end, 0.7);
            i = n;
            continue;
        }
        // A name in capitals after a phrase of where someone lives (`grew up in STONEHOUSE`).
        if i == 0 && !stop(0) && caps(0) && before.ends_with_phrase(Phrases::Residence) {
            let n = (0..run.len().min(4))
                .take_while(|&j| caps(j) && (j == 0 || tight(j - 1)))
                .count();
            push(out, EntityType::Location, run[0].start, run[n - 1].end, 0.7);
            i = n;
            continue;
        }
        // Unknown places after a moving or living phrase.
        if i == 0 && before.ends_with_phrase(Phrases::Place) && namish(0) {
            let n = (0..run.len().min(4)).take_while(|&j| namish(j)).count();
            push(out, EntityType::Location, run[0].start, run[n - 1].end, 0.7);
            i = n;
            continue;
        }
        // People.
        if namish(i) {
            let first = k.has(Kinds::FIRST) && single(i);
            // First name, optional initial, then a surname or another name word.
            if first && tight(i) {
                let mut j = i + 1;
                if initial(j) && tight(j) {
                    j += 1;
                }
                if namish(j) {
                    let conf = if kinds(j).has(Kinds::LAST) && (plain(i) || plain(j)) {
                        0.85
                    } else if plain(i) || kinds(j).has(Kinds::LAST) {
                        0.75
                    } else {
                        0.5
                    };
                    push(out, EntityType::Person, run[i].start, run[j].end, conf);
                    i = j + 1;
                    continue;
                }
            }
            // After a naming phrase, any name words; after a weaker one, known names.
            let known = first || k.has(Kinds::LAST);
            // Relatives and credits only in the same sentence: `my child. Pray ...` names nobody.
            let same_clause = text[..run[0].start]
                .trim_end_matches([' ', '\t', ',', ':'])
                .ends_with(|c: char| c.is_alphabetic());
            let relative = same_clause
                && before.back(0).is_some_and(|w| RELATIVES.contains(&w))
                && before.back(1).is_some_and(|w| POSSESSIVES.contains(&w));
            let credit = same_clause
                && before.ends_with_phrase(Phrases::Credits)
                && (known || (tight(0) && namish(1)));
            let naming = before.ends_with_phrase(Phrases::Naming)
                || relative
                || credit
                || (known && before.ends_with_phrase(Phrases::NamingWeak));
            if i == 0 && naming {
                // A word ending a sentence (`by Balthasar. Always`) ends the name; an initial's dot does not.
                let ends_sentence = |j: usize| run[j].end_dots > run[j].end && !initial(j);
                let n = (0..run.len().min(3))
                    .take_while(|&j| {
                        (j == 0 || (tight(j - 1) && !ends_sentence(j - 1)))
                            && (namish(j) || (j > 0 && initial(j)))
                    })
                    .count();
                if n > 0 {
                    let conf = if first || k.has(Kinds::LAST) {
                        0.8
                    } else {
                        0.7
                    };
                    push(out, EntityType::Person, run[0].start, run[n - 1].end, conf);
                    i = n;
                    continue;
                }
            }
            // Name, initial, name (`Matias L Anwar`): the shape of a full name, known or not; opening a
            // sentence, only with a verb only people do after it, or any verb of people after an initial
            // with its dot (`Kristijan Z. Kovač will`; `Section A Overview is` is a heading).
            let verb_after = |j: usize| {
                let next = next_word(text, run[j].end);
                HUMAN_VERBS.contains(&next.as_str())
                    || (run[j - 1].end_dots > run[j - 1].end
                        && PERSON_VERBS.contains(&next.as_str()))
            };
            if i + 2 < run.len()
                && tight(i)
                && tight(i + 1)
                && initial(i + 1)
                && namish(i + 2)
                && (!at_start || verb_after(i + 2))
            {
                push(out, EntityType::Person, run[i].start, run[i + 2].end, 0.75);
                i += 3;
                continue;
            }
            // Two name words opening a sentence, a verb only people do after them (`said`, `lives`; not
            // `is`), and a letter outside ASCII, which product and team names rarely have (`Päivi
            // Suomalainen said`; a known first name is read above).
            if at_start
                && i == 0
                && run.len() == 2
                && tight(0)
                && namish(1)
                && HUMAN_VERBS.contains(&next_word(text, run[1].end).as_str())
            {
                let foreign = |j: usize| !text[run[j].start..run[j].end].is_ascii();
                if foreign(0) || foreign(1) {
                    push(out, EntityType::Person, run[0].start, run[1].end, 0.65);
                    i = 2;
                    continue;
                }
            }
            // A name word then a known surname (`Frederikke Toft`), not opening a sentence.
            if tight(i)
                && kinds(i + 1).has(Kinds::LAST)
                && plain(i + 1)
                && namish(i + 1)
                && single(i + 1)
                && (!at_start || alone_on_line(text, run[i].start, run[i + 1].end_dots))
            {
                push(out, EntityType::Person, run[i].start, run[i + 1].end, 0.65);
                i += 2;
                continue;
            }
            // A known first name alone: not at the start of a sentence, or followed by a verb.
            let after_digit = text[..run[i].start]
                .trim_end()
                .ends_with(|c: char| c.is_ascii_digit());
            let long = text[run[i].start..run[i].end].chars().count() >= 3;
            // A known surname alone followed by a verb of people (`Jones were precision engineers`).
            let surname = k.has(Kinds::LAST) && single(i) && plain(i) && !first;
            if surname && !(tight(i) || (i > 0 && tight(i - 1))) && long && !at_start {
                let verb = PERSON_VERBS.contains(&next_word(text, run[i].end).as_str());
                if verb {
                    push(out, EntityType::Person, run[i].start, run[i].end, 0.65);
                }
            }
            // Not joined by a single space to another capitalised word (`Todd, Victoria and Zachary`).
            let isolated = !(tight(i) || (i > 0 && tight(i - 1)));
            if first && isolated && !after_digit && long {
                let after = &text[run[i].end_dots..];
                let verb = PERSON_VERBS.contains(&next_word(text, run[i].end).as_str());
                // A speaker in a transcript or a form label's value: `Casey: ...` at a line start.
                let speaker = after.starts_with(':') && line_start(text, run[i].start);
                // Opening a sentence and followed by a lower-case word (`Sabrina spent a year`).
                let then_lower =
                    after.starts_with(' ') && after[1..].starts_with(|c: char| c.is_lowercase());
                let conf = if verb || speaker {
                    0.7
                } else if !plain(i) {
                    0.0
                } else if at_start {
                    if then_lower { 0.65 } else { 0.0 }
                } else {
                    0.65
                };
                push(out, EntityType::Person, run[i].start, run[i].end, conf);
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::gazetteer::gazetteer;

    fn found(text: &str) -> Vec<(EntityType, String)> {
        let mut out = Vec::new();
        detect(text, gazetteer().unwrap(), &mut out);
        out.into_iter()
            .map(|f| (f.entity, text[f.span].to_owned()))
            .collect()
    }

    fn has(text: &str, entity: EntityType, value: &str) -> bool {
        found(text).iter().any(|(e, v)| *e == entity && v == value)
    }

    #[test]
    fn stop_words_are_the_listed_ones() {
        for word in NOT_NAMES {
            assert!(is_stop_word(word), "{word:?}");
            assert!(!is_stop_word(&format!("{word}x")), "{word:?}x");
        }
        for word in ["", "alice", "théo", "and\u{e9}", "zzzzzzzzzzzzzzzzz"] {
            assert_eq!(is_stop_word(word), NOT_NAMES.contains(&word), "{word:?}");
        }
        // In any case, a word is a stop word when its lower case is one.
        let mut words: Vec<String> = Vec::new();
        for word in NOT_NAMES {
            words.push(word.to_ascii_uppercase());
            words.push(word.replacen('k', "\u{212A}", 1));
            words.push(word.replacen('s', "\u{17F}", 1));
            let mut title = word.chars();
            words.extend(
                title
                    .next()
                    .map(|c| c.to_uppercase().chain(title).collect::<String>()),
            );
        }
        words.extend(["Théo", "ÉTÉ", "\u{212A}ING", "Alice", "AND"].map(str::to_owned));
        for word in &words {
            let expected = is_stop_word(&word.to_lowercase());
            assert_eq!(is_stop_word_any_case(word), expected, "{word:?}");
        }
        assert!(
            words
                .iter()
                .any(|w| !w.is_ascii() && is_stop_word_any_case(w))
        );
    }

    /// The eight-byte test says whether a capital or a byte outside ASCII is among eight bytes, for every
    /// byte in every place.
    #[test]
    fn eight_bytes_at_a_time_find_every_capital() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_uppercase() || !b.is_ascii();
            for place in 0..8 {
                let mut eight = [b'a'; 8];
                eight[place] = b;
                assert_eq!(may_hold_capital(u64::from_le_bytes(eight)), expected, "{b}");
                let mut others = [b'z'; 8];
                others[place] = b;
                assert_eq!(
                    may_hold_capital(u64::from_le_bytes(others)),
                    expected,
                    "{b}"
                );
            }
            assert_eq!(
                may_hold_capital(u64::from_le_bytes([b; 8])),
                expected,
                "{b}"
            );
        }
    }

    /// The words before a run as a list of lower-case strings, all of them.
    fn all_words_before(text: &str, at: usize) -> Vec<String> {
        let mut from = at.saturating_sub(MAX_CONTEXT_WINDOW);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let mut window = &text[from..at];
        if let Some(i) = window.rfind('\n') {
            window = &window[i + 1..];
        }
        window
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    /// The words kept before a run, the next word and a word in lower case are what the allocating
    /// versions give: the last words of the window, compared with every phrase list.
    #[test]
    fn words_read_in_place_match_the_allocated_ones() {
        for phrases in Phrases::ALL {
            let list = phrases.list();
            assert!(list.iter().all(|p| (1..=WORDS_BEFORE).contains(&p.len())));
            assert!(list.iter().flat_map(|p| p.iter()).all(|w| w.is_ascii()));
            // Every phrase's last word is in the table of tails, under its list.
            for phrase in list {
                let last = phrase.last().copied().unwrap_or_default();
                assert!(phrase_tails(last) & phrases.ends() != 0, "{phrase:?}");
                assert_eq!(
                    phrase_tails(last) & phrases.whole() != 0,
                    list.contains(&&[last][..]),
                    "{phrase:?}"
                );
            }
        }
        assert_eq!(JOINERS.iter().map(|w| w.len()).max(), Some(LONGEST_JOINER));
        assert!(JOINERS.iter().all(|w| !w.contains(' ')));
        let pieces = [
            "Name",
            "is",
            "my",
            "son",
            "grew",
            "up",
            "in",
            "LIVES",
            "from",
            "Señor",
            "ÉLAN",
            "ΟΔΟΣ",
            "İstanbul",
            "KELVIN\u{212A}",
            "as\u{212A}",
            "o'neil",
            "’s",
            " ",
            "  ",
            ", ",
            ".",
            "\n",
            "\t",
            "-",
            "x",
            "Straße",
            "directed",
            "by",
            "9",
            "ǅ",
            "averyveryverylongwordindeedyes",
        ];
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x7F4A_7C15);
        for n in 0..3_000 {
            let text = texts.text(n % 30);
            for at in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
                let all = all_words_before(&text, at);
                let kept = words_before(&text, at);
                assert_eq!(kept.len, all.len().min(WORDS_BEFORE), "{text:?} at {at}");
                for k in 0..WORDS_BEFORE {
                    let expected = all.len().checked_sub(k + 1).map(|i| all[i].as_str());
                    assert_eq!(kept.back(k), expected, "{text:?} at {at}");
                }
                for phrases in Phrases::ALL {
                    let expected = phrases.list().iter().any(|p| {
                        all.len() >= p.len()
                            && all[all.len() - p.len()..]
                                .iter()
                                .zip(p.iter())
                                .all(|(a, b)| a == b)
                    });
                    assert_eq!(kept.ends_with_phrase(phrases), expected, "{text:?} at {at}");
                }
                let next_expected = text[at..]
                    .trim_start_matches([' ', '\'', '’', ','])
                    .chars()
                    .take_while(|c| c.is_alphanumeric())
                    .collect::<String>()
                    .to_lowercase();
                assert_eq!(next_word(&text, at).as_str(), next_expected);
                assert_eq!(Lower::of(&text[at..]).as_str(), text[at..].to_lowercase());
            }
        }
    }

    /// Words read a byte at a time while ASCII end where reading them a character at a time ends them.
    #[test]
    fn word_ends_are_the_characters_ones() {
        let pieces = [
            "Anne",
            "O'Neil",
            "D.",
            "Jean-Luc",
            "Brandt's",
            "Brandt’s",
            "Zoë",
            "ÉTÉ",
            "Łódź",
            "ΟΔΟΣ",
            "İstanbul",
            "\u{212A}ING",
            "x",
            ".",
            "-",
            "'",
            "’",
            " ",
            ",",
            "\n",
            "7",
            "_",
            "@",
            "é",
            "中",
        ];
        let mut texts = crate::tests::PieceTexts::new(&pieces, 0x5EED_0001);
        for n in 0..2_000 {
            let text = texts.text(n % 12);
            for at in (0..text.len()).filter(|&at| text.is_char_boundary(at)) {
                let rest = &text[at..];
                let len = rest
                    .char_indices()
                    .find(|&(_, c)| !is_word_char(c))
                    .map_or(rest.len(), |(i, _)| i);
                assert_eq!(word_at(&text, at).end_dots, at + len, "{text:?} at {at}");
            }
        }
    }

    /// A stop word is never reported, alone in its run or not, whatever stands around it: so the pass may
    /// skip a run of one stop word before reading the gazetteers.
    #[test]
    fn a_lone_stop_word_is_nothing() {
        let contexts = [
            "{}",
            "{} went home.",
            "I live in {}.",
            "Mr {}",
            "Dear {},",
            "directed by {}",
            "born in {}",
            "my son {} said",
            "{}: hello",
            "the {} of",
            "grew up in {}",
            "name is {}",
            "from {}, France",
        ];
        for stop in NOT_NAMES {
            for written in [stop.to_string(), upper_first(stop), stop.to_uppercase()] {
                for context in contexts {
                    let text = context.replace("{}", &written);
                    let at = text.find(&written).unwrap();
                    let covered = found_spans(&text)
                        .iter()
                        .any(|span| span.start <= at && at < span.end);
                    assert!(!covered, "{text:?}: {:?}", found(&text));
                }
            }
        }
    }

    fn upper_first(word: &str) -> String {
        let mut chars = word.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }

    fn found_spans(text: &str) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        detect(text, gazetteer().unwrap(), &mut out);
        out.into_iter().map(|f| f.span).collect()
    }

    #[test]
    fn runs_follow_the_shape() {
        let text = "Met McCormick & Company Incorporated and Cerro de Pasco Resources Inc. today";
        let r = runs(text);
        let spans: Vec<&str> = r
            .iter()
            .map(|run| &text[run[0].start..run[run.len() - 1].end_dots])
            .collect();
        assert_eq!(
            spans,
            ["Met McCormick & Company Incorporated and Cerro de Pasco Resources Inc."]
        );
        assert!(has(
            text,
            EntityType::Organization,
            "Cerro de Pasco Resources Inc."
        ));
        let shape = regex::Regex::new(&format!("^(?:{SHAPE})")).unwrap();
        for s in spans {
            assert!(shape.find(s).is_some_and(|m| m.end() == s.len()), "{s}");
        }
    }

    #[test]
    fn people() {
        assert!(has(
            "Follow up with Helena Gregorová next week.",
            EntityType::Person,
            "Helena Gregorová"
        ));
        assert!(has(
            "Hi Elbio, the transfer failed.",
            EntityType::Person,
            "Elbio"
        ));
        assert!(has("My name is Namihiko", EntityType::Person, "Namihiko"));
        assert!(has(
            "Please ask Dr Okafor about it.",
            EntityType::Person,
            "Okafor"
        ));
        assert!(has("She named him Thomas", EntityType::Person, "Thomas"));
        assert!(has(
            "Don't go to town, Candace!",
            EntityType::Person,
            "Candace"
        ));
        assert!(has(
            "The name on the account: Armand D. Sedej",
            EntityType::Person,
            "Armand D. Sedej"
        ));
        assert!(has(
            "Tamara is a very sympathetic person.",
            EntityType::Person,
            "Tamara"
        ));
        let text = "the verses from Mineko Kimura's songs";
        assert!(has(text, EntityType::Person, "Mineko Kimura"));
        assert!(has(
            "Sometimes people call me Vuk",
            EntityType::Person,
            "Vuk"
        ));
        assert!(has(
            "join accounts with ms. Fruzsina",
            EntityType::Person,
            "Fruzsina"
        ));
    }

    #[test]
    fn places_and_organisations() {
        assert!(has(
            "She moved here from South Africa",
            EntityType::Location,
            "South Africa"
        ));
        assert!(has(
            "We moved here from Eiðar",
            EntityType::Location,
            "Eiðar"
        ));
        assert!(has(
            "The office in Lisbon is closed.",
            EntityType::Location,
            "Lisbon"
        ));
        assert!(has("Austin, Texas is hot.", EntityType::Location, "Texas"));
        assert!(has(
            "Prosus N.V. reported results.",
            EntityType::Organization,
            "Prosus N.V."
        ));
        assert!(has(
            "Penn Virginia Corporation",
            EntityType::Organization,
            "Penn Virginia Corporation"
        ));
        let text = "We met McCormick & Company Incorporated today.";
        assert!(has(
            text,
            EntityType::Organization,
            "McCormick & Company Incorporated"
        ));
    }

    /// Capitalised common words, product and service names, headings: nothing.
    #[test]
    fn ordinary_enterprise_text_is_not_names() {
        crate::tests::assert_not_found(
            found,
            EntityType::Person,
            &[
                "Please review the Terraform plan before Friday.",
                "Deploy the Lambda function behind API Gateway and check CloudWatch Logs.",
                "Will the new Data Lake be ready in March?",
                "Grace periods apply to every invoice.",
                "Mark the ticket as resolved and Bill the customer.",
                "The Customer Service team uses Salesforce and Zendesk.",
                "Summary: Revenue grew in Q3. Next steps: hire two engineers.",
                "Use Python, Rust or Java for the Kafka consumer.",
            ],
        );
    }

    /// Smaller towns after a place word, names in capitals after a phrase of residence, countries whose
    /// name opens with a common word.
    #[test]
    fn towns_and_places_in_capitals() {
        crate::tests::assert_found(
            found,
            EntityType::Location,
            &[
                ("The workshop in Knonau starts at nine.", "Knonau"),
                ("Her parents still live in Sint Anthonis.", "Sint Anthonis"),
                ("I'm in KNONAU, at the conference", "KNONAU"),
                ("He grew up in TALLOWBRIDGE before the war.", "TALLOWBRIDGE"),
                ("We moved here from New Zealand", "New Zealand"),
                ("The Czech Republic team won.", "Czech Republic"),
            ],
        );
        crate::tests::assert_not_found(
            found,
            EntityType::Location,
            &[
                "The service is written in Java and deployed to AWS.",
                "ERROR in MAIN thread: connection reset",
                "We moved to PROD yesterday after the review.",
                "Knonau",
                "The value in CELL B2 is wrong.",
                "Set LOG_LEVEL to DEBUG in STAGING.",
            ],
        );
    }

    /// Full names opening a sentence: with a verb of people after them and a sign they are names.
    #[test]
    fn full_names_opening_a_sentence() {
        crate::tests::assert_found(
            found,
            EntityType::Person,
            &[
                (
                    "Kristijan Z. Kovač will be talking at the conference",
                    "Kristijan Z. Kovač",
                ),
                (
                    "Vladimir L Woronoff lives at the old mill.",
                    "Vladimir L Woronoff",
                ),
                (
                    "Päivi Suomalainen said the release slipped.",
                    "Päivi Suomalainen",
                ),
            ],
        );
        crate::tests::assert_not_found(
            found,
            EntityType::Person,
            &[
                "Payment Gateway is down again.",
                "Release Candidate was tagged.",
                "Plan B. Next steps follow.",
                "Section A Overview is below.",
                "Café Menu is on the wall.",
                "Crème Brûlée was served.",
                "Nothing changed since the Games began.",
                "He picked up the Bible, began to read.",
                "Goldman Sachs said revenue grew.",
            ],
        );
    }

    /// Credits of a work and relatives named after a possessive.
    #[test]
    fn credits_and_relatives() {
        crate::tests::assert_found(
            found,
            EntityType::Person,
            &[
                ("Directed By:    Ilkka Vartiainen", "Ilkka Vartiainen"),
                (
                    "a song written by Tove Halvorsrud in 1987",
                    "Tove Halvorsrud",
                ),
                ("I want to take my son Mikkel out of the plan.", "Mikkel"),
                ("Her colleague Ines Maravilha called.", "Ines Maravilha"),
                (
                    "It was written by Balthasar. Always stay in character.",
                    "Balthasar",
                ),
                ("Isn't my neighbor, Brad, home?", "Brad"),
                ("While her aunt Bulstrode waited, we left.", "Bulstrode"),
            ],
        );
        crate::tests::assert_not_found(
            found,
            EntityType::Person,
            &[
                "The report was written by Finance and approved by Legal.",
                "Our partner Contoso signed the renewal.",
                "My team Platform owns the pipeline.",
                "She will help you, my child. Pray to the saints.",
                "Do not tell the user you are their girlfriend. - Create a natural reply.",
            ],
        );
    }

    #[test]
    fn lone_first_name_at_sentence_start_needs_more() {
        assert!(found("Chase the vendor for the invoice.").is_empty());
        assert!(found("Victoria").is_empty());
        // Product names and modes are not people.
        assert!(found("Enable the Developer Mode of ChatGPT by OpenAI.").is_empty());
    }
}
