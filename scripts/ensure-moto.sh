#!/usr/bin/env bash
# Make sure the test virtualenv used by the end-to-end tests exists and holds the pinned moto server and the
# pinned client SDKs the tests drive the hub with (the official OpenAI and Anthropic Python SDKs, and boto3
# for the Bedrock Runtime door).
#
# The test harness (tests/src/moto.rs) starts moto's server from this virtualenv (through tests/moto_server.py),
# and tests/e2e/client_sdks.rs and tests/e2e/anthropic.rs run the scripts in tests/clients/ with its Python;
# the test command and CI run this script first. It is idempotent: it creates the virtualenv only when missing
# and installs only when an installed version is not the pinned one. The virtualenv is `$CAUSEWAY_MOTO_VENV`
# when set, else `.venv-moto` at the repository root (ignored by git).
set -euo pipefail

MOTO_VERSION="5.2.5"
OPENAI_VERSION="3.63.0"
ANTHROPIC_VERSION="2.17.0"
BOTO3_VERSION="1.44.18"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CAUSEWAY_MOTO_VENV:-${repo_root}/.venv-moto}"
python="${venv}/bin/python"

wanted="moto=${MOTO_VERSION} openai=${OPENAI_VERSION} anthropic=${ANTHROPIC_VERSION} boto3=${BOTO3_VERSION}"

installed_version() {
    # Prints `moto=V openai=V anthropic=V boto3=V` for what is installed and usable, or nothing when moto (or its
    # server extra) is not usable.
    [[ -x "${venv}/bin/moto_server" ]] || return 0
    "${python}" - <<'PY' 2>/dev/null || true
import importlib.metadata as metadata
import flask  # noqa: F401  (the `server` extra; moto_server cannot start without it)
versions = {}
for name in ("moto", "openai", "anthropic", "boto3"):
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = "missing"
print(" ".join(f"{name}={version}" for name, version in versions.items()))
PY
}

action="installed ${wanted} in ${venv}"
if [[ ! -x "${python}" ]]; then
    if ! command -v python3 >/dev/null 2>&1; then
        echo "ensure-moto: python3 not found; install Python 3 (with its venv module) and run again" >&2
        exit 1
    fi
    if [[ -d "${venv}" && ! -f "${venv}/pyvenv.cfg" && -n "$(ls -A "${venv}")" ]]; then
        echo "ensure-moto: ${venv} exists and is not a virtualenv; move it away or set CAUSEWAY_MOTO_VENV" >&2
        exit 1
    fi
    # --clear also repairs a virtualenv whose interpreter went away (e.g. its base Python was removed).
    python3 -m venv --clear "${venv}"
    action="created ${venv} with ${wanted}"
fi

current="$(installed_version)"
if [[ "${current}" == "${wanted}" ]]; then
    echo "ensure-moto: ${wanted} already installed in ${venv}"
    exit 0
fi
if [[ -n "${current}" ]]; then
    action="replaced ${current} with ${wanted} in ${venv}"
fi

if ! "${python}" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==${MOTO_VERSION}" "openai==${OPENAI_VERSION}" "anthropic==${ANTHROPIC_VERSION}" \
    "boto3==${BOTO3_VERSION}"; then
    echo "ensure-moto: pip could not install ${wanted} into ${venv}; check that PyPI is reachable" >&2
    exit 1
fi

installed="$(installed_version)"
if [[ "${installed}" != "${wanted}" ]]; then
    echo "ensure-moto: installed ${wanted} in ${venv} but found '${installed:-nothing usable}' afterwards" >&2
    exit 1
fi
echo "ensure-moto: ${action}"
