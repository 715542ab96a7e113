#include "models/minimax_m2/arch.h"

#include <array>

namespace mm::minimax_m2 {
namespace {

// Indexed by Role; the static_asserts keep it in step with the enum (style.md: tables indexed by an
// enum are guarded by its count). Patterns are tensor-name prefixes: a LINEAR adds .weight or
// .qweight/.qzeros/.scales/.g_idx, a norm or MATRIX adds .weight, the router bias is the full name.
constexpr std::array<RoleInfo, static_cast<size_t>(Role::COUNT)> kRoles = {{
    {Role::EMBED, RoleKind::MATRIX, false, false, "model.embed_tokens"},
    {Role::INPUT_NORM, RoleKind::VECTOR, true, false, "model.layers.{L}.input_layernorm"},
    {Role::Q_PROJ, RoleKind::LINEAR, true, false, "model.layers.{L}.self_attn.q_proj"},
    {Role::K_PROJ, RoleKind::LINEAR, true, false, "model.layers.{L}.self_attn.k_proj"},
    {Role::V_PROJ, RoleKind::LINEAR, true, false, "model.layers.{L}.self_attn.v_proj"},
    {Role::O_PROJ, RoleKind::LINEAR, true, false, "model.layers.{L}.self_attn.o_proj"},
    {Role::Q_NORM, RoleKind::VECTOR, true, false, "model.layers.{L}.self_attn.q_norm"},
    {Role::K_NORM, RoleKind::VECTOR, true, false, "model.layers.{L}.self_attn.k_norm"},
    {Role::POST_NORM, RoleKind::VECTOR, true, false, "model.layers.{L}.post_attention_layernorm"},
    {Role::ROUTER, RoleKind::LINEAR, true, false, "model.layers.{L}.block_sparse_moe.gate"},
    {Role::ROUTER_BIAS, RoleKind::VECTOR, true, false,
     "model.layers.{L}.block_sparse_moe.e_score_correction_bias"},
    {Role::EXPERT_W1, RoleKind::LINEAR, true, true,
     "model.layers.{L}.block_sparse_moe.experts.{E}.w1"},
    {Role::EXPERT_W3, RoleKind::LINEAR, true, true,
     "model.layers.{L}.block_sparse_moe.experts.{E}.w3"},
    {Role::EXPERT_W2, RoleKind::LINEAR, true, true,
     "model.layers.{L}.block_sparse_moe.experts.{E}.w2"},
    {Role::FINAL_NORM, RoleKind::VECTOR, false, false, "model.norm"},
    {Role::LM_HEAD, RoleKind::MATRIX, false, false, "lm_head"},
}};

constexpr std::array<const char*, static_cast<size_t>(Role::COUNT)> kRoleNames = {{
    "embed",
    "input_norm",
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "q_norm",
    "k_norm",
    "post_norm",
    "router",
    "router_bias",
    "expert_w1",
    "expert_w3",
    "expert_w2",
    "final_norm",
    "lm_head",
}};

constexpr bool rows_in_enum_order() {
  for (size_t i = 0; i < kRoles.size(); ++i)
    if (static_cast<size_t>(kRoles[i].role) != i) return false;
  return true;
}
static_assert(rows_in_enum_order(), "kRoles rows must follow the Role enum order");

}  // namespace

const RoleInfo& role_info(Role role) {
  size_t i = static_cast<size_t>(role);
  return kRoles[i < kRoles.size() ? i : 0];
}

const char* role_name(Role role) {
  size_t i = static_cast<size_t>(role);
  return i < kRoleNames.size() ? kRoleNames[i] : "unknown";
}

std::string tensor_prefix(Role role, int64_t layer, int64_t expert) {
  std::string out;
  for (const char* p = role_info(role).pattern; *p; ++p) {
    if (p[0] == '{' && p[1] && p[2] == '}') {
      if (p[1] == 'L')
        out += std::to_string(layer);
      else if (p[1] == 'E')
        out += std::to_string(expert);
      p += 2;
      continue;
    }
    out += *p;
  }
  return out;
}

std::vector<int64_t> role_shape(Role role, const HParams& hp) {
  switch (role) {
    case Role::EMBED:
    case Role::LM_HEAD:
      return {hp.vocab_size, hp.hidden_size};
    case Role::INPUT_NORM:
    case Role::POST_NORM:
    case Role::FINAL_NORM:
      return {hp.hidden_size};
    case Role::Q_NORM:
      return {hp.q_dim()};
    case Role::K_NORM:
      return {hp.kv_dim()};
    case Role::ROUTER_BIAS:
      return {hp.num_experts};
    case Role::Q_PROJ:
      return {hp.hidden_size, hp.q_dim()};
    case Role::K_PROJ:
    case Role::V_PROJ:
      return {hp.hidden_size, hp.kv_dim()};
    case Role::O_PROJ:
      return {hp.q_dim(), hp.hidden_size};
    case Role::ROUTER:
      return {hp.hidden_size, hp.num_experts};
    case Role::EXPERT_W1:
    case Role::EXPERT_W3:
      return {hp.hidden_size, hp.intermediate_size};
    case Role::EXPERT_W2:
      return {hp.intermediate_size, hp.hidden_size};
    case Role::COUNT:
      break;
  }
  return {};
}

}  // namespace mm::minimax_m2
