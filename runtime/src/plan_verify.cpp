#include "runtime/src/plan_verify.h"

#include <algorithm>

#include "codegen/kernels/extents.h"
#include "runtime/src/binding.h"
#include "runtime/src/plan_reader.h"

namespace mm::rt {

namespace {

using plan::InputSlot;
using plan::OperandKind;

// The compiler places buffers at multiples of its exec-plan-memory alignment (256 by default) and
// rounds the arena up to it; anything past the last byte a program uses, rounded up to a page, is
// not from the compiler.
constexpr uint64_t kArenaSlack = 4096;

std::string bytes_str(uint64_t b) {
  return b == UINT64_MAX ? std::string("more than 2^64") : std::to_string(b);
}

// A kernel parameter the plan stores as an integer; `found` false when absent.
int64_t int_param(const plan::KernelDef& k, const char* name, bool* found) {
  *found = false;
  if (k.params())
    for (const plan::ParamDef* p : *k.params())
      if (p->name()->string_view() == name) {
        *found = true;
        return p->i();
      }
  return 0;
}

// Parameters that must equal a field of the model table or the limits: the kernels index the
// weights, the KV pools and the runtime's inputs with them, and the runtime sizes those from the
// tables (logits from vocab_size, KV blocks from num_kv_heads and head_dim, block tables from
// max_seq_len and kv_block_size). A kernel compiled for another model reads out of bounds.
Status check_kernel_agrees(const plan::PlanDef& def, const plan::KernelDef& k, const std::string& where) {
  const auto& m = *def.model();
  const auto& l = *def.limits();
  const int64_t max_blocks = (l.max_seq_len() + l.kv_block_size() - 1) / l.kv_block_size();
  // A tensor-parallel rank computes its share of the heads (docs/parallel.md); the reader has
  // checked that tp divides num_kv_heads.
  const int64_t tp = def.tp() > 1 ? def.tp() : 1;
  const std::string per_rank = tp > 1 ? " / tp " + std::to_string(tp) : "";
  const std::string nq_field = "model.num_heads" + per_rank, nkv_field = "model.num_kv_heads" + per_rank;
  // An expert-parallel rank's expert kernels hold num_experts / ep experts, from E0 on (the router
  // still scores all of them); the reader has checked that ep divides num_experts.
  const int64_t ep = def.ep() > 1 ? def.ep() : 1;
  const bool expert_kernel = k.kind() == plan::KernelKind::MOE_ALIGN || k.kind() == plan::KernelKind::MOE_W13 ||
                             k.kind() == plan::KernelKind::MOE_W2;
  const std::string e_field = "model.num_experts" + std::string(expert_kernel && ep > 1 ? " / ep " + std::to_string(ep) : "");
  const struct {
    const char* param;
    const char* field;
    int64_t value;
  } rules[] = {
      {"H", "model.hidden_size", m.hidden_size()},
      {"V", "model.vocab_size", m.vocab_size()},
      {"E", e_field.c_str(), expert_kernel ? m.num_experts() / ep : m.num_experts()},
      {"TOPK", "model.top_k", m.top_k()},
      {"I", "model.intermediate_size", m.intermediate_size()},
      {"NQ", nq_field.c_str(), m.num_heads() / tp},
      {"NKV", nkv_field.c_str(), m.num_kv_heads() / tp},
      {"D", "model.head_dim", m.head_dim()},
      {"DR", "model.rotary_dim", m.rotary_dim()},
      {"KVDT", "limits.kv_dtype (0 BF16, 3 FP8_E4M3)", l.kv_dtype() == plan::DType::FP8_E4M3 ? 3 : 0},
      {"BLOCK", "limits.kv_block_size", l.kv_block_size()},
      {"MAX_BLOCKS", "ceil(limits.max_seq_len / limits.kv_block_size)", max_blocks},
  };
  for (const auto& r : rules) {
    bool found = false;
    const int64_t v = int_param(k, r.param, &found);
    if (found && v != r.value)
      return Error::bad_input(where + ": kernel '" + k.name()->str() + "' has " + r.param + " = " +
                              std::to_string(v) + " but " + r.field + " = " + std::to_string(r.value) +
                              " (a kernel parameter that must agree with the plan's model table)");
  }
  // The experts a kernel holds, [E0, E0 + E) (MOE_COMBINE: EL of them), are one rank's range.
  bool has_e0 = false, has_el = false;
  const int64_t e0 = int_param(k, "E0", &has_e0), el = int_param(k, "EL", &has_el);
  const int64_t held = k.kind() == plan::KernelKind::MOE_COMBINE ? (has_el ? el : 0) : m.num_experts() / ep;
  if (has_e0 && held > 0 && (e0 < 0 || e0 % held != 0 || e0 + held > m.num_experts() ||
                             (k.kind() == plan::KernelKind::MOE_COMBINE && held != m.num_experts() / ep)))
    return Error::bad_input(where + ": kernel '" + k.name()->str() + "' holds experts [" + std::to_string(e0) +
                            ", " + std::to_string(e0 + held) + "), which is not one of the " + std::to_string(ep) +
                            " expert-parallel ranges of model.num_experts = " + std::to_string(m.num_experts()));
  return Status::success();
}

// The largest dims a call of the program passes (plan.fbs, ProgramDef; the sessions and both
// executors keep to them): prefill T <= max_tokens with one logit row; decode T = R = S = B <=
// min(max_tokens, max_batch). Other programs are never run; they get the loosest bounds.
kernels::CallBounds call_bounds(const plan::PlanDef& def, const plan::ProgramDef& prog) {
  const int64_t max_batch = def.limits()->max_batch();
  kernels::CallBounds b;
  b.seqs = max_batch;
  const std::string_view name = prog.name()->string_view();
  if (name == "prefill") {
    b.T = prog.max_tokens();
    b.R = 1;
  } else if (name == "decode") {
    b.T = b.R = std::min<int64_t>(prog.max_tokens(), max_batch);
  } else {
    b.T = b.R = prog.max_tokens();
  }
  return b;
}

// Bytes of a runtime input as the sessions and executors provide it for calls within `b`
// (cuda_executor.cpp open_device, session.cpp).
uint64_t input_bytes(const plan::PlanDef& def, InputSlot slot, const kernels::CallBounds& b) {
  const uint64_t T = static_cast<uint64_t>(b.T), R = static_cast<uint64_t>(b.R);
  const auto& l = *def.limits();
  const uint64_t max_blocks = static_cast<uint64_t>((l.max_seq_len() + l.kv_block_size() - 1) / l.kv_block_size());
  switch (slot) {
    case InputSlot::TOKENS: case InputSlot::POSITIONS: case InputSlot::SEQ_SLOTS: return 4 * T;
    case InputSlot::BLOCK_TABLES: return 4 * static_cast<uint64_t>(l.max_batch()) * max_blocks;
    case InputSlot::LOGIT_ROWS: case InputSlot::TEMPERATURE: case InputSlot::TOP_K:
    case InputSlot::TOP_P: case InputSlot::SAMPLED: return 4 * R;
    case InputSlot::SEED: return 8 * R;
    case InputSlot::LOGITS: return 4 * R * static_cast<uint64_t>(def.model()->vocab_size());
    default: return 0;  // KV slots are not inputs (the reader refused them as INPUT)
  }
}

// Whether a weight of plan dtype `dt` holds the elements a kernel reads as `elem`.
bool weight_dtype_fits(plan::DType dt, const std::string& elem) {
  switch (dt) {
    case plan::DType::BF16: return elem == "bf16";
    case plan::DType::F16: return elem == "f16";
    case plan::DType::F32: return elem == "f32";
    case plan::DType::I32: return elem == "i32" || elem == "u32";  // int4 words are stored as I32
    case plan::DType::FP8_E4M3: return elem == "fp8";
    default: return false;
  }
}

// "qw", or "x/logits" for a slot with an alias.
std::string slot_name(kernels::Kind kind, int slot) {
  std::string n;
  for (const kernels::OperandInfo& o : kernels::kind_info(kind).operands)
    if (o.slot == slot) n += (n.empty() ? "" : "/") + std::string(o.name);
  return n;
}

const char* kv_slot_name(int which) {
  static const char* const names[] = {"KV_K", "KV_V", "KV_K_SCALE", "KV_V_SCALE"};
  return which >= 0 && which < 4 ? names[which] : "?";
}

}  // namespace

Status verify_plan_semantics(const plan::PlanDef& def, const std::vector<RefParams>& params,
                             const std::string& origin) {
  auto fail = [&](const std::string& msg) -> Status { return Error::bad_input(origin + ": " + msg); };
  const KvLayout kv = kv_layout(def);
  for (const plan::ProgramDef* prog : *def.programs()) {
    const std::string pname = "program '" + prog->name()->str() + "'";
    const kernels::CallBounds bounds = call_bounds(def, *prog);
    // The arena follows from the program: its buffers and arena operands, no more.
    uint64_t used = 0;
    if (prog->buffers())
      for (const plan::BufferDef* b : *prog->buffers()) used = std::max(used, b->offset() + b->size());
    if (prog->launches())
      for (const plan::LaunchDef* l : *prog->launches())
        for (const plan::OperandDef* o : *l->operands())
          if (o->kind() == OperandKind::ARENA) used = std::max(used, o->offset() + o->size());
    const uint64_t slack_end = (used + kArenaSlack - 1) / kArenaSlack * kArenaSlack;
    if (prog->arena_bytes() > kMaxArenaBytes || prog->arena_bytes() > slack_end)
      return fail(pname + ": arena_bytes = " + std::to_string(prog->arena_bytes()) +
                  " but the program's buffers and operands end at byte " + std::to_string(used) +
                  " (expected at most that, rounded up to " + std::to_string(kArenaSlack) +
                  ", and at most 2^40)");
    if (!prog->launches()) continue;
    for (size_t li = 0; li < prog->launches()->size(); ++li) {
      const plan::LaunchDef& l = *prog->launches()->Get(li);
      const std::string where = pname + " launches[" + std::to_string(li) + "]" +
                                (l.note() ? " (" + l.note()->str() + ")" : "");
      const plan::KernelDef& k = *def.kernels()->Get(l.kernel());
      if (Status st = check_kernel_agrees(def, k, where); !st) return fail(st.error().message);
      const kernels::Kind kind = registry_kind(k.kind());
      const std::vector<kernels::SlotExtent> ext = kernels::slot_extents(kind, params[l.kernel()], bounds);
      for (size_t oi = 0; oi < ext.size() && oi < l.operands()->size(); ++oi) {
        const kernels::SlotExtent& e = ext[oi];
        const plan::OperandDef& o = *l.operands()->Get(oi);
        const std::string ow = where + " operand " + std::to_string(oi) + " '" +
                               slot_name(kind, static_cast<int>(oi)) + "'";
        const std::string kname = kind_name(k.kind());
        if (e.what == kernels::SlotExtent::UNUSED) continue;  // NONE, checked by the reader
        if (e.what == kernels::SlotExtent::KV) {
          // Indexed by block ids up to the session's KV blocks: only the KV pool of that
          // layout is large enough.
          const int want = static_cast<int>(InputSlot::KV_K) + e.kv;
          if (o.kind() != OperandKind::KV || static_cast<int>(o.slot()) != want)
            return fail(ow + ": " + kname + " indexes KV blocks here; expected the KV operand " +
                        kv_slot_name(e.kv) + ", the launch passes " +
                        (o.kind() == OperandKind::KV ? kv_slot_name(static_cast<int>(o.slot()) - static_cast<int>(InputSlot::KV_K))
                                                     : plan::EnumNameOperandKind(o.kind())));
          const uint64_t have = e.kv < 2 ? kv.pool_bytes_per_block : kv.scale_bytes_per_block;
          if (e.bytes != have)
            return fail(ow + ": " + kname + " blocks are " + e.shape + " = " + bytes_str(e.bytes) +
                        " bytes, the plan's KV cache has " + std::to_string(have) +
                        " bytes per block (limits.kv_block_size x model.num_kv_heads x model.head_dim)");
          continue;
        }
        uint64_t have = 0;
        std::string what;
        switch (o.kind()) {
          case OperandKind::ARENA:
            if (o.offset() % kArenaOperandAlignment != 0)
              return fail(ow + ": arena offset " + std::to_string(o.offset()) + " is not a multiple of " +
                          std::to_string(kArenaOperandAlignment) + " (kernels load 16-byte vectors)");
            have = o.size();
            what = "the arena range [" + std::to_string(o.offset()) + ", +" + std::to_string(o.size()) + ")";
            break;
          case OperandKind::WEIGHT: {
            const plan::WeightDef& w = *def.weights()->Get(o.index());
            if (!weight_dtype_fits(w.dtype(), e.elem))
              return fail(ow + ": " + kname + " reads " + e.elem + " elements here, weight '" +
                          w.name()->str() + "' is " + plan_dtype_name(w.dtype()));
            // The packed words' layout is the one the kernel was compiled for (kinds.def QL).
            if (w.role() == plan::WeightRole::QWEIGHT && slot_name(kind, static_cast<int>(oi)) == "qw") {
              bool found = false;
              const int64_t ql = int_param(k, "QL", &found);
              const int64_t have_ql = w.qlayout() == plan::QuantLayout::STRIPS32 ? 1 : 0;
              if (ql != have_ql)
                return fail(ow + ": kernel '" + k.name()->str() + "' reads QL = " + std::to_string(ql) +
                            " words, weight '" + w.name()->str() + "' is laid out " +
                            plan::EnumNameQuantLayout(w.qlayout()));
            }
            have = w.nbytes();
            what = "weight '" + w.name()->str() + "'";
            break;
          }
          case OperandKind::INPUT:
            have = input_bytes(def, o.slot(), bounds);
            what = std::string("input ") + plan::EnumNameInputSlot(o.slot());
            break;
          case OperandKind::KV:
            return fail(ow + ": a KV pool (" +
                        kv_slot_name(static_cast<int>(o.slot()) - static_cast<int>(InputSlot::KV_K)) +
                        ") where " + kname + " expects a " + e.shape + " buffer");
          default:
            continue;
        }
        if (e.bytes > have)
          return fail(ow + ": " + kname + " touches " + e.shape + " = " + bytes_str(e.bytes) +
                      " bytes with its parameters at T = " + std::to_string(bounds.T) + ", R = " +
                      std::to_string(bounds.R) + ", but " + what + " holds " + std::to_string(have));
      }
    }
  }
  return Status::success();
}

}  // namespace mm::rt
