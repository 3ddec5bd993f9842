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

/// Data classifications a call may declare with `x-causeway-data-classification`.
pub const DATA_CLASSIFICATIONS: &[&str] = &["public", "internal", "confidential", "restricted"];

/// Header declaring the purpose of a call on the OpenAI-compatible door (and for `GET /v1/models`).
pub const PURPOSE_HEADER: &str = "x-causeway-purpose";
/// Header declaring the data classification of a call.
pub const CLASSIFICATION_HEADER: &str = "x-causeway-data-classification";
/// Response header carrying the audit record id.
pub const AUDIT_ID_HEADER: &str = "x-causeway-audit-id";
