// Plan semantic verification (plan_verify.h, issue 13): plans whose checksum is valid but whose
// numbers disagree — as a buggy compiler or a crafted file would make them — are refused at load
// with the program, launch, operand and field named. Each case patches one scalar of the valid
// tiny plan in place and reseals the checksum; before the verifier, every one of them loaded (and
// then segfaulted, aborted, ran misaligned or failed with exit 3).
#include <gtest/gtest.h>

#include <cstring>

#include "codegen/kernels/extents.h"
#include "runtime/schemas/plan_checksum.h"
#include "runtime/src/plan_reader.h"
#include "test/unit/runtime/test_plan.h"

namespace mm::rt {
namespace {

using test::TinyModel;

std::string load_error(const std::vector<uint8_t>& b) {
  auto p = load_plan_from_memory(b.data(), b.size(), "t.mmp");
  EXPECT_FALSE(p.ok()) << "the patched plan loaded";
  if (p.ok()) return "";
  EXPECT_EQ(p.error().exit_code(), 1);
  return p.error().message;
}

// Overwrites the stored scalar `vt` of `table` (which lies inside `buf`) and reseals the plan.
template <class T>
void patch(std::vector<uint8_t>& buf, const void* table, flatbuffers::voffset_t vt, T value) {
  const uint8_t* at = reinterpret_cast<const flatbuffers::Table*>(table)->GetAddressOf(vt);
  ASSERT_NE(at, nullptr) << "field not stored";
  std::memcpy(buf.data() + (at - buf.data()), &value, sizeof value);
  ASSERT_TRUE(plan::seal_plan(buf.data(), buf.size()));
}

struct Tiny {
  std::vector<uint8_t> buf = test::build_tiny_plan(TinyModel{});
  const plan::PlanDef& def() const { return *plan::GetPlanDef(buf.data()); }
  const plan::ProgramDef& program(const char* name) const {
    for (const plan::ProgramDef* p : *def().programs())
      if (p->name()->str() == name) return *p;
    return *def().programs()->Get(0);
  }
  // The first operand of `name`'s launches matching `pred`, with its launch index.
  template <class Pred>
  const plan::OperandDef* find_operand(const char* name, Pred pred, size_t* launch = nullptr) const {
    const auto& launches = *program(name).launches();
    for (size_t li = 0; li < launches.size(); ++li)
      for (const plan::OperandDef* o : *launches[li]->operands())
        if (pred(*o)) {
          if (launch) *launch = li;
          return o;
        }
    return nullptr;
  }
};

TEST(PlanVerify, TheTinyPlansLoad) {
  for (bool fp8 : {false, true}) {
    TinyModel m;
    m.fp8_kv = fp8;
    auto b = test::build_tiny_plan(m);
    auto p = load_plan_from_memory(b.data(), b.size(), "t.mmp");
    EXPECT_TRUE(p.ok()) << p.error().message;
  }
}

TEST(PlanVerify, RefusesAHeadDimThatDisagreesWithTheKernels) {
  Tiny t;
  patch<int64_t>(t.buf, t.def().model(), plan::ModelDef::VT_HEAD_DIM, 1);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("launches["), std::string::npos) << msg;
  EXPECT_NE(msg.find("has D = 32 but model.head_dim = 1"), std::string::npos) << msg;
}

TEST(PlanVerify, RefusesAHalvedVocabulary) {
  Tiny t;
  patch<int64_t>(t.buf, t.def().model(), plan::ModelDef::VT_VOCAB_SIZE, 48);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("has V = 96 but model.vocab_size = 48"), std::string::npos) << msg;
}

TEST(PlanVerify, RefusesAnArenaOperandAtAnOddOffset) {
  Tiny t;
  size_t li = 0;
  const plan::OperandDef* o = t.find_operand(
      "decode", [](const plan::OperandDef& o) { return o.kind() == plan::OperandKind::ARENA && o.offset() >= 16; }, &li);
  ASSERT_NE(o, nullptr);
  const uint64_t odd = o->offset() - 1;
  patch<uint64_t>(t.buf, o, plan::OperandDef::VT_OFFSET, odd);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("program 'decode' launches[" + std::to_string(li) + "]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("arena offset " + std::to_string(odd) + " is not a multiple of 16"), std::string::npos) << msg;
}

TEST(PlanVerify, RefusesAnArenaOf2To62Bytes) {
  Tiny t;
  patch<uint64_t>(t.buf, &t.program("prefill"), plan::ProgramDef::VT_ARENA_BYTES, uint64_t{1} << 62);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("program 'prefill': arena_bytes = 4611686018427387904 but the program's buffers"),
            std::string::npos) << msg;
}

TEST(PlanVerify, RefusesAnArenaOperandSmallerThanItsKernelTouches) {
  Tiny t;
  const plan::OperandDef* o = t.find_operand(
      "prefill", [](const plan::OperandDef& o) { return o.kind() == plan::OperandKind::ARENA && o.size() > 16; });
  ASSERT_NE(o, nullptr);
  patch<uint64_t>(t.buf, o, plan::OperandDef::VT_SIZE, 16);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("bytes with its parameters at T = 8, R = 1, but the arena range"), std::string::npos) << msg;
  EXPECT_NE(msg.find(" holds 16"), std::string::npos) << msg;
}

TEST(PlanVerify, RefusesAKernelParameterLargerThanItsWeight) {
  // GEMM_W4's N doubled: the kernel would read twice the packed weight.
  Tiny t;
  const plan::KernelDef* gemm = nullptr;
  for (const plan::KernelDef* k : *t.def().kernels())
    if (k->kind() == plan::KernelKind::GEMM_W4) gemm = k;
  ASSERT_NE(gemm, nullptr);
  const plan::ParamDef* n = nullptr;
  for (const plan::ParamDef* p : *gemm->params())
    if (p->name()->str() == "N") n = p;
  ASSERT_NE(n, nullptr);
  patch<int64_t>(t.buf, n, plan::ParamDef::VT_I, n->i() * 2);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("operand 1 'qw': GEMM_W4 touches"), std::string::npos) << msg;
  EXPECT_NE(msg.find("but weight '"), std::string::npos) << msg;
}

// A kernel compiled for GPTQ rows (QL = 0) over a weight laid out in strips of 32 columns would
// read every word from the wrong place: refused, naming both.
TEST(PlanVerify, RefusesAKernelWhoseQuantLayoutIsNotItsWeights) {
  TinyModel m;
  m.ql = 1;
  Tiny t;
  t.buf = test::build_tiny_plan(m);
  {
    auto ok = load_plan_from_memory(t.buf.data(), t.buf.size(), "t.mmp");
    ASSERT_TRUE(ok.ok()) << ok.error().message;
  }
  const plan::ParamDef* ql = nullptr;
  for (const plan::KernelDef* k : *t.def().kernels())
    if (k->kind() == plan::KernelKind::MOE_W2)
      for (const plan::ParamDef* p : *k->params())
        if (p->name()->str() == "QL") ql = p;
  ASSERT_NE(ql, nullptr);
  patch<int64_t>(t.buf, ql, plan::ParamDef::VT_I, 0);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("operand 1 'qw': kernel 'moe_w2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("reads QL = 0 words, weight '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("is laid out STRIPS32"), std::string::npos) << msg;
}

TEST(PlanVerify, RefusesSwappedKvPools) {
  Tiny t;
  const plan::OperandDef* o = t.find_operand("decode", [](const plan::OperandDef& o) {
    return o.kind() == plan::OperandKind::KV && o.slot() == plan::InputSlot::KV_K;
  });
  ASSERT_NE(o, nullptr);
  patch<uint8_t>(t.buf, o, plan::OperandDef::VT_SLOT, static_cast<uint8_t>(plan::InputSlot::KV_V));
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("indexes KV blocks here; expected the KV operand KV_K, the launch passes KV_V"),
            std::string::npos) << msg;
}

TEST(PlanVerify, RefusesALongerContextThanTheBlockTables) {
  // max_seq_len doubled: positions would index block-table entries past MAX_BLOCKS.
  Tiny t;
  patch<int64_t>(t.buf, t.def().limits(), plan::LimitsDef::VT_MAX_SEQ_LEN, 128);
  const std::string msg = load_error(t.buf);
  EXPECT_NE(msg.find("has MAX_BLOCKS = 16 but ceil(limits.max_seq_len / limits.kv_block_size) = 32"),
            std::string::npos) << msg;
}

TEST(PlanVerify, ExtentsCoverEverySlotOfEveryKind) {
  // The table of extents.cpp has one entry per ptr[] slot of the registry's declaration.
  for (size_t k = 0; k < kernels::kKindCount; ++k) {
    const auto kind = static_cast<kernels::Kind>(k);
    kernels::KernelParams p;
    // Default parameters of the kind (ranges do not matter to the count).
    switch (kind) {
#define MM_KIND(NAME, Struct, ref, file, uses_w4) \
  case kernels::Kind::NAME: p = kernels::Struct##Params{}; break;
#include "codegen/kernels/kinds_expand.h"
      default: break;
    }
    EXPECT_EQ(kernels::slot_extents(kind, p, {}).size(), static_cast<size_t>(kernels::kind_info(kind).slots))
        << kernels::kind_name(kind);
  }
}

}  // namespace
}  // namespace mm::rt
