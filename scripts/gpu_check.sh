#!/usr/bin/env bash
# Runs the GPU checks on a machine with an NVIDIA GPU, from binaries and plans built elsewhere
# (the GPU machine has no MLIR, so plans are compiled beforehand with `mmc compile --target sm_90`):
#   CARRY/bin:   kernels_gpu_test mm_runtime_gpu_tests mmrun mm-synth mm-inspect
#   CARRY/plans: tiny.mmp tiny-gptq.mmp tiny-fp8.mmp mid.mmp unseen-a.mmp unseen-b.mmp
# Usage: scripts/gpu_check.sh CARRY OUT [kernels|runtime|golden|all]
# Writes one log per step into OUT and prints a summary.
set -uo pipefail
carry=$(cd "$1" && pwd); out=$2; what=${3:-all}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$carry/bin; plans=$carry/plans
mkdir -p "$out"; work=$(mktemp -d)
nvidia-smi -L | tee "$out/device.txt"
step() { local name=$1; shift; echo "== $name: $*"; if "$@" >"$out/$name.log" 2>&1; then echo "   ok"; else echo "   FAILED (rc $?)"; tail -20 "$out/$name.log"; fi; }

if [ "$what" = all ] || [ "$what" = kernels ]; then
  step kernels "$bin/kernels_gpu_test"
  grep -E "^\[  (PASSED|FAILED)|GB/s|SKIPPED" "$out/kernels.log" | head -60
fi
synth() {
  case $1 in
    tiny) "$bin/mm-synth" --preset tiny --seed 0 --out "$work/tiny" ;;
    tiny-gptq) "$bin/mm-synth" --preset tiny --quant gptq --seed 0 --out "$work/tiny-gptq" ;;
    mid) "$bin/mm-synth" --preset mid --out "$work/mid" ;;
    unseen-a|unseen-b) python3 "$root/test/inputs/scripts/make_checkpoint.py" --preset "$1" --out "$work/$1" ;;
  esac >/dev/null
}
for m in tiny tiny-gptq mid unseen-a unseen-b; do synth $m; done
if [ "$what" = all ] || [ "$what" = runtime ]; then
  for m in tiny mid; do
    step "runtime-$m" env MM_GPU_PLAN="$plans/$m.mmp" MM_GPU_WEIGHTS="$work/$m" "$bin/mm_runtime_gpu_tests"
    grep -E "^\[  (PASSED|FAILED)|agreement|error" "$out/runtime-$m.log" | head -20
  done
  step runtime-tiny-fp8 env MM_GPU_PLAN="$plans/tiny-fp8.mmp" MM_GPU_WEIGHTS="$work/tiny" "$bin/mm_runtime_gpu_tests"
  step generate-mid "$bin/mmrun" generate "$plans/mid.mmp" --weights "$work/mid" --device cuda \
    --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens 64 --print-ids --ignore-eos
  tail -2 "$out/generate-mid.log"
fi
if [ "$what" = all ] || [ "$what" = golden ]; then
  for g in tiny:tiny-auto-round tiny-gptq:tiny-gptq unseen-a:unseen-a unseen-b:unseen-b; do
    m=${g%%:*}; gold=${g##*:}
    step "golden-$gold" python3 "$root/test/inputs/scripts/teacher_forced.py" \
      "$root/test/inputs/golden/$gold.json" --all-prompts \
      --drive "$bin/mmrun generate $plans/$m.mmp --weights $work/$m --device cuda"
    tail -1 "$out/golden-$gold.log"
  done
fi
rm -rf "$work"
