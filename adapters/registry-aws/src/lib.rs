//! The spoke registry in DynamoDB: the one conversion between the contract's SDK-free registry item
//! ([`causeway_contract::registry::Item`]) and the AWS SDK's attribute values.
//!
//! The hub reads entries with it and `causeway org` reads and writes them with it; what an entry means is
//! decided by [`causeway_contract::registry::SpokeEntry`] alone.
//!
//! Constraints: the conversion is lossless for the types the registry uses (strings, numbers as spelled,
//! string sets, lists, maps, booleans); any other type read from a table becomes
//! [`Value::Other`] naming it, so the codec refuses the
//! attribute instead of guessing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use causeway_contract::registry::{Item, Value};

/// An item as DynamoDB attribute values, for `PutItem`.
pub fn to_attributes(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(name, value)| (name.clone(), to_attribute(value)))
        .collect()
}

/// An item read from DynamoDB.
pub fn from_attributes(attributes: &HashMap<String, AttributeValue>) -> Item {
    attributes
        .iter()
        .map(|(name, value)| (name.clone(), from_attribute(value)))
        .collect()
}

/// One value as a DynamoDB attribute value.
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.clone()),
        Value::Ss(values) => AttributeValue::Ss(values.clone()),
        Value::L(values) => AttributeValue::L(values.iter().map(to_attribute).collect()),
        Value::M(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
        Value::Bool(b) => AttributeValue::Bool(*b),
        // Never written: an entry the codec encodes holds none, and a read one is refused before use.
        Value::Other(_) => AttributeValue::Null(true),
    }
}

/// One DynamoDB attribute value.
pub fn from_attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::S(s.clone()),
        AttributeValue::N(n) => Value::N(n.clone()),
        AttributeValue::Ss(values) => Value::Ss(values.clone()),
        AttributeValue::L(values) => Value::L(values.iter().map(from_attribute).collect()),
        AttributeValue::M(map) => Value::M(
            map.iter()
                .map(|(k, v)| (k.clone(), from_attribute(v)))
                .collect(),
        ),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::B(_) => Value::Other("B"),
        AttributeValue::Bs(_) => Value::Other("BS"),
        AttributeValue::Ns(_) => Value::Other("NS"),
        AttributeValue::Null(_) => Value::Other("NULL"),
        _ => Value::Other("unknown"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use causeway_contract::registry::{MANAGED_BY, SpokeEntry, SpokeStatus};

    use super::*;

    #[test]
    fn an_entry_survives_dynamodb() {
        let entry = SpokeEntry {
            principal: "arn:aws:iam::222222222222:role/causeway-invoker".to_owned(),
            account: "222222222222".to_owned(),
            ou: "workloads-prod".to_owned(),
            team: "payments".to_owned(),
            applications: vec!["chat".to_owned()],
            status: SpokeStatus::Active,
            allowed_models: Vec::new(),
            budgets: causeway_contract::registry::EntryBudgets {
                requests_per_day: Some(10),
                tokens_per_day: None,
                cost_usd_per_month: Some(12.5),
            },
            data_classification: Some(
                causeway_contract::classification::DataClassification::Confidential,
            ),
            application_classifications: BTreeMap::from([(
                "chat".to_owned(),
                causeway_contract::classification::DataClassification::Restricted,
            )]),
            managed_by: Some(MANAGED_BY.to_owned()),
        };
        let item = entry.to_item();
        assert_eq!(from_attributes(&to_attributes(&item)), item);
        assert_eq!(
            SpokeEntry::from_item(&from_attributes(&to_attributes(&item))).unwrap(),
            entry
        );
    }

    #[test]
    fn a_type_the_registry_does_not_use_is_named_and_refused() {
        let mut attributes = to_attributes(
            &SpokeEntry {
                principal: "arn:aws:iam::222222222222:role/r".to_owned(),
                account: "222222222222".to_owned(),
                ou: String::new(),
                team: String::new(),
                applications: Vec::new(),
                status: SpokeStatus::Active,
                allowed_models: Vec::new(),
                budgets: Default::default(),
                data_classification: None,
                application_classifications: BTreeMap::new(),
                managed_by: None,
            }
            .to_item(),
        );
        attributes.insert("status".to_owned(), AttributeValue::Null(true));
        let item = from_attributes(&attributes);
        assert_eq!(item["status"], Value::Other("NULL"));
        assert_eq!(
            SpokeEntry::from_item(&item).unwrap_err().to_string(),
            "`status` is not a string"
        );
    }
}
