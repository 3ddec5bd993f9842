//! The spoke registry: which IAM principals may call the hub, and as which spoke account, organizational
//! unit, team and applications.
//!
//! Constraints:
//! - The registry is keyed by the normalised principal (`arn:<partition>:iam::<account>:role/<name>`, see
//!   [`causeway_contract::workload::normalise_principal`]); a principal that is not registered is refused, never
//!   guessed.
//! - A suspended spoke is refused like an unknown one, and both refusals are audited.
//! - The embedded registry comes from the hub's config (`[[spokes]]`); other stores implement
//!   [`SpokeRegistry`].
//! - A spoke's `allowed_models` and own budgets travel with it to every call. A missing one means no
//!   restriction; a malformed one makes the whole registration unusable, so the spoke is refused rather than
//!   run unrestricted.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use crate::budget::{SpokeLimits, micro_usd};

/// One registered spoke principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spoke {
    /// The normalised principal ARN.
    pub principal: String,
    /// The spoke account id.
    pub account: String,
    /// The organizational unit.
    pub ou: String,
    /// The owning team.
    pub team: String,
    /// Applications that may call through this principal.
    pub applications: Vec<String>,
    /// Active or suspended.
    pub status: SpokeStatus,
    /// Catalog model aliases the spoke may use; empty means every model its Cedar policies allow.
    pub allowed_models: Vec<String>,
    /// The spoke's own budgets.
    pub limits: SpokeLimits,
    /// The floor of its calls' data classification; `None`: the hub's default.
    pub data_classification: Option<String>,
    /// The floor per application where it differs from the spoke's.
    pub application_classifications: BTreeMap<String, String>,
}

impl Spoke {
    /// The floor of the data classification of `application`'s calls: its own, else the spoke's, else
    /// `None` (the hub's default).
    pub fn classification_of(&self, application: &str) -> Option<String> {
        self.application_classifications
            .get(application)
            .or(self.data_classification.as_ref())
            .cloned()
    }
}

/// Whether a registered spoke may call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpokeStatus {
    /// Calls are accepted (default).
    #[default]
    Active,
    /// Calls are refused with 403 and audited.
    Suspended,
}

/// The registry cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The backing store failed.
    #[error("the spoke registry is unavailable: {0}")]
    Unavailable(String),
}

/// Looks up spoke principals.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SpokeRegistry: Send + Sync + std::fmt::Debug {
    /// The spoke registered for a normalised principal ARN, if any.
    async fn lookup(&self, principal: &str) -> Result<Option<Spoke>, RegistryError>;
}

/// The registry from the hub's config, held in memory.
#[derive(Debug, Default)]
pub struct EmbeddedRegistry {
    spokes: HashMap<String, Spoke>,
}

impl EmbeddedRegistry {
    /// A registry of `spokes`, keyed by their principals.
    pub fn new(spokes: impl IntoIterator<Item = Spoke>) -> Self {
        Self {
            spokes: spokes
                .into_iter()
                .map(|s| (s.principal.clone(), s))
                .collect(),
        }
    }
}

#[async_trait]
impl SpokeRegistry for EmbeddedRegistry {
    async fn lookup(&self, principal: &str) -> Result<Option<Spoke>, RegistryError> {
        Ok(self.spokes.get(principal).cloned())
    }
}

// === impl DynamoDbRegistry ===

/// The registry in a DynamoDB table, shared by every hub instance and written by onboarding.
///
/// One item per principal: `pk` (string, the normalised principal ARN), `account`, `ou`, `team` (strings),
/// `applications` (a string set or a list of strings), `status` (`active` or `suspended`), and optionally
/// `allowed_models` (a string set or a list of strings; empty or absent: no restriction beyond the policies)
/// and the numbers `budget_requests_per_day`, `budget_tokens_per_day` and `budget_cost_usd_per_month` (US
/// dollars), `data_classification` (a string) and `application_classifications` (a map from application to
/// classification), as `causeway org apply` writes them. An item that does not have this shape is refused (fail
/// closed), never read as active or unrestricted.
#[derive(Debug, Clone)]
pub struct DynamoDbRegistry {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbRegistry {
    /// A registry on `table`, with a client built once at start-up.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn spoke_from_item(
    principal: &str,
    item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<Spoke, RegistryError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let malformed = |field: &str| {
        RegistryError::Unavailable(format!(
            "the registry item of `{principal}` has no valid `{field}`"
        ))
    };
    let text = |field: &str| -> Result<String, RegistryError> {
        match item.get(field) {
            Some(AttributeValue::S(value)) => Ok(value.clone()),
            None => Ok(String::new()),
            Some(_) => Err(malformed(field)),
        }
    };
    let account = text("account")?;
    if account.is_empty() {
        return Err(malformed("account"));
    }
    let strings = |field: &str| -> Result<Option<Vec<String>>, RegistryError> {
        match item.get(field) {
            None => Ok(None),
            Some(AttributeValue::Ss(values)) => Ok(Some(values.clone())),
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| v.as_s().cloned().map_err(|_| malformed(field)))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(malformed(field)),
        }
    };
    let number = |field: &str| -> Result<Option<&str>, RegistryError> {
        match item.get(field) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => Ok(Some(n.trim())),
            Some(_) => Err(malformed(field)),
        }
    };
    let count = |field: &str| -> Result<Option<u64>, RegistryError> {
        number(field)?
            .map(|n| n.parse::<u64>().map_err(|_| malformed(field)))
            .transpose()
    };
    let applications = strings("applications")?.ok_or_else(|| malformed("applications"))?;
    let allowed_models = strings("allowed_models")?.unwrap_or_default();
    if allowed_models.iter().any(|m| m.trim().is_empty()) {
        return Err(malformed("allowed_models"));
    }
    let limits = SpokeLimits {
        requests_per_day: count("budget_requests_per_day")?,
        tokens_per_day: count("budget_tokens_per_day")?,
        cost_micro_usd_per_month: number("budget_cost_usd_per_month")?
            .map(|n| {
                n.parse::<f64>()
                    .ok()
                    .and_then(micro_usd)
                    .ok_or_else(|| malformed("budget_cost_usd_per_month"))
            })
            .transpose()?,
    };
    let data_classification = Some(text("data_classification")?).filter(|c| !c.is_empty());
    if data_classification
        .as_deref()
        .is_some_and(|c| !causeway_contract::classification::DataClassification::NAMES.contains(&c))
    {
        return Err(malformed("data_classification"));
    }
    let mut application_classifications = BTreeMap::new();
    match item.get("application_classifications") {
        None => {}
        Some(AttributeValue::M(map)) => {
            for (application, class) in map {
                let class = class
                    .as_s()
                    .map_err(|_| malformed("application_classifications"))?;
                if !applications.contains(application)
                    || !causeway_contract::classification::DataClassification::NAMES
                        .contains(&class.as_str())
                {
                    return Err(malformed("application_classifications"));
                }
                application_classifications.insert(application.clone(), class.clone());
            }
        }
        Some(_) => return Err(malformed("application_classifications")),
    }
    let status = match text("status")?.as_str() {
        "active" => SpokeStatus::Active,
        "suspended" => SpokeStatus::Suspended,
        _ => return Err(malformed("status")),
    };
    Ok(Spoke {
        principal: principal.to_owned(),
        account,
        ou: text("ou")?,
        team: text("team")?,
        applications,
        status,
        allowed_models,
        limits,
        data_classification,
        application_classifications,
    })
}

#[async_trait]
impl SpokeRegistry for DynamoDbRegistry {
    async fn lookup(&self, principal: &str) -> Result<Option<Spoke>, RegistryError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(principal.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                RegistryError::Unavailable(format!(
                    "dynamodb: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                ))
            })?;
        output
            .item()
            .map(|item| spoke_from_item(principal, item))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::config::{SpokeBudgetsConfig, SpokeConfig};

    #[test]
    fn registry_items_with_a_bad_shape_are_refused() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(principal.into())),
            (
                "account".to_owned(),
                AttributeValue::S("111122223333".into()),
            ),
            (
                "applications".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("claims-triage".into())]),
            ),
            ("status".to_owned(), AttributeValue::S("active".into())),
        ]);
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert_eq!(spoke.applications, vec!["claims-triage".to_owned()]);
        assert_eq!(spoke.ou, "");

        item.insert("status".into(), AttributeValue::S("paused".into()));
        assert_eq!(
            spoke_from_item(principal, &item).unwrap_err().to_string(),
            "the spoke registry is unavailable: the registry item of `arn:aws:iam::111122223333:role/r` has no valid `status`"
        );
        item.insert("status".into(), AttributeValue::S("active".into()));
        item.remove("applications");
        assert!(spoke_from_item(principal, &item).is_err());
    }

    #[test]
    fn an_application_has_its_own_classification_floor_and_a_bad_one_refuses_the_spoke() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let apps = |names: &[&str]| {
            AttributeValue::L(
                names
                    .iter()
                    .map(|n| AttributeValue::S((*n).to_owned()))
                    .collect(),
            )
        };
        let classes = |pairs: &[(&str, &str)]| {
            AttributeValue::M(
                pairs
                    .iter()
                    .map(|(a, c)| ((*a).to_owned(), AttributeValue::S((*c).to_owned())))
                    .collect(),
            )
        };
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(principal.into())),
            (
                "account".to_owned(),
                AttributeValue::S("111122223333".into()),
            ),
            ("applications".to_owned(), apps(&["chat", "claims-triage"])),
            ("status".to_owned(), AttributeValue::S("active".into())),
            (
                "data_classification".to_owned(),
                AttributeValue::S("internal".into()),
            ),
            (
                "application_classifications".to_owned(),
                classes(&[("claims-triage", "restricted")]),
            ),
        ]);
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert_eq!(
            spoke.classification_of("claims-triage").as_deref(),
            Some("restricted")
        );
        assert_eq!(spoke.classification_of("chat").as_deref(), Some("internal"));

        for bad in [
            classes(&[("claims-triage", "secret")]),
            classes(&[("fraud", "restricted")]),
            AttributeValue::S("restricted".into()),
        ] {
            item.insert("application_classifications".into(), bad);
            assert!(spoke_from_item(principal, &item).is_err());
        }
    }

    fn item_as_org_apply_writes_it() -> HashMap<String, AttributeValue> {
        let principal = "arn:aws:iam::111122223333:role/r";
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(principal.into())),
            (
                "account".to_owned(),
                AttributeValue::S("111122223333".into()),
            ),
            (
                "applications".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("claims-triage".into())]),
            ),
            ("status".to_owned(), AttributeValue::S("active".into())),
            ("allowed_models".to_owned(), AttributeValue::L(Vec::new())),
            (
                "managed_by".to_owned(),
                AttributeValue::S("causeway-org".into()),
            ),
        ])
    }

    #[test]
    fn missing_or_empty_spoke_restrictions_mean_none() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let mut item = item_as_org_apply_writes_it();
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert!(spoke.allowed_models.is_empty());
        assert_eq!(spoke.limits, SpokeLimits::default());
        item.remove("allowed_models");
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert!(spoke.allowed_models.is_empty());
    }

    #[test]
    fn allowed_models_and_budgets_are_read_from_the_item() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let mut item = item_as_org_apply_writes_it();
        item.insert(
            "allowed_models".into(),
            AttributeValue::L(vec![
                AttributeValue::S("claude-haiku".into()),
                AttributeValue::S("nova-lite".into()),
            ]),
        );
        item.insert(
            "budget_requests_per_day".into(),
            AttributeValue::N("50000".into()),
        );
        item.insert(
            "budget_tokens_per_day".into(),
            AttributeValue::N("20000000".into()),
        );
        item.insert(
            "budget_cost_usd_per_month".into(),
            AttributeValue::N("2000.25".into()),
        );
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert_eq!(spoke.allowed_models, vec!["claude-haiku", "nova-lite"]);
        assert_eq!(
            spoke.limits,
            SpokeLimits {
                requests_per_day: Some(50_000),
                tokens_per_day: Some(20_000_000),
                cost_micro_usd_per_month: Some(2_000_250_000),
            }
        );
        // A string set is read like a list.
        item.insert(
            "allowed_models".into(),
            AttributeValue::Ss(vec!["nova-lite".into()]),
        );
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert_eq!(spoke.allowed_models, vec!["nova-lite"]);
    }

    #[test]
    fn malformed_spoke_restrictions_refuse_the_spoke() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let cases = [
            ("allowed_models", AttributeValue::S("claude-haiku".into())),
            (
                "allowed_models",
                AttributeValue::L(vec![AttributeValue::N("1".into())]),
            ),
            (
                "allowed_models",
                AttributeValue::L(vec![AttributeValue::S(" ".into())]),
            ),
            ("budget_requests_per_day", AttributeValue::S("10".into())),
            ("budget_requests_per_day", AttributeValue::N("-1".into())),
            ("budget_requests_per_day", AttributeValue::N("2.5".into())),
            ("budget_tokens_per_day", AttributeValue::Bool(true)),
            ("budget_cost_usd_per_month", AttributeValue::N("-5".into())),
            (
                "budget_cost_usd_per_month",
                AttributeValue::S("2000".into()),
            ),
            (
                "budget_cost_usd_per_month",
                AttributeValue::N("1e13".into()),
            ),
        ];
        for (field, value) in cases {
            let mut item = item_as_org_apply_writes_it();
            item.insert(field.into(), value.clone());
            let err = spoke_from_item(principal, &item).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "the spoke registry is unavailable: the registry item of `{principal}` has no valid `{field}`"
                ),
                "{field} = {value:?}"
            );
        }
    }

    #[tokio::test]
    async fn roles_are_found_by_their_normalised_arn() {
        let registry = EmbeddedRegistry::from_config(&[SpokeConfig {
            principal: "arn:aws:iam::111122223333:role/platform/causeway-invoker".into(),
            account: "111122223333".into(),
            ou: "workloads-prod".into(),
            team: "claims".into(),
            applications: vec!["claims-triage".into()],
            status: SpokeStatus::Active,
            allowed_models: vec!["claude-haiku".into()],
            budgets: SpokeBudgetsConfig {
                requests_per_day: Some(50_000),
                tokens_per_day: None,
                cost_usd_per_month: Some(2000.5),
            },
            data_classification: None,
            application_classifications: BTreeMap::new(),
        }]);
        let spoke = registry
            .lookup("arn:aws:iam::111122223333:role/causeway-invoker")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(spoke.ou, "workloads-prod");
        assert_eq!(spoke.allowed_models, vec!["claude-haiku".to_owned()]);
        assert_eq!(
            spoke.limits,
            SpokeLimits {
                requests_per_day: Some(50_000),
                tokens_per_day: None,
                cost_micro_usd_per_month: Some(2_000_500_000),
            }
        );
        assert!(
            registry
                .lookup("arn:aws:iam::444455556666:role/causeway-invoker")
                .await
                .unwrap()
                .is_none()
        );
    }
}
