#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every gtest and lit test through CTest.
# GPU tests skip with "skipped: no CUDA device" where there is no GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/scripts/deps.sh"
BUILD_DIR=$build bash "$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
