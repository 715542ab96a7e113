#include "runtime/tooling/bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <tuple>

#include <nlohmann/json.hpp>

#include "runtime/tooling/generate.h"   // kMaxTemperature
#include "runtime/tooling/int_list.h"
#include "runtime/tooling/runtime_api.h"
#include "support/status.h"

namespace mm::rt {

namespace {

using json = nlohmann::ordered_json;
using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

int report(const Error& e, std::ostream& err) {
  err << "error: " << e.message << "\n";
  return e.exit_code();
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Decimal units, as bandwidths and disks are quoted: "4.30 TB", "11.2 GB", "512.0 kB".
std::string si(double v, const char* unit) {
  const char* p[] = {"", "k", "M", "G", "T", "P"};
  int i = 0;
  while (std::fabs(v) >= 1000.0 && i < 5) {
    v /= 1000.0;
    ++i;
  }
  return fmt(i == 0 ? "%.0f" : "%.2f", v) + " " + p[i] + unit;
}

struct Stat {
  double mean = 0, sd = 0;
  std::vector<double> values;
};
Stat stat_of(std::vector<double> v) {
  Stat s;
  s.values = std::move(v);
  if (s.values.empty()) return s;
  for (double x : s.values) s.mean += x;
  s.mean /= static_cast<double>(s.values.size());
  if (s.values.size() > 1) {
    double ss = 0;
    for (double x : s.values) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(s.values.size() - 1));
  }
  return s;
}
json stat_json(const Stat& s) { return json{{"mean", s.mean}, {"sd", s.sd}, {"values", s.values}}; }
std::string pm(const Stat& s, const char* f = "%.1f") { return fmt(f, s.mean) + " ± " + fmt(f, s.sd); }

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M UTC", &tm);
  return b;
}

// Random valid token ids (splitmix64).
class Ids {
 public:
  Ids(uint64_t seed, int64_t vocab) : state_(seed), vocab_(vocab) {}
  std::vector<int32_t> next(int64_t n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int32_t& x : v) {
      uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      x = static_cast<int32_t>((z ^ (z >> 31)) % static_cast<uint64_t>(vocab_));
    }
    return v;
  }

 private:
  uint64_t state_;
  int64_t vocab_;
};

// The runtime refuses a configuration that does not fit with this phrase (cuda_executor.cpp).
bool out_of_device_memory(const Error& e) { return e.message.find("out of device memory") != std::string::npos; }

struct Row {
  int64_t batch = 0, depth = 0;
  std::string skipped;  // why, when the configuration did not run
  Stat prefill_tps, ttft_ms, decode_tps;
  double decode_bytes_per_token = 0, decode_roofline = 0;
  double prefill_flops_per_token = 0, prefill_roofline = 0;  // 0: n/a
};

class Bench {
 public:
  Bench(const BenchOptions& o, std::ostream& out, std::ostream& err) : o_(o), out_(out), err_(err) {}
  int run();

 private:
  mm_session_options session_options(int64_t max_seqs, int64_t max_seq_len) const;
  Expected<std::unique_ptr<ApiSession>> open(int64_t max_seqs, int64_t max_seq_len);
  Status warm_up(ApiSession& s, int64_t batch);
  Status measure(ApiSession& s, Row& row);
  void rooflines(Row& row) const;
  mm_sampling sampling() const { return mm_sampling{o_.temperature, o_.top_k, o_.top_p, o_.seed}; }
  std::string sampling_text() const;
  int generation();
  int load();
  void print_generation(const std::vector<Row>& rows, const mm_session_info& info, const mm_load_stats& ls);

  const BenchOptions& o_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<ApiPlan> plan_;
  mm_plan_costs costs_{};
  mm_device_measurement dev_{};
};

std::string Bench::sampling_text() const {
  if (o_.temperature <= 0.0f) return "greedy";
  return "temperature " + fmt("%g", o_.temperature) + ", top_p " + fmt("%g", o_.top_p) + ", top_k " +
         std::to_string(o_.top_k) + ", seed " + std::to_string(o_.seed);
}

mm_session_options Bench::session_options(int64_t max_seqs, int64_t max_seq_len) const {
  mm_session_options so{};
  so.weights = o_.weights.c_str();
  so.device = o_.device.empty() ? nullptr : o_.device.c_str();
  so.max_seq_len = max_seq_len;
  so.max_seqs = static_cast<int32_t>(max_seqs);
  so.seed = o_.seed;
  so.threads = o_.threads;
  so.progress = ::isatty(2) != 0;
  so.load_threads = o_.load_threads;
  so.load_io = o_.load_io.empty() ? nullptr : o_.load_io.c_str();
  return so;
}

Expected<std::unique_ptr<ApiSession>> Bench::open(int64_t max_seqs, int64_t max_seq_len) {
  return ApiSession::open(*plan_, session_options(max_seqs, max_seq_len));
}

// One prefill chunk and a decode step of `batch` sequences before anything is timed: modules
// load lazily on first launch and the decode graph of the batch's bucket is captured on first use.
Status Bench::warm_up(ApiSession& s, int64_t batch) {
  Ids ids(o_.seed ^ 0x5eed, plan_->info().vocab_size);
  const mm_sampling g = sampling();
  std::vector<int32_t> slots, toks;
  for (int32_t b = 0; b < batch; ++b) {
    int32_t next = 0;
    const int64_t n = b == 0 ? std::min<int64_t>(o_.pp, plan_->info().max_prefill_tokens) : 1;
    if (Status st = s.prefill(b, ids.next(n), g, 0, nullptr, &next); !st) return st;
    slots.push_back(b);
    toks.push_back(next);
  }
  std::vector<mm_sampling> samp(static_cast<size_t>(batch), g);
  std::vector<int32_t> next;
  if (Status st = s.decode(slots, toks, samp, 1, nullptr, &next); !st) return st;
  for (int32_t b = 0; b < batch; ++b)
    if (Status st = s.release(b); !st) return st;
  return Status::success();
}

Status Bench::measure(ApiSession& s, Row& row) {
  const int64_t B = row.batch, d = row.depth;
  Ids ids(o_.seed + static_cast<uint64_t>(B * 1000003 + d), plan_->info().vocab_size);
  const mm_sampling g = sampling();
  std::vector<int32_t> slots(static_cast<size_t>(B)), next(static_cast<size_t>(B));
  for (int32_t b = 0; b < B; ++b) {
    slots[b] = b;
    if (d > 0)
      if (Status st = s.prefill(b, ids.next(d), g, 0, nullptr, &next[b]); !st) return st;
  }
  std::vector<double> prefill, ttft, decode;
  const std::vector<mm_sampling> samp(static_cast<size_t>(B), g);
  for (int r = 0; r < o_.runs; ++r) {
    const auto t_batch = clock_type::now();
    double prefill_s = 0, ttft_s = 0;
    for (int32_t b = 0; b < B; ++b) {
      if (Status st = s.truncate(b, d); !st) return st;
      const std::vector<int32_t> prompt = ids.next(o_.pp);
      const auto t0 = clock_type::now();
      if (Status st = s.prefill(b, prompt, g, 0, nullptr, &next[b]); !st) return st;
      prefill_s += since(t0);
      ttft_s += since(t_batch);
    }
    prefill.push_back(static_cast<double>(B * o_.pp) / prefill_s);
    ttft.push_back(1000.0 * ttft_s / static_cast<double>(B));
    std::vector<int32_t> toks = next, out;
    const auto t0 = clock_type::now();
    for (int64_t i = 0; i < o_.tg; ++i) {
      if (Status st = s.decode(slots, toks, samp, i + 1, nullptr, &out); !st) return st;
      toks.swap(out);
    }
    decode.push_back(static_cast<double>(B * o_.tg) / since(t0));
  }
  for (int32_t b = 0; b < B; ++b)
    if (Status st = s.release(b); !st) return st;
  row.prefill_tps = stat_of(prefill);
  row.ttft_ms = stat_of(ttft);
  row.decode_tps = stat_of(decode);
  return Status::success();
}

void Bench::rooflines(Row& row) const {
  const double B = static_cast<double>(row.batch), E = static_cast<double>(costs_.num_experts),
               k = static_cast<double>(costs_.top_k);
  // Expected distinct experts a layer reads for B tokens routed to k of E each.
  const double distinct_share = E > 0 ? 1.0 - std::pow(1.0 - k / E, B) : 0.0;
  const double ctx_decode = static_cast<double>(row.depth + o_.pp) + static_cast<double>(o_.tg) / 2.0;
  const double step = static_cast<double>(costs_.other_weight_bytes) + B * static_cast<double>(costs_.embedding_row_bytes) +
                      static_cast<double>(costs_.expert_weight_bytes) * distinct_share +
                      B * static_cast<double>(costs_.kv_bytes_per_token) * ctx_decode;
  row.decode_bytes_per_token = step / B;
  row.decode_roofline = dev_.copy_bytes_per_second / row.decode_bytes_per_token;
  const double ctx_prefill = static_cast<double>(row.depth) + static_cast<double>(o_.pp) / 2.0;
  row.prefill_flops_per_token = costs_.linear_flops_per_token + costs_.attention_flops_per_position * ctx_prefill;
  row.prefill_roofline =
      dev_.gemm_flops_per_second > 0 ? dev_.gemm_flops_per_second / row.prefill_flops_per_token : 0.0;
}

int Bench::generation() {
  std::vector<int64_t> batches = o_.batches, depths = o_.depths;
  std::sort(batches.begin(), batches.end());
  batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
  std::sort(depths.begin(), depths.end());
  depths.erase(std::unique(depths.begin(), depths.end()), depths.end());
  auto need = [&](int64_t d) { return d + o_.pp + o_.tg; };

  std::vector<Row> rows;
  std::unique_ptr<ApiSession> session;
  int64_t have_batch = 0, have_len = 0;
  bool per_batch = false;  // one session for everything did not fit
  mm_session_info sinfo{};
  mm_load_stats lstats{};
  for (int64_t B : batches) {
    std::vector<int64_t> ds = depths;
    while (!ds.empty()) {
      if (session && have_batch >= B && have_len >= need(ds.back())) break;
      session.reset();  // its device memory is needed for the next one
      const int64_t want_batch = per_batch ? B : batches.back();
      const int64_t want_len = per_batch ? need(ds.back()) : need(depths.back());
      auto opened = open(want_batch, want_len);
      if (opened) {
        session = std::move(*opened);
        have_batch = want_batch;
        have_len = want_len;
        sinfo = session->info();
        if (mm_status st = mm_session_get_load_stats(session->get(), &lstats)) return report(error_of(st), err_);
        break;
      }
      if (!out_of_device_memory(opened.error())) return report(opened.error(), err_);
      if (!per_batch) {
        per_batch = true;
        err_ << "note: a session for " << want_batch << " sequences of " << want_len
             << " tokens does not fit; one session per batch\n";
        continue;
      }
      Row skip;
      skip.batch = B;
      skip.depth = ds.back();
      skip.skipped = "the KV cache of " + std::to_string(B) + " x " + std::to_string(want_len) +
                     " tokens does not fit in device memory";
      err_ << "note: batch " << B << " depth " << ds.back() << " skipped: " << opened.error().message << "\n";
      rows.push_back(skip);
      ds.pop_back();
    }
    if (ds.empty()) continue;
    if (Status st = warm_up(*session, B); !st) return report(st.error(), err_);
    for (int64_t d : ds) {
      Row row;
      row.batch = B;
      row.depth = d;
      err_ << "bench: batch " << B << ", depth " << d << ", pp " << o_.pp << ", tg " << o_.tg << ", " << o_.runs
           << " runs\n";
      if (Status st = measure(*session, row); !st) return report(st.error(), err_);
      rooflines(row);
      rows.push_back(row);
    }
  }
  std::sort(rows.begin(), rows.end(),
            [](const Row& a, const Row& b) { return std::tie(a.batch, a.depth) < std::tie(b.batch, b.depth); });
  print_generation(rows, sinfo, lstats);
  return 0;
}

void Bench::print_generation(const std::vector<Row>& rows, const mm_session_info& sinfo, const mm_load_stats& ls) {
  const mm_plan_info& info = plan_->info();
  if (o_.json) {
    json j;
    j["plan"] = o_.plan;
    j["date"] = utc_now();
    j["weights"] = o_.weights;
    j["backend"] = sinfo.backend ? sinfo.backend : "";
    j["device"] = dev_.device;
    j["copy_bytes_per_second"] = dev_.copy_bytes_per_second;
    j["copy_bytes"] = dev_.copy_bytes;
    j["gemm_flops_per_second"] = dev_.gemm_flops_per_second > 0 ? json(dev_.gemm_flops_per_second) : json(nullptr);
    j["gemm"] = dev_.gemm;
    j["pp"] = o_.pp;
    j["tg"] = o_.tg;
    j["runs"] = o_.runs;
    j["sampling"] = {{"temperature", o_.temperature}, {"top_p", o_.top_p}, {"top_k", o_.top_k}};
    j["costs"] = {{"expert_weight_bytes", costs_.expert_weight_bytes},
                  {"embedding_bytes", costs_.embedding_bytes},
                  {"embedding_row_bytes", costs_.embedding_row_bytes},
                  {"other_weight_bytes", costs_.other_weight_bytes},
                  {"num_experts", costs_.num_experts},
                  {"top_k", costs_.top_k},
                  {"kv_bytes_per_token", costs_.kv_bytes_per_token},
                  {"linear_flops_per_token", costs_.linear_flops_per_token},
                  {"attention_flops_per_position", costs_.attention_flops_per_position}};
    j["load"] = {{"source", ls.source ? ls.source : ""}, {"seconds", ls.seconds}, {"file_bytes", ls.file_bytes},
                 {"weight_bytes", ls.weight_bytes}, {"peak_rss_kib", ls.peak_rss_kib}};
    json results = json::array();
    for (const Row& r : rows) {
      json x{{"batch", r.batch}, {"depth", r.depth}};
      if (!r.skipped.empty()) {
        x["skipped"] = r.skipped;
      } else {
        x["prefill_tokens_per_second"] = stat_json(r.prefill_tps);
        x["ttft_ms"] = stat_json(r.ttft_ms);
        x["decode_tokens_per_second"] = stat_json(r.decode_tps);
        x["decode_bytes_per_token"] = r.decode_bytes_per_token;
        x["decode_roofline_tokens_per_second"] = r.decode_roofline;
        x["decode_roofline_fraction"] = r.decode_roofline > 0 ? r.decode_tps.mean / r.decode_roofline : 0.0;
        x["prefill_flops_per_token"] = r.prefill_flops_per_token;
        x["prefill_roofline_tokens_per_second"] = r.prefill_roofline > 0 ? json(r.prefill_roofline) : json(nullptr);
        x["prefill_roofline_fraction"] =
            r.prefill_roofline > 0 ? json(r.prefill_tps.mean / r.prefill_roofline) : json(nullptr);
      }
      results.push_back(x);
    }
    j["results"] = results;
    out_ << j.dump(2) << "\n";
    return;
  }
  out_ << "mmrun bench " << o_.plan << " (" << info.num_layers << " layers, KV " << info.kv_cache_dtype
       << ", max_batch " << info.max_batch << "), " << utc_now() << "\n";
  out_ << "backend: " << (sinfo.backend ? sinfo.backend : "") << "; weights: " << o_.weights << " ("
       << si(static_cast<double>(ls.weight_bytes), "B") << ", loaded in " << fmt("%.1f", ls.seconds) << " s";
  if (ls.file_bytes) out_ << ", " << fmt("%.2f", ls.file_bytes / 1e9 / std::max(ls.seconds, 1e-9)) << " GB/s";
  out_ << ")\n";
  out_ << "copy bandwidth: " << si(dev_.copy_bytes_per_second, "B/s") << " (" << dev_.device << ", "
       << (dev_.copy_bytes >> 20) << " MiB buffers, read + write counted)\n";
  out_ << "bf16 GEMM: "
       << (dev_.gemm_flops_per_second > 0 ? si(dev_.gemm_flops_per_second, "FLOP/s") + " (" + dev_.gemm + ")"
                                          : std::string(dev_.gemm))
       << "\n";
  out_ << "sampling: " << sampling_text() << "\n\n";
  const std::string pp = "pp" + std::to_string(o_.pp), tg = "tg" + std::to_string(o_.tg);
  out_ << "| batch | depth | test | tok/s | TTFT ms | cost/token | roofline tok/s | % of roofline |\n";
  out_ << "|------:|------:|:-----|------:|--------:|------------:|---------------:|--------------:|\n";
  for (const Row& r : rows) {
    const std::string head = "| " + std::to_string(r.batch) + " | " + std::to_string(r.depth) + " | ";
    if (!r.skipped.empty()) {
      out_ << head << "— | skipped: " << r.skipped << " | | | | |\n";
      continue;
    }
    const bool pf = r.prefill_roofline > 0;
    out_ << head << pp << " | " << pm(r.prefill_tps) << " | " << pm(r.ttft_ms) << " | "
         << si(r.prefill_flops_per_token, "FLOP") << " | " << (pf ? fmt("%.1f", r.prefill_roofline) : "n/a") << " | "
         << (pf ? fmt("%.1f %%", 100.0 * r.prefill_tps.mean / r.prefill_roofline) : "n/a") << " |\n";
    out_ << head << tg << " | " << pm(r.decode_tps) << " | | " << si(r.decode_bytes_per_token, "B") << " | "
         << fmt("%.1f", r.decode_roofline) << " | " << fmt("%.1f %%", 100.0 * r.decode_tps.mean / r.decode_roofline)
         << " |\n";
  }
  out_ << "\n" << pp << ": prefill of " << o_.pp << " prompt tokens per sequence after `depth` tokens "
       << "(cost/token: FLOPs); " << tg << ": " << o_.tg
       << " decode steps of all `batch` sequences together (tok/s summed over them; cost/token: bytes read). Mean ± sd over " << o_.runs
       << " runs.\n";
}

int Bench::load() {
  const std::string& dir = o_.weights;
  json runs = json::array();
  std::vector<double> raw_rates, load_rates, ratios;
  bool cold = true;
  double worst_resident = 0;
  for (int r = 0; r < o_.runs; ++r) {
    double resident_raw = 0, resident_load = 0;
    if (mm_status st = mm_weights_page_cache(plan_->get(), dir.c_str(), 1, &resident_raw)) return report(error_of(st), err_);
    mm_read_measurement raw{};
    if (mm_status st = mm_measure_read(plan_->get(), dir.c_str(), &raw)) return report(error_of(st), err_);
    if (mm_status st = mm_weights_page_cache(plan_->get(), dir.c_str(), 1, &resident_load)) return report(error_of(st), err_);
    const int64_t len = std::min<int64_t>(plan_->info().max_seq_len, 16);
    auto session = open(1, len);
    if (!session) return report(session.error(), err_);
    mm_load_stats ls{};
    if (mm_status st = mm_session_get_load_stats((*session)->get(), &ls)) return report(error_of(st), err_);
    const std::string backend = (*session)->info().backend;
    session->reset();
    const double raw_rate = raw.seconds > 0 ? raw.bytes / raw.seconds : 0.0;
    const double load_rate = ls.seconds > 0 ? ls.file_bytes / ls.seconds : 0.0;
    raw_rates.push_back(raw_rate / 1e9);
    load_rates.push_back(load_rate / 1e9);
    ratios.push_back(raw_rate > 0 ? load_rate / raw_rate : 0.0);
    worst_resident = std::max({worst_resident, resident_raw, resident_load});
    runs.push_back({{"backend", backend},
                    {"raw_bytes", raw.bytes},
                    {"raw_files", raw.files},
                    {"raw_seconds", raw.seconds},
                    {"raw_gb_per_second", raw_rate / 1e9},
                    {"page_cache_before_raw", resident_raw},
                    {"load_file_bytes", ls.file_bytes},
                    {"load_weight_bytes", ls.weight_bytes},
                    {"load_seconds", ls.seconds},
                    {"load_gb_per_second", load_rate / 1e9},
                    {"page_cache_before_load", resident_load},
                    {"load_over_raw", ratios.back()},
                    {"reader_threads", ls.reader_threads},
                    {"files", ls.files},
                    {"direct_files", ls.direct_files},
                    {"staging_bytes", ls.staging_bytes},
                    {"peak_rss_kib", ls.peak_rss_kib}});
  }
  // Pages another process maps, or dirty ones, stay cached: then the rates include cached reads.
  cold = worst_resident < 0.01;
  const Stat raw = stat_of(raw_rates), ld = stat_of(load_rates), ratio = stat_of(ratios);
  const std::string cache = cold ? "page cache dropped before each read (at most " + fmt("%.1f", 100 * worst_resident) +
                                       " % of the shard bytes resident)"
                                 : "WARNING: " + fmt("%.1f", 100 * worst_resident) +
                                       " % of the shard bytes stayed in the page cache (mapped by another process "
                                       "or dirty): the rates include cached reads";
  if (o_.json) {
    json j{{"plan", o_.plan},
           {"date", utc_now()},
           {"weights", dir},
           {"cold_cache", cold},
           {"page_cache_resident_max", worst_resident},
           {"raw_gb_per_second", stat_json(raw)},
           {"load_gb_per_second", stat_json(ld)},
           {"load_over_raw", stat_json(ratio)},
           {"runs", runs}};
    out_ << j.dump(2) << "\n";
    return 0;
  }
  out_ << "mmrun bench --load " << o_.plan << ": weights " << dir << ", " << utc_now() << "\n";
  out_ << "backend: " << runs[0]["backend"].get<std::string>() << "; " << cache << "\n\n";
  out_ << "| run | raw read GB/s | load GB/s | load / raw | load s | shards read | readers | O_DIRECT shards | "
          "staging MiB | peak RSS MiB |\n";
  out_ << "|----:|--------------:|----------:|-----------:|-------:|------------:|--------:|----------------:|"
          "------------:|-------------:|\n";
  for (size_t r = 0; r < runs.size(); ++r) {
    const json& x = runs[r];
    out_ << "| " << r + 1 << " | " << fmt("%.2f", x["raw_gb_per_second"].get<double>()) << " | "
         << fmt("%.2f", x["load_gb_per_second"].get<double>()) << " | "
         << fmt("%.1f %%", 100 * x["load_over_raw"].get<double>()) << " | "
         << fmt("%.1f", x["load_seconds"].get<double>()) << " | "
         << si(static_cast<double>(x["load_file_bytes"].get<uint64_t>()), "B") << " | "
         << x["reader_threads"].get<int>() << " | " << x["direct_files"].get<int>() << " of " << x["files"].get<int>()
         << " | " << (x["staging_bytes"].get<uint64_t>() >> 20) << " | " << (x["peak_rss_kib"].get<int64_t>() >> 10)
         << " |\n";
  }
  out_ << "\nload " << pm(ld, "%.2f") << " GB/s = " << pm(Stat{100 * ratio.mean, 100 * ratio.sd, {}}, "%.1f")
       << " % of the raw sequential read " << pm(raw, "%.2f")
       << " GB/s (the same shards read whole by one thread with 8 MiB read(2) calls, as cat does, in this process)\n";
  return 0;
}

int Bench::run() {
  auto plan = ApiPlan::load(o_.plan);
  if (!plan) return report(plan.error(), err_);
  plan_ = std::make_unique<ApiPlan>(std::move(*plan));
  const mm_plan_info& info = plan_->info();
  if (o_.load) return load();
  for (int64_t B : o_.batches)
    if (B > info.max_batch)
      return report(Error::bad_input("--batch " + std::to_string(B) + " exceeds the plan's max_batch " +
                                     std::to_string(info.max_batch) + " (" + o_.plan +
                                     "; compile with mmc compile --max-batch N)"),
                    err_);
  for (int64_t d : o_.depths)
    if (d + o_.pp + o_.tg > info.max_seq_len)
      return report(Error::bad_input("depth " + std::to_string(d) + " + pp " + std::to_string(o_.pp) + " + tg " +
                                     std::to_string(o_.tg) + " = " + std::to_string(d + o_.pp + o_.tg) +
                                     " tokens exceeds the plan's max_seq_len " + std::to_string(info.max_seq_len) +
                                     " (" + o_.plan + "; compile with mmc compile --max-seq-len N)"),
                    err_);
  if (mm_status st = mm_plan_get_costs(plan_->get(), &costs_)) return report(error_of(st), err_);
  // Before any session: the measurement has the device to itself.
  if (mm_status st = mm_measure_device(o_.device.empty() ? nullptr : o_.device.c_str(), o_.threads, &dev_))
    return report(error_of(st), err_);
  return generation();
}

}  // namespace

bool parse_size_list(const std::string& text, std::vector<int64_t>* values, std::string* error) {
  return parse_int_list(text, 0, INT64_MAX, "a non-negative integer", values, error);
}

int bench_command(const BenchOptions& o, std::ostream& out, std::ostream& err) {
  auto usage = [&](const std::string& m) { return report(Error::usage(m), err); };
  if (o.weights.empty()) return usage("--weights DIR|random is required");
  if (!o.device.empty() && o.device != "cuda" && o.device != "host")
    return usage("--device must be cuda or host, got '" + o.device + "'");
  if (o.runs < 1) return usage("--runs must be at least 1");
  if (!(o.temperature >= 0.0f && o.temperature <= kMaxTemperature))
    return usage("--temperature must be in [0, " + fmt("%g", kMaxTemperature) + "], got " + fmt("%g", o.temperature));
  if (!(o.top_p >= 0.0f && o.top_p <= 1.0f)) return usage("--top-p must be in [0, 1], got " + fmt("%g", o.top_p));
  if (o.top_k < 0) return usage("--top-k must be at least 0, got " + std::to_string(o.top_k));
  if (o.load) {
    if (o.weights == "random") return usage("--load measures reading a checkpoint: give --weights DIR");
  } else {
    if (o.pp < 1 || o.tg < 1) return usage("--pp and --tg must be at least 1");
    if (o.batches.empty() || o.depths.empty()) return usage("--batch and --depth need at least one value");
    for (int64_t b : o.batches)
      if (b < 1) return usage("--batch values must be at least 1");
  }
  Bench bench(o, out, err);
  return bench.run();
}

}  // namespace mm::rt
