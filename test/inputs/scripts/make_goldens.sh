#!/usr/bin/env bash
# Regenerates every golden reference in test/inputs/golden/ (see the README there).
#   test/inputs/scripts/make_goldens.sh MM_SYNTH PYTHON_WITH_TORCH [WORKDIR]
# MM_SYNTH: the built mm-synth binary; PYTHON_WITH_TORCH: a python3 with torch and
# transformers >= 5 (e.g. a venv: pip install torch transformers safetensors).
# Checkpoints are written under WORKDIR (default /tmp/mmc-golden) and are not committed: they are
# reproduced bit for bit from the seeds below.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 MM_SYNTH PYTHON_WITH_TORCH [WORKDIR]" >&2
  exit 2
fi
synth=$1
py=$2
work=${3:-/tmp/mmc-golden}
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
out=test/inputs/golden
mkdir -p "$work" "$out"

# Seeds: mm-synth tiny and mid use seed 0 (its default); unseen-a 1234, unseen-b 4321 (the presets').
for quant in auto-round gptq; do
  rm -rf "$work/tiny-$quant"
  "$synth" --preset tiny --quant "$quant" --seed 0 --out "$work/tiny-$quant"
  "$py" test/inputs/scripts/golden.py "$work/tiny-$quant" --name "tiny-$quant" \
    --source "mm-synth --preset tiny --quant $quant --seed 0 --out $work/tiny-$quant" \
    --special-ids 2034,2050,2051,2052 --out "$out/tiny-$quant.json"
done
# mid: the tiny model's layout at shapes that exercise the GPU kernels' tiling (hidden 3072,
# I 1536, 48 heads / 8 kv, head_dim 128, rotary 64, 8 experts top-4). Same seed, prompts and
# steps as tiny; 8-15 minutes per checkpoint on 2 busy cores, ~3 GB of memory.
for quant in auto-round gptq; do
  rm -rf "$work/mid-$quant"
  "$synth" --preset mid --quant "$quant" --seed 0 --out "$work/mid-$quant"
  "$py" test/inputs/scripts/golden.py "$work/mid-$quant" --name "mid-$quant" \
    --source "mm-synth --preset mid --quant $quant --seed 0 --out $work/mid-$quant" \
    --special-ids 2034,2050,2051,2052 --out "$out/mid-$quant.json"
done
for preset in unseen-a unseen-b; do
  rm -rf "$work/$preset"
  python3 test/inputs/scripts/make_checkpoint.py --preset "$preset" --out "$work/$preset"
  "$py" test/inputs/scripts/golden.py "$work/$preset" --name "$preset" \
    --out "$out/$preset.json"
done
