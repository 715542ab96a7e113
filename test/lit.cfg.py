# lit configuration shared by every lit folder (dialects, models, compiler, codegen, tools).
# Each area is run by its own CTest entry: `lit -sv test/<area> --param mm_site_config=...`.
import os
import shutil
import subprocess

import lit.formats
import lit.util

config.name = "mmc"
config.test_format = lit.formats.ShTest(True)
config.suffixes = [".mlir", ".test"]
config.excludes = ["inputs", "Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)

site = lit_config.params.get("mm_site_config")
if site is None:
    lit_config.fatal("run lit through ctest, or pass --param mm_site_config=BUILD/test/lit.site.cfg.py")
exec(open(site).read(), {"config": config})
config.test_exec_root = os.path.join(config.mm_obj_root, "test")

# This build's tools first; mmc and mm-opt of another build after them when this one has none.
dirs = [config.mm_tools_dir]
if getattr(config, "mm_compiler_tools_dir", ""):
    dirs.append(config.mm_compiler_tools_dir)
path = os.pathsep.join(dirs + [config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])])
config.environment["PATH"] = path
for var in ("HOME", "TMPDIR", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH",
            "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]

# mmc's kernel cache (codegen/nvrtc/kernel_cache.h) in the build tree of the mmc the tests run,
# not in $HOME: the suite compiles the same tiny and mid models dozens of times, and the
# sanitizer build's suite (scripts/sanitize.sh, mmc borrowed from the main build) finds every
# kernel there. A test of the cache itself passes its own --kernel-cache.
compiler_bin = getattr(config, "mm_compiler_tools_dir", "") or config.mm_tools_dir
config.environment["MMC_KERNEL_CACHE"] = os.path.join(os.path.dirname(compiler_bin), "test", "kernel-cache")

config.substitutions.append(("%inputs", os.path.join(config.mm_src_root, "test", "inputs")))
config.substitutions.append(("%src", config.mm_src_root))
config.substitutions.append(("%python", "python3"))

if config.mm_has_nvrtc:
    config.available_features.add("nvrtc")
if config.mm_has_compiler:
    config.available_features.add("compiler")
# A build with MM_SANITIZE (scripts/sanitize.sh): tests whose only cost is model arithmetic on the
# host backend at the mid shape (minutes under ASan, not more coverage) mark `UNSUPPORTED: sanitized`.
if getattr(config, "mm_sanitized", 0):
    config.available_features.add("sanitized")

# A CUDA device is present when nvidia-smi lists one (never on CI).
smi = shutil.which("nvidia-smi")
if smi:
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
        if "GPU" in out:
            config.available_features.add("cuda-device")
    except Exception:
        pass
