#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-19, ASan + UBSan) in build-fuzz/, and
# the rest of the tree there too (apq builds with clang++-19 as with g++),
# and runs each target for SECONDS (default 20), keeping its corpus in
# build-fuzz/corpus/TARGET. Fails on the first crash, leak or sanitizer
# report (libFuzzer leaves the input as crash-* / leak-* in build-fuzz/).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
cmake -S . -B build-fuzz -G Ninja -DAPQ_FUZZ=ON -DAPQ_BUILD_TESTS=OFF \
  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 >/dev/null
targets=(fuzz_ingest fuzz_kallsyms fuzz_selectors fuzz_queries)
cmake --build build-fuzz --target "${targets[@]}"
cmake --build build-fuzz  # the daemons and the CLI: the whole tree builds with clang++-19
for target in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$target"
  (cd build-fuzz && "tests/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    "corpus/$target" 2>"$target.log") || { tail -n 40 "build-fuzz/$target.log"; exit 1; }
  echo "$target: $(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/$target.log") inputs, no crash"
done
