#!/usr/bin/env bash
# The cuda backend against the host backend on synthesized checkpoints, in two steps because the
# GPU machine has no MLIR (mmc cannot run there):
#   prepare BUILD OUT   here: mm-synth tiny and mid checkpoints (both quantization variants) and
#                       mmc-compiled plans for sm_90, bf16 and fp8 KV caches, into OUT
#   run BUILD OUT       on the GPU machine: regenerates any checkpoint missing from OUT with the
#                       same mm-synth seed (plans record the tensor table, which mm-synth
#                       reproduces exactly), then runs cuda_executor_test per plan, with the
#                       checkpoint (the cuda streaming loader) and with random weights.
# Only OUT/*.mmp need to travel (checkpoints are regenerated): carry them with the build's bin/.
set -euo pipefail
mode=${1:?usage: $0 prepare|run BUILD OUT}
BUILD=${2:?build directory}
OUT=${3:?output directory}
BIN=$BUILD/bin
SEED=5
mkdir -p "$OUT"

MODELS=(tiny:auto-round tiny:gptq mid:auto-round mid:gptq)

synth() {  # preset quant dir
  [ -f "$3/config.json" ] || "$BIN/mm-synth" --preset "$1" --quant "$2" --seed "$SEED" --out "$3"
}

case "$mode" in
  prepare)
    for m in "${MODELS[@]}"; do
      preset=${m%%:*} quant=${m#*:} name=${m/:/-}
      synth "$preset" "$quant" "$OUT/$name"
      # Chunks of 64 tokens: longer prompts run over several prefill chunks (PrefillOverChunks*).
      "$BIN/mmc" compile "$OUT/$name" -o "$OUT/$name.mmp" --target sm_90 --max-seq-len 256 --max-batch 8 \
        --max-prefill-tokens 64
      "$BIN/mmc" compile "$OUT/$name" -o "$OUT/$name-fp8.mmp" --target sm_90 --max-seq-len 256 --max-batch 8 \
        --max-prefill-tokens 64 --kv-cache-dtype fp8
    done
    ls -la "$OUT"/*.mmp
    ;;
  run)
    status=0
    for m in "${MODELS[@]}"; do
      preset=${m%%:*} quant=${m#*:} name=${m/:/-}
      synth "$preset" "$quant" "$OUT/$name"
      for weights in "$OUT/$name" random; do
        echo "== $name, weights $(basename "$weights")"
        MM_TEST_PLAN="$OUT/$name.mmp" MM_TEST_PLAN_FP8="$OUT/$name-fp8.mmp" MM_TEST_WEIGHTS="$weights" \
          "$BIN/cuda_executor_test" || status=1
      done
    done
    exit $status
    ;;
  *)
    echo "usage: $0 prepare|run BUILD OUT" >&2
    exit 2
    ;;
esac
