// The C API of include/mm/mm_runtime.h over the C++ runtime.
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "mm/mm_runtime.h"
#include "runtime/src/measure.h"
#include "runtime/src/open_session.h"
#include "runtime/src/session.h"
#include "runtime/src/shard_io.h"
#include "runtime/src/weight_stream.h"
#include "support/file_util.h"

struct mm_status_object {
  mm_status_code code;
  std::string message;
};
struct mm_plan {
  std::shared_ptr<const mm::rt::Plan> plan;
  std::vector<int64_t> eos;  // the plan's EOS ids, for mm_plan_info
};
struct mm_session {
  mm::rt::OpenedSession opened;
  mm::rt::Session& s() { return *opened.session; }
};

namespace {

mm_status make_status(mm_status_code code, std::string message) {
  return new (std::nothrow) mm_status_object{code, std::move(message)};
}

mm_status from_error(const mm::Error& e, mm_status_code bad_input_code) {
  return make_status(e.kind == mm::ErrorKind::BadInput ? bad_input_code : MM_STATUS_INTERNAL,
                     e.message);
}

// Allocation-free answer for an out-of-memory failure: mm_status_free knows not to delete it.
mm_status_object g_out_of_memory{MM_STATUS_INTERNAL, "out of memory"};

// The C boundary: no C++ exception crosses it. std::bad_alloc becomes the out-of-memory status,
// anything else an internal error naming the call.
template <class F>
mm_status guarded(const char* fn, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return &g_out_of_memory;
  } catch (const std::exception& e) {
    try {
      return make_status(MM_STATUS_INTERNAL, std::string(fn) + ": internal error: " + e.what());
    } catch (...) {
      return &g_out_of_memory;
    }
  } catch (...) {
    return make_status(MM_STATUS_INTERNAL, std::string(fn) + ": internal error");
  }
}

mm::rt::Sampling to_sampling(const mm_sampling* s) {
  mm::rt::Sampling r;
  if (s) r = {s->temperature, s->top_k, s->top_p, s->seed};
  return r;
}

}  // namespace

extern "C" {

mm_status_code mm_status_get_code(mm_status status) { return status ? status->code : MM_STATUS_OK; }
const char* mm_status_get_message(mm_status status) { return status ? status->message.c_str() : ""; }
void mm_status_free(mm_status status) {
  if (status != &g_out_of_memory) delete status;
}

namespace {
mm_status wrap_plan(mm::Expected<std::shared_ptr<const mm::rt::Plan>> p, mm_plan** out_plan) {
  if (!p) return from_error(p.error(), MM_STATUS_INVALID_PLAN);
  auto plan = std::make_unique<mm_plan>(mm_plan{std::move(*p), {}});
  if (const auto* eos = plan->plan->def().model()->eos_token_ids()) plan->eos.assign(eos->begin(), eos->end());
  *out_plan = plan.release();
  return nullptr;
}
}  // namespace

mm_status mm_plan_load(const char* path, mm_plan** out_plan) {
  return guarded("mm_plan_load", [&]() -> mm_status {
    if (!path || !out_plan) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_plan_load: null argument");
    // Only a regular file of at most kMaxPlanFileBytes is read (a FIFO would block for ever).
    auto bytes = mm::read_regular_file(path, "plan", mm::kMaxPlanFileBytes);
    if (!bytes) return from_error(bytes.error(), MM_STATUS_INVALID_PLAN);
    return wrap_plan(mm::rt::load_plan_from_memory(bytes->data(), bytes->size(), path), out_plan);
  });
}

mm_status mm_plan_load_from_memory(const void* data, size_t size, const char* origin, mm_plan** out_plan) {
  return guarded("mm_plan_load_from_memory", [&]() -> mm_status {
    if (!data || !out_plan) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_plan_load_from_memory: null argument");
    return wrap_plan(mm::rt::load_plan_from_memory(data, size, origin ? origin : "<memory>"),
                     out_plan);
  });
}

mm_status mm_plan_get_info(const mm_plan* plan, mm_plan_info* out) {
  return guarded("mm_plan_get_info", [&]() -> mm_status {
    if (!plan || !out) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_plan_get_info: null argument");
    const auto& def = plan->plan->def();
    const auto& m = *def.model();
    const auto& lim = *def.limits();
    auto str = [](const flatbuffers::String* s) { return s ? s->c_str() : ""; };
    *out = mm_plan_info{};
    out->path = plan->plan->origin().c_str();
    out->architecture = str(m.architecture());
    out->vocab_size = m.vocab_size();
    out->hidden_size = m.hidden_size();
    out->num_layers = m.num_layers();
    out->max_seq_len = lim.max_seq_len();
    out->max_batch = lim.max_batch();
    out->max_prefill_tokens = lim.max_prefill_tokens();
    out->kv_block_size = lim.kv_block_size();
    out->kv_cache_dtype = lim.kv_dtype() == mm::plan::DType::FP8_E4M3 ? "fp8" : "bf16";
    out->bos_token_id = m.bos_token_id();
    out->eos_token_ids = plan->eos.data();
    out->num_eos_token_ids = static_cast<int32_t>(plan->eos.size());
    out->tokenizer_file = str(def.tokenizer_file());
    out->chat_template_file = str(def.chat_template_file());
    uint64_t bytes = 0;
    if (def.weights())
      for (const auto* w : *def.weights())
        if (w->transform() != mm::plan::WeightTransform::CHECK_ZEROS) bytes += w->nbytes();
    out->weight_bytes = bytes;
    out->model_hash = def.model_hash();
    return nullptr;
  });
}

int mm_cuda_device_available(void) { return mm::rt::cuda_device_present() ? 1 : 0; }

int64_t mm_plan_vocab_size(const mm_plan* plan) {
  return plan ? plan->plan->def().model()->vocab_size() : 0;
}

void mm_plan_free(mm_plan* plan) { delete plan; }

mm_status mm_session_init(const mm_plan* plan, const mm_session_options* options,
                          mm_session** out_session) {
  return guarded("mm_session_init", [&]() -> mm_status {
    if (!plan || !options || !options->weights || !out_session)
      return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_init: null argument");
    mm::rt::SessionOptions o;
    o.weights = options->weights;
    o.device = options->device ? options->device : "";
    o.max_seq_len = options->max_seq_len;
    o.max_seqs = options->max_seqs > 0 ? options->max_seqs : 1;
    o.seed = options->seed;
    o.threads = options->threads;
    o.progress = options->progress != 0;
    o.gpu_memory_utilization = options->gpu_memory_utilization;
    if (options->load_threads < 0)
      return make_status(MM_STATUS_INVALID_ARGUMENT, "load_threads must be >= 0, got " + std::to_string(options->load_threads));
    if (options->load_threads > 0) o.load.readers = options->load_threads;
    auto io = mm::rt::parse_io_mode(options->load_io ? options->load_io : "");
    if (!io) return make_status(MM_STATUS_INVALID_ARGUMENT, io.error().message);
    o.load.io = *io;
    auto opened = mm::rt::open_session(plan->plan, o);
    if (!opened) {
      const mm::Error& e = opened.error();
      // A usage error here is an argument of this call; a bad input is the weights directory (or a
      // size the plan cannot hold); anything else is the device.
      return make_status(e.kind == mm::ErrorKind::Usage      ? MM_STATUS_INVALID_ARGUMENT
                         : e.kind == mm::ErrorKind::BadInput ? MM_STATUS_INVALID_WEIGHTS
                                                             : MM_STATUS_UNAVAILABLE,
                         e.message);
    }
    *out_session = new (std::nothrow) mm_session{std::move(*opened)};
    return *out_session ? nullptr : make_status(MM_STATUS_INTERNAL, "out of memory");
  });
}

mm_status mm_session_prefill(mm_session* session, int32_t slot, const int32_t* ids, int64_t n,
                             const mm_sampling* sampling, int64_t step, float* logits,
                             int32_t* next) {
  return guarded("mm_session_prefill", [&]() -> mm_status {
    if (!session || !ids || n <= 0) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_prefill: no tokens");
    std::vector<float> l;
    int32_t tok = -1;
    mm::Status st = session->s().prefill(slot, {ids, static_cast<size_t>(n)}, to_sampling(sampling),
                                              step, logits ? &l : nullptr, &tok);
    if (!st) return from_error(st.error(), MM_STATUS_INVALID_ARGUMENT);
    if (logits) std::memcpy(logits, l.data(), l.size() * sizeof(float));
    if (next) *next = tok;
    return nullptr;
  });
}

mm_status mm_session_decode(mm_session* session, int32_t n, const int32_t* slots,
                            const int32_t* ids, const mm_sampling* sampling, int64_t step,
                            float* logits, int32_t* next) {
  return guarded("mm_session_decode", [&]() -> mm_status {
    if (!session || !slots || !ids || !sampling || n <= 0)
      return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_decode: null argument");
    std::vector<mm::rt::Sampling> s(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) s[i] = to_sampling(&sampling[i]);
    std::vector<float> l;
    std::vector<int32_t> toks;
    mm::Status st = session->s().decode({slots, static_cast<size_t>(n)}, {ids, static_cast<size_t>(n)},
                                             s, step, logits ? &l : nullptr, &toks);
    if (!st) return from_error(st.error(), MM_STATUS_INVALID_ARGUMENT);
    if (logits) std::memcpy(logits, l.data(), l.size() * sizeof(float));
    if (next) std::memcpy(next, toks.data(), toks.size() * sizeof(int32_t));
    return nullptr;
  });
}

mm_status mm_session_release(mm_session* session, int32_t slot) {
  return guarded("mm_session_release", [&]() -> mm_status {
    if (!session) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_release: null session");
    mm::Status st = session->s().release(slot);
    return st ? nullptr : from_error(st.error(), MM_STATUS_INVALID_ARGUMENT);
  });
}

mm_status mm_session_truncate(mm_session* session, int32_t slot, int64_t length) {
  return guarded("mm_session_truncate", [&]() -> mm_status {
    if (!session) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_truncate: null session");
    mm::Status st = session->s().truncate(slot, length);
    return st ? nullptr : from_error(st.error(), MM_STATUS_INVALID_ARGUMENT);
  });
}

int64_t mm_session_length(const mm_session* session, int32_t slot) {
  if (!session || slot < 0 || slot >= session->opened.session->max_seqs()) return -1;
  return session->opened.session->length(slot);
}

mm_status mm_session_get_info(const mm_session* session, mm_session_info* out) {
  return guarded("mm_session_get_info", [&]() -> mm_status {
    if (!session || !out) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_get_info: null argument");
    const mm::rt::Session& s = *session->opened.session;
    *out = mm_session_info{};
    out->backend = session->opened.backend.c_str();
    out->details = session->opened.details.c_str();
    out->weight_bytes = session->opened.weight_bytes;
    out->load_seconds = session->opened.load_s;
    out->max_seq_len = s.max_seq_len();
    out->max_seqs = static_cast<int32_t>(s.max_seqs());
    out->kv_block_size = s.plan().def().limits()->kv_block_size();
    out->kv_blocks_total = s.kv_blocks_total();
    out->kv_blocks_free = s.kv_blocks_free();
    return nullptr;
  });
}

void mm_session_free(mm_session* session) { delete session; }

// ---- Measurements ----------------------------------------------------------------------------

mm_status mm_session_get_load_stats(const mm_session* session, mm_load_stats* out) {
  if (!session || !out) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_get_load_stats: null argument");
  const mm::rt::WeightLoadStats& l = session->opened.load;
  *out = mm_load_stats{};
  out->source = l.source.c_str();
  out->file_bytes = l.file_bytes;
  out->weight_bytes = l.device_bytes;
  out->seconds = l.seconds;
  out->reader_threads = l.readers;
  out->files = l.files;
  out->direct_files = l.direct_files;
  out->staging_bytes = l.staging_bytes;
  out->peak_rss_kib = l.peak_rss_kib;
  return nullptr;
}

mm_status mm_plan_get_costs(const mm_plan* plan, mm_plan_costs* out) {
  if (!plan || !out) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_plan_get_costs: null argument");
  const mm::rt::PlanCosts c = mm::rt::plan_costs(*plan->plan);
  *out = mm_plan_costs{c.expert_weight_bytes, c.embedding_bytes, c.embedding_row_bytes, c.other_weight_bytes,
                       c.num_experts,         c.top_k,           c.kv_bytes_per_token,  c.linear_flops_per_token,
                       c.attention_flops_per_position};
  return nullptr;
}

mm_status mm_measure_device(const char* device, int32_t threads, mm_device_measurement* out) {
  if (!out) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_measure_device: null argument");
  auto r = mm::rt::measure_device(device ? device : "", threads);
  if (!r) {
    const mm::Error& e = r.error();
    return make_status(e.kind == mm::ErrorKind::Usage ? MM_STATUS_INVALID_ARGUMENT : MM_STATUS_UNAVAILABLE, e.message);
  }
  *out = mm_device_measurement{};
  std::snprintf(out->device, sizeof out->device, "%s", r->device.c_str());
  out->copy_bytes_per_second = r->copy_bytes_per_second;
  out->copy_bytes = r->copy_bytes;
  out->gemm_flops_per_second = r->gemm_flops_per_second;
  std::snprintf(out->gemm, sizeof out->gemm, "%s", r->gemm.c_str());
  return nullptr;
}

mm_status mm_weights_page_cache(const mm_plan* plan, const char* weights_dir, int32_t drop, double* resident_share) {
  if (!plan || !weights_dir || !resident_share)
    return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_weights_page_cache: null argument");
  auto r = mm::rt::page_cache_share(mm::rt::plan_shards(*plan->plan, weights_dir), drop != 0);
  if (!r) return from_error(r.error(), MM_STATUS_INVALID_WEIGHTS);
  *resident_share = *r;
  return nullptr;
}

mm_status mm_measure_read(const mm_plan* plan, const char* weights_dir, mm_read_measurement* out) {
  if (!plan || !weights_dir || !out) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_measure_read: null argument");
  auto r = mm::rt::read_sequential(mm::rt::plan_shards(*plan->plan, weights_dir));
  if (!r) return from_error(r.error(), MM_STATUS_INVALID_WEIGHTS);
  *out = mm_read_measurement{r->bytes, r->files, r->seconds};
  return nullptr;
}

}  // extern "C"
