//! Guard profiles: the per-organisation rules the engine applies, read from TOML.
//!
//! A profile is plain data. It is validated once, when it is parsed or handed to
//! [`GuardEngine::new`](crate::GuardEngine::new), so a running engine never meets a rule it cannot apply.
//! The file format is documented in `policies/guard-profiles/README.md`.

use std::collections::BTreeMap;
use std::fmt;

use causeway_contract::GuardAction;
use serde::{Deserialize, Serialize};

/// The PII entity types the engine detects.
///
/// The serialized names (`EMAIL`, `CREDIT_CARD`, ...) are the ones used in profiles and in guard reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityType {
    /// An e-mail address.
    Email,
    /// A telephone number: international (`+` and country code) or a common US / UK national format.
    Phone,
    /// A payment card number: 13 to 19 digits that pass the Luhn check.
    CreditCard,
    /// A US social security number in `AAA-GG-SSSS` form with a valid area, group and serial.
    UsSsn,
    /// An international bank account number with a valid mod-97 checksum.
    Iban,
    /// An AWS access key id (`AKIA` or `ASIA` and 16 more characters).
    AwsAccessKey,
    /// A 40-character AWS secret access key near the word "secret".
    AwsSecretKey,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A PEM private key block.
    PrivateKey,
    /// An HTTP bearer token or a JSON Web Token.
    BearerToken,
    /// A Canadian social insurance number (nine digits, Luhn).
    CaSin,
    /// A UK National Insurance number (two prefix letters under the issuing rules, six digits, a suffix).
    UkNino,
    /// A UK NHS number (ten digits, mod-11) next to a health word.
    UkNhs,
    /// A US individual taxpayer identification number (`9XX-7X-XXXX`).
    UsItin,
    /// An Indian Aadhaar number (twelve digits, Verhoeff check digit).
    InAadhaar,
    /// An Indian permanent account number (`AAAPA1234A`).
    InPan,
    /// A SWIFT/BIC bank code with a known country code.
    SwiftBic,
    /// A US ABA routing number (checksum) next to a routing word.
    UsBankRouting,
    /// A bank account number (8 to 17 digits) next to an account word.
    UsBankAccount,
    /// A network hardware (MAC) address.
    MacAddress,
    /// A URL that carries a user name and password.
    UrlCredentials,
    /// A GitHub, Slack, Stripe, Google Cloud or Azure credential.
    ApiKey,
    /// A password after its label (`password: ...`).
    Password,
    /// A date next to a birth word (`DOB`, `born`, `date of birth`).
    DateOfBirth,
    /// A person's name (gazetteers of first names and surnames, titles, greetings and naming phrases).
    Person,
    /// A street address, a post-office or military box (a building number and a street, or the box).
    Address,
    /// A named place: a country, a region, a city next to a place word.
    Location,
    /// An organisation's name ending in a legal form or an organisation noun (`Inc.`, `GmbH`, `Bank`).
    Organization,
    /// An age in years next to an age phrase (`aged 46`, `turned 46`, `46 years old`).
    Age,
    /// A passport number next to the word passport.
    Passport,
    /// A driving licence number next to a licence word.
    DriverLicense,
    /// A payment card security code (CVV, CVC) next to its label.
    CardCvv,
    /// A payment card expiry date (`MM/YY`) next to an expiry word.
    CardExpiry,
}

impl EntityType {
    /// Every entity type, in a stable order.
    pub const ALL: [EntityType; 33] = [
        EntityType::Email,
        EntityType::Phone,
        EntityType::CreditCard,
        EntityType::UsSsn,
        EntityType::Iban,
        EntityType::AwsAccessKey,
        EntityType::AwsSecretKey,
        EntityType::IpAddress,
        EntityType::PrivateKey,
        EntityType::BearerToken,
        EntityType::CaSin,
        EntityType::UkNino,
        EntityType::UkNhs,
        EntityType::UsItin,
        EntityType::InAadhaar,
        EntityType::InPan,
        EntityType::SwiftBic,
        EntityType::UsBankRouting,
        EntityType::UsBankAccount,
        EntityType::MacAddress,
        EntityType::UrlCredentials,
        EntityType::ApiKey,
        EntityType::Password,
        EntityType::DateOfBirth,
        EntityType::Person,
        EntityType::Address,
        EntityType::Location,
        EntityType::Organization,
        EntityType::Age,
        EntityType::Passport,
        EntityType::DriverLicense,
        EntityType::CardCvv,
        EntityType::CardExpiry,
    ];

    /// The name used in profiles, reports, mask placeholders and pseudonym tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Email => "EMAIL",
            EntityType::Phone => "PHONE",
            EntityType::CreditCard => "CREDIT_CARD",
            EntityType::UsSsn => "US_SSN",
            EntityType::Iban => "IBAN",
            EntityType::AwsAccessKey => "AWS_ACCESS_KEY",
            EntityType::AwsSecretKey => "AWS_SECRET_KEY",
            EntityType::IpAddress => "IP_ADDRESS",
            EntityType::PrivateKey => "PRIVATE_KEY",
            EntityType::BearerToken => "BEARER_TOKEN",
            EntityType::CaSin => "CA_SIN",
            EntityType::UkNino => "UK_NINO",
            EntityType::UkNhs => "UK_NHS",
            EntityType::UsItin => "US_ITIN",
            EntityType::InAadhaar => "IN_AADHAAR",
            EntityType::InPan => "IN_PAN",
            EntityType::SwiftBic => "SWIFT_BIC",
            EntityType::UsBankRouting => "US_BANK_ROUTING",
            EntityType::UsBankAccount => "US_BANK_ACCOUNT",
            EntityType::MacAddress => "MAC_ADDRESS",
            EntityType::UrlCredentials => "URL_CREDENTIALS",
            EntityType::ApiKey => "API_KEY",
            EntityType::Password => "PASSWORD",
            EntityType::DateOfBirth => "DATE_OF_BIRTH",
            EntityType::Person => "PERSON",
            EntityType::Address => "ADDRESS",
            EntityType::Location => "LOCATION",
            EntityType::Organization => "ORGANIZATION",
            EntityType::Age => "AGE",
            EntityType::Passport => "PASSPORT",
            EntityType::DriverLicense => "DRIVER_LICENSE",
            EntityType::CardCvv => "CARD_CVV",
            EntityType::CardExpiry => "CARD_EXPIRY",
        }
    }

    /// Looks an entity type up by its profile name.
    pub fn from_name(name: &str) -> Option<EntityType> {
        EntityType::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Appends to `out` the placeholder a masked value is replaced with, e.g. `{EMAIL}`.
    pub fn write_mask(self, out: &mut String) {
        out.push('{');
        out.push_str(self.as_str());
        out.push('}');
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A guard profile: what the engine does on the way in and on the way out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardProfile {
    /// The profile name, recorded on every guard report and audit record.
    pub name: String,
    /// The profile version, recorded next to the name.
    pub version: String,
    /// The guardrail system instructions, always placed first in the prompt.
    pub system_instructions: String,
    /// What to do with each PII entity type.
    #[serde(default)]
    pub pii: PiiPolicy,
    /// Words and phrases that must not pass, matched whole-word and ASCII case-insensitively.
    #[serde(default)]
    pub denied_words: Vec<String>,
    /// What to do with a denied word: `block` or `mask`.
    #[serde(default = "default_denied_word_action")]
    pub denied_word_action: GuardAction,
    /// Denied topics; a match blocks the call.
    #[serde(default)]
    pub topics: Vec<Topic>,
    /// Prompt-injection scoring.
    #[serde(default)]
    pub injection: InjectionPolicy,
    /// Checks on the model's answer.
    #[serde(default)]
    pub output: OutputPolicy,
    /// What a call may carry besides text: images, documents, tools.
    #[serde(default)]
    pub content: ContentPolicy,
}

/// Allow or block a kind of content the guards cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentRule {
    /// Let it through; the guard report and the audit record count it.
    Allow,
    /// Refuse the call.
    Block,
}

/// What a call may carry besides text. Images cannot be scanned for text; documents are scanned through
/// their extracted text, and a document whose text cannot be extracted is "unscanned".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentPolicy {
    /// Images: `allow` (counted) or `block`.
    #[serde(default = "default_images")]
    pub images: ContentRule,
    /// Documents whose text cannot be extracted (corrupt, scanned images, legacy formats): `block` or
    /// `allow` (sent unscanned; the guard report and the audit record say so).
    #[serde(default = "default_unscanned_documents")]
    pub unscanned_documents: ContentRule,
    /// Most images in one call.
    #[serde(default = "default_max_images")]
    pub max_images: u32,
    /// Largest image, in bytes.
    #[serde(default = "default_max_image_bytes")]
    pub max_image_bytes: u64,
    /// Most documents in one call.
    #[serde(default = "default_max_documents")]
    pub max_documents: u32,
    /// Largest document, in bytes.
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: u64,
    /// Most tool definitions in one call.
    #[serde(default = "default_max_tools")]
    pub max_tools: u32,
}

impl Default for ContentPolicy {
    fn default() -> Self {
        ContentPolicy {
            images: default_images(),
            unscanned_documents: default_unscanned_documents(),
            max_images: default_max_images(),
            max_image_bytes: default_max_image_bytes(),
            max_documents: default_max_documents(),
            max_document_bytes: default_max_document_bytes(),
            max_tools: default_max_tools(),
        }
    }
}

fn default_images() -> ContentRule {
    ContentRule::Allow
}

fn default_unscanned_documents() -> ContentRule {
    ContentRule::Block
}

// The limits default to Amazon Bedrock Converse's: 20 images of up to 3.75 MB, 5 documents of up to 4.5 MB.
fn default_max_images() -> u32 {
    20
}

fn default_max_image_bytes() -> u64 {
    3_750_000
}

fn default_max_documents() -> u32 {
    5
}

fn default_max_document_bytes() -> u64 {
    4_500_000
}

fn default_max_tools() -> u32 {
    128
}

/// What to do with each PII entity type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiPolicy {
    /// The action for entity types not listed in `entities`.
    #[serde(default = "default_pii_action")]
    pub default_action: GuardAction,
    /// Per-entity-type actions: `block`, `mask`, `pseudonymize` or `flag`.
    #[serde(default)]
    pub entities: BTreeMap<EntityType, GuardAction>,
}

impl Default for PiiPolicy {
    fn default() -> Self {
        PiiPolicy {
            default_action: default_pii_action(),
            entities: BTreeMap::new(),
        }
    }
}

impl PiiPolicy {
    /// The action configured for `entity`.
    pub fn action_for(&self, entity: EntityType) -> GuardAction {
        self.entities
            .get(&entity)
            .copied()
            .unwrap_or(self.default_action)
    }
}

/// A denied topic. Any of its phrases, matched whole-word, blocks the call with a reason naming the topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// A short identifier, reported as the entity of `topic` events.
    pub name: String,
    /// What the topic covers, for people reading the profile (and for a model-based classifier later).
    pub definition: String,
    /// Phrases that indicate the topic.
    pub phrases: Vec<String>,
}

/// Prompt-injection scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionPolicy {
    /// Scores at or above this value trigger `action`; in `[0, 1]`.
    #[serde(default = "default_injection_threshold")]
    pub threshold: f32,
    /// `block` or `flag`.
    #[serde(default = "default_injection_action")]
    pub action: GuardAction,
}

impl Default for InjectionPolicy {
    fn default() -> Self {
        InjectionPolicy {
            threshold: default_injection_threshold(),
            action: default_injection_action(),
        }
    }
}

/// Checks on the model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputPolicy {
    /// When set, the action for every PII entity type found in an answer (`block`, `mask` or `flag`).
    /// When unset, the input action applies, with `pseudonymize` treated as `mask`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_action: Option<GuardAction>,
    /// Answers whose grounding score falls below this value are marked low trust; in `[0, 1]`.
    #[serde(default = "default_grounding_threshold")]
    pub grounding_threshold: f32,
}

impl Default for OutputPolicy {
    fn default() -> Self {
        OutputPolicy {
            pii_action: None,
            grounding_threshold: default_grounding_threshold(),
        }
    }
}

impl OutputPolicy {
    /// The action for `entity` in an answer, given the input policy.
    pub fn action_for(&self, pii: &PiiPolicy, entity: EntityType) -> GuardAction {
        match self.pii_action.unwrap_or_else(|| pii.action_for(entity)) {
            // A new value in an answer has no pseudonym to restore, so it is masked.
            GuardAction::Pseudonymize | GuardAction::Strip => GuardAction::Mask,
            other => other,
        }
    }
}

fn default_pii_action() -> GuardAction {
    GuardAction::Mask
}

fn default_denied_word_action() -> GuardAction {
    GuardAction::Block
}

fn default_injection_threshold() -> f32 {
    0.7
}

fn default_injection_action() -> GuardAction {
    GuardAction::Block
}

fn default_grounding_threshold() -> f32 {
    0.5
}

/// Why a profile could not be read or compiled.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The TOML is malformed or has an unknown or mistyped key.
    #[error("invalid guard profile at line {line} column {column}: {message}")]
    Parse {
        /// 1-based line of the problem, 0 when unknown.
        line: usize,
        /// 1-based column of the problem, 0 when unknown.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value is out of range or not allowed where it is.
    #[error("invalid guard profile field `{field}`: {problem}")]
    Invalid {
        /// The offending key, e.g. `injection.threshold`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A matcher could not be built from the profile.
    #[error("guard profile rules could not be compiled: {0}")]
    Compile(String),
}

impl GuardProfile {
    /// Parses and validates a profile from TOML.
    ///
    /// # Errors
    ///
    /// [`ProfileError::Parse`] for malformed TOML or an unknown key (the message names it),
    /// [`ProfileError::Invalid`] for a value out of range.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        let profile: GuardProfile = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((0, 0));
            ProfileError::Parse {
                line,
                column,
                message: e.message().replace('\n', " "),
            }
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks every value range and action; called by [`GuardProfile::from_toml`] and
    /// [`GuardEngine::new`](crate::GuardEngine::new).
    ///
    /// # Errors
    ///
    /// [`ProfileError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if self.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        if self.system_instructions.trim().is_empty() {
            return Err(invalid("system_instructions", "must not be empty"));
        }
        if !is_pii_action(self.pii.default_action) {
            return Err(invalid("pii.default_action", PII_ACTIONS));
        }
        for (entity, action) in &self.pii.entities {
            if !is_pii_action(*action) {
                return Err(invalid(&format!("pii.entities.{entity}"), PII_ACTIONS));
            }
        }
        if !matches!(
            self.denied_word_action,
            GuardAction::Block | GuardAction::Mask
        ) {
            return Err(invalid("denied_word_action", "must be `block` or `mask`"));
        }
        if let Some(i) = self.denied_words.iter().position(|w| w.trim().is_empty()) {
            return Err(invalid(&format!("denied_words[{i}]"), "must not be empty"));
        }
        let mut names = Vec::new();
        for (i, topic) in self.topics.iter().enumerate() {
            if topic.name.trim().is_empty() {
                return Err(invalid(&format!("topics[{i}].name"), "must not be empty"));
            }
            if names.contains(&topic.name.as_str()) {
                return Err(invalid(
                    &format!("topics[{i}].name"),
                    &format!("duplicate topic `{}`", topic.name),
                ));
            }
            names.push(topic.name.as_str());
            if topic.phrases.is_empty() {
                return Err(invalid(
                    &format!("topics[{i}].phrases"),
                    "must list at least one phrase",
                ));
            }
            if let Some(j) = topic.phrases.iter().position(|p| p.trim().is_empty()) {
                return Err(invalid(
                    &format!("topics[{i}].phrases[{j}]"),
                    "must not be empty",
                ));
            }
        }
        if !is_unit(self.injection.threshold) {
            return Err(invalid("injection.threshold", "must be between 0 and 1"));
        }
        if !matches!(
            self.injection.action,
            GuardAction::Block | GuardAction::Flag
        ) {
            return Err(invalid("injection.action", "must be `block` or `flag`"));
        }
        if let Some(action) = self.output.pii_action
            && !matches!(
                action,
                GuardAction::Block | GuardAction::Mask | GuardAction::Flag
            )
        {
            return Err(invalid(
                "output.pii_action",
                "must be `block`, `mask` or `flag`",
            ));
        }
        if !is_unit(self.output.grounding_threshold) {
            return Err(invalid(
                "output.grounding_threshold",
                "must be between 0 and 1",
            ));
        }
        Ok(())
    }
}

const PII_ACTIONS: &str = "must be `block`, `mask`, `pseudonymize` or `flag`";

fn is_pii_action(action: GuardAction) -> bool {
    !matches!(action, GuardAction::Strip)
}

fn is_unit(value: f32) -> bool {
    (0.0..=1.0).contains(&value)
}

fn invalid(field: &str, problem: &str) -> ProfileError {
    ProfileError::Invalid {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
