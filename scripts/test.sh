#!/usr/bin/env bash
# Runs every test tier: unit tests, router tests, and the end-to-end tests against moto server and the
# Bedrock Runtime wire mock. Creates the moto virtualenv first if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-moto.sh
bash scripts/lint-infra.sh

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --profile ci "$@"
else
    cargo test --workspace --all-targets "$@"
fi
