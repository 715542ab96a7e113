#include "models/common/model_config.h"

#include <cmath>
#include <optional>

#include "support/json_util.h"

namespace mm {
namespace {

using nlohmann::json;

std::string quote_name(const std::string& s) { return "\"" + s + "\""; }

// Short rendering of a JSON value for messages; hostile files can hold huge values.
std::string show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Reads integer `key` of `obj` in [lo, hi]. Absent: error if `required`, else nullopt.
Expected<std::optional<int64_t>> get_int(const json& obj, const std::string& key,
                                         const std::string& label, int64_t lo, int64_t hi,
                                         bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required)
      return Error::bad_input(label + ": missing required key " + quote_name(key) +
                              " (an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                              "])");
    return std::optional<int64_t>();
  }
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!it->is_number_integer())
    return Error::bad_input(label + ": key " + quote_name(key) + " must be an integer in " + range +
                            ", found " + json_type_name(*it) + " " + show(*it));
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return Error::bad_input(label + ": key " + quote_name(key) + " = " + show(*it) +
                            " is out of range " + range);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    return Error::bad_input(label + ": key " + quote_name(key) + " = " + std::to_string(v) +
                            " is out of range " + range);
  return std::optional<int64_t>(v);
}

Expected<std::optional<double>> get_number(const json& obj, const std::string& key,
                                           const std::string& label, bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required)
      return Error::bad_input(label + ": missing required key " + quote_name(key) + " (a number)");
    return std::optional<double>();
  }
  if (!it->is_number())
    return Error::bad_input(label + ": key " + quote_name(key) + " must be a number, found " +
                            json_type_name(*it) + " " + show(*it));
  double v = it->get<double>();
  if (!std::isfinite(v))
    return Error::bad_input(label + ": key " + quote_name(key) + " must be finite");
  return std::optional<double>(v);
}

Expected<std::optional<std::string>> get_string(const json& obj, const std::string& key,
                                                const std::string& label, bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required)
      return Error::bad_input(label + ": missing required key " + quote_name(key) + " (a string)");
    return std::optional<std::string>();
  }
  if (!it->is_string())
    return Error::bad_input(label + ": key " + quote_name(key) + " must be a string, found " +
                            json_type_name(*it) + " " + show(*it));
  return std::optional<std::string>(it->get<std::string>());
}

Expected<std::optional<bool>> get_bool(const json& obj, const std::string& key,
                                       const std::string& label, bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required)
      return Error::bad_input(label + ": missing required key " + quote_name(key) +
                              " (true or false)");
    return std::optional<bool>();
  }
  if (!it->is_boolean())
    return Error::bad_input(label + ": key " + quote_name(key) + " must be true or false, found " +
                            json_type_name(*it) + " " + show(*it));
  return std::optional<bool>(it->get<bool>());
}

// Propagates an error out of the enclosing function; otherwise binds the value.
#define MM_ASSIGN(var, expr)            \
  auto var##_r = (expr);                \
  if (!var##_r) return var##_r.error(); \
  auto var = *var##_r

// Optional keys whose only supported value is fixed: present with another value means a model
// variant this compiler does not implement.
Status check_fixed_string(const json& cfg, const std::string& label, const std::string& key,
                          const std::string& want) {
  auto v = get_string(cfg, key, label, false);
  if (!v) return v.error();
  if (*v && **v != want)
    return Error::bad_input(label + ": " + key + " " + quote_name(**v) +
                            " is not supported (expected " + quote_name(want) + ")");
  return Status::success();
}

Status check_fixed_bool(const json& cfg, const std::string& label, const std::string& key,
                        bool want) {
  auto v = get_bool(cfg, key, label, false);
  if (!v) return v.error();
  if (*v && **v != want)
    return Error::bad_input(label + ": " + key + " " + (**v ? "true" : "false") +
                            " is not supported (expected " + (want ? "true" : "false") + ")");
  return Status::success();
}

// bits / group_size / sym of a scheme or of an override inside extra_config / dynamic.
Status check_w4g128(const json& obj, const std::string& label, bool required) {
  auto bits = obj.find("bits");
  if (bits == obj.end()) {
    if (required) return Error::bad_input(label + ": missing required key \"bits\" (expected 4)");
  } else if (!bits->is_number_integer()) {
    return Error::bad_input(label + ": key \"bits\" must be an integer, found " + show(*bits));
  } else if (bits->get<int64_t>() != 4) {
    return Error::bad_input(label + ": bits " + show(*bits) +
                            " is not supported (expected 4: W4A16 only)");
  }
  auto group = obj.find("group_size");
  if (group == obj.end()) {
    if (required)
      return Error::bad_input(label + ": missing required key \"group_size\" (expected 128)");
  } else if (!group->is_number_integer()) {
    return Error::bad_input(label + ": key \"group_size\" must be an integer, found " +
                            show(*group));
  } else if (group->get<int64_t>() != 128) {
    return Error::bad_input(label + ": group_size " + show(*group) +
                            " is not supported (expected 128)");
  }
  auto sym = obj.find("sym");
  if (sym == obj.end()) {
    if (required) return Error::bad_input(label + ": missing required key \"sym\" (expected true)");
  } else if (!sym->is_boolean()) {
    return Error::bad_input(label + ": key \"sym\" must be true or false, found " + show(*sym));
  } else if (!sym->get<bool>()) {
    return Error::bad_input(label +
                            ": asymmetric quantization (sym false) is not supported (expected "
                            "sym true: zero point fixed at 8)");
  }
  return Status::success();
}

}  // namespace

Expected<minimax_m2::HParams> parse_model_config(const json& cfg, const std::string& label) {
  minimax_m2::HParams hp;

  MM_ASSIGN(model_type, get_string(cfg, "model_type", label, true));
  if (*model_type != "minimax_m2")
    return Error::bad_input(label + ": model_type " + quote_name(*model_type) +
                            " is not supported (expected \"minimax_m2\")");
  auto arch = cfg.find("architectures");
  if (arch == cfg.end())
    return Error::bad_input(label +
                            ": missing required key \"architectures\" (expected "
                            "[\"MiniMaxM2ForCausalLM\"])");
  if (!arch->is_array())
    return Error::bad_input(label + ": key \"architectures\" must be an array of strings, found " +
                            json_type_name(*arch));
  bool found_arch = false;
  for (const auto& a : *arch) {
    if (!a.is_string())
      return Error::bad_input(label + ": key \"architectures\" must hold strings, found " +
                              show(a));
    found_arch |= a.get<std::string>() == "MiniMaxM2ForCausalLM";
  }
  if (!found_arch)
    return Error::bad_input(label + ": architectures " + show(*arch) +
                            " does not name MiniMaxM2ForCausalLM");

  // Ranges are generous bounds that still keep every derived product far from overflow.
  MM_ASSIGN(hidden, get_int(cfg, "hidden_size", label, 1, 1 << 16, true));
  MM_ASSIGN(inter, get_int(cfg, "intermediate_size", label, 1, 1 << 18, true));
  MM_ASSIGN(layers, get_int(cfg, "num_hidden_layers", label, 1, 1024, true));
  MM_ASSIGN(heads, get_int(cfg, "num_attention_heads", label, 1, 1024, true));
  MM_ASSIGN(kv_heads, get_int(cfg, "num_key_value_heads", label, 1, 1024, true));
  MM_ASSIGN(head_dim, get_int(cfg, "head_dim", label, 2, 1024, true));
  MM_ASSIGN(experts, get_int(cfg, "num_local_experts", label, 1, 4096, true));
  MM_ASSIGN(top_k, get_int(cfg, "num_experts_per_tok", label, 1, 4096, true));
  MM_ASSIGN(vocab, get_int(cfg, "vocab_size", label, 1, 1 << 24, true));
  MM_ASSIGN(max_pos, get_int(cfg, "max_position_embeddings", label, 1, 1 << 24, true));
  MM_ASSIGN(eps, get_number(cfg, "rms_norm_eps", label, true));
  hp.hidden_size = *hidden;
  hp.intermediate_size = *inter;
  hp.num_layers = *layers;
  hp.num_heads = *heads;
  hp.num_kv_heads = *kv_heads;
  hp.head_dim = *head_dim;
  hp.num_experts = *experts;
  hp.top_k = *top_k;
  hp.vocab_size = *vocab;
  hp.max_position_embeddings = *max_pos;
  hp.rms_norm_eps = *eps;
  if (!(hp.rms_norm_eps > 0 && hp.rms_norm_eps < 1))
    return Error::bad_input(label + ": rms_norm_eps " + std::to_string(hp.rms_norm_eps) +
                            " is out of range (expected 0 < eps < 1)");

  if (hp.num_kv_heads > hp.num_heads || hp.num_heads % hp.num_kv_heads != 0)
    return Error::bad_input(label + ": num_attention_heads " + std::to_string(hp.num_heads) +
                            " must be a multiple of num_key_value_heads " +
                            std::to_string(hp.num_kv_heads) + " (grouped-query attention)");
  if (hp.top_k > hp.num_experts)
    return Error::bad_input(label + ": num_experts_per_tok " + std::to_string(hp.top_k) +
                            " is larger than num_local_experts " + std::to_string(hp.num_experts));

  // rope_theta and the partial-RoPE width come as top-level keys in the official config; configs
  // re-saved by newer transformers move them into rope_parameters (spec 1.1).
  const json* rope_params = nullptr;
  if (auto rp = cfg.find("rope_parameters"); rp != cfg.end() && !rp->is_null()) {
    if (!rp->is_object())
      return Error::bad_input(label + ": key \"rope_parameters\" must be an object, found " +
                              json_type_name(*rp));
    rope_params = &*rp;
    MM_ASSIGN(rope_type, get_string(*rp, "rope_type", label + ": rope_parameters", false));
    if (rope_type && *rope_type != "default")
      return Error::bad_input(label + ": rope_parameters.rope_type " + quote_name(*rope_type) +
                              " is not supported (expected \"default\": no RoPE scaling)");
  }
  if (auto rs = cfg.find("rope_scaling"); rs != cfg.end() && !rs->is_null())
    return Error::bad_input(label + ": rope_scaling " + show(*rs) +
                            " is not supported (expected null: MiniMax-M2 uses plain RoPE)");
  MM_ASSIGN(theta, get_number(cfg, "rope_theta", label, false));
  std::optional<double> theta_v = theta;
  if (rope_params) {
    MM_ASSIGN(theta2, get_number(*rope_params, "rope_theta", label + ": rope_parameters", false));
    if (theta_v && theta2 && *theta_v != *theta2)
      return Error::bad_input(label + ": rope_theta " + std::to_string(*theta_v) +
                              " disagrees with rope_parameters.rope_theta " +
                              std::to_string(*theta2));
    if (!theta_v) theta_v = theta2;
  }
  if (!theta_v)
    return Error::bad_input(label +
                            ": missing required key \"rope_theta\" (a number, top level or in "
                            "rope_parameters)");
  if (!(*theta_v > 1))
    return Error::bad_input(label + ": rope_theta " + std::to_string(*theta_v) +
                            " is out of range (expected > 1)");
  hp.rope_theta = *theta_v;

  MM_ASSIGN(rotary, get_int(cfg, "rotary_dim", label, 1, 1024, false));
  std::optional<double> factor;
  {
    MM_ASSIGN(f1, get_number(cfg, "partial_rotary_factor", label, false));
    factor = f1;
    if (rope_params) {
      MM_ASSIGN(f2, get_number(*rope_params, "partial_rotary_factor", label + ": rope_parameters",
                               false));
      if (factor && f2 && *factor != *f2)
        return Error::bad_input(label +
                                ": partial_rotary_factor disagrees with "
                                "rope_parameters.partial_rotary_factor");
      if (!factor) factor = f2;
    }
  }
  if (factor && !(*factor > 0 && *factor <= 1))
    return Error::bad_input(label + ": partial_rotary_factor " + std::to_string(*factor) +
                            " is out of range (expected 0 < factor <= 1)");
  if (rotary) {
    hp.rotary_dim = *rotary;
    if (factor && std::llround(*factor * static_cast<double>(hp.head_dim)) != hp.rotary_dim)
      return Error::bad_input(label + ": rotary_dim " + std::to_string(hp.rotary_dim) +
                              " disagrees with partial_rotary_factor " + std::to_string(*factor) +
                              " x head_dim " + std::to_string(hp.head_dim));
  } else if (factor) {
    hp.rotary_dim = std::llround(*factor * static_cast<double>(hp.head_dim));
  } else {
    return Error::bad_input(label +
                            ": missing required key \"rotary_dim\" (an integer; or "
                            "partial_rotary_factor)");
  }
  if (hp.rotary_dim > hp.head_dim || hp.rotary_dim % 2 != 0 || hp.rotary_dim <= 0)
    return Error::bad_input(label + ": rotary_dim " + std::to_string(hp.rotary_dim) +
                            " must be even and at most head_dim " + std::to_string(hp.head_dim));

  // Keys that select model variants this compiler does not implement (spec 1.1).
  for (auto [key, want] : {std::pair<const char*, const char*>{"scoring_func", "sigmoid"},
                           {"hidden_act", "silu"},
                           {"qk_norm_type", "per_layer"}}) {
    Status s = check_fixed_string(cfg, label, key, want);
    if (!s) return s.error();
  }
  for (auto [key, want] : {std::pair<const char*, bool>{"use_routing_bias", true},
                           {"use_qk_norm", true},
                           {"tie_word_embeddings", false}}) {
    Status s = check_fixed_bool(cfg, label, key, want);
    if (!s) return s.error();
  }
  if (auto it = cfg.find("shared_intermediate_size"); it != cfg.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() != 0)
      return Error::bad_input(label + ": shared_intermediate_size " + show(*it) +
                              " is not supported (expected 0: no shared expert)");
  }
  for (const char* key : {"sliding_window", "attn_window_size"}) {
    if (auto it = cfg.find(key); it != cfg.end() && !it->is_null())
      return Error::bad_input(label + ": " + key + " " + show(*it) +
                              " is not supported (expected null: full attention in every layer)");
  }
  for (auto it = cfg.begin(); it != cfg.end(); ++it) {
    const std::string& key = it.key();
    if (key.rfind("layernorm_", 0) == 0 &&
        (key.find("_alpha") != std::string::npos || key.find("_beta") != std::string::npos)) {
      if (!it->is_number() || it->get<double>() != 1.0)
        return Error::bad_input(label + ": " + key + " " + show(*it) +
                                " is not supported (expected 1.0: no DeepNorm scaling)");
    }
  }
  if (auto it = cfg.find("attn_type_list"); it != cfg.end() && !it->is_null()) {
    if (!it->is_array() || static_cast<int64_t>(it->size()) != hp.num_layers)
      return Error::bad_input(label + ": attn_type_list must be an array of num_hidden_layers (" +
                              std::to_string(hp.num_layers) + ") entries");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& v = (*it)[i];
      if (!v.is_number_integer() || v.get<int64_t>() != 1)
        return Error::bad_input(label + ": attn_type_list[" + std::to_string(i) + "] = " + show(v) +
                                " is not supported (expected 1: softmax attention)");
    }
  }
  return hp;
}

Expected<QuantConfig> parse_quant_config(const json& qc, const std::string& label) {
  QuantConfig out;
  if (!qc.is_object())
    return Error::bad_input(label + " must be an object, found " + json_type_name(qc));
  MM_ASSIGN(method, get_string(qc, "quant_method", label, true));
  if (*method == "auto-round" || *method == "auto_round") {
    out.scheme.method = QuantMethod::AUTO_ROUND;
    MM_ASSIGN(packing, get_string(qc, "packing_format", label, true));
    if (*packing != "auto_round:auto_gptq")
      return Error::bad_input(label + ": packing_format " + quote_name(*packing) +
                              " is not supported (expected \"auto_round:auto_gptq\")");
    out.scheme.packing_format = *packing;
  } else if (*method == "gptq") {
    out.scheme.method = QuantMethod::GPTQ;
    Status s = check_fixed_bool(qc, label, "desc_act", false);
    if (!s) return s.error();
    MM_ASSIGN(format, get_string(qc, "checkpoint_format", label, false));
    if (format && *format != "gptq")
      return Error::bad_input(label + ": checkpoint_format " + quote_name(*format) +
                              " is not supported (expected \"gptq\": v1 zero-point packing)");
  } else {
    return Error::bad_input(label + ": quant_method " + quote_name(*method) +
                            " is not supported (expected \"auto-round\" or \"gptq\", W4A16)");
  }
  Status s = check_w4g128(qc, label, true);
  if (!s) return s.error();
  MM_ASSIGN(data_type, get_string(qc, "data_type", label, false));
  if (data_type && *data_type != "int")
    return Error::bad_input(label + ": data_type " + quote_name(*data_type) +
                            " is not supported (expected \"int\")");
  out.scheme.bits = 4;
  out.scheme.group_size = 128;
  out.scheme.sym = true;

  if (auto ec = qc.find("extra_config"); ec != qc.end() && !ec->is_null()) {
    if (!ec->is_object())
      return Error::bad_input(label + ": extra_config must be an object, found " +
                              json_type_name(*ec));
    for (auto it = ec->begin(); it != ec->end(); ++it) {
      const std::string where = label + ": extra_config " + quote_name(it.key());
      if (!it->is_object())
        return Error::bad_input(where + " must be an object, found " + json_type_name(*it));
      auto bits = it->find("bits");
      if (bits != it->end() && bits->is_number_integer() && bits->get<int64_t>() >= 16) {
        out.exempt_modules.insert(it.key());  // kept in 16 bits
        continue;
      }
      Status o = check_w4g128(*it, where, false);
      if (!o) return o.error();
    }
  }
  if (auto dyn = qc.find("dynamic"); dyn != qc.end() && !dyn->is_null()) {
    if (!dyn->is_object())
      return Error::bad_input(label + ": dynamic must be an object, found " + json_type_name(*dyn));
    for (auto it = dyn->begin(); it != dyn->end(); ++it) {
      const std::string& key = it.key();
      if (key.rfind("-:", 0) == 0) {
        out.skip_patterns.push_back(key.substr(2));
        continue;
      }
      if (!it->is_object())
        return Error::bad_input(label + ": dynamic " + quote_name(key) +
                                " must be an object, found " + json_type_name(*it));
      Status o = check_w4g128(*it, label + ": dynamic " + quote_name(key), false);
      if (!o) return o.error();
    }
  }
  return out;
}

Status parse_generation_config(const json& gen, const std::string& label, minimax_m2::HParams& hp) {
  auto bos = get_int(gen, "bos_token_id", label, 0, INT32_MAX, false);
  if (!bos) return bos.error();
  if (*bos) hp.bos_token_id = **bos;
  auto eos = gen.find("eos_token_id");
  if (eos == gen.end() || eos->is_null()) return Status::success();
  auto add = [&](const json& v) -> Status {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return Error::bad_input(label +
                              ": eos_token_id must be a token id or a list of token ids, "
                              "found " +
                              show(v));
    hp.eos_token_ids.push_back(v.get<int64_t>());
    return Status::success();
  };
  if (eos->is_array()) {
    for (const auto& v : *eos) {
      Status s = add(v);
      if (!s) return s;
    }
  } else {
    Status s = add(*eos);
    if (!s) return s;
  }
  return Status::success();
}

}  // namespace mm
