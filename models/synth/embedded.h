// Files mm-synth copies into every checkpoint, compiled into the binary (embedded.cpp pulls them
// in with the assembler's .incbin), so mm-synth works without the source tree.
#pragma once

#include <string_view>

namespace mm::synth {

// test/inputs/tokenizer/minimax-tiny/tokenizer.json: MiniMax special tokens at 2000 + (id - 200000).
std::string_view tiny_tokenizer_json();
// test/inputs/tokenizer/minimax-full/tokenizer.json: the same vocabulary, special tokens at 200000+.
std::string_view full_tokenizer_json();
// models/minimax_m2/chat_template.jinja.
std::string_view chat_template_jinja();

}  // namespace mm::synth
