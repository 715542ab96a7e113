#include "runtime/cuda/cublas_symbols.h"

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

namespace mm::rt::cublas {

namespace {

struct Loaded {
  Symbols sym;
  std::string error;  // empty on success
};

Loaded load() {
  Loaded l;
  std::vector<std::string> names = {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13",
                                    "/usr/local/cuda/targets/x86_64-linux/lib/libcublas.so.13"};
  if (const char* home = std::getenv("CUDA_HOME")) names.push_back(std::string(home) + "/lib64/libcublas.so.13");
  void* lib = nullptr;
  std::string tried;
  for (const std::string& n : names) {
    lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      l.sym.library = n;
      break;
    }
    const char* why = dlerror();
    tried += (tried.empty() ? "" : "; ") + n + (why ? std::string(": ") + why : "");
  }
  if (!lib) {
    l.error = "cuBLAS not found (" + tried + ")";
    return l;
  }
#define MM_CUBLAS_RESOLVE(name)                                                          \
  l.sym.name = reinterpret_cast<decltype(l.sym.name)>(dlsym(lib, #name));               \
  if (!l.sym.name) {                                                                    \
    l.error = l.sym.library + " lacks symbol " #name;                                   \
    return l;                                                                           \
  }
  MM_CUBLAS_RESOLVE(cublasCreate_v2)
  MM_CUBLAS_RESOLVE(cublasDestroy_v2)
  MM_CUBLAS_RESOLVE(cublasSetStream_v2)
  MM_CUBLAS_RESOLVE(cublasGemmEx)
#undef MM_CUBLAS_RESOLVE
  l.sym.cublasGetStatusString = reinterpret_cast<decltype(l.sym.cublasGetStatusString)>(dlsym(lib, "cublasGetStatusString"));
  return l;  // the library stays loaded for the life of the process
}

}  // namespace

Expected<const Symbols*> symbols() {
  static const Loaded loaded = load();
  if (!loaded.error.empty()) return Error::internal(loaded.error);
  return &loaded.sym;
}

}  // namespace mm::rt::cublas
