//! End-to-end tests: the real hub over HTTP, the real AWS SDK clients, emulated AWS on 127.0.0.1.

mod api;
mod harness_selftest;
