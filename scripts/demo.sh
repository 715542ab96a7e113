#!/usr/bin/env bash
# The main job on the bundled tiny model: synthesize a checkpoint in the exact format of the real
# one, compile it to a plan, and generate from it — on the GPU if there is one, else on the host
# backend.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
work=${WORK_DIR:-$root/out/demo}
bash "$root/scripts/deps.sh"
BUILD_DIR=$build bash "$root/scripts/build.sh"
bin=$build/bin
rm -rf "$work" && mkdir -p "$work"
echo "== 1. synthesize: mm-synth --preset tiny --out $work/tiny"
"$bin/mm-synth" --preset tiny --out "$work/tiny" --seed 1
echo "== 2. check:      mmc check $work/tiny"
"$bin/mmc" check "$work/tiny"
echo "== 3. compile:    mmc compile $work/tiny -o $work/tiny.mmp"
"$bin/mmc" compile "$work/tiny" -o "$work/tiny.mmp"
"$bin/mm-inspect" "$work/tiny.mmp" > "$work/tiny.inspect.txt"
sed -n 1,12p "$work/tiny.inspect.txt"   # the full report: $work/tiny.inspect.txt
echo "== 4. generate:   mmrun generate $work/tiny.mmp --weights $work/tiny --prompt 'Hello' --max-new-tokens 24"
"$bin/mmrun" generate "$work/tiny.mmp" --weights "$work/tiny" --prompt "Hello" --max-new-tokens 24
echo
echo "(the tiny model has random weights: its text is noise; the pipeline is what is shown)"
