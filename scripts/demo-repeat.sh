#!/usr/bin/env bash
# Runs the demo N times in a row (default 20) and checks each run's outcome: release 1 and 2
# succeed (no false rollback of the good release), release 3 fails (its bug is caught).
# Usage: bash scripts/demo-repeat.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
bad=0
for i in $(seq 1 "$n"); do
  out=$(bash examples/hello-regions/demo.sh 2>&1)
  data=$(printf '%s\n' "$out" | sed -n 's/^  export MERIDIAN_DATA_DIR=//p' | tail -1)
  if [ -z "$data" ]; then
    echo "run $i: the demo did not finish"
    bad=$((bad + 1))
    continue
  fi
  statuses=$(MERIDIAN_DATA_DIR="$data" target/debug/meridian --output json executions list |
    python3 -c 'import json,sys; print(" ".join(e["status"] for e in json.load(sys.stdin)))')
  secs=$(printf '%s\n' "$out" | sed -n 's/.*Done in \([0-9]*\) s.*/\1/p')
  if [ "$statuses" = "Succeeded Succeeded Failed" ]; then
    echo "run $i: $statuses (${secs} s)"
  else
    echo "run $i: UNEXPECTED $statuses (${secs} s)"
    bad=$((bad + 1))
  fi
done
echo "$((n - bad)) of $n runs as expected"
[ "$bad" -eq 0 ]
