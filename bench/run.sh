#!/usr/bin/env bash
# Side-by-side benchmark: the Causeway hub against a bare pass-through, LiteLLM proxy and Portkey gateway,
# all forwarding to the same mock model on 127.0.0.1. Writes bench/results/latest.json,
# bench/results/side-by-side.md and bench/results/side-by-side.svg.
#
#   bench/run.sh                      full run (about 20 minutes on 2 cores)
#   bench/run.sh --quick              short phases, for smoke runs
#   bench/run.sh --only hub,passthrough
#
# Systems: direct, passthrough, hub, hub-bedrock, litellm, portkey.
# Pinning: the system under test runs on CPU 0; the mocks, oha and the streaming client on CPU 1.
# First run needs crates.io (oha), PyPI (litellm) and npm (@portkey-ai/gateway); nothing at run time goes
# beyond 127.0.0.1. Honours CARGO_TARGET_DIR (default: the repository's target/).
set -euo pipefail

OHA_VERSION=1.16.0
LITELLM_VERSION=1.106.0

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
SCRATCH="$BENCH/.scratch"
RESULTS="$BENCH/results"

quick=()
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --only) shift; only=(--only "${1:?--only needs a list, e.g. hub,passthrough}") ;;
    --only=*) only=(--only "${1#--only=}") ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument \`$1\`" >&2; exit 2 ;;
  esac
  shift
done
command_line="bench/run.sh${quick[*]:+ ${quick[*]}}${only[*]:+ ${only[*]}}"

if [ "$(nproc)" -lt 2 ]; then
  echo "run.sh: needs at least 2 CPUs (system under test on CPU 0, load generator on CPU 1)" >&2
  exit 2
fi

echo "== building the hub, the mock and the pass-through (release)" >&2
(cd "$REPO" && cargo build --release --locked -p causeway-hub -p causeway-bench)

OHA="$BENCH/.tools/bin/oha"
if [ ! -x "$OHA" ]; then
  echo "== installing oha $OHA_VERSION into bench/.tools" >&2
  cargo install --locked --root "$BENCH/.tools" oha --version "$OHA_VERSION"
fi

if [ ! -x "$BENCH/.venv/bin/litellm" ]; then
  echo "== installing litellm[proxy] $LITELLM_VERSION into bench/.venv" >&2
  python3 -m venv "$BENCH/.venv"
  "$BENCH/.venv/bin/pip" install --quiet "litellm[proxy]==$LITELLM_VERSION"
fi

if [ ! -f "$BENCH/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
  echo "== installing @portkey-ai/gateway into bench/node_modules (bench/package-lock.json)" >&2
  (cd "$BENCH" && npm ci --no-audit --no-fund)
fi

mkdir -p "$SCRATCH" "$RESULTS"
: > "$SCRATCH/pids"

# Every process the run starts is listed in $SCRATCH/pids; stop each one (and its children) on exit.
cleanup() {
  local pid
  if [ -n "${runner:-}" ]; then kill -TERM "$runner" 2>/dev/null || true; fi
  while read -r pid; do
    [ -n "$pid" ] || continue
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done < "$SCRATCH/pids"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== measuring (load average before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
"$TARGET/release/causeway-bench" run "${quick[@]}" "${only[@]}" \
  --repo "$REPO" \
  --hub-bin "$TARGET/release/causeway-hub" \
  --passthrough-bin "$TARGET/release/bench-passthrough" \
  --mock-bin "$TARGET/release/bench-mock" \
  --oha "$OHA" \
  --venv "$BENCH/.venv" \
  --scratch "$SCRATCH" \
  --results "$RESULTS" \
  --record-command "$command_line" &
runner=$!
wait "$runner"
runner=
echo "== done (load average after: $(cut -d' ' -f1-3 /proc/loadavg)); results in bench/results/" >&2
