"""Serving soak of `mmrun serve` (issue 13 part 6; docs/reliability.md): the tiny model on the host
backend, loopback only. Concurrent clients for a bounded time: streaming and non-streaming chat and
completions, streams the client drops after a few chunks, and malformed requests (not JSON, wrong
types, a body over --max-request-bytes, an unknown model or route, a prompt that does not fit).
Every answer must have the status its kind intends (200, or the one 4xx of that malformation);
afterwards no request is running, no KV block is held by a request, and the resident memory is
back near its baseline. Last, SIGTERM during load: the accepted streams finish, new requests get
503, and the server exits 0. Prints the figures: requests served, answers by kind and status, RSS
and KV blocks before/after, drain time.

Usage: soak.py --mmrun BUILD/bin/mmrun --plan tiny.mmp --model MODEL_DIR [--long 1] [--seconds S]
         [--clients N] [--seed N] [--asan 1]
Default: 10 s with 6 clients (the CTest test, well under a minute on 2 cores); --long 1: 300 s
with 12 clients.
"""
import http.client
import json
import random
import sys
import threading
import time
from collections import Counter

from serve_util import Server, parse_args

ARGS = parse_args(sys.argv[1:])
LONG = ARGS.get("long", "0") == "1"
SECONDS = float(ARGS.get("seconds", 300 if LONG else 10))
CLIENTS = int(ARGS.get("clients", 12 if LONG else 6))
SEED = int(ARGS.get("seed", 13))
# Under AddressSanitizer (--asan 1, set by CMake for MM_SANITIZE=address) freed memory sits in
# ASan's quarantine (256 MiB), so resident memory says nothing about leaks: LeakSanitizer checks
# those at exit instead, and the RSS bound is not applied (as the gtests do, MM_SANITIZE_ADDRESS).
ASAN = ARGS.get("asan", "0") == "1"
MAX_REQUEST_BYTES = 65536
MAX_MODEL_LEN = 1024


def chat(prompt, stream, max_tokens, model="tiny"):
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0.8, "stream": stream, "ignore_eos": True}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


class Client:
    """One HTTP/1.1 connection per request (clients that drop a stream close theirs)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        return c, c.getresponse()

    def whole(self, method, path, body):
        """(status, parsed JSON body or None)."""
        c, r = self.request(method, path, body)
        try:
            text = r.read()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, None
        finally:
            c.close()

    def stream(self, body, leave_after=None, first_chunk=None):
        """(status, finish_reason, chunks) of a streamed chat; finish_reason 'left' when the client
        dropped the connection after `leave_after` chunks. `first_chunk` (an Event) is set on the
        first data chunk."""
        c, r = self.request("POST", "/v1/chat/completions", body)
        try:
            if r.status != 200:
                r.read()
                return r.status, None, 0
            chunks, finish, done = 0, None, False
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data: "):
                    continue
                if line == b"data: [DONE]":
                    done = True
                    break
                ev = json.loads(line[6:])
                if "error" in ev:
                    return 200, "error", chunks
                for ch in ev.get("choices", []):
                    finish = ch.get("finish_reason") or finish
                chunks += 1
                if first_chunk is not None:
                    first_chunk.set()
                if leave_after is not None and chunks >= leave_after:
                    return 200, "left", chunks
            return 200, finish if done else "truncated", chunks
        finally:
            c.close()


# Each kind: (weight, function(client, rng) -> (status, ok)), where ok says whether the answer is
# what the kind intends. Malformed kinds intend exactly one 4xx.
def k_stream(cl, rng):
    n = rng.randint(4, 24)
    status, finish, chunks = cl.stream(chat("Tell me about the sea, %d." % rng.randint(0, 10**6), True, n))
    return status, status == 200 and finish == "length"


def k_stream_leave(cl, rng):
    status, finish, _ = cl.stream(chat("A long story, %d." % rng.randint(0, 10**6), True, 400),
                                  leave_after=rng.randint(1, 4))
    return status, status == 200 and finish == "left"


def k_chat(cl, rng):
    n = rng.randint(4, 24)
    status, body = cl.whole("POST", "/v1/chat/completions", chat("Hello %d" % rng.randint(0, 10**6), False, n))
    return status, status == 200 and body["choices"][0]["finish_reason"] == "length" and body["usage"][
        "completion_tokens"] == n


def k_completion(cl, rng):
    n = rng.randint(4, 16)
    status, body = cl.whole("POST", "/v1/completions", {"model": "tiny", "prompt": "Once upon a time %d" % rng.randint(0, 999),
                                                        "max_tokens": n, "ignore_eos": True})
    return status, status == 200 and body["usage"]["completion_tokens"] == n


def bad(path, body, want):
    def kind(cl, rng):
        status, resp = cl.whole("POST", path, body)
        ok = status == want and (resp is None and want == 413 or resp is not None and "error" in resp)
        return status, ok
    return kind


def k_oversize(cl, rng):
    body = json.dumps(chat("x" * (MAX_REQUEST_BYTES + rng.randint(1, 4096)), False, 4)).encode()
    try:
        status, _ = cl.whole("POST", "/v1/chat/completions", body)
    except (ConnectionError, http.client.HTTPException):
        return "reset", False
    return status, status == 413


KINDS = {
    "stream": (30, k_stream),
    "stream_disconnect": (15, k_stream_leave),
    "chat": (15, k_chat),
    "completion": (10, k_completion),
    "bad_json": (5, bad("/v1/chat/completions", b'{"model": "tiny", "messages": [', 400)),
    "wrong_type": (5, bad("/v1/chat/completions", {"model": "tiny", "messages": "hello", "max_tokens": "ten"}, 400)),
    "unknown_model": (5, bad("/v1/chat/completions", chat("hi", False, 4, model="gpt-4"), 404)),
    "unknown_route": (3, bad("/v1/embeddings", {"model": "tiny", "input": "hi"}, 404)),
    "too_long": (5, bad("/v1/completions", {"model": "tiny", "prompt": "hi", "max_tokens": MAX_MODEL_LEN * 4}, 400)),
    "oversize": (3, k_oversize),
}


def state(s):
    m = s.metrics()

    def get(name, **labels):
        for key, value in m.items():
            if key == name or key.startswith(name + "{"):
                if all('%s="%s"' % (k, v) in key for k, v in labels.items()):
                    return value
        return 0.0
    return {"rss_mib": get("process_resident_memory_bytes") / 2**20, "kv_used": get("mmrun:kv_blocks_used"),
            "kv_cached": get("mmrun:kv_blocks_cached"), "kv_total": get("mmrun:kv_blocks_total"),
            "running": get("mmrun:num_requests_running"), "waiting": get("mmrun:num_requests_waiting"),
            "aborted": get("mmrun:request_success_total", finished_reason="abort"),
            "length": get("mmrun:request_success_total", finished_reason="length")}


def main():
    s = Server(ARGS["mmrun"], ARGS["plan"], ARGS["model"], "--served-model-name", "tiny", "--max-num-seqs", "16",
               "--max-model-len", str(MAX_MODEL_LEN), "--max-num-batched-tokens", "256",
               "--max-request-bytes", str(MAX_REQUEST_BYTES))
    problems = []
    try:
        cl = Client(s.port)
        # Warm-up: the connection threads and allocator arenas of a loaded server exist before the
        # baseline is taken.
        warm = [threading.Thread(target=k_stream, args=(cl, random.Random(i))) for i in range(CLIENTS)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        s.wait_idle()
        before = state(s)

        tally = Counter()
        wrong = []
        lock = threading.Lock()
        stop_at = time.time() + SECONDS
        names = list(KINDS)
        weights = [KINDS[n][0] for n in names]

        def worker(i):
            rng = random.Random(SEED * 1000 + i)
            while time.time() < stop_at:
                name = rng.choices(names, weights)[0]
                try:
                    status, ok = KINDS[name][1](cl, rng)
                except Exception as e:  # noqa: BLE001 - any client-side failure is a finding
                    status, ok = type(e).__name__, False
                with lock:
                    tally[(name, status)] += 1
                    if not ok:
                        wrong.append((name, status))

        t0 = time.time()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        s.wait_idle()
        # Dropped streams are cancelled by the server when it next writes to them.
        deadline = time.time() + 10
        while state(s)["running"] and time.time() < deadline:
            time.sleep(0.05)
        after = state(s)

        total = sum(tally.values())
        print("soak: %d clients, %.1f s, %d requests (%.1f/s), seed %d" % (CLIENTS, elapsed, total, total / elapsed, SEED))
        for name in names:
            row = {st: n for (k, st), n in tally.items() if k == name}
            print("  %-18s %s" % (name, ", ".join("%s: %d" % (st, n) for st, n in sorted(row.items(), key=str))))
        print("  before: RSS %.1f MiB, KV blocks used %d, cached %d of %d" % (
            before["rss_mib"], before["kv_used"], before["kv_cached"], before["kv_total"]))
        print("  after:  RSS %.1f MiB, KV blocks used %d, cached %d of %d, running %d, waiting %d" % (
            after["rss_mib"], after["kv_used"], after["kv_cached"], after["kv_total"], after["running"], after["waiting"]))
        print("  server counted %d aborted, %d finished by length (since start)" % (after["aborted"], after["length"]))
        if wrong:
            problems.append("%d answers other than intended: %s" % (len(wrong), Counter(wrong).most_common(8)))
        if after["kv_used"] or after["running"] or after["waiting"]:
            problems.append("not idle after the soak: %s" % after)
        if not ASAN and after["rss_mib"] > before["rss_mib"] + 32:
            problems.append("RSS grew from %.1f to %.1f MiB" % (before["rss_mib"], after["rss_mib"]))
        if not all(tally[(n, st)] for n, st in (("stream", 200), ("chat", 200), ("bad_json", 400))):
            problems.append("the soak did not exercise every main kind: %s" % dict(tally))

        # SIGTERM during load: streams accepted before it finish; new requests get 503 (or find
        # the listener closed); exit 0.
        started = [threading.Event() for _ in range(4)]
        results = [None] * 4

        def long_stream(i):
            results[i] = cl.stream(chat("Drain me %d" % i, True, 40), first_chunk=started[i])

        drainers = [threading.Thread(target=long_stream, args=(i,)) for i in range(4)]
        for t in drainers:
            t.start()
        for e in started:
            e.wait(60)
        t_term = time.time()
        s.proc.send_signal(15)
        time.sleep(0.2)
        try:
            late, _ = cl.whole("POST", "/v1/chat/completions", chat("too late", False, 4))
        except (ConnectionError, http.client.HTTPException):
            late = "refused"
        for t in drainers:
            t.join(120)
        rc = s.stop(send=False)
        drain = time.time() - t_term
        finishes = [r[1] if r else None for r in results]
        print("  SIGTERM with 4 streams running: they ended %s, a new request got %s, exit %s after %.2f s" % (
            finishes, late, rc, drain))
        if finishes != ["length"] * 4:
            problems.append("streams did not finish during the drain: %s" % finishes)
        if late not in (503, "refused"):
            problems.append("a request during the drain got %s, expected 503" % late)
        if rc != 0:
            problems.append("exit code %s after SIGTERM" % rc)
    finally:
        s.kill()
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        print("--- server log\n" + "\n".join(s.log[-40:]))
        sys.exit(1)
    print("soak passed")


main()
