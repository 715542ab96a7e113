"""Concurrency test of `mmrun serve` with the official openai client on the tiny model (host
backend, loopback only): 16 simultaneous streaming clients, 5 of which disconnect mid-stream. The
others must get exactly the tokens the same request gets alone (greedy), the server must stay up,
the KV blocks held by requests and the resident memory must come back to their baseline, and the
prefix-cache hits must show in /metrics.

Usage: test_concurrency.py --mmrun BUILD/bin/mmrun --plan tiny.mmp --model MODEL_DIR
"""
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from serve_util import Server, parse_args, run_tests

ARGS = parse_args(sys.argv[1:])
S = Server(ARGS["mmrun"], ARGS["plan"], ARGS["model"], "--served-model-name", "tiny", "--max-num-seqs", "16",
           "--max-model-len", "1024", "--max-num-batched-tokens", "256")
CLIENT = openai.OpenAI(base_url=S.url("/v1"), api_key="none", max_retries=0, timeout=120)
N = 16
TOKENS = 48
DISCONNECT = {1, 4, 7, 10, 13}  # these clients leave after a few chunks
# Distinct prompts: what they share (the template's system prompt) is under half of each, so every
# client keeps a slot of its own and its prompt stays cached there (prefix_cache.h).
PROMPTS = ["Client %d asks: tell me a long story about the number %d, the sea, a lighthouse keeper and the "
           "ships that pass by at night, in the style of an old sailor." % (i, i * 7) for i in range(N)]


def stream(i, leave_after=None):
    """One streaming chat request; returns (token ids, text, finish_reason, usage) or None if it left.
    A client that leaves asks for a long answer, so that it is certainly still generating."""
    s = CLIENT.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": PROMPTS[i]}],
        max_tokens=TOKENS if leave_after is None else 800, temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True, "return_token_ids": True})
    ids, text, finish, usage, seen = [], "", None, None, 0
    for chunk in s:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            ids += getattr(c, "token_ids", None) or []
            text += c.delta.content or ""
            finish = c.finish_reason or finish
            seen += 1
        if leave_after is not None and seen >= leave_after:
            s.close()  # the client goes away mid-stream
            return None
    return ids, text, finish, usage


def storm():
    start = threading.Barrier(N)

    def one(i):
        start.wait()
        return stream(i, leave_after=3 if i in DISCONNECT else None)

    with ThreadPoolExecutor(N) as pool:
        return list(pool.map(one, range(N)))


def kv_state():
    m = S.metrics()
    get = lambda name: next(v for k, v in m.items() if k.startswith(name + "{"))
    return {name: get("mmrun:" + name) for name in ("kv_blocks_total", "kv_blocks_used", "kv_blocks_cached",
                                                    "kv_blocks_free", "num_requests_running", "num_requests_waiting")}


ALONE = {}
BASELINE = {}


def test_lone_requests():
    for i in range(N):
        ids, text, finish, usage = stream(i)
        assert finish == "length" and usage.completion_tokens == TOKENS and len(ids) == TOKENS, (finish, usage, len(ids))
        ALONE[i] = (ids, text)


def test_warm_up_round():
    # All 16 at once (nobody leaves): the connection threads and allocator arenas the storm needs
    # exist afterwards, so that the memory baseline is taken in the steady state.
    for i, r in enumerate(storm()):
        if r is not None:
            assert r[0] == ALONE[i][0], i
    S.wait_idle()
    BASELINE.update(kv_state())
    BASELINE["rss"] = S.metric("process_resident_memory_bytes")
    BASELINE["hits"] = S.metric("mmrun:prefix_cache_hits_total")
    BASELINE["aborts"] = S.metric("mmrun:request_success_total", finished_reason="abort")
    assert BASELINE["kv_blocks_used"] == 0, BASELINE


def test_storm_with_disconnects():
    t0 = time.time()
    results = storm()
    for i, r in enumerate(results):
        if i in DISCONNECT:
            assert r is None
            continue
        ids, text, finish, usage = r
        assert finish == "length" and usage.completion_tokens == TOKENS, (i, finish, usage)
        assert ids == ALONE[i][0], "client %d got other tokens than alone:\n%s\n%s" % (i, ids, ALONE[i][0])
        assert text == ALONE[i][1], i
        # The prompt was seen before (alone, then in the warm-up): all but its last token are cached.
        assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens - 1, usage
    print("   storm: %d clients in %.2f s" % (N, time.time() - t0))


def test_back_to_baseline():
    S.wait_idle()
    # The cancelled requests are counted, every slot is idle again, nothing leaked.
    deadline = time.time() + 10
    while (S.metric("mmrun:request_success_total", finished_reason="abort") < BASELINE["aborts"] + len(DISCONNECT)
           and time.time() < deadline):
        time.sleep(0.05)
    assert S.metric("mmrun:request_success_total", finished_reason="abort") == BASELINE["aborts"] + len(DISCONNECT)
    kv = kv_state()
    assert kv["kv_blocks_used"] == 0 and kv["num_requests_running"] == 0 and kv["num_requests_waiting"] == 0, kv
    assert kv["kv_blocks_free"] + kv["kv_blocks_cached"] == kv["kv_blocks_total"], kv
    assert kv["kv_blocks_cached"] <= BASELINE["kv_blocks_cached"] + 16 * 4, (kv, BASELINE)
    rss = S.metric("process_resident_memory_bytes")
    assert rss <= BASELINE["rss"] + 16 * 2**20, "RSS grew from %.1f to %.1f MiB" % (BASELINE["rss"] / 2**20, rss / 2**20)
    print("   RSS %.1f MiB (baseline %.1f MiB)" % (rss / 2**20, BASELINE["rss"] / 2**20))


def test_prefix_cache_hits_in_metrics():
    hits = S.metric("mmrun:prefix_cache_hits_total")
    queries = S.metric("mmrun:prefix_cache_queries_total")
    assert hits > BASELINE["hits"] > 0, (hits, BASELINE["hits"])
    assert queries >= hits


def test_still_serving_then_sigterm_exits_0():
    assert S.get("/health")[0] == 200
    ids, _, finish, _ = stream(0)
    assert ids == ALONE[0][0] and finish == "length"
    assert S.metric("mmrun:time_to_first_token_seconds_count") >= 3 * N
    assert S.metric("mmrun:inter_token_latency_seconds_count") > 0
    rc = S.stop()
    assert rc == 0, rc


run_tests(globals(), [S])
