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
    # One line per case: "<name> <ns per command>" (Google Benchmark's console lines).
    "$work/$b" --benchmark_filter="$filter" --benchmark_repetitions=1 --benchmark_color=false 2>/dev/null |
      awk -v b="$b" -v r="$round" '$1 ~ /\/depth:/ && $3 == "ns" { sub(/\/iterations:.*/, "", $1); print b "|" r "|" $1 "|" $2 }' \
        >>"$results"
    printf 'round %s %-4s %s\n' "$round" "$b" \
      "$(awk -F'|' -v b="$b" -v r="$round" '$1 == b && $2 == r { printf "%s %.0f  ", $3, $4 }' "$results")"
  done
done
echo
/usr/bin/python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
names = list(dict.fromkeys(r[2] for r in rows))
med = lambda b, n: statistics.median(float(r[3]) for r in rows if r[0] == b and r[2] == n)
print(f"{'case (ns per command; median of rounds)':44} {'base':>8} {'new':>8} {'new/base':>9}")
for n in names:
    print(f"{n:44} {med('base', n):8.1f} {med('new', n):8.1f} {med('new', n) / med('base', n):9.2f}")
print()
for n in names:
    if "/depth:10000/" not in n:
        continue
    deep = n.replace("/depth:10000/", "/depth:1000000/")
    if deep in names:
        case = n.split("/")[0]
        print(f"depth ratio 1M/10k of medians, {case:12} base {med('base', deep) / med('base', n):.3f}"
              f"   new {med('new', deep) / med('new', n):.3f}")
PY
