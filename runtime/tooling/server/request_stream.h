// The channel between the engine thread and the HTTP thread that answers one request: the engine
// pushes events (text with the ids behind it, then a final event with the finish reason and the
// token counts), the HTTP thread takes them as they come; a client that goes away sets the
// cancelled flag, which the engine looks at before every step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/tooling/text_stream.h"
#include "support/status.h"

namespace mm::rt::server {

struct EngineEvent {
  std::string text;          // text ready to show (UTF-8 complete, stop strings removed)
  std::vector<int32_t> ids;  // the tokens this event adds to the answer (sampled or forced)
  bool finished = false;
  // Set on the final event:
  FinishReason reason = FinishReason::None;
  std::optional<Error> error;  // the request failed in the engine
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;   // prompt tokens whose KV came from the prefix cache
};

class RequestStream {
 public:
  // HTTP side: the client is gone (or no longer wants the answer).
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // HTTP side: waits up to `timeout` for events and takes all that are queued (empty on timeout).
  std::vector<EngineEvent> wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !events_.empty(); });
    std::vector<EngineEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
    events_.clear();
    return out;
  }

  // Engine side.
  void push(EngineEvent e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EngineEvent> events_;
};

}  // namespace mm::rt::server
