#include "runtime/src/plan_reader.h"

#include "runtime/schemas/plan_checksum.h"
#include "runtime/src/plan_verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "flatbuffers/flatbuffers.h"

namespace mm::rt {

namespace {

using plan::DType;
using plan::OperandKind;
using plan::WeightTransform;

// Larger than any real plan needs (the 62-layer target has ~110k tensor references); the
// verifier's defaults (1M tables) would reject a legitimate full-size plan.
constexpr flatbuffers::uoffset_t kMaxTables = 1u << 28;
constexpr size_t kMaxPlanBytes = size_t{1} << 34;  // 16 GiB: plans are small, cubins included

bool mul_overflow(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

// Product of a shape times an element size, or false on a negative dim or overflow.
bool shape_bytes(const flatbuffers::Vector<int64_t>* shape, size_t elem, uint64_t* out) {
  uint64_t n = elem;
  if (shape)
    for (int64_t d : *shape) {
      if (d < 0 || mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
    }
  *out = n;
  return true;
}

std::string shape_str(const flatbuffers::Vector<int64_t>* shape) {
  std::string s = "[";
  if (shape)
    for (size_t i = 0; i < shape->size(); ++i) s += (i ? ", " : "") + std::to_string(shape->Get(i));
  return s + "]";
}

bool dtype_known(DType dt) { return static_cast<int>(dt) <= static_cast<int>(DType::MAX); }

int64_t dim(const flatbuffers::Vector<int64_t>* shape, size_t i) {
  return shape && i < shape->size() ? shape->Get(i) : -1;
}
size_t rank(const flatbuffers::Vector<int64_t>* shape) { return shape ? shape->size() : 0; }

// A shard name must stay inside the model directory.
bool safe_relative_path(const std::string& f) {
  if (f.empty() || f[0] == '/') return false;
  size_t start = 0;
  while (start <= f.size()) {
    size_t end = f.find('/', start);
    if (end == std::string::npos) end = f.size();
    std::string part = f.substr(start, end - start);
    if (part == ".." || part.empty()) return false;
    start = end + 1;
  }
  return true;
}

// flatbuffers 2.0's verifier checks only that a vector's length field is 4-byte aligned; the
// elements of a vector of 8-byte scalars or structs must be 8-byte aligned as well (the builder
// always places them so), or reading them is a misaligned load (fuzz_plan found it under UBSan).
// Returns "" or the vector at fault.
template <class V>
bool misaligned8(const V* v) {
  return v && reinterpret_cast<uintptr_t>(v->Data()) % 8 != 0;
}
std::string misaligned_vector(const plan::PlanDef& p) {
  if (p.model() && misaligned8(p.model()->eos_token_ids())) return "model.eos_token_ids";
  if (p.weights())
    for (size_t wi = 0; wi < p.weights()->size(); ++wi) {
      const plan::WeightDef& w = *p.weights()->Get(wi);
      if (misaligned8(w.shape())) return "weights[" + std::to_string(wi) + "].shape";
      if (w.sources())
        for (size_t si = 0; si < w.sources()->size(); ++si)
          if (misaligned8(w.sources()->Get(si)->shape()))
            return "weights[" + std::to_string(wi) + "].sources[" + std::to_string(si) + "].shape";
    }
  if (p.programs())
    for (size_t pi = 0; pi < p.programs()->size(); ++pi) {
      const plan::ProgramDef& prog = *p.programs()->Get(pi);
      if (prog.launches())
        for (size_t li = 0; li < prog.launches()->size(); ++li)
          if (misaligned8(prog.launches()->Get(li)->grid()))
            return "programs[" + std::to_string(pi) + "].launches[" + std::to_string(li) + "].grid";
    }
  return "";
}

class Checker {
 public:
  Checker(const plan::PlanDef& p, const std::string& origin) : p_(p), origin_(origin) {}

  Status fail(const std::string& msg) { return Error::bad_input(origin_ + ": " + msg); }

  Status check_header() {
    if (!p_.model()) return fail("the plan has no model table");
    if (!p_.limits()) return fail("the plan has no limits table");
    if (!p_.programs()) return fail("the plan has no programs");
    if (p_.tp() < 1 || p_.tp() > 16 || (p_.model() && p_.model()->num_kv_heads() % p_.tp() != 0))
      return fail("tp = " + std::to_string(p_.tp()) + " must be in [1, 16] and divide num_kv_heads");
    if (p_.ep() < 1 || p_.ep() > 16 || (p_.model() && p_.model()->num_experts() % p_.ep() != 0) ||
        (p_.tp() > 1 && p_.ep() > 1 && p_.ep() != p_.tp()))
      return fail("ep = " + std::to_string(p_.ep()) +
                  " must be in [1, 16], divide num_experts and be 1 or tp (" + std::to_string(p_.tp()) + ")");
    const plan::ModelDef& m = *p_.model();
    struct { const char* name; int64_t v; } pos[] = {
        {"hidden_size", m.hidden_size()}, {"num_layers", m.num_layers()},
        {"num_heads", m.num_heads()},     {"num_kv_heads", m.num_kv_heads()},
        {"head_dim", m.head_dim()},       {"num_experts", m.num_experts()},
        {"top_k", m.top_k()},             {"vocab_size", m.vocab_size()}};
    for (auto& f : pos)
      if (f.v <= 0 || f.v > (int64_t{1} << 31))
        return fail("model." + std::string(f.name) + " = " + std::to_string(f.v) +
                    " (expected a positive count)");
    const plan::LimitsDef& l = *p_.limits();
    if (l.max_seq_len() <= 0 || l.max_seq_len() > (int64_t{1} << 31))
      return fail("limits.max_seq_len = " + std::to_string(l.max_seq_len()) + " (expected > 0)");
    if (l.max_batch() <= 0 || l.max_batch() > (1 << 20))
      return fail("limits.max_batch = " + std::to_string(l.max_batch()) + " (expected > 0)");
    if (l.max_prefill_tokens() <= 0 || l.max_prefill_tokens() > (int64_t{1} << 24))
      return fail("limits.max_prefill_tokens = " + std::to_string(l.max_prefill_tokens()) +
                  " (expected > 0)");
    if (l.kv_dtype() != DType::BF16 && l.kv_dtype() != DType::FP8_E4M3)
      return fail("limits.kv_dtype = " + std::to_string(static_cast<int>(l.kv_dtype())) +
                  " (expected BF16 or FP8_E4M3)");
    if (l.kv_block_size() <= 0 || l.kv_block_size() > 4096)
      return fail("limits.kv_block_size = " + std::to_string(l.kv_block_size()) +
                  " (expected 1..4096)");
    return Status::success();
  }

  Status check_weights() {
    if (!p_.weights()) return Status::success();
    for (size_t wi = 0; wi < p_.weights()->size(); ++wi) {
      const plan::WeightDef& w = *p_.weights()->Get(wi);
      const std::string where = "weights[" + std::to_string(wi) + "] '" + w.name()->str() + "'";
      if (!dtype_known(w.dtype())) return fail(where + ": unknown dtype");
      uint64_t bytes = 0;
      if (!shape_bytes(w.shape(), plan_dtype_size(w.dtype()), &bytes))
        return fail(where + ": shape " + shape_str(w.shape()) + " has a negative or overflowing size");
      // CHECK_ZEROS weights are never allocated: nbytes 0 is accepted for them.
      const bool unallocated = w.transform() == WeightTransform::CHECK_ZEROS && w.nbytes() == 0;
      if (bytes != w.nbytes() && !unallocated)
        return fail(where + ": nbytes = " + std::to_string(w.nbytes()) + " but shape " +
                    shape_str(w.shape()) + " x " + plan_dtype_name(w.dtype()) + " is " +
                    std::to_string(bytes) + " bytes");
      if (static_cast<int>(w.transform()) > static_cast<int>(WeightTransform::MAX))
        return fail(where + ": unknown transform " + std::to_string(static_cast<int>(w.transform())));
      if (!w.sources() || w.sources()->size() == 0) return fail(where + ": no source tensors");
      if (static_cast<int>(w.role()) > static_cast<int>(plan::WeightRole::MAX))
        return fail(where + ": unknown role " + std::to_string(static_cast<int>(w.role())));
      if (w.fan_in() <= 0) return fail(where + ": fan_in = " + std::to_string(w.fan_in()) + " must be positive");
      if (w.transform() != WeightTransform::CONCAT_N && w.concat_axis() != -1)
        return fail(where + ": concat_axis = " + std::to_string(w.concat_axis()) + " on a " +
                    plan::EnumNameWeightTransform(w.transform()) + " weight (only CONCAT_N has one)");
      for (size_t si = 0; si < w.sources()->size(); ++si) {
        const plan::TensorRefDef& s = *w.sources()->Get(si);
        const std::string sw = where + " source '" + s.name()->str() + "'";
        if (!dtype_known(s.dtype())) return fail(sw + ": unknown dtype");
        uint64_t sb = 0;
        if (!shape_bytes(s.shape(), plan_dtype_size(s.dtype()), &sb) || sb != s.nbytes())
          return fail(sw + ": nbytes = " + std::to_string(s.nbytes()) + " does not match shape " +
                      shape_str(s.shape()) + " x " + plan_dtype_name(s.dtype()));
        if (!safe_relative_path(s.file()->str()))
          return fail(sw + ": file '" + s.file()->str() +
                      "' must be a relative path inside the model directory");
        uint64_t end = 0;
        if (__builtin_add_overflow(s.offset(), s.nbytes(), &end))
          return fail(sw + ": offset + nbytes overflows");
        if (s.slice_dim() != -1) {
          const int64_t sd = s.slice_dim();
          if (w.transform() != WeightTransform::COPY && w.transform() != WeightTransform::CONCAT_N)
            return fail(sw + ": a sliced source needs transform COPY or CONCAT_N, not " +
                        plan::EnumNameWeightTransform(w.transform()));
          const int64_t extent = sd >= 0 ? dim(s.shape(), static_cast<size_t>(sd)) : -1;
          if (sd < 0 || static_cast<size_t>(sd) >= rank(s.shape()) || s.slice_start() < 0 ||
              s.slice_len() <= 0 || s.slice_start() > extent - s.slice_len())
            return fail(sw + ": slice [" + std::to_string(s.slice_start()) + ", +" +
                        std::to_string(s.slice_len()) + ") along dim " + std::to_string(sd) +
                        " is outside its shape " + shape_str(s.shape()));
        }
      }
      if (Status st = check_transform(w, where); !st) return st;
      if (Status st = check_qlayout(w, where); !st) return st;
    }
    return Status::success();
  }

  // STRIPS32 (plan.fbs QuantLayout): the loader lays each source's rows out strip by strip, so
  // every source must bring whole strips of 32 columns.
  Status check_qlayout(const plan::WeightDef& w, const std::string& where) {
    if (static_cast<int>(w.qlayout()) > static_cast<int>(plan::QuantLayout::MAX))
      return fail(where + ": unknown qlayout " + std::to_string(static_cast<int>(w.qlayout())));
    if (w.qlayout() == plan::QuantLayout::ROWS) return Status::success();
    const size_t r = rank(w.shape());
    if (w.role() != plan::WeightRole::QWEIGHT || w.dtype() != DType::I32 || r < 2)
      return fail(where + ": qlayout STRIPS32 is for I32 QWEIGHT matrices (this one is " +
                  plan::EnumNameWeightRole(w.role()) + ", " + plan_dtype_name(w.dtype()) + ", rank " +
                  std::to_string(r) + ")");
    const auto t = w.transform();
    const bool stacked = t == WeightTransform::STACK_EXPERTS || t == WeightTransform::STACK_EXPERTS_W13;
    if (t != WeightTransform::COPY && t != WeightTransform::CONCAT_N && !stacked)
      return fail(where + ": qlayout STRIPS32 does not apply to transform " + plan::EnumNameWeightTransform(t));
    const bool fits = stacked ? r == 3 : t == WeightTransform::COPY ? (r == 2 || r == 3) : r == 2;
    if (!fits)
      return fail(where + ": qlayout STRIPS32 needs a " +
                  (stacked ? "[E, K/8, N]" : t == WeightTransform::COPY ? "[K/8, N] or [E, K/8, N]" : "[K/8, N]") +
                  " weight, got " + shape_str(w.shape()));
    for (const plan::TensorRefDef* s : *w.sources()) {
      const int64_t cols = dim(s->shape(), rank(s->shape()) - 1);
      if (s->slice_dim() > 0)
        return fail(where + " source '" + s->name()->str() + "': qlayout STRIPS32 takes sources whole or sliced along dim 0");
      if (cols % 32 != 0)
        return fail(where + " source '" + s->name()->str() + "': qlayout STRIPS32 needs whole strips of 32 columns, the source has " +
                    std::to_string(cols));
    }
    return Status::success();
  }

  // The shapes a load-time transform needs, so that the loader's copies stay in bounds.
  Status check_transform(const plan::WeightDef& w, const std::string& where) {
    const auto* out = w.shape();
    const auto& src = *w.sources();
    const size_t n = src.size();
    // A sliced source (a tensor-parallel rank's part, docs/parallel.md) enters the transform with
    // its sliced shape; check_weights checked the slice against the tensor.
    auto sdim = [](const plan::TensorRefDef* s, size_t d) {
      return s->slice_dim() >= 0 && static_cast<size_t>(s->slice_dim()) == d ? s->slice_len()
                                                                            : dim(s->shape(), d);
    };
    auto srank = [](const plan::TensorRefDef* s) { return rank(s->shape()); };
    auto sbytes = [&](const plan::TensorRefDef* s) {
      if (s->slice_dim() < 0) return s->nbytes();
      return s->nbytes() / static_cast<uint64_t>(dim(s->shape(), static_cast<size_t>(s->slice_dim()))) *
             static_cast<uint64_t>(s->slice_len());
    };
    auto same_dtype = [&]() -> Status {
      for (const plan::TensorRefDef* s : src)
        if (s->dtype() != w.dtype())
          return fail(where + ": source '" + s->name()->str() + "' is " +
                      plan_dtype_name(s->dtype()) + " but the weight is " +
                      plan_dtype_name(w.dtype()) + " (this transform does not convert)");
      return Status::success();
    };
    auto elems = [&](const plan::TensorRefDef* s) {
      return sbytes(s) / plan_dtype_size(s->dtype());
    };
    const uint64_t out_elems = w.nbytes() / plan_dtype_size(w.dtype());
    switch (w.transform()) {
      case WeightTransform::COPY:
        if (n != 1) return fail(where + ": COPY takes 1 source, got " + std::to_string(n));
        if (Status st = same_dtype(); !st) return st;
        if (sbytes(src[0]) != w.nbytes())
          return fail(where + ": COPY source is " + std::to_string(sbytes(src[0])) +
                      " bytes, the weight " + std::to_string(w.nbytes()));
        return Status::success();
      case WeightTransform::UPCAST_F32:
        if (n != 1) return fail(where + ": UPCAST_F32 takes 1 source, got " + std::to_string(n));
        if (w.dtype() != DType::F32) return fail(where + ": UPCAST_F32 produces F32");
        if (src[0]->dtype() != DType::BF16 && src[0]->dtype() != DType::F16 &&
            src[0]->dtype() != DType::F32)
          return fail(where + ": UPCAST_F32 source must be BF16, F16 or F32");
        if (elems(src[0]) != out_elems)
          return fail(where + ": UPCAST_F32 source has " + std::to_string(elems(src[0])) +
                      " elements, the weight " + std::to_string(out_elems));
        return Status::success();
      case WeightTransform::CONCAT_N: {
        if (Status st = same_dtype(); !st) return st;
        const size_t r = rank(out);
        if (r == 0) return fail(where + ": CONCAT_N needs a shaped weight");
        const int axis = w.concat_axis();
        if (axis != 0 && axis != static_cast<int>(r) - 1)
          return fail(where + ": CONCAT_N concat_axis = " + std::to_string(axis) + "; expected 0 or " +
                      std::to_string(r - 1) + " (the last dim)");
        int64_t sum = 0;
        for (const plan::TensorRefDef* s : src) {
          if (srank(s) != r) return fail(where + ": CONCAT_N source rank differs from the weight's");
          for (size_t d = 0; d < r; ++d)
            if (static_cast<int>(d) != axis && sdim(s, d) != dim(out, d))
              return fail(where + ": CONCAT_N source '" + s->name()->str() + "' differs from " + shape_str(out) +
                          " outside dim " + std::to_string(axis));
          sum += sdim(s, static_cast<size_t>(axis));
        }
        if (sum != dim(out, static_cast<size_t>(axis)))
          return fail(where + ": CONCAT_N sources add up to " + std::to_string(sum) + " along dim " +
                      std::to_string(axis) + ", the weight has " + std::to_string(dim(out, static_cast<size_t>(axis))));
        return Status::success();
      }
      case WeightTransform::STACK_EXPERTS:
      case WeightTransform::STACK_EXPERTS_W13: {
        if (Status st = same_dtype(); !st) return st;
        const bool w13 = w.transform() == WeightTransform::STACK_EXPERTS_W13;
        const size_t r = rank(out);
        if (r < 2) return fail(where + ": a stacked weight needs rank >= 2");
        const uint64_t experts = static_cast<uint64_t>(dim(out, 0));
        if (n != experts * (w13 ? 2 : 1))
          return fail(where + ": " + (w13 ? "STACK_EXPERTS_W13 needs 2 x " : "STACK_EXPERTS needs ") +
                      std::to_string(experts) + " sources, got " + std::to_string(n));
        if (w13 && dim(out, r - 1) % 2 != 0)
          return fail(where + ": STACK_EXPERTS_W13 last dimension must be even");
        for (const plan::TensorRefDef* s : src) {
          bool ok = srank(s) == r - 1;
          for (size_t d = 1; ok && d < r; ++d) {
            int64_t want = dim(out, d);
            if (w13 && d + 1 == r) want /= 2;
            ok = sdim(s, d - 1) == want;
          }
          if (!ok)
            return fail(where + ": source '" + s->name()->str() + "' has shape " +
                        shape_str(s->shape()) + ", which does not stack into " + shape_str(out));
        }
        return Status::success();
      }
      case WeightTransform::CHECK_ZEROS:
        for (const plan::TensorRefDef* s : src)
          if (s->dtype() != DType::I32)
            return fail(where + ": CHECK_ZEROS source '" + s->name()->str() + "' must be I32");
        return Status::success();
    }
    return fail(where + ": unknown transform");
  }

  Status check_kernels(std::vector<RefParams>& params) {
    if (!p_.kernels()) return Status::success();
    for (size_t ki = 0; ki < p_.kernels()->size(); ++ki) {
      const plan::KernelDef& k = *p_.kernels()->Get(ki);
      const std::string where = "kernels[" + std::to_string(ki) + "] '" + k.name()->str() + "'";
      auto pr = parse_kernel_params(k, origin_ + ": " + where);
      if (!pr) return pr.error();
      params.push_back(*pr);
      // A collective joins all the plan's ranks (the host backend's rank group has one member each).
      if (k.kind() == plan::KernelKind::ALL_REDUCE &&
          std::get<kernels::AllReduceParams>(*pr).RANKS != ranks())
        return fail(where + ": ALL_REDUCE over RANKS = " +
                    std::to_string(std::get<kernels::AllReduceParams>(*pr).RANKS) + " in a plan of " +
                    std::to_string(ranks()) + " ranks");
      if (k.binaries())
        for (const plan::BinaryDef* b : *k.binaries())
          if (!b->cubin() || b->cubin()->size() == 0)
            return fail(where + ": the " + b->arch()->str() + " binary has no cubin bytes");
    }
    return Status::success();
  }

  Status check_programs(const std::vector<RefParams>& params, uint64_t* max_arena) {
    std::set<std::string> names;
    const size_t nweights = p_.weights() ? p_.weights()->size() : 0;
    const size_t nkernels = p_.kernels() ? p_.kernels()->size() : 0;
    const bool fp8 = p_.limits()->kv_dtype() == DType::FP8_E4M3;
    for (size_t pi = 0; pi < p_.programs()->size(); ++pi) {
      const plan::ProgramDef& prog = *p_.programs()->Get(pi);
      if (prog.rank() < 0 || prog.rank() >= ranks())
        return fail("program '" + prog.name()->str() + "' is for rank " + std::to_string(prog.rank()) +
                    "; the plan has " + std::to_string(ranks()) + " ranks");
      // Rank r's programs are named "prefill@r" here (each rank needs both).
      const std::string pname = prog.name()->str() + (prog.rank() ? "@" + std::to_string(prog.rank()) : "");
      if (!names.insert(pname).second) return fail("two programs are named '" + pname + "'");
      if (prog.max_tokens() <= 0 || prog.max_tokens() > (int64_t{1} << 24))
        return fail("program '" + pname + "': max_tokens = " + std::to_string(prog.max_tokens()));
      *max_arena = std::max<uint64_t>(*max_arena, prog.arena_bytes());
      if (prog.buffers())
        for (const plan::BufferDef* b : *prog.buffers()) {
          uint64_t end = 0;
          if (__builtin_add_overflow(b->offset(), b->size(), &end) || end > prog.arena_bytes())
            return fail("program '" + pname + "' buffer '" + b->name()->str() + "': [" +
                        std::to_string(b->offset()) + ", +" + std::to_string(b->size()) +
                        ") exceeds arena_bytes " + std::to_string(prog.arena_bytes()));
        }
      if (!prog.launches()) continue;
      for (size_t li = 0; li < prog.launches()->size(); ++li) {
        const plan::LaunchDef& l = *prog.launches()->Get(li);
        const std::string where = "program '" + pname + "' launches[" + std::to_string(li) + "]" +
                                  (l.note() ? " (" + l.note()->str() + ")" : "");
        if (l.kernel() >= nkernels)
          return fail(where + ": kernel index " + std::to_string(l.kernel()) + " out of range (" +
                      std::to_string(nkernels) + " kernels)");
        const plan::KernelDef& k = *p_.kernels()->Get(l.kernel());
        if (l.grid()) {
          if (l.grid()->size() > 3) return fail(where + ": grid has more than 3 dimensions");
          for (const plan::DimExprDef* g : *l.grid()) {
            if (g->dim() < -1 || g->dim() > MM_DIM_STEP)
              return fail(where + ": grid refers to dim " + std::to_string(g->dim()));
            if (g->div() <= 0) return fail(where + ": grid divisor must be positive");
          }
        }
        const int want = expected_operand_count(k.kind());
        const int got = l.operands() ? static_cast<int>(l.operands()->size()) : 0;
        if (got != want)
          return fail(where + ": " + kind_name(k.kind()) + " takes " + std::to_string(want) +
                      " operands (codegen/kernels/kinds.def), the launch has " + std::to_string(got));
        for (int oi = 0; oi < got; ++oi) {
          const plan::OperandDef& o = *l.operands()->Get(oi);
          const std::string ow = where + " operand " + std::to_string(oi);
          // NONE exactly where the kernel's parameters leave the slot unused (kinds.def).
          const bool wanted = kernels::slot_present(registry_kind(k.kind()), params[l.kernel()], oi);
          if (wanted == (o.kind() == OperandKind::NONE))
            return fail(ow + ": " + kind_name(k.kind()) +
                        (wanted ? " needs this operand with its parameters, the launch passes NONE"
                                : " leaves this slot unused with its parameters, the launch passes a pointer"));
          switch (o.kind()) {
            case OperandKind::ARENA: {
              uint64_t end = 0;
              if (__builtin_add_overflow(o.offset(), o.size(), &end) || end > prog.arena_bytes())
                return fail(ow + ": arena range [" + std::to_string(o.offset()) + ", +" +
                            std::to_string(o.size()) + ") exceeds arena_bytes " +
                            std::to_string(prog.arena_bytes()));
              break;
            }
            case OperandKind::WEIGHT:
              if (o.index() >= nweights)
                return fail(ow + ": weight index " + std::to_string(o.index()) + " out of range (" +
                            std::to_string(nweights) + " weights)");
              if (p_.weights()->Get(o.index())->transform() == WeightTransform::CHECK_ZEROS)
                return fail(ow + ": weight '" + p_.weights()->Get(o.index())->name()->str() +
                            "' is CHECK_ZEROS (verified at load, never allocated)");
              break;
            case OperandKind::INPUT:
              if (static_cast<int>(o.slot()) > static_cast<int>(plan::InputSlot::SAMPLED))
                return fail(ow + ": input slot " + std::to_string(static_cast<int>(o.slot())) +
                            " is not a program input");
              break;
            case OperandKind::KV: {
              const int s = static_cast<int>(o.slot());
              if (s < static_cast<int>(plan::InputSlot::KV_K) ||
                  s > static_cast<int>(plan::InputSlot::KV_V_SCALE))
                return fail(ow + ": KV operand with slot " + std::to_string(s));
              if (!fp8 && s >= static_cast<int>(plan::InputSlot::KV_K_SCALE))
                return fail(ow + ": KV scale operand in a plan whose kv_dtype is BF16");
              if (static_cast<int64_t>(o.index()) >= p_.model()->num_layers())
                return fail(ow + ": KV layer " + std::to_string(o.index()) + " out of range (" +
                            std::to_string(p_.model()->num_layers()) + " layers)");
              break;
            }
            case OperandKind::NONE:
              break;
            default:
              return fail(ow + ": unknown operand kind " + std::to_string(static_cast<int>(o.kind())));
          }
        }
      }
    }
    for (int r = 0; r < ranks(); ++r)
      for (std::string required : {"prefill", "decode"})
        if (!names.count(required + (r ? "@" + std::to_string(r) : "")))
          return fail("the plan has no '" + required + "' program" +
                      (ranks() > 1 ? " for rank " + std::to_string(r) : std::string()));
    return Status::success();
  }

 private:
  int ranks() const { return std::max(p_.tp(), p_.ep()); }

  const plan::PlanDef& p_;
  const std::string& origin_;
};

}  // namespace

size_t plan_dtype_size(plan::DType dt) {
  switch (dt) {
    case DType::BF16: case DType::F16: return 2;
    case DType::F32: case DType::I32: return 4;
    case DType::FP8_E4M3: case DType::U8: return 1;
    case DType::I64: return 8;
  }
  return 1;
}

const char* plan_dtype_name(plan::DType dt) {
  if (!dtype_known(dt)) return "unknown";
  return plan::EnumNameDType(dt);
}

void Plan::Free::operator()(uint8_t* p) const { std::free(p); }

const plan::ProgramDef& Plan::program(std::string_view name, int rank) const {
  for (const plan::ProgramDef* p : *def_->programs())
    if (p->name()->string_view() == name && p->rank() == rank) return *p;
  return *def_->programs()->Get(0);  // unreachable: load_plan checked prefill and decode exist
}

int64_t Plan::max_blocks_per_seq() const {
  const auto& l = *def_->limits();
  return (l.max_seq_len() + l.kv_block_size() - 1) / l.kv_block_size();
}

Expected<std::shared_ptr<const Plan>> load_plan_from_memory(const void* data, size_t size,
                                                            const std::string& origin) {
  if (size < 8 || size > kMaxPlanBytes)
    return Error::bad_input(origin + ": " + std::to_string(size) +
                            " bytes is not a plan (truncated or not an .mmp file)");
  auto plan = std::make_shared<Plan>();
  const size_t alloc = (size + 15) / 16 * 16;
  plan->buf_.reset(static_cast<uint8_t*>(std::aligned_alloc(16, alloc)));
  if (!plan->buf_) return Error::internal(origin + ": out of memory for " + std::to_string(size) + " bytes");
  std::memcpy(plan->buf_.get(), data, size);
  plan->size_ = size;
  plan->origin_ = origin;
  const uint8_t* buf = plan->buf_.get();
  if (!flatbuffers::BufferHasIdentifier(buf, plan::PlanDefIdentifier()))
    return Error::bad_input(origin + ": not a plan file (expected the identifier 'MMP1' at byte 4)");
  flatbuffers::Verifier verifier(buf, size, 64, kMaxTables);
  if (!plan::VerifyPlanDefBuffer(verifier))
    return Error::bad_input(origin + ": the plan failed flatbuffer verification (truncated or "
                            "corrupted file; recompile it with mmc compile)");
  const plan::PlanDef* def = plan::GetPlanDef(buf);
  if (const std::string v = misaligned_vector(*def); !v.empty())
    return Error::bad_input(origin + ": the plan failed flatbuffer verification (" + v +
                            " is not 8-byte aligned; corrupted file; recompile it with mmc compile)");
  if (def->schema_version() > kSchemaVersion)
    return Error::bad_input(origin + ": plan schema version " + std::to_string(def->schema_version()) +
                            " is newer than this runtime supports (" + std::to_string(kSchemaVersion) +
                            "); use an mmrun built from the same sources as the mmc that wrote it");
  if (def->schema_version() < kSchemaVersion)
    return Error::bad_input(origin + ": plan schema version " + std::to_string(def->schema_version()) +
                            " is older than this runtime's (" + std::to_string(kSchemaVersion) +
                            "); recompile the plan with mmc compile");
  const uint8_t* sum_field = plan::plan_checksum_field(buf);
  uint64_t stored = 0;
  if (sum_field) std::memcpy(&stored, sum_field, sizeof stored);
  if (!sum_field || stored != plan::plan_checksum(buf, size, sum_field))
    return Error::bad_input(origin + (sum_field ? ": the plan's checksum does not match its contents"
                                                : ": the plan has no checksum") +
                            " (corrupted file; recompile it with mmc compile)");
  plan->def_ = def;
  Checker c(*def, origin);
  if (Status st = c.check_header(); !st) return st.error();
  if (Status st = c.check_weights(); !st) return st.error();
  if (Status st = c.check_kernels(plan->params_); !st) return st.error();
  if (Status st = c.check_programs(plan->params_, &plan->max_arena_); !st) return st.error();
  if (Status st = verify_plan_semantics(*def, plan->params_, origin); !st) return st.error();
  return std::shared_ptr<const Plan>(std::move(plan));
}

Expected<std::shared_ptr<const Plan>> load_plan(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::bad_input(path + ": cannot open plan: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error::bad_input(path + ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8 || size > kMaxPlanBytes) {
    ::close(fd);
    return Error::bad_input(path + ": " + std::to_string(size) +
                            " bytes is not a plan (truncated or not an .mmp file)");
  }
  std::vector<uint8_t> bytes(size);
  size_t done = 0;
  while (done < size) {
    ssize_t r = ::pread(fd, bytes.data() + done, size - done, static_cast<off_t>(done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      return Error::bad_input(path + ": read failed after " + std::to_string(done) + " bytes");
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  return load_plan_from_memory(bytes.data(), size, path);
}

Status check_plan_arch(const Plan& plan, int major, int minor) {
  const int sm = major * 10 + minor;
  const std::string arch = "sm_" + std::to_string(sm);
  const auto* kernels = plan.def().kernels();
  if (!kernels) return Status::success();
  for (size_t ki = 0; ki < kernels->size(); ++ki) {
    const plan::KernelDef& k = *kernels->Get(ki);
    std::string have;
    bool cubin = false;
    if (k.binaries())
      for (const plan::BinaryDef* b : *k.binaries()) {
        cubin = cubin || b->arch()->str() == arch;
        have += (have.empty() ? "" : ", ") + b->arch()->str();
      }
    if (cubin) continue;
    if (k.ptx() && k.ptx()->size() > 0 && k.ptx_arch()) {
      const std::string pa = k.ptx_arch()->str();
      if (pa.rfind("compute_", 0) == 0) {
        int ptx_sm = std::atoi(pa.c_str() + 8);
        if (ptx_sm > 0 && ptx_sm <= sm) continue;
      }
      have += (have.empty() ? "" : ", ") + std::string("PTX ") + pa;
    }
    return Error::bad_input(plan.origin() + ": kernels[" + std::to_string(ki) + "] '" +
                            k.name()->str() + "' has no cubin for this device (" + arch +
                            ") and no usable PTX (the plan carries: " +
                            (have.empty() ? "nothing" : have) +
                            "); recompile with mmc compile --target " + arch);
  }
  return Status::success();
}

}  // namespace mm::rt
