// MiniMax-M2 as data: hyper-parameters and the tensor-name table (../shared/docs/minimax-m2-spec.md
// sections 1 and 2). MLIR-free: the reader, the synthesizer, the graph builder and the runtime's
// weight binder all take tensor names and shapes from here, so they are spelled exactly once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/dtype.h"

namespace mm::minimax_m2 {

struct HParams {
  int64_t hidden_size = 0;          // H
  int64_t intermediate_size = 0;    // I, per expert
  int64_t num_layers = 0;           // L
  int64_t num_heads = 0;            // Nq
  int64_t num_kv_heads = 0;         // Nkv
  int64_t head_dim = 0;             // D
  int64_t rotary_dim = 0;           // Dr (partial RoPE on the first Dr dims of each head)
  int64_t num_experts = 0;          // E (num_local_experts)
  int64_t top_k = 0;                // num_experts_per_tok
  int64_t vocab_size = 0;           // V
  int64_t max_position_embeddings = 0;
  double rope_theta = 0;
  double rms_norm_eps = 0;
  int64_t bos_token_id = -1;        // from generation_config.json if present, else -1
  std::vector<int64_t> eos_token_ids;  // from generation_config.json if present

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
};

// Where a tensor sits in the model (the builder and the synthesizer name tensors through it).
enum class Role : uint8_t {
  EMBED,          // model.embed_tokens.weight                          [V, H]
  INPUT_NORM,     // model.layers.L.input_layernorm.weight              [H]
  Q_PROJ,         // model.layers.L.self_attn.q_proj                    linear H -> Nq*D
  K_PROJ,         // model.layers.L.self_attn.k_proj                    linear H -> Nkv*D
  V_PROJ,         // model.layers.L.self_attn.v_proj                    linear H -> Nkv*D
  O_PROJ,         // model.layers.L.self_attn.o_proj                    linear Nq*D -> H
  Q_NORM,         // model.layers.L.self_attn.q_norm.weight             [Nq*D]
  K_NORM,         // model.layers.L.self_attn.k_norm.weight             [Nkv*D]
  POST_NORM,      // model.layers.L.post_attention_layernorm.weight     [H]
  ROUTER,         // model.layers.L.block_sparse_moe.gate               linear H -> E (16-bit)
  ROUTER_BIAS,    // model.layers.L.block_sparse_moe.e_score_correction_bias  [E]
  EXPERT_W1,      // model.layers.L.block_sparse_moe.experts.X.w1       linear H -> I (gate)
  EXPERT_W3,      // model.layers.L.block_sparse_moe.experts.X.w3       linear H -> I (up)
  EXPERT_W2,      // model.layers.L.block_sparse_moe.experts.X.w2       linear I -> H (down)
  FINAL_NORM,     // model.norm.weight                                  [H]
  LM_HEAD,        // lm_head.weight                                     [V, H]
  COUNT
};

enum class RoleKind : uint8_t {
  VECTOR,  // one 1-D tensor "<prefix>.weight" (norms) or "<prefix>" (the router bias)
  MATRIX,  // one 2-D 16-bit tensor "<prefix>.weight" [rows, cols] (embedding, lm_head)
  LINEAR,  // a Linear: "<prefix>.weight" [N, K] if 16-bit, or .qweight/.qzeros/.scales(/.g_idx)
};

struct RoleInfo {
  Role role;
  RoleKind kind;
  bool per_layer;
  bool per_expert;
  const char* pattern;  // "{L}" and "{E}" are replaced by layer and expert index
};

const RoleInfo& role_info(Role role);
const char* role_name(Role role);  // "q_proj", "expert_w1", ...

// The tensor prefix of (role, layer, expert), e.g. (Q_PROJ, 3, -1) -> "model.layers.3.self_attn.q_proj".
std::string tensor_prefix(Role role, int64_t layer, int64_t expert);

// Logical shape of a role: for VECTOR {n}; MATRIX {rows, cols}; LINEAR {K (in), N (out)}.
std::vector<int64_t> role_shape(Role role, const HParams& hp);

}  // namespace mm::minimax_m2
