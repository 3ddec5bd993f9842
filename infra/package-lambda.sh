#!/usr/bin/env bash
# Builds the hub's AWS Lambda bundle: a zip holding `bootstrap` (the causeway-hub binary, for the
# `provided.al2023` runtime) and the hub config the function reads through CAUSEWAY_CONFIG.
#
#   infra/package-lambda.sh --config causeway.toml [--policies DIR] [--target TRIPLE] [--profile PROFILE] [--out DIR]
#
#   --config FILE      the hub config to ship (required); on Lambda it must set `[identity] mode = "oidc"`, and
#                      `[log] format = "json"` so the stack's audit-failure metric filter sees its log lines
#   --policies DIR     a policy directory to ship as `policies/` (point `[policy] dir` at `/var/task/policies`);
#                      without it the hub uses the policies built into the binary
#   --target TRIPLE    aarch64-unknown-linux-gnu (default; stack parameter Architecture=arm64) or
#                      x86_64-unknown-linux-gnu (Architecture=x86_64)
#   --profile PROFILE  cargo profile, `dist` by default (release code linked as one unit: the smallest binary)
#   --out DIR          where the zip goes, `target/lambda` by default
#
# Building for arm64 on another machine needs the Rust target (`rustup target add aarch64-unknown-linux-gnu`)
# and a linker for it (e.g. Debian's gcc-aarch64-linux-gnu, set as CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER).
# The alternative is cargo-lambda, which cross-links with Zig: `cargo lambda build --profile dist --arm64 -p
# causeway-hub`, then zip its `bootstrap` with the config the same way.
set -euo pipefail

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

fail() {
    echo "package-lambda: $*" >&2
    exit 1
}

target="aarch64-unknown-linux-gnu"
profile="dist"
config=""
policies=""
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${repo_root}/target/lambda"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --target) target="${2:?--target needs a value}"; shift 2 ;;
        --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
        --config) config="${2:?--config needs a value}"; shift 2 ;;
        --policies) policies="${2:?--policies needs a value}"; shift 2 ;;
        --out) out="${2:?--out needs a value}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) fail "unknown argument \`$1\`; see --help" ;;
    esac
done

[[ -n "${config}" ]] || fail "--config is required: the hub config the function runs with (see --help)"
[[ -f "${config}" ]] || fail "config \`${config}\` not found"
[[ -z "${policies}" || -d "${policies}" ]] || fail "policy directory \`${policies}\` not found"
command -v zip >/dev/null 2>&1 || fail "zip not found; install it (Debian: apt-get install zip)"

case "${target}" in
    aarch64-unknown-linux-gnu) architecture="arm64" ;;
    x86_64-unknown-linux-gnu) architecture="x86_64" ;;
    *) fail "target \`${target}\` is not a Lambda target; use aarch64-unknown-linux-gnu or x86_64-unknown-linux-gnu" ;;
esac

host="$(rustc -vV | sed -n 's/^host: //p')"
cargo_args=(build --locked --profile "${profile}" -p causeway-hub --bin causeway-hub)
if [[ "${target}" == "${host}" ]]; then
    # The host's own triple: build without --target so the workspace's usual target directory is reused.
    binary_dir="${repo_root}/target/${profile}"
else
    if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "${target}"; then
        fail "the Rust target \`${target}\` is not installed: run \`rustup target add ${target}\`, or build with \`cargo lambda build --release --arm64 -p causeway-hub\`"
    fi
    linker_var="CARGO_TARGET_$(echo "${target}" | tr '[:lower:]-' '[:upper:]_')_LINKER"
    linker="${!linker_var:-}"
    if [[ -z "${linker}" ]]; then
        linker="${target%%-*}-linux-gnu-gcc"
        command -v "${linker}" >/dev/null 2>&1 \
            || fail "no linker for \`${target}\`: install ${linker} (Debian: gcc-${target%%-*}-linux-gnu) or set ${linker_var}, or build with \`cargo lambda build --release --arm64 -p causeway-hub\`"
        export "${linker_var}=${linker}"
    fi
    cargo_args+=(--target "${target}")
    binary_dir="${repo_root}/target/${target}/${profile}"
fi
[[ "${profile}" == "dev" ]] && binary_dir="${binary_dir%/dev}/debug"

if ! grep -Eq '^[[:space:]]*format[[:space:]]*=[[:space:]]*"json"' "${config}"; then
    echo "package-lambda: warning: \`${config}\` does not set \`[log] format = \"json\"\`; the stack's audit-failure alarm reads JSON log lines" >&2
fi

echo "package-lambda: cargo ${cargo_args[*]}"
(cd "${repo_root}" && cargo "${cargo_args[@]}")

binary="${binary_dir}/causeway-hub"
[[ -x "${binary}" ]] || fail "the build finished but \`${binary}\` is missing"

if [[ "${target}" == "${host}" ]]; then
    echo "package-lambda: checking the config with the built binary"
    "${binary}" check-config --config "${config}" || fail "\`${config}\` does not pass \`causeway-hub check-config\`"
fi

stage="$(mktemp -d)"
trap 'rm -rf "${stage}"' EXIT
cp "${binary}" "${stage}/bootstrap"
chmod 0755 "${stage}/bootstrap"
cp "${config}" "${stage}/$(basename "${config}")"
if [[ -n "${policies}" ]]; then
    cp -R "${policies}" "${stage}/policies"
fi

mkdir -p "${out}"
zip_path="$(cd "${out}" && pwd)/causeway-hub-${architecture}.zip"
rm -f "${zip_path}"
(cd "${stage}" && find . -exec touch -h -d '1980-01-02 00:00:00' {} + && find . -type f | LC_ALL=C sort | zip -X -q "${zip_path}" -@)

echo "package-lambda: wrote ${zip_path}"
echo "package-lambda:   sha256 $(sha256sum "${zip_path}" | cut -d' ' -f1)"
echo "package-lambda:   stack parameters: Architecture=${architecture} ConfigFile=$(basename "${config}") CodeKey=$(basename "${zip_path}")"
