//! The Causeway hub: the governed broker between callers and models.
//!
//! One [`app::router`] serves every door (native `/v1/invoke`; OpenAI chat completions, responses,
//! embeddings and models; Anthropic messages; Bedrock Runtime), locally through `axum::serve` or on AWS Lambda
//! through `lambda_http`. Every model call passes the stages in [`governed`]: identify, authorize, budget,
//! guard, invoke, guard, audit.
//!
//! Layers, each importing only those below it: domain types and their stores ([`budget`], [`registry`],
//! [`auth`]); [`config`] (reads and validates, importing the domain types); [`invoke`] (providers);
//! [`state`] (built by [`startup`]); [`call`] and [`audit`] (a call's metadata, refusal and record);
//! [`governed`] and [`embed`] (the pipelines); [`routes`] (the doors); [`app`] (the router) and [`serve`].
//! `tests/e2e/layering.rs` checks there is no import cycle.
//!
//! Constraints: handlers only extract and convert; domain stages are plain functions over our own types; SDK
//! types stay inside their adapters in [`invoke`] and the adapter crates; prompts, answers, tokens and PII
//! values are never logged.

pub mod admission;
pub mod app;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod call;
pub mod collapse;
pub mod config;
pub mod console;
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
