#!/usr/bin/env bash
# Builds the libFuzzer target tests/fuzz/core_fuzz.cpp (clang, ASan + UBSan)
# and runs it for SECONDS (default 15) on the checked-in corpus
# tests/fuzz/corpus (read only) plus build/fuzz/corpus (new inputs land there).
# A crash or a difference from the reference book fails the run; libFuzzer
# leaves the input in build/fuzz/ (crash-*). make fuzz runs it for 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
out=build/fuzz
mkdir -p "$out/corpus"
sources=(tests/fuzz/core_fuzz.cpp extension/core/book.cpp extension/core/book_validate.cpp)
newest=$(ls -t "${sources[@]}" extension/core/*.h tests/core/reference_book.h tests/core/test_support.h | head -1)
if [ ! -x "$out/core_fuzz" ] || [ "$newest" -nt "$out/core_fuzz" ]; then
  clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror \
    -Iextension/core -Itests/core "${sources[@]}" -o "$out/core_fuzz"
fi
"$out/core_fuzz" -max_total_time="$secs" -max_len=1024 -timeout=10 -print_final_stats=0 \
  -artifact_prefix="$out/" "$out/corpus" tests/fuzz/corpus 2>"$out/last.log" || {
  tail -30 "$out/last.log"
  exit 1
}
grep -E "DONE" "$out/last.log" | sed 's/^/core_fuzz: /'
