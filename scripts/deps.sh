#!/usr/bin/env bash
# Installs the Debian packages mmc builds against (idempotent: skips apt when all are present).
set -euo pipefail
pkgs=(cmake ninja-build g++ python3 python3-venv pkg-config
      llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
      libflatbuffers-dev flatbuffers-compiler libcli11-dev
      nlohmann-json3-dev libpcre2-dev libcpp-httplib-dev libgtest-dev libgmock-dev
      clang-22 libclang-rt-22-dev)  # the sanitizer and fuzzing build (scripts/sanitize.sh)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [ ! -x /usr/local/cuda/bin/nvcc ] && [ ! -f /usr/local/cuda/include/nvrtc.h ]; then
  echo "note: CUDA toolkit not found at /usr/local/cuda: mmc compiles kernels with its NVRTC, so only a" \
       "runtime-only build (-DMM_BUILD_COMPILER=OFF -DMM_ENABLE_CUDA=OFF) is possible here" >&2
fi
