#!/usr/bin/env bash
# Lints the infrastructure: cfn-lint and checkov on every CloudFormation template in infra/, parliament on
# every IAM policy in policies/iam/ and on every SCP as `causeway scp render` makes it from policies/scp/ for
# the example org file (policies/org.example.yaml; `causeway scp lint` checks the templates themselves).
# Exits non-zero on any finding that has no written reason.
#
# Reasons live next to what they excuse: checkov skips and cfn-lint ignores in the template's `Metadata`,
# accepted parliament findings in policies/iam/parliament-accepted.json. The policy files use CloudFormation's
# `${…}` substitution syntax (the templates embed the same statements); example values are put in before
# parliament reads them. Runs scripts/ensure-linters.sh first, so the pinned linters are there.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-linters.sh
venv="${CAUSEWAY_LINT_VENV:-.venv-lint}"
python="${venv}/bin/python"

templates=(infra/*.yaml)
if [[ ! -e "${templates[0]}" ]]; then
    echo "lint-infra: no templates found under infra/" >&2
    exit 1
fi

echo "lint-infra: cfn-lint ${templates[*]}"
"${venv}/bin/cfn-lint" -- "${templates[@]}"

echo "lint-infra: checkov -d infra"
# --skip-download: never reach the vendor's API (the tests reach nothing beyond this machine).
"${venv}/bin/checkov" -d infra --framework cloudformation --compact --quiet --skip-download

rendered="$(mktemp -d)"
trap 'rm -rf "${rendered}"' EXIT
echo "lint-infra: causeway scp lint and render --org policies/org.example.yaml"
cargo run --quiet --locked -p causeway-cli -- scp lint --org policies/org.example.yaml
cargo run --quiet --locked -p causeway-cli -- scp render --org policies/org.example.yaml --out "${rendered}" >/dev/null

failed=0
shopt -s nullglob
for policy in policies/iam/*.json "${rendered}"/*.json; do
    [[ "$(basename "${policy}")" == "parliament-accepted.json" ]] && continue
    echo "lint-infra: parliament ${policy}"
    # parliament reads the policy from stdin (its --file flag fails when stdin is not a terminal).
    if ! "${python}" - "${policy}" policies/iam/parliament-accepted.json <<'PY'
import json
import os
import re
import subprocess
import sys

policy_path, accepted_path = sys.argv[1], sys.argv[2]
name = policy_path.rsplit("/", 1)[-1]

# Example values for the substitutions the templates make; any other `${…}` is an error.
examples = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "111111111111",
    "HubAccountId": "222222222222",
    "NamePrefix": "causeway",
    "HubApiId": "a1b2c3d4e5",
    "HubApiStage": "v1",
    "PayloadKey.Arn": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "CheckpointSigningKey.Arn": "arn:aws:kms:us-east-1:111111111111:key/5678abcd-12ab-34cd-56ef-1234567890ab",
}


def substitute(match):
    key = match.group(1)
    if key not in examples:
        sys.exit(f"lint-infra: {policy_path}: unknown substitution `${{{key}}}`; add an example value in scripts/lint-infra.sh")
    return examples[key]


text = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", substitute, open(policy_path, encoding="utf-8").read())
run = subprocess.run(
    [os.path.join(sys.prefix, "bin", "parliament"), "--json"],
    input=text, capture_output=True, text=True, check=False,
)
if run.stderr.strip():
    sys.exit(f"lint-infra: parliament failed on {policy_path}: {run.stderr.strip()}")

accepted = [a for a in json.load(open(accepted_path, encoding="utf-8")) if a["policy"] == name]
unexplained = []
for line in filter(None, run.stdout.splitlines()):
    finding = json.loads(line)
    detail = finding.get("detail")
    if isinstance(detail, str):
        # Findings about one action or condition name carry it as text.
        explained = any(a["issue"] == finding["issue"] and detail in a.get("details", []) for a in accepted)
    else:
        actions = {d.get("action") if isinstance(d, dict) else d for d in detail or []}
        explained = any(
            a["issue"] == finding["issue"] and actions and actions <= set(a.get("actions", []))
            for a in accepted
        )
    if not explained:
        unexplained.append(finding)
for finding in unexplained:
    print(f"{policy_path}: {finding['severity']} {finding['issue']}: {finding['title']}: {json.dumps(finding.get('detail'))}")
sys.exit(1 if unexplained else 0)
PY
    then
        failed=1
    fi
done
if [[ "${failed}" != 0 ]]; then
    echo "lint-infra: parliament found problems; fix the policy or, when the finding is wrong, add it with a reason to policies/iam/parliament-accepted.json" >&2
    exit 1
fi
echo "lint-infra: all templates and policies pass"
