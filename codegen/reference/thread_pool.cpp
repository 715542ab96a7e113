// The process-wide worker pool behind parallel_for. Work is split into fixed contiguous chunks
// decided before any thread runs, so results never depend on scheduling.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "codegen/reference/reference.h"

namespace mm::ref {

namespace {

thread_local bool t_in_pool_job = false;

class Pool {
 public:
  ~Pool() { stop_workers(); }

  void set_threads(int n) {
    std::lock_guard<std::mutex> call_lock(call_mu_);
    stop_workers();
    threads_ = std::max(1, n);
  }

  int threads() {
    std::lock_guard<std::mutex> call_lock(call_mu_);
    return threads_;
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    // Nested calls (a parallel body calling parallel_for) run inline: the pool is busy.
    if (t_in_pool_job) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    int64_t max_chunks = (n + grain - 1) / grain;
    int64_t chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(threads_) * 4);
    if (chunks <= 1 || threads_ == 1) {
      struct InJob {
        InJob() { t_in_pool_job = true; }
        ~InJob() { t_in_pool_job = false; }
      } in_job;
      fn(0, n);
      return;
    }
    start_workers();
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      job_n_ = n;
      job_chunks_ = chunks;
      next_.store(0);
      done_ = 0;
      ++generation_;
    }
    cv_.notify_all();
    work();
    // Wait for the chunks and for every worker that joined this job to leave it, so that no
    // worker still reads the job's fields when the next job is published.
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return done_ == job_chunks_ && active_ == 0; });
    job_ = nullptr;
    // An exception of any chunk (std::bad_alloc in a kernel's scratch vector) is rethrown here,
    // in the caller's thread, instead of terminating the process from a worker.
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void start_workers() {
    if (!workers_.empty()) return;
    stopping_ = false;
    // The system may refuse threads (RLIMIT_NPROC, memory for stacks): run with those it gave.
    try {
      for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error&) {
      threads_ = static_cast<int>(workers_.size()) + 1;
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  // Takes chunks until none is left; chunk c covers [c*n/chunks, (c+1)*n/chunks).
  void work() {
    t_in_pool_job = true;
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= job_chunks_) break;
      int64_t b = c * job_n_ / job_chunks_;
      int64_t e = (c + 1) * job_n_ / job_chunks_;
      try {
        (*job_)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (++done_ == job_chunks_) done_cv_.notify_all();
    }
    t_in_pool_job = false;
  }

  void worker_work() {
    work();
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) done_cv_.notify_all();
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || (generation_ != seen && job_ != nullptr); });
        if (stopping_) return;
        seen = generation_;
        ++active_;
      }
      worker_work();
    }
  }

  std::mutex call_mu_;  // one parallel_for at a time
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  int threads_ = std::max(1u, std::thread::hardware_concurrency());
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, job_chunks_ = 0, done_ = 0, active_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;  // the first exception of the running job (under mu_)
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void set_num_threads(int n) { pool().set_threads(n); }
int num_threads() { return pool().threads(); }
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn);
}

}  // namespace mm::ref
