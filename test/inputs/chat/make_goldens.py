#!/usr/bin/env python3
"""Renders the MiniMax-M2 reference chat template for a set of conversations, writing
chat_goldens.json next to this script. test/unit/chat/chat_template_test.cpp renders the same
conversations with mm::text::render_minimax_m2_chat and compares byte for byte.

Rendering goes through transformers' own code path of tokenizer.apply_chat_template:
_normalize_chat_messages (drops None-valued keys) and render_jinja_template (reasoning aliases,
ImmutableSandboxedEnvironment(trim_blocks, lstrip_blocks), json.dumps-based tojson,
raise_exception). Cases with options.parse_string_arguments (the C++ default) first parse
JSON-string tool-call arguments into objects, as vLLM does before templating.

Usage (needs `pip install transformers jinja2`; no torch, no tokenizer files):
    python3 test/inputs/chat/make_goldens.py
"""
import copy
import json
import os
import sys

import jinja2
from transformers.utils.chat_template_utils import _normalize_chat_messages, render_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TEMPLATE = os.path.join(ROOT, "models", "minimax_m2", "chat_template.jinja")
OUT = os.path.join(HERE, "chat_goldens.json")


def parse_string_arguments(messages):
    """vLLM's preprocessing: tool-call arguments sent as JSON text become objects ({} if empty)."""
    messages = copy.deepcopy(messages)
    for m in messages:
        if m.get("role") != "assistant" or not isinstance(m.get("tool_calls"), list):
            continue
        for call in m["tool_calls"]:
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict):
                continue
            args = fn.get("arguments")
            if args is None or args == "":
                fn["arguments"] = {}
            elif isinstance(args, str):
                fn["arguments"] = json.loads(args)
    return messages


def render(template, case):
    opts = case.get("options", {})
    messages = case["messages"]
    if opts.get("parse_string_arguments", True):
        messages = parse_string_arguments(messages)
    kwargs = {}
    if "model_identity" in opts:
        kwargs["model_identity"] = opts["model_identity"]
    chat = _normalize_chat_messages(messages)
    rendered, _ = render_jinja_template(
        conversations=[chat],
        tools=case.get("tools"),
        chat_template=template,
        add_generation_prompt=opts.get("add_generation_prompt", True),
        **kwargs,
    )
    return rendered[0]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location (°C/°F) <b>&'quoted'</b>",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City, e.g. 'San Francisco, CA' or 東京"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 16, "default": 3},
            },
            "required": ["location"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_web",
        "description": "Search the web.\n\tReturns JSON with \"results\"; path a/b\\c \u0001 ctl",
        "parameters": {
            "type": "object",
            "properties": {
                "query_list": {"type": "array", "items": {"type": "string"}},
                "threshold": {"type": "number", "default": 0.5, "maximum": 1e16, "minimum": 1e-05},
                "scale": {"type": "number", "examples": [-0.0, 1e300, 123456789.123, 1e15, 0.0001, 2.5e-7]},
                "flag": {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None},
            },
        },
    },
}


def call(cid, name, arguments, flat=False):
    if flat:
        return {"name": name, "arguments": arguments}
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}


CASES = [
    {"name": "plain", "messages": [{"role": "user", "content": "Hello!"}]},
    {"name": "system_given", "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Hi"}]},
    {"name": "system_empty_uses_default", "messages": [
        {"role": "system", "content": ""},
        {"role": "user", "content": "Hi"}]},
    {"name": "model_identity_option", "options": {
        "model_identity": "You are a helpful assistant. Your name is MiniMax-M2.7 and is built by MiniMax."},
     "messages": [{"role": "user", "content": "Who are you?"}]},
    {"name": "system_date_location", "messages": [
        {"role": "system", "content": "Be brief.", "current_date": "2025-11-26", "current_location": "Shanghai"},
        {"role": "user", "content": "What day is it?"}]},
    {"name": "no_generation_prompt", "options": {"add_generation_prompt": False}, "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}]},
    {"name": "multi_turn", "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6."},
        {"role": "user", "content": "Thanks"}]},
    {"name": "reasoning_before_last_user_dropped", "messages": [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1", "reasoning_content": "thinking about Q1"},
        {"role": "user", "content": "Q2"}]},
    {"name": "reasoning_after_last_user_kept", "options": {"add_generation_prompt": False}, "messages": [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1", "reasoning_content": "thinking about Q1"}]},
    {"name": "reasoning_alias_fields", "messages": [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "step", "reasoning": "via reasoning", "reasoning_content": None,
         "tool_calls": [call("c1", "get_weather", {"location": "Paris"})]},
        {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "done", "thinking": "via thinking"}],
     "options": {"add_generation_prompt": False}},
    {"name": "think_tags_in_content_kept_verbatim", "messages": [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "<think>\nold reasoning\n</think>\n\nA1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "<think>\nnew reasoning\n</think>\n\nA2"}]},
    {"name": "tools_block", "tools": [WEATHER_TOOL, SEARCH_TOOL], "messages": [
        {"role": "system", "content": "Use tools when useful."},
        {"role": "user", "content": "Weather in Paris?"}]},
    {"name": "tools_default_system", "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Paris?"}]},
    {"name": "tool_loop_reasoning_kept", "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in San Francisco?"},
        {"role": "assistant", "content": "", "reasoning_content": "I should call get_weather.",
         "tool_calls": [call("call_1", "get_weather", {"location": "San Francisco", "days": 2})]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": \"25\"}"}]},
    {"name": "tool_call_string_arguments_parsed", "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [call("call_1", "get_weather", "{\"location\": \"Berlin\", \"unit\": \"celsius\", \"days\": 7}")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "cloudy"}]},
    {"name": "tool_call_string_arguments_raw", "options": {"parse_string_arguments": False}, "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [call("call_1", "get_weather", "{\"location\": \"Berlin\"}")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "cloudy"}]},
    {"name": "tool_call_value_types", "messages": [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "Calling.",
         "tool_calls": [call("call_1", "search_web", {
             "query_list": ["\"OpenAI\" latest", "東京 news 🚀"], "threshold": 0.25, "big": 1e16,
             "small": 1e-05, "int": 42, "neg": -7, "flag": True, "off": False, "nothing": None,
             "nested": {"a/b": "<x & y>", "esc": "tab\there\nnl \\ \"q\" \u0007"},
             "raw": "line1\nline2 <tag> & 'q'", "empty_list": [], "empty_obj": {}, "float_int": 3.0,
             "neg_zero": -0.0, "huge": 1.5e300, "exact": 123456789.123, "fixed16": 1e15})]},
        {"role": "tool", "content": "ok"}]},
    {"name": "parallel_tool_calls_and_results", "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking both.", "reasoning_content": "Two cities, two calls.",
         "tool_calls": [call("c1", "get_weather", {"location": "Paris"}),
                        call("c2", "get_weather", {"location": "Rome", "unit": "celsius"})]},
        {"role": "tool", "tool_call_id": "c1", "content": "Paris: 18C"},
        {"role": "tool", "tool_call_id": "c2", "content": "Rome: 24C"}]},
    {"name": "tool_results_three_consecutive_then_answer", "options": {"add_generation_prompt": False},
     "messages": [
        {"role": "user", "content": "Run three"},
        {"role": "assistant", "content": "",
         "tool_calls": [call("a", "f", {"i": 1}), call("b", "f", {"i": 2}), call("c", "f", {"i": 3})]},
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
        {"role": "tool", "content": "r3"},
        {"role": "assistant", "content": "All done.", "reasoning_content": "Summarize."},
        {"role": "user", "content": "next"},
        {"role": "assistant", "content": "ok", "reasoning_content": "dropped"}]},
    {"name": "tool_result_content_list", "messages": [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "tool_calls": [call("a", "f", {})]},
        {"role": "tool", "content": [{"type": "text", "text": "part one"}, "bare string",
                                     {"output": "from output"}, {"type": "text", "text": "part two"}]}]},
    {"name": "flat_tool_call_shape", "messages": [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "x",
         "tool_calls": [{"name": "g", "arguments": {"k": "v"}},
                        call("b", "h", {"n": 1.5})]},
        {"role": "tool", "content": "done"}]},
    {"name": "tool_results_across_user_turn", "messages": [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "tool_calls": [call("a", "f", {"q": "x"})]},
        {"role": "tool", "content": "r1"},
        {"role": "user", "content": "again"},
        {"role": "tool", "content": "late result"}]},
    {"name": "non_ascii", "tools": [WEATHER_TOOL], "messages": [
        {"role": "system", "content": "Réponds en français. 日本語も可。"},
        {"role": "user", "content": "Ça va? 你好 🌍 e\u0301 عربى \u200d👩‍💻"},
        {"role": "assistant", "content": "Très bien — 谢谢!", "reasoning_content": "用户在问候",
         "tool_calls": [call("c", "get_weather", {"location": "Zürich 🇨🇭", "note": ["ü", "∑"]})]},
        {"role": "tool", "content": "☀️ 21°C"}]},
    {"name": "content_as_parts", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "System part A. "}, {"type": "text", "text": "B."}]},
        {"role": "user", "content": [{"type": "text", "text": "Look: "},
                                     {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                                     "bare string item ",
                                     {"type": "text", "text": "end."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Seen."}]},
        {"role": "user", "content": [{"type": "text"}, {"text": "no type"}, 7, {"type": "text", "text": 5}]}]},
    {"name": "second_system_message_dropped", "messages": [
        {"role": "system", "content": "first"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "second"},
        {"role": "user", "content": "again"}]},
    {"name": "error_tool_without_call", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "tool", "content": "orphan"}]},
    {"name": "error_tool_after_plain_assistant", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [call("a", "f", {})]},
        {"role": "tool", "content": "ok"},
        {"role": "assistant", "content": "no calls"},
        {"role": "tool", "content": "orphan"}]},
]


def main():
    with open(TEMPLATE, encoding="utf-8") as f:
        template = f.read()
    out = []
    for case in CASES:
        entry = {"name": case["name"], "messages": case["messages"], "tools": case.get("tools"),
                 "options": case.get("options", {})}
        try:
            entry["expected"] = render(template, case)
        except jinja2.exceptions.TemplateError as e:
            entry["error"] = str(e)
        out.append(entry)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} cases to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
