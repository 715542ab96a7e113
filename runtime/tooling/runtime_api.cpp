#include "runtime/tooling/runtime_api.h"

namespace mm::rt {

Error error_of(mm_status st) {
  const mm_status_code code = mm_status_get_code(st);
  Error e{code == MM_STATUS_INTERNAL || code == MM_STATUS_UNAVAILABLE ? ErrorKind::Internal : ErrorKind::BadInput,
          mm_status_get_message(st)};
  mm_status_free(st);
  return e;
}

Expected<ApiPlan> ApiPlan::load(const std::string& path) {
  mm_plan* raw = nullptr;
  ApiPlan p;
  if (mm_status st = mm_plan_load(path.c_str(), &raw)) return error_of(st);
  p.plan_.reset(raw, mm_plan_free);
  if (mm_status st = mm_plan_get_info(raw, &p.info_)) return error_of(st);
  return p;
}

Expected<ApiPlan> ApiPlan::load_from_memory(const void* data, size_t size, const std::string& origin) {
  mm_plan* raw = nullptr;
  ApiPlan p;
  if (mm_status st = mm_plan_load_from_memory(data, size, origin.c_str(), &raw)) return error_of(st);
  p.plan_.reset(raw, mm_plan_free);
  if (mm_status st = mm_plan_get_info(raw, &p.info_)) return error_of(st);
  return p;
}

Expected<std::unique_ptr<ApiSession>> ApiSession::open(const ApiPlan& plan, const mm_session_options& options) {
  mm_session* s = nullptr;
  if (mm_status st = mm_session_init(plan.get(), &options, &s)) return error_of(st);
  return std::unique_ptr<ApiSession>(new ApiSession(plan, s));
}

mm_session_info ApiSession::info() const {
  mm_session_info i{};
  if (mm_status st = mm_session_get_info(session_, &i)) mm_status_free(st);
  return i;
}

Status ApiSession::prefill(int32_t slot, std::span<const int32_t> ids, const mm_sampling& sampling, int64_t step,
                           std::vector<float>* logits, int32_t* next) {
  if (logits) logits->resize(static_cast<size_t>(vocab_size()));
  if (mm_status st = mm_session_prefill(session_, slot, ids.data(), static_cast<int64_t>(ids.size()), &sampling,
                                        step, logits ? logits->data() : nullptr, next))
    return error_of(st);
  return Status::success();
}

Status ApiSession::decode(std::span<const int32_t> slots, std::span<const int32_t> ids,
                          std::span<const mm_sampling> sampling, int64_t step, std::vector<float>* logits,
                          std::vector<int32_t>* next) {
  const size_t n = slots.size();
  if (ids.size() != n || sampling.size() != n)
    return Error::internal("decode: slots, ids and sampling differ in length");
  if (logits) logits->resize(n * static_cast<size_t>(vocab_size()));
  next->resize(n);
  if (mm_status st = mm_session_decode(session_, static_cast<int32_t>(n), slots.data(), ids.data(), sampling.data(),
                                       step, logits ? logits->data() : nullptr, next->data()))
    return error_of(st);
  return Status::success();
}

Status ApiSession::release(int32_t slot) {
  if (mm_status st = mm_session_release(session_, slot)) return error_of(st);
  return Status::success();
}

Status ApiSession::truncate(int32_t slot, int64_t length) {
  if (mm_status st = mm_session_truncate(session_, slot, length)) return error_of(st);
  return Status::success();
}

}  // namespace mm::rt
