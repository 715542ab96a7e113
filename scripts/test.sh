#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every gtest and lit test through CTest;
# then the runtime side again under AddressSanitizer + UndefinedBehaviorSanitizer, and every fuzz
# target for a bounded time (scripts/sanitize.sh; MM_SANITIZE_SUITE=0 skips that part).
# GPU tests skip with "skipped: no CUDA device" where there is no GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/scripts/deps.sh"
BUILD_DIR=$build bash "$root/scripts/build.sh"
cd "$build"
if ! nvidia-smi -L 2>/dev/null | grep -q GPU; then
  gpu_tests=$(ctest -N -L gpu | sed -n 's/^Total Tests: //p')
  echo "GPU tests (ctest label gpu, ${gpu_tests:-0} tests): skipped: no CUDA device." \
       "They run on a GPU machine: scripts/gpu_check.sh"
fi
ctest --output-on-failure -j "$(nproc)" "$@"
if [ "${MM_SANITIZE_SUITE:-1}" != 0 ]; then
  bash "$root/scripts/sanitize.sh" "$build"
fi
