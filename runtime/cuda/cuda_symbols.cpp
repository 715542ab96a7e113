#include "runtime/cuda/cuda_symbols.h"

#include <dlfcn.h>

#include <mutex>

namespace mm::rt::cu {

namespace {
struct Loaded {
  Symbols sym;
  std::string error;  // empty on success
};

Loaded load() {
  Loaded l;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    l.error = std::string("no CUDA driver: cannot load libcuda.so.1 (") + (why ? why : "unknown reason") + ")";
    return l;
  }
#define MM_CUDA_RESOLVE(name, params)                                                   \
  l.sym.name = reinterpret_cast<decltype(l.sym.name)>(dlsym(lib, #name));               \
  if (!l.sym.name) {                                                                    \
    l.error = "CUDA driver libcuda.so.1 lacks symbol " #name " (driver too old?)";      \
    return l;                                                                           \
  }
  MM_CUDA_SYMBOLS(MM_CUDA_RESOLVE)
#undef MM_CUDA_RESOLVE
  const CUresult rc = l.sym.cuInit(0);
  if (rc != CUDA_SUCCESS) {
    const char* name = nullptr;
    l.sym.cuGetErrorName(rc, &name);
    l.error = std::string("no CUDA device: cuInit failed with ") + (name ? name : std::to_string(rc));
  }
  return l;  // the library stays loaded for the life of the process
}
}  // namespace

Expected<const Symbols*> symbols() {
  static const Loaded loaded = load();
  if (!loaded.error.empty()) return Error::internal(loaded.error);
  return &loaded.sym;
}

Error call_error(const char* call, CUresult rc, const char* file, int line) {
  const char* name = nullptr;
  const char* desc = nullptr;
  if (auto s = symbols(); s.ok()) {
    (*s)->cuGetErrorName(rc, &name);
    (*s)->cuGetErrorString(rc, &desc);
  }
  std::string msg = std::string(call) + " failed: " + (name ? name : "CUresult " + std::to_string(rc));
  if (desc) msg += std::string(" (") + desc + ")";
  std::string f(file);
  if (auto p = f.find("runtime/cuda/"); p != std::string::npos) f = f.substr(p);
  msg += " at " + f + ":" + std::to_string(line);
  return Error::internal(msg);
}

}  // namespace mm::rt::cu
