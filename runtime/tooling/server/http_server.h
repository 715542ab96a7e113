// The HTTP side of `mmrun serve`, on cpp-httplib (Debian's libcpp-httplib): routes, API-key check,
// OpenAI error objects for every refusal, and the answers, streamed as server-sent events or
// written whole. Each request is validated and tokenized on its connection's thread, queued in the
// scheduler, and answered from its RequestStream. Both kinds of answer are written through a
// chunked content provider that polls the connection while it waits, so that a client that
// disconnects cancels its request (and frees its sequence slot) even before the first token.
//
//   GET  /health               200, or 503 while draining or after an engine failure
//   GET  /metrics              Prometheus text (metrics.h)
//   GET  /v1/models            the served model names
//   POST /v1/chat/completions  chat (openai_request.h)
//   POST /v1/completions       raw completion
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tooling/server/metrics.h"
#include "runtime/tooling/server/openai_request.h"
#include "runtime/tooling/server/scheduler.h"
#include "support/status.h"

namespace httplib {
class Server;
}

namespace mm::rt::server {

struct HttpOptions {
  std::string api_key;           // empty: no check
  int64_t max_request_bytes = 16ll << 20;
  int threads = 32;              // connection threads (each open connection holds one)
  std::string model_root;        // /v1/models "root": the weights directory or the plan
};

class HttpServer {
 public:
  HttpServer(const ServerConfig& config, HttpOptions options, const text::Tokenizer& tokenizer, Scheduler& scheduler,
             Metrics& metrics);
  ~HttpServer();

  // Binds the listening socket (port 0: any free port).
  Status bind(const std::string& host, int port);
  int port() const { return port_; }
  // Serves until stop(); false if the listener failed.
  bool listen();
  // From now on /health is 503 and new requests are refused with 503.
  void begin_drain() { draining_.store(true); }
  void stop();
  // Answers still being written.
  int64_t in_flight() const { return in_flight_.load(); }

 private:
  void routes();
  void completion(Endpoint endpoint, const std::string& body, void* response);

  const ServerConfig& config_;
  HttpOptions options_;
  const text::Tokenizer& tokenizer_;
  Scheduler& scheduler_;
  Metrics& metrics_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = -1;
  int64_t created_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> id_seed_{0};
};

}  // namespace mm::rt::server
