#!/usr/bin/env bash
# The model card's benchmark table against `mmrun serve`: llama-benchy 0.4.0 (PyPI), the tool the
# card's numbers come from, run on the serving machine against the full 62-layer plan with random
# weights (depth 0/4096/8192/16384, pp 2048, tg 32, 3 runs each), with the card's vLLM flags.
#
# Usage: scripts/bench_serve.sh CARRY OUT
#   CARRY/bin/mmrun              built from this repository (the GPU machine needs no compiler)
#   CARRY/lib/                   optional: shared libraries the machine lacks, put on LD_LIBRARY_PATH
#                                (mmrun links Debian's libcpp-httplib.so.0.11, which needs libssl3,
#                                libcrypto3, zlib, libbrotli*; the script stops early and lists what
#                                `ldd` cannot find)
#   CARRY/plans/$PLAN[.gz]       the plan (default PLAN=m27-fp8.mmp), gzipped or not; made anywhere with
#                                  mm-synth --preset minimax-m2.7-reap-172b --sparse --out m27-sparse
#                                  mmc compile m27-sparse -o m27-fp8.mmp --target sm_90 \
#                                      --max-seq-len 32768 --max-batch 16 --kv-cache-dtype fp8
#   CARRY/tokenizer/tokenizer.json  optional: the checkpoint's real tokenizer. Without it the script
#                                writes a stand-in with the full vocabulary size (scripts/bench_tokenizer.py:
#                                the test fixture's BPE, every other id decodable), so that the random
#                                model's tokens stream as text; token counts are exact either way, since
#                                llama-benchy builds its prompts with the same tokenizer the server uses.
#   WHEELS (default: REPO/.whl)  llama-benchy 0.4.0 and its dependencies as wheels, installed offline
#                                offline (into a venv, or see below). Made on a machine with internet and the same
#                                Python version as the GPU machine:
#                                  pip download llama-benchy==0.4.0 --only-binary=:all: -d .whl
#                                When python3 already imports llama-benchy's heavy dependencies
#                                (transformers, tokenizers, numpy, aiohttp, requests, tabulate: the GPU
#                                image's torch venv does), the wheels are installed without dependencies
#                                into a folder put on PYTHONPATH, and WHEELS need only hold what that
#                                python lacks; on the GPU image (Python 3.12) these 11: annotated_types
#                                httpcore2 httpx2 jiter llama_benchy openai pydantic pydantic_core
#                                sniffio truststore typing_inspection (pip download ... --python-version
#                                3.12 --platform manylinux2014_x86_64 --only-binary=:all:, then keep those).
#                                The `asyncio` wheel on PyPI is never installed that way: on PYTHONPATH
#                                it would shadow the standard library's asyncio.
#                                For CPython 3.11 on x86-64 that is these 49 wheels:
#     aiohappyeyeballs aiohttp aiosignal annotated_doc annotated_types anyio asyncio attrs certifi
#     charset_normalizer click filelock frozenlist fsspec h11 hf_xet httpcore2 httpx2 huggingface_hub
#     idna jiter llama_benchy-0.4.0 markdown_it_py mdurl multidict numpy openai packaging propcache
#     pydantic pydantic_core pygments pyyaml regex requests rich safetensors shellingham sniffio
#     tabulate tokenizers tqdm transformers truststore typer typing_extensions typing_inspection
#     urllib3 yarl   (+ their exact versions as pip resolves them; transformers >= 5.2 is required)
#   OUT                          written: device.txt, server.log, llama-benchy.log, llama-benchy.md
#                                (the table), metrics.txt (/metrics after the run), summary.txt
# Environment (defaults give the model card's run):
#   PLAN=m27-fp8.mmp  DEVICE=cuda  PORT=8000  MAX_MODEL_LEN=32768  KV_CACHE_DTYPE=fp8  MAX_NUM_SEQS=4
#   DEPTHS="0 4096 8192 16384"  PP=2048  TG=32  RUNS=3
#   MODEL_NAME=MiniMax-M2.7-REAP-172B-A10B-AutoRound-W4A16 (the served name and the table's label)
#   SERVE_ARGS  extra `mmrun serve` flags; BENCHY_ARGS  extra llama-benchy flags
# No network access is needed: the server listens on 127.0.0.1, llama-benchy's text corpus (its
# --book-url is downloaded otherwise) is this repository's documentation, cached where it looks.
set -uo pipefail
if [ $# -ne 2 ]; then sed -n '2,45p' "$0"; exit 2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
carry=$(cd "$1" && pwd) || exit 2
out=$2
mkdir -p "$out" && out=$(cd "$out" && pwd)
PLAN=${PLAN:-m27-fp8.mmp}; DEVICE=${DEVICE:-cuda}; PORT=${PORT:-8000}
MAX_MODEL_LEN=${MAX_MODEL_LEN:-32768}; KV_CACHE_DTYPE=${KV_CACHE_DTYPE:-fp8}; MAX_NUM_SEQS=${MAX_NUM_SEQS:-4}
DEPTHS=${DEPTHS:-"0 4096 8192 16384"}; PP=${PP:-2048}; TG=${TG:-32}; RUNS=${RUNS:-3}
MODEL_NAME=${MODEL_NAME:-MiniMax-M2.7-REAP-172B-A10B-AutoRound-W4A16}
WHEELS=${WHEELS:-$root/.whl}
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "error: $*" | tee -a "$out/summary.txt" >&2; exit 1; }
: > "$out/summary.txt"

# 1. The machine and the binaries.
{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; } | tee "$out/device.txt"
[ -d "$carry/lib" ] && export LD_LIBRARY_PATH="$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mmrun=$carry/bin/mmrun
[ -x "$mmrun" ] || fail "$mmrun is missing"
missing=$(ldd "$mmrun" | awk '/not found/ {print $1}')
[ -z "$missing" ] || fail "mmrun needs shared libraries this machine lacks; copy them into $carry/lib: $missing"

# 2. The plan (gunzipped into the work directory when needed) and the tokenizer.
if [ -f "$carry/plans/$PLAN" ]; then plan=$carry/plans/$PLAN
elif [ -f "$carry/plans/$PLAN.gz" ]; then plan=$work/$PLAN; gunzip -c "$carry/plans/$PLAN.gz" > "$plan" || fail "gunzip $PLAN.gz"
else fail "no plan $carry/plans/$PLAN[.gz]"; fi
if [ -f "$carry/tokenizer/tokenizer.json" ]; then tokdir=$carry/tokenizer
else
  tokdir=$work/tokenizer
  python3 "$root/scripts/bench_tokenizer.py" "$root/test/inputs/tokenizer/minimax-full/tokenizer.json" "$tokdir" \
    || fail "could not write the stand-in tokenizer"
fi

# 3. llama-benchy, offline from the wheels.
[ -d "$WHEELS" ] || fail "no wheels directory $WHEELS (see the header: pip download llama-benchy==0.4.0)"
benchy=()
if python3 -c "import transformers, tokenizers, numpy, aiohttp, requests, tabulate" 2>/dev/null; then
  # This python has the heavy dependencies (a venv of its own, such as the GPU image's torch venv,
  # would not pass them on to a new venv): install the wheels beside them, without dependencies.
  wheels=()
  for w in "$WHEELS"/*.whl; do case $(basename "$w") in asyncio-*) ;; *) wheels+=("$w") ;; esac; done
  python3 -m pip install -q --no-index --no-deps --target "$work/pylib" "${wheels[@]}" \
    || fail "could not install the wheels of $WHEELS into $work/pylib"
  PYTHONPATH="$work/pylib" python3 -c "import llama_benchy, openai, pydantic" \
    || fail "llama-benchy does not import with the wheels of $WHEELS (one missing, or another Python version?)"
  benchy=(env PYTHONPATH="$work/pylib" python3 -m llama_benchy)
else
  python3 -m venv "$work/venv" || fail "python3 -m venv failed (install python3-venv)"
  "$work/venv/bin/pip" install -q --no-index --find-links "$WHEELS" llama-benchy==0.4.0 \
    || fail "llama-benchy 0.4.0 could not be installed from $WHEELS (a wheel missing, or another Python version?)"
  benchy=("$work/venv/bin/llama-benchy")
fi

# 4. The server, with the model card's vLLM flags.
"$mmrun" serve "$plan" --weights random --tokenizer "$tokdir" --device "$DEVICE" --host 127.0.0.1 --port "$PORT" \
  --served-model-name "$MODEL_NAME" --max-model-len "$MAX_MODEL_LEN" --kv-cache-dtype "$KV_CACHE_DTYPE" \
  --max-num-seqs "$MAX_NUM_SEQS" --enable-auto-tool-choice --tool-call-parser minimax_m2 \
  --reasoning-parser minimax_m2_append_think ${SERVE_ARGS:-} > "$out/server.log" 2>&1 &
server_pid=$!
health() { python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=5).status == 200 else 1)" 2>/dev/null; }
t0=$(date +%s)
until health; do
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$out/server.log"; fail "mmrun serve exited during start-up (server.log)"; }
  [ $(( $(date +%s) - t0 )) -lt 900 ] || fail "mmrun serve did not answer /health within 900 s"
  sleep 1
done
echo "server up after $(( $(date +%s) - t0 )) s" | tee -a "$out/summary.txt"
grep -E "^mmrun serve:|^serving" "$out/server.log" | tee -a "$out/summary.txt"

# 5. The corpus llama-benchy would download, from this repository's documentation.
book_url="file:///mmc/docs-corpus.txt"
home=$work/home
mkdir -p "$home/.cache/llama-benchy"
cat "$root/README.md" "$root"/docs/*.md > "$home/.cache/llama-benchy/$(printf '%s' "$book_url" | md5sum | cut -d' ' -f1).txt"

# 6. The benchmark.
# shellcheck disable=SC2086
HOME=$home HF_HUB_OFFLINE=1 NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 "${benchy[@]}" \
  --base-url "http://127.0.0.1:$PORT/v1" --model "$MODEL_NAME" --served-model-name "$MODEL_NAME" \
  --tokenizer "$tokdir/tokenizer.json" --pp $PP --tg $TG --depth $DEPTHS --runs "$RUNS" \
  --skip-coherence --book-url "$book_url" --exit-on-first-fail \
  --save-result "$out/llama-benchy.md" --format md ${BENCHY_ARGS:-} 2>&1 | tee "$out/llama-benchy.log"
benchy_rc=${PIPESTATUS[0]}

# 7. Metrics, then SIGTERM: the server drains and must exit 0.
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/metrics', timeout=10).read().decode())" \
  > "$out/metrics.txt" 2>&1
kill -TERM "$server_pid"
wait "$server_pid"; server_rc=$?
server_pid=""
echo "llama-benchy exit $benchy_rc, mmrun serve exit $server_rc (SIGTERM)" | tee -a "$out/summary.txt"
[ -f "$out/llama-benchy.md" ] && cat "$out/llama-benchy.md" | tee -a "$out/summary.txt"
[ "$benchy_rc" -eq 0 ] && [ "$server_rc" -eq 0 ]
