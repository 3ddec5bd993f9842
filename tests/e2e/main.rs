//! End-to-end tests: the real hub over HTTP, the real AWS SDK clients, emulated AWS on 127.0.0.1.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error, which is what a test wants"
)]

mod agent;
mod agent_identity;
mod anthropic;
mod api;
mod audit_aws;
mod bedrock_runtime;
mod budgets;
mod client_sdks;
mod console;
mod embeddings;
mod harness_selftest;
mod iam_attacks;
mod identity;
mod infra;
mod layering;
mod least_privilege;
mod org;
mod policy;
mod responses;
mod tls;
