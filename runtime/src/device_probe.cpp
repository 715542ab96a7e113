// Probes for a CUDA device through dlopen'ed libcuda, so mmrun starts on machines without a GPU
// or driver (design.md section 3).
#include <dlfcn.h>

#include "runtime/src/open_session.h"

namespace mm::rt {

bool cuda_device_present() {
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return false;
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(::dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(::dlsym(lib, "cuDeviceGetCount"));
  int n = 0;
  const bool ok = init && count && init(0) == 0 && count(&n) == 0 && n > 0;
  // libcuda stays loaded: unloading a driver library after cuInit is not supported.
  return ok;
}

}  // namespace mm::rt
