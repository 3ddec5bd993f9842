//! Spoke registry entries as `org apply` writes them and the hub reads them (see the hub's
//! `DynamoDbRegistry`): one item per spoke principal, the spoke's invoker role in the hub account.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::orgfile::{DesiredAccount, OrgFile, SpokeSettings};

/// The `managed_by` value of the registry entries `org apply` writes: only these are ever removed by it.
pub const MANAGED_BY: &str = "causeway-org";

/// The `ou` the hub puts in the Cedar context: the OU path below the root, lowercase, joined with `-`
/// (`Root/Workloads/Prod` is `workloads-prod`; the root itself is `root`).
pub fn ou_label(path: &[String]) -> String {
    if path.is_empty() {
        "root".to_owned()
    } else {
        path.iter()
            .map(|p| p.to_lowercase().replace(char::is_whitespace, "-"))
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// The registry item for a spoke account.
pub fn item(
    file: &OrgFile,
    account_id: &str,
    account: &DesiredAccount,
    spoke: &SpokeSettings,
) -> HashMap<String, AttributeValue> {
    let list = |values: &[String]| {
        let mut sorted = values.to_vec();
        sorted.sort();
        AttributeValue::L(sorted.into_iter().map(AttributeValue::S).collect())
    };
    let mut item = HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(file.invoker_role_arn(account_id)),
        ),
        (
            "account".to_owned(),
            AttributeValue::S(account_id.to_owned()),
        ),
        ("ou".to_owned(), AttributeValue::S(ou_label(&account.ou))),
        (
            "team".to_owned(),
            AttributeValue::S(spoke.team.clone().unwrap_or_else(|| account.name.clone())),
        ),
        (
            "applications".to_owned(),
            list(spoke.applications.as_deref().unwrap_or_default()),
        ),
        (
            "status".to_owned(),
            AttributeValue::S(
                if spoke.suspended.unwrap_or(false) {
                    "suspended"
                } else {
                    "active"
                }
                .to_owned(),
            ),
        ),
        (
            "allowed_models".to_owned(),
            list(spoke.allowed_models.as_deref().unwrap_or_default()),
        ),
        (
            "managed_by".to_owned(),
            AttributeValue::S("causeway-org".to_owned()),
        ),
    ]);
    if let Some(budgets) = &spoke.budgets {
        if let Some(n) = budgets.requests_per_day {
            item.insert(
                "budget_requests_per_day".to_owned(),
                AttributeValue::N(n.to_string()),
            );
        }
        if let Some(n) = budgets.tokens_per_day {
            item.insert(
                "budget_tokens_per_day".to_owned(),
                AttributeValue::N(n.to_string()),
            );
        }
        if let Some(n) = budgets.cost_usd_per_month {
            item.insert(
                "budget_cost_usd_per_month".to_owned(),
                AttributeValue::N(n.to_string()),
            );
        }
    }
    item
}

/// An item's attributes as text, for comparing what is stored with what the file wants.
pub fn attributes_as_text(item: &HashMap<String, AttributeValue>) -> BTreeMap<String, String> {
    item.iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect()
}

fn value_text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n
            .parse::<f64>()
            .map_or_else(|_| n.clone(), |f| f.to_string()),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::Ss(values) => {
            let mut sorted = values.clone();
            sorted.sort();
            sorted.join(",")
        }
        AttributeValue::L(values) => {
            let mut items: Vec<String> = values.iter().map(value_text).collect();
            items.sort();
            items.join(",")
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ou_labels_match_the_cedar_context() {
        assert_eq!(
            ou_label(&["Workloads".into(), "Prod".into()]),
            "workloads-prod"
        );
        assert_eq!(ou_label(&[]), "root");
        assert_eq!(ou_label(&["Data Science".into()]), "data-science");
    }

    #[test]
    fn stored_text_ignores_list_order_and_number_spelling() {
        let a = HashMap::from([
            (
                "applications".to_owned(),
                AttributeValue::L(vec![
                    AttributeValue::S("b".into()),
                    AttributeValue::S("a".into()),
                ]),
            ),
            ("n".to_owned(), AttributeValue::N("10.0".into())),
        ]);
        let b = HashMap::from([
            (
                "applications".to_owned(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            ("n".to_owned(), AttributeValue::N("10".into())),
        ]);
        assert_eq!(attributes_as_text(&a), attributes_as_text(&b));
    }
}
