#include "runtime/tooling/server/http_server.h"

#include <sys/socket.h>

#include <ctime>
#include <random>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "runtime/tooling/server/openai_response.h"

namespace mm::rt::server {

namespace {

using json = nlohmann::ordered_json;

// cpp-httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's
// shared library). Every streaming client opens a connection of its own (the openai client does not
// reuse one it closed before the end of the body), so a burst of 16 clients overflows the accept
// queue and the kernel resets some connections. Linux lets listen() be called again on a listening
// socket to change the backlog; the socket is a protected member, hence the subclass.
class Listener : public httplib::Server {
 public:
  bool raise_backlog(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

// One answer being written: the request, its stream from the engine, the response builder.
struct Answer {
  PreparedRequest request;
  std::shared_ptr<RequestStream> stream;
  std::unique_ptr<ResponseWriter> writer;
};

}  // namespace

HttpServer::HttpServer(const ServerConfig& config, HttpOptions options, const text::Tokenizer& tokenizer,
                       Scheduler& scheduler, Metrics& metrics)
    : config_(config),
      options_(std::move(options)),
      tokenizer_(tokenizer),
      scheduler_(scheduler),
      metrics_(metrics),
      server_(std::make_unique<Listener>()),
      created_(static_cast<int64_t>(std::time(nullptr))),
      id_seed_(std::random_device{}()) {
  const int threads = std::max(4, options_.threads);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_payload_max_length(static_cast<size_t>(options_.max_request_bytes));
  server_->set_tcp_nodelay(true);  // one small event per token: do not let Nagle hold them back
  routes();
}

HttpServer::~HttpServer() = default;

Status HttpServer::bind(const std::string& host, int port) {
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
    if (port_ <= 0) return Error::bad_input("cannot listen on " + host + " (any port)");
  } else {
    if (!server_->bind_to_port(host, port))
      return Error::bad_input("cannot listen on " + host + ":" + std::to_string(port) +
                              " (in use, or not an address of this machine)");
    port_ = port;
  }
  if (!static_cast<Listener&>(*server_).raise_backlog(SOMAXCONN))
    return Error::internal("listen() on " + host + ":" + std::to_string(port_) + " failed to raise the backlog");
  return Status::success();
}

bool HttpServer::listen() { return server_->listen_after_bind(); }

void HttpServer::stop() { server_->stop(); }

void HttpServer::routes() {
  httplib::Server& s = *server_;

  // API key on the OpenAI endpoints (vLLM leaves /health and /metrics open).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + options_.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError{401, "Incorrect API key provided (send 'Authorization: Bearer KEY' with the key given to --api-key)",
                             "invalid_request_error", "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });

  // Responses httplib makes itself (unknown route, body too large, bad request line) get an
  // OpenAI error object too.
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e;
    e.status = res.status;
    if (res.status == 404) {
      e.message = "Not Found: " + req.method + " " + req.path;
      e.code = "not_found";
    } else if (res.status == 413) {
      e.message = "the request body is larger than --max-request-bytes " + std::to_string(options_.max_request_bytes);
      e.code = "request_too_large";
    } else {
      e.message = "the request could not be served (HTTP " + std::to_string(res.status) + ")";
    }
    send_error(res, e);
    return httplib::Server::HandlerResponse::Handled;
  }));

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    send_error(res, ApiError{500, what, "server_error", "", "internal_error"});
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_.load() || scheduler_.draining()) {
      send_error(res, ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"});
    } else if (!scheduler_.healthy()) {
      send_error(res, ApiError{503, "the engine failed (see the server's log)", "server_error", "", "engine_error"});
    } else {
      res.status = 200;
    }
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(scheduler_.gauges(), resident_memory_bytes()), "text/plain; version=0.0.4; charset=utf-8");
  });

  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& name : config_.model_names) {
      json m;
      m["id"] = name;
      m["object"] = "model";
      m["created"] = created_;
      m["owned_by"] = "mmrun";
      m["root"] = options_.model_root;
      m["parent"] = nullptr;
      m["max_model_len"] = config_.max_model_len;
      m["permission"] = json::array();
      data.push_back(std::move(m));
    }
    json body;
    body["object"] = "list";
    body["data"] = std::move(data);
    res.set_content(body.dump(), "application/json");
  });

  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completion(Endpoint::Chat, req.body, &res);
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    completion(Endpoint::Completion, req.body, &res);
  });
}

void HttpServer::completion(Endpoint endpoint, const std::string& body, void* response) {
  httplib::Response& res = *static_cast<httplib::Response*>(response);
  const auto arrival = std::chrono::steady_clock::now();
  if (draining_.load()) {
    metrics_.add_rejected("draining");
    send_error(res, ApiError{503, "the server is shutting down and takes no new requests", "server_error", "", "shutting_down"});
    return;
  }
  auto answer = std::make_shared<Answer>();
  std::optional<ApiError> refused = endpoint == Endpoint::Chat
                                        ? prepare_chat(body, config_, tokenizer_, &answer->request)
                                        : prepare_completion(body, config_, tokenizer_, &answer->request);
  if (refused) {
    send_error(res, *refused);
    return;
  }
  answer->request.generation.arrival = arrival;
  Submitted sub = scheduler_.submit(answer->request.generation);
  switch (sub.refusal) {
    case Refusal::None: break;
    case Refusal::QueueFull:
      metrics_.add_rejected("queue_full");
      res.set_header("Retry-After", "1");
      send_error(res, ApiError{429, "the server is at capacity: every sequence slot is busy and the queue (--max-queued-requests) is full; retry later",
                               "rate_limit_error", "", "server_overloaded"});
      return;
    case Refusal::Draining:
      metrics_.add_rejected("draining");
      send_error(res, ApiError{503, "the server is shutting down and takes no new requests", "server_error", "", "shutting_down"});
      return;
    case Refusal::Unhealthy:
      metrics_.add_rejected("unhealthy");
      send_error(res, ApiError{503, "the engine failed (see the server's log); restart the server", "server_error", "", "engine_error"});
      return;
  }
  answer->stream = std::move(sub.stream);
  answer->writer = std::make_unique<ResponseWriter>(answer->request, new_response_id(endpoint),
                                                    static_cast<int64_t>(std::time(nullptr)), id_seed_.fetch_add(1));
  in_flight_.fetch_add(1);
  const bool streaming = answer->request.stream;
  if (streaming) res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      streaming ? "text/event-stream" : "application/json",
      [answer, streaming](size_t, httplib::DataSink& sink) {
        std::vector<EngineEvent> events = answer->stream->wait(std::chrono::milliseconds(50));
        if (events.empty()) {
          // Nothing new: is the client still there? (is_writable peeks at the socket.)
          if (!sink.is_writable()) {
            answer->stream->cancel();
            return false;
          }
          return true;
        }
        std::string out;
        for (const EngineEvent& e : events) {
          if (streaming) out += answer->writer->stream(e);
          else answer->writer->collect(e);
        }
        if (!streaming && answer->writer->finished()) out = answer->writer->body();
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          answer->stream->cancel();
          return false;
        }
        if (answer->writer->finished()) sink.done();
        return true;
      },
      [this, answer](bool success) {
        if (!success) answer->stream->cancel();
        in_flight_.fetch_sub(1);
      });
}

}  // namespace mm::rt::server
