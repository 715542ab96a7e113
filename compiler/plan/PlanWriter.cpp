//===- PlanWriter.cpp - exec IR + cubins -> plan flatbuffer -----------------===//
#include "compiler/plan/PlanWriter.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringRef.h"
#include "mlir/IR/BuiltinAttributes.h"

#include "codegen/kernels/registry.h"
#include "dialects/exec/ir/ExecOps.h"
#include "models/common/model_hash.h"
#include "runtime/schemas/plan_checksum.h"
#include "runtime/schemas/plan_generated.h"

using namespace mlir;
namespace fb = flatbuffers;
namespace pl = mm::plan;
namespace kernels = mm::kernels;

namespace mm::compiler {
namespace {

std::optional<pl::DType> planDtype(StringRef s) {
  if (s == "bf16") return pl::DType::BF16;
  if (s == "f16") return pl::DType::F16;
  if (s == "f32") return pl::DType::F32;
  if (s == "i32") return pl::DType::I32;
  if (s == "fp8") return pl::DType::FP8_E4M3;
  return std::nullopt;
}

pl::DType planDtype(mm::DType dt) {
  switch (dt) {
  case mm::DType::BF16: return pl::DType::BF16;
  case mm::DType::F16: return pl::DType::F16;
  case mm::DType::F32: return pl::DType::F32;
  case mm::DType::I32: return pl::DType::I32;
  case mm::DType::I64: return pl::DType::I64;
  case mm::DType::F8_E4M3: return pl::DType::FP8_E4M3;
  default: return pl::DType::U8;
  }
}

static_assert(static_cast<uint32_t>(exec::getMaxEnumValForKernelKind()) ==
                  static_cast<uint32_t>(pl::KernelKind::MAX),
              "the exec and plan kind enums are generated from one registry");

static_assert(static_cast<uint32_t>(exec::getMaxEnumValForWeightRole()) ==
                  static_cast<uint32_t>(pl::WeightRole::MAX),
              "plan.fbs WeightRole and ExecEnums.td WeightRole list the same roles");

pl::DType planDtype(exec::WeightDType dt) {
  switch (dt) {
  case exec::WeightDType::bf16: return pl::DType::BF16;
  case exec::WeightDType::f16: return pl::DType::F16;
  case exec::WeightDType::f32: return pl::DType::F32;
  case exec::WeightDType::i32: return pl::DType::I32;
  }
  return pl::DType::U8;
}

pl::WeightTransform planTransform(exec::Transform t) {
  switch (t) {
  case exec::Transform::copy: return pl::WeightTransform::COPY;
  case exec::Transform::concat_n: return pl::WeightTransform::CONCAT_N;
  case exec::Transform::stack_experts: return pl::WeightTransform::STACK_EXPERTS;
  case exec::Transform::stack_experts_w13: return pl::WeightTransform::STACK_EXPERTS_W13;
  case exec::Transform::upcast_f32: return pl::WeightTransform::UPCAST_F32;
  case exec::Transform::check_zeros: return pl::WeightTransform::CHECK_ZEROS;
  }
  return pl::WeightTransform::COPY;
}

size_t planDtypeSize(pl::DType dt) {
  switch (dt) {
  case pl::DType::BF16: case pl::DType::F16: return 2;
  case pl::DType::F32: case pl::DType::I32: return 4;
  case pl::DType::I64: return 8;
  default: return 1;
  }
}

// Looks `name` up in a flatc-generated, null-terminated enum name table.
template <class Enum>
std::optional<Enum> enumFromName(const char *const *names, StringRef name) {
  for (int i = 0; names[i]; ++i)
    if (name.equals_insensitive(names[i]))
      return static_cast<Enum>(i);
  return std::nullopt;
}

std::optional<pl::InputSlot> kvSlot(StringRef pool) {
  if (pool == "k") return pl::InputSlot::KV_K;
  if (pool == "v") return pl::InputSlot::KV_V;
  if (pool == "k_scale") return pl::InputSlot::KV_K_SCALE;
  if (pool == "v_scale") return pl::InputSlot::KV_V_SCALE;
  return std::nullopt;
}

// What ties the plan to its checkpoint (models/common/model_hash.h; the runtime recomputes it).
uint64_t modelHash(const mm::ModelDesc &m) {
  const auto &hp = m.hp;
  return mm::model_hash({hp.hidden_size, hp.intermediate_size, hp.num_layers, hp.num_heads,
                         hp.num_kv_heads, hp.head_dim, hp.rotary_dim, hp.num_experts, hp.top_k,
                         hp.vocab_size},
                        m.tensors);
}

} // namespace

FailureOr<std::vector<uint8_t>>
writePlan(ModuleOp module, const mm::ModelDesc &model, const PlanLimits &limits,
          const std::vector<std::string> &targets,
          const llvm::StringMap<CompiledKernel> &kernels) {
  fb::FlatBufferBuilder b(1 << 20);

  // Weights.
  llvm::StringMap<uint32_t> weightIndex;
  std::vector<fb::Offset<pl::WeightDef>> weights;
  for (exec::WeightOp w : module.getOps<exec::WeightOp>()) {
    const std::optional<pl::DType> dt = planDtype(w.getDtype());
    const std::optional<pl::WeightTransform> transform = planTransform(w.getTransform());
    std::vector<fb::Offset<pl::TensorRefDef>> sources;
    size_t srcIndex = 0;
    for (StringRef src : w.getSources().getAsValueRange<StringAttr>()) {
      const mm::TensorInfo *t = model.find(src.str());
      if (!t)
        return w.emitOpError() << "source tensor '" << src << "' is not in the checkpoint "
                               << model.dir;
      // A tensor-parallel rank's slice of the source (docs/parallel.md).
      int32_t sliceDim = -1;
      int64_t sliceStart = 0, sliceLen = 0;
      if (auto slices = w.getSlicesAttr()) {
        sliceDim = static_cast<int32_t>(slices[3 * srcIndex]);
        sliceStart = slices[3 * srcIndex + 1];
        sliceLen = slices[3 * srcIndex + 2];
        if (sliceDim >= static_cast<int32_t>(t->shape.size()) ||
            (sliceDim >= 0 && sliceStart + sliceLen > t->shape[sliceDim]))
          return w.emitOpError() << "slice " << srcIndex << " is outside source tensor '" << src
                                 << "'";
      }
      ++srcIndex;
      sources.push_back(pl::CreateTensorRefDefDirect(b, t->name.c_str(), t->file.c_str(),
                                                     t->offset, t->nbytes, planDtype(t->dtype),
                                                     &t->shape, sliceDim, sliceStart, sliceLen));
    }
    std::vector<int64_t> shape(w.getShape().begin(), w.getShape().end());
    uint64_t nbytes = planDtypeSize(*dt);
    for (int64_t d : shape) nbytes *= static_cast<uint64_t>(d);
    if (*transform == pl::WeightTransform::CHECK_ZEROS)
      nbytes = 0; // verified at load, never allocated
    weightIndex[w.getSymName()] = weights.size();
    // Both role enums list the same roles in the same order (ExecEnums.td, plan.fbs).
    const auto role = static_cast<pl::WeightRole>(static_cast<uint32_t>(w.getRole()));
    const int32_t axis = w.getConcatAxisAttr() ? static_cast<int32_t>(w.getConcatAxisAttr().getInt()) : -1;
    weights.push_back(pl::CreateWeightDefDirect(b, w.getSymName().str().c_str(), *dt, &shape,
                                                nbytes, *transform, &sources,
                                                w.getCategory().str().c_str(), role,
                                                static_cast<int64_t>(w.getFanInAttr().getInt()), axis,
                                                w.getQlayout() && *w.getQlayout() == exec::QuantLayout::strips32
                                                    ? pl::QuantLayout::STRIPS32
                                                    : pl::QuantLayout::ROWS));
  }

  // Kernels.
  llvm::StringMap<uint32_t> kernelIndex;
  std::vector<fb::Offset<pl::KernelDef>> kernelDefs;
  for (exec::KernelOp k : module.getOps<exec::KernelOp>()) {
    // Both enums are generated from the kernel registry in the same order.
    const auto kind = static_cast<pl::KernelKind>(static_cast<uint32_t>(k.getKind()));
    auto it = kernels.find(k.getSymName());
    // A collective (ALL_REDUCE) is no kernel: it has no binary (docs/parallel.md).
    const bool collective =
        kernels::is_collective(kernels::kind_info(static_cast<kernels::Kind>(static_cast<uint32_t>(k.getKind()))));
    if (it == kernels.end() && !collective)
      return k.emitOpError() << "has no compiled binary";
    static const CompiledKernel none;
    const CompiledKernel &ck = collective ? none : it->second;
    std::vector<fb::Offset<pl::ParamDef>> params;
    for (NamedAttribute p : k.getParams()) {
      int64_t i = 0;
      double f = 0;
      if (auto ia = dyn_cast<IntegerAttr>(p.getValue())) {
        i = ia.getInt();
        f = static_cast<double>(i);
      } else if (auto fa = dyn_cast<FloatAttr>(p.getValue())) {
        f = fa.getValueAsDouble();
      }
      params.push_back(pl::CreateParamDefDirect(b, p.getName().str().c_str(), i, f));
    }
    std::vector<fb::Offset<pl::BinaryDef>> bins;
    for (const KernelBinary &kb : ck.binaries) {
      b.ForceVectorAlignment(kb.cubin.size(), sizeof(uint8_t), 16);
      auto cubin = b.CreateVector(kb.cubin);
      bins.push_back(pl::CreateBinaryDef(b, b.CreateString(kb.arch), cubin, kb.registers,
                                         kb.sharedBytes, kb.localBytes));
    }
    std::vector<int32_t> block(k.getBlock().begin(), k.getBlock().end());
    kernelIndex[k.getSymName()] = kernelDefs.size();
    const std::string entry = collective ? k.getSymName().str() : ck.entry;
    kernelDefs.push_back(pl::CreateKernelDefDirect(
        b, entry.c_str(), kind, &params, &block, static_cast<int32_t>(k.getSmem()), &bins,
        ck.ptx.c_str(), ck.ptxArch.c_str(), ck.sourceHash));
  }

  // Programs.
  std::vector<fb::Offset<pl::ProgramDef>> programs;
  for (exec::ProgramOp prog : module.getOps<exec::ProgramOp>()) {
    llvm::StringMap<exec::BufferOp> buffers;
    llvm::StringMap<std::pair<int, int>> live;
    for (exec::BufferOp buf : prog.getBody().front().getOps<exec::BufferOp>()) {
      if (!buf.getOffset())
        return buf.emitOpError() << "has no arena offset; run exec-plan-memory first";
      buffers[buf.getSymName()] = buf;
    }
    std::vector<fb::Offset<pl::LaunchDef>> launches;
    int launchIdx = 0;
    for (exec::LaunchOp l : prog.getBody().front().getOps<exec::LaunchOp>()) {
      std::vector<pl::DimExprDef> grid;
      for (auto d : l.getGrid().getAsRange<exec::DimAttr>()) {
        int8_t dim = -1;
        if (!d.getDim().empty())
          dim = static_cast<int8_t>(llvm::find(exec::dynamicDimNames(), d.getDim()) -
                                    exec::dynamicDimNames().begin());
        grid.emplace_back(dim, d.getMul(), d.getAdd(), d.getDiv());
      }
      std::vector<fb::Offset<pl::OperandDef>> ops;
      for (Attribute a : l.getOperands()) {
        if (auto buf = dyn_cast<exec::BufAttr>(a)) {
          exec::BufferOp bop = buffers.lookup(buf.getName());
          auto &lv = live.try_emplace(buf.getName(), launchIdx, launchIdx).first->second;
          lv.second = launchIdx;
          ops.push_back(pl::CreateOperandDef(b, pl::OperandKind::ARENA, 0, pl::InputSlot::TOKENS,
                                             static_cast<uint64_t>(*bop.getOffset()),
                                             static_cast<uint64_t>(bop.getSize())));
        } else if (auto w = dyn_cast<exec::WeightRefAttr>(a)) {
          ops.push_back(pl::CreateOperandDef(b, pl::OperandKind::WEIGHT,
                                             weightIndex.lookup(w.getName())));
        } else if (auto in = dyn_cast<exec::InputAttr>(a)) {
          auto slot = enumFromName<pl::InputSlot>(pl::EnumNamesInputSlot(), in.getName());
          if (!slot)
            return l.emitOpError() << "input '" << in.getName() << "' has no plan slot";
          ops.push_back(pl::CreateOperandDef(b, pl::OperandKind::INPUT, 0, *slot));
        } else if (auto kv = dyn_cast<exec::KvAttr>(a)) {
          if (kv.getLayer() >= model.hp.num_layers)
            return l.emitOpError() << "KV layer " << kv.getLayer() << " is past the model's "
                                   << model.hp.num_layers << " layers";
          ops.push_back(pl::CreateOperandDef(b, pl::OperandKind::KV,
                                             static_cast<uint32_t>(kv.getLayer()),
                                             *kvSlot(kv.getPool())));
        } else {
          ops.push_back(pl::CreateOperandDef(b, pl::OperandKind::NONE));
        }
      }
      int layer = l.getLayer() ? static_cast<int>(*l.getLayer()) : -1;
      std::string note = l.getNote() ? l.getNote()->str() : std::string();
      if (l.getPdl() && launchIdx == 0)
        return l.emitOpError() << "is the first launch of its program and cannot be `pdl`";
      launches.push_back(pl::CreateLaunchDefDirect(b, kernelIndex.lookup(l.getKernel()), &grid,
                                                   &ops, layer, note.c_str(), l.getPdl()));
      ++launchIdx;
    }
    std::vector<fb::Offset<pl::BufferDef>> bufDefs;
    for (exec::BufferOp buf : prog.getBody().front().getOps<exec::BufferOp>()) {
      auto lv = live.lookup(buf.getSymName());
      bufDefs.push_back(pl::CreateBufferDefDirect(b, buf.getSymName().str().c_str(),
                                                  static_cast<uint64_t>(*buf.getOffset()),
                                                  static_cast<uint64_t>(buf.getSize()), lv.first,
                                                  lv.second));
    }
    if (!prog.getArenaBytes())
      return prog.emitOpError() << "has no arena size; run exec-plan-memory first";
    // A rank's program @r1.decode is the plan's "decode" of rank 1.
    StringRef progName = prog.getSymName();
    int32_t rank = 0;
    if (auto r = prog.getRankAttr()) {
      rank = static_cast<int32_t>(r.getInt());
      progName = progName.split('.').second;
    }
    programs.push_back(pl::CreateProgramDefDirect(
        b, progName.str().c_str(), &launches, &bufDefs,
        static_cast<uint64_t>(*prog.getArenaBytes()), prog.getMaxTokens(), rank));
  }

  const auto &hp = model.hp;
  const char *quant = model.quant.method == mm::QuantMethod::GPTQ ? "gptq" : "auto-round";
  auto modelDef = pl::CreateModelDefDirect(
      b, "MiniMaxM2ForCausalLM", hp.hidden_size, hp.intermediate_size, hp.num_layers,
      hp.num_heads, hp.num_kv_heads, hp.head_dim, hp.rotary_dim, hp.num_experts, hp.top_k,
      hp.vocab_size, hp.rope_theta, hp.rms_norm_eps, hp.bos_token_id, &hp.eos_token_ids, quant,
      planDtype(model.activation_dtype));
  auto kvDt = limits.kvDtype == "fp8" ? pl::DType::FP8_E4M3 : pl::DType::BF16;
  auto limitsDef = pl::CreateLimitsDef(b, limits.maxSeqLen, limits.maxBatch,
                                       limits.maxPrefillTokens, kvDt, limits.kvBlockSize);
  std::vector<fb::Offset<fb::String>> targetStrs;
  for (const auto &t : targets) targetStrs.push_back(b.CreateString(t));
  auto plan = pl::CreatePlanDef(
      b, kPlanSchemaVersion, b.CreateString("mmc 0.1.0"), modelDef, limitsDef,
      b.CreateVector(targetStrs), modelHash(model), b.CreateVector(weights),
      b.CreateVector(kernelDefs), b.CreateVector(programs),
      b.CreateString(model.tokenizer_file), b.CreateString(model.chat_template_file),
      /*checksum placeholder, non-zero so the field is stored*/ 1, limits.tp, limits.ep);
  pl::FinishPlanDefBuffer(b, plan);
  std::vector<uint8_t> bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  pl::seal_plan(bytes.data(), bytes.size());
  return bytes;
}

} // namespace mm::compiler
