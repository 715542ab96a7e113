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
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t"
  log=$work/logs/$t.log
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: one input needing 2 GB is a finding.
  if "$build/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
       -print_final_stats=1 -artifact_prefix="$work/findings/$t-" \
       "$work/corpus/$t" "$work/seeds/$t" > "$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$line")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<< "$line")
  printf '%-22s %-6s runs %-9s cov %-6s ft %-7s corpus %s\n' "$t" "$status" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if [ "$status" = FAILED ]; then
    grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written' "$log" | head -20 | sed 's/^/    /'
  fi
done
exit $failed
