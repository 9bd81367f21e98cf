#!/usr/bin/env bash
# Side-by-side benchmark of two builds of the matching core: the working
# tree's core_bench (build/) against the one at git revision $1 (default
# HEAD~1), run in alternating rounds (base first in odd rounds, new first in
# even ones), one repetition per round. Prints every round's ns per command,
# then per case the medians, the ratio new/base, and each build's depth ratio
# 1M/10k from the medians. The VM's speed drifts by ±10% from run to run;
# alternating is what makes the two columns comparable.
#   scripts/bench-core-ab.sh [REV] [ROUNDS] [FILTER]   (make bench-core-ab BASE=REV)
# FILTER is a Google Benchmark regex (default: add, cancel, aggressive, mixed
# and mixed_local on 4 KiB pages at 10k and 1M orders).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rev=${1:-HEAD~1}
rounds=${2:-3}
filter=${3:-'^(add|cancel|aggressive|mixed|mixed_local)/depth:(10000|1000000)/'}
work=$root/build/bench-core-ab

# The base revision's sources from git archive (nothing checked out), built
# with its own CMakeLists; only its benchmark target.
base_sha=$(git rev-parse --verify "$rev^{commit}")
rm -rf "$work"
mkdir -p "$work/src"
git archive "$base_sha" | tar -x -C "$work/src"
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$work/build" -j "${JOBS:-2}" --target core_bench >/dev/null
cmake --build build -j "${JOBS:-2}" --target core_bench >/dev/null
cp "$work/build/core_bench" "$work/base"
cp build/core_bench "$work/new"

results=$work/results
: >"$results"
echo "base: $rev ($(git log -1 --format='%h %s' "$base_sha" | cut -c1-70)); new: the working tree"
for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="base new"; else order="new base"; fi
  for b in $order; do
    # One line per case, "build|case|ns per command", from Google Benchmark's console lines.
    lines=$("$work/$b" --benchmark_filter="$filter" --benchmark_repetitions=1 --benchmark_color=false 2>/dev/null |
      awk -v b="$b" '$1 ~ /\/depth:/ && $3 == "ns" { sub(/\/iterations:.*/, "", $1); print b "|" $1 "|" $2 }')
    echo "$lines" >>"$results"
    printf 'round %s %-4s %s\n' "$round" "$b" "$(awk -F'|' '{ printf "%s %.0f  ", $2, $3 }' <<<"$lines")"
  done
done
echo
scripts/ab-summary.py "$results" "case (ns per command; median of rounds)" --depth-ratios
