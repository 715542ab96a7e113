#!/usr/bin/env python3
"""Builds the small tokenizer.json fixtures used by the runtime tokenizer tests and by mm-synth.

All BPE models are trained with Hugging Face `tokenizers` on the corpus embedded below (plus
deterministic pseudo-words so the trainer always finds enough merges for exactly 2000 BPE ids:
256 byte tokens + 1744 merges). Outputs, next to this script:

  minimax-tiny/tokenizer.json     MiniMax-M2 pipeline (Split o200k-style regex, Isolated, then
                                  ByteLevel without regex), added tokens at 2000 + (real_id - 200000)
  minimax-full/tokenizer.json     same BPE, added tokens at their real ids 200000..200053 (post-edited
                                  JSON; verified to load and encode with `tokenizers`)
  gpt2-variant/tokenizer.json     a different pipeline for generality: normalizer Sequence[Replace,
                                  Replace(regex), Prepend], ByteLevel(add_prefix_space=True,
                                  use_regex=True) pre-tokenizer, merges written as "a b" strings,
                                  added tokens with lstrip/rstrip/single_word/normalized flags
  llama3-variant/tokenizer.json   Split with the Llama-3 regex (behavior Isolated, invert false)
                                  + ByteLevel, BPE ignore_merges=true, merges as [a, b] pairs
  nfc-variant/tokenizer.json      minimax-tiny with an NFC normalizer and two normalized added tokens

Run: python3 make_tokenizers.py   (needs `pip install tokenizers`; tested with 0.23.x)
"""
import json
import os
import random
import re

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import AddedToken

HERE = os.path.dirname(os.path.abspath(__file__))
BPE_VOCAB = 2000

# o200k / GPT-4o-style split used by MiniMax-M2 (spec 5.1; llama.cpp GPT4O/MINIMAX_M2 copy).
MINIMAX_REGEX = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# (offset from 200000, content). Known names from spec 5.1; the others are plausible
# FIM / repository / notebook / media markers (the real M2.7 names are not needed by any test).
ADDED = [
    (0, "]!p~["), (1, "<fim_prefix>"), (2, "<fim_middle>"), (3, "<fim_suffix>"), (4, "<fim_pad>"),
    (5, "<reponame>"), (6, "<filename>"), (7, "<gh_stars>"), (8, "<issue_start>"),
    (9, "<issue_comment>"), (10, "<issue_closed>"), (11, "<jupyter_start>"), (12, "<jupyter_text>"),
    (13, "<jupyter_code>"), (14, "<jupyter_output>"), (15, "<empty_output>"), (16, "<commit_before>"),
    (17, "<commit_msg>"), (18, "<commit_after>"), (19, "]~b]"), (20, "[e~["), (21, "]!d~["),
    (22, "<function_call>"), (23, "<code_interpreter>"), (24, "]<]speech[>["), (25, "]<]image[>["),
    (26, "]<]video[>["), (27, "]<]start of speech[>["), (28, "]<]end of speech[>["),
    (29, "]<]start of image[>["), (30, "]<]end of image[>["), (31, "]<]start of video[>["),
    (32, "]<]end of video[>["), (33, "]<]vision pad[>["), (34, "]~!b["), (35, "<jupyter_error>"),
    (36, "<add_file>"), (37, "<delete_file>"), (38, "<rename_file>"), (39, "<edit_file>"),
    (40, "<commit_message>"), (41, "<empty_source_file>"), (42, "<repo_struct>"),
    (43, "<code_context>"), (44, "<file_content>"), (45, "<source_files>"), (46, "<pr_start>"),
    (47, "<review_comment>"), (48, "<filepath>"), (49, "<file_sep>"), (50, "<think>"),
    (51, "</think>"), (52, "<minimax:tool_call>"), (53, "</minimax:tool_call>"),
]
# Reasoning and tool-call markers are added but not "special" (spec 5.1 note): decoding with
# skip_special_tokens keeps them, so the chat layer can still see them.
NOT_SPECIAL = {"<think>", "</think>", "<minimax:tool_call>", "</minimax:tool_call>"}

CORPUS = r"""
The quick brown fox jumps over the lazy dog. It's a sentence that we'll use, and they've seen it; I'm sure you'd agree.
Mixture-of-experts models route every token to a few experts; the router picks the top-k by score.
In 2024 the team shipped 3 releases, 12,345 downloads and 0.5% regressions on 2025-01-31 at 10:45.
HELLO WORLD! This Is Title Case. camelCaseIdentifier and snake_case_identifier and SCREAMING_CASE.
def tokenize(text: str) -> list[int]:
    ids = []
    for piece in re.findall(PATTERN, text):
        ids.extend(bpe(piece))
    return ids

int main(int argc, char** argv) {
  std::vector<int32_t> ids = tok.encode("hello");  // comment
  for (size_t i = 0; i < ids.size(); ++i) printf("%d\n", ids[i]);
  return 0;
}
{"key": "value", "list": [1, 2, 3], "nested": {"a": true, "b": null}}
<div class="note">HTML &amp; entities</div>  https://example.com/path?q=1&r=2#frag
SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name ORDER BY 2 DESC;
Café, naïve, façade, résumé, coöperate, jalapeño, Ångström, Zürich, São Paulo, Kraków, İstanbul.
Le cœur a ses raisons que la raison ne connaît point. Ça va très bien, merci beaucoup !
Der Straßenbahnfahrer öffnete die Tür. Übermäßig große Äpfel schmecken süß.
El niño comió una manzana. ¿Dónde está la biblioteca? ¡Qué día más bonito!
Москва — столица России. Привет, как дела? Съешь же ещё этих мягких французских булок.
Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.
我们今天去公园散步，天气非常好。人工智能正在改变世界。机器学习模型需要大量数据。
東京は日本の首都です。ひらがなとカタカナと漢字を使います。今日はいい天気ですね。
한국어는 한글로 씁니다. 안녕하세요, 만나서 반갑습니다.
مرحبا بالعالم. اللغة العربية جميلة.  שלום עולם.  नमस्ते दुनिया।  สวัสดีครับ
Emoji: 😀 😂 🎉 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🚀✨ 🤖 and symbols ∑ ∫ √ ≤ ≥ ≠ → ← ★ ☃ € £ ¥ ₿ © ®
Combining marks: e\u0301 a\u0308 n\u0303 o\u0302 — decomposed é ä ñ ô versus composed é ä ñ ô.
    indented line with trailing spaces   
\t\ttabs\tand\r\nwindows line endings\r\n\n\n\nmany newlines
"""

SYLLABLES = ["ka", "to", "ri", "ne", "su", "mo", "la", "pe", "zi", "qu", "th", "ch", "ar", "en",
             "or", "is", "un", "ex", "st", "pr", "ga", "do", "vi", "bo", "ly", "ing", "ed", "tion"]


def corpus_lines():
    # Only \uXXXX, \t, \r\n and the \n run of the last line are escapes in CORPUS (code lines keep their literal "\n").
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), CORPUS)
    text = text.replace("\\t", "\t").replace("\\r\\n", "\r\n").replace("\\n\\n\\n", "\n\n\n")
    for _ in range(20):
        yield text
    rng = random.Random(20240531)
    # Pseudo-words in every case style + numbers, so the trainer has pairs left to merge.
    for _ in range(4000):
        words = []
        for _ in range(rng.randint(3, 12)):
            w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
            style = rng.random()
            if style < 0.15:
                w = w.capitalize()
            elif style < 0.2:
                w = w.upper()
            elif style < 0.25:
                w = str(rng.randint(0, 99999))
            words.append(w)
        yield " ".join(words) + rng.choice([".", ",", "!", "?", ";", ""]) + "\n"


def train(pre_tokenizer, normalizer=None, **bpe_kwargs):
    tok = Tokenizer(models.BPE(**bpe_kwargs))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, min_frequency=2)
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    size = tok.get_vocab_size()
    if size != BPE_VOCAB:
        raise SystemExit(f"trainer produced {size} BPE ids, expected {BPE_VOCAB}")
    return tok


def add_minimax_tokens(tok, flags=None):
    for off, content in ADDED:
        kw = dict(special=content not in NOT_SPECIAL, normalized=False, lstrip=False, rstrip=False,
                  single_word=False)
        if flags and content in flags:
            kw.update(flags[content])
        tok.add_tokens([AddedToken(content, **kw)])
    return tok


def write(obj_or_tok, rel):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = obj_or_tok if isinstance(obj_or_tok, str) else obj_or_tok.to_str(pretty=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        if not text.endswith("\n"):
            f.write("\n")
    size = os.path.getsize(path)
    assert size < 2 * 1024 * 1024, f"{rel} is {size} bytes"
    return path


def check_ids(tok, expect):
    for content, want in expect.items():
        got = tok.token_to_id(content)
        assert got == want, f"{content}: id {got}, expected {want}"


def main():
    minimax_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(MINIMAX_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tiny = add_minimax_tokens(train(minimax_pre))
    check_ids(tiny, {c: 2000 + off for off, c in ADDED})
    tiny_json = tiny.to_str(pretty=True)
    write(tiny_json, "minimax-tiny/tokenizer.json")

    # minimax-full: same JSON, added tokens moved to their real ids (the vocab gap 2000..199999
    # is what the real checkpoint has between BPE ids and added tokens too).
    full = json.loads(tiny_json)
    # `tokenizers` gives an added token the model's id for its content if the model has one,
    # else the next free id, so the gap only survives with the tokens in model.vocab too (as in
    # real checkpoints, whose BPE vocab ends at 199999 and whose added tokens are in both places).
    for entry in full["added_tokens"]:
        entry["id"] = entry["id"] - 2000 + 200000
        full["model"]["vocab"][entry["content"]] = entry["id"]
    full_json = json.dumps(full, ensure_ascii=False, indent=2)
    full_tok = Tokenizer.from_str(full_json)
    check_ids(full_tok, {c: 200000 + off for off, c in ADDED})
    probe = "]~!b[]~b]user\nhi[e~[\n<think>\n"
    got = full_tok.encode(probe, add_special_tokens=False).ids
    assert got[:2] == [200034, 200019] and 200020 in got and 200050 in got, got
    assert full_tok.decode(got, skip_special_tokens=False) == probe
    write(full_json, "minimax-full/tokenizer.json")

    # gpt2-variant: normalizer + prefix space + GPT-2 regex inside ByteLevel; "a b" merges.
    norm = normalizers.Sequence([
        normalizers.Replace("\r\n", "\n"),
        normalizers.Replace(Regex(r"[\u2018\u2019]"), "'"),
        normalizers.Prepend("\u2581"),
    ])
    gpt2 = train(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), normalizer=norm)
    flags = {
        "<think>": dict(lstrip=True, rstrip=True),
        "</think>": dict(rstrip=True, normalized=True),
        "<fim_prefix>": dict(single_word=True),
        "<reponame>": dict(lstrip=True, single_word=True),
        "]~b]": dict(normalized=True),
    }
    add_minimax_tokens(gpt2, flags)
    g = json.loads(gpt2.to_str())
    g["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in g["model"]["merges"]]
    g_json = json.dumps(g, ensure_ascii=False, indent=1)
    Tokenizer.from_str(g_json).encode("check it loads")
    write(g_json, "gpt2-variant/tokenizer.json")

    # llama3-variant: a different Split regex and ignore_merges.
    llama_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    llama = train(llama_pre, ignore_merges=True)
    add_minimax_tokens(llama)
    l = json.loads(llama.to_str())
    l["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in l["model"]["merges"]]
    l_json = json.dumps(l, ensure_ascii=False, indent=1)
    Tokenizer.from_str(l_json).encode("check it loads")
    write(l_json, "llama3-variant/tokenizer.json")
    # nfc-variant: the minimax-tiny BPE behind an NFC normalizer (no retraining needed), with
    # two added tokens matched after normalization.
    n = json.loads(tiny_json)
    n["normalizer"] = {"type": "NFC"}
    for entry in n["added_tokens"]:
        if entry["content"] in ("<think>", "<fim_middle>"):
            entry["normalized"] = True
    n_json = json.dumps(n, ensure_ascii=False, indent=1)
    Tokenizer.from_str(n_json).encode("check it loads")
    write(n_json, "nfc-variant/tokenizer.json")
    print("wrote minimax-tiny, minimax-full, gpt2-variant, llama3-variant, nfc-variant")


if __name__ == "__main__":
    main()
