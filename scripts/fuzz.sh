#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzzing build for a bounded time (docs/reliability.md).
#   scripts/fuzz.sh BUILD_DIR SECONDS_PER_TARGET [TARGET...]
# BUILD_DIR was configured with -DMM_BUILD_FUZZERS=ON -DMM_SANITIZE=address,undefined (clang).
# Seeds come from the test inputs (test/fuzz/make_corpus.py, into BUILD_DIR/fuzz/seeds); what a
# run adds goes to BUILD_DIR/fuzz/corpus/<target>, crashes to BUILD_DIR/fuzz/findings/<target>-*.
# Prints one line per target (runs, coverage, features, corpus size); exits 1 if any target found
# a crash, a leak, a timeout or a broken FUZZ_CHECK.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
seconds=$2
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_safetensors fuzz_model_config fuzz_checkpoint fuzz_plan fuzz_tokenizer_json
           fuzz_tokenizer_text fuzz_chat_template fuzz_tool_calls fuzz_reasoning fuzz_openai_request)
fi
work=$build/fuzz
if [ ! -d "$work/seeds" ]; then
  python3 "$root/test/fuzz/make_corpus.py" "$build/bin" "$work/seeds.tmp"
  mv "$work/seeds.tmp" "$work/seeds"
fi
mkdir -p "$work/findings" "$work/logs"
# One target: its fuzzing run, then its summary line into $work/logs/<target>.line (status ok or
# FAILED) and, on a finding, the reason lines after it.
fuzz_one() {
  local t=$1 log=$work/logs/$1.log status runs line cov ft corp
  mkdir -p "$work/corpus/$t"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: one input needing 2 GB is a finding.
  if "$build/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
       -print_final_stats=1 -artifact_prefix="$work/findings/$t-" \
       "$work/corpus/$t" "$work/seeds/$t" > "$log" 2>&1; then
    status=ok
  else
    status=FAILED
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$line")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<< "$line")
  {
    printf '%-22s %-6s runs %-9s cov %-6s ft %-7s corpus %s\n' "$t" "$status" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    if [ "$status" = FAILED ]; then
      grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written' "$log" | head -20 | sed 's/^/    /'
    fi
  } > "$work/logs/$t.line"
}

# As many targets at once as there are cores (each fuzzer is one process on one core); the lines
# are printed in the targets' order once all have run.
jobs_max=$(nproc)
for t in "${targets[@]}"; do
  rm -f "$work/logs/$t.line"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait
failed=0
for t in "${targets[@]}"; do
  if [ -f "$work/logs/$t.line" ]; then
    cat "$work/logs/$t.line"
    first=$(head -n 1 "$work/logs/$t.line")
    [[ $first == *" FAILED "* ]] && failed=1
  else
    echo "$t: no result (the fuzzing job did not finish)"
    failed=1
  fi
done
exit $failed
