//! Spoke registry entries as `org apply` writes them and the hub reads them (see the hub's
//! `DynamoDbRegistry`): one item per spoke principal, the spoke's invoker role in the hub account.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::orgfile::{DesiredAccount, OrgFile, SpokeBudgets, SpokeSettings};

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
    if let Some(class) = &spoke.data_classification {
        item.insert(
            "data_classification".to_owned(),
            AttributeValue::S(class.clone()),
        );
    }
    if let Some(classes) = spoke
        .application_classifications
        .as_ref()
        .filter(|c| !c.is_empty())
    {
        item.insert(
            "application_classifications".to_owned(),
            AttributeValue::M(
                classes
                    .iter()
                    .map(|(app, class)| (app.clone(), AttributeValue::S(class.clone())))
                    .collect(),
            ),
        );
    }
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

/// The spoke settings a registry entry holds: the inverse of [`item`] for the account named `account_name`.
///
/// What `item` writes for an absent value is left out (a `team` equal to the account name, empty
/// `applications` and `allowed_models`, an `active` status, no budgets), so an org file written from the
/// entries keeps only what was set, and `item` of the result is the entry again.
pub fn spoke_settings(
    entry: &HashMap<String, AttributeValue>,
    account_name: &str,
) -> Result<SpokeSettings, String> {
    let account = entry
        .get("account")
        .and_then(|v| v.as_s().ok())
        .map_or("?", String::as_str);
    let text = |key: &str| -> Result<Option<&String>, String> {
        match entry.get(key) {
            None => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s)),
            Some(_) => Err(format!(
                "registry entry of account {account}: `{key}` is not a string"
            )),
        }
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, String> {
        let mut values = match entry.get(key) {
            None => Vec::new(),
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| {
                    v.as_s().cloned().map_err(|_| {
                        format!("registry entry of account {account}: `{key}` holds a value that is not a string")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(AttributeValue::Ss(values)) => values.clone(),
            Some(_) => {
                return Err(format!(
                    "registry entry of account {account}: `{key}` is not a list"
                ));
            }
        };
        values.sort();
        Ok((!values.is_empty()).then_some(values))
    };
    let number = |key: &str| -> Result<Option<&String>, String> {
        match entry.get(key) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => Ok(Some(n)),
            Some(_) => Err(format!(
                "registry entry of account {account}: `{key}` is not a number"
            )),
        }
    };
    let whole = |key: &str| -> Result<Option<u64>, String> {
        number(key)?
            .map(|n| {
                n.parse::<u64>().map_err(|_| {
                    format!(
                        "registry entry of account {account}: `{key}` {n} is not a whole number"
                    )
                })
            })
            .transpose()
    };
    let requests_per_day = whole("budget_requests_per_day")?;
    let tokens_per_day = whole("budget_tokens_per_day")?;
    let cost_usd_per_month = number("budget_cost_usd_per_month")?
        .map(|n| {
            n.parse::<f64>().map_err(|_| {
                format!(
                    "registry entry of account {account}: `budget_cost_usd_per_month` {n} is not a number"
                )
            })
        })
        .transpose()?;
    let budgets =
        (requests_per_day.is_some() || tokens_per_day.is_some() || cost_usd_per_month.is_some())
            .then_some(SpokeBudgets {
                requests_per_day,
                tokens_per_day,
                cost_usd_per_month,
            });
    let suspended = match text("status")?.map(String::as_str) {
        None | Some("active") => None,
        Some("suspended") => Some(true),
        Some(other) => {
            return Err(format!(
                "registry entry of account {account}: `status` `{other}` is neither `active` nor `suspended`"
            ));
        }
    };
    let application_classifications = match entry.get("application_classifications") {
        None => None,
        Some(AttributeValue::M(map)) => Some(
            map.iter()
                .map(|(app, class)| {
                    class.as_s().map(|c| (app.clone(), c.clone())).map_err(|_| {
                        format!(
                            "registry entry of account {account}: `application_classifications` holds a value that is not a string"
                        )
                    })
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?,
        )
        .filter(|m| !m.is_empty()),
        Some(_) => {
            return Err(format!(
                "registry entry of account {account}: `application_classifications` is not a map"
            ));
        }
    };
    Ok(SpokeSettings {
        team: text("team")?
            .filter(|team| team.as_str() != account_name)
            .cloned(),
        applications: list("applications")?,
        allowed_models: list("allowed_models")?,
        budgets,
        suspended,
        data_classification: text("data_classification")?.cloned(),
        application_classifications,
    })
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
        AttributeValue::M(map) => {
            let mut items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", value_text(v)))
                .collect();
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

    fn account(name: &str) -> DesiredAccount {
        DesiredAccount {
            id: Some("222222222222".to_owned()),
            name: name.to_owned(),
            email: None,
            ou: vec!["Workloads".to_owned(), "Prod".to_owned()],
            scps: std::collections::BTreeSet::new(),
            spoke: None,
        }
    }

    fn file() -> OrgFile {
        OrgFile::parse(
            "org.yaml",
            "version: 1\n\
             hub: { account: \"111111111111\", region: us-east-1, approved_regions: [us-east-1] }\n\
             root: {}\n",
        )
        .unwrap()
    }

    #[test]
    fn an_item_parses_back_to_its_settings() {
        let file = file();
        let account = account("payments-prod");
        let cases = [
            SpokeSettings {
                team: Some("payments".to_owned()),
                applications: Some(vec!["chat".to_owned(), "fraud-summary".to_owned()]),
                allowed_models: Some(vec!["claude-sonnet".to_owned(), "nova-lite".to_owned()]),
                budgets: Some(SpokeBudgets {
                    requests_per_day: Some(5000),
                    tokens_per_day: Some(2_000_000),
                    cost_usd_per_month: Some(1250.5),
                }),
                suspended: Some(true),
                data_classification: Some("internal".to_owned()),
                application_classifications: Some(BTreeMap::from([(
                    "fraud-summary".to_owned(),
                    "restricted".to_owned(),
                )])),
            },
            SpokeSettings {
                budgets: Some(SpokeBudgets {
                    tokens_per_day: Some(10),
                    ..SpokeBudgets::default()
                }),
                ..SpokeSettings::default()
            },
            SpokeSettings::default(),
        ];
        for settings in cases {
            let item = item(&file, "222222222222", &account, &settings);
            let parsed = spoke_settings(&item, &account.name).unwrap();
            assert_eq!(parsed, settings);
            assert_eq!(
                attributes_as_text(&super::item(&file, "222222222222", &account, &parsed)),
                attributes_as_text(&item)
            );
        }
    }

    #[test]
    fn what_item_writes_for_absent_values_is_left_out() {
        let file = file();
        let account = account("payments-prod");
        let spelled_out = SpokeSettings {
            team: Some("payments-prod".to_owned()),
            applications: Some(vec!["b".to_owned(), "a".to_owned()]),
            allowed_models: Some(Vec::new()),
            budgets: Some(SpokeBudgets::default()),
            suspended: Some(false),
            data_classification: None,
            application_classifications: Some(BTreeMap::new()),
        };
        let item = item(&file, "222222222222", &account, &spelled_out);
        let parsed = spoke_settings(&item, &account.name).unwrap();
        assert_eq!(
            parsed,
            SpokeSettings {
                applications: Some(vec!["a".to_owned(), "b".to_owned()]),
                ..SpokeSettings::default()
            }
        );
        assert_eq!(
            attributes_as_text(&super::item(&file, "222222222222", &account, &parsed)),
            attributes_as_text(&item)
        );
    }

    #[test]
    fn an_entry_the_file_cannot_hold_is_named() {
        let file = file();
        let account = account("payments-prod");
        let mut item = item(&file, "222222222222", &account, &SpokeSettings::default());
        item.insert("status".to_owned(), AttributeValue::S("paused".to_owned()));
        let err = spoke_settings(&item, &account.name).unwrap_err();
        assert!(
            err.contains("222222222222") && err.contains("`paused`"),
            "{err}"
        );
        item.insert("status".to_owned(), AttributeValue::S("active".to_owned()));
        item.insert(
            "budget_tokens_per_day".to_owned(),
            AttributeValue::N("1.5".to_owned()),
        );
        let err = spoke_settings(&item, &account.name).unwrap_err();
        assert!(err.contains("`budget_tokens_per_day` 1.5"), "{err}");
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
