//! HTTP handlers. Each one extracts, calls one domain function and converts the result.

pub mod bedrock;
pub mod chat;
pub mod embeddings;
pub mod extract;
pub mod health;
pub mod invoke;
pub mod messages;
pub mod models;
mod parts;
pub mod responses;

#[cfg(test)]
mod abuse_tests;
#[cfg(test)]
mod doors_tests;
#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod messages_tests;
#[cfg(test)]
mod responses_tests;
#[cfg(test)]
pub(super) mod test_support;
#[cfg(test)]
mod tests;

/// Data classifications a call may declare with `x-causeway-data-classification`, least sensitive first.
pub const DATA_CLASSIFICATIONS: &[&str] = &DataClassification::NAMES;

pub use causeway_contract::classification::DataClassification;
pub use causeway_contract::headers::{AUDIT_ID_HEADER, CLASSIFICATION_HEADER, PURPOSE_HEADER};
