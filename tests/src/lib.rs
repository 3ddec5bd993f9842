//! Test harness for Causeway's end-to-end tests.
//!
//! - [`hub::spawn_hub`]: the real hub on 127.0.0.1 with a random port, a fresh data directory and the
//!   embedded audit store, optionally wired to the Bedrock mock.
//! - [`agent::spawn_agent`]: the real spoke agent on 127.0.0.1 in front of a hub.
//! - [`bedrock_mock`]: a wire-level Amazon Bedrock Runtime (Converse JSON and ConverseStream event-stream
//!   framing) that the real `aws-sdk-bedrockruntime` client talks to.
//! - [`openai_mock`]: an OpenAI-compatible chat completions upstream (complete and streamed, tool calls).
//! - [`clients::run_client_script`]: the official client SDK scripts in `tests/clients/`.
//! - [`moto`]: launches moto server from the virtualenv `scripts/ensure-moto.sh` creates; fails loudly when it
//!   is missing.
//!
//! Nothing here reaches beyond 127.0.0.1.

pub mod agent;
pub mod bedrock_mock;
pub mod browser;
pub mod clients;
pub mod hub;
pub mod moto;
pub mod openai_mock;
