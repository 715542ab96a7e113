#include "models/common/check_report.h"

#include <cstdio>
#include <exception>
#include <new>
#include <sstream>

#include "models/common/checkpoint.h"

namespace mm {
namespace {

// Categories of the summary's byte breakdown, decided by tensor name so that MTP and unknown
// tensors (which have no role) are still counted.
enum Category { EXPERTS, ATTENTION, EMBED_HEAD, OTHER, NUM_CATEGORIES };
constexpr const char* kCategoryNames[NUM_CATEGORIES] = {"experts", "attention", "embeddings+head",
                                                        "other"};

Category category_of(const std::string& name) {
  if (name.find(".block_sparse_moe.experts.") != std::string::npos) return EXPERTS;
  if (name.find(".self_attn.") != std::string::npos) return ATTENTION;
  if (name.rfind("model.embed_tokens.", 0) == 0 || name.rfind("lm_head.", 0) == 0)
    return EMBED_HEAD;
  return OTHER;
}

std::string human_bytes(uint64_t bytes) {
  char buf[64];
  if (bytes >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
  else if (bytes >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1ull << 20));
  else if (bytes >= (1ull << 10))
    std::snprintf(buf, sizeof buf, "%.2f KiB", static_cast<double>(bytes) / (1ull << 10));
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return std::to_string(bytes) + " bytes (" + buf + ")";
}

// One "mmc check: error: " prefix per line of a multi-problem message.
void print_error(std::ostream& err, const std::string& message) {
  std::istringstream lines(message);
  std::string line;
  while (std::getline(lines, line)) err << "mmc check: error: " << line << "\n";
}

int check_impl(const std::string& model_dir, std::ostream& out, std::ostream& err) {
  auto desc = read_checkpoint(model_dir);
  if (!desc) {
    print_error(err, desc.error().message);
    return desc.error().exit_code();
  }
  const ModelDesc& d = *desc;
  const minimax_m2::HParams& hp = d.hp;

  uint64_t bytes[NUM_CATEGORIES] = {};
  uint64_t total = 0;
  for (const TensorInfo& t : d.tensors) {
    bytes[category_of(t.name)] += t.nbytes;
    total += t.nbytes;
  }

  const QuantScheme& q = d.quant;
  std::string method = q.method == QuantMethod::AUTO_ROUND
                           ? "auto-round (packing " + q.packing_format + ")"
                           : std::string("gptq (desc_act false)");
  out << "checkpoint:   " << model_dir << "\n";
  out << "model:        minimax_m2, " << hp.num_layers << " layers, hidden " << hp.hidden_size
      << ", vocab " << hp.vocab_size << ", max positions " << hp.max_position_embeddings << "\n";
  out << "attention:    " << hp.num_heads << " heads, " << hp.num_kv_heads << " kv heads, head_dim "
      << hp.head_dim << ", rotary_dim " << hp.rotary_dim << ", rope_theta " << hp.rope_theta
      << "\n";
  out << "experts:      " << hp.num_experts << " per layer, top-" << hp.top_k << ", intermediate "
      << hp.intermediate_size << "\n";
  out << "quantization: " << method << ", " << q.bits << "-bit, group " << q.group_size
      << (q.sym ? ", sym" : ", asym") << "; 16-bit tensors " << dtype_name(d.activation_dtype)
      << "\n";
  out << "tensors:      " << d.tensors.size() << " in " << d.shard_files.size() << " shard"
      << (d.shard_files.size() == 1 ? "" : "s") << ", " << human_bytes(total) << "\n";
  for (int c = 0; c < NUM_CATEGORIES; ++c) {
    std::string label = std::string(kCategoryNames[c]) + ":";
    out << "  " << label << std::string(label.size() < 18 ? 18 - label.size() : 1, ' ')
        << human_bytes(bytes[c]) << "\n";
  }
  if (!d.tokenizer_file.empty()) out << "tokenizer:    " << d.tokenizer_file << "\n";
  if (!d.chat_template_file.empty()) out << "chat template: " << d.chat_template_file << "\n";
  out << "warnings:     " << d.warnings.size() << "\n";
  for (const std::string& w : d.warnings) out << "  warning: " << w << "\n";
  out << "OK\n";
  return 0;
}

}  // namespace

int check_command(const std::string& model_dir, std::ostream& out, std::ostream& err) {
  // The reader reports bad input as mm::Error; anything thrown is our bug or the machine's
  // (allocation failure), exit 3 per design.md section 6.
  try {
    return check_impl(model_dir, out, err);
  } catch (const std::bad_alloc&) {
    err << "mmc check: internal error: out of memory while reading " << model_dir << "\n";
  } catch (const std::exception& e) {
    err << "mmc check: internal error while reading " << model_dir << ": " << e.what() << "\n";
  }
  return 3;
}

}  // namespace mm
