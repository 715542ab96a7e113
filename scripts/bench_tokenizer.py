#!/usr/bin/env python3
"""Writes a tokenizer.json with the full MiniMax-M2 vocabulary size for benchmarks with random weights.

Usage: bench_tokenizer.py SRC_TOKENIZER_JSON OUT_DIR
  SRC: test/inputs/tokenizer/minimax-full/tokenizer.json (2000 byte-level BPE ids, 1744 merges, the
       MiniMax special tokens at their real ids 200000..200053).
  OUT_DIR/tokenizer.json: the same tokenizer with every free id below 200000 filled by a vocabulary
       entry (a space and a few letters, e.g. " qzk"). No merge produces them, so encoding is
       unchanged; they only make decoding total: a model with random weights samples ids over the
       whole 200,064-row vocabulary, and with the 2000-id fixture nearly all of them would decode to
       nothing, so a streaming benchmark would see almost no text. With the checkpoint's real
       tokenizer.json this stand-in is not needed.
Standard library only.
"""
import json
import os
import sys

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def word(n):
    s = ""
    n += 1
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = LETTERS[r] + s
    return s


def main():
    src, out = sys.argv[1], sys.argv[2]
    t = json.load(open(src, encoding="utf-8"))
    vocab = t["model"]["vocab"]
    used_ids = set(vocab.values())
    first_special = min(a["id"] for a in t["added_tokens"])
    n = 0
    for i in range(first_special):
        if i in used_ids:
            continue
        # "\u0120" is the byte-level form of a space (GPT-2 byte-to-unicode map).
        key = "\u0120" + word(n)
        while key in vocab:
            n += 1
            key = "\u0120" + word(n)
        vocab[key] = i
        n += 1
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(t, f, ensure_ascii=False)
    print("wrote %s: %d vocabulary entries, ids up to %d" % (os.path.join(out, "tokenizer.json"), len(vocab),
                                                           max(vocab.values())))


if __name__ == "__main__":
    main()
