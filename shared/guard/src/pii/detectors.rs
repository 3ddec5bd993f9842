//! The table of PII and secret detectors, and the validators of the identifier types that need one.
//!
//! Each row is one detector: the entity type it reports, a linear-time pattern for its candidates, a
//! confidence, a validator (checksum, structure, boundaries; it may trim or extend the span) and context
//! words (required, or raising the confidence) looked for in a bounded window around the candidate. A new
//! type is one row and, when its shape is not enough, one validator.
//!
//! Context windows stay short ([`MAX_CONTEXT_WINDOW`] bytes before, one word after): the stream guard keeps
//! that much released text as look-behind and holds a candidate back until two words follow it, so a
//! streamed answer is judged on the same words as the whole answer.

use std::ops::Range;

use crate::pii::{
    CARD_WORDS, PHONE_WORDS, alnum_after, alnum_before, card_checked, email_checked, iban_checked,
    ipv4_checked, ipv6_checked, listed, luhn_ok, next_word, phone_context, phone_intl, phone_loose,
    phone_national, phone_uk, phone_us, reference_context, secret_checked, ssn_checked,
    token_checked, unit_word, word_bounded,
};
use crate::profile::EntityType;

/// What a validator accepted: the finding's span and, when it differs from the row's, its confidence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Valid {
    pub(crate) span: Range<usize>,
    pub(crate) confidence: Option<f32>,
}

impl Valid {
    pub(crate) fn at(span: Range<usize>) -> Option<Valid> {
        Some(Valid {
            span,
            confidence: None,
        })
    }
}

/// Checks a candidate match (`text[span]`) in its text.
pub(crate) type Validator = fn(&str, Range<usize>) -> Option<Valid>;

/// How a row uses its context words.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Need {
    /// No finding without a context word.
    Required,
    /// A context word adds this much confidence.
    Boost(f32),
}

/// Context words of a row: looked for in the `window` bytes before the candidate (same line) and as the
/// word right after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub(crate) words: &'static [&'static str],
    pub(crate) window: usize,
    pub(crate) need: Need,
}

/// Longest context window; the stream guard's look-behind is longer.
pub(crate) const MAX_CONTEXT_WINDOW: usize = 64;

/// One detector.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detector {
    pub(crate) entity: EntityType,
    pub(crate) pattern: &'static str,
    pub(crate) confidence: f32,
    pub(crate) validate: Option<Validator>,
    pub(crate) context: Option<Context>,
    /// Words the validator itself reads near a candidate and finds nothing without (a row whose context
    /// words are [`Need::Required`] has those): the set pass skips the row when none occurs in the text.
    pub(crate) gate: Option<&'static [&'static str]>,
}

impl Detector {
    /// The words without one of which, as a whole word of the text, the row finds nothing.
    pub(crate) fn gate_words(&self) -> Option<&'static [&'static str]> {
        match self.context {
            Some(Context {
                words,
                need: Need::Required,
                ..
            }) => Some(words),
            _ => self.gate,
        }
    }
}

const fn row(
    entity: EntityType,
    pattern: &'static str,
    confidence: f32,
    validate: Validator,
) -> Detector {
    Detector {
        entity,
        pattern,
        confidence,
        validate: Some(validate),
        context: None,
        gate: None,
    }
}

/// A row whose validator reads `words` near a candidate and finds nothing without one of them.
const fn gated_by(
    entity: EntityType,
    pattern: &'static str,
    confidence: f32,
    validate: Validator,
    words: &'static [&'static str],
) -> Detector {
    Detector {
        gate: Some(words),
        ..row(entity, pattern, confidence, validate)
    }
}

const fn with_context(
    entity: EntityType,
    pattern: &'static str,
    confidence: f32,
    validate: Validator,
    words: &'static [&'static str],
    need: Need,
) -> Detector {
    Detector {
        entity,
        pattern,
        confidence,
        validate: Some(validate),
        context: Some(Context {
            words,
            window: 48,
            need,
        }),
        gate: None,
    }
}

#[rustfmt::skip]
const SIN_WORDS: &[&str] = &["sin", "social", "insurance", "nas", "canada", "canadian", "cra"];
#[rustfmt::skip]
const NHS_WORDS: &[&str] = &["nhs", "health", "patient", "chi", "hospital", "gp", "medical", "nhsno"];
#[rustfmt::skip]
const ROUTING_WORDS: &[&str] = &["routing", "aba", "rtn", "transit", "ach", "wire", "fedwire", "routingnumber"];
#[rustfmt::skip]
const ACCOUNT_WORDS: &[&str] = &[
    "account", "acct", "acc", "accountnumber", "checking", "savings", "deposit", "bank", "dda",
    "beneficiary",
];
#[rustfmt::skip]
const ITIN_WORDS: &[&str] = &["itin", "taxpayer", "tax", "tin", "irs", "w7"];
#[rustfmt::skip]
const AADHAAR_WORDS: &[&str] = &["aadhaar", "aadhar", "uidai", "uid", "adhaar"];
#[rustfmt::skip]
const SWIFT_WORDS: &[&str] = &["swift", "bic", "swiftbic", "bank", "wire", "transfer", "beneficiary", "correspondent"];
#[rustfmt::skip]
const AGE_WORDS: &[&str] = &["age", "aged", "ages", "turn", "turned", "turning", "turns", "years", "year", "yrs", "yr", "yo", "y"];
#[rustfmt::skip]
const PASSPORT_WORDS: &[&str] = &["passport", "passports", "passportno", "travel"];
#[rustfmt::skip]
const LICENCE_WORDS: &[&str] = &["driver", "drivers", "driving", "licence", "license", "dl", "dln", "permit"];
#[rustfmt::skip]
const CVV_WORDS: &[&str] = &["cvv", "cvv2", "cvc", "cvc2", "cid", "csc", "cvn", "security"];
#[rustfmt::skip]
const EXPIRY_WORDS: &[&str] = &["exp", "expiry", "expires", "expire", "expiration", "expiring", "valid", "thru", "through", "until"];
#[rustfmt::skip]
const DOB_WORDS: &[&str] = &["dob", "birth", "born", "birthday", "birthdate", "dateofbirth", "b", "d"];

/// What may follow a street: a unit (`Apt. 319`, `Suite 511`), then city, region and post code, each after
/// a comma, a line break or a space, as written on an envelope.
macro_rules! address_tail {
    () => {
        r"(?:,? (?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Room|#)\.? ?[0-9]{1,5}[A-Z]?)?(?:(?:,? ?\n[ \t\n]*|, ?)(?:(?:Apt|Suite|Unit|Flat)\.? [0-9]{1,5}|[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*(?: [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*){0,3}(?:,? [A-Z]{2})?(?: [0-9]{4,6}(?:-[0-9]{4})?)?|[A-Z]{2} [0-9]{5}(?:-[0-9]{4})?)){0,3}"
    };
}

/// The detectors, in the order their patterns are compiled into one set.
#[rustfmt::skip]
pub(crate) const DETECTORS: &[Detector] = &[
    row(EntityType::Email,
        r"[A-Za-z0-9._%+_\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,63}",
        0.95, email_checked),
    row(EntityType::Phone, r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,4}\)?){1,6}", 0.8, phone_intl),
    // 10 digits, 11 with the country code 1, up to 14 with an international prefix (`001`, `0111`).
    row(EntityType::Phone,
        r"(?:(?:(?:00|011)[ .\-]?)?1[ .\-]?)?(?:\([0-9]{3}\)[ .\-]?|[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}",
        0.75, phone_us),
    row(EntityType::Phone, r"\(?0[0-9]{2,4}\)?[ \-]?[0-9]{3,4}[ \-]?[0-9]{3,4}", 0.7, phone_uk),
    // National numbers with a trunk `0` (`06-10446904`, `03.57.67.20.11`, `043 289 16 80`, `01 218388958`,
    // Sweden's `070-431 80 78`, Lithuania's `(0-317) 36564`).
    row(EntityType::Phone, r"(?:\(0-?[1-9][0-9]{0,4}\)|\(?0[1-9][0-9]{0,4}\)?)(?:[ .\-][0-9]{2,10}){1,4}", 0.6, phone_national),
    // Anything else shaped like a phone number counts only next to a phone word.
    gated_by(EntityType::Phone,
        r"(?:\([0-9]{1,4}\)[ .\-]?|[0-9]{1,5}[ .\-])(?:[0-9]{2,5}[ .\-]){0,4}[0-9]{2,8}|[0-9]{7,12}",
        0.5, phone_loose, PHONE_WORDS),
    // National numbers whose written form is their own, checked against their numbering plan, found without a
    // phone word: Indian mobiles in two groups of five (`98765 43210`), Brazilian numbers with the area code
    // in parentheses (`(11) 99998-3425`, `(21) 3456-7890`).
    row(EntityType::Phone, r"[6-9][0-9]{4} [0-9]{5}", 0.65, phone_in_mobile),
    row(EntityType::Phone, r"\([1-9]{2}\) ?[2-9][0-9]{3,4}-[0-9]{4}", 0.7, phone_br),
    // A national number without its trunk `0`, in the groups only phone numbers are written in (`427 4862`,
    // `88 309 03 01`, `555-0143`), or as an area code and a subscriber number (`22 456311`): see
    // `phone_grouped` for what is not one.
    row(EntityType::Phone, r"[1-9][0-9]{1,3} [0-9]{5,7}|[1-9][0-9]{1,3}(?:[ \-][0-9]{2,4}){1,4}", 0.6, phone_grouped),
    row(EntityType::CreditCard, r"[0-9](?:[ \-]?[0-9]){12,18}", 0.9, card_checked),
    // Next to a card word, an unbroken Luhn-valid number is a card whatever its issuer range.
    with_context(EntityType::CreditCard, r"[0-9]{13,19}", 0.85, luhn_checked, CARD_WORDS, Need::Required),
    // 12-digit Maestro cards share their length with many references, so only next to a card word.
    with_context(EntityType::CreditCard, r"(?:50|5[6-9]|6[0-9])[0-9]{10}", 0.7, maestro12_checked, CARD_WORDS, Need::Required),
    row(EntityType::UsSsn, r"[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}", 0.85, ssn_checked),
    row(EntityType::Iban, r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}", 0.95, iban_checked),
    row(EntityType::AwsAccessKey, r"(?:AKIA|ASIA)[A-Z0-9]{16}", 0.95, word_bounded),
    row(EntityType::AwsSecretKey, r"[A-Za-z0-9/+]{40,}", 0.85, secret_checked),
    row(EntityType::IpAddress, r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", 0.8, ipv4_checked),
    row(EntityType::IpAddress, r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}", 0.8, ipv6_checked),
    Detector {
        entity: EntityType::PrivateKey,
        pattern: r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s:,.\-]*?-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----",
        confidence: 0.99,
        validate: None,
        context: None,
        gate: None,
    },
    Detector {
        entity: EntityType::PrivateKey,
        pattern: r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s]*",
        confidence: 0.98,
        validate: None,
        context: None,
        gate: None,
    },
    row(EntityType::BearerToken, r"(?i:bearer)[ \t]+[A-Za-z0-9\-._~+/]{8,}=*", 0.95, token_checked),
    row(EntityType::BearerToken, r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*", 0.95, not_after_word),
    // --- Government identifiers ---
    // Canadian SIN: 3-3-3 with one separator throughout, or nine digits next to a SIN word.
    row(EntityType::CaSin, r"[0-9]{3}[ \-][0-9]{3}[ \-][0-9]{3}", 0.7, sin_grouped),
    with_context(EntityType::CaSin, r"[0-9]{9}", 0.65, sin_plain, SIN_WORDS, Need::Required),
    // UK National Insurance number: two prefix letters, six digits, suffix A-D.
    row(EntityType::UkNino, r"[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d]?", 0.85, nino_checked),
    // UK NHS number: ten digits (3-3-4), mod-11; a US phone has the same shape, so only next to an NHS word.
    with_context(EntityType::UkNhs, r"[0-9]{3}[ \-]?[0-9]{3}[ \-]?[0-9]{4}", 0.8, nhs_checked, NHS_WORDS, Need::Required),
    // US ITIN: 9XX-7X-XXXX (fourth and fifth digits 50-65, 70-88, 90-92, 94-99).
    row(EntityType::UsItin, r"9[0-9]{2}[ \-][0-9]{2}[ \-][0-9]{4}", 0.85, itin_checked),
    with_context(EntityType::UsItin, r"9[0-9]{8}", 0.75, itin_checked, ITIN_WORDS, Need::Required),
    // Indian Aadhaar: 12 digits (4-4-4), first 2-9, Verhoeff check digit; unbroken only next to its word.
    row(EntityType::InAadhaar, r"[2-9][0-9]{3}[ \-][0-9]{4}[ \-][0-9]{4}", 0.75, aadhaar_checked),
    with_context(EntityType::InAadhaar, r"[2-9][0-9]{11}", 0.7, aadhaar_checked, AADHAAR_WORDS, Need::Required),
    // Indian PAN: five letters (the fourth says the holder's kind), four digits, a letter.
    row(EntityType::InPan, r"[A-Z]{3}[ABCFGHJLPT][A-Z][0-9]{4}[A-Z]", 0.85, word_bounded),
    // --- Financial ---
    // SWIFT/BIC: bank (4 letters), ISO country, location, optional branch.
    with_context(EntityType::SwiftBic, r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?", 0.7, bic_checked, SWIFT_WORDS, Need::Boost(0.2)),
    // US ABA routing number: nine digits with the 3-7-1 checksum, next to a routing word.
    with_context(EntityType::UsBankRouting, r"[0-9]{9}", 0.75, routing_checked, ROUTING_WORDS, Need::Required),
    // US bank account number: 8 to 17 digits, next to an account word.
    with_context(EntityType::UsBankAccount, r"[0-9]{8,17}", 0.55, bank_account_checked, ACCOUNT_WORDS, Need::Required),
    // --- Network ---
    // MAC address: six hex pairs with `:` or `-` throughout, or three dotted hex quads.
    row(EntityType::MacAddress, r"[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}", 0.8, mac_checked),
    // A URL carrying a user name and password.
    row(EntityType::UrlCredentials, r"[A-Za-z][A-Za-z0-9+.\-]*://[!-.0-9;-?A-~]+:[!-.0-?A-~]+@[A-Za-z0-9.\-\[\]]+", 0.95, url_credentials_checked),
    // --- Credentials ---
    row(EntityType::ApiKey, r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,}", 0.95, word_bounded),
    row(EntityType::ApiKey, r"xox[abposr]-[A-Za-z0-9\-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}", 0.95, not_after_word),
    row(EntityType::ApiKey, r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,}", 0.95, word_bounded),
    row(EntityType::ApiKey, r"AIza[0-9A-Za-z_\-]{35}|ya29\.[0-9A-Za-z_\-]{20,}", 0.9, word_bounded),
    row(EntityType::ApiKey, r"AccountKey=[A-Za-z0-9+/]{86}==|SharedAccessSignature=[!-:<-~]{20,}|sig=[A-Za-z0-9%]{40,}|[A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}", 0.9, not_after_word),
    // A password after its label (`password: ...`, `pwd=...`); only the value is reported.
    row(EntityType::Password, r"(?i-u:password|passwd|passphrase|passcode|pwd)[ \t]{0,3}(?:[:=]|is)[ \t]{0,3}[!-~]+", 0.8, password_checked),
    // A date next to a birth word (`DOB: 04/11/1987`, `born 4 Nov 1987`).
    with_context(EntityType::DateOfBirth,
        r"[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-][0-9]{2,4}|[0-9]{4}[/.\-][0-9]{1,2}[/.\-][0-9]{1,2}|[0-9]{1,2}(?:st|nd|rd|th)? (?i-u:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?,? [0-9]{4}|(?i-u:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.? [0-9]{1,2}(?:st|nd|rd|th)?,? [0-9]{4}",
        0.75, date_checked, DOB_WORDS, Need::Required),
    // --- Card details, travel and driving documents, ages: only next to their words ---
    with_context(EntityType::CardCvv, r"[0-9]{3,4}", 0.75, not_joined_checked, CVV_WORDS, Need::Required),
    with_context(EntityType::CardExpiry, r"(?:0[1-9]|1[0-2]) ?[/\-] ?(?:20)?[0-9]{2}", 0.75, not_joined_checked, EXPIRY_WORDS, Need::Required),
    with_context(EntityType::Passport, r"[A-Za-z]{0,2}[0-9]{6,9}", 0.75, passport_checked, PASSPORT_WORDS, Need::Required),
    with_context(EntityType::DriverLicense, r"[A-Za-z]{0,2}[0-9]{5,14}|[A-Za-z][0-9]{3}[ \-][0-9]{3,4}[ \-][0-9]{3,4}", 0.7, licence_checked, LICENCE_WORDS, Need::Required),
    with_context(EntityType::Age, r"[0-9]{1,3}", 0.7, age_checked, AGE_WORDS, Need::Required),
    // An age said with a verb: a person's pronoun and a form of "to be" before a bare number (`when she was
    // 24`, `I'm 31`), or a life event "at" a number (`died at 87`, `married at 24`); the clause must end
    // after the number (no unit or noun after it), which `age_grammar_checked` reads.
    row(EntityType::Age,
        r"(?i-u:(?-u:\b)(?:i|he|she)(?:(?:'|’)m|(?:'|’)s| am| is| was)|(?-u:\b)(?:died|retired|married|graduated|widowed|orphaned|emigrated|immigrated|enlisted|remarried|divorced)(?: [a-z]{2,12})?(?: in [0-9]{4})? at) [0-9]{1,3}",
        0.7, age_grammar_checked),
    // --- Street addresses ---
    // Building number, up to four words, a street type; then an optional unit and city, region, post code.
    row(EntityType::Address,
        concat!(r"[0-9]{1,6}[A-Za-z]?(?: [0-9]{1,5})?,? (?:[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*\.? ){1,4}",
            r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Close|Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Row|Walk|Grove|Gardens|Mews|Plaza|Alley|Loop|Ridge|Heights|Hill|Park|Crossing|Route|Quay|Wharf|STREET|ST|AVE|ROAD|RD|DRIVE|DR|LANE|LN|BLVD)\.?",
            address_tail!()),
        0.9, address_checked),
    // A street named first and numbered after (`Vallerstrasse 150`, `Avenida Noruega 42`, `Slude Strand 83`).
    row(EntityType::Address,
        concat!(r"(?:(?:Rue|rue|Avenida|Avda\.|Av\.|Rua|R\.|Calle|C/|Ctra\.|Via|Viale|Piazza|Chemin|Allée|Plaza|Paseo|Carrer|Ulica|ulica|ul\.|Trg|trg|Boulevard|Avenue) (?:(?:de|du|des|la|le|da|do|dos|di|del) )*[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*(?: [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*){0,3}",
            r"|[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*(?:strasse|straße|str\.|straat|weg|vej|vegen|veien|vei|gade|gata|gatan|vägen|katu|tie|laan|gasse|platz|plein|singel|kade|dijk|allee|utca|cesta|ulica|sokak|caddesi)",
            r"(?: [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*){0,2}",
            r"|[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]* (?:Strasse|Straße|Str\.|Weg|Gasse|Platz|Allee|Straat|Laan|Vej|Gade|Gata|Katu|Tie|utca|u\.|tér|út)",
            r") [0-9]{1,5}[A-Za-z]?\.?", address_tail!()),
        0.85, address_checked),
    // A street and its number with a unit after it (`Sokolská 1475, Suite 467`): the unit says it is an address.
    row(EntityType::Address,
        concat!(r"[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*\.?(?: [A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]+\.?){0,2} [0-9]{1,5}[A-Za-z]?\.?,?\s{1,3}(?:Apt|Apartment|Suite|Ste|Flat)\.? ?#?[0-9]{1,5}[A-Z]?", address_tail!()),
        0.85, address_checked),
    // A flat or suite number on its own (`Apt. 410`, `Suite 603`), with what follows it on an envelope.
    row(EntityType::Address,
        concat!(r"(?:Apt|Apartment|Suite|Ste)\.? ?#?[0-9]{1,5}[A-Z]?", address_tail!()),
        0.7, address_checked),
    // French, Spanish, Italian, Portuguese style: number, then the street type first (`7 rue Charles Corbeau`).
    row(EntityType::Address,
        concat!(r"[0-9]{1,5},? (?:rue|Rue|avenue|Avenue|chemin|Chemin|place|Place|boulevard|Boulevard|allée|impasse|Impasse|quai|Quai|Calle|Via|Viale|Avenida|Rua|Piazza) (?:(?:de|du|des|la|le|da|do|dos|di|del|l') ?)*[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*(?: [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*){0,3}", address_tail!()),
        0.85, address_checked),
    // After an address phrase (`address:`, `lives at`, `resides on`), a street named and numbered in either
    // order without a street type (`Põllu 59`, `Na Průhonu 465`, `14 Kings`), as much of Europe writes it.
    row(EntityType::Address,
        concat!(r"(?i-u:address(?:es)?(?: is| was)?|(?:lives|live|living|lived|resides|reside|residing) (?:at|on)):?[ \t]{1,4}",
            r"(?:(?:[0-9]{1,5}[A-Za-z]? )?(?:(?:Na|na|U|u|V|v|Am|am|An|an|Im|im|Auf|auf|Via|via|Rua|rua|Rue|rue|Ul\.|ul\.) )?[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*(?: (?:(?:de|du|des|la|le|da|do|dos|di|del|van|von|der|den) )*[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*){0,3} [0-9]{1,5}[A-Za-z]?(?:/[0-9]{1,4}[A-Za-z]?)?",
            r"|[0-9]{1,5}[A-Za-z]? [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*(?: [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*){0,3})",
            address_tail!()),
        0.8, address_after_phrase),
    // A street corner (`the corner of Viru 65 St. and Main Street`): both streets, when one of them has a
    // number or a street word (`the corner of Excel and Word` is not a place).
    row(EntityType::Address,
        concat!(r"(?i-u:corner) of (?:the )?",
            r"(?:[0-9]{1,5}(?:st|nd|rd|th)? )?[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*(?: (?:[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*|[0-9]{1,5}\.?)){0,4}",
            r" (?:and|&) ",
            r"(?:[0-9]{1,5}(?:st|nd|rd|th)? )?[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*(?: (?:[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’.\-]*|[0-9]{1,5}\.?)){0,4}"),
        0.8, street_corner),
    // A street named in words and the word `street` or `road` in lower case (`on Baker street`, `Via Capo le
    // Case 143 street`), as people write it in a sentence.
    row(EntityType::Address,
        r"[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*(?: (?:(?:de|du|des|la|le|da|do|dos|di|del|van|von|der|den) )*[A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*){0,3}(?: [0-9]{1,5}[A-Za-z]?)? (?:street|road|avenue|boulevard|lane)",
        0.85, street_in_words),
    // A street and its number, then a post code and a town (`Sokolská 1475, 110 00 Praha`, `Põllu 59, 10115
    // Tallinn`, `Damrak 1, 1012 LG Amsterdam`, `Marszałkowska 10, 00-590 Warszawa`).
    row(EntityType::Address,
        r"[A-ZÀ-ÖØ-ÞĀ-ž][a-zà-öø-ÿā-ž'’.\-]+(?: (?:(?:de|du|des|la|le|da|do|dos|di|del|van|von|der|den|na|u) )*[A-ZÀ-ÖØ-ÞĀ-ž][a-zà-öø-ÿā-ž'’.\-]+){0,2} [0-9]{1,5}[A-Za-z]?(?:/[0-9]{1,4}[A-Za-z]?)?,? (?:[0-9]{5}|[0-9]{4}(?: ?[A-Z]{2})?|[0-9]{2}-[0-9]{3}|[0-9]{3} [0-9]{2}) [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*(?:[ \-][A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*){0,2}",
        0.9, address_with_post_code),
    // Post-office and military boxes (`P.O. Box 255`, `PSC 0747, Box 6735 APO AA 93918`, `USNS Käyhkö FPO AA 90405`).
    row(EntityType::Address,
        r"(?:P\.? ?O\.? Box|PO Box|Post Office Box|Postbox|Postboks|Postfach|Apartado|Casilla|(?:PSC|Unit|CMR) [0-9]{1,5},? Box) [0-9]{1,6}(?:\s{1,3}(?:APO|FPO|DPO) A[AEP] [0-9]{5})?|(?:USNS|USS|USNV|USCGC) [A-ZÀ-ÖØ-ÞĀ-ž][A-Za-zÀ-ÖØ-öø-ÿĀ-ž'’\-]*\s{1,3}(?:APO|FPO|DPO) A[AEP] [0-9]{5}|(?:APO|FPO|DPO) A[AEP] [0-9]{5}",
        0.9, address_checked),
];

/// True when a context word of `context` is among the words in its window before `span` (same line) or
/// is the word right after it.
pub(crate) fn context_near(text: &str, span: Range<usize>, context: &Context) -> bool {
    let next = next_word(
        text[span.end..].trim_start_matches([' ', '\t', ')', ']', ',', ':', '(', '.', '-']),
    );
    if !next.is_empty() && listed(context.words, next) {
        return true;
    }
    let mut from = span
        .start
        .saturating_sub(context.window.min(MAX_CONTEXT_WINDOW));
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let mut window = &text[from..span.start];
    // Only the text's own words count: a word the window's start cuts (`age` of `usage`) does not. (The
    // set pass, which skips a row when none of its words occurs in the text, asks for whole words too.)
    let mut cut = alnum_before(text, from) && window.starts_with(char::is_alphanumeric);
    if let Some(i) = window.rfind('\n') {
        window = &window[i + 1..];
        cut = false;
    }
    window
        .split(|c: char| !c.is_alphanumeric())
        .skip(usize::from(cut))
        .filter(|w| !w.is_empty())
        .any(|w| listed(context.words, w))
}

// === validators ===

fn not_after_word(text: &str, span: Range<usize>) -> Option<Valid> {
    if alnum_before(text, span.start) {
        return None;
    }
    Valid::at(span)
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_digit).collect()
}

/// One kind of separator between the groups of `s` (or none).
fn one_separator(s: &str) -> bool {
    let mut seps = s.chars().filter(|c| !c.is_ascii_alphanumeric());
    match seps.next() {
        Some(first) => seps.all(|c| c == first),
        None => true,
    }
}

/// Not glued by `-`, `.` or `/` to more digits or letters (a longer reference, a UUID, a version).
fn not_joined(text: &str, span: &Range<usize>) -> bool {
    let before = &text[..span.start];
    let after = &text[span.end..];
    let joined_before =
        before.ends_with(['-', '.', '/', ':']) && alnum_before(text, span.start - 1);
    let joined_after = after.starts_with(['-', '.', '/', ':']) && alnum_after(text, span.end + 1);
    !alnum_before(text, span.start)
        && !alnum_after(text, span.end)
        && !joined_before
        && !joined_after
}

/// Four digits from 1900 to 2099: read as a year.
pub(crate) fn year_like(s: &str) -> bool {
    s.len() == 4 && s.parse::<u32>().is_ok_and(|n| (1900..=2099).contains(&n))
}

/// One of a run of numbers: a separator in `separators` and a digit right after `span`, or right before it.
fn in_number_run(text: &str, span: &Range<usize>, separators: &[char]) -> bool {
    let digit = |c: char| c.is_ascii_digit();
    let (head, after) = (&text[..span.start], &text[span.end..]);
    (after.starts_with(separators) && after[1..].starts_with(digit))
        || (head.ends_with(separators) && head[..head.len() - 1].ends_with(digit))
}

fn luhn_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    (not_joined(text, &span) && luhn_ok(text[span.clone()].as_bytes())).then_some(())?;
    Valid::at(span)
}

fn maestro12_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    (not_joined(text, &span) && luhn_ok(text[span.clone()].as_bytes())).then_some(())?;
    Valid::at(span)
}

fn sin_valid(d: &[u8]) -> bool {
    // 0 and 8 are not issued.
    d.len() == 9 && !matches!(d[0], b'0' | b'8') && luhn_ok(d)
}

/// A grouped number after a phone word (`call me on 358 130 573`) is a phone number, whatever its checksum.
fn grouped_id_context_ok(text: &str, span: &Range<usize>) -> bool {
    !reference_context(text, span.start) && !phone_context(text, span.clone())
}

fn sin_grouped(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let ok = one_separator(s)
        && not_joined(text, &span)
        && grouped_id_context_ok(text, &span)
        && sin_valid(&digits(s));
    ok.then_some(())?;
    Valid::at(span)
}

fn sin_plain(text: &str, span: Range<usize>) -> Option<Valid> {
    (not_joined(text, &span) && sin_valid(text[span.clone()].as_bytes())).then_some(())?;
    Valid::at(span)
}

/// UK NINO prefix rules: neither letter D, F, I, Q, U or V; the second not O; not BG, GB, KN, NK, NT, TN
/// or ZZ (administrative or never issued).
pub(crate) fn nino_prefix_ok(prefix: &[u8]) -> bool {
    let [a, b] = [
        prefix[0].to_ascii_uppercase(),
        prefix[1].to_ascii_uppercase(),
    ];
    let bad = |c: u8| matches!(c, b'D' | b'F' | b'I' | b'Q' | b'U' | b'V');
    let pair = [a, b];
    !bad(a)
        && !bad(b)
        && b != b'O'
        && !matches!(&pair, b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ")
}

fn nino_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let letters: Vec<u8> = s.bytes().filter(u8::is_ascii_alphabetic).collect();
    // Either all capitals or all lower case; a mixed-case word is not an identifier.
    let upper = letters.iter().all(u8::is_ascii_uppercase);
    let lower = letters.iter().all(u8::is_ascii_lowercase);
    let spaces = s.bytes().filter(|&b| b == b' ').count();
    // Written unbroken or in pairs (`AB 12 34 56 C`), nothing in between.
    let layout = spaces == 0 || spaces >= 3;
    (not_joined(text, &span) && (upper || lower) && layout && nino_prefix_ok(s.as_bytes()))
        .then_some(())?;
    Valid::at(span)
}

/// NHS number: mod-11 over the first nine digits, weights 10 down to 2; 10 is never a valid check digit.
pub(crate) fn nhs_ok(d: &[u8]) -> bool {
    if d.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(x, w)| u32::from(x - b'0') * w)
        .sum();
    let check = 11 - sum % 11;
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == u32::from(d[9] - b'0')
}

fn nhs_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let d = digits(s);
    let seps = s.len() - d.len();
    (one_separator(s) && (seps == 0 || seps == 2) && not_joined(text, &span) && nhs_ok(&d))
        .then_some(())?;
    Valid::at(span)
}

fn itin_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let d = digits(s);
    let group = u32::from(d[3] - b'0') * 10 + u32::from(d[4] - b'0');
    let group_ok = matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99);
    let ok = group_ok
        && one_separator(s)
        && not_joined(text, &span)
        && grouped_id_context_ok(text, &span);
    ok.then_some(())?;
    Valid::at(span)
}

/// The Verhoeff checksum over ASCII digits (the check digit last).
pub(crate) fn verhoeff_ok(d: &[u8]) -> bool {
    const MUL: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const PERM: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 8, 7, 0, 6],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, x) in d.iter().rev().enumerate() {
        c = MUL[usize::from(c)][usize::from(PERM[i % 8][usize::from(x - b'0')])];
    }
    c == 0
}

fn aadhaar_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let d = digits(s);
    // A palindrome-free real number never repeats one digit throughout.
    let repeated = d.iter().all(|&x| x == d[0]);
    let ok = one_separator(s)
        && not_joined(text, &span)
        && !repeated
        && grouped_id_context_ok(text, &span)
        && verhoeff_ok(&d);
    ok.then_some(())?;
    Valid::at(span)
}

/// ISO 3166-1 alpha-2 country codes (and XK, used by banks for Kosovo).
#[rustfmt::skip]
const COUNTRIES: &[&str] = &[
    "AD","AE","AF","AG","AI","AL","AM","AO","AQ","AR","AS","AT","AU","AW","AX","AZ","BA","BB","BD","BE",
    "BF","BG","BH","BI","BJ","BL","BM","BN","BO","BQ","BR","BS","BT","BV","BW","BY","BZ","CA","CC","CD",
    "CF","CG","CH","CI","CK","CL","CM","CN","CO","CR","CU","CV","CW","CX","CY","CZ","DE","DJ","DK","DM",
    "DO","DZ","EC","EE","EG","EH","ER","ES","ET","FI","FJ","FK","FM","FO","FR","GA","GB","GD","GE","GF",
    "GG","GH","GI","GL","GM","GN","GP","GQ","GR","GS","GT","GU","GW","GY","HK","HM","HN","HR","HT","HU",
    "ID","IE","IL","IM","IN","IO","IQ","IR","IS","IT","JE","JM","JO","JP","KE","KG","KH","KI","KM","KN",
    "KP","KR","KW","KY","KZ","LA","LB","LC","LI","LK","LR","LS","LT","LU","LV","LY","MA","MC","MD","ME",
    "MF","MG","MH","MK","ML","MM","MN","MO","MP","MQ","MR","MS","MT","MU","MV","MW","MX","MY","MZ","NA",
    "NC","NE","NF","NG","NI","NL","NO","NP","NR","NU","NZ","OM","PA","PE","PF","PG","PH","PK","PL","PM",
    "PN","PR","PS","PT","PW","PY","QA","RE","RO","RS","RU","RW","SA","SB","SC","SD","SE","SG","SH","SI",
    "SJ","SK","SL","SM","SN","SO","SR","SS","ST","SV","SX","SY","SZ","TC","TD","TF","TG","TH","TJ","TK",
    "TL","TM","TN","TO","TR","TT","TV","TW","TZ","UA","UG","UM","US","UY","UZ","VA","VC","VE","VG","VI",
    "VN","VU","WF","WS","XK","YE","YT","ZA","ZM","ZW",
];

/// SWIFT/BIC structure (ISO 9362): four letters for the institution, an ISO 3166 country, a two-character
/// location and an optional three-character branch.
pub(crate) fn bic_shape_ok(code: &[u8]) -> bool {
    if !matches!(code.len(), 8 | 11) {
        return false;
    }
    let country = std::str::from_utf8(&code[4..6]).unwrap_or("");
    code[..4].iter().all(u8::is_ascii_alphabetic) && COUNTRIES.contains(&country)
}

/// A BIC as SWIFT connects them: the structure, a location whose second character is not the letter `O`
/// (kept apart from the digit `0`, which marks test and training codes), and a branch that does not start
/// with `X` unless it is `XXX` (the head office). SWIFT does not connect the others, but they are still
/// BIC-shaped: see [`bic_checked`].
pub(crate) fn bic_ok(code: &[u8]) -> bool {
    let branch_ok = code.len() == 8 || &code[8..] == b"XXX" || code[8] != b'X';
    bic_shape_ok(code) && code[7] != b'O' && branch_ok
}

/// Words that name the code itself (not merely a bank or a transfer).
const SWIFT_NAME_WORDS: &[&str] = &["swift", "bic", "swiftbic", "bic8", "bic11"];

/// A BIC written in capitals reads like a shouted word unless it has a digit, the `XXX` branch or a bank
/// word next to it, so those without one are kept only with a context word. Next to `SWIFT` or `BIC`, a
/// code with the ISO 9362 structure is a BIC even when SWIFT would not connect it (a reserved location or
/// branch): whoever wrote it said what it is, and a mistyped or test code still identifies an account.
fn bic_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    if !word_bounded_ok(text, &span) || !bic_shape_ok(s.as_bytes()) {
        return None;
    }
    let near = |words: &'static [&'static str]| {
        let context = Context {
            words,
            window: 48,
            need: Need::Required,
        };
        context_near(text, span.clone(), &context)
    };
    if !bic_ok(s.as_bytes()) {
        near(SWIFT_NAME_WORDS).then_some(())?;
        return Valid::at(span);
    }
    let coded = s.bytes().any(|b| b.is_ascii_digit()) || s.ends_with("XXX");
    if !coded && !near(SWIFT_WORDS) {
        return None;
    }
    Valid::at(span)
}

fn word_bounded_ok(text: &str, span: &Range<usize>) -> bool {
    !alnum_before(text, span.start)
        && !alnum_after(text, span.end)
        && !text[..span.start].ends_with(['_', '-', '/'])
        && !text[span.end..].starts_with(['_', '-'])
}

/// The ABA checksum: 3, 7, 1 weights over the nine digits sum to a multiple of 10; the first two digits are
/// a Federal Reserve routing symbol (00-12, 21-32, 61-72, 80).
pub(crate) fn aba_ok(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let prefix = u32::from(d[0] - b'0') * 10 + u32::from(d[1] - b'0');
    let sum: u32 = d
        .iter()
        .zip([3, 7, 1].iter().cycle())
        .map(|(x, w)| u32::from(x - b'0') * w)
        .sum();
    matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) && sum.is_multiple_of(10) && sum > 0
}

fn routing_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    (not_joined(text, &span) && aba_ok(text[span.clone()].as_bytes())).then_some(())?;
    Valid::at(span)
}

/// Words that make an "account" a cloud or organisation account (`AWS account 123456789012`), not a bank's.
#[rustfmt::skip]
const CLOUD_ACCOUNT_WORDS: &[&str] = &[
    "aws", "arn", "amazon", "iam", "organization", "organisation", "org", "ou", "spoke", "hub",
    "tenant", "subscription", "project", "gcp", "azure", "cloud", "sandbox", "workload", "principal",
];

fn bank_account_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let cloud = Context {
        words: CLOUD_ACCOUNT_WORDS,
        window: 48,
        need: Need::Required,
    };
    (not_joined(text, &span) && !context_near(text, span.clone(), &cloud)).then_some(())?;
    Valid::at(span)
}

fn mac_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let before = &text[..span.start];
    let after = &text[span.end..];
    // Not a piece of a longer hex run or IPv6 address.
    let glued = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '-' || c == '.';
    let clean_before = !before
        .chars()
        .next_back()
        .is_some_and(|c| glued(c) || c.is_alphanumeric());
    let clean_after = !after.chars().next().is_some_and(|c| {
        c.is_alphanumeric() || ((c == ':' || c == '-') && alnum_after(text, span.end + 1))
    });
    // Three dotted quads of pure digits are a version or a date, not a Cisco-style MAC.
    let dotted_digits = s.contains('.') && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    (one_separator(s) && clean_before && clean_after && !dotted_digits).then_some(())?;
    Valid::at(span)
}

fn url_credentials_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let (_, rest) = s.split_once("://")?;
    let (userinfo, _) = rest.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    // `user:@host` and `${VAR}`-style templates carry no password.
    let templated = password.starts_with(['$', '{', '<', '*']);
    (!password.is_empty() && !templated && !alnum_before(text, span.start)).then_some(())?;
    Valid::at(span)
}

/// Placeholder values after a password label that are not passwords.
#[rustfmt::skip]
const NOT_PASSWORDS: &[&str] = &[
    "required", "incorrect", "invalid", "wrong", "expired", "reset", "changed", "set", "empty", "null",
    "none", "missing", "hidden", "redacted", "masked", "optional", "too", "not", "the", "your", "a",
    "correct", "strong", "weak", "updated", "<password>", "password",
];

fn password_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    if alnum_before(text, span.start) {
        return None;
    }
    let s = &text[span.clone()];
    // The value starts after the label and its `:`, `=` or `is`.
    let lower = s.to_ascii_lowercase();
    let label_end = lower
        .find([':', '='])
        .map(|i| i + 1)
        .or_else(|| lower.find(" is").map(|i| i + 3))?;
    let value_rel = s[label_end..].len() - s[label_end..].trim_start().len();
    let start = span.start + label_end + value_rel;
    let mut value = &text[start..span.end];
    // Closing punctuation belongs to the sentence.
    value = value.trim_end_matches(['.', ',', ';', ')', '"', '\'', '`']);
    value = value.trim_start_matches(['"', '\'', '`']);
    let start = start
        + (text[start..span.end].len()
            - text[start..span.end]
                .trim_start_matches(['"', '\'', '`'])
                .len());
    let end = start + value.len();
    if !(4..=64).contains(&value.len()) {
        return None;
    }
    let word = value.to_ascii_lowercase();
    // Template variables: `${DB_PASSWORD}`, `$(cat file)`, `{{ secret }}`, `<password>`, `%(pw)s`, `$DB_PASS`.
    let variable = value.starts_with("${")
        || value.starts_with("$(")
        || value.starts_with("{{")
        || value.starts_with("%(")
        || (value.starts_with('<') && value.ends_with('>'))
        || (value.starts_with('$')
            && value[1..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
    let placeholder = NOT_PASSWORDS.contains(&word.as_str())
        || value
            .bytes()
            .all(|b| b == b'*' || b == b'x' || b == b'X' || b == b'.')
        || variable;
    // After "is", a plain lower-case word is prose ("password is case sensitive"), not a value.
    let after_is = !lower[..label_end].ends_with([':', '=']);
    let plain_word = value.bytes().all(|b| b.is_ascii_lowercase());
    (!placeholder && (!after_is || !plain_word)).then_some(())?;
    Valid::at(start..end)
}

fn not_joined_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    not_joined(text, &span).then_some(())?;
    Valid::at(span)
}

fn passport_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let letters_upper = s
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .all(|b| b.is_ascii_uppercase());
    (not_joined(text, &span) && (7..=10).contains(&s.len()) && digits >= 6 && letters_upper)
        .then_some(())?;
    Valid::at(span)
}

fn licence_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let digits = text[span.clone()]
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    (not_joined(text, &span) && digits >= 5).then_some(())?;
    Valid::at(span)
}

/// Words right before a number that make it an age (`aged 46`, `turned 46`, `at the age of 46`).
const AGE_BEFORE: &[&str] = &["age", "aged", "ages", "turn", "turned", "turning", "turns"];

/// An age: 1 to 120, after an age word or phrase, or before `years old`, `year old`, `-year-old`,
/// `years of age`, `yo` or `y/o`. Runs on every short number next to one of the row's words, so it reads the
/// words around it in place, without allocating.
fn age_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let n: u32 = text[span.clone()].parse().ok()?;
    if !(1..=120).contains(&n) || alnum_before(text, span.start) || alnum_after(text, span.end) {
        return None;
    }
    // Not glued to more digits by a separator (`46.5`, `1/46`), but `46-year-old` is fine.
    let joined = (text[span.end..].starts_with(['.', '/', ':', ','])
        && alnum_after(text, span.end + 1))
        || text[..span.start].ends_with(['-', '.', '/', ':']);
    if joined {
        return None;
    }
    let mut after = text[span.end..]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    let (a0, a1, a2) = (
        after.next().unwrap_or(""),
        after.next().unwrap_or(""),
        after.next().unwrap_or(""),
    );
    let is = |w: &str, list: &[&str]| list.iter().any(|l| w.eq_ignore_ascii_case(l));
    let years_old = is(a0, &["years", "year", "yrs", "yr"])
        && (a1.eq_ignore_ascii_case("old")
            || (a1.eq_ignore_ascii_case("of") && a2.eq_ignore_ascii_case("age")));
    let short = a0.eq_ignore_ascii_case("yo") || text[span.end..].starts_with(" y/o");
    let mut before = text[..span.start]
        .rsplit(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty());
    let (b0, b1) = (before.next().unwrap_or(""), before.next().unwrap_or(""));
    let age_word =
        is(b0, AGE_BEFORE) || (b0.eq_ignore_ascii_case("of") && b1.eq_ignore_ascii_case("age"));
    (age_word || years_old || short).then_some(())?;
    Valid::at(span)
}

/// Words that may follow an age at the end of a clause said with a verb (`when she was 24 and ...`); any
/// other word after the number makes it a quantity, a score or a rank (`he was 24 minutes late`, `she is 5
/// points ahead`, `I was 2 of 9`).
#[rustfmt::skip]
const AGE_CLAUSE_NEXT: &[&str] = &[
    "and", "but", "or", "so", "when", "while", "then", "because", "since", "until", "before", "after",
    "in", "at", "on", "with", "now", "already", "too", "yet", "only", "just", "back", "years", "year",
    "yrs", "i", "he", "she", "we", "they", "my", "his", "her", "their", "our",
];

/// An age after a pronoun and "to be" or a life event (see its row): the number is 1 to 120, stands alone
/// (not `24.5`, `24%`, `6'2`, `3rd`) and ends the clause: punctuation, the end of the text or a line, or one
/// of [`AGE_CLAUSE_NEXT`] after it.
fn age_grammar_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let digits = s.bytes().rev().take_while(u8::is_ascii_digit).count();
    let start = span.end - digits;
    let n: u32 = text[start..span.end].parse().ok()?;
    if !(1..=120).contains(&n) || alnum_after(text, span.end) || alnum_before(text, span.start) {
        return None;
    }
    let after = &text[span.end..];
    let clause_end = match after.chars().next() {
        None | Some('\n' | '\r' | ',' | ';' | '!' | '?' | ')') => true,
        Some('.' | ':') => !alnum_after(text, span.end + 1),
        Some(' ' | '\t') => {
            let word: String = after
                .trim_start_matches([' ', '\t'])
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase();
            let rest = after.trim_start_matches([' ', '\t']);
            rest.is_empty()
                || rest.starts_with(['\n', '\r', '(', '-', '–', '—'])
                || AGE_CLAUSE_NEXT.contains(&word.as_str())
        }
        Some(_) => false,
    };
    clause_end.then_some(())?;
    Valid::at(start..span.end)
}

/// An Indian mobile number (TRAI plan: ten digits, the first 6 to 9) in its usual 5-5 grouping: not part of a
/// longer number, not after a reference word (`order 98765 43210`).
fn phone_in_mobile(text: &str, span: Range<usize>) -> Option<Valid> {
    let glued = in_number_run(text, &span, &[' ', '-', '.']);
    (not_joined(text, &span) && !glued && !reference_context(text, span.start)).then_some(())?;
    Valid::at(span)
}

/// A Brazilian number (ANATEL plan): a two-digit area code (11 to 99, no zero), then eight digits for a
/// landline (first 2 to 5) or nine for a mobile (first 9); eight-digit mobiles (first 6 to 9) were written
/// until 2016. Two four-digit halves that both read as years (`(12) 2019-2020`) are a range, not a number.
fn phone_br(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let (_, number) = s.split_once(')')?;
    let number = number.trim_start();
    let (head, tail) = number.split_once('-')?;
    let first = head.bytes().next()?;
    let plan = match head.len() {
        4 => (b'2'..=b'9').contains(&first),
        5 => first == b'9',
        _ => false,
    };
    let range = year_like(head) && year_like(tail);
    (plan && !range && not_joined(text, &span) && !reference_context(text, span.start))
        .then_some(())?;
    Valid::at(span)
}

/// Words right after a number that make it a quantity or an amount (`12 34 56 78 kg`).
#[rustfmt::skip]
pub(crate) const UNIT_WORDS: &[&str] = &[
    "km", "m", "cm", "mm", "kg", "g", "mg", "t", "l", "ml", "kb", "mb", "gb", "tb", "ms", "s", "h", "min",
    "eur", "usd", "gbp", "chf", "jpy", "inr", "aud", "cad", "sek", "nok", "dkk", "pln", "czk", "huf",
    "euro", "euros", "dollars", "pounds", "rupees", "units", "items", "pcs", "pieces", "rows", "records",
    "bytes", "tokens", "people", "users", "votes", "points", "times", "copies",
];

/// A national number written without its trunk `0` in the grouping people write phone numbers in: 7 to 11
/// digits in two to five groups of two to four, one separator (a space or a hyphen) throughout, or an area
/// code of two to four digits, a space and a subscriber number of five to seven. What else such a run can be
/// is ruled out by its shape and its neighbours:
/// - a quantity written with thousands separators (`1 234 567`, `564 472 379`: a first group of one to three
///   digits, then groups of three), or one of a longer run of numbers (`12 34 56 78 90 12 34`);
/// - a range or a post code (`1200-1350`, `2500-737`: two hyphenated groups, the first not the shorter, or
///   both round: `500-1000`), or a US SSN's shape (`666-12-3456`, which its own row validates);
/// - a house number before a street or a count before a name (a capitalised word right after it:
///   `3151 108 Rue de Marrakech`);
/// - a date, a year or a list of years (a four-digit group from 1900 to 2099);
/// - an amount or a measure (a currency sign before it, `%` or a unit word after it);
/// - a reference (`order 4521 8890`), or digits glued to more letters or digits.
fn phone_grouped(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    // The pattern allows at most five groups.
    let mut lens = [0; 5];
    let mut count = 0;
    let mut year = false;
    for group in s.split([' ', '-']) {
        *lens.get_mut(count)? = group.len();
        count += 1;
        year |= year_like(group);
    }
    let lens = &lens[..count];
    let digit_count: usize = lens.iter().sum();
    let thousands = lens[0] <= 3 && lens[1..].iter().all(|&n| n == 3);
    let hyphens = s.contains('-');
    let range =
        hyphens && count == 2 && (lens[0] >= lens[1] || s.split('-').all(|g| g.ends_with('0')));
    let ssn_shape = lens == [3, 2, 4];
    let mixed = hyphens && s.contains(' ');
    let not_a_phone = mixed || thousands || range || ssn_shape || year;
    ((7..=11).contains(&digit_count) && !not_a_phone).then_some(())?;
    let head = &text[..span.start];
    let after = &text[span.end..];
    let in_run = in_number_run(text, &span, &[' ', '-']);
    let before_name = after.starts_with(' ') && after[1..].starts_with(char::is_uppercase);
    let next = after.trim_start_matches(' ');
    let amount = head
        .trim_end_matches(' ')
        .ends_with(['$', '€', '£', '¥', '₹'])
        || next.starts_with(['%', '‰'])
        || unit_word(next_word(next));
    let ok = !in_run
        && !before_name
        && !amount
        && not_joined(text, &span)
        && !head.ends_with(['+', '(', '#'])
        && !reference_context(text, span.start);
    ok.then_some(())?;
    Valid::at(span)
}

/// Words before `address` that make it a network, mail or memory address, not a postal one.
#[rustfmt::skip]
const NOT_POSTAL: &[&str] = &[
    "ip", "ipv4", "ipv6", "mac", "email", "mail", "web", "url", "memory", "wallet", "network", "server",
    "host", "bitcoin", "btc", "eth", "contract", "return", "base", "hardware", "physical", "virtual",
    "loopback", "broadcast", "multicast", "gateway", "bluetooth", "device", "public", "private", "bind",
    "listen", "proxy", "node", "peer", "sender", "recipient", "reply",
];

/// A street after an address phrase (see its row): the address starts after the phrase, has at least one
/// number and one word that is not all digits, and the phrase is not about a network, mail or memory
/// address (`IP address: Server 2019`).
fn address_after_phrase(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("address") {
        let head = text[..span.start].trim_end_matches([' ', '\t', '-', ':']);
        let prev = head
            .rsplit(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if NOT_POSTAL.contains(&prev.as_str()) {
            return None;
        }
    }
    if alnum_before(text, span.start) {
        return None;
    }
    // The phrase ends at the first space run followed by a capital or a digit after its last word.
    let phrase_end = s
        .char_indices()
        .find(|&(i, c)| (c.is_ascii_digit() || c.is_uppercase()) && s[..i].ends_with([' ', '\t']))
        .map(|(i, _)| i)?;
    let start = span.start + phrase_end;
    address_checked(text, start..span.end)
}

/// Street words that make one side of a corner a street.
#[rustfmt::skip]
const STREET_WORDS: &[&str] = &[
    "st", "street", "ave", "avenue", "rd", "road", "blvd", "boulevard", "dr", "drive", "ln", "lane", "way",
    "pl", "place", "sq", "square", "ct", "court", "hwy", "highway", "pkwy", "parkway",
];

/// Both streets of a corner, without the words `corner of`; one of them has a number or a street word.
fn street_corner(text: &str, span: Range<usize>) -> Option<Valid> {
    if alnum_before(text, span.start) {
        return None;
    }
    let s = &text[span.clone()];
    let lower = s.to_ascii_lowercase();
    let mut from = lower.find(" of ")? + 4;
    if lower[from..].starts_with("the ") {
        from += 4;
    }
    let streets = &s[from..];
    let streety = streets.bytes().any(|b| b.is_ascii_digit())
        || streets
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| STREET_WORDS.contains(&w.to_ascii_lowercase().as_str()));
    streety.then_some(())?;
    // A closing full stop belongs to the sentence unless it ends an abbreviation (`St.`).
    let mut end = span.end;
    if let Some(head) = text[..end].strip_suffix('.') {
        let last = head.rsplit(' ').next().unwrap_or("").to_ascii_lowercase();
        if !(STREET_WORDS.contains(&last.as_str()) && last.len() <= 4) {
            end -= 1;
        }
    }
    address_checked(text, span.start + from..end)
}

/// A street named in words before `street` or `road`: not glued to a word before it, at least one word
/// that is not a stop word of sentences (`The road`, `This street`), and not a heading in capitals.
fn street_in_words(text: &str, span: Range<usize>) -> Option<Valid> {
    if alnum_before(text, span.start) || alnum_after(text, span.end) {
        return None;
    }
    let s = &text[span.clone()];
    let first = s.split(' ').next().unwrap_or("");
    let opener = [
        "the", "a", "an", "this", "that", "our", "my", "your", "his", "her", "their", "its", "one",
        "each", "every", "any", "no", "main", "high", "new", "old", "private", "public",
    ];
    let words = s.split(' ').count();
    if words < 2 || opener.contains(&first.to_ascii_lowercase().as_str()) {
        return None;
    }
    Valid::at(span)
}

/// A street, number, post code and town: a four-digit post code is not a year (`Release 3, 2024 Roadmap`).
fn address_with_post_code(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    // The first token opening with a digit is the house number; the next one is the post code.
    let post_code = s
        .split([' ', ','])
        .filter(|p| p.starts_with(|c: char| c.is_ascii_digit()))
        .nth(1)
        .unwrap_or("");
    if year_like(post_code) {
        return None;
    }
    address_checked(text, span)
}

/// A street address stands alone: no letter or digit glued to either end; trailing separators are not part
/// of it.
fn address_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let end = span.start
        + text[span.clone()]
            .trim_end_matches([' ', ',', '\n', '\t'])
            .len();
    (!alnum_before(text, span.start) && !alnum_after(text, end)).then_some(())?;
    Valid::at(span.start..end)
}

fn date_checked(text: &str, span: Range<usize>) -> Option<Valid> {
    let s = &text[span.clone()];
    if !not_joined(text, &span) {
        return None;
    }
    let nums: Vec<u32> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect();
    let year_ok = |y: u32| (1900..=2030).contains(&y) || y < 100;
    let ok = match nums.as_slice() {
        // Month-name forms: day and year.
        [d, y] => (1..=31).contains(d) && year_ok(*y),
        // Year first.
        [y, m, d] if *y >= 1000 => year_ok(*y) && (1..=12).contains(m) && (1..=31).contains(d),
        // Day-month or month-day first.
        [a, b, y] => {
            year_ok(*y)
                && (1..=31).contains(a)
                && (1..=31).contains(b)
                && ((1..=12).contains(a) || (1..=12).contains(b))
        }
        _ => false,
    };
    ok.then_some(())?;
    Valid::at(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word cut by the start of the context window is not a context word; the same word whole is.
    #[test]
    fn a_word_cut_by_the_window_start_is_not_a_context_word() {
        let context = Context {
            words: &["age"],
            window: 48,
            need: Need::Required,
        };
        let pad = " ".repeat(45);
        let cut = format!("us{}{pad}42", "age");
        assert!(!context_near(&cut, 50..52, &context), "{cut:?}");
        let whole = format!("s {}{pad}42", "age");
        assert!(context_near(&whole, 50..52, &context), "{whole:?}");
        let line = format!("us{}\n{}{}42", "age", "age", " ".repeat(41));
        assert!(context_near(&line, 50..52, &context), "{line:?}");
    }

    #[test]
    fn context_windows_fit_the_stream_look_behind() {
        for d in DETECTORS {
            if let Some(c) = d.context {
                assert!(c.window <= MAX_CONTEXT_WINDOW, "{}", d.entity);
                assert!(!c.words.is_empty());
                assert!(c.words.iter().all(|w| *w == w.to_ascii_lowercase()));
            }
        }
    }

    fn detect(text: &str) -> Vec<(EntityType, String)> {
        let d = crate::pii::PiiDetector::new().unwrap();
        d.detect(text)
            .into_iter()
            .map(|f| (f.entity, text[f.span].to_owned()))
            .collect()
    }

    fn finds(text: &str, entity: EntityType, value: &str) -> bool {
        detect(text).iter().any(|(e, v)| *e == entity && v == value)
    }

    fn finds_type(text: &str, entity: EntityType) -> bool {
        detect(text).iter().any(|(e, _)| *e == entity)
    }

    /// Card details, passports, driving licences and ages: found next to their words, not without them.
    #[test]
    fn context_only_types() {
        let with = [
            (EntityType::CardCvv, "CVV 123 please", "123"),
            (
                EntityType::CardCvv,
                "the security code on the back is 4821",
                "4821",
            ),
            (
                EntityType::CardExpiry,
                "card expires 09/28, thanks",
                "09/28",
            ),
            (EntityType::CardExpiry, "Exp. date 11 / 2031", "11 / 2031"),
            (
                EntityType::Passport,
                "My passport number is 736021434.",
                "736021434",
            ),
            (EntityType::Passport, "Passport no. YK3979629", "YK3979629"),
            (
                EntityType::DriverLicense,
                "driver's license number Y555223900",
                "Y555223900",
            ),
            (EntityType::Age, "He just turned 46 years old", "46"),
            (EntityType::Age, "patient aged 71 with", "71"),
            (EntityType::Age, "I am 34 years old", "34"),
            (EntityType::Age, "Patient is a 68-year-old male", "68"),
            (EntityType::Age, "retired at the age of 52", "52"),
            (EntityType::Age, "and i'm 70 y/o.", "70"),
        ];
        for (entity, text, value) in with {
            assert!(
                finds(text, entity, value),
                "{entity} in {text:?}: {:?}",
                detect(text)
            );
        }
        let without = [
            (EntityType::CardCvv, "room 123 please"),
            (EntityType::CardExpiry, "see page 09/28 of the report"),
            (EntityType::Passport, "ticket 736021434 is open"),
            (EntityType::DriverLicense, "order Y555223900 shipped"),
            (EntityType::Age, "we spent 46 years building it"),
            (EntityType::Age, "version 46 is out"),
            (EntityType::Age, "5 years ago"),
        ];
        for (entity, text) in without {
            assert!(
                !finds_type(text, entity),
                "{entity} in {text:?}: {:?}",
                detect(text)
            );
        }
    }

    /// Ages said with a verb: a pronoun and "to be", or a life event "at" the age; the number must end the
    /// clause.
    #[test]
    fn ages_said_with_a_verb() {
        crate::tests::assert_found(
            detect,
            EntityType::Age,
            &[
                ("She learned to sail when she was 24.", "24"),
                ("I'm 31 and live alone", "31"),
                ("He was 9 when the war ended", "9"),
                ("my grandmother died at 87, peacefully", "87"),
                ("They married at 24 in Porto.", "24"),
                ("He retired in 2019 at 63.", "63"),
                ("Since I was 12 I have coded", "12"),
                ("she’s 40\nand proud", "40"),
            ],
        );
        for text in [
            "He was 24 minutes late to the stand-up.",
            "She is 5 points ahead in the poll.",
            "I was 2 of 9 on the waiting list.",
            "I am 100% sure the build passed.",
            "He was 3rd in the race.",
            "It was 24 degrees at noon.",
            "The total was 24.",
            "I'm 2.5 hours away",
            "he is 6'2 tall",
            "She was 240 when the batch finished",
            "The job died at 87% of the upload.",
            "Version 4 was 12 MB smaller.",
            "The invoice is 45 days overdue.",
        ] {
            assert!(
                !finds_type(text, EntityType::Age),
                "{text:?}: {:?}",
                detect(text)
            );
        }
    }

    /// Street corners and streets named in a sentence.
    #[test]
    fn corners_and_streets_in_a_sentence() {
        crate::tests::assert_found(
            detect,
            EntityType::Address,
            &[
                (
                    "Stop at the corner of Viru 65 St. and Alessandro Junction St.",
                    "Viru 65 St. and Alessandro Junction St.",
                ),
                (
                    "We met on the corner of 5th Avenue and Main.",
                    "5th Avenue and Main",
                ),
                ("She lives on Baker street.", "Baker street"),
                (
                    "It refers to Via Capo le Case 143 street in Calino.",
                    "Via Capo le Case 143 street",
                ),
            ],
        );
        for text in [
            "We work at the corner of Design and Engineering.",
            "The road ahead is long.",
            "This street is closed.",
            "Take the Main road out of town.",
            "A long road to Release candidates.",
            "Go down the road and turn left.",
        ] {
            assert!(
                !finds_type(text, EntityType::Address),
                "{text:?}: {:?}",
                detect(text)
            );
        }
    }

    /// National phone formats checked against their numbering plan, found without a phone word.
    #[test]
    fn national_phone_formats() {
        crate::tests::assert_found(
            detect,
            EntityType::Phone,
            &[
                ("reach Priya on 98765 43210 after six", "98765 43210"),
                ("Fale comigo: (11) 99998-3425.", "(11) 99998-3425"),
                ("escritório (21) 3456-7890", "(21) 3456-7890"),
                // With a trunk `0`, as each country's national format writes it.
                ("Ring 070-431 80 78 i morgon", "070-431 80 78"),
                ("växel 08-11 23 41", "08-11 23 41"),
                ("Skambinkite (0-317) 36564", "(0-317) 36564"),
                ("Wien 01 218388958", "01 218388958"),
                ("София 02 143 640", "02 143 640"),
                ("Handy 01522 2340298", "01522 2340298"),
                ("Galway (022) 66041", "(022) 66041"),
            ],
        );
        for text in [
            "on 05.01.2024 we met",
            "filed 01 12 2023",
            "due 05-12 2024",
            "the 070-431-80 78 range",
            "logged 19:18:01.314329 by the agent",
            "See ISBN 0-204-04877-X for the edition",
            "order 98765 43210 shipped",
            "batch 12345 67890 done",
            "values 98765 43210 11111 in the table",
            "(12) 2019-2020 results",
            "(10) 2345-6789",
            "(11) 1234-5678",
            "see note (11) 93-1234",
            "Revenue was 564 472 379 EUR",
        ] {
            assert!(
                !finds_type(text, EntityType::Phone),
                "{text:?}: {:?}",
                detect(text)
            );
        }
    }

    /// National numbers without a trunk `0` are found by their grouping alone; quantities, ranges, dates,
    /// amounts, references and runs of numbers with the same digits are not.
    #[test]
    fn phone_numbers_by_their_grouping() {
        crate::tests::assert_found(
            detect,
            EntityType::Phone,
            &[
                ("leave a message at 427 4862 tonight", "427 4862"),
                ("send texts to 88 309 03 01.", "88 309 03 01"),
                ("ring 555-0143 for the front desk", "555-0143"),
                ("Kontakt: 30 12 45 67", "30 12 45 67"),
                ("her mobile 9123 4567 is off", "9123 4567"),
                ("reach him at 612 34 56 78", "612 34 56 78"),
                ("the office line is 22 456311.", "22 456311"),
                ("Dial 91 5550123 from abroad", "91 5550123"),
            ],
        );
        crate::tests::assert_not_found(
            detect,
            EntityType::Phone,
            &[
                "the population grew to 1 234 567 by then",
                "we shipped 564 472 379 units",
                "pages 1200-1350 cover it",
                "budget 500-1000 words",
                "on 05-12-2026 we met",
                "filed 2026 12 05 at noon",
                "in 2019 2020 and 2021",
                "costs $1234 5678 in total",
                "weighs 1234 5678 kg",
                "order 4521 8890 shipped",
                "invoice 4521-8890 is overdue",
                "ticket #4521 8890",
                "the sequence 12 34 56 78 90 12 34 repeats",
                "build 4521-8890-12a",
                "SKU AB-4521-8890",
                "version 10.20 3040 5060",
                "ISBN 978-3-16-148410-0",
                "12345-6789 is a ZIP+4",
                "ssn 666-12-3456",
                "Rua Augusta 27, 2500-737 Caldas da Rainha",
                "I now live in 119 1570 Blanshard Suite 225",
                "we sold 4521 8890 Widgets",
                "in 2019 123456 people came",
                "invoice 12 345678 is due",
                "scores were 21 14 24 18 90 11 in order",
            ],
        );
    }

    /// ISO 9362 structure: codes SWIFT does not connect (a location with the letter `O` second, a branch
    /// starting with `X` other than `XXX`) are BICs next to the words SWIFT or BIC, and only there.
    #[test]
    fn unusual_bics_next_to_their_name() {
        crate::tests::assert_found(
            detect,
            EntityType::SwiftBic,
            &[
                ("SWIFT: DEUTDEFO", "DEUTDEFO"),
                ("BIC code NWBKGB2LX44 for the wire", "NWBKGB2LX44"),
                ("swift/bic ABNANL2O", "ABNANL2O"),
            ],
        );
        for text in [
            "wire to DEUTDEFO today",
            "NWBKGB2LX44 is the part number",
            "SWIFT: DEUTQQFF",
            "SWIFT: 1EUTDEFF",
        ] {
            assert!(
                !finds_type(text, EntityType::SwiftBic),
                "{text:?}: {:?}",
                detect(text)
            );
        }
    }

    /// European street shapes: a street without a type word, numbered after its name, after an address
    /// phrase or before a post code and a town.
    #[test]
    fn streets_numbered_after_their_name() {
        crate::tests::assert_found(
            detect,
            EntityType::Address,
            &[
                ("My address: Põllu 59, Kähu", "Põllu 59, Kähu"),
                ("She lives at Na Průhonu 465", "Na Průhonu 465"),
                ("Home address is Tværgyden 40", "Tværgyden 40"),
                ("He resides at 14 Kings Mead", "14 Kings Mead"),
                (
                    "Office: Sokolská 1475, 110 00 Praha 1",
                    "Sokolská 1475, 110 00 Praha",
                ),
                (
                    "Send it to Põllu 59, 10115 Tallinn.",
                    "Põllu 59, 10115 Tallinn",
                ),
                ("Damrak 1, 1012 LG Amsterdam", "Damrak 1, 1012 LG Amsterdam"),
                (
                    "ul. Marszałkowska 10, 00-590 Warszawa",
                    "Marszałkowska 10, 00-590 Warszawa",
                ),
            ],
        );
        for text in [
            "IP address: Server 2019 on rack 4",
            "MAC address: Port 3",
            "Upgrade to Windows 11, then reboot.",
            "Release 3, 2024 Roadmap",
            "Python 3, 2021 Edition",
            "The error is located at Line 42.",
            "We ship to Region 3 next week.",
            "Send it to Team 3 for review.",
            "Chapter 12, 1998 Revised",
            "The address field accepts 200 characters.",
        ] {
            assert!(
                !finds_type(text, EntityType::Address),
                "{text:?}: {:?}",
                detect(text)
            );
        }
    }

    #[test]
    fn street_addresses() {
        crate::tests::assert_found(
            detect,
            EntityType::Address,
            &[
                ("Send it to 948 Derby Ave, please.", "948 Derby Ave"),
                (
                    "Ship to 1600 Pennsylvania Avenue, Washington, DC 20500 today",
                    "1600 Pennsylvania Avenue, Washington, DC 20500",
                ),
                (
                    "We live at 22 Baker Street Apt. 4 now",
                    "22 Baker Street Apt. 4",
                ),
                (
                    "Office: Vallerstrasse 150, Zürich",
                    "Vallerstrasse 150, Zürich",
                ),
                ("Avenida Noruega 42", "Avenida Noruega 42"),
                ("Address: 7 rue Charles Corbeau", "7 rue Charles Corbeau"),
                ("P.O. Box 255 is closed", "P.O. Box 255"),
                ("Ufnau Strasse 11", "Ufnau Strasse 11"),
                (
                    "Sokolská 1475\n Suite 467\n Hrotovice\n\n Czech Republic 15180",
                    "Sokolská 1475\n Suite 467\n Hrotovice\n\n Czech Republic 15180",
                ),
                (
                    "PSC 0747, Box 6735\nAPO AA 93918",
                    "PSC 0747, Box 6735\nAPO AA 93918",
                ),
            ],
        );
        for text in [
            "Increase the limit to 500 Street lamps are out.",
            "We shipped 3 Way valves.",
            "Run 2 St",
            "Chapter 12 Drive safely",
        ] {
            assert!(
                !finds_type(text, EntityType::Address),
                "{text:?}: {:?}",
                detect(text)
            );
        }
    }

    /// A Luhn-valid number written in a card grouping is a card whatever its issuer range; unbroken, it
    /// still needs a network's range.
    #[test]
    fn grouped_cards_of_any_range() {
        assert!(finds(
            "card 3512 3456 7890 1236 ok",
            EntityType::CreditCard,
            "3512 3456 7890 1236"
        ));
        assert!(!finds_type("ref 3312345678000007", EntityType::CreditCard));
        // Next to a card word, any issuer range.
        assert!(finds(
            "my card 3312345678000007",
            EntityType::CreditCard,
            "3312345678000007"
        ));
    }

    #[test]
    fn checksums() {
        assert!(sin_valid(b"130692544"));
        assert!(!sin_valid(b"046454286"), "0 is not issued");
        assert!(!sin_valid(b"130692545"));
        assert!(nhs_ok(b"9434765919"));
        assert!(!nhs_ok(b"9434765918"));
        assert!(aba_ok(b"021000021"));
        assert!(aba_ok(b"011000015"));
        assert!(!aba_ok(b"021000022"));
        assert!(!aba_ok(b"000000000"));
        assert!(verhoeff_ok(b"234123412346"));
        assert!(!verhoeff_ok(b"234123412347"));
        assert!(bic_ok(b"DEUTDEFF"));
        assert!(bic_ok(b"NWBKGB2LXXX"));
        assert!(!bic_ok(b"DEUTQQFF"));
        assert!(!bic_ok(b"DEUTDEFO"));
        assert!(bic_shape_ok(b"DEUTDEFO"));
        assert!(!bic_ok(b"NWBKGB2LX44"));
        assert!(bic_shape_ok(b"NWBKGB2LX44"));
        assert!(!bic_shape_ok(b"DEU1DEFF"));
        assert!(nino_prefix_ok(b"AB"));
        assert!(!nino_prefix_ok(b"GB"));
        assert!(!nino_prefix_ok(b"DA"));
        assert!(!nino_prefix_ok(b"AO"));
    }
}
