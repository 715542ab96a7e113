#include "runtime/src/weights.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <set>
#include <string_view>
#include <unordered_map>

#include "codegen/reference/reference.h"
#include "models/common/checkpoint.h"
#include "models/common/model_hash.h"
#include "support/safetensors.h"

namespace mm::rt {

namespace {

using plan::DType;
using plan::WeightTransform;

std::string dtype_str(DType dt) { return plan_dtype_name(dt); }

// The plan's dtype of a safetensors dtype, if the plan has one.
bool to_plan_dtype(mm::DType dt, DType* out) {
  switch (dt) {
    case mm::DType::BF16: *out = DType::BF16; return true;
    case mm::DType::F16: *out = DType::F16; return true;
    case mm::DType::F32: *out = DType::F32; return true;
    case mm::DType::I32: *out = DType::I32; return true;
    case mm::DType::I64: *out = DType::I64; return true;
    case mm::DType::U8: *out = DType::U8; return true;
    case mm::DType::F8_E4M3: *out = DType::FP8_E4M3; return true;
    default: return false;
  }
}

std::string vec_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::vector<int64_t> shape_of(const flatbuffers::Vector<int64_t>* s) {
  return s ? std::vector<int64_t>(s->begin(), s->end()) : std::vector<int64_t>{};
}

// The tensor table of DIR, by name: the checkpoint reader's (the index and every shard it names)
// when DIR has an index, else every tensor of the shards the plan names (a single
// model.safetensors, as the compiler reads it). Header errors name the tensor that needed them.
Expected<std::vector<TensorInfo>> weights_dir_tensors(const plan::PlanDef& def, const std::string& dir,
                                                      const std::string& origin) {
  const std::string mismatch = "weights directory " + dir + " does not match the plan " + origin;
  if (::access((dir + "/model.safetensors.index.json").c_str(), F_OK) == 0) {
    auto table = read_checkpoint_tensors(dir);
    if (!table) return Error::bad_input(mismatch + ": " + table.error().message);
    return table;
  }
  std::vector<TensorInfo> all;
  std::set<std::string> read;
  if (const auto* weights = def.weights())
    for (const plan::WeightDef* w : *weights)
      for (const plan::TensorRefDef* s : *w->sources()) {
        const std::string file = s->file()->str();
        if (!read.insert(file).second) continue;
        auto h = read_safetensors_header(dir + "/" + file, file);
        if (!h) return Error::bad_input(mismatch + " (tensor '" + s->name()->str() + "'): " + h.error().message);
        for (TensorInfo& t : h->tensors) all.push_back(std::move(t));
      }
  std::sort(all.begin(), all.end(), [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return all;
}

uint64_t plan_model_hash(const plan::PlanDef& def, const std::vector<TensorInfo>& tensors) {
  const plan::ModelDef& m = *def.model();
  return model_hash({m.hidden_size(), m.intermediate_size(), m.num_layers(), m.num_heads(), m.num_kv_heads(),
                     m.head_dim(), m.rotary_dim(), m.num_experts(), m.top_k(), m.vocab_size()},
                    tensors);
}

}  // namespace

Expected<uint64_t> weights_dir_model_hash(const Plan& plan, const std::string& dir) {
  auto table = weights_dir_tensors(plan.def(), dir, plan.origin());
  if (!table) return table.error();
  return plan_model_hash(plan.def(), *table);
}

Status check_weights_dir(const Plan& plan, const std::string& dir) {
  const std::string hint = " (the weights directory does not match the plan " + plan.origin() +
                           "; recompile the plan for this checkpoint)";
  auto table = weights_dir_tensors(plan.def(), dir, plan.origin());
  if (!table) return table.error();
  std::unordered_map<std::string_view, const TensorInfo*> by_name;
  by_name.reserve(table->size());
  for (const TensorInfo& t : *table) by_name.emplace(t.name, &t);
  if (const auto* weights = plan.def().weights())
    for (const plan::WeightDef* w : *weights) {
      for (const plan::TensorRefDef* s : *w->sources()) {
        const std::string file = s->file()->str();
        const std::string name = s->name()->str();
        const std::string where = dir + "/" + file + ": tensor '" + name + "'";
        auto it = by_name.find(name);
        if (it == by_name.end() || it->second->file != file) return Error::bad_input(where + " is missing" + hint);
        const TensorInfo& ti = *it->second;
        DType dt;
        const std::vector<int64_t> want_shape = shape_of(s->shape());
        if (!to_plan_dtype(ti.dtype, &dt) || dt != s->dtype() || ti.shape != want_shape)
          return Error::bad_input(where + " is " + std::string(mm::dtype_name(ti.dtype)) + " " +
                                  vec_str(ti.shape) + ", the plan expects " + dtype_str(s->dtype()) + " " +
                                  vec_str(want_shape) + hint);
        if (ti.offset != s->offset() || ti.nbytes != s->nbytes())
          return Error::bad_input(where + " occupies bytes [" + std::to_string(ti.offset) + ", +" +
                                  std::to_string(ti.nbytes) + "), the plan expects [" +
                                  std::to_string(s->offset()) + ", +" + std::to_string(s->nbytes()) + ")" +
                                  hint);
      }
    }
  // Every tensor the plan reads matches; the hash also covers those it does not read and the
  // plan's model table (models/common/model_hash.h).
  const uint64_t have = plan_model_hash(plan.def(), *table);
  if (have != plan.def().model_hash())
    return Error::bad_input("weights directory " + dir + " does not match the plan " + plan.origin() +
                            ": the plan's model_hash is " + hex64(plan.def().model_hash()) +
                            ", the checkpoint's is " + hex64(have) +
                            " (over the plan's model table and the checkpoint's tensor names, dtypes, shapes "
                            "and sizes); recompile the plan for this checkpoint");
  return Status::success();
}

RandomWeightFiller::RandomWeightFiller(const Plan& plan, uint64_t seed) : plan_(&plan), seed_(seed) {}

void RandomWeightFiller::fill(size_t wi, uint64_t first, uint64_t count, void* out) const {
  const plan::WeightDef& w = *plan_->def().weights()->Get(wi);
  const uint64_t base = ref::splitmix64(seed_ ^ ref::splitmix64(wi + 1));
  const size_t es = plan_dtype_size(w.dtype());
  // The role and fan-in the compiler recorded decide the distribution.
  const plan::WeightRole role = w.role();
  const float inv_sqrt_k = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(1, w.fan_in())));
  uint8_t* dst = static_cast<uint8_t*>(out);
  const DType dt = w.dtype();
  // A qweight in strips of 32 columns draws each word from its index in GPTQ rows, so that a plan
  // gets the same random model whatever its --qweight-layout.
  const auto* shape = w.shape();
  const bool strips = w.qlayout() == plan::QuantLayout::STRIPS32 && shape && shape->size() >= 2;
  const uint64_t kr = strips ? static_cast<uint64_t>(shape->Get(shape->size() - 2)) : 1;
  const uint64_t n = strips ? static_cast<uint64_t>(shape->Get(shape->size() - 1)) : 1;
  auto logical = [&](uint64_t i) {
    if (!strips) return i;
    const uint64_t m = i / (kr * n);   // the matrix (expert); within it the inverse of the strips
    return m * kr * n + static_cast<uint64_t>(ref::w4_rows_index(static_cast<int64_t>(i - m * kr * n),
                                                                 static_cast<int64_t>(kr), static_cast<int64_t>(n)));
  };
  ref::parallel_for(static_cast<int64_t>(count), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      const uint64_t h = ref::splitmix64(base + logical(first + static_cast<uint64_t>(j)));
      const float u = static_cast<float>(h >> 40) / 16777216.0f;  // [0, 1)
      const float sym = 2.0f * u - 1.0f;                          // [-1, 1)
      float v = 0.0f;
      switch (role) {
        case plan::WeightRole::SCALES: {
          const float mag = (0.5f + u) * inv_sqrt_k / 4.6f;  // (q - 8) has std ~4.6
          v = ((h & 1) ? -mag : mag);
          break;
        }
        case plan::WeightRole::NORM: v = 1.0f + 0.1f * sym; break;
        case plan::WeightRole::DENSE: v = std::sqrt(3.0f) * inv_sqrt_k * sym; break;
        case plan::WeightRole::EMBEDDING: v = sym; break;
        case plan::WeightRole::BIAS: v = 0.05f * sym; break;
        default: v = 0.02f * sym; break;
      }
      uint8_t* d = dst + static_cast<uint64_t>(j) * es;
      switch (dt) {
        case DType::I32: case DType::U8: case DType::I64: case DType::FP8_E4M3:
          // Integer tensors (int4 nibbles): uniform random bits.
          std::memcpy(d, &h, es);
          break;
        case DType::F32: std::memcpy(d, &v, 4); break;
        case DType::F16: { uint16_t x = ref::f32_to_f16(v); std::memcpy(d, &x, 2); break; }
        case DType::BF16: { uint16_t x = ref::f32_to_bf16(v); std::memcpy(d, &x, 2); break; }
      }
    }
  });
}

Expected<HostWeights> random_host_weights(const Plan& plan, uint64_t seed) {
  HostWeights hw;
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  hw.buffers.resize(n);
  RandomWeightFiller filler(plan, seed);
  for (size_t wi = 0; wi < n; ++wi) {
    const plan::WeightDef& w = *weights->Get(wi);
    if (w.transform() == WeightTransform::CHECK_ZEROS) continue;
    HostBuffer& buf = hw.buffers[wi];
    if (!buf.allocate(w.nbytes()))
      return Error::internal("out of host memory allocating " + std::to_string(w.nbytes()) +
                             " bytes for weight '" + w.name()->str() + "'");
    hw.total_bytes += w.nbytes();
    filler.fill(wi, 0, w.nbytes() / plan_dtype_size(w.dtype()), buf.data());
  }
  return hw;
}

}  // namespace mm::rt
