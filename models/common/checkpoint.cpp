#include "models/common/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>
#include <string_view>
#include <unordered_map>

#include "support/file_util.h"
#include "support/json_util.h"
#include "models/common/model_config.h"
#include "support/safetensors.h"

namespace mm {
namespace {

namespace fs = std::filesystem;
using minimax_m2::HParams;
using minimax_m2::Role;
using minimax_m2::RoleKind;
using nlohmann::json;

constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleShard = "model.safetensors";
// Beyond this many problems the rest are usually consequences of the first ones.
constexpr size_t kMaxReportedErrors = 20;

std::string quote_name(const std::string& s) { return "\"" + s + "\""; }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string join_path(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// A shard name from the index must stay inside MODEL_DIR: a hostile index could otherwise make
// the loader open any file on the machine.
bool safe_shard_name(const std::string& name) {
  return !name.empty() && name.size() < 256 && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.front() != '.' &&
         name.find('\0') == std::string::npos;
}

// "model.layers.<n>.<rest>" -> n, or -1.
int64_t layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "model.layers.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return -1;
  int64_t n = 0;
  size_t i = kPrefix.size();
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    n = n * 10 + (name[i] - '0');
    if (n > (1 << 30)) return -1;
  }
  return (i < name.size() && name[i] == '.') ? n : -1;
}

// "model.layers.<L>.block_sparse_moe.experts.<e>.<rest>" -> e, or -1.
int64_t expert_of(std::string_view name) {
  constexpr std::string_view kMid = ".block_sparse_moe.experts.";
  size_t pos = name.find(kMid);
  if (pos == std::string_view::npos) return -1;
  size_t i = pos + kMid.size();
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  int64_t e = 0;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    e = e * 10 + (name[i] - '0');
    if (e > (1 << 30)) return -1;
  }
  return (i < name.size() && name[i] == '.') ? e : -1;
}

bool is_16bit(DType dt) { return dt == DType::BF16 || dt == DType::F16; }

// Collects the problems of the tensor table; the first kMaxReportedErrors are reported together.
class Problems {
 public:
  void add(std::string msg) {
    if (messages_.size() < kMaxReportedErrors) messages_.push_back(std::move(msg));
    ++count_;
  }
  bool empty() const { return count_ == 0; }
  Error error() const {
    std::string all;
    for (size_t i = 0; i < messages_.size(); ++i) all += (i ? "\n" : "") + messages_[i];
    if (count_ > messages_.size())
      all += "\n... and " + std::to_string(count_ - messages_.size()) + " more problems";
    return Error::bad_input(all);
  }

 private:
  std::vector<std::string> messages_;
  size_t count_ = 0;
};

// The quantization block: config.json["quantization_config"], else quantization_config.json
// (auto-round) or quantize_config.json (gptq). A separate file next to an embedded block must
// not contradict it.
Expected<QuantConfig> read_quant_config(const std::string& dir, const json& cfg) {
  std::optional<QuantConfig> primary;
  if (auto it = cfg.find("quantization_config"); it != cfg.end()) {
    auto qc = parse_quant_config(*it, "config.json: quantization_config");
    if (!qc) return qc.error();
    primary = std::move(*qc);
  }
  for (const char* file : {"quantization_config.json", "quantize_config.json"}) {
    std::string path = join_path(dir, file);
    if (!file_exists(path)) continue;
    auto j = read_json_object_file(path, file, kMaxConfigFileBytes);
    if (!j) return j.error();
    if (!primary) {
      auto qc = parse_quant_config(*j, file);
      if (!qc) return qc.error();
      primary = std::move(*qc);
      continue;
    }
    // Older GPTQ writers leave quant_method out of quantize_config.json: compare what is there.
    for (const char* key : {"bits", "group_size", "sym"}) {
      auto v = j->find(key);
      if (v == j->end()) continue;
      bool agrees =
          (std::string(key) == "sym")
              ? (v->is_boolean() && v->get<bool>() == primary->scheme.sym)
              : (v->is_number_integer() &&
                 v->get<int64_t>() == (std::string(key) == "bits" ? primary->scheme.bits
                                                                  : primary->scheme.group_size));
      if (!agrees)
        return Error::bad_input(std::string(file) + ": " + key + " " + v->dump() +
                                " contradicts config.json quantization_config");
    }
  }
  if (!primary)
    return Error::bad_input(
        "config.json: missing required key \"quantization_config\" (expected an auto-round or "
        "gptq W4A16 block; there is no quantization_config.json or quantize_config.json either)");
  return std::move(*primary);
}

// Index (or the single model.safetensors) and every shard header, cross-checked.
Status read_tensor_table(const std::string& dir, ModelDesc& d) {
  std::string index_path = join_path(dir, kIndexFile);
  if (!file_exists(index_path)) {
    if (!file_exists(join_path(dir, kSingleShard)))
      return Error::bad_input(std::string(kIndexFile) + ": file not found in " + dir +
                              " (and no single-file " + kSingleShard + ")");
    auto h = read_safetensors_header(join_path(dir, kSingleShard), kSingleShard);
    if (!h) return h.error();
    d.shard_files.push_back(kSingleShard);
    d.tensors = std::move(h->tensors);
    return Status::success();
  }

  auto index = read_json_object_file(index_path, kIndexFile, kMaxIndexFileBytes);
  if (!index) return index.error();
  auto wm_it = index->find("weight_map");
  if (wm_it == index->end())
    return Error::bad_input(std::string(kIndexFile) + ": missing required key \"weight_map\"");
  if (!wm_it->is_object())
    return Error::bad_input(std::string(kIndexFile) + ": \"weight_map\" must be an object, found " +
                            json_type_name(*wm_it));
  const json& wm = *wm_it;
  std::set<std::string> shard_set;
  std::unordered_map<std::string, size_t> tensors_per_shard;
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    if (!it->is_string())
      return Error::bad_input(std::string(kIndexFile) + ": weight_map[" + quote_name(it.key()) +
                              "] must be a shard file name, found " + json_type_name(*it));
    const std::string& file = it->get_ref<const std::string&>();
    if (!safe_shard_name(file))
      return Error::bad_input(std::string(kIndexFile) + ": weight_map[" + quote_name(it.key()) +
                              "] = " + quote_name(file) +
                              " is not a plain file name inside the model directory");
    shard_set.insert(file);
    ++tensors_per_shard[file];
  }
  if (shard_set.empty()) return Error::bad_input(std::string(kIndexFile) + ": weight_map is empty");
  d.shard_files.assign(shard_set.begin(), shard_set.end());

  // Every shard tensor must be listed in the index under this very shard, and once only.
  std::unordered_map<std::string, TensorInfo> found;
  found.reserve(wm.size());
  for (const std::string& file : d.shard_files) {
    const std::string shard_path = join_path(dir, file);
    if (!file_exists(shard_path))
      return Error::bad_input(file + ": shard file not found (" + shard_path + "; " + kIndexFile +
                              " maps " + std::to_string(tensors_per_shard[file]) +
                              " tensors to it)");
    auto h = read_safetensors_header(shard_path, file);
    if (!h) return h.error();
    for (TensorInfo& t : h->tensors) {
      auto listed = wm.find(t.name);
      if (listed == wm.end())
        return Error::bad_input(file + ": tensor " + quote_name(t.name) + " is not listed in " +
                                kIndexFile);
      const std::string& where = listed->get_ref<const std::string&>();
      if (where != file)
        return Error::bad_input(file + ": tensor " + quote_name(t.name) + " is mapped to " + where +
                                " by " + kIndexFile);
      std::string name = t.name;
      found.emplace(std::move(name), std::move(t));  // unique: the index maps a name once
    }
  }
  d.tensors.reserve(wm.size());
  for (auto it = wm.begin(); it != wm.end(); ++it) {
    auto t = found.find(it.key());
    if (t == found.end())
      return Error::bad_input(std::string(kIndexFile) + ": tensor " + quote_name(it.key()) +
                              " is mapped to " + it->get<std::string>() +
                              ", but that shard has no such tensor");
    d.tensors.push_back(std::move(t->second));
  }

  if (auto md = index->find("metadata"); md != index->end() && md->is_object()) {
    if (auto ts = md->find("total_size"); ts != md->end()) {
      uint64_t sum = 0;
      for (const TensorInfo& t : d.tensors) sum += t.nbytes;
      if (!ts->is_number_integer() || ts->get<int64_t>() < 0 ||
          static_cast<uint64_t>(ts->get<int64_t>()) != sum)
        d.warnings.push_back(std::string(kIndexFile) + ": metadata.total_size " + ts->dump() +
                             " differs from the " + std::to_string(sum) +
                             " bytes of tensor data in the shards");
    }
  }
  return Status::success();
}

struct TensorCheck {
  const ModelDesc& d;
  const QuantConfig& qc;
  Problems& problems;
  std::vector<bool>& used;
  std::vector<std::string> unexempted_16bit;  // 16-bit linears the config does not exempt

  const TensorInfo* take(const std::string& name) {
    auto it = d.by_name.find(name);
    if (it == d.by_name.end()) return nullptr;
    used[it->second] = true;
    return &d.tensors[it->second];
  }

  bool expect(const TensorInfo& t, std::initializer_list<DType> dtypes,
              const std::vector<int64_t>& shape, const std::string& why = "") {
    bool dtype_ok = std::find(dtypes.begin(), dtypes.end(), t.dtype) != dtypes.end();
    if (!dtype_ok) {
      std::string want;
      for (DType dt : dtypes) want += (want.empty() ? "" : " or ") + std::string(dtype_name(dt));
      problems.add(t.file + ": tensor " + quote_name(t.name) + " has dtype " +
                   std::string(dtype_name(t.dtype)) + ", expected " + want);
    }
    if (t.shape != shape) {
      problems.add(t.file + ": tensor " + quote_name(t.name) + " has shape " + shape_str(t.shape) +
                   ", expected " + shape_str(shape) + (why.empty() ? "" : " (" + why + ")"));
      return false;
    }
    return dtype_ok;
  }

  void missing(const std::string& name, const std::string& note = "") {
    problems.add("required tensor missing: " + quote_name(name) +
                 (note.empty() ? "" : " (" + note + ")"));
  }

  void check_linear(Role role, const std::string& prefix, const HParams& hp, DType act) {
    std::vector<int64_t> kn = minimax_m2::role_shape(role, hp);
    const int64_t K = kn[0], N = kn[1];
    const TensorInfo* qweight = take(prefix + ".qweight");
    const TensorInfo* weight = take(prefix + ".weight");
    if (qweight && weight) {
      problems.add(quote_name(prefix) + " has both .weight and .qweight (expected one of them)");
      return;
    }
    if (!qweight) {
      if (!weight) {
        missing(prefix + ".qweight", "or .weight for a 16-bit linear");
        return;
      }
      expect(*weight, {act}, {N, K}, "[out, in] of " + std::string(minimax_m2::role_name(role)));
      if (role != Role::ROUTER && !qc.exempt_modules.count(prefix))
        unexempted_16bit.push_back(prefix);
      return;
    }
    if (role == Role::ROUTER) {
      problems.add(quote_name(prefix + ".qweight") +
                   ": the router gate must stay 16-bit (expected " + prefix + ".weight)");
      return;
    }
    if (qc.exempt_modules.count(prefix)) {
      problems.add(quote_name(prefix + ".qweight") + ": quantization_config.extra_config marks " +
                   prefix + " as 16-bit, but it is stored quantized");
      return;
    }
    const int64_t g = qc.scheme.group_size;
    if (K % g != 0 || N % 8 != 0) {
      problems.add(quote_name(prefix) + ": in_features " + std::to_string(K) +
                   " must be a multiple of group_size " + std::to_string(g) + " and out_features " +
                   std::to_string(N) + " a multiple of 8 to be stored as 4-bit groups");
      return;
    }
    expect(*qweight, {DType::I32}, {K / 8, N}, "[in/8, out]");
    const TensorInfo* qzeros = take(prefix + ".qzeros");
    const TensorInfo* scales = take(prefix + ".scales");
    if (!qzeros)
      missing(prefix + ".qzeros", prefix + ".qweight exists");
    else
      expect(*qzeros, {DType::I32}, {K / g, N / 8}, "[in/group, out/8]");
    if (!scales)
      missing(prefix + ".scales", prefix + ".qweight exists");
    else
      expect(*scales, {DType::F16}, {K / g, N}, "[in/group, out]");
    // g_idx (gptq export, desc_act false) is k / group for every k: checked for shape, ignored.
    if (const TensorInfo* g_idx = take(prefix + ".g_idx"))
      expect(*g_idx, {DType::I32}, {K}, "[in]");
  }
};

// Experts per layer as the tensor names say, against num_local_experts.
Status check_expert_count(const ModelDesc& d) {
  const HParams& hp = d.hp;
  int64_t max_expert = -1, max_layer = -1;
  std::string example;
  for (const TensorInfo& t : d.tensors) {
    int64_t layer = layer_of(t.name);
    if (layer < 0 || layer >= hp.num_layers) continue;
    int64_t e = expert_of(t.name);
    if (e > max_expert) {
      max_expert = e;
      max_layer = layer;
      example = t.name;
    }
  }
  if (max_expert >= hp.num_experts)
    return Error::bad_input("config.json: num_local_experts is " + std::to_string(hp.num_experts) +
                            " but layer " + std::to_string(max_layer) + " has expert " +
                            std::to_string(max_expert) + " (tensor " + quote_name(example) + ")");
  if (max_expert >= 0 && max_expert + 1 < hp.num_experts)
    return Error::bad_input("config.json: num_local_experts is " + std::to_string(hp.num_experts) +
                            " but the checkpoint holds experts 0.." + std::to_string(max_expert) +
                            " only (no tensor of model.layers.*.block_sparse_moe.experts." +
                            std::to_string(max_expert + 1) + ")");
  return Status::success();
}

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    try {
      // GPTQModel applies these with Python's re.match: anchored at the start.
      if (std::regex_search(name, std::regex(p), std::regex_constants::match_continuous))
        return true;
    } catch (const std::regex_error&) {
      // A pattern std::regex cannot read only loses the "expected 16-bit" hint; not an error.
    }
  }
  return false;
}

Status check_tensors(ModelDesc& d, const QuantConfig& qc) {
  const HParams& hp = d.hp;
  Status experts = check_expert_count(d);
  if (!experts) return experts;

  const TensorInfo* embed = d.find(minimax_m2::tensor_prefix(Role::EMBED, -1, -1) + ".weight");
  if (embed) {
    if (!is_16bit(embed->dtype))
      return Error::bad_input(embed->file + ": tensor " + quote_name(embed->name) + " has dtype " +
                              std::string(dtype_name(embed->dtype)) + ", expected BF16 or F16");
    d.activation_dtype = embed->dtype;
  }

  Problems problems;
  std::vector<bool> used(d.tensors.size(), false);
  TensorCheck tc{d, qc, problems, used, {}};
  const DType act = d.activation_dtype;
  for (int r = 0; r < static_cast<int>(Role::COUNT); ++r) {
    const Role role = static_cast<Role>(r);
    const minimax_m2::RoleInfo& info = minimax_m2::role_info(role);
    const int64_t layers = info.per_layer ? hp.num_layers : 1;
    const int64_t experts_n = info.per_expert ? hp.num_experts : 1;
    const std::vector<int64_t> shape = minimax_m2::role_shape(role, hp);
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t e = 0; e < experts_n; ++e) {
        std::string prefix =
            minimax_m2::tensor_prefix(role, info.per_layer ? l : -1, info.per_expert ? e : -1);
        if (info.kind == RoleKind::LINEAR) {
          tc.check_linear(role, prefix, hp, act);
          continue;
        }
        std::string name = role == Role::ROUTER_BIAS ? prefix : prefix + ".weight";
        const TensorInfo* t = tc.take(name);
        if (!t) {
          tc.missing(name);
          continue;
        }
        if (role == Role::ROUTER_BIAS) {
          if (t->shape.size() == 1 && t->shape[0] != hp.num_experts) {
            problems.add(
                t->file + ": tensor " + quote_name(name) + " has " + std::to_string(t->shape[0]) +
                " entries, but config.json num_local_experts is " + std::to_string(hp.num_experts));
            continue;
          }
          tc.expect(*t, {DType::F32, DType::BF16, DType::F16}, shape, "one bias per expert");
        } else {
          tc.expect(*t, {act}, shape);
        }
      }
    }
  }
  if (!problems.empty()) return problems.error();

  // What is left: MTP modules (never published, spec 7) are ignored, the rest reported.
  size_t mtp = 0;
  std::vector<std::string> unknown;
  for (size_t i = 0; i < d.tensors.size(); ++i) {
    if (used[i]) continue;
    const std::string& name = d.tensors[i].name;
    if (layer_of(name) >= hp.num_layers || name.find("mtp") != std::string::npos) {
      ++mtp;
      continue;
    }
    unknown.push_back(name);
  }
  if (mtp)
    d.warnings.push_back("ignored " + std::to_string(mtp) + " MTP tensors (model.layers." +
                         std::to_string(hp.num_layers) + "+ or named *mtp*)");
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 5; ++i) list += (i ? ", " : "") + unknown[i];
    d.warnings.push_back(std::to_string(unknown.size()) +
                         " tensors are not part of MiniMax-M2 and are ignored: " + list +
                         (unknown.size() > 5 ? ", ..." : ""));
  }
  size_t unexpected = 0;
  std::string first;
  for (const std::string& prefix : tc.unexempted_16bit) {
    if (matches_any(prefix, qc.skip_patterns)) continue;
    if (unexpected++ == 0) first = prefix;
  }
  if (unexpected)
    d.warnings.push_back(std::to_string(unexpected) +
                         " linears are stored 16-bit although quantization_config does not "
                         "exempt them (first: " +
                         first + ")");
  return Status::success();
}

}  // namespace

const TensorInfo* ModelDesc::find(const std::string& name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : &tensors[it->second];
}

LinearInfo ModelDesc::linear(Role role, int64_t layer, int64_t expert) const {
  LinearInfo li;
  std::vector<int64_t> kn = minimax_m2::role_shape(role, hp);
  if (kn.size() == 2) {
    li.in_features = kn[0];
    li.out_features = kn[1];
  }
  const std::string prefix = minimax_m2::tensor_prefix(role, layer, expert);
  auto index = [&](const char* suffix) -> int32_t {
    auto it = by_name.find(prefix + suffix);
    return it == by_name.end() ? -1 : it->second;
  };
  li.weight = index(".weight");
  li.qweight = index(".qweight");
  li.qzeros = index(".qzeros");
  li.scales = index(".scales");
  li.g_idx = index(".g_idx");
  li.quantized = li.qweight >= 0;
  return li;
}

Expected<std::vector<TensorInfo>> read_checkpoint_tensors(const std::string& model_dir) {
  ModelDesc d;
  d.dir = model_dir;
  if (Status st = read_tensor_table(model_dir, d); !st) return st.error();
  return std::move(d.tensors);
}

Expected<ModelDesc> read_checkpoint(const std::string& model_dir) {
  ModelDesc d;
  d.dir = model_dir;
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec))
    return Error::bad_input(model_dir +
                            ": not a directory (expected a checkpoint directory with "
                            "config.json and safetensors shards)");

  auto cfg = read_json_object_file(join_path(model_dir, "config.json"), "config.json", kMaxConfigFileBytes);
  if (!cfg) return cfg.error();
  auto hp = parse_model_config(*cfg, "config.json");
  if (!hp) return hp.error();
  d.hp = std::move(*hp);
  auto qc = read_quant_config(model_dir, *cfg);
  if (!qc) return qc.error();
  d.quant = qc->scheme;

  const std::string gen_path = join_path(model_dir, "generation_config.json");
  if (file_exists(gen_path)) {
    auto gen = read_json_object_file(gen_path, "generation_config.json", kMaxConfigFileBytes);
    if (!gen) return gen.error();
    Status s = parse_generation_config(*gen, "generation_config.json", d.hp);
    if (!s) return s.error();
  }
  if (file_exists(join_path(model_dir, "tokenizer.json"))) d.tokenizer_file = "tokenizer.json";
  if (file_exists(join_path(model_dir, "chat_template.jinja")))
    d.chat_template_file = "chat_template.jinja";

  Status table = read_tensor_table(model_dir, d);
  if (!table) return table.error();
  if (d.tensors.size() > static_cast<size_t>(INT32_MAX))
    return Error::bad_input(model_dir + ": too many tensors");
  for (size_t i = 0; i < d.tensors.size(); ++i) {
    if (!d.by_name.emplace(d.tensors[i].name, static_cast<int32_t>(i)).second)
      return Error::bad_input(d.tensors[i].file + ": duplicate tensor " +
                              quote_name(d.tensors[i].name));
  }
  Status tensors = check_tensors(d, *qc);
  if (!tensors) return tensors.error();
  return d;
}

}  // namespace mm
