#!/usr/bin/env bash
# The runtime side of mmc under AddressSanitizer + UndefinedBehaviorSanitizer, then every fuzz
# target for a bounded time (docs/reliability.md). scripts/test.sh runs it after the main suite.
#   scripts/sanitize.sh [MAIN_BUILD_DIR]
# Builds ${SAN_BUILD_DIR:-build-san} with clang-22 (-DMM_SANITIZE=address,undefined
# -DMM_BUILD_FUZZERS=ON -DMM_BUILD_COMPILER=OFF), runs its gtests and the lit tests of the tools
# and the checkpoint reader, with mmc and mm-opt borrowed from MAIN_BUILD_DIR (default build/) so
# that the tests needing a compiled plan run this build's mmrun, mm-inspect and mm-synth; then
# scripts/fuzz.sh for ${MM_FUZZ_SECONDS:-15} seconds per target. Any sanitizer finding fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
main=$(cd "${1:-$root/build}" && pwd)
san=${SAN_BUILD_DIR:-$root/build-san}
# -O1: ASan's recommendation, and a third less compile time than -O2 on the 2-core CI machine.
cmake -S "$root" -B "$san" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG" \
      -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
      -DMM_BUILD_COMPILER=OFF -DMM_ENABLE_CUDA=OFF \
      -DMM_SANITIZE=address,undefined -DMM_BUILD_FUZZERS=ON \
      -DMM_LIT_COMPILER_DIR="$main/bin" >/dev/null
cmake --build "$san" -j "$(nproc)"
# Stack traces with every UBSan finding; findings are fatal already (-fno-sanitize-recover).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
(cd "$san" && ctest --output-on-failure -j "$(nproc)" -LE gpu -E '^lit-(dialects|compiler|codegen)$')
bash "$root/scripts/fuzz.sh" "$san" "${MM_FUZZ_SECONDS:-15}"
