#!/usr/bin/env python3
"""Seed corpora of the fuzz targets (test/fuzz), made from the test inputs.

    make_corpus.py BIN_DIR OUT_DIR

BIN_DIR holds mm-synth and mm-fuzz-plan-seeds of the fuzzing build. OUT_DIR/<target>/ receives the
seeds of each target, in the input format its source file describes: checkpoints of mm-synth's
tiny preset (auto-round and gptq), the tokenizer fixtures and their golden corpus, the chat
template goldens, tool-call and reasoning outputs in the spec's format, and the test plans.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

SEP = b"\xff\xfe\xfd"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INPUTS = os.path.join(ROOT, "test", "inputs")

TOOLS = [
    {"type": "function", "function": {"name": "search_web", "description": "Search the web", "parameters": {
        "type": "object", "properties": {
            "query_tag": {"type": "array", "items": {"type": "string"}}, "query_list": {"type": "array"},
            "limit": {"type": "integer"}, "ratio": {"type": "number"}, "safe": {"type": "boolean"},
            "filters": {"type": "object"}, "lang": {"type": "string"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "level": {"enum": [1, 2, 3]},
            "multi": {"type": ["boolean", "string"]}}, "required": ["query_tag"]}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
        "location": {"type": "string"}, "days": {"type": "integer"}}}}},
]

OUTPUTS = [
    "I'll search.\n<minimax:tool_call>\n<invoke name=\"search_web\">\n"
    "<parameter name=\"query_tag\">[\"technology\", \"events\"]</parameter>\n"
    "<parameter name=\"query_list\">[\"\\\"OpenAI\\\" \\\"latest\\\"\"]</parameter>\n"
    "</invoke>\n<invoke name=\"get_weather\">\n<parameter name=\"location\">\nSan Francisco\n</parameter>\n"
    "<parameter name=\"days\">3</parameter>\n</invoke>\n</minimax:tool_call>",
    "<minimax:tool_call>\n<invoke name=\"search_web\">\n<parameter name=\"limit\">5</parameter>\n"
    "<parameter name=\"ratio\">0.5</parameter>\n<parameter name=\"safe\">yes</parameter>\n"
    "<parameter name=\"filters\">{\"a\": [1, {\"b\": null}]}</parameter>\n<parameter name=\"maybe\">null</parameter>\n"
    "<parameter name=\"level\">2</parameter>\n<parameter name=\"multi\">on</parameter>\n"
    "<parameter name=\"lang\">東京 🗼</parameter>\n</invoke>\n</minimax:tool_call>\nDone.",
    "No tools needed: the answer is 4.",
    "text <minimax:tool_call>no invoke here</minimax:tool_call> more <minimax:tool_call>\n<invoke name=\"get_wea",
]

REASONING = [
    "The user greets me.\n</think>\n\nHello! How can I help?",
    "<think>step 1\nstep 2</think>answer</think>tail",
    "reasoning that never ends <",
    "</think>",
    "a</thin",
]


# Request bodies as clients send them (the shapes of test/unit/server/openai_request_test.cpp and the
# openai-client tests of test/tools/serve): byte 0 is the target's flags (bit 0: /v1/completions).
CHAT_BODIES = [
    {"model": "tiny", "messages": [{"role": "user", "content": "Hello there"}]},
    {"model": "alias", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
     "temperature": 0, "top_p": 0.5, "top_k": -1, "seed": -3, "max_tokens": 20, "max_completion_tokens": 12,
     "stop": ["END", "bc"], "stop_token_ids": [20, 5], "ignore_eos": True, "skip_special_tokens": False,
     "stream": True, "stream_options": {"include_usage": True}, "return_token_ids": True, "n": 1,
     "presence_penalty": 0, "logprobs": False, "response_format": {"type": "text"}, "user": "someone"},
    {"model": "tiny", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS,
     "tool_choice": "required"},
    {"model": "tiny", "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
     "messages": [{"role": "user", "content": "Weather?"},
                  {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]},
    {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": "part one"}]},
                                   {"role": "assistant", "content": "<think>\nI will.\n</think>\n\n"}],
     "continue_final_message": True, "add_generation_prompt": False, "min_tokens": 2},
    {"model": "gpt-4", "messages": [{"role": "wizard", "content": "hi"}], "n": 2, "logit_bias": {"5": 1}},
]
COMPLETION_BODIES = [
    {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 8},
    {"model": "tiny", "prompt": [[5, 6, 7]], "echo": True, "stream": True, "stop": "."},
    {"model": "tiny", "prompt": [5, 6, 7], "max_tokens": 100000},
]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def shard_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n)


def small_safetensors(tensors, metadata=None):
    """A complete file: (name, dtype, shape, bytes per element) laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, width in tensors:
        n = width
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += bytes((i * 7) % 256 for i in range(n))
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def main():
    bin_dir, out = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="mm-corpus-")
    models = {}
    for quant in ("auto-round", "gptq"):
        d = os.path.join(tmp, quant)
        subprocess.run([os.path.join(bin_dir, "mm-synth"), "--preset", "tiny", "--quant", quant, "--out", d],
                       check=True, stdout=subprocess.DEVNULL)
        models[quant] = d

    for quant, d in models.items():
        config = open(os.path.join(d, "config.json"), "rb").read()
        index = open(os.path.join(d, "model.safetensors.index.json"), "rb").read()
        shards = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
        header = shard_header(os.path.join(d, shards[0]))
        write(f"{out}/fuzz_model_config/{quant}.json", config)
        write(f"{out}/fuzz_checkpoint/{quant}-indexed", config + SEP + index + SEP + header)
        write(f"{out}/fuzz_checkpoint/{quant}-single", config + SEP + SEP + header)
        write(f"{out}/fuzz_safetensors/{quant}-header", b"\x01" + header)
    write(f"{out}/fuzz_safetensors/small", b"\x00" + small_safetensors(
        [("a", "F32", [2, 3], 4), ("b", "BF16", [4], 2), ("c", "I32", [0], 4), ("d", "U8", [], 1)],
        {"format": "pt"}))
    write(f"{out}/fuzz_safetensors/dtypes", b"\x00" + small_safetensors(
        [(f"t{i}", dt, [2, 2], w) for i, (dt, w) in enumerate(
            [("F16", 2), ("F64", 8), ("I8", 1), ("I16", 2), ("I64", 8), ("BOOL", 1), ("F8_E4M3", 1)])]))

    tok_dir = os.path.join(INPUTS, "tokenizer")
    for name in sorted(os.listdir(tok_dir)):
        path = os.path.join(tok_dir, name, "tokenizer.json")
        if os.path.exists(path):
            write(f"{out}/fuzz_tokenizer_json/{name}.json", open(path, "rb").read())
    corpus = json.load(open(os.path.join(tok_dir, "goldens.json")))["corpus"]
    for i, text in enumerate(corpus):
        write(f"{out}/fuzz_tokenizer_text/{i:03d}", bytes([i % 2]) + text.encode("utf-8", "surrogatepass"))

    for i, case in enumerate(json.load(open(os.path.join(INPUTS, "chat", "chat_goldens.json")))):
        tools = json.dumps(case["tools"]).encode() if case.get("tools") else b""
        opts = case.get("options", {})
        flags = ((0 if opts.get("add_generation_prompt") is False else 1) |
                 (2 if opts.get("parse_string_arguments") is False else 0) | (4 if "model_identity" in opts else 0))
        tail = bytes([flags]) + opts.get("model_identity", "").encode()
        write(f"{out}/fuzz_chat_template/{i:02d}-{case['name']}",
              json.dumps(case["messages"], ensure_ascii=False).encode() + SEP + tools + SEP + tail)

    tools = json.dumps(TOOLS).encode()
    for i, text in enumerate(OUTPUTS):
        write(f"{out}/fuzz_tool_calls/{i:02d}", tools + SEP + bytes([i * 37 % 256]) + text.encode())
    for i, text in enumerate(REASONING + OUTPUTS):
        write(f"{out}/fuzz_reasoning/{i:02d}", bytes([i * 53 % 256]) + text.encode())

    for i, body in enumerate(CHAT_BODIES):
        write(f"{out}/fuzz_openai_request/chat-{i:02d}", bytes([(i % 4) * 2]) + json.dumps(body).encode())
    for i, body in enumerate(COMPLETION_BODIES):
        write(f"{out}/fuzz_openai_request/completion-{i:02d}", bytes([1 | (i % 4) * 2]) + json.dumps(body).encode())
    write(f"{out}/fuzz_openai_request/not-json", b"\x00{\"model\": \"tiny\", \"messages\": [")

    os.makedirs(f"{out}/fuzz_plan", exist_ok=True)
    subprocess.run([os.path.join(bin_dir, "mm-fuzz-plan-seeds"), f"{out}/fuzz_plan"], check=True)
    subprocess.run(["rm", "-rf", tmp], check=True)


if __name__ == "__main__":
    main()
