#!/usr/bin/env bash
# CPU and latency per call at concurrency 1 and 64, for comparing hub builds on a noisy machine: each run
# starts the given hub fresh (new audit store) with the bench/run.sh configuration against a 0 ms mock, sends
# 50 warm-up calls, then `oha -c 1 -q 20 -z 20s` and `oha -c 64 -z 10s`, and prints calls, CPU per call
# (the hub process's utime + stime) and the c=1 p50 / p99; then 100 streamed calls one after another
# (`causeway-bench ttft`; the mock sends 16 deltas 2 ms apart) and their time to first token, p50 / p99.
# Run bench/run.sh first (it writes the token,
# JWKS, request body and hub configuration into bench/.scratch), then alternate builds:
#
#   for i in 1 2 3; do for b in before after after before; do bench/c1-compare.sh $b.bin $b; done; done
#
# (ABBA: on a machine whose load drifts through a set of runs, whichever build runs first in a pair does
# better, so each round runs both orders.)
#
# PIN=1 pins as bench/run.sh does: the hub on CPU 0, the mock, oha and the streaming client on CPU 1.
set -euo pipefail

BIN="$1"
LABEL="$2"
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
SCRATCH="$BENCH/.scratch"
OHA="$BENCH/.tools/bin/oha"
WORK="$SCRATCH/c1-compare"
hub_cpu=()
load_cpu=()
if [ "${PIN:-0}" = 1 ]; then
  hub_cpu=(taskset -c 0)
  load_cpu=(taskset -c 1)
fi

for f in token body.json body-stream.json hub-hub-fast.toml; do
  [ -f "$SCRATCH/$f" ] || { echo "c1-compare.sh: $SCRATCH/$f missing: run bench/run.sh first" >&2; exit 2; }
done

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$WORK/data"
sed -e "s|^data_dir = .*|data_dir = \"$WORK/data\"|" "$SCRATCH/hub-hub-fast.toml" > "$WORK/hub.toml"
if ! curl -s -o /dev/null http://127.0.0.1:18000/ 2>/dev/null; then
  "${load_cpu[@]}" "$TARGET/release/bench-mock" --listen 127.0.0.1:18000 --latency-ms 0 > "$WORK/mock.log" 2>&1 &
  pids+=($!)
fi
(cd "$WORK" && exec "${hub_cpu[@]}" "$BIN" serve --config "$WORK/hub.toml") > "$WORK/hub.log" 2>&1 &
hub=$!
pids+=("$hub")

TOKEN="$(cat "$SCRATCH/token")"
call() {
  "${load_cpu[@]}" "$OHA" --no-tui -m POST -T application/json -D "$SCRATCH/body.json" \
    -H "authorization: Bearer $TOKEN" -H 'x-causeway-purpose: analytics' "$@" \
    http://127.0.0.1:18100/v1/chat/completions
}
for _ in $(seq 1 100); do
  if curl -sf -o /dev/null -H "authorization: Bearer $TOKEN" -H 'x-causeway-purpose: analytics' \
    -H 'content-type: application/json' --data-binary @"$SCRATCH/body.json" \
    http://127.0.0.1:18100/v1/chat/completions; then
    break
  fi
  sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/$hub/stat"; }
ok_calls() { awk '$1 == "[200]" {print $2}' "$1"; }
call -c 1 -n 50 > /dev/null
t0=$(ticks)
call -c 1 -q 20 -z 20s > "$WORK/c1.txt"
t1=$(ticks)
call -c 64 -z 10s > "$WORK/c64.txt"
t2=$(ticks)
hz=$(getconf CLK_TCK)
n1=$(ok_calls "$WORK/c1.txt")
n64=$(ok_calls "$WORK/c64.txt")
p50=$(awk '$1 == "50.00%" {print $3}' "$WORK/c1.txt")
p99=$(awk '$1 == "99.00%" {print $3}' "$WORK/c1.txt")
awk -v l="$LABEL" -v n1="$n1" -v n64="$n64" -v a="$t0" -v b="$t1" -v c="$t2" -v hz="$hz" -v p50="$p50" -v p99="$p99" \
  'BEGIN { printf "%s  c=1: %d calls, %.3f CPU-ms/call, p50 %s ms, p99 %s ms  |  c=64: %d calls in 10 s, %.3f CPU-ms/call\n",
           l, n1, (b - a) * 1000 / hz / n1, p50, p99, n64, (c - b) * 1000 / hz / n64 }'
"${load_cpu[@]}" "$TARGET/release/causeway-bench" ttft --url http://127.0.0.1:18100/v1/chat/completions \
  --body "$SCRATCH/body-stream.json" --requests 100 --warmup 10 --header 'content-type: application/json' \
  --header "authorization: Bearer $TOKEN" --header 'x-causeway-purpose: analytics' > "$WORK/ttft.json"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); print("%s  ttft: p50 %.2f ms, p99 %.2f ms (%d streams)" % (sys.argv[2], t["p50_ms"], t["p99_ms"], t["requests"]))' \
  "$WORK/ttft.json" "$LABEL"
