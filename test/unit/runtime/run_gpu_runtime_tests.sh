#!/usr/bin/env bash
# On the GPU machine, after building (BUILD defaults to ./build): synthesizes the tiny and mid
# checkpoints, compiles them for this GPU with mmc, and runs the cuda-vs-host runtime test and
# `mmrun generate --device cuda` on each. Usage: test/unit/runtime/run_gpu_runtime_tests.sh [BUILD]
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/bin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for preset in tiny mid; do
  "$BIN/mm-synth" --preset "$preset" --out "$WORK/$preset"
  "$BIN/mmc" compile "$WORK/$preset" -o "$WORK/$preset.mmp" --target sm_90
  echo "== $preset: cuda vs host (checkpoint weights)"
  MM_GPU_PLAN="$WORK/$preset.mmp" MM_GPU_WEIGHTS="$WORK/$preset" "$BIN/mm_runtime_gpu_tests"
  echo "== $preset: mmrun generate --device cuda"
  "$BIN/mmrun" generate "$WORK/$preset.mmp" --weights "$WORK/$preset" --device cuda \
    --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens 32 --print-ids --ignore-eos
done
