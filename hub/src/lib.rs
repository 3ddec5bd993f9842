//! The Causeway hub: the governed broker between callers and models.
//!
//! One [`app::router`] serves every door (the native `POST /v1/invoke`, the OpenAI-compatible
//! `POST /v1/chat/completions`, `GET /v1/models`, `/healthz`, `/metrics`), locally through `axum::serve` or on
//! AWS Lambda through `lambda_http`. Every model call passes the stages in [`governed`]: identify, authorize,
//! budget, guard, invoke, guard, audit.
//!
//! Constraints: handlers only extract and convert; domain stages are plain functions over our own types; SDK
//! types stay inside their adapters in [`invoke`]; prompts, answers, tokens and PII values are never logged.

pub mod admission;
pub mod app;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod call;
pub mod collapse;
pub mod config;
pub mod embed;
pub mod error;
pub mod flood;
pub mod governed;
pub mod guardrails;
pub mod invoke;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod state;

pub use causeway_server::spawn;
