#!/usr/bin/env python3
"""Writes goldens.json: for every fixture tokenizer.json and every corpus text, the ids Hugging Face
`tokenizers` produces (add_special_tokens=False; and with encode_special_tokens=True, i.e. special
tokens treated as plain text) and its decodes (skip_special_tokens False / True).

Run after make_tokenizers.py:  python3 make_goldens.py   (tested with tokenizers 0.23.3)
"""
import json
import os

import tokenizers
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = ["minimax-tiny", "minimax-full", "gpt2-variant", "llama3-variant", "nfc-variant"]

CORPUS = [
    "",
    " ",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog. It's 5 o'clock; they'll say we've done what I'd do.",
    "SHOUTING CONTRACTIONS: I'M HERE, YOU'RE THERE, IT'S FINE, WE'LL SEE, THEY'VE GONE, HE'D KNOW. don'T.",
    "camelCaseIdentifier XMLHttpRequest snake_case_name __dunder__ getHTTPResponseCode2FA",
    "def tokenize(text: str) -> list[int]:\n    ids = []\n    for piece in re.findall(PATTERN, text):\n        ids.extend(bpe(piece))\n    return ids\n",
    "int main(int argc, char** argv) {\n\tstd::vector<int32_t> v{1, 2, 3};\n\treturn v.size() > 2 ? 0 : 1; // done\n}\n",
    "path/to/file.txt and C:\\Windows\\System32 and https://example.com/a/b?c=d&e=f#g //comment\n/* block */",
    "{\"key\": \"value\", \"list\": [1, 2.5, -3e10], \"nested\": {\"ok\": true, \"none\": null}}",
    "我们今天去公园散步，天气非常好。人工智能正在改变世界。",
    "東京は日本の首都です。ひらがな、カタカナ、漢字。한국어 문장입니다. ｆｕｌｌｗｉｄｔｈ　ＡＢＣ",
    "Emoji: 😀😂🎉 👍🏽 👨‍👩‍👧‍👦 family, 🇫🇷🇯🇵 flags, ❤️ heart, 🚀✨🤖, rare 🫠🪿",
    "Café naïve façade résumé jalapeño Ångström Zürich São Paulo Kraków İstanbul ŒUVRE straße",
    "Combining: e\u0301 a\u0308 n\u0303 o\u0302 Z\u0351\u0300\u0301\u0302 q\u0307\u0323 decomposed vs composed é ä ñ ô",
    "Devanagari नमस्ते दुनिया, Thai สวัสดีครับ, Arabic مرحبا بالعالم, Hebrew שָׁלוֹם",
    "Whitespace:   three spaces,\ttab,\t\ttwo tabs, trailing   \n\n\nthree newlines\n  \n  \nspaced newlines   ",
    "\r\nWindows\r\nline\r\n\r\nendings\r\n",
    "\n\n\n\n",
    "   leading spaces and trailing   ",
    "nbsp\u00a0here, en-quad\u2000there, ideographic\u3000space, line-sep\u2028para-sep\u2029end\u0085nel",
    "Digits: 1 12 123 1234 12345 1234567890123456789012345 3.14159265358979 1,000,000 ٣٤٥ ५६७ ⅓ ²",
    "Punctuation!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) ... ¿¡ «» „“ ‘curly’ “quotes”",
    "]~!b[]~b]system\nYou are a helpful assistant.[e~[\n]~b]user\nWhat is 2+2?[e~[\n]~b]ai\n<think>\n",
    "<think>\nThe user asks 2+2.\n</think>\n\n4<minimax:tool_call>\n<invoke name=\"calc\">\n</invoke>\n</minimax:tool_call>[e~[",
    "text   <think>   spaced   </think>   after",
    "a<fim_prefix>b <fim_prefix> c<fim_prefix> <fim_prefix>d <fim_prefix>",
    "x <reponame> y<reponame>z  <reponame>",
    "]!p~[]!p~[]!d~[ ]~b] [e~[[e~[ partial ]~b and [e~ and <think and </minimax:tool_call",
    "<fim_middle><fim_suffix><jupyter_code>print(1)<jupyter_output>1<empty_output>]<]image[>[]<]vision pad[>[",
    "Ελληνικά: Η γρήγορη καφέ αλεπού. Русский: Съешь же ещё этих мягких булок. Ǆ ǅ ǆ ᾈ titlecase",
    "Mixed 中文English混合text with数字123和emoji😀结尾",
    "A long word: pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
    "zero\u200bwidth\u200cjoiner\u200dmark\ufeffbom \u00ad soft hyphen",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'Ve 'LL ''' 'x",
    "    indented\n        more\n\tmixed \t \n",
    "NFC: A\u030a \u212b \u1e0b\u0323 \u0071\u0307\u0323 \u1100\u1161\u11a8 \u0344 \u0958 \u2126 \ufb01 e\u0301<think>e\u0301",
    "Vietnamese: Tie\u0302\u0301ng Vie\u0323\u0302t co\u0301 da\u0302\u0301u. Ti\u1ebfng Vi\u1ec7t",
    # Pre-tokens longer than 48 bytes take the heap merge path of the C++ BPE.
    "Long: " + "thequickbrownfoxjumpsoverthelazydog" * 8 + " " + "😀🎉🤖✨" * 12 + " " + " " * 150 + "x",
    "indistinguishablenessesantidisestablishmentarianismsupercalifragilisticexpialidocious",
    # Case-insensitive contractions under Unicode case folding: long s, Kelvin sign, dotted I.
    "it'\u017f and he'\u212a and we'\u0130ll and x'\u1e9e and 'sS 'ẞ",
]


def main():
    out = {"tokenizers_version": tokenizers.__version__, "corpus": CORPUS, "fixtures": {}}
    for name in FIXTURES:
        path = os.path.join(HERE, name, "tokenizer.json")
        tok = Tokenizer.from_file(path)
        plain = Tokenizer.from_file(path)
        plain.encode_special_tokens = True
        cases = []
        for text in CORPUS:
            ids = tok.encode(text, add_special_tokens=False).ids
            cases.append({
                "ids": ids,
                "ids_no_special": plain.encode(text, add_special_tokens=False).ids,
                "decode": tok.decode(ids, skip_special_tokens=False),
                "decode_skip": tok.decode(ids, skip_special_tokens=True),
            })
        out["fixtures"][name] = cases
    with open(os.path.join(HERE, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print("wrote goldens.json")


if __name__ == "__main__":
    main()
