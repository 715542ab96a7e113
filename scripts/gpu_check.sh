#!/usr/bin/env bash
# Runs the GPU checks on a machine with an NVIDIA GPU, from binaries and plans built elsewhere
# (the GPU machine has no MLIR, so plans are compiled beforehand with `mmc compile --target sm_90`):
#   CARRY/bin:   kernels_gpu_test cuda_executor_test mmrun mm-synth mm-inspect
#   CARRY/plans: tiny.mmp tiny-gptq.mmp mid.mmp mid-gptq.mmp unseen-a.mmp unseen-b.mmp full<L>.mmp
#   CARRY/exec:  the plans of test/gpu/executor/run_cuda_executor_test.sh prepare
#   CARRY/lib:   optional: shared libraries the GPU machine lacks (mmrun links libcpp-httplib.so.0.11
#                for `mmrun serve`, which needs libssl3, zlib, libbrotli); put on LD_LIBRARY_PATH
#   CARRY/plans/prefill.mmp, prefill-fp8.mmp (prefill step): the 62-layer plan compiled with
#                `--max-seq-len 32768` (bf16 and `--kv-cache-dtype fp8` KV caches); bin/mm-prefill-bench
# Usage: scripts/gpu_check.sh prepare CARRY [BUILD]   (here: binaries, plans and exec/ into CARRY)
#        scripts/gpu_check.sh CARRY OUT [kernels|runtime|golden|full|prefill|all] [LAYERS]
#   prefill: the GEMM and copy ceilings (scripts/gpu_ceilings.py), the prefill kernel benches
#         (GpuBench.Prefill*), then pp2048 at depth 0, a 16384-token prompt and pp2048 at depth 16384
#         with random weights (mm-prefill-bench).
#   full: a `mm-synth --preset minimax-m2.7-reap-172b --sparse --layers LAYERS` checkpoint
#         streamed to the GPU (load time, peak host RSS), then random weights (decode tok/s).
# Writes one log per step into OUT and prints a summary.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = prepare ]; then
  # The goldens' checkpoints are regenerated on the GPU machine (same seeds); only plans travel.
  set -e
  carry=${2:?usage: $0 prepare CARRY [BUILD]}; build=${3:-$root/build}
  mkdir -p "$carry/bin" "$carry/plans"
  for b in kernels_gpu_test cuda_executor_test mmrun mm-synth mm-inspect; do cp "$build/bin/$b" "$carry/bin/"; done
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  for m in tiny tiny-gptq mid mid-gptq unseen-a unseen-b; do
    case $m in
      unseen-*) python3 "$root/test/inputs/scripts/make_checkpoint.py" --preset "$m" --out "$tmp/$m" ;;
      *-gptq) "$build/bin/mm-synth" --preset "${m%-gptq}" --quant gptq --seed 0 --out "$tmp/$m" ;;
      *) "$build/bin/mm-synth" --preset "$m" --seed 0 --out "$tmp/$m" ;;
    esac >/dev/null
    "$build/bin/mmc" compile "$tmp/$m" -o "$carry/plans/$m.mmp" --target sm_90
  done
  bash "$root/test/gpu/executor/run_cuda_executor_test.sh" prepare "$build" "$tmp/exec" >/dev/null
  mkdir -p "$carry/exec"; cp "$tmp"/exec/*.mmp "$carry/exec/"
  du -sh "$carry"
  exit 0
fi
carry=$(cd "$1" && pwd); out=$2; what=${3:-all}; layers=${4:-52}
bin=$carry/bin; plans=$carry/plans
[ -d "$carry/lib" ] && export LD_LIBRARY_PATH="$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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
    mid) "$bin/mm-synth" --preset mid --seed 0 --out "$work/mid" ;;
    mid-gptq) "$bin/mm-synth" --preset mid --quant gptq --seed 0 --out "$work/mid-gptq" ;;
    unseen-a|unseen-b) python3 "$root/test/inputs/scripts/make_checkpoint.py" --preset "$1" --out "$work/$1" ;;
  esac >/dev/null
}
for m in tiny tiny-gptq mid mid-gptq unseen-a unseen-b; do synth $m; done
if [ "$what" = all ] || [ "$what" = runtime ]; then
  step runtime bash "$root/test/gpu/executor/run_cuda_executor_test.sh" run "$carry" "$carry/exec"
  grep -E "^== |^\[  (PASSED|FAILED)|SKIPPED \]|agreement|RSS|GiB" "$out/runtime.log" | head -60
  step generate-mid "$bin/mmrun" generate "$plans/mid.mmp" --weights "$work/mid" --device cuda \
    --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens 64 --print-ids --ignore-eos
  tail -3 "$out/generate-mid.log"
fi
if [ "$what" = all ] || [ "$what" = golden ]; then
  for g in tiny:tiny-auto-round tiny-gptq:tiny-gptq mid:mid-auto-round mid-gptq:mid-gptq unseen-a:unseen-a unseen-b:unseen-b; do
    m=${g%%:*}; gold=${g##*:}
    step "golden-$gold" python3 "$root/test/inputs/scripts/teacher_forced.py" \
      "$root/test/inputs/golden/$gold.json" --all-prompts \
      --drive "$bin/mmrun generate $plans/$m.mmp --weights $work/$m --device cuda"
    tail -1 "$out/golden-$gold.log"
  done
fi
if [ "$what" = all ] || [ "$what" = prefill ]; then
  step ceilings python3 "$root/scripts/gpu_ceilings.py"
  grep ceiling "$out/ceilings.log"
  step prefill-benches "$bin/kernels_gpu_test" --gtest_filter='GpuBench.Prefill*'
  grep "\[bench\]" "$out/prefill-benches.log"
  for p in prefill prefill-fp8; do
    [ -f "$plans/$p.mmp" ] || continue
    step "$p" "$bin/mm-prefill-bench" "$plans/$p.mmp" 2048 16384 3
    tail -5 "$out/$p.log"
  done
fi
if [ "$what" = all ] || [ "$what" = full ]; then
  full=$work/full$layers
  "$bin/mm-synth" --preset minimax-m2.7-reap-172b --sparse --layers "$layers" --out "$full" >/dev/null
  step full-stream "$bin/mmrun" generate "$plans/full$layers.mmp" --weights "$full" --device cuda \
    --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens 16 --ignore-eos
  tail -3 "$out/full-stream.log"
  rm -rf "$full"
  step full-random "$bin/mmrun" generate "$plans/full$layers.mmp" --weights random --device cuda \
    --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 --max-new-tokens 128 --ignore-eos
  tail -3 "$out/full-random.log"
fi
rm -rf "$work"
