#!/usr/bin/env bash
# Make sure the virtualenv with the infrastructure linters exists and holds the pinned versions:
# cfn-lint and checkov for the CloudFormation templates in infra/, parliament for the IAM policies in
# policies/iam/.
#
# scripts/lint-infra.sh runs this first. It is idempotent: it creates the virtualenv only when missing and
# installs only when an installed version is not the pinned one. The virtualenv is `$CAUSEWAY_LINT_VENV` when
# set, else `.venv-lint` at the repository root (ignored by git).
set -euo pipefail

CFN_LINT_VERSION="1.58.0"
CHECKOV_VERSION="3.3.30"
PARLIAMENT_VERSION="1.6.4"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CAUSEWAY_LINT_VENV:-${repo_root}/.venv-lint}"
python="${venv}/bin/python"
wanted="cfn-lint=${CFN_LINT_VERSION} checkov=${CHECKOV_VERSION} parliament=${PARLIAMENT_VERSION}"

installed_versions() {
    # Prints `cfn-lint=V checkov=V parliament=V` for what is installed and usable, or nothing.
    [[ -x "${venv}/bin/cfn-lint" && -x "${venv}/bin/checkov" && -x "${venv}/bin/parliament" ]] || return 0
    "${python}" - <<'PY' 2>/dev/null || true
import importlib.metadata as metadata
print(" ".join(f"{name}={metadata.version(name)}" for name in ("cfn-lint", "checkov", "parliament")))
PY
}

action="installed ${wanted} in ${venv}"
if [[ ! -x "${python}" ]]; then
    if ! command -v python3 >/dev/null 2>&1; then
        echo "ensure-linters: python3 not found; install Python 3 (with its venv module) and run again" >&2
        exit 1
    fi
    if [[ -d "${venv}" && ! -f "${venv}/pyvenv.cfg" && -n "$(ls -A "${venv}")" ]]; then
        echo "ensure-linters: ${venv} exists and is not a virtualenv; move it away or set CAUSEWAY_LINT_VENV" >&2
        exit 1
    fi
    # --clear also repairs a virtualenv whose interpreter went away (e.g. its base Python was removed).
    python3 -m venv --clear "${venv}"
    action="created ${venv} with ${wanted}"
fi

current="$(installed_versions)"
if [[ "${current}" == "${wanted}" ]]; then
    echo "ensure-linters: ${wanted} already installed in ${venv}"
    exit 0
fi
if [[ -n "${current}" ]]; then
    action="replaced ${current} with ${wanted} in ${venv}"
fi

"${python}" -m pip install --quiet --disable-pip-version-check \
    "cfn-lint==${CFN_LINT_VERSION}" "checkov==${CHECKOV_VERSION}" "parliament==${PARLIAMENT_VERSION}"

installed="$(installed_versions)"
if [[ "${installed}" != "${wanted}" ]]; then
    echo "ensure-linters: installed ${wanted} in ${venv} but found '${installed:-nothing usable}' afterwards" >&2
    exit 1
fi
echo "ensure-linters: ${action}"
