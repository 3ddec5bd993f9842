//! The spoke registry: which IAM principals may call the hub, and as which spoke account, organizational
//! unit, team and applications.
//!
//! Constraints:
//! - The registry is keyed by the normalised principal (`arn:<partition>:iam::<account>:role/<name>`, see
//!   [`crate::auth::workload::normalise_principal`]); a principal that is not registered is refused, never
//!   guessed.
//! - A suspended spoke is refused like an unknown one, and both refusals are audited.
//! - The embedded registry comes from the hub's config (`[[spokes]]`); other stores implement
//!   [`SpokeRegistry`].

use std::collections::HashMap;

use async_trait::async_trait;

use crate::config::{SpokeConfig, SpokeStatus};

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
}

impl From<&SpokeConfig> for Spoke {
    fn from(config: &SpokeConfig) -> Self {
        Self {
            principal: crate::auth::workload::normalise_principal(&config.principal)
                .map_or_else(|| config.principal.clone(), |p| p.arn),
            account: config.account.clone(),
            ou: config.ou.clone(),
            team: config.team.clone(),
            applications: config.applications.clone(),
            status: config.status,
        }
    }
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
    /// A registry of the configured spokes.
    pub fn from_config(spokes: &[SpokeConfig]) -> Self {
        Self {
            spokes: spokes
                .iter()
                .map(Spoke::from)
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
/// `applications` (a string set or a list of strings) and `status` (`active` or `suspended`). An item that does
/// not have this shape is refused (fail closed), never read as active.
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
    let applications = match item.get("applications") {
        Some(AttributeValue::Ss(apps)) => apps.clone(),
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| v.as_s().cloned().map_err(|_| malformed("applications")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(malformed("applications")),
    };
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
    use super::*;

    #[test]
    fn registry_items_with_a_bad_shape_are_refused() {
        use aws_sdk_dynamodb::types::AttributeValue;
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

    #[tokio::test]
    async fn roles_are_found_by_their_normalised_arn() {
        let registry = EmbeddedRegistry::from_config(&[SpokeConfig {
            principal: "arn:aws:iam::111122223333:role/platform/causeway-invoker".into(),
            account: "111122223333".into(),
            ou: "workloads-prod".into(),
            team: "claims".into(),
            applications: vec!["claims-triage".into()],
            status: SpokeStatus::Active,
        }]);
        let spoke = registry
            .lookup("arn:aws:iam::111122223333:role/causeway-invoker")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(spoke.ou, "workloads-prod");
        assert!(
            registry
                .lookup("arn:aws:iam::444455556666:role/causeway-invoker")
                .await
                .unwrap()
                .is_none()
        );
    }
}
