#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md, in two halves because the GPU machine has no MLIR (mmc cannot
# run there) and no internet:
#
#   bash scripts/bench.sh prepare CARRY [BUILD]       here: plans + binaries, gzipped, into CARRY
#   bash scripts/bench.sh run CARRY OUT [STEP...]     on the GPU machine: runs STEPs (default: all),
#                                                     logs and a markdown fragment into OUT
#   bash scripts/bench.sh report FRAGMENT OUT...      anywhere: the fragment from several OUTs
#                                                     (scripts/bench_report.py)
#
# CARRY (about 20 MB; keep it under an ignored path such as build/bench-carry so that it can travel
# with the repository):
#   bin/{mmrun,mm-synth,kernels_gpu_test}.gz
#   plans/{full62,full62-fp8,full24}.mmp.gz   mmc compile --target sm_90 --max-seq-len 32768
#                                             --max-batch 16 of `mm-synth --preset minimax-m2.7-reap-172b
#                                             --sparse --layers 62|24` (headers equal the real-bytes
#                                             checkpoint's, so the plans match what `run` synthesizes)
#   lib/                                      the Debian libraries mmrun links that the GPU image may
#                                             lack (cpp-httplib, libssl3, libcrypto3, brotli, PCRE2)
#   peer/                                     a copy of ../shared/peer (llama.cpp's llama-bench and
#                                             run_peer.sh; PEER_DIR overrides where it is copied from)
#
# Steps of `run`, in the order `all` runs them (times measured or estimated on one H200):
#   device    nvidia-smi, CPU, memory, disks                                              seconds
#   kernels   kernels_gpu_test --gtest_filter='GpuBench.*' (decode kernels' bandwidth)     ~1 min
#   bf16      mmrun bench full62.mmp --weights random: batch 1 and batch 16 (own runs),
#             depths 0,2048,16384, pp 2048, tg 32                                          ~4 min
#   fp8       the same on full62-fp8.mmp (fp8 KV cache)                                   ~6 min
#   sampled   batch 1, depth 0 of full62.mmp at temperature 1 (a server's default sampling)  ~30 s
#   mmc24     mmrun bench full24.mmp --weights random, batch 1, pp 2048, tg 128: the
#             settings of the llama.cpp peer (24 layers)                                  ~1 min
#   load      mm-synth a 24-layer real-bytes checkpoint (36.9 GB) into LOAD_DIR, drop the
#             page cache, mmrun bench --load (O_DIRECT, then through the page cache),
#             mmrun generate from it under /usr/bin/time (start-up, peak RSS); the
#             checkpoint, when this step wrote it, is deleted afterwards (KEEP_CKPT=1 keeps
#             it; a LOAD_DIR holding a checkpoint already is used as it is)               ~5 min
#   peer      bash CARRY/peer/run_peer.sh 24 (llama-bench, the same shape, Q4_K)          ~2 min
#   sweep     GpuBench.DecodeReadCeiling and DecodeSplitSweep (MM_BENCH_SWEEP=1): read-only kernels
#             over the decode GEMVs' bytes, and those GEMVs over their WK/CS/U splits; not part of
#             `all`                                                                       ~3 min
#   profile   Nsight Compute over `mmrun bench full24.mmp --pp 1 --tg 8` (PROFILE_TG, PROFILE_DEPTH):
#             time and DRAM bytes of every launch grouped by kernel (scripts/ncu_summary.py);
#             not part of `all`                                                             ~2 min
#   report    OUT/benchmarks-fragment.md from the logs in OUT                             seconds
# Each step has a time limit (STEP_TIMEOUT, default 590 s); a failed step is reported and the others
# still run. Knobs (environment): RUNS (3), RUNS16 (2: batch 16 repeats), DEPTHS (0,2048,16384),
# DEPTHS16 (the batch-16 runs' depths; default DEPTHS), PP (2048), TG (32), LOAD_DIR (/var/tmp/mm-bench-ckpt24), LOAD_RUNS (2), BENCH_WORK (/tmp/mm-bench).
#
# With the device tool (10 minutes a command, a fresh $OUT each; the repository travels and CARRY,
# an ignored path, is carried with it): four commands of 3-6 minutes, then the report here.
#   here:  bash scripts/bench.sh prepare build/bench-carry
#   GPU:   bash scripts/bench.sh run build/bench-carry "$OUT" device kernels bf16
#          bash scripts/bench.sh run build/bench-carry "$OUT" fp8
#          bash scripts/bench.sh run build/bench-carry "$OUT" load
#          bash scripts/bench.sh run build/bench-carry "$OUT" mmc24 peer
#   here:  bash scripts/bench.sh report fragment.md OUT1 OUT2 OUT3 OUT4
set -uo pipefail

usage() {
  sed -n '2,12p' "$0" >&2
  exit 2
}
[ $# -ge 2 ] || usage
mode=$1
root=$(cd "$(dirname "$0")/.." && pwd)

# ---- prepare ----------------------------------------------------------------------------------
if [ "$mode" = prepare ]; then
  carry=$2
  build=${3:-$root/build}
  peer=${PEER_DIR:-$root/../shared/peer}
  for b in mmc mmrun mm-synth kernels_gpu_test; do
    [ -x "$build/bin/$b" ] || { echo "error: $build/bin/$b is missing (ninja -C $build mmc mmrun mm-synth kernels_gpu_test)" >&2; exit 1; }
  done
  [ -f "$peer/run_peer.sh" ] || { echo "error: no llama.cpp peer at $peer (PEER_DIR)" >&2; exit 1; }
  mkdir -p "$carry/bin" "$carry/plans"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for layers in 62 24; do
    "$build/bin/mm-synth" --preset minimax-m2.7-reap-172b --sparse --layers "$layers" --out "$tmp/m$layers" >/dev/null || exit 1
  done
  compile() {  # name layers [flags...]
    local name=$1 layers=$2; shift 2
    echo "mmc compile: $name"
    "$build/bin/mmc" compile "$tmp/m$layers" -o "$tmp/$name.mmp" --target sm_90 --max-seq-len 32768 --max-batch 16 "$@" || exit 1
    gzip -9 -c "$tmp/$name.mmp" > "$carry/plans/$name.mmp.gz"
  }
  compile full62 62
  compile full62-fp8 62 --kv-cache-dtype fp8
  compile full24 24
  for b in mmrun mm-synth kernels_gpu_test; do gzip -9 -c "$build/bin/$b" > "$carry/bin/$b.gz"; done
  # The Debian libraries mmrun links that a CUDA image need not have (cpp-httplib for `mmrun serve`
  # and its TLS/compression dependencies, PCRE2 for the tokenizer).
  mkdir -p "$carry/lib"
  ldd "$build/bin/mmrun" | awk '/(httplib|libssl|libcrypto|brotli|pcre2)/ {print $3}' | xargs -r cp -L -t "$carry/lib"
  rm -rf "$carry/peer"
  cp -r "$peer" "$carry/peer"
  (cd "$carry" && git -C "$root" rev-parse HEAD > source-commit.txt 2>/dev/null; du -ah . | sort -k2)
  exit 0
fi

# ---- report (anywhere): the fragment from the output folders of several `run` commands --------
if [ "$mode" = report ]; then
  fragment=$2
  shift 2
  [ $# -ge 1 ] || usage
  python3 "$root/scripts/bench_report.py" "$@" > "$fragment" && echo "report: $fragment"
  exit $?
fi

# ---- run --------------------------------------------------------------------------------------
[ "$mode" = run ] && [ $# -ge 3 ] || usage
carry=$(cd "$2" && pwd) || exit 1
mkdir -p "$3" || exit 1
out=$(cd "$3" && pwd)
shift 3
[ -f "$carry/bin/mmrun.gz" ] || { echo "error: $carry has no bin/mmrun.gz (make it with: bash scripts/bench.sh prepare CARRY)" >&2; exit 1; }
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(all)
if [ "${steps[0]}" = all ]; then steps=(device kernels bf16 fp8 mmc24 load peer report); fi

RUNS=${RUNS:-3}
RUNS16=${RUNS16:-2}
DEPTHS=${DEPTHS:-0,2048,16384}
PP=${PP:-2048}
TG=${TG:-32}
LOAD_DIR=${LOAD_DIR:-/var/tmp/mm-bench-ckpt24}
LOAD_RUNS=${LOAD_RUNS:-2}
STEP_TIMEOUT=${STEP_TIMEOUT:-590}
work=${BENCH_WORK:-/tmp/mm-bench}
bin=$work/bin
plans=$work/plans
summary=$out/summary.txt
T0=$(date +%s)

# Binaries and plans, unpacked once per machine.
mkdir -p "$bin" "$plans"
for f in "$carry"/bin/*.gz; do
  b=$bin/$(basename "$f" .gz)
  [ -x "$b" ] && [ "$b" -nt "$f" ] || { gzip -dc "$f" > "$b" && chmod +x "$b"; }
done
for f in "$carry"/plans/*.gz; do
  p=$plans/$(basename "$f" .gz)
  [ -f "$p" ] && [ "$p" -nt "$f" ] || gzip -dc "$f" > "$p"
done

# cuBLAS (the bench's GEMM roofline) and NVRTC (kernels_gpu_test) from the CUDA 13 install, as
# run_peer.sh finds them.
libdirs=""
for lib in libcublas.so.13 libnvrtc.so.13; do
  ldconfig -p 2>/dev/null | grep -q "$lib" && continue
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
           $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null | xargs -n1 2>/dev/null | sed 's|$|/nvidia/cu13/lib|'); do
    [ -e "$d/$lib" ] && { libdirs="$libdirs:$d"; break; }
  done
done
# CARRY/lib: shared libraries the GPU machine lacks (mmrun links Debian's libcpp-httplib, libssl3).
[ -d "$carry/lib" ] && libdirs="$libdirs:$carry/lib"
export LD_LIBRARY_PATH="${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# step NAME CMD...: runs CMD under the step time limit with its output in OUT/NAME.log; records
# the outcome; never stops the script.
step() {
  local name=$1; shift
  local t=$(date +%s)
  echo "== $name: $*"
  timeout "$STEP_TIMEOUT" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - t ))
  if [ $rc -eq 0 ]; then
    echo "   ok (${took} s)"
    echo "$name ok ${took}s" >> "$summary"
  else
    [ $rc -eq 124 ] && echo "   TIMED OUT after ${took} s" || echo "   FAILED (rc $rc, ${took} s)"
    tail -15 "$out/$name.log" | sed 's/^/   | /'
    echo "$name FAILED rc=$rc ${took}s" >> "$summary"
  fi
  return 0
}

# mmrun bench whose markdown table goes to OUT/NAME.md (stdout) and messages to OUT/NAME.log.
bench() {
  local name=$1; shift
  step "$name" bash -c '"$@" > "'"$out/$name.md"'"' _ "$bin/mmrun" bench "$@"
}

drop_caches() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches && echo "page cache dropped (drop_caches)"; else
    echo "not root: mmrun bench drops the shards' pages itself (POSIX_FADV_DONTNEED) and reports what stayed"; fi
}

for s in "${steps[@]}"; do
  case $s in
    device)
      {
        date -u; hostname; nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
        nproc; grep -m1 "model name" /proc/cpuinfo; free -g; df -h /tmp /var/tmp /dev/shm "$out" 2>/dev/null
        uname -r; cat "$carry/source-commit.txt" 2>/dev/null
      } > "$out/device.txt" 2>&1
      cat "$out/device.txt"
      ;;
    kernels)
      step kernels "$bin/kernels_gpu_test" --gtest_filter='GpuBench.*'
      grep -E "^\[bench\]" "$out/kernels.log" | head -40
      ;;
    sweep)
      MM_BENCH_SWEEP=1 step sweep "$bin/kernels_gpu_test" --gtest_filter='GpuBench.DecodeReadCeiling:GpuBench.DecodeSplitSweep'
      grep -E "^\[bench\]" "$out/sweep.log" | head -200
      ;;
    bf16 | fp8)
      plan=$plans/full62.mmp
      [ "$s" = fp8 ] && plan=$plans/full62-fp8.mmp
      bench "$s-b1" "$plan" --weights random --device cuda --batch 1 --depth "$DEPTHS" --pp "$PP" --tg "$TG" --runs "$RUNS"
      bench "$s-b16" "$plan" --weights random --device cuda --batch 16 --depth "${DEPTHS16:-$DEPTHS}" --pp "$PP" --tg "$TG" --runs "$RUNS16"
      cat "$out/$s-b1.md" "$out/$s-b16.md" 2>/dev/null
      ;;
    sampled)
      # What a server does by default (temperature 1, no top-k/top-p) next to the greedy bf16 rows.
      bench sampled-b1 "$plans/full62.mmp" --weights random --device cuda --batch 1 --depth 0 --pp "$PP" --tg "$TG" \
        --runs "$RUNS" --temperature 1
      cat "$out/sampled-b1.md" 2>/dev/null
      ;;
    mmc24)
      bench mmc24 "$plans/full24.mmp" --weights random --device cuda --batch 1 --depth "$DEPTHS" --pp "$PP" --tg 128 --runs 2
      cat "$out/mmc24.md" 2>/dev/null
      ;;
    load)
      mkdir -p "$LOAD_DIR"
      fstype=$(stat -f -c %T "$LOAD_DIR" 2>/dev/null)
      echo "load: checkpoint in $LOAD_DIR ($fstype; $(df -h --output=avail "$LOAD_DIR" | tail -1 | tr -d ' ') free)"
      [ "$fstype" = tmpfs ] && echo "WARNING: $LOAD_DIR is tmpfs: the load measures memory, not the disk (set LOAD_DIR)"
      created=0
      if [ ! -f "$LOAD_DIR/config.json" ]; then
        step load-synth "$bin/mm-synth" --preset minimax-m2.7-reap-172b --layers 24 --out "$LOAD_DIR" --force
        created=1
      fi
      du -sh "$LOAD_DIR"
      drop_caches
      bench load "$plans/full24.mmp" --weights "$LOAD_DIR" --device cuda --load --runs "$LOAD_RUNS"
      drop_caches
      bench load-buffered "$plans/full24.mmp" --weights "$LOAD_DIR" --device cuda --load --load-io buffered --runs 1
      drop_caches
      # The start-up users see: mmrun generate from the checkpoint (progress line in the log), peak RSS.
      step load-generate /usr/bin/time -v "$bin/mmrun" generate "$plans/full24.mmp" --weights "$LOAD_DIR" --device cuda \
        --prompt-ids 1,2,3,4,5,6,7,8 --max-new-tokens 8 --ignore-eos
      grep -E "backend|weights|Maximum resident|Elapsed" "$out/load-generate.log"
      cat "$out/load.md" "$out/load-buffered.md" 2>/dev/null
      # Only a checkpoint this step wrote is deleted (the disk is needed by the peer's GGUF).
      [ "$created" = 1 ] && [ "${KEEP_CKPT:-0}" != 1 ] && rm -rf "$LOAD_DIR"
      ;;
    peer)
      if [ -d "$LOAD_DIR" ] && [ "${KEEP_CKPT:-0}" = 1 ]; then echo "note: $LOAD_DIR is kept; the peer's GGUF needs ~36 GiB more"; fi
      step peer bash "$carry/peer/run_peer.sh" 24 "$out/peer"
      cat "$out"/peer/bench_N*_*.md 2>/dev/null
      ;;
    profile)
      # Nsight Compute over a short decode run of the 24-layer plan (the per-layer kernels are
      # those of the 62-layer plan): every launch's time and DRAM bytes, grouped by kernel
      # (scripts/ncu_summary.py). Needs hardware counters (a Firecracker machine; gVisor has none).
      # The clocks are left alone (--clock-control none), as the machine's notes ask.
      ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
      if [ -z "$ncu" ]; then echo "profile: no ncu on this machine"; echo "profile skipped (no ncu)" >> "$summary"; continue; fi
      step profile-ncu "$ncu" --clock-control none --target-processes all --graph-profiling node --csv --page raw \
        --print-units base --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
        --log-file "$out/profile-ncu.csv" \
        "$bin/mmrun" bench "$plans/full24.mmp" --weights random --device cuda --batch 1 --depth "${PROFILE_DEPTH:-0}" \
        --pp 1 --tg "${PROFILE_TG:-8}" --runs 1
      copy=$(grep -o "copy bandwidth: [0-9.]* TB/s" "$out"/*.md 2>/dev/null | head -1 | grep -o "[0-9.]* TB" | cut -d' ' -f1)
      step profile python3 "$root/scripts/ncu_summary.py" "$out/profile-ncu.csv" ${copy:+--copy-tbps $copy}
      head -25 "$out/profile.log"
      ;;
    report)
      python3 "$root/scripts/bench_report.py" "$out" > "$out/benchmarks-fragment.md" && echo "report: $out/benchmarks-fragment.md"
      ;;
    *)
      echo "unknown step '$s' (device kernels sweep bf16 fp8 sampled mmc24 load peer profile report all)" >&2
      echo "$s unknown" >> "$summary"
      ;;
  esac
done

echo "== summary ($(( $(date +%s) - T0 )) s; logs in $out)"
cat "$summary" 2>/dev/null
