#include "test/unit/runtime/test_plan.h"

#include <cstring>
#include <map>
#include <stdexcept>

#include "codegen/kernels/abi.h"
#include "runtime/schemas/plan_checksum.h"
#include "runtime/src/weights.h"

namespace mm::rt::test {

namespace {

using namespace mm::plan;
namespace fb = flatbuffers;

size_t dsize(DType dt) {
  switch (dt) {
    case DType::BF16: case DType::F16: return 2;
    case DType::F32: case DType::I32: return 4;
    case DType::I64: return 8;
    default: return 1;
  }
}
uint64_t bytes_of(DType dt, const std::vector<int64_t>& shape) {
  uint64_t n = dsize(dt);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

struct Op {
  OperandKind kind = OperandKind::NONE;
  uint32_t index = 0;
  InputSlot slot = InputSlot::TOKENS;
  uint64_t offset = 0, size = 0;
};

struct Launch {
  uint32_t kernel;
  std::vector<Op> ops;
  int layer;
  std::string note;
};

class Builder {
 public:
  explicit Builder(const TinyModel& m) : m_(m) {}

  // --- weights ---
  uint32_t weight(const std::string& name, DType dt, std::vector<int64_t> shape, const std::string& cat,
                  WeightRole role, int64_t fan_in = 1) {
    WeightSpec w;
    w.name = name;
    w.dtype = dt;
    w.shape = shape;
    w.transform = WeightTransform::COPY;
    w.role = role;
    w.fan_in = fan_in;
    if (role == WeightRole::QWEIGHT && m_.ql == 1) w.qlayout = QuantLayout::STRIPS32;
    const uint64_t nb = bytes_of(dt, shape);
    const auto at = m_.source_offsets.find(name);
    w.sources.push_back({name, "model.safetensors", at != m_.source_offsets.end() ? at->second : next_offset_, nb, dt, shape});
    next_offset_ += nb;
    weights_.push_back(w);
    cats_.push_back(cat);
    return static_cast<uint32_t>(weights_.size() - 1);
  }

  // --- kernels ---
  uint32_t kernel(KernelKind kind, const std::string& name, std::vector<std::pair<std::string, double>> params) {
    kernels_.push_back({kind, name, std::move(params)});
    return static_cast<uint32_t>(kernels_.size() - 1);
  }

  // --- arena (one region per buffer, per program) ---
  Op arena(const std::string& name, uint64_t bytes) {
    auto it = arena_.find(name);
    if (it == arena_.end()) {
      it = arena_.emplace(name, std::make_pair(arena_bytes_, bytes)).first;
      arena_bytes_ += (bytes + 255) / 256 * 256;
    }
    Op o;
    o.kind = OperandKind::ARENA;
    o.offset = it->second.first;
    o.size = it->second.second;
    return o;
  }
  static Op w(uint32_t i) { Op o; o.kind = OperandKind::WEIGHT; o.index = i; return o; }
  static Op in(InputSlot s) { Op o; o.kind = OperandKind::INPUT; o.slot = s; return o; }
  static Op kv(uint32_t layer, InputSlot s) { Op o; o.kind = OperandKind::KV; o.index = layer; o.slot = s; return o; }
  static Op none() { return Op{}; }

  std::vector<uint8_t> finish(const std::vector<std::pair<std::string, std::vector<Launch>>>& programs,
                              const std::vector<uint64_t>& arena_sizes, const std::vector<int64_t>& max_tokens) {
    fb::FlatBufferBuilder b(1 << 16);
    std::vector<fb::Offset<WeightDef>> ws;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const WeightSpec& w = weights_[i];
      std::vector<fb::Offset<TensorRefDef>> srcs;
      for (const auto& s : w.sources)
        srcs.push_back(CreateTensorRefDefDirect(b, s.name.c_str(), s.file.c_str(), s.offset, s.nbytes, s.dtype, &s.shape));
      ws.push_back(CreateWeightDefDirect(b, w.name.c_str(), w.dtype, &w.shape, bytes_of(w.dtype, w.shape),
                                         w.transform, &srcs, i < cats_.size() ? cats_[i].c_str() : "other", w.role,
                                         w.fan_in, w.concat_axis, w.qlayout));
    }
    std::vector<fb::Offset<KernelDef>> ks;
    for (const auto& k : kernels_) {
      std::vector<fb::Offset<ParamDef>> ps;
      for (const auto& [name, v] : k.params) {
        if (m_.corrupt == "param" && &k == &kernels_[0] && &name == &k.params[0].first) continue;
        const bool is_float = name == "EPS" || name == "THETA";
        ps.push_back(CreateParamDefDirect(b, name.c_str(), is_float ? 0 : static_cast<int64_t>(v), is_float ? v : 0.0));
      }
      std::vector<fb::Offset<BinaryDef>> bins;
      for (const auto& t : m_.targets) {
        std::vector<uint8_t> cubin(64, 0xCB);
        bins.push_back(CreateBinaryDefDirect(b, t.c_str(), &cubin, 32, 1024, 0));
      }
      std::vector<int32_t> block = {128, 1, 1};
      ks.push_back(CreateKernelDefDirect(b, k.name.c_str(), k.kind, &ps, &block, 0, &bins, nullptr, nullptr, 0));
    }
    std::vector<fb::Offset<ProgramDef>> progs;
    for (size_t pi = 0; pi < programs.size(); ++pi) {
      std::vector<fb::Offset<LaunchDef>> ls;
      for (size_t li = 0; li < programs[pi].second.size(); ++li) {
        Launch l = programs[pi].second[li];
        const bool first = pi == 1 && li == 1;  // decode's first layer launch
        if (first && m_.corrupt == "operand_count") l.ops.pop_back();
        if (first && m_.corrupt == "kernel_index") l.kernel = 999;
        for (Op& o : l.ops) {
          if (!first) break;
          if (m_.corrupt == "arena" && o.kind == OperandKind::ARENA) o.offset = arena_sizes[pi];
          if (m_.corrupt == "weight_index" && o.kind == OperandKind::WEIGHT) o.index = 9999;
        }
        if (pi == 1 && m_.corrupt == "kv_layer")
          for (Op& o : l.ops)
            if (o.kind == OperandKind::KV) o.index = static_cast<uint32_t>(m_.L);
        std::vector<fb::Offset<OperandDef>> os;
        for (const Op& o : l.ops) os.push_back(CreateOperandDef(b, o.kind, o.index, o.slot, o.offset, o.size));
        std::vector<DimExprDef> grid = {DimExprDef(MM_DIM_T, 1, 0, 1), DimExprDef(-1, 0, 1, 1), DimExprDef(-1, 0, 1, 1)};
        ls.push_back(CreateLaunchDefDirect(b, l.kernel, &grid, &os, l.layer, l.note.c_str()));
      }
      const std::string pname = (m_.corrupt == "no_decode" && programs[pi].first == "decode") ? "decode2" : programs[pi].first;
      progs.push_back(CreateProgramDefDirect(b, pname.c_str(), &ls, nullptr,
                                             arena_sizes[pi], max_tokens[pi]));
    }
    std::vector<int64_t> eos = {static_cast<int64_t>(m_.V - 1)};
    auto model = CreateModelDefDirect(b, "MiniMaxM2ForCausalLM", m_.H, m_.I, m_.L, m_.NQ, m_.NKV, m_.D, m_.DR,
                                      m_.E, m_.TOPK, m_.V, m_.theta, m_.eps, 0, &eos, "auto-round", DType::BF16);
    auto limits = CreateLimitsDef(b, m_.max_seq_len, m_.max_batch, m_.max_prefill_tokens,
                                  m_.fp8_kv ? DType::FP8_E4M3 : DType::BF16, static_cast<int32_t>(m_.block));
    std::vector<fb::Offset<fb::String>> targets;
    for (const auto& t : m_.targets) targets.push_back(b.CreateString(t));
    // "non_utf8_producer": bytes that are not UTF-8 where a tool prints the producer (mm-inspect --json).
    const char* producer = m_.corrupt == "non_utf8_producer" ? "test\xff\xfeplan" : "test_plan";
    auto plan = CreatePlanDefDirect(b, m_.schema_version, producer, model, limits, &targets, 0x1234, &ws, &ks,
                                    &progs, "tokenizer.json", nullptr, /*checksum placeholder*/ 1, m_.tp, m_.ep);
    FinishPlanDefBuffer(b, plan);
    std::vector<uint8_t> bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
    seal_plan(bytes.data(), bytes.size());
    return bytes;
  }

  void reset_arena() { arena_.clear(); arena_bytes_ = 0; }
  uint64_t arena_bytes() const { return arena_bytes_; }
  std::vector<WeightSpec>& weights() { return weights_; }

 private:
  struct K { KernelKind kind; std::string name; std::vector<std::pair<std::string, double>> params; };
  const TinyModel& m_;
  std::vector<WeightSpec> weights_;
  std::vector<std::string> cats_;
  std::vector<K> kernels_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> arena_;
  uint64_t arena_bytes_ = 0;
  uint64_t next_offset_ = 8;
};

}  // namespace

std::vector<uint8_t> build_tiny_plan(const TinyModel& m) {
  Builder b(m);
  const int64_t QN = m.NQ * m.D, KN = m.NKV * m.D, NQKV = QN + 2 * KN;
  const double WDT = MM_DT_BF16;
  const double KVDT = m.fp8_kv ? MM_DT_FP8E4M3 : MM_DT_BF16;
  const int64_t MAXB = (m.max_seq_len + m.block - 1) / m.block;

  struct LayerW { uint32_t in_norm, qkv_q, qkv_s, q_norm, k_norm, o_q, o_s, post_norm, gate, bias, w13_q, w13_s, w2_q, w2_s; };
  const uint32_t embed = b.weight("model.embed_tokens.weight", DType::BF16, {m.V, m.H}, "embeddings", WeightRole::EMBEDDING);
  std::vector<LayerW> lw;
  for (int64_t l = 0; l < m.L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerW x;
    x.in_norm = b.weight(p + "input_layernorm.weight", DType::BF16, {m.H}, "other", WeightRole::NORM);
    x.qkv_q = b.weight(p + "self_attn.qkv.qweight", DType::I32, {m.H / 8, NQKV}, "attention", WeightRole::QWEIGHT, m.H);
    x.qkv_s = b.weight(p + "self_attn.qkv.scales", DType::F16, {m.H / m.G, NQKV}, "attention", WeightRole::SCALES, m.H);
    x.q_norm = b.weight(p + "self_attn.q_norm.weight", DType::BF16, {QN}, "attention", WeightRole::NORM);
    x.k_norm = b.weight(p + "self_attn.k_norm.weight", DType::BF16, {KN}, "attention", WeightRole::NORM);
    x.o_q = b.weight(p + "self_attn.o_proj.qweight", DType::I32, {QN / 8, m.H}, "attention", WeightRole::QWEIGHT, QN);
    x.o_s = b.weight(p + "self_attn.o_proj.scales", DType::F16, {QN / m.G, m.H}, "attention", WeightRole::SCALES, QN);
    x.post_norm = b.weight(p + "post_attention_layernorm.weight", DType::BF16, {m.H}, "other", WeightRole::NORM);
    x.gate = b.weight(p + "block_sparse_moe.gate.weight", DType::BF16, {m.E, m.H}, "other", WeightRole::DENSE, m.H);
    x.bias = b.weight(p + "block_sparse_moe.e_score_correction_bias", DType::F32, {m.E}, "other", WeightRole::BIAS);
    x.w13_q = b.weight(p + "block_sparse_moe.w13.qweight", DType::I32, {m.E, m.H / 8, 2 * m.I}, "experts", WeightRole::QWEIGHT, m.H);
    x.w13_s = b.weight(p + "block_sparse_moe.w13.scales", DType::F16, {m.E, m.H / m.G, 2 * m.I}, "experts", WeightRole::SCALES, m.H);
    x.w2_q = b.weight(p + "block_sparse_moe.w2.qweight", DType::I32, {m.E, m.I / 8, m.H}, "experts", WeightRole::QWEIGHT, m.I);
    x.w2_s = b.weight(p + "block_sparse_moe.w2.scales", DType::F16, {m.E, m.I / m.G, m.H}, "experts", WeightRole::SCALES, m.I);
    lw.push_back(x);
  }
  const uint32_t final_norm = b.weight("model.norm.weight", DType::BF16, {m.H}, "other", WeightRole::NORM);
  const uint32_t lm_head = b.weight("lm_head.weight", DType::BF16, {m.V, m.H}, "embeddings", WeightRole::DENSE, m.H);

  // Kernels (one per specialization used below).
  using P = std::vector<std::pair<std::string, double>>;
  const uint32_t k_embed = b.kernel(KernelKind::EMBED, "embed", P{{"V", m.V}, {"H", m.H}, {"WDT", WDT}});
  const uint32_t k_norm0 = b.kernel(KernelKind::RMS_NORM, "rms_norm_r0", P{{"N", m.H}, {"EPS", m.eps}, {"WDT", WDT}, {"RESIDUAL", 0}, {"GATHER", 0}});
  const uint32_t k_norm1 = b.kernel(KernelKind::RMS_NORM, "rms_norm_r1", P{{"N", m.H}, {"EPS", m.eps}, {"WDT", WDT}, {"RESIDUAL", 1}, {"GATHER", 0}});
  const uint32_t k_normf = b.kernel(KernelKind::RMS_NORM, "rms_norm_final", P{{"N", m.H}, {"EPS", m.eps}, {"WDT", WDT}, {"RESIDUAL", 1}, {"GATHER", 1}});
  const uint32_t k_qkv = b.kernel(KernelKind::GEMM_W4, "gemm_w4_qkv", P{{"K", m.H}, {"N", NQKV}, {"G", m.G}, {"OUT", MM_DT_BF16}, {"VARIANT", 0}, {"MDIM", 0}, {"QL", static_cast<double>(m.ql)}});
  const uint32_t k_o = b.kernel(KernelKind::GEMM_W4, "gemm_w4_o", P{{"K", QN}, {"N", m.H}, {"G", m.G}, {"OUT", MM_DT_BF16}, {"VARIANT", 1}, {"MDIM", 0}, {"QL", static_cast<double>(m.ql)}});
  const uint32_t k_rope = b.kernel(KernelKind::QK_NORM_ROPE_KV, "qk_norm_rope_kv", P{{"NQ", m.NQ}, {"NKV", m.NKV}, {"D", m.D}, {"DR", m.DR}, {"THETA", m.theta}, {"EPS", m.eps}, {"WDT", WDT}, {"KVDT", KVDT}, {"BLOCK", m.block}, {"MAX_BLOCKS", MAXB}});
  const uint32_t k_att_p = b.kernel(KernelKind::ATTENTION, "attention_prefill", P{{"NQ", m.NQ}, {"NKV", m.NKV}, {"D", m.D}, {"KVDT", KVDT}, {"BLOCK", m.block}, {"MAX_BLOCKS", MAXB}, {"VARIANT", 0}});
  const P att_d{{"NQ", m.NQ}, {"NKV", m.NKV}, {"D", m.D}, {"KVDT", KVDT}, {"BLOCK", m.block}, {"MAX_BLOCKS", MAXB}, {"SPLITS", 2}};
  auto with_variant = [](P p, double v) { p.push_back({"VARIANT", v}); return p; };
  const uint32_t k_att_d = b.kernel(KernelKind::ATTENTION_DECODE, "attention_decode", with_variant(att_d, 0));
  const uint32_t k_att_c = b.kernel(KernelKind::ATTENTION_DECODE, "attention_combine", with_variant(att_d, 1));
  const uint32_t k_router = b.kernel(KernelKind::GEMM_DENSE, "router", P{{"K", m.H}, {"N", m.E}, {"WDT", WDT}, {"OUT", MM_DT_F32}, {"MDIM", 0}});
  const uint32_t k_topk_f = b.kernel(KernelKind::ROUTE_TOPK, "route_topk_fused", P{{"E", m.E}, {"TOPK", m.TOPK}, {"H", m.H}, {"WDT", WDT}, {"FUSED_GEMM", 1}});
  const uint32_t k_topk = b.kernel(KernelKind::ROUTE_TOPK, "route_topk", P{{"E", m.E}, {"TOPK", m.TOPK}, {"H", m.H}, {"WDT", WDT}, {"FUSED_GEMM", 0}});
  const uint32_t k_align = b.kernel(KernelKind::MOE_ALIGN, "moe_align", P{{"E", m.E}, {"TOPK", m.TOPK}});
  const uint32_t k_w13_d = b.kernel(KernelKind::MOE_W13, "moe_w13", P{{"H", m.H}, {"I", m.I}, {"E", m.E}, {"TOPK", m.TOPK}, {"G", m.G}, {"GROUPED", 0}, {"QL", static_cast<double>(m.ql)}});
  const uint32_t k_w13_p = b.kernel(KernelKind::MOE_W13, "moe_w13_grouped", P{{"H", m.H}, {"I", m.I}, {"E", m.E}, {"TOPK", m.TOPK}, {"G", m.G}, {"GROUPED", 1}, {"QL", static_cast<double>(m.ql)}});
  const uint32_t k_w2_d = b.kernel(KernelKind::MOE_W2, "moe_w2_combine", P{{"H", m.H}, {"I", m.I}, {"E", m.E}, {"TOPK", m.TOPK}, {"G", m.G}, {"GROUPED", 0}, {"COMBINE", 1}, {"QL", static_cast<double>(m.ql)}});
  const uint32_t k_w2_p = b.kernel(KernelKind::MOE_W2, "moe_w2_grouped", P{{"H", m.H}, {"I", m.I}, {"E", m.E}, {"TOPK", m.TOPK}, {"G", m.G}, {"GROUPED", 1}, {"COMBINE", 0}, {"QL", static_cast<double>(m.ql)}});
  const uint32_t k_combine = b.kernel(KernelKind::MOE_COMBINE, "moe_combine", P{{"H", m.H}, {"TOPK", m.TOPK}});
  const uint32_t k_lm = b.kernel(KernelKind::GEMM_DENSE, "lm_head", P{{"K", m.H}, {"N", m.V}, {"WDT", WDT}, {"OUT", MM_DT_F32}, {"MDIM", 1}});
  const uint32_t k_sample = b.kernel(KernelKind::SAMPLE, "sample", P{{"V", m.V}});

  auto program = [&](bool prefill, int64_t T) {
    b.reset_arena();
    const int64_t R = prefill ? 1 : T;
    std::vector<Launch> ls;
    Op x = b.arena("x", T * m.H * 2), h = b.arena("h", T * m.H * 2), qkv = b.arena("qkv", T * NQKV * 2);
    Op q = b.arena("q", T * QN * 2), att = b.arena("att", T * QN * 2), o = b.arena("o", T * m.H * 2);
    Op rl = b.arena("router_logits", T * m.E * 4), ids = b.arena("ids", T * m.TOPK * 4);
    Op wts = b.arena("weights", T * m.TOPK * 4), off = b.arena("offsets", (m.E + 1) * 4);
    Op sorted = b.arena("sorted", T * m.TOPK * 4), act = b.arena("act", T * m.TOPK * m.I * 2);
    Op contrib = b.arena("contrib", T * m.TOPK * m.H * 4), moe = b.arena("moe", T * m.H * 2);
    Op part = b.arena("partial", T * m.NQ * 2 * (m.D + 2) * 4), fin = b.arena("final", R * m.H * 2);
    const Op none = Builder::none();
    const Op pos = Builder::in(InputSlot::POSITIONS), slots = Builder::in(InputSlot::SEQ_SLOTS),
             bt = Builder::in(InputSlot::BLOCK_TABLES);
    ls.push_back({k_embed, {Builder::in(InputSlot::TOKENS), Builder::w(embed), x}, -1, "embed"});
    for (int64_t l = 0; l < m.L; ++l) {
      const LayerW& lwl = lw[l];
      const int li = static_cast<int>(l);
      const Op kvk = Builder::kv(li, InputSlot::KV_K), kvv = Builder::kv(li, InputSlot::KV_V);
      const Op kks = m.fp8_kv ? Builder::kv(li, InputSlot::KV_K_SCALE) : none;
      const Op kvs = m.fp8_kv ? Builder::kv(li, InputSlot::KV_V_SCALE) : none;
      if (l == 0)
        ls.push_back({k_norm0, {x, none, Builder::w(lwl.in_norm), none, h}, li, "input_norm"});
      else
        ls.push_back({k_norm1, {x, moe, Builder::w(lwl.in_norm), none, h}, li, "input_norm+residual"});
      ls.push_back({k_qkv, {h, Builder::w(lwl.qkv_q), Builder::w(lwl.qkv_s), qkv}, li, "qkv"});
      ls.push_back({k_rope, {qkv, Builder::w(lwl.q_norm), Builder::w(lwl.k_norm), pos, slots, bt, kvk, kvv, kks, kvs, q, none}, li, "qk_norm_rope_kv"});
      if (prefill) {
        ls.push_back({k_att_p, {q, pos, slots, bt, kvk, kvv, kks, kvs, att}, li, "attention"});
      } else {
        ls.push_back({k_att_d, {q, pos, slots, bt, kvk, kvv, kks, kvs, part, att}, li, "attention"});
        ls.push_back({k_att_c, {q, pos, slots, bt, kvk, kvv, kks, kvs, part, att}, li, "attention_combine"});
      }
      ls.push_back({k_o, {att, Builder::w(lwl.o_q), Builder::w(lwl.o_s), o}, li, "o_proj"});
      ls.push_back({k_norm1, {x, o, Builder::w(lwl.post_norm), none, h}, li, "post_norm+residual"});
      if (prefill) {
        ls.push_back({k_router, {h, Builder::w(lwl.gate), rl}, li, "router"});
        ls.push_back({k_topk, {rl, none, Builder::w(lwl.bias), ids, wts}, li, "route_topk"});
        ls.push_back({k_align, {ids, off, sorted}, li, "moe_align"});
        ls.push_back({k_w13_p, {h, Builder::w(lwl.w13_q), Builder::w(lwl.w13_s), ids, off, sorted, act}, li, "w13"});
        ls.push_back({k_w2_p, {act, Builder::w(lwl.w2_q), Builder::w(lwl.w2_s), ids, wts, off, sorted, contrib}, li, "w2"});
        ls.push_back({k_combine, {contrib, moe, none}, li, "combine"});
      } else {
        ls.push_back({k_topk_f, {h, Builder::w(lwl.gate), Builder::w(lwl.bias), ids, wts}, li, "route_topk"});
        ls.push_back({k_w13_d, {h, Builder::w(lwl.w13_q), Builder::w(lwl.w13_s), ids, none, none, act}, li, "w13"});
        ls.push_back({k_w2_d, {act, Builder::w(lwl.w2_q), Builder::w(lwl.w2_s), ids, wts, none, none, moe}, li, "w2"});
      }
    }
    ls.push_back({k_normf, {x, moe, Builder::w(final_norm), Builder::in(InputSlot::LOGIT_ROWS), fin}, -1, "final_norm"});
    ls.push_back({k_lm, {fin, Builder::w(lm_head), Builder::in(InputSlot::LOGITS)}, -1, "lm_head"});
    ls.push_back({k_sample, {Builder::in(InputSlot::LOGITS), Builder::in(InputSlot::TEMPERATURE), Builder::in(InputSlot::TOP_K),
                             Builder::in(InputSlot::TOP_P), Builder::in(InputSlot::SEED), Builder::in(InputSlot::SAMPLED)}, -1, "sample"});
    return std::make_pair(ls, b.arena_bytes());
  };
  auto [pre, pre_bytes] = program(true, m.max_prefill_tokens);
  auto [dec, dec_bytes] = program(false, m.max_batch);
  return b.finish({{"prefill", pre}, {"decode", dec}}, {pre_bytes, dec_bytes}, {m.max_prefill_tokens, m.max_batch});
}

std::vector<uint8_t> build_weights_plan(const std::vector<WeightSpec>& weights) {
  TinyModel m;
  Builder b(m);
  b.weights() = weights;
  return b.finish({{"prefill", {}}, {"decode", {}}}, {0, 0}, {m.max_prefill_tokens, m.max_batch});
}

void stamp_model_hash(std::vector<uint8_t>* plan, const std::string& dir) {
  auto p = load_plan_from_memory(plan->data(), plan->size(), "stamp.mmp");
  if (!p) throw std::runtime_error("stamp_model_hash: " + p.error().message);
  auto h = weights_dir_model_hash(**p, dir);
  if (!h) return;  // a directory that does not match: the test expects the load's refusal
  const PlanDef* def = GetPlanDef(plan->data());
  const uint8_t* at = reinterpret_cast<const flatbuffers::Table*>(def)->GetAddressOf(PlanDef::VT_MODEL_HASH);
  if (!at) throw std::runtime_error("stamp_model_hash: the plan stores no model_hash");
  std::memcpy(plan->data() + (at - plan->data()), &*h, sizeof *h);
  seal_plan(plan->data(), plan->size());
}

}  // namespace mm::rt::test
