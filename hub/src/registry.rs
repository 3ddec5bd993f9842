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
use causeway_contract::registry::{Item, SpokeEntry};

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

pub use causeway_contract::registry::SpokeStatus;

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
/// One item per principal, in the shape [`SpokeEntry`] defines (as `causeway org apply` writes it). An item
/// that does not have this shape is refused (fail closed), never read as active or unrestricted.
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

/// The spoke of a registry item, or why the item cannot be used.
fn spoke_from_item(principal: &str, item: &Item) -> Result<Spoke, RegistryError> {
    let malformed = |attribute: &str| {
        RegistryError::Unavailable(format!(
            "the registry item of `{principal}` has no valid `{attribute}`"
        ))
    };
    let entry = SpokeEntry::from_item(item).map_err(|e| malformed(e.attribute))?;
    let cost = "budget_cost_usd_per_month";
    let limits = SpokeLimits {
        requests_per_day: entry.budgets.requests_per_day,
        tokens_per_day: entry.budgets.tokens_per_day,
        cost_micro_usd_per_month: entry
            .budgets
            .cost_usd_per_month
            .map(|dollars| micro_usd(dollars).ok_or_else(|| malformed(cost)))
            .transpose()?,
    };
    Ok(Spoke {
        principal: principal.to_owned(),
        account: entry.account,
        ou: entry.ou,
        team: entry.team,
        applications: entry.applications,
        status: entry.status,
        allowed_models: entry.allowed_models,
        limits,
        data_classification: entry.data_classification.map(|c| c.as_str().to_owned()),
        application_classifications: entry
            .application_classifications
            .into_iter()
            .map(|(application, class)| (application, class.as_str().to_owned()))
            .collect(),
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
            .map(|item| spoke_from_item(principal, &causeway_registry_aws::from_attributes(item)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use causeway_contract::registry::{MANAGED_BY, Value};

    use super::*;
    use crate::config::{SpokeBudgetsConfig, SpokeConfig};

    #[test]
    fn registry_items_with_a_bad_shape_are_refused() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let mut item = Item::from([
            ("pk".to_owned(), Value::S(principal.into())),
            ("account".to_owned(), Value::S("111122223333".into())),
            (
                "applications".to_owned(),
                Value::L(vec![Value::S("claims-triage".into())]),
            ),
            ("status".to_owned(), Value::S("active".into())),
        ]);
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert_eq!(spoke.applications, vec!["claims-triage".to_owned()]);
        assert_eq!(spoke.ou, "");

        item.insert("status".into(), Value::S("paused".into()));
        assert_eq!(
            spoke_from_item(principal, &item).unwrap_err().to_string(),
            "the spoke registry is unavailable: the registry item of `arn:aws:iam::111122223333:role/r` has no valid `status`"
        );
        item.insert("status".into(), Value::S("active".into()));
        item.remove("applications");
        assert!(spoke_from_item(principal, &item).is_err());
    }

    #[test]
    fn an_application_has_its_own_classification_floor_and_a_bad_one_refuses_the_spoke() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let apps =
            |names: &[&str]| Value::L(names.iter().map(|n| Value::S((*n).to_owned())).collect());
        let classes = |pairs: &[(&str, &str)]| {
            Value::M(
                pairs
                    .iter()
                    .map(|(a, c)| ((*a).to_owned(), Value::S((*c).to_owned())))
                    .collect(),
            )
        };
        let mut item = Item::from([
            ("pk".to_owned(), Value::S(principal.into())),
            ("account".to_owned(), Value::S("111122223333".into())),
            ("applications".to_owned(), apps(&["chat", "claims-triage"])),
            ("status".to_owned(), Value::S("active".into())),
            (
                "data_classification".to_owned(),
                Value::S("internal".into()),
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
            Value::S("restricted".into()),
        ] {
            item.insert("application_classifications".into(), bad);
            assert!(spoke_from_item(principal, &item).is_err());
        }
    }

    /// A bare entry as `causeway org apply` writes it, by the one codec.
    fn item_as_org_apply_writes_it() -> Item {
        SpokeEntry {
            principal: "arn:aws:iam::111122223333:role/r".to_owned(),
            account: "111122223333".to_owned(),
            ou: String::new(),
            team: String::new(),
            applications: vec!["claims-triage".to_owned()],
            status: SpokeStatus::Active,
            allowed_models: Vec::new(),
            budgets: Default::default(),
            data_classification: None,
            application_classifications: BTreeMap::new(),
            managed_by: Some(MANAGED_BY.to_owned()),
        }
        .to_item()
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
            Value::L(vec![
                Value::S("claude-haiku".into()),
                Value::S("nova-lite".into()),
            ]),
        );
        item.insert("budget_requests_per_day".into(), Value::N("50000".into()));
        item.insert("budget_tokens_per_day".into(), Value::N("20000000".into()));
        item.insert(
            "budget_cost_usd_per_month".into(),
            Value::N("2000.25".into()),
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
        item.insert("allowed_models".into(), Value::Ss(vec!["nova-lite".into()]));
        let spoke = spoke_from_item(principal, &item).unwrap();
        assert_eq!(spoke.allowed_models, vec!["nova-lite"]);
    }

    #[test]
    fn malformed_spoke_restrictions_refuse_the_spoke() {
        let principal = "arn:aws:iam::111122223333:role/r";
        let cases = [
            ("allowed_models", Value::S("claude-haiku".into())),
            ("allowed_models", Value::L(vec![Value::N("1".into())])),
            ("allowed_models", Value::L(vec![Value::S(" ".into())])),
            ("budget_requests_per_day", Value::S("10".into())),
            ("budget_requests_per_day", Value::N("-1".into())),
            ("budget_requests_per_day", Value::N("2.5".into())),
            ("budget_tokens_per_day", Value::Bool(true)),
            ("budget_cost_usd_per_month", Value::N("-5".into())),
            ("budget_cost_usd_per_month", Value::S("2000".into())),
            ("budget_cost_usd_per_month", Value::N("1e13".into())),
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
