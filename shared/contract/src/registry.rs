//! The spoke registry entry: one item per spoke principal, written by `causeway org apply` and read by every
//! hub instance on every call.
//!
//! The item is a DynamoDB item, modelled here without the AWS SDK as an [`Item`] of [`Value`]s; the one
//! conversion to and from the SDK's attribute values lives in the registry adapter. [`SpokeEntry`] is the
//! one codec: [`SpokeEntry::to_item`] is what onboarding writes, [`SpokeEntry::from_item`] is what the hub
//! and `causeway org init` accept.
//!
//! Item shape: `pk` (the normalised principal ARN), `account`, `ou`, `team` (strings), `applications` (a
//! list or string set of strings), `status` (`active` or `suspended`), `allowed_models` (a list or string
//! set; empty or absent: no restriction beyond the policies), the numbers `budget_requests_per_day`,
//! `budget_tokens_per_day` (whole) and `budget_cost_usd_per_month` (US dollars), `data_classification` (a
//! string; empty or absent: the hub's default), `application_classifications` (a map from application to classification) and `managed_by`.
//!
//! Constraints: an item that does not have this shape is refused as a whole ([`EntryError`] names the
//! attribute), never read as active or unrestricted; `to_item` of a decoded entry gives the item again, up to
//! list order and number spelling ([`item_text`] compares them so).

use std::collections::BTreeMap;
use std::fmt;

use crate::classification::DataClassification;

/// One attribute value of a registry item: the DynamoDB types the registry uses. Any other type is kept
/// as [`Value::Other`] with its type name, so a decoder can name it instead of guessing.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (`S`).
    S(String),
    /// A number (`N`), as DynamoDB spells it.
    N(String),
    /// A string set (`SS`).
    Ss(Vec<String>),
    /// A list (`L`).
    L(Vec<Value>),
    /// A map (`M`).
    M(BTreeMap<String, Value>),
    /// A boolean (`BOOL`).
    Bool(bool),
    /// Another type (binary, null, number or binary sets), by its DynamoDB type name.
    Other(&'static str),
}

impl Value {
    /// The string, if this is one.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            Self::S(s) => Some(s),
            _ => None,
        }
    }

    /// The value as text that ignores list order and number spelling (`10.0` is `10`).
    pub fn text(&self) -> String {
        match self {
            Self::S(s) => s.clone(),
            Self::N(n) => n
                .trim()
                .parse::<f64>()
                .map_or_else(|_| n.clone(), |f| f.to_string()),
            Self::Bool(b) => b.to_string(),
            Self::Ss(values) => {
                let mut sorted = values.clone();
                sorted.sort();
                sorted.join(",")
            }
            Self::L(values) => {
                let mut items: Vec<String> = values.iter().map(Self::text).collect();
                items.sort();
                items.join(",")
            }
            Self::M(map) => map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.text()))
                .collect::<Vec<_>>()
                .join(","),
            Self::Other(kind) => format!("<{kind}>"),
        }
    }
}

/// A registry item: attribute name to value.
pub type Item = BTreeMap<String, Value>;

/// An item's attributes as text, for comparing what is stored with what is wanted (see [`Value::text`]).
pub fn item_text(item: &Item) -> BTreeMap<String, String> {
    item.iter().map(|(k, v)| (k.clone(), v.text())).collect()
}

/// The `managed_by` value of the entries `causeway org apply` writes: only these are ever removed by it.
pub const MANAGED_BY: &str = "causeway-org";

/// Whether a registered spoke may call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpokeStatus {
    /// Calls are accepted (default).
    #[default]
    Active,
    /// Calls are refused with 403 and audited.
    Suspended,
}

impl SpokeStatus {
    /// The name as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// A spoke's own budgets as registered; `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EntryBudgets {
    /// Calls per UTC day.
    pub requests_per_day: Option<u64>,
    /// Input plus output tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Estimated cost per calendar month, in US dollars (finite, not negative).
    pub cost_usd_per_month: Option<f64>,
}

impl EntryBudgets {
    /// Whether no budget is set.
    pub fn is_empty(&self) -> bool {
        self.requests_per_day.is_none()
            && self.tokens_per_day.is_none()
            && self.cost_usd_per_month.is_none()
    }
}

/// One spoke registry entry, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokeEntry {
    /// The normalised principal ARN (`pk`).
    pub principal: String,
    /// The spoke account id (never empty).
    pub account: String,
    /// The organizational unit label (empty when not stored).
    pub ou: String,
    /// The owning team (empty when not stored).
    pub team: String,
    /// Applications that may call through this principal, as stored.
    pub applications: Vec<String>,
    /// Active or suspended.
    pub status: SpokeStatus,
    /// Catalog model aliases the spoke may use; empty means every model its Cedar policies allow.
    pub allowed_models: Vec<String>,
    /// The spoke's own budgets.
    pub budgets: EntryBudgets,
    /// The floor of its calls' data classification; `None`: the hub's default.
    pub data_classification: Option<DataClassification>,
    /// The floor per application where it differs from the spoke's; every key is one of `applications`.
    pub application_classifications: BTreeMap<String, DataClassification>,
    /// Who wrote the entry ([`MANAGED_BY`] for `causeway org apply`).
    pub managed_by: Option<String>,
}

/// Why an item is not a valid entry: the attribute and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{attribute}` {problem}")]
pub struct EntryError {
    /// The attribute.
    pub attribute: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with an attribute of a registry item.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Required and absent (or empty).
    Missing,
    /// Not of the type the attribute has.
    WrongType(&'static str),
    /// A list that holds a value that is not a non-empty string.
    BadListItem,
    /// A number that is not a whole number.
    NotWhole(String),
    /// A number that is not an amount of US dollars.
    NotAmount(String),
    /// A status other than `active` or `suspended`.
    UnknownStatus(String),
    /// A name that is not a data classification.
    UnknownClassification(String),
    /// A classification for an application the entry does not list.
    UnlistedApplication(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("is missing"),
            Self::WrongType(kind) => write!(f, "is not {kind}"),
            Self::BadListItem => f.write_str("holds a value that is not a non-empty string"),
            Self::NotWhole(n) => write!(f, "{n} is not a whole number"),
            Self::NotAmount(n) => write!(f, "{n} is not an amount of US dollars"),
            Self::UnknownStatus(s) => write!(f, "`{s}` is neither `active` nor `suspended`"),
            Self::UnknownClassification(c) => write!(
                f,
                "`{c}` is not a data classification; use one of {}",
                DataClassification::choices()
            ),
            Self::UnlistedApplication(a) => {
                write!(
                    f,
                    "names `{a}`, which is not one of the entry's applications"
                )
            }
        }
    }
}

impl SpokeEntry {
    /// Decodes an item, refusing any attribute that does not have its shape.
    pub fn from_item(item: &Item) -> Result<Self, EntryError> {
        let err = |attribute: &'static str, problem: Problem| EntryError { attribute, problem };
        let text = |attribute: &'static str| -> Result<Option<&String>, EntryError> {
            match item.get(attribute) {
                None => Ok(None),
                Some(Value::S(s)) => Ok(Some(s)),
                Some(_) => Err(err(attribute, Problem::WrongType("a string"))),
            }
        };
        let required = |attribute: &'static str| -> Result<String, EntryError> {
            text(attribute)?
                .filter(|s| !s.is_empty())
                .cloned()
                .ok_or_else(|| err(attribute, Problem::Missing))
        };
        let list = |attribute: &'static str| -> Result<Option<Vec<String>>, EntryError> {
            let values = match item.get(attribute) {
                None => return Ok(None),
                Some(Value::Ss(values)) => values.clone(),
                Some(Value::L(values)) => values
                    .iter()
                    .map(|v| v.as_s().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err(attribute, Problem::BadListItem))?,
                Some(_) => return Err(err(attribute, Problem::WrongType("a list"))),
            };
            if values.iter().any(|v| v.trim().is_empty()) {
                return Err(err(attribute, Problem::BadListItem));
            }
            Ok(Some(values))
        };
        let number = |attribute: &'static str| -> Result<Option<&str>, EntryError> {
            match item.get(attribute) {
                None => Ok(None),
                Some(Value::N(n)) => Ok(Some(n.trim())),
                Some(_) => Err(err(attribute, Problem::WrongType("a number"))),
            }
        };
        let whole = |attribute: &'static str| -> Result<Option<u64>, EntryError> {
            number(attribute)?
                .map(|n| {
                    n.parse::<u64>()
                        .map_err(|_| err(attribute, Problem::NotWhole(n.to_owned())))
                })
                .transpose()
        };
        let class = |attribute: &'static str, name: &str| {
            name.parse::<DataClassification>()
                .map_err(|_| err(attribute, Problem::UnknownClassification(name.to_owned())))
        };

        let principal = required("pk")?;
        let account = required("account")?;
        let applications = list("applications")?.ok_or(err("applications", Problem::Missing))?;
        let status = match text("status")?.map(String::as_str) {
            Some("active") => SpokeStatus::Active,
            Some("suspended") => SpokeStatus::Suspended,
            Some(other) => return Err(err("status", Problem::UnknownStatus(other.to_owned()))),
            None => return Err(err("status", Problem::Missing)),
        };
        let cost = "budget_cost_usd_per_month";
        let budgets = EntryBudgets {
            requests_per_day: whole("budget_requests_per_day")?,
            tokens_per_day: whole("budget_tokens_per_day")?,
            cost_usd_per_month: number(cost)?
                .map(|n| {
                    n.parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d >= 0.0)
                        .ok_or_else(|| err(cost, Problem::NotAmount(n.to_owned())))
                })
                .transpose()?,
        };
        let data_classification = text("data_classification")?
            .filter(|name| !name.is_empty())
            .map(|name| class("data_classification", name))
            .transpose()?;
        let per_application = "application_classifications";
        let application_classifications = match item.get(per_application) {
            None => BTreeMap::new(),
            Some(Value::M(map)) => map
                .iter()
                .map(|(application, value)| {
                    let name = value.as_s().ok_or_else(|| {
                        err(per_application, Problem::WrongType("a map of strings"))
                    })?;
                    if !applications.contains(application) {
                        return Err(err(
                            per_application,
                            Problem::UnlistedApplication(application.clone()),
                        ));
                    }
                    Ok((application.clone(), class(per_application, name)?))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(err(per_application, Problem::WrongType("a map"))),
        };
        Ok(Self {
            principal,
            account,
            ou: text("ou")?.cloned().unwrap_or_default(),
            team: text("team")?.cloned().unwrap_or_default(),
            applications,
            status,
            allowed_models: list("allowed_models")?.unwrap_or_default(),
            budgets,
            data_classification,
            application_classifications,
            managed_by: text("managed_by")?.cloned(),
        })
    }

    /// The item as onboarding writes it: lists sorted, `allowed_models` always present, optional values only
    /// when set.
    pub fn to_item(&self) -> Item {
        let list = |values: &[String]| {
            let mut sorted = values.to_vec();
            sorted.sort();
            Value::L(sorted.into_iter().map(Value::S).collect())
        };
        let mut item = Item::from([
            ("pk".to_owned(), Value::S(self.principal.clone())),
            ("account".to_owned(), Value::S(self.account.clone())),
            ("ou".to_owned(), Value::S(self.ou.clone())),
            ("team".to_owned(), Value::S(self.team.clone())),
            ("applications".to_owned(), list(&self.applications)),
            (
                "status".to_owned(),
                Value::S(self.status.as_str().to_owned()),
            ),
            ("allowed_models".to_owned(), list(&self.allowed_models)),
        ]);
        let mut put = |name: &str, value: Value| {
            item.insert(name.to_owned(), value);
        };
        if let Some(managed_by) = &self.managed_by {
            put("managed_by", Value::S(managed_by.clone()));
        }
        if let Some(class) = self.data_classification {
            put("data_classification", Value::S(class.as_str().to_owned()));
        }
        if !self.application_classifications.is_empty() {
            put(
                "application_classifications",
                Value::M(
                    self.application_classifications
                        .iter()
                        .map(|(app, class)| (app.clone(), Value::S(class.as_str().to_owned())))
                        .collect(),
                ),
            );
        }
        if let Some(n) = self.budgets.requests_per_day {
            put("budget_requests_per_day", Value::N(n.to_string()));
        }
        if let Some(n) = self.budgets.tokens_per_day {
            put("budget_tokens_per_day", Value::N(n.to_string()));
        }
        if let Some(n) = self.budgets.cost_usd_per_month {
            put("budget_cost_usd_per_month", Value::N(n.to_string()));
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> SpokeEntry {
        SpokeEntry {
            principal: "arn:aws:iam::222222222222:role/causeway-invoker".to_owned(),
            account: "222222222222".to_owned(),
            ou: "workloads-prod".to_owned(),
            team: "payments".to_owned(),
            applications: vec!["chat".to_owned(), "fraud-summary".to_owned()],
            status: SpokeStatus::Suspended,
            allowed_models: vec!["claude-sonnet".to_owned(), "nova-lite".to_owned()],
            budgets: EntryBudgets {
                requests_per_day: Some(5000),
                tokens_per_day: Some(2_000_000),
                cost_usd_per_month: Some(1250.5),
            },
            data_classification: Some(DataClassification::Internal),
            application_classifications: BTreeMap::from([(
                "fraud-summary".to_owned(),
                DataClassification::Restricted,
            )]),
            managed_by: Some(MANAGED_BY.to_owned()),
        }
    }

    #[test]
    fn an_entry_survives_its_item() {
        let full = entry();
        let bare = SpokeEntry {
            ou: String::new(),
            team: String::new(),
            applications: Vec::new(),
            status: SpokeStatus::Active,
            allowed_models: Vec::new(),
            budgets: EntryBudgets::default(),
            data_classification: None,
            application_classifications: BTreeMap::new(),
            managed_by: None,
            ..entry()
        };
        for entry in [full, bare] {
            assert_eq!(SpokeEntry::from_item(&entry.to_item()).unwrap(), entry);
        }
    }

    #[test]
    fn each_malformed_attribute_is_named() {
        let cases: [(&str, Option<Value>, &str); 14] = [
            ("pk", None, "`pk` is missing"),
            (
                "account",
                Some(Value::S(String::new())),
                "`account` is missing",
            ),
            ("applications", None, "`applications` is missing"),
            (
                "status",
                Some(Value::S("paused".into())),
                "`status` `paused` is neither `active` nor `suspended`",
            ),
            ("status", None, "`status` is missing"),
            (
                "allowed_models",
                Some(Value::S("x".into())),
                "`allowed_models` is not a list",
            ),
            (
                "allowed_models",
                Some(Value::L(vec![Value::N("1".into())])),
                "`allowed_models` holds a value that is not a non-empty string",
            ),
            (
                "allowed_models",
                Some(Value::Ss(vec![" ".into()])),
                "`allowed_models` holds a value that is not a non-empty string",
            ),
            (
                "budget_requests_per_day",
                Some(Value::S("10".into())),
                "`budget_requests_per_day` is not a number",
            ),
            (
                "budget_tokens_per_day",
                Some(Value::N("1.5".into())),
                "`budget_tokens_per_day` 1.5 is not a whole number",
            ),
            (
                "budget_cost_usd_per_month",
                Some(Value::N("-5".into())),
                "`budget_cost_usd_per_month` -5 is not an amount of US dollars",
            ),
            (
                "data_classification",
                Some(Value::S("secret".into())),
                "`data_classification` `secret` is not a data classification; use one of public, internal, confidential, restricted",
            ),
            (
                "application_classifications",
                Some(Value::M(BTreeMap::from([(
                    "fraud".into(),
                    Value::S("restricted".into()),
                )]))),
                "`application_classifications` names `fraud`, which is not one of the entry's applications",
            ),
            (
                "application_classifications",
                Some(Value::S("restricted".into())),
                "`application_classifications` is not a map",
            ),
        ];
        for (attribute, value, message) in cases {
            let mut item = entry().to_item();
            match value {
                Some(value) => item.insert(attribute.to_owned(), value),
                None => item.remove(attribute),
            };
            let err = SpokeEntry::from_item(&item).unwrap_err();
            assert_eq!(err.attribute, attribute);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn a_string_set_reads_like_a_list_and_text_ignores_order_and_spelling() {
        let mut item = entry().to_item();
        item.insert(
            "applications".to_owned(),
            Value::Ss(vec!["fraud-summary".into(), "chat".into()]),
        );
        item.insert(
            "budget_tokens_per_day".to_owned(),
            Value::N("2000000".into()),
        );
        let decoded = SpokeEntry::from_item(&item).unwrap();
        assert_eq!(decoded.applications, vec!["fraud-summary", "chat"]);
        assert_eq!(item_text(&decoded.to_item()), item_text(&entry().to_item()));
        assert_eq!(Value::N("10.0".into()).text(), Value::N("10".into()).text());
    }
}
