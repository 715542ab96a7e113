// The text side of a model, shared by `mmrun generate --prompt`, `mmrun chat` and `mmrun serve`:
// the tokenizer (the plan's tokenizer_file, normally tokenizer.json, in the model directory or in
// --tokenizer DIR, which --weights random needs) and, for chat, the check that the directory's chat
// template is the MiniMax-M2 format, the only one the C++ renderer (runtime/chat) reproduces.
#pragma once

#include <ostream>
#include <string>

#include "mm/mm_runtime.h"
#include "runtime/tokenizer/tokenizer.h"
#include "support/status.h"

namespace mm::rt {

struct ModelText {
  text::Tokenizer tokenizer;
  std::string dir;             // the directory the text files come from
  std::string tokenizer_path;
};

// `weights`: the --weights value (a directory or "random"); `tokenizer_dir`: --tokenizer (empty:
// the weights directory). With `chat`, a chat template recorded by the plan must be a MiniMax-M2
// template when it exists (a note on `err` when it does not: the built-in renderer is used).
Expected<ModelText> load_model_text(const mm_plan_info& plan, const std::string& weights,
                                    const std::string& tokenizer_dir, bool chat, std::ostream& err);

// dir + "/" + name (no doubled slash).
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace mm::rt
