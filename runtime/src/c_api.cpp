// The C API of include/mm/mm_runtime.h over the C++ runtime.
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "mm/mm_runtime.h"
#include "runtime/src/cuda_executor.h"
#include "runtime/src/generate.h"
#include "runtime/src/host_executor.h"
#include "runtime/src/session.h"
#include "runtime/src/weights.h"

struct mm_status_object {
  mm_status_code code;
  std::string message;
};
struct mm_plan {
  std::shared_ptr<const mm::rt::Plan> plan;
};
struct mm_session {
  std::unique_ptr<mm::rt::Session> session;
};

namespace {

mm_status make_status(mm_status_code code, std::string message) {
  return new (std::nothrow) mm_status_object{code, std::move(message)};
}

mm_status from_error(const mm::Error& e, mm_status_code bad_input_code) {
  return make_status(e.kind == mm::ErrorKind::BadInput ? bad_input_code : MM_STATUS_INTERNAL,
                     e.message);
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
void mm_status_free(mm_status status) { delete status; }

mm_status mm_plan_load(const char* path, mm_plan** out_plan) {
  if (!path || !out_plan) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_plan_load: null argument");
  auto p = mm::rt::load_plan(path);
  if (!p) return from_error(p.error(), MM_STATUS_INVALID_PLAN);
  *out_plan = new (std::nothrow) mm_plan{std::move(*p)};
  return *out_plan ? nullptr : make_status(MM_STATUS_INTERNAL, "out of memory");
}

int64_t mm_plan_vocab_size(const mm_plan* plan) {
  return plan ? plan->plan->def().model()->vocab_size() : 0;
}

void mm_plan_free(mm_plan* plan) { delete plan; }

mm_status mm_session_init(const mm_plan* plan, const mm_session_options* options,
                          mm_session** out_session) {
  if (!plan || !options || !options->weights || !out_session)
    return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_init: null argument");
  const std::string device = options->device ? options->device : "";
  if (!device.empty() && device != "host" && device != "cuda")
    return make_status(MM_STATUS_INVALID_ARGUMENT, "device must be \"host\" or \"cuda\", got \"" + device + "\"");
  const auto& lim = *plan->plan->def().limits();
  const int64_t max_seq_len = options->max_seq_len > 0 ? options->max_seq_len : lim.max_seq_len();
  const int64_t max_seqs = options->max_seqs > 0 ? options->max_seqs : 1;
  const std::string weights_arg = options->weights;
  const int64_t block = lim.kv_block_size();
  const int64_t kv_blocks = max_seqs * ((max_seq_len + block - 1) / block);
  if (device == "cuda" || (device.empty() && mm::rt::cuda_device_present())) {
    mm::rt::CudaOptions co;
    co.weights = weights_arg;
    co.seed = options->seed;
    co.max_seq_len = max_seq_len;
    co.max_seqs = max_seqs;
    auto ex = mm::rt::CudaExecutor::create(plan->plan, co);
    if (!ex) return make_status(ex.error().kind == mm::ErrorKind::BadInput ? MM_STATUS_INVALID_WEIGHTS : MM_STATUS_UNAVAILABLE,
                                ex.error().message);
    auto s = mm::rt::Session::create(plan->plan, std::move(*ex), max_seq_len, max_seqs);
    if (!s) return from_error(s.error(), MM_STATUS_INVALID_ARGUMENT);
    *out_session = new (std::nothrow) mm_session{std::move(*s)};
    return *out_session ? nullptr : make_status(MM_STATUS_INTERNAL, "out of memory");
  }
  auto w = weights_arg == "random" ? mm::rt::random_host_weights(*plan->plan, options->seed)
                                   : mm::rt::load_host_weights(*plan->plan, weights_arg, false);
  if (!w) return from_error(w.error(), MM_STATUS_INVALID_WEIGHTS);
  auto ex = mm::rt::HostExecutor::create(plan->plan, std::move(*w), kv_blocks);
  if (!ex) return from_error(ex.error(), MM_STATUS_INVALID_ARGUMENT);
  auto s = mm::rt::Session::create(plan->plan, std::move(*ex), max_seq_len, max_seqs);
  if (!s) return from_error(s.error(), MM_STATUS_INVALID_ARGUMENT);
  *out_session = new (std::nothrow) mm_session{std::move(*s)};
  return *out_session ? nullptr : make_status(MM_STATUS_INTERNAL, "out of memory");
}

mm_status mm_session_prefill(mm_session* session, int32_t slot, const int32_t* ids, int64_t n,
                             const mm_sampling* sampling, int64_t step, float* logits,
                             int32_t* next) {
  if (!session || !ids || n <= 0) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_prefill: no tokens");
  std::vector<float> l;
  int32_t tok = -1;
  mm::Status st = session->session->prefill(slot, {ids, static_cast<size_t>(n)}, to_sampling(sampling),
                                            step, logits ? &l : nullptr, &tok);
  if (!st) return from_error(st.error(), MM_STATUS_INVALID_ARGUMENT);
  if (logits) std::memcpy(logits, l.data(), l.size() * sizeof(float));
  if (next) *next = tok;
  return nullptr;
}

mm_status mm_session_decode(mm_session* session, int32_t n, const int32_t* slots,
                            const int32_t* ids, const mm_sampling* sampling, int64_t step,
                            float* logits, int32_t* next) {
  if (!session || !slots || !ids || !sampling || n <= 0)
    return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_decode: null argument");
  std::vector<mm::rt::Sampling> s(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) s[i] = to_sampling(&sampling[i]);
  std::vector<float> l;
  std::vector<int32_t> toks;
  mm::Status st = session->session->decode({slots, static_cast<size_t>(n)}, {ids, static_cast<size_t>(n)},
                                           s, step, logits ? &l : nullptr, &toks);
  if (!st) return from_error(st.error(), MM_STATUS_INVALID_ARGUMENT);
  if (logits) std::memcpy(logits, l.data(), l.size() * sizeof(float));
  if (next) std::memcpy(next, toks.data(), toks.size() * sizeof(int32_t));
  return nullptr;
}

mm_status mm_session_release(mm_session* session, int32_t slot) {
  if (!session) return make_status(MM_STATUS_INVALID_ARGUMENT, "mm_session_release: null session");
  mm::Status st = session->session->release(slot);
  return st ? nullptr : from_error(st.error(), MM_STATUS_INVALID_ARGUMENT);
}

void mm_session_free(mm_session* session) { delete session; }

}  // extern "C"
