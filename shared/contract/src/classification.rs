//! Data classifications: how sensitive the data of a call is, in rising order.
//!
//! A call's classification is at least its floor (the spoke's or application's registered one, else the
//! hub's default); a caller may raise it with [`crate::headers::CLASSIFICATION_HEADER`], never lower it, and
//! guard findings may raise it. Cedar policies see it as `context.data_classification`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A data classification; the order is the order of sensitivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataClassification {
    /// May be published.
    Public,
    /// For the organisation's staff.
    Internal,
    /// Personal or commercial data with limited access.
    Confidential,
    /// The most sensitive data (health, payment, secrets); kept on the organisation's own agreements.
    Restricted,
}

impl DataClassification {
    /// Every classification, least sensitive first.
    pub const ALL: [Self; 4] = [
        Self::Public,
        Self::Internal,
        Self::Confidential,
        Self::Restricted,
    ];

    /// Their names, as written in config, headers, registry items and Cedar.
    pub const NAMES: [&'static str; 4] = ["public", "internal", "confidential", "restricted"];

    /// The name.
    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The names joined for a message: `public, internal, confidential, restricted`.
    pub fn choices() -> String {
        Self::NAMES.join(", ")
    }
}

impl fmt::Display for DataClassification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a classification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a data classification; use one of public, internal, confidential, restricted"
)]
pub struct UnknownClassification(pub String);

impl FromStr for DataClassification {
    type Err = UnknownClassification;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| UnknownClassification(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_order_by_sensitivity() {
        for class in DataClassification::ALL {
            assert_eq!(class.as_str().parse::<DataClassification>(), Ok(class));
        }
        assert!(DataClassification::Public < DataClassification::Restricted);
        assert!("Secret".parse::<DataClassification>().is_err());
        assert_eq!(
            serde_json::to_string(&DataClassification::Confidential).unwrap(),
            "\"confidential\""
        );
    }
}
