//! Wire types shared by every Causeway component.
//!
//! This crate is the contract between the hub, the spoke agent, the admin CLI and anyone who reads an
//! evidence pack: the content model every door and provider maps to, the native invoke API, the
//! OpenAI-compatible, Anthropic Messages and Bedrock Runtime subsets the hub speaks, the error body, the model catalog and
//! purposes, what the guards report, the audit record, the `x-causeway-*` headers ([`headers`]), the workload
//! proof and principal normalisation ([`workload`]), the data classifications ([`classification`]), the spoke registry entry ([`registry`]) and the
//! development tokens the embedded default trusts ([`dev`]).
//!
//! Constraints: no network, no AWS SDK, no web framework. Every type here is plain data with serde, so it can
//! be used from a Lambda, a CLI, a test or a third-party verifier alike. Changes to the audit record are
//! versioned (`AuditRecord::SCHEMA_VERSION`) and recorded in `CHANGELOG.md`.

pub mod anthropic;
pub mod api;
pub mod audit;
pub mod bedrock;
pub mod catalog;
pub mod classification;
pub mod content;
pub mod dev;
pub mod error;
pub mod guard;
pub mod headers;
pub mod logging;
pub mod openai;
pub mod registry;
pub mod responses;
pub mod workload;

pub use api::{InvokeRequest, InvokeResponse, Message, Role, TokenUsage};
pub use audit::{AuditRecord, Outcome};
pub use catalog::{Catalog, CatalogError, ModelEntry, ModelKind, ProviderKind, Purpose};
pub use content::{
    ContentBlock, DocumentFormat, ImageFormat, ModelStreamEvent, StopReason, ToolChoice,
    ToolDefinition,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use guard::{GuardAction, GuardEvent, GuardReport, GuardStage};
