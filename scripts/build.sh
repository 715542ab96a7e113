#!/usr/bin/env bash
# Configures and builds mmc into ${BUILD_DIR:-build} (Release, Ninja).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cuda=ON
[ -f /usr/local/cuda/include/nvrtc.h ] || cuda=OFF   # then CMake stops: mmc needs NVRTC (CMakeLists.txt)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMM_ENABLE_CUDA=$cuda >/dev/null
cmake --build "$build" -j "$(nproc)"
