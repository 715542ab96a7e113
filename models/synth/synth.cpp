#include "models/synth/synth.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/safetensors_writer.h"
#include "models/synth/embedded.h"
#include "models/synth/int4.h"

namespace mm::synth {
namespace {

namespace fs = std::filesystem;
using minimax_m2::HParams;
using minimax_m2::Role;
using minimax_m2::RoleKind;
using ojson = nlohmann::ordered_json;

struct PresetDef {
  const char* name;
  HParams hp;
  bool full_vocab_tokenizer;
};

HParams tiny_hparams() {
  HParams hp;
  hp.hidden_size = 256;
  hp.intermediate_size = 256;
  hp.num_layers = 2;
  hp.num_heads = 4;
  hp.num_kv_heads = 2;
  hp.head_dim = 64;
  hp.rotary_dim = 32;
  hp.num_experts = 8;
  hp.top_k = 2;
  hp.vocab_size = 2112;
  hp.max_position_embeddings = 4096;
  hp.rope_theta = 5000000.0;
  hp.rms_norm_eps = 1e-6;
  // The tiny tokenizer places MiniMax id 200000 + x at 2000 + x (BOS ]~!b[ 200034, EOS [e~[ 200020).
  hp.bos_token_id = 2034;
  hp.eos_token_ids = {2020};
  return hp;
}

HParams mid_hparams() {
  HParams hp = tiny_hparams();
  hp.hidden_size = 3072;
  hp.intermediate_size = 1536;
  hp.num_heads = 48;
  hp.num_kv_heads = 8;
  hp.head_dim = 128;
  hp.rotary_dim = 64;
  hp.top_k = 4;
  return hp;
}

// Spec sections 1.1 and 1.4: MiniMax-M2.7 REAP-172B-A10B.
HParams full_hparams() {
  HParams hp;
  hp.hidden_size = 3072;
  hp.intermediate_size = 1536;
  hp.num_layers = 62;
  hp.num_heads = 48;
  hp.num_kv_heads = 8;
  hp.head_dim = 128;
  hp.rotary_dim = 64;
  hp.num_experts = 192;
  hp.top_k = 8;
  hp.vocab_size = 200064;
  hp.max_position_embeddings = 204800;
  hp.rope_theta = 5000000.0;
  hp.rms_norm_eps = 1e-6;
  hp.bos_token_id = 200019;  // M2.7 generation_config.json
  hp.eos_token_ids = {200020};
  return hp;
}

const std::vector<PresetDef>& presets() {
  static const std::vector<PresetDef> defs = {
      {"tiny", tiny_hparams(), false},
      {"mid", mid_hparams(), false},
      {"minimax-m2.7-reap-172b", full_hparams(), true},
  };
  return defs;
}

bool is_quantized_role(Role r) {
  switch (r) {
    case Role::Q_PROJ:
    case Role::K_PROJ:
    case Role::V_PROJ:
    case Role::O_PROJ:
    case Role::EXPERT_W1:
    case Role::EXPERT_W2:
    case Role::EXPERT_W3:
      return true;
    default:
      return false;
  }
}

Distribution role_distribution(Role r, const HParams& hp, int64_t in_features) {
  const double h = static_cast<double>(hp.hidden_size);
  switch (r) {
    case Role::EMBED: return {0.0, 1.0};
    case Role::INPUT_NORM:
    case Role::POST_NORM:
    case Role::Q_NORM:
    case Role::K_NORM:
    case Role::FINAL_NORM: return {1.0, 0.1};
    case Role::ROUTER: return {0.0, 2.0 / std::sqrt(h)};
    case Role::ROUTER_BIAS: return {0.0, 0.01};
    case Role::LM_HEAD: return {0.0, 4.0 / std::sqrt(h)};
    default: return {0.0, 1.0 / std::sqrt(static_cast<double>(in_features))};
  }
}

// The order modules register their parameters in the remote-code model, which is the order
// save_pretrained walks the state dict and so decides which shard a tensor lands in.
const Role kLayerRolesBeforeExperts[] = {
    Role::INPUT_NORM, Role::Q_PROJ,    Role::K_PROJ, Role::V_PROJ,      Role::O_PROJ,
    Role::Q_NORM,     Role::K_NORM,    Role::POST_NORM, Role::ROUTER, Role::ROUTER_BIAS,
};
const Role kExpertRoles[] = {Role::EXPERT_W1, Role::EXPERT_W2, Role::EXPERT_W3};

class PlanBuilder {
 public:
  PlanBuilder(Plan& plan) : plan_(plan) {}

  void add(Role role, int64_t layer, int64_t expert) {
    const HParams& hp = plan_.hp;
    const minimax_m2::RoleInfo& info = minimax_m2::role_info(role);
    std::vector<int64_t> shape = minimax_m2::role_shape(role, hp);
    PlannedWeight w;
    w.role = role;
    w.layer = layer;
    w.expert = expert;
    w.prefix = minimax_m2::tensor_prefix(role, layer, expert);
    w.first_tensor = plan_.tensors.size();
    const bool gptq = plan_.quant == QuantMethod::GPTQ;
    const DType half = gptq ? DType::F16 : DType::BF16;
    if (info.kind == RoleKind::LINEAR) {
      int64_t k = shape[0], n = shape[1];
      w.dist = role_distribution(role, hp, k);
      if (is_quantized_role(role)) {
        w.quantized = true;
        push(w.prefix + ".qweight", DType::I32, {k / 8, n});
        push(w.prefix + ".qzeros", DType::I32, {k / kGroupSize, n / 8});
        push(w.prefix + ".scales", DType::F16, {k / kGroupSize, n});
        if (gptq) push(w.prefix + ".g_idx", DType::I32, {k});
      } else {
        push(w.prefix + ".weight", half, {n, k});  // PyTorch Linear weight [out, in]
      }
    } else if (role == Role::ROUTER_BIAS) {
      w.dist = role_distribution(role, hp, 0);
      // Upstream keeps this bias in fp32; the auto_gptq export casts every 16/32-bit tensor to fp16.
      push(w.prefix, gptq ? DType::F16 : DType::F32, shape);
    } else {
      w.dist = role_distribution(role, hp, shape.back());
      push(w.prefix + ".weight", half, shape);
    }
    w.num_tensors = plan_.tensors.size() - w.first_tensor;
    plan_.weights.push_back(std::move(w));
  }

 private:
  void push(std::string name, DType dt, std::vector<int64_t> shape) {
    PlannedTensor t;
    t.name = std::move(name);
    t.dtype = dt;
    t.shape = std::move(shape);
    t.nbytes = dtype_size(dt);
    for (int64_t d : t.shape) t.nbytes *= static_cast<uint64_t>(d);
    plan_.total_bytes += t.nbytes;
    plan_.tensors.push_back(std::move(t));
  }
  Plan& plan_;
};

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

std::string layer_gate_name(int64_t layer) {
  return minimax_m2::tensor_prefix(Role::ROUTER, layer, -1);
}

std::string regex_escape_dots(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '.') out += '\\';
    out += c;
  }
  return out;
}

ojson quantization_block(const Plan& plan) {
  ojson q = ojson::object();
  if (plan.quant == QuantMethod::AUTO_ROUND) {
    // AutoRound 0.12.2 "auto_round" export of a sym W4 g128 RTN run (spec 1.3).
    q["bits"] = 4;
    q["group_size"] = kGroupSize;
    q["sym"] = true;
    q["data_type"] = "int";
    q["iters"] = 0;
    q["autoround_version"] = "0.12.2";
    q["quant_method"] = "auto-round";
    q["packing_format"] = "auto_round:auto_gptq";
    ojson extra = ojson::object();
    for (int64_t l = 0; l < plan.hp.num_layers; ++l)
      extra[layer_gate_name(l)] = {{"bits", 16}, {"data_type", "float"}};
    q["extra_config"] = std::move(extra);
  } else {
    // AutoRound's auto_gptq export (spec 1.3 "Alternative"): GPTQModel-style `dynamic` with one
    // "-:<regex>" entry per skipped module.
    q["bits"] = 4;
    q["group_size"] = kGroupSize;
    q["sym"] = true;
    q["desc_act"] = false;
    q["true_sequential"] = false;
    q["damp_percent"] = 0.01;
    q["lm_head"] = false;
    q["provider"] = "auto-round";
    q["quant_method"] = "gptq";
    q["checkpoint_format"] = "gptq";
    ojson dyn = ojson::object();
    for (int64_t l = 0; l < plan.hp.num_layers; ++l)
      dyn["-:" + regex_escape_dots(layer_gate_name(l))] = ojson::object();
    q["dynamic"] = std::move(dyn);
  }
  return q;
}

Status write_text(const fs::path& path, std::string_view text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return Error::bad_input("cannot create " + path.string() + ": " + std::strerror(errno));
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.close();
  if (!f) return Error::bad_input("cannot write " + path.string() + ": " + std::strerror(errno));
  return Status::success();
}

// Files a previous mm-synth run may have left: with --force they are removed first so a smaller
// checkpoint never inherits stale shards.
bool is_our_file(const std::string& name) {
  static const char* fixed[] = {"config.json", "quantization_config.json", "quantize_config.json",
                                "generation_config.json", "model.safetensors.index.json",
                                "tokenizer.json", "chat_template.jinja", "model.safetensors"};
  for (const char* f : fixed)
    if (name == f) return true;
  return name.rfind("model-", 0) == 0 && name.size() > 12 &&
         name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

Status prepare_out_dir(const Options& o) {
  if (o.out_dir.empty()) return Error::usage("--out DIR is required");
  std::error_code ec;
  fs::path dir(o.out_dir);
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      return Error::bad_input("output path " + o.out_dir + " exists and is not a directory");
    bool empty = fs::directory_iterator(dir, ec) == fs::directory_iterator();
    if (ec) return Error::bad_input("cannot read output directory " + o.out_dir + ": " + ec.message());
    if (!empty) {
      if (!o.force)
        return Error::bad_input("output directory " + o.out_dir +
                                " is not empty (pass --force to replace the checkpoint files in it)");
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.is_regular_file() && is_our_file(e.path().filename().string())) {
          fs::remove(e.path(), ec);
          if (ec) return Error::bad_input("cannot remove " + e.path().string() + ": " + ec.message());
        }
      }
    }
    return Status::success();
  }
  fs::create_directories(dir, ec);
  if (ec) return Error::bad_input("cannot create output directory " + o.out_dir + ": " + ec.message());
  return Status::success();
}

// Converts float masters (already bf16-exact) to the tensor's stored dtype.
void encode(const float* src, size_t n, DType dt, std::vector<uint8_t>& out) {
  out.resize(n * dtype_size(dt));
  if (dt == DType::F32) {
    std::memcpy(out.data(), src, n * 4);
    return;
  }
  auto* dst = reinterpret_cast<uint16_t*>(out.data());
  if (dt == DType::BF16)
    for (size_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
  else
    for (size_t i = 0; i < n; ++i) dst[i] = float_to_f16(src[i]);
}

struct TensorSlot {
  int shard = 0;
  size_t index_in_shard = 0;
};

class DataWriter {
 public:
  DataWriter(const Plan& plan, uint64_t seed, const std::vector<SafetensorsFileWriter>& files,
             const std::vector<TensorSlot>& slots)
      : plan_(plan), seed_(seed), files_(files), slots_(slots) {}

  // Elements [begin, begin + count) of a 16/32-bit weight, or (count == 0) a whole quantized Linear.
  Status write_weight(const PlannedWeight& w, uint64_t begin, uint64_t count) {
    uint64_t key = tensor_key(seed_, w.prefix);
    if (w.quantized) return write_linear(w, key);
    const PlannedTensor& t = plan_.tensors[w.first_tensor];
    constexpr uint64_t kChunk = 1 << 20;
    std::vector<float> masters(std::min(count, kChunk));
    std::vector<uint8_t> bytes;
    for (uint64_t done = 0; done < count; done += kChunk) {
      uint64_t n = std::min(kChunk, count - done);
      generate_masters(key, w.dist, begin + done, n, masters.data());
      encode(masters.data(), n, t.dtype, bytes);
      if (Status s = put(w.first_tensor, (begin + done) * dtype_size(t.dtype), bytes.data(), bytes.size());
          !s)
        return s;
    }
    return Status::success();
  }

  // --sparse keeps the zero points real: they are tiny, and the runtime checks them at load
  // (all 0x77777777), so a sparse checkpoint still loads end to end at full scale.
  Status write_zero_points(const PlannedWeight& w) {
    std::vector<int64_t> shape = minimax_m2::role_shape(w.role, plan_.hp);
    std::vector<uint32_t> qzeros(static_cast<size_t>(shape[0] / kGroupSize * shape[1] / 8),
                                 kQZerosWord);
    return put(w.first_tensor + 1, 0, qzeros.data(), qzeros.size() * 4);
  }

 private:
  // Masters are the PyTorch weight W[n, k] (row-major [N, K]): element index n * K + k.
  Status write_linear(const PlannedWeight& w, uint64_t key) {
    std::vector<int64_t> shape = minimax_m2::role_shape(w.role, plan_.hp);
    const int64_t k_dim = shape[0], n_dim = shape[1];
    std::vector<uint32_t> qweight(static_cast<size_t>(k_dim / 8 * n_dim));
    std::vector<uint16_t> scales(static_cast<size_t>(k_dim / kGroupSize * n_dim));
    std::vector<float> row(static_cast<size_t>(k_dim));
    for (int64_t n = 0; n < n_dim; ++n) {
      generate_masters(key, w.dist, static_cast<uint64_t>(n * k_dim), static_cast<uint64_t>(k_dim),
                       row.data());
      quantize_column(row.data(), k_dim, qweight.data() + n, scales.data() + n, n_dim);
    }
    std::vector<uint32_t> qzeros(static_cast<size_t>(k_dim / kGroupSize * n_dim / 8), kQZerosWord);
    size_t t = w.first_tensor;
    if (Status s = put(t, 0, qweight.data(), qweight.size() * 4); !s) return s;
    if (Status s = put(t + 1, 0, qzeros.data(), qzeros.size() * 4); !s) return s;
    if (Status s = put(t + 2, 0, scales.data(), scales.size() * 2); !s) return s;
    if (w.num_tensors == 4) {
      std::vector<int32_t> g_idx(static_cast<size_t>(k_dim));
      for (int64_t k = 0; k < k_dim; ++k) g_idx[k] = static_cast<int32_t>(k / kGroupSize);
      if (Status s = put(t + 3, 0, g_idx.data(), g_idx.size() * 4); !s) return s;
    }
    return Status::success();
  }

  Status put(size_t tensor, uint64_t offset, const void* data, uint64_t size) {
    const TensorSlot& slot = slots_[tensor];
    return files_[slot.shard].write_data(slot.index_in_shard, offset, data, size);
  }

  const Plan& plan_;
  uint64_t seed_;
  const std::vector<SafetensorsFileWriter>& files_;
  const std::vector<TensorSlot>& slots_;
};

}  // namespace

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const PresetDef& p : presets()) v.push_back(p.name);
    return v;
  }();
  return names;
}

Expected<Plan> plan_checkpoint(const Options& o) {
  const PresetDef* def = nullptr;
  for (const PresetDef& p : presets())
    if (o.preset == p.name) def = &p;
  if (!def) {
    std::string list;
    for (const std::string& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    return Error::usage("--preset: unknown preset '" + o.preset + "' (expected one of " + list + ")");
  }
  Plan plan;
  plan.preset = def->name;
  plan.hp = def->hp;
  plan.quant = o.quant;
  plan.full_vocab_tokenizer = def->full_vocab_tokenizer;
  if (o.layers != -1) {
    if (o.layers < 1 || o.layers > 1024)
      return Error::usage("--layers " + std::to_string(o.layers) + ": expected 1..1024");
    plan.hp.num_layers = o.layers;
  }
  if (o.experts != -1) {
    if (o.experts < plan.hp.top_k || o.experts > 4096)
      return Error::usage("--experts " + std::to_string(o.experts) + ": expected " +
                          std::to_string(plan.hp.top_k) + "..4096 (at least num_experts_per_tok)");
    plan.hp.num_experts = o.experts;
  }

  PlanBuilder b(plan);
  b.add(Role::EMBED, -1, -1);
  for (int64_t l = 0; l < plan.hp.num_layers; ++l) {
    for (Role r : kLayerRolesBeforeExperts) b.add(r, l, -1);
    for (int64_t e = 0; e < plan.hp.num_experts; ++e)
      for (Role r : kExpertRoles) b.add(r, l, e);
  }
  b.add(Role::FINAL_NORM, -1, -1);
  b.add(Role::LM_HEAD, -1, -1);

  // Equal-byte runs in module order; a tensor goes to the shard its middle byte falls in. With
  // ceil(total / 4 GB) shards every run is far larger than any tensor, so no shard is empty.
  const uint64_t total = plan.total_bytes;
  const uint64_t nshards = std::max<uint64_t>(1, (total + kMaxShardBytes - 1) / kMaxShardBytes);
  plan.shard_bytes.assign(nshards, 0);
  uint64_t cum = 0;
  for (PlannedTensor& t : plan.tensors) {
    long double mid = static_cast<long double>(cum) + static_cast<long double>(t.nbytes) / 2;
    uint64_t s = static_cast<uint64_t>(mid * nshards / static_cast<long double>(total));
    t.shard = static_cast<int>(std::min(s, nshards - 1));
    plan.shard_bytes[t.shard] += t.nbytes;
    cum += t.nbytes;
  }
  for (uint64_t i = 0; i < nshards; ++i) plan.shard_files.push_back(shard_name(i, nshards));
  return plan;
}

std::string config_json(const Plan& plan) {
  const HParams& hp = plan.hp;
  ojson c = ojson::object();
  c["architectures"] = {"MiniMaxM2ForCausalLM"};
  c["auto_map"] = {{"AutoConfig", "configuration_minimax_m2.MiniMaxM2Config"},
                   {"AutoModelForCausalLM", "modeling_minimax_m2.MiniMaxM2ForCausalLM"}};
  c["model_type"] = "minimax_m2";
  c["attn_type_list"] = std::vector<int>(static_cast<size_t>(hp.num_layers), 1);
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = hp.bos_token_id;
  c["eos_token_id"] = hp.eos_token_ids.empty() ? -1 : hp.eos_token_ids[0];
  c["head_dim"] = hp.head_dim;
  c["hidden_act"] = "silu";
  c["hidden_size"] = hp.hidden_size;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = hp.intermediate_size;
  c["max_position_embeddings"] = hp.max_position_embeddings;
  c["mtp_transformer_layers"] = 1;
  c["num_attention_heads"] = hp.num_heads;
  c["num_experts_per_tok"] = hp.top_k;
  c["num_hidden_layers"] = hp.num_layers;
  c["num_key_value_heads"] = hp.num_kv_heads;
  c["num_local_experts"] = hp.num_experts;
  c["num_mtp_modules"] = 3;
  c["output_router_logits"] = false;
  c["qk_norm_type"] = "per_layer";
  c["rms_norm_eps"] = hp.rms_norm_eps;
  c["rope_theta"] = hp.rope_theta;
  c["rotary_dim"] = hp.rotary_dim;
  c["router_aux_loss_coef"] = 0.001;
  c["router_jitter_noise"] = 0.0;
  c["scoring_func"] = "sigmoid";
  c["shared_intermediate_size"] = 0;
  c["tie_word_embeddings"] = false;
  c["torch_dtype"] = "bfloat16";
  c["transformers_version"] = "4.57.1";
  c["use_cache"] = true;
  c["use_mtp"] = true;
  c["use_qk_norm"] = true;
  c["use_routing_bias"] = true;
  c["vocab_size"] = hp.vocab_size;
  c["quantization_config"] = quantization_block(plan);
  return c.dump(2) + "\n";
}

std::string quantization_config_json(const Plan& plan) { return quantization_block(plan).dump(2) + "\n"; }

std::string generation_config_json(const Plan& plan) {
  ojson g = ojson::object();
  g["bos_token_id"] = plan.hp.bos_token_id;
  g["do_sample"] = true;
  g["eos_token_id"] = plan.hp.eos_token_ids.empty() ? -1 : plan.hp.eos_token_ids[0];
  g["temperature"] = 1.0;
  g["top_k"] = 40;
  g["top_p"] = 0.95;
  g["transformers_version"] = "4.57.1";
  return g.dump(2) + "\n";
}

std::string index_json(const Plan& plan) {
  // save_pretrained writes the weight map sorted by tensor name.
  std::vector<size_t> order(plan.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return plan.tensors[a].name < plan.tensors[b].name; });
  // Written as text: ordered_json's linear key lookup is quadratic in 108k names.
  std::string out = "{\n  \"metadata\": {\n    \"total_size\": " + std::to_string(plan.total_bytes) +
                    "\n  },\n  \"weight_map\": {";
  for (size_t j = 0; j < order.size(); ++j) {
    const PlannedTensor& t = plan.tensors[order[j]];
    out += j ? ",\n    " : "\n    ";
    out += nlohmann::json(t.name).dump() + ": " + nlohmann::json(plan.shard_files[t.shard]).dump();
  }
  out += "\n  }\n}\n";
  return out;
}

Expected<WriteSummary> write_checkpoint(const Options& o) {
  Expected<Plan> planned = plan_checkpoint(o);
  if (!planned) return planned.error();
  const Plan& plan = *planned;
  if (Status s = prepare_out_dir(o); !s) return s.error();
  const fs::path dir(o.out_dir);

  const bool gptq = plan.quant == QuantMethod::GPTQ;
  if (Status s = write_text(dir / "config.json", config_json(plan)); !s) return s.error();
  if (Status s = write_text(dir / (gptq ? "quantize_config.json" : "quantization_config.json"),
                            quantization_config_json(plan));
      !s)
    return s.error();
  if (Status s = write_text(dir / "generation_config.json", generation_config_json(plan)); !s)
    return s.error();
  if (Status s = write_text(dir / "model.safetensors.index.json", index_json(plan)); !s) return s.error();
  if (Status s = write_text(dir / "tokenizer.json", plan.full_vocab_tokenizer ? full_tokenizer_json()
                                                                           : tiny_tokenizer_json());
      !s)
    return s.error();
  if (Status s = write_text(dir / "chat_template.jinja", chat_template_jinja()); !s) return s.error();

  // Lay out and create every shard (headers written, data region a hole).
  std::vector<std::vector<SafetensorsEntry>> entries(plan.shard_files.size());
  std::vector<TensorSlot> slots(plan.tensors.size());
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    slots[i] = {t.shard, entries[t.shard].size()};
    entries[t.shard].push_back({t.name, t.dtype, t.shape});
  }
  std::vector<SafetensorsFileWriter> files;
  for (size_t s = 0; s < entries.size(); ++s) {
    Expected<SafetensorsLayout> layout = plan_safetensors(entries[s], {{"format", "pt"}});
    if (!layout) return layout.error();
    Expected<SafetensorsFileWriter> f =
        SafetensorsFileWriter::create((dir / plan.shard_files[s]).string(), std::move(*layout));
    if (!f) return f.error();
    files.push_back(std::move(*f));
  }

  if (!o.sparse) {
    // Work items: each quantized Linear whole (its scales need whole groups), 16/32-bit weights in
    // slices of kSlice elements so the two 0.6 G-element matrices (embed, lm_head) of the full
    // preset spread over all threads instead of serializing on one.
    struct Task {
      size_t weight;
      uint64_t begin, count;
    };
    constexpr uint64_t kSlice = uint64_t{1} << 24;
    std::vector<Task> tasks;
    for (size_t i = 0; i < plan.weights.size(); ++i) {
      const PlannedWeight& w = plan.weights[i];
      if (w.quantized) {
        tasks.push_back({i, 0, 0});
        continue;
      }
      uint64_t elems = 1;
      for (int64_t d : plan.tensors[w.first_tensor].shape) elems *= static_cast<uint64_t>(d);
      for (uint64_t b = 0; b < elems; b += kSlice) tasks.push_back({i, b, std::min(kSlice, elems - b)});
    }
    int nthreads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
    nthreads = std::max(1, std::min<int>(nthreads, static_cast<int>(tasks.size())));
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex err_mu;
    Status first_error;
    auto worker = [&] {
      DataWriter writer(plan, o.seed, files, slots);
      while (!failed.load(std::memory_order_relaxed)) {
        size_t i = next.fetch_add(1);
        if (i >= tasks.size()) break;
        const Task& t = tasks[i];
        if (Status s = writer.write_weight(plan.weights[t.weight], t.begin, t.count); !s) {
          std::lock_guard<std::mutex> lock(err_mu);
          if (!failed.exchange(true)) first_error = s;
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < nthreads; ++t) pool.emplace_back(worker);
    worker();
    for (std::thread& t : pool) t.join();
    if (failed) return first_error.error();
  }
  if (o.sparse) {
    DataWriter writer(plan, o.seed, files, slots);
    for (const PlannedWeight& w : plan.weights)
      if (w.quantized)
        if (Status s = writer.write_zero_points(w); !s) return s.error();
  }
  for (SafetensorsFileWriter& f : files)
    if (Status s = f.close(); !s) return s.error();

  WriteSummary sum;
  sum.tensors = plan.tensors.size();
  sum.shards = plan.shard_files.size();
  sum.bytes = plan.total_bytes;
  return sum;
}

}  // namespace mm::synth
