#!/usr/bin/env bash
# Profile of the hub's governed path under load: the hub (every governance feature on, as in run.sh) on
# CPU 0, the 0 ms mock and oha (64 connections, open throttle) on CPU 1, `perf record` (cpu-clock, DWARF
# call graphs) on the hub's process for DURATION seconds. Run bench/run.sh first: this reuses its token,
# JWKS, request body and hub configuration from bench/.scratch.
#
#   bench/profile.sh                 writes bench/results/hub-profile.txt
#   DURATION=30 bench/profile.sh
#
# perf samples CPU time only: time the hub spends waiting (the audit store's fsync, the model call) is not
# in this profile; it is in the latency figures of run.sh.
set -euo pipefail

DURATION="${DURATION:-20}"
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
SCRATCH="$BENCH/.scratch"
RESULTS="$BENCH/results"
OHA="$BENCH/.tools/bin/oha"

for f in token body.json jwks.json hub-hub-fast.toml; do
  [ -f "$SCRATCH/$f" ] || { echo "profile.sh: $SCRATCH/$f missing: run bench/run.sh first" >&2; exit 2; }
done
command -v perf >/dev/null || { echo "profile.sh: perf not found" >&2; exit 2; }
[ -x "$TARGET/release/bench-mock" ] || {
  echo "profile.sh: $TARGET/release/bench-mock missing: run bench/run.sh first, with the same CARGO_TARGET_DIR" >&2
  exit 2
}

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Release binaries are stripped; the profiled hub is the same code with its symbols (`--profile profiling`).
echo "== building the hub with symbols (cargo build --profile profiling)" >&2
(cd "$REPO" && cargo build --profile profiling --locked -p causeway-hub)

# The run.sh hub configuration, with a fresh audit store.
rm -rf "$SCRATCH/hub-data-profile"
mkdir -p "$SCRATCH/hub-data-profile"
sed -e "s|^data_dir = .*|data_dir = \"$SCRATCH/hub-data-profile\"|" \
  "$SCRATCH/hub-hub-fast.toml" > "$SCRATCH/hub-profile.toml"

taskset -c 1 "$TARGET/release/bench-mock" --listen 127.0.0.1:18000 --latency-ms 0 \
  > "$SCRATCH/profile-mock.log" 2>&1 &
pids+=($!)
(cd "$SCRATCH" && exec taskset -c 0 "$TARGET/profiling/causeway-hub" serve --config "$SCRATCH/hub-profile.toml") \
  > "$SCRATCH/profile-hub.log" 2>&1 &
hub=$!
pids+=("$hub")

TOKEN="$(cat "$SCRATCH/token")"
ready=
for _ in $(seq 1 100); do
  if curl -sf -o /dev/null -H "authorization: Bearer $TOKEN" -H 'x-causeway-purpose: analytics' \
    -H 'content-type: application/json' --data-binary @"$SCRATCH/body.json" \
    http://127.0.0.1:18100/v1/chat/completions; then
    ready=1
    break
  fi
  sleep 0.2
done
# A profile of refused calls would look like a profile of the governed path: stop instead.
[ -n "$ready" ] || {
  echo "profile.sh: the hub never answered a governed call (an expired token in $SCRATCH/token?); see $SCRATCH/profile-hub.log and profile-mock.log" >&2
  exit 1
}

taskset -c 1 "$OHA" --no-tui --output-format json -m POST -T application/json -D "$SCRATCH/body.json" \
  -H "authorization: Bearer $TOKEN" -H 'x-causeway-purpose: analytics' \
  -c 64 -z "$((DURATION + 4))s" http://127.0.0.1:18100/v1/chat/completions > "$SCRATCH/profile-oha.json" &
load=$!
sleep 2
perf record -F 999 -e cpu-clock --call-graph dwarf,16384 -p "$hub" -o "$SCRATCH/perf.data" \
  -- sleep "$DURATION" 2> "$SCRATCH/perf-record.log"
wait "$load"
codes="$(tr -d '\n' < "$SCRATCH/profile-oha.json" | grep -o '"statusCodeDistribution": *{[^}]*}' || true)"
if [ -z "$codes" ] || grep -qE '"([013-9][0-9]{2}|2[1-9][0-9]|20[1-9])"' <<< "$codes"; then
  echo "profile.sh: not every call under load was answered ($codes); the profile would not be of the governed path" >&2
  exit 1
fi

# Each report is cut with `head`; perf then dies of SIGPIPE, which is expected, not a failure.
report() {
  local lines=$1
  shift
  perf report -i "$SCRATCH/perf.data" "$@" --stdio -g none --no-inline 2>/dev/null | grep -v '^$' | head -"$lines" || true
}

{
  echo "# bench/profile.sh: perf record -F 999 -e cpu-clock --call-graph dwarf -p <hub> -- sleep $DURATION"
  echo "# load: oha -c 64 against the hub, 0 ms mock; hub on CPU 0, mock and oha on CPU 1"
  echo "# $(grep -o '"requestsPerSec": *[0-9.]*' "$SCRATCH/profile-oha.json")"
  echo
  echo "## self time by shared object"
  report 20 --no-children --sort dso
  echo
  echo "## self time by symbol (top 60)"
  report 70 --no-children --sort sym
  echo
  echo "## inclusive time by symbol (top 120)"
  report 130 --children --sort sym
} > "$RESULTS/hub-profile.txt"
echo "profile written to bench/results/hub-profile.txt" >&2
