#include "runtime/tooling/text_assets.h"

#include <unistd.h>

#include "support/file_util.h"

namespace mm::rt {

namespace {

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

Expected<ModelText> load_model_text(const mm_plan_info& plan, const std::string& weights,
                                    const std::string& tokenizer_dir, bool chat, std::ostream& err) {
  std::string dir = tokenizer_dir;
  if (dir.empty()) {
    if (weights == "random")
      return Error::bad_input(
          "text input needs a tokenizer, and --weights random has no model directory to take it "
          "from: pass --tokenizer DIR (a directory with tokenizer.json), or use --prompt-ids");
    dir = weights;
  }
  const std::string tok_name = *plan.tokenizer_file ? plan.tokenizer_file : "tokenizer.json";
  const std::string tok_path = join_path(dir, tok_name);
  if (!file_exists(tok_path))
    return Error::bad_input("tokenizer " + tok_path + " does not exist (" +
                            (tokenizer_dir.empty() ? "--weights" : "--tokenizer") +
                            " must be the model directory, with " + tok_name + ")");
  auto tok = text::Tokenizer::load(tok_path);
  if (!tok) return tok.error();
  if (tok->vocab_size() > plan.vocab_size)
    return Error::bad_input("tokenizer " + tok_path + " has ids up to " + std::to_string(tok->vocab_size() - 1) +
                            ", outside the vocabulary [0, " + std::to_string(plan.vocab_size) +
                            ") of the plan " + std::string(plan.path) + " (a tokenizer of another model?)");
  if (chat && *plan.chat_template_file) {
    const std::string tpl_path = join_path(dir, plan.chat_template_file);
    if (file_exists(tpl_path)) {
      auto tpl = read_regular_file(tpl_path, "chat template", kMaxChatTemplateFileBytes);
      if (!tpl) return tpl.error();
      // "]~b]" opens every role in the MiniMax-M2 format; another family's template lacks it.
      if (tpl->find("]~b]") == std::string::npos)
        return Error::bad_input("chat template " + tpl_path +
                                " is not a MiniMax-M2 template (no ']~b]' role marker); mmrun renders "
                                "only the MiniMax-M2 chat format");
    } else {
      err << "note: " << tpl_path << " not found; using the built-in MiniMax-M2 chat template\n";
    }
  }
  return ModelText{std::move(*tok), dir, tok_path};
}

}  // namespace mm::rt
