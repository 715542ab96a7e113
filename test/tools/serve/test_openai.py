"""End-to-end tests of `mmrun serve` with the official openai Python client (requirements.txt), on the
tiny synthetic model (host backend, loopback only): chat and completions, streaming and not, usage,
stop strings, seed determinism, every error status (400 bad JSON / field / context overflow, 401,
404, 413, 429, 503), tool calls and reasoning with each parser, --api-key, SIGTERM draining.

Usage: test_openai.py --mmrun BUILD/bin/mmrun --plan tiny.mmp --model MODEL_DIR
"""
import json
import signal
import sys
import threading
import time

import openai

from serve_util import Server, parse_args, run_tests

ARGS = parse_args(sys.argv[1:])
BASE = (ARGS["mmrun"], ARGS["plan"], ARGS["model"])

# A: no parsers, two names; B: reasoning split + tool calls; C: append_think + API key.
A = Server(*BASE, "--served-model-name", "tiny", "--served-model-name", "alias", "--max-num-seqs", "4",
           "--max-model-len", "512", "--max-request-bytes", "65536")
B = Server(*BASE, "--served-model-name", "tiny", "--max-num-seqs", "4", "--max-model-len", "512",
           "--reasoning-parser", "minimax_m2", "--tool-call-parser", "minimax_m2", "--enable-auto-tool-choice",
           "--trust-remote-code", "--kv-cache-dtype", "auto")
C = Server(*BASE, "--served-model-name", "tiny", "--max-num-seqs", "2", "--max-model-len", "512",
           "--reasoning-parser", "minimax_m2_append_think", "--api-key", "sekrit")
SERVERS = [A, B, C]

MSG = [{"role": "user", "content": "Tell me about the sea."}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather forecast",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}]
# The answer so far of a model that has finished thinking: generation continues after "</think>".
THOUGHT = [{"role": "user", "content": "Weather in Paris?"},
           {"role": "assistant", "content": "<think>\nI will look it up.\n</think>\n\n"}]
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


def client(server, key="none"):
    return openai.OpenAI(base_url=server.url("/v1"), api_key=key, max_retries=0, timeout=60)


def greedy(**extra):
    body = {"ignore_eos": True}
    body.update(extra)
    return {"temperature": 0, "extra_body": body}


def expect_error(cls, status, needle, fn):
    try:
        fn()
    except cls as e:
        assert e.status_code == status, (e.status_code, status)
        body = e.response.json()
        assert "error" in body and "message" in body["error"], body
        assert needle in body["error"]["message"], (needle, body)
        return body["error"]
    raise AssertionError("no %s raised (expected %d, '%s')" % (cls.__name__, status, needle))


def stream_chat(server, **kw):
    """Streams a chat completion; returns (chunks, role, reasoning, content, finish_reason, usage)."""
    chunks = list(client(server).chat.completions.create(stream=True, **kw))
    role, reasoning, content, finish, usage = None, "", "", None, None
    for ch in chunks:
        if ch.usage is not None:
            usage = ch.usage
        for c in ch.choices:
            d = c.delta
            role = role or d.role
            reasoning += getattr(d, "reasoning_content", None) or ""
            content += d.content or ""
            finish = c.finish_reason or finish
    return chunks, role, reasoning, content, finish, usage


def test_models():
    ids = [m.id for m in client(A).models.list().data]
    assert ids == ["tiny", "alias"], ids


def test_chat_usage_and_lengths():
    r = client(A).chat.completions.create(model="tiny", messages=MSG, max_tokens=12, **greedy())
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    c = r.choices[0]
    assert c.finish_reason == "length", c.finish_reason
    assert c.message.role == "assistant" and isinstance(c.message.content, str) and c.message.content
    assert r.usage.completion_tokens == 12 and r.usage.prompt_tokens > 10
    assert r.usage.total_tokens == r.usage.prompt_tokens + 12
    # max_completion_tokens (OpenAI's current name) and the second served name.
    r2 = client(A).chat.completions.create(model="alias", messages=MSG, max_completion_tokens=5, **greedy())
    assert r2.usage.completion_tokens == 5 and r2.model == "alias"
    assert r.choices[0].message.content.startswith(r2.choices[0].message.content)


def test_chat_stream_equals_nonstream():
    kw = dict(model="tiny", messages=MSG, max_tokens=16, **greedy())
    whole = client(A).chat.completions.create(**kw).choices[0].message.content
    chunks, role, _, content, finish, usage = stream_chat(A, stream_options={"include_usage": True}, **kw)
    assert role == "assistant"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert content == whole, (content, whole)
    assert finish == "length"
    assert usage is not None and usage.completion_tokens == 16
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == usage.prompt_tokens + 16
    # Without include_usage no usage chunk is sent.
    chunks, _, _, content2, _, usage2 = stream_chat(A, **kw)
    assert usage2 is None and content2 == whole


def test_completions_stream_and_not():
    kw = dict(model="tiny", prompt="Once upon a time", max_tokens=20, **greedy())
    r = client(A).completions.create(**kw)
    assert r.object == "text_completion" and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 20
    text = "".join(c.choices[0].text for c in client(A).completions.create(stream=True, **kw) if c.choices)
    assert text == r.choices[0].text
    echo = client(A).completions.create(echo=True, **kw)
    assert echo.choices[0].text == "Once upon a time" + r.choices[0].text
    # Token ids as the prompt.
    ids = client(A).completions.create(model="tiny", prompt=[1, 2, 3, 4], max_tokens=3, **greedy())
    assert ids.usage.prompt_tokens == 4 and ids.usage.completion_tokens == 3


def pick_stop(text):
    """Three letters from the middle of `text` (so that the stop string spans tokens in general)."""
    for i in range(2, len(text) - 3):
        s = text[i:i + 3]
        if s.isascii() and s.isalpha():
            return s
    return text[2:5]


def test_stop_strings():
    kw = dict(model="tiny", prompt="The sea is", max_tokens=40, **greedy())
    full = client(A).completions.create(**kw).choices[0].text
    stop = pick_stop(full)
    want = full[:full.index(stop)]
    r = client(A).completions.create(stop=stop, **kw)
    assert r.choices[0].text == want and r.choices[0].finish_reason == "stop", (r.choices[0].text, want, stop)
    streamed = [c for c in client(A).completions.create(stop=[stop, "never-XYZ"], stream=True, **kw)]
    assert "".join(c.choices[0].text for c in streamed if c.choices) == want
    assert streamed[-1].choices[0].finish_reason == "stop"
    # Chat: the same rule on the answer.
    ckw = dict(model="tiny", messages=MSG, max_tokens=40, **greedy())
    full = client(A).chat.completions.create(**ckw).choices[0].message.content
    stop = pick_stop(full)
    r = client(A).chat.completions.create(stop=[stop], **ckw)
    assert r.choices[0].message.content == full[:full.index(stop)] and r.choices[0].finish_reason == "stop"


def test_seed_determinism():
    kw = dict(model="tiny", messages=MSG, max_tokens=24, temperature=1.0, top_p=0.95, extra_body={"top_k": 50, "ignore_eos": True})
    a = client(A).chat.completions.create(seed=7, **kw).choices[0].message.content
    b = client(A).chat.completions.create(seed=7, **kw).choices[0].message.content
    c = client(A).chat.completions.create(seed=8, **kw).choices[0].message.content
    assert a == b, (a, b)
    assert a != c, (a, c)


def test_prefix_cache_hit_in_usage_and_metrics():
    kw = dict(model="tiny", messages=[{"role": "user", "content": "A question that is asked twice."}],
              max_tokens=4, **greedy())
    client(A).chat.completions.create(**kw)
    hits_before = A.metric("mmrun:prefix_cache_hits_total")
    r = client(A).chat.completions.create(**kw)
    assert r.usage.prompt_tokens_details.cached_tokens == r.usage.prompt_tokens - 1, r.usage
    assert A.metric("mmrun:prefix_cache_hits_total") >= hits_before + r.usage.prompt_tokens - 1


def test_unknown_fields_are_tolerated():
    r = client(A).chat.completions.create(model="tiny", messages=MSG, max_tokens=2, user="someone",
                                          extra_body={"foo": {"bar": [1]}, "cache_prompt": False, "priority": 0,
                                                      "ignore_eos": True})
    assert r.usage.completion_tokens == 2


def test_error_statuses():
    c = client(A)
    status, body = A.post("/v1/chat/completions", b'{"model": "tiny", "messages": [')
    assert status == 400 and "not valid JSON" in json.loads(body)["error"]["message"], (status, body)
    expect_error(openai.BadRequestError, 400, "'temperature' must be a number >= 0",
                 lambda: c.chat.completions.create(model="tiny", messages=MSG, temperature=-1))
    expect_error(openai.BadRequestError, 400, "'n' must be 1",
                 lambda: c.chat.completions.create(model="tiny", messages=MSG, n=2))
    expect_error(openai.BadRequestError, 400, "'messages' must be a non-empty array",
                 lambda: c.chat.completions.create(model="tiny", messages=[]))
    expect_error(openai.BadRequestError, 400, "'logprobs' is not supported",
                 lambda: c.chat.completions.create(model="tiny", messages=MSG, logprobs=True))
    err = expect_error(openai.NotFoundError, 404, "The model `gpt-4o` does not exist.",
                       lambda: c.chat.completions.create(model="gpt-4o", messages=MSG))
    assert err["code"] == "model_not_found"
    status, body = A.get("/v2/nothing")
    assert status == 404 and json.loads(body)["error"]["message"] == "Not Found: GET /v2/nothing"
    # 413: a body over --max-request-bytes 65536.
    big = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "x" * 100000}]}).encode()
    status, body = A.post("/v1/chat/completions", big)
    assert status == 413 and "max-request-bytes" in json.loads(body)["error"]["message"], (status, body)
    # Context overflow names both lengths.
    err = expect_error(openai.BadRequestError, 400, "maximum context length is 512 tokens",
                       lambda: c.chat.completions.create(model="tiny", messages=MSG, max_tokens=100000))
    assert "100000 in the completion" in err["message"] and err["code"] == "context_length_exceeded", err
    expect_error(openai.BadRequestError, 400, "input tokens",
                 lambda: c.completions.create(model="tiny", prompt="word " * 600))
    # tool_choice auto needs --enable-auto-tool-choice (A has no tool parser).
    expect_error(openai.BadRequestError, 400, "--enable-auto-tool-choice",
                 lambda: c.chat.completions.create(model="tiny", messages=MSG, tools=TOOLS))
    assert A.get("/health")[0] == 200


def test_api_key():
    expect_error(openai.AuthenticationError, 401, "Incorrect API key",
                 lambda: client(C, "wrong").chat.completions.create(model="tiny", messages=MSG, max_tokens=1))
    expect_error(openai.AuthenticationError, 401, "Incorrect API key", lambda: client(C).models.list())
    r = client(C, "sekrit").chat.completions.create(model="tiny", messages=MSG, max_tokens=3, **greedy())
    assert r.usage.completion_tokens == 3
    assert C.get("/health")[0] == 200 and C.get("/metrics")[0] == 200  # open, as vLLM's


def test_reasoning_parsers_agree():
    kw = dict(model="tiny", messages=MSG, max_tokens=24, **greedy())
    raw = client(A).chat.completions.create(**kw).choices[0].message.content
    split = client(B).chat.completions.create(**kw).choices[0].message
    appended = client(C, "sekrit").chat.completions.create(**kw).choices[0].message.content
    if "</think>" in raw:
        i = raw.index("</think>")
        assert split.reasoning_content == (raw[:i] or None) and split.content == (raw[i + 8:] or None), (raw, split)
    else:
        assert split.reasoning_content == raw and split.content is None, (raw, split)
    assert appended == "<think>" + raw, (appended, raw)
    # Streaming: the deltas add up to the same split.
    _, _, reasoning, content, finish, _ = stream_chat(B, **kw)
    assert reasoning == (split.reasoning_content or "") and content == (split.content or "") and finish == "length"
    chunks = list(client(C, "sekrit").chat.completions.create(stream=True, **kw))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == appended


def tool_calls_of(chunks):
    """Tool calls assembled from streamed deltas, checking that id and name come once."""
    calls = []
    for ch in chunks:
        for c in ch.choices:
            for tc in c.delta.tool_calls or []:
                if tc.index == len(calls):
                    assert tc.id and tc.function.name, tc
                    calls.append({"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments or ""})
                else:
                    assert tc.id is None and tc.function.name is None, tc
                    calls[tc.index]["arguments"] += tc.function.arguments or ""
    return calls


def test_named_tool_choice():
    kw = dict(model="tiny", messages=THOUGHT, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_weather"}},
              temperature=0)
    # The random model never closes the call itself: find a token it generates well after the forced
    # opening (<minimax:tool_call>, <invoke name="get_weather">: under 24 tokens) and stop there, so
    # that the answer ends normally instead of at max_tokens.
    probe = client(B).chat.completions.create(max_tokens=60, extra_body=dict(CONTINUE, ignore_eos=True, return_token_ids=True), **kw)
    assert probe.choices[0].finish_reason == "length"  # a call cut by max_tokens is still reported
    assert probe.choices[0].message.tool_calls[0].function.name == "get_weather"
    ids = probe.choices[0].token_ids
    assert len(ids) == 60 and probe.prompt_token_ids, probe
    stop_id = next(t for t in ids[24:] if t not in ids[:24])
    kw.update(max_tokens=60, extra_body=dict(CONTINUE, ignore_eos=True, stop_token_ids=[stop_id]))
    r = client(B).chat.completions.create(**kw)
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls", r
    assert len(m.tool_calls) == 1 and m.tool_calls[0].type == "function", m
    assert m.tool_calls[0].function.name == "get_weather" and m.tool_calls[0].id.startswith("call_")
    assert isinstance(json.loads(m.tool_calls[0].function.arguments), dict)
    assert 24 < r.usage.completion_tokens < 60, r.usage
    chunks = list(client(B).chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    calls = tool_calls_of(chunks)
    assert [c["name"] for c in calls] == ["get_weather"], calls
    assert calls[0]["arguments"] == m.tool_calls[0].function.arguments
    finishes = [c.finish_reason for ch in chunks for c in ch.choices if c.finish_reason]
    assert finishes == ["tool_calls"], finishes
    assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens


def test_required_tool_choice_keeps_a_malformed_block():
    r = client(B).chat.completions.create(model="tiny", messages=THOUGHT, tools=TOOLS, tool_choice="required",
                                          max_tokens=12, temperature=0, extra_body=dict(CONTINUE, ignore_eos=True))
    m = r.choices[0].message
    # The model names the function itself; a block that yields no call comes back as content.
    assert m.tool_calls or (m.content or "").startswith('<minimax:tool_call>\n<invoke name="'), m


def test_tool_history_and_tool_choice_none():
    history = [{"role": "system", "content": "Be brief."},
               {"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "content": None, "reasoning_content": "Call the tool.",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'}]
    short = client(B).chat.completions.create(model="tiny", messages=history[:2], tools=TOOLS, max_tokens=2, **greedy())
    full = client(B).chat.completions.create(model="tiny", messages=history, tools=TOOLS, max_tokens=2, **greedy())
    assert full.usage.prompt_tokens > short.usage.prompt_tokens + 20, (full.usage, short.usage)
    none = client(B).chat.completions.create(model="tiny", messages=history, tools=TOOLS, tool_choice="none",
                                             max_tokens=2, **greedy())
    assert none.usage.prompt_tokens == full.usage.prompt_tokens and not none.choices[0].message.tool_calls
    # A tool message without a preceding call is refused by the template.
    expect_error(openai.BadRequestError, 400, "",
                 lambda: client(B).chat.completions.create(model="tiny", messages=[history[0], history[3]]))


def test_queue_full_429_then_drain_503_and_exit_0():
    d = Server(*BASE, "--served-model-name", "tiny", "--max-num-seqs", "1", "--max-queued-requests", "1",
               "--max-model-len", "4096")
    SERVERS.append(d)
    kw = dict(model="tiny", messages=MSG, max_tokens=4000, **greedy())
    streams = [client(d).chat.completions.create(stream=True, **kw) for _ in range(2)]
    next(iter(streams[0]))  # the first runs, the second waits in the queue
    deadline = time.time() + 10
    while d.metric("mmrun:num_requests_waiting") < 1 and time.time() < deadline:
        time.sleep(0.02)
    err = expect_error(openai.RateLimitError, 429, "at capacity",
                       lambda: client(d).chat.completions.create(model="tiny", messages=MSG, max_tokens=2))
    assert err["code"] == "server_overloaded"
    for s in streams:
        s.close()  # both clients go away: their requests are cancelled
    d.wait_idle()
    aborted = d.metric("mmrun:request_success_total", finished_reason="abort")
    assert aborted == 2, (aborted, d.metrics())
    assert d.metric("mmrun:request_rejected_total", reason="queue_full") == 1
    # SIGTERM while a request streams: it finishes, new ones get 503, then the server exits 0.
    s = client(d).chat.completions.create(stream=True, model="tiny", messages=MSG, max_tokens=300, **greedy())
    it = iter(s)
    next(it)
    d.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 10
    while d.get("/health")[0] != 503 and time.time() < deadline:
        time.sleep(0.02)
    assert d.get("/health")[0] == 503
    expect_error(openai.InternalServerError, 503, "shutting down",
                 lambda: client(d).chat.completions.create(model="tiny", messages=MSG, max_tokens=2))
    rest = list(it)
    assert rest[-1].choices[0].finish_reason == "length", rest[-1]
    rc = d.stop(send=False)
    assert rc == 0, (rc, d.log)
    assert any("SIGTERM: finishing 1 request(s)" in line for line in d.log), d.log


def test_sigterm_exits_0():
    for s in (A, B, C):
        rc = s.stop()
        assert rc == 0, (rc, s.cmd)


run_tests(globals(), SERVERS)
