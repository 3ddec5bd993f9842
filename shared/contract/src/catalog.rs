//! The model catalog and the purpose catalog: the one source of truth for which models exist behind which
//! alias, what they cost, and which purposes a caller may declare.
//!
//! Both are TOML files in `policies/`. Clients only ever name an alias; the catalog maps it to a provider
//! model id or ARN, so an SCP rendered from the same file and the hub always agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which `ModelInvoker` serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Amazon Bedrock Runtime (Converse / ConverseStream).
    Bedrock,
    /// Any OpenAI-compatible chat completions endpoint, such as a self-hosted model.
    Openai,
    /// The deterministic local development model. Never a real model; labelled in every answer and record.
    Local,
}

impl ProviderKind {
    /// The lowercase name used in config and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bedrock => "bedrock",
            Self::Openai => "openai",
            Self::Local => "local",
        }
    }
}

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Answers a conversation (every door but embeddings).
    #[default]
    Chat,
    /// Turns text into vectors (`/v1/embeddings`, Bedrock `invoke` with an embedding body).
    Embedding,
}

impl ModelKind {
    /// The lowercase name used in the catalog, `/v1/models` and Cedar (`resource.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embedding => "embedding",
        }
    }
}

/// One model behind an alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Which provider serves it.
    pub provider: ProviderKind,
    /// `chat` (default) or `embedding`.
    #[serde(default)]
    pub kind: ModelKind,
    /// Embedding models: the length of the vectors they return by default (and the most a caller may ask
    /// for with `dimensions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Provider model id, inference profile id or ARN.
    pub model_id: String,
    /// The model version recorded on every audit record.
    pub version: String,
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// Largest answer, in tokens, any caller may ask for.
    pub max_tokens: u32,
    /// Price in US dollars per 1,000 input tokens.
    #[serde(default)]
    pub input_price_per_1k: f64,
    /// Price in US dollars per 1,000 output tokens.
    #[serde(default)]
    pub output_price_per_1k: f64,
    /// Regions where the model may be invoked (used when rendering SCPs).
    #[serde(default)]
    pub regions: Vec<String>,
}

impl ModelEntry {
    /// Cost of a call in millionths of a US dollar, rounded up, so sums stay exact.
    pub fn cost_micro_usd(&self, input_tokens: u32, output_tokens: u32) -> u64 {
        let dollars = f64::from(input_tokens) / 1000.0 * self.input_price_per_1k
            + f64::from(output_tokens) / 1000.0 * self.output_price_per_1k;
        let micro = (dollars * 1_000_000.0).ceil();
        if micro.is_finite() && micro > 0.0 {
            // Bounded by u32 token counts times a finite price: well inside u64.
            micro as u64
        } else {
            0
        }
    }
}

/// The model catalog file (`policies/catalog.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Version of the catalog, recorded in audit records.
    pub version: String,
    /// Models by alias.
    pub models: BTreeMap<String, ModelEntry>,
}

/// A purpose a caller may declare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    /// What the purpose covers, for people approving access.
    pub description: String,
}

/// The purpose catalog file (`policies/purposes.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeCatalog {
    /// Purposes by name.
    pub purposes: BTreeMap<String, Purpose>,
}

/// A catalog file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Not valid TOML or not the catalog's shape.
    #[error("{file}: {message}")]
    Parse {
        /// Which file.
        file: String,
        /// The parser's message, which names the key.
        message: String,
    },
    /// Parsed, but a rule is broken.
    #[error("{file}: {message}")]
    Invalid {
        /// Which file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
}

impl Catalog {
    /// Parses and checks a catalog. `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, CatalogError> {
        let catalog: Self = toml::from_str(text).map_err(|e| CatalogError::Parse {
            file: file.to_owned(),
            message: e.message().to_owned() + &span_hint(text, e.span()),
        })?;
        let invalid = |message: String| CatalogError::Invalid {
            file: file.to_owned(),
            message,
        };
        if catalog.models.is_empty() {
            return Err(invalid("the catalog lists no models".to_owned()));
        }
        for (alias, model) in &catalog.models {
            if !valid_name(alias) {
                return Err(invalid(format!(
                    "model alias `{alias}` must be 1-64 characters of a-z, 0-9, `-`, `_` or `.`"
                )));
            }
            if model.model_id.trim().is_empty() {
                return Err(invalid(format!("model `{alias}` has an empty `model_id`")));
            }
            if model.max_tokens == 0 {
                return Err(invalid(format!("model `{alias}` has `max_tokens` = 0")));
            }
            if !(model.input_price_per_1k >= 0.0 && model.output_price_per_1k >= 0.0) {
                return Err(invalid(format!("model `{alias}` has a negative price")));
            }
            match (model.kind, model.dimensions) {
                (ModelKind::Embedding, None | Some(0)) => {
                    return Err(invalid(format!(
                        "embedding model `{alias}` needs `dimensions` (the length of its vectors)"
                    )));
                }
                (ModelKind::Chat, Some(_)) => {
                    return Err(invalid(format!(
                        "model `{alias}` has `dimensions` but is not `kind = \"embedding\"`"
                    )));
                }
                _ => {}
            }
        }
        Ok(catalog)
    }

    /// Looks up an alias.
    pub fn get(&self, alias: &str) -> Option<&ModelEntry> {
        self.models.get(alias)
    }
}

impl PurposeCatalog {
    /// Parses and checks a purpose catalog. `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, CatalogError> {
        let catalog: Self = toml::from_str(text).map_err(|e| CatalogError::Parse {
            file: file.to_owned(),
            message: e.message().to_owned() + &span_hint(text, e.span()),
        })?;
        if catalog.purposes.is_empty() {
            return Err(CatalogError::Invalid {
                file: file.to_owned(),
                message: "the purpose catalog lists no purposes".to_owned(),
            });
        }
        if let Some(bad) = catalog.purposes.keys().find(|p| !valid_name(p)) {
            return Err(CatalogError::Invalid {
                file: file.to_owned(),
                message: format!(
                    "purpose `{bad}` must be 1-64 characters of a-z, 0-9, `-`, `_` or `.`"
                ),
            });
        }
        Ok(catalog)
    }

    /// True when `purpose` is in the catalog.
    pub fn contains(&self, purpose: &str) -> bool {
        self.purposes.contains_key(purpose)
    }

    /// The allowed purpose names, comma separated in backticks, for error messages.
    pub fn allowed_list(&self) -> String {
        self.purposes
            .keys()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// ` (line N)` for a parser error span, so messages point at the offending line.
pub fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.bytes().filter(|b| *b == b'\n').count())
                + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = r#"
version = "test"
[models.small]
provider = "bedrock"
model_id = "amazon.nova-lite-v1:0"
version = "1"
max_tokens = 100
input_price_per_1k = 0.5
output_price_per_1k = 1.5
"#;

    #[test]
    fn parses_and_prices_in_micro_dollars() {
        let catalog = Catalog::from_toml("catalog.toml", CATALOG).unwrap();
        let model = catalog.get("small").unwrap();
        assert_eq!(model.provider, ProviderKind::Bedrock);
        // 1000 in at 0.5 + 2000 out at 1.5 = 3.5 dollars
        assert_eq!(model.cost_micro_usd(1000, 2000), 3_500_000);
        assert_eq!(model.cost_micro_usd(0, 0), 0);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = CATALOG.replace("max_tokens = 100", "max_tokens = 100\nmax_tokenz = 5");
        let err = Catalog::from_toml("catalog.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_tokenz"), "{err}");
        assert!(err.contains("line 8"), "{err}");
    }

    #[test]
    fn rejects_bad_alias_and_zero_tokens() {
        let text = CATALOG.replace("[models.small]", "[models.\"Big Model\"]");
        let err = Catalog::from_toml("c", &text).unwrap_err().to_string();
        assert!(err.contains("`Big Model`"), "{err}");
        let text = CATALOG.replace("max_tokens = 100", "max_tokens = 0");
        let err = Catalog::from_toml("c", &text).unwrap_err().to_string();
        assert!(err.contains("max_tokens"), "{err}");
    }

    #[test]
    fn embedding_models_carry_their_dimensions() {
        let text = format!(
            "{CATALOG}[models.embed]\nprovider = \"bedrock\"\nkind = \"embedding\"\nmodel_id = \"amazon.titan-embed-text-v2:0\"\nversion = \"2\"\nmax_tokens = 8192\ndimensions = 1024\n"
        );
        let catalog = Catalog::from_toml("c", &text).unwrap();
        assert_eq!(catalog.get("embed").unwrap().kind, ModelKind::Embedding);
        assert_eq!(catalog.get("small").unwrap().kind, ModelKind::Chat);
        let err = Catalog::from_toml("c", &text.replace("dimensions = 1024\n", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs `dimensions`"), "{err}");
    }

    #[test]
    fn purposes_list_for_messages() {
        let purposes = PurposeCatalog::from_toml(
            "p",
            "[purposes.support]\ndescription = \"a\"\n[purposes.analytics]\ndescription = \"b\"\n",
        )
        .unwrap();
        assert!(purposes.contains("support"));
        assert!(!purposes.contains("marketing"));
        assert_eq!(purposes.allowed_list(), "`analytics`, `support`");
    }
}
