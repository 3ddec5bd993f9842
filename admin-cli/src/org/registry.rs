//! Spoke registry entries as `org apply` writes them and `org init` reads them back: the org file's spoke
//! settings as a [`SpokeEntry`] (the one codec the hub reads too), keyed by the spoke's invoker role in the
//! hub account.

use std::collections::BTreeMap;

use causeway_contract::registry::{EntryBudgets, SpokeEntry, SpokeStatus};
pub use causeway_contract::registry::{Item, MANAGED_BY, item_text as attributes_as_text};

use crate::orgfile::{DesiredAccount, OrgFile, SpokeBudgets, SpokeSettings};

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

/// The registry entry for a spoke account; an error names a classification the hub would refuse.
pub fn entry(
    file: &OrgFile,
    account_id: &str,
    account: &DesiredAccount,
    spoke: &SpokeSettings,
) -> Result<SpokeEntry, String> {
    let class = |setting: &str, name: &str| {
        name.parse()
            .map_err(|e| format!("the spoke settings of account {account_id}: `{setting}`: {e}"))
    };
    let budgets = spoke.budgets.clone().unwrap_or_default();
    Ok(SpokeEntry {
        principal: file.invoker_role_arn(account_id),
        account: account_id.to_owned(),
        ou: ou_label(&account.ou),
        team: spoke.team.clone().unwrap_or_else(|| account.name.clone()),
        applications: spoke.applications.clone().unwrap_or_default(),
        status: if spoke.suspended.unwrap_or(false) {
            SpokeStatus::Suspended
        } else {
            SpokeStatus::Active
        },
        allowed_models: spoke.allowed_models.clone().unwrap_or_default(),
        budgets: EntryBudgets {
            requests_per_day: budgets.requests_per_day,
            tokens_per_day: budgets.tokens_per_day,
            cost_usd_per_month: budgets.cost_usd_per_month,
        },
        data_classification: spoke
            .data_classification
            .as_deref()
            .map(|name| class("data_classification", name))
            .transpose()?,
        application_classifications: spoke
            .application_classifications
            .iter()
            .flatten()
            .map(|(application, name)| {
                Ok((
                    application.clone(),
                    class("application_classifications", name)?,
                ))
            })
            .collect::<Result<_, String>>()?,
        managed_by: Some(MANAGED_BY.to_owned()),
    })
}

/// The registry item for a spoke account (see [`entry`]).
pub fn item(
    file: &OrgFile,
    account_id: &str,
    account: &DesiredAccount,
    spoke: &SpokeSettings,
) -> Result<Item, String> {
    entry(file, account_id, account, spoke).map(|entry| entry.to_item())
}

/// The spoke settings a registry entry holds: the inverse of [`item`] for the account named `account_name`.
///
/// What `item` writes for an absent value is left out (a `team` equal to the account name, empty
/// `applications` and `allowed_models`, an `active` status, no budgets), so an org file written from the
/// entries keeps only what was set, and `item` of the result is the entry again. An entry the hub would
/// refuse is an error naming the account and the attribute.
pub fn spoke_settings(item: &Item, account_name: &str) -> Result<SpokeSettings, String> {
    let entry = SpokeEntry::from_item(item).map_err(|e| {
        let account = item.get("account").and_then(|a| a.as_s()).unwrap_or("?");
        format!("registry entry of account {account}: {e}")
    })?;
    let sorted = |mut values: Vec<String>| {
        values.sort();
        (!values.is_empty()).then_some(values)
    };
    Ok(SpokeSettings {
        team: Some(entry.team).filter(|team| team != account_name),
        applications: sorted(entry.applications),
        allowed_models: sorted(entry.allowed_models),
        budgets: (!entry.budgets.is_empty()).then_some(SpokeBudgets {
            requests_per_day: entry.budgets.requests_per_day,
            tokens_per_day: entry.budgets.tokens_per_day,
            cost_usd_per_month: entry.budgets.cost_usd_per_month,
        }),
        suspended: (entry.status == SpokeStatus::Suspended).then_some(true),
        data_classification: entry.data_classification.map(|c| c.as_str().to_owned()),
        application_classifications: Some(
            entry
                .application_classifications
                .into_iter()
                .map(|(application, class)| (application, class.as_str().to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
        .filter(|classes| !classes.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use causeway_contract::registry::Value;

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
            let item = item(&file, "222222222222", &account, &settings).unwrap();
            let parsed = spoke_settings(&item, &account.name).unwrap();
            assert_eq!(parsed, settings);
            assert_eq!(
                attributes_as_text(&super::item(&file, "222222222222", &account, &parsed).unwrap()),
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
        let item = item(&file, "222222222222", &account, &spelled_out).unwrap();
        let parsed = spoke_settings(&item, &account.name).unwrap();
        assert_eq!(
            parsed,
            SpokeSettings {
                applications: Some(vec!["a".to_owned(), "b".to_owned()]),
                ..SpokeSettings::default()
            }
        );
        assert_eq!(
            attributes_as_text(&super::item(&file, "222222222222", &account, &parsed).unwrap()),
            attributes_as_text(&item)
        );
    }

    #[test]
    fn an_entry_the_file_cannot_hold_is_named() {
        let file = file();
        let account = account("payments-prod");
        let mut item = item(&file, "222222222222", &account, &SpokeSettings::default()).unwrap();
        item.insert("status".to_owned(), Value::S("paused".to_owned()));
        let err = spoke_settings(&item, &account.name).unwrap_err();
        assert!(
            err.contains("222222222222") && err.contains("`paused`"),
            "{err}"
        );
        item.insert("status".to_owned(), Value::S("active".to_owned()));
        item.insert(
            "budget_tokens_per_day".to_owned(),
            Value::N("1.5".to_owned()),
        );
        let err = spoke_settings(&item, &account.name).unwrap_err();
        assert!(err.contains("`budget_tokens_per_day` 1.5"), "{err}");
    }

    #[test]
    fn settings_the_hub_would_refuse_are_not_written() {
        let settings = SpokeSettings {
            data_classification: Some("secret".to_owned()),
            ..SpokeSettings::default()
        };
        let err = item(
            &file(),
            "222222222222",
            &account("payments-prod"),
            &settings,
        )
        .unwrap_err();
        assert!(
            err.contains("222222222222") && err.contains("`secret` is not a data classification"),
            "{err}"
        );
    }

    #[test]
    fn stored_text_ignores_list_order_and_number_spelling() {
        let a = Item::from([
            (
                "applications".to_owned(),
                Value::L(vec![Value::S("b".into()), Value::S("a".into())]),
            ),
            ("n".to_owned(), Value::N("10.0".into())),
        ]);
        let b = Item::from([
            (
                "applications".to_owned(),
                Value::Ss(vec!["a".into(), "b".into()]),
            ),
            ("n".to_owned(), Value::N("10".into())),
        ]);
        assert_eq!(attributes_as_text(&a), attributes_as_text(&b));
    }
}
