#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs both side by
# side for SECONDS each (default 15):
#   core_fuzz  tests/fuzz/core_fuzz.cpp: the matching core against the
#              reference book; seeds tests/fuzz/corpus.
#   http_fuzz  tests/fuzz/http_fuzz.cpp: the frontend's POST /orders and JSON
#              body parsing, write_place_item, and the WebSocket subscription
#              messages; seeds tests/fuzz/http_corpus.
# A target is rebuilt when one of its sources (or this script) is newer. The
# checked-in seeds are read only; new inputs land in build/fuzz/<target>-corpus.
# A crash, leak, timeout or failed check fails the run: libFuzzer leaves the
# input in build/fuzz/ (crash-*, leak-*, timeout-*), the log is
# build/fuzz/<target>.log. make test runs it for 15 s, make fuzz for 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
out=build/fuzz
mkdir -p "$out"
[ -d "$out/corpus" ] && [ ! -e "$out/core_fuzz-corpus" ] && mv "$out/corpus" "$out/core_fuzz-corpus"  # old name

cxx=(clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror)
core_sources=(tests/fuzz/core_fuzz.cpp extension/core/book.cpp extension/core/book_validate.cpp)
core_deps=(extension/core/*.h tests/core/reference_book.h tests/core/test_support.h)
fe=frontend/src
http_sources=(tests/fuzz/http_fuzz.cpp tests/fuzz/feed_fake_pg.cpp "$fe/json_body.cpp" "$fe/order_json.cpp" "$fe/reply.cpp"
  "$fe/feed/subscriptions.cpp" "$fe/feed/journal.cpp" "$fe/feed/instruments.cpp")
http_deps=(tests/fuzz/feed_fake_pg.h tests/fuzz/ubsan-ignore.txt "$fe"/*.h "$fe"/feed/*.h)

# stale TARGET FILE...: true when the binary is missing or older than a file.
stale() {
  local target=$1 newest
  shift
  newest=$(ls -t "$@" scripts/fuzz.sh | head -1)
  [ ! -x "$out/$target" ] || [ "$newest" -nt "$out/$target" ]
}

pids=()
if stale core_fuzz "${core_sources[@]}" "${core_deps[@]}"; then
  "${cxx[@]}" -Iextension/core -Itests/core "${core_sources[@]}" -o "$out/core_fuzz" &
  pids+=($!)
fi
if stale http_fuzz "${http_sources[@]}" "${http_deps[@]}"; then
  # rapidjson trips UBSan's pointer-overflow check by itself: see ubsan-ignore.txt.
  "${cxx[@]}" -fsanitize-ignorelist=tests/fuzz/ubsan-ignore.txt -I"$fe" -I"$fe/feed" -isystem /usr/include/postgresql \
    "${http_sources[@]}" -lpqxx -lpq -o "$out/http_fuzz" &
  pids+=($!)
fi
built=0
for pid in "${pids[@]}"; do wait "$pid" || built=1; done
[ "$built" = 0 ] || exit 1

# run TARGET SEEDS MAX_LEN: fuzzes in the background, log in build/fuzz/TARGET.log.
run() {
  mkdir -p "$out/$1-corpus"
  "$out/$1" -max_total_time="$secs" -max_len="$3" -timeout=10 -print_final_stats=1 -artifact_prefix="$out/" \
    "$out/$1-corpus" "$2" >"$out/$1.log" 2>&1 &
}
declare -A running
run core_fuzz tests/fuzz/corpus 1024
running[core_fuzz]=$!
run http_fuzz tests/fuzz/http_corpus 4096
running[http_fuzz]=$!

failed=0
for target in core_fuzz http_fuzz; do
  if wait "${running[$target]}"; then
    grep -E "DONE" "$out/$target.log" | sed "s/^/$target: /"
  else
    echo "$target: FAILED (log: $out/$target.log)"
    tail -30 "$out/$target.log"
    failed=1
  fi
done
exit $failed
