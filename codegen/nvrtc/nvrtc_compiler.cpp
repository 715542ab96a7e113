#include "codegen/nvrtc/nvrtc_compiler.h"

#include <nvrtc.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "support/hash.h"

namespace mm::codegen {
namespace {

// "name(123): error: ..." -> the generated source lines the log points at, numbered.
std::string offending_lines(const std::string& name, const std::string& log, const std::string& source) {
  std::vector<std::string> lines;
  std::istringstream in(source);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::set<int> hit;
  const std::string pat = name + "(";
  for (size_t p = log.find(pat); p != std::string::npos; p = log.find(pat, p + 1)) {
    const size_t q = p + pat.size();
    size_t e = q;
    while (e < log.size() && std::isdigit(static_cast<unsigned char>(log[e]))) ++e;
    if (e > q && e < log.size() && log[e] == ')') hit.insert(std::stoi(log.substr(q, e - q)));
  }
  std::string out;
  int shown = 0;
  for (int n : hit) {
    if (n < 1 || n > static_cast<int>(lines.size())) continue;
    if (++shown > 10) {
      out += "  ...\n";
      break;
    }
    out += "  " + std::to_string(n) + " | " + lines[n - 1] + "\n";
  }
  return out;
}

int grab(const std::string& log, const std::regex& re) {
  std::smatch m;
  if (std::regex_search(log, m, re)) return std::stoi(m[1].str());
  return -1;
}

}  // namespace

const char* default_cuda_include_dir() {
#ifdef MM_CUDA_INCLUDE_DIR_FIRST
  return MM_CUDA_INCLUDE_DIR_FIRST;
#else
  return "/usr/local/cuda/include";
#endif
}

int parse_sm(const std::string& arch) {
  if (arch.rfind("sm_", 0) != 0 || arch.size() < 5) return -1;
  size_t i = 3;
  int v = 0;
  for (; i < arch.size() && std::isdigit(static_cast<unsigned char>(arch[i])); ++i) v = v * 10 + (arch[i] - '0');
  if (i == 3 || v < 10) return -1;
  // "sm_90a"/"sm_121f" style suffixes are accepted by NVRTC; keep the number.
  if (i + 1 < arch.size() || (i < arch.size() && arch[i] != 'a' && arch[i] != 'f')) return -1;
  return v;
}

NvrtcCompiler::NvrtcCompiler(NvrtcOptions options) : options_(std::move(options)) {
  if (options_.include_dir.empty()) options_.include_dir = default_cuda_include_dir();
  if (!options_.cache_dir.empty()) disk_ = std::make_unique<KernelCache>(options_.cache_dir);
}

size_t NvrtcCompiler::cached() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [h, v] : cache_) n += v.size();
  return n;
}

std::string NvrtcCompiler::cache_key(const std::string& name, const std::string& source,
                                     const std::string& arch) const {
  int major = 0, minor = 0;
  nvrtcVersion(&major, &minor);
  std::string key = "mmc kernel cache 1\nnvrtc " + std::to_string(major) + "." + std::to_string(minor) +
                    "\ninclude " + options_.include_dir + "\narch " + arch + "\noptions";
  for (const std::string& o : arch_options(arch)) key += " " + o;
  return key + "\nname " + name + "\n\n" + source;
}

std::vector<std::string> NvrtcCompiler::arch_options(const std::string& arch) const {
  std::vector<std::string> opts = {"--gpu-architecture=" + arch, "-std=c++17",
                                   "--include-path=" + options_.include_dir, "--ptxas-options=-v"};
  if (options_.line_info) opts.push_back("-lineinfo");
  return opts;
}

Expected<CachedKernel> NvrtcCompiler::run_nvrtc(const std::string& name, const std::string& source,
                                                const std::string& arch) const {
  static const std::regex re_regs(R"(Used (\d+) registers)");
  static const std::regex re_smem(R"((\d+) bytes smem)");
  static const std::regex re_stack(R"((\d+) bytes stack frame)");
  static const std::regex re_spill(R"((\d+) bytes spill stores)");
  nvrtcProgram prog;
  nvrtcResult rc = nvrtcCreateProgram(&prog, source.c_str(), name.c_str(), 0, nullptr, nullptr);
  if (rc != NVRTC_SUCCESS) return Error::internal("nvrtcCreateProgram(" + name + "): " + nvrtcGetErrorString(rc));
  const std::vector<std::string> opts = arch_options(arch);
  std::vector<const char*> copts;
  for (const auto& o : opts) copts.push_back(o.c_str());
  rc = nvrtcCompileProgram(prog, static_cast<int>(copts.size()), copts.data());
  size_t log_size = 0;
  nvrtcGetProgramLogSize(prog, &log_size);
  std::string log(log_size, '\0');
  if (log_size) nvrtcGetProgramLog(prog, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  if (rc != NVRTC_SUCCESS) {
    nvrtcDestroyProgram(&prog);
    std::string msg = "nvrtc: compiling kernel '" + name + "' for " + arch + " failed (" +
                      nvrtcGetErrorString(rc) + ")\n" + log + "\n";
    const std::string lines = offending_lines(name, log, source);
    if (!lines.empty()) msg += "generated source:\n" + lines;
    return Error::internal(msg);
  }
  CachedKernel k;
  NvrtcBinary& b = k.binary;
  b.arch = arch;
  size_t n = 0;
  nvrtcGetCUBINSize(prog, &n);
  b.cubin.resize(n);
  if (n) nvrtcGetCUBIN(prog, reinterpret_cast<char*>(b.cubin.data()));
  b.registers = grab(log, re_regs);
  b.shared_bytes = grab(log, re_smem);
  if (b.shared_bytes < 0 && b.registers >= 0) b.shared_bytes = 0;   // ptxas omits "0 bytes smem"
  b.local_bytes = grab(log, re_stack);
  b.spill_bytes = grab(log, re_spill);
  size_t pn = 0;
  nvrtcGetPTXSize(prog, &pn);
  k.ptx.assign(pn, '\0');
  if (pn) nvrtcGetPTX(prog, k.ptx.data());
  while (!k.ptx.empty() && k.ptx.back() == '\0') k.ptx.pop_back();
  nvrtcDestroyProgram(&prog);
  if (b.cubin.empty()) return Error::internal("nvrtc: no cubin for kernel '" + name + "' on " + arch);
  return k;
}

Expected<CachedKernel> NvrtcCompiler::compile_arch(const std::string& name, const std::string& source,
                                                   const std::string& arch) {
  if (!disk_) {
    ++nvrtc_runs_;
    return run_nvrtc(name, source, arch);
  }
  const std::string key = cache_key(name, source, arch);
  if (auto hit = disk_->load(key)) {
    ++disk_hits_;
    hit->binary.arch = arch;
    return std::move(*hit);
  }
  ++nvrtc_runs_;
  auto k = run_nvrtc(name, source, arch);
  if (k.ok())
    if (Status st = disk_->store(key, *k); !st) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cache_warning_.empty()) cache_warning_ = st.error().message;
    }
  return k;
}

Expected<std::shared_ptr<const NvrtcResult>> NvrtcCompiler::compile(const std::string& name,
                                                                    const std::string& source) {
  if (options_.archs.empty()) return Error::usage("nvrtc: no target architecture given");
  for (const auto& a : options_.archs)
    if (parse_sm(a) < 0) return Error::usage("nvrtc: bad target architecture '" + a + "' (expected sm_XX, e.g. sm_90)");
  std::string key_opts;
  for (const auto& a : options_.archs) key_opts += a + ",";
  key_opts += options_.line_info ? "L" : "-";
  const uint64_t h = fnv1a64(source);
  const uint64_t key = fnv1a64(key_opts, h);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end())
      for (const auto& [src, res] : it->second)
        if (src == source) return res;
  }
  auto result = std::make_shared<NvrtcResult>();
  result->source_hash = h;
  int lowest = 1 << 30;
  for (const auto& arch : options_.archs) {
    auto k = compile_arch(name, source, arch);
    if (!k.ok()) return k.error();
    const int sm = parse_sm(arch);
    if (options_.ptx && sm < lowest) {
      lowest = sm;
      result->ptx = std::move(k->ptx);
      result->ptx_arch = "compute_" + std::to_string(sm);
    }
    result->binaries.push_back(std::move(k->binary));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto& bucket = cache_[key];
  for (const auto& [src, res] : bucket)
    if (src == source) return res;   // another thread finished the same source first
  bucket.emplace_back(source, result);
  return std::shared_ptr<const NvrtcResult>(result);
}

std::string NvrtcCompiler::cache_warning() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_warning_;
}

}  // namespace mm::codegen
