// The kernel cache directory (codegen/nvrtc/kernel_cache.h): entries round-trip, every damaged or
// foreign entry is a miss, a directory that cannot be written is an error naming it, and an
// NvrtcCompiler with a cache gives back what NVRTC gave, compiling only what it has not seen.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "codegen/nvrtc/kernel_cache.h"
#include "codegen/nvrtc/nvrtc_compiler.h"

namespace fs = std::filesystem;
using mm::codegen::CachedKernel;
using mm::codegen::KernelCache;

namespace {

class KernelCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mm_kernel_cache_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static CachedKernel sample() {
    CachedKernel k;
    k.binary.cubin = {0x7f, 'E', 'L', 'F', 1, 2, 3, 4, 5};
    k.ptx = ".version 8.0\n.target sm_90\n";
    k.binary.registers = 40;
    k.binary.shared_bytes = 1024;
    k.binary.local_bytes = 0;
    k.binary.spill_bytes = 0;
    return k;
  }
  static std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void spit(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  fs::path dir_;
};

TEST_F(KernelCacheTest, EntriesRoundTrip) {
  KernelCache cache(dir_.string());
  EXPECT_FALSE(cache.load("key a").has_value());
  ASSERT_TRUE(cache.store("key a", sample()).ok());
  auto k = cache.load("key a");
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->binary.cubin, sample().binary.cubin);
  EXPECT_EQ(k->ptx, sample().ptx);
  EXPECT_EQ(k->binary.registers, 40);
  EXPECT_EQ(k->binary.shared_bytes, 1024);
  EXPECT_EQ(k->binary.spill_bytes, 0);
  EXPECT_FALSE(cache.load("key b").has_value());
  // Storing again replaces the entry; no temporary file is left behind.
  CachedKernel other = sample();
  other.binary.registers = 64;
  ASSERT_TRUE(cache.store("key a", other).ok());
  EXPECT_EQ(cache.load("key a")->binary.registers, 64);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(KernelCacheTest, EveryDamagedEntryIsAMiss) {
  KernelCache cache(dir_.string());
  ASSERT_TRUE(cache.store("key", sample()).ok());
  const std::string path = cache.path_of("key");
  const std::string good = slurp(path);
  // Every single flipped byte and every truncation.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    spit(path, bad);
    EXPECT_FALSE(cache.load("key").has_value()) << "byte " << i << " flipped";
  }
  for (size_t n = 0; n < good.size(); n += 7) {
    spit(path, good.substr(0, n));
    EXPECT_FALSE(cache.load("key").has_value()) << "truncated to " << n << " bytes";
  }
  // Another key's entry under this key's name (a hash collision, or a renamed file).
  ASSERT_TRUE(cache.store("other key", sample()).ok());
  fs::copy_file(cache.path_of("other key"), path, fs::copy_options::overwrite_existing);
  EXPECT_FALSE(cache.load("key").has_value());
  // Not a regular file.
  fs::remove(path);
  fs::create_directory(path);
  EXPECT_FALSE(cache.load("key").has_value());
  fs::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  EXPECT_FALSE(cache.load("key").has_value());  // and does not block
  fs::remove(path);
  // The next store repairs it.
  ASSERT_TRUE(cache.store("key", sample()).ok());
  EXPECT_TRUE(cache.load("key").has_value());
}

TEST_F(KernelCacheTest, AnUnwritableDirectoryIsAnErrorNamingIt) {
  spit(dir_.string(), "a file where the cache directory should be");
  KernelCache cache((dir_ / "kernels").string());
  auto st = cache.store("key", sample());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find((dir_ / "kernels").string()), std::string::npos) << st.error().message;
  EXPECT_FALSE(cache.load("key").has_value());
  fs::remove(dir_);
}

TEST_F(KernelCacheTest, DefaultDirectoryFollowsTheEnvironment) {
  const char* saved[3] = {std::getenv("MMC_KERNEL_CACHE"), std::getenv("XDG_CACHE_HOME"), std::getenv("HOME")};
  const std::string keep[3] = {saved[0] ? saved[0] : "", saved[1] ? saved[1] : "", saved[2] ? saved[2] : ""};
  ::setenv("MMC_KERNEL_CACHE", "/tmp/explicit", 1);
  EXPECT_EQ(mm::codegen::default_kernel_cache_dir(), "/tmp/explicit");
  for (const char* off : {"off", "0", ""}) {
    ::setenv("MMC_KERNEL_CACHE", off, 1);
    EXPECT_EQ(mm::codegen::default_kernel_cache_dir(), "") << off;
  }
  ::unsetenv("MMC_KERNEL_CACHE");
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(mm::codegen::default_kernel_cache_dir(), "/xdg/mmc/kernels");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(mm::codegen::default_kernel_cache_dir(), "/home/u/.cache/mmc/kernels");
  ::setenv("HOME", "relative", 1);  // not an absolute path: no cache rather than one in the cwd
  EXPECT_EQ(mm::codegen::default_kernel_cache_dir(), "");
  const char* names[3] = {"MMC_KERNEL_CACHE", "XDG_CACHE_HOME", "HOME"};
  for (int i = 0; i < 3; ++i) {
    if (saved[i])
      ::setenv(names[i], keep[i].c_str(), 1);
    else
      ::unsetenv(names[i]);
  }
}

TEST_F(KernelCacheTest, CompilerReadsBackWhatNvrtcProduced) {
  const std::string src = "extern \"C\" __global__ void k(float* p) { p[threadIdx.x] *= 2.0f; }\n";
  mm::codegen::NvrtcOptions opts{{"sm_121", "sm_90"}, "", false, true, dir_.string()};
  mm::codegen::NvrtcCompiler first(opts);
  auto a = first.compile("k", src);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(first.nvrtc_runs(), 2u);
  EXPECT_EQ(first.disk_hits(), 0u);
  EXPECT_EQ(first.cache_warning(), "");

  mm::codegen::NvrtcCompiler second(opts);  // another process, as far as the cache can tell
  auto b = second.compile("k", src);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(second.nvrtc_runs(), 0u);
  EXPECT_EQ(second.disk_hits(), 2u);
  ASSERT_EQ((*b)->binaries.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*b)->binaries[i].arch, (*a)->binaries[i].arch);
    EXPECT_EQ((*b)->binaries[i].cubin, (*a)->binaries[i].cubin);
    EXPECT_EQ((*b)->binaries[i].registers, (*a)->binaries[i].registers);
    EXPECT_EQ((*b)->binaries[i].shared_bytes, (*a)->binaries[i].shared_bytes);
  }
  EXPECT_EQ((*b)->ptx, (*a)->ptx);
  EXPECT_EQ((*b)->ptx_arch, "compute_90");

  // Another source, another arch list or other options are other entries.
  mm::codegen::NvrtcOptions lineinfo = opts;
  lineinfo.line_info = true;
  mm::codegen::NvrtcCompiler third(lineinfo);
  ASSERT_TRUE(third.compile("k", src).ok());
  EXPECT_EQ(third.nvrtc_runs(), 2u);
  ASSERT_TRUE(third.compile("k", src + "\n").ok());
  EXPECT_EQ(third.nvrtc_runs(), 4u);

  // Damaged entries are compiled again and repaired.
  for (const auto& e : fs::directory_iterator(dir_)) spit(e.path().string(), "garbage");
  mm::codegen::NvrtcCompiler fourth(opts);
  ASSERT_TRUE(fourth.compile("k", src).ok());
  EXPECT_EQ(fourth.nvrtc_runs(), 2u);
  mm::codegen::NvrtcCompiler fifth(opts);
  ASSERT_TRUE(fifth.compile("k", src).ok());
  EXPECT_EQ(fifth.disk_hits(), 2u);
}

TEST_F(KernelCacheTest, CompilerWithAnUnwritableCacheStillCompiles) {
  spit(dir_.string(), "not a directory");
  mm::codegen::NvrtcOptions opts{{"sm_90"}, "", false, true, (dir_ / "kernels").string()};
  mm::codegen::NvrtcCompiler nvrtc(opts);
  auto r = nvrtc.compile("k", "extern \"C\" __global__ void k(int* p) { p[0] = 1; }\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(nvrtc.cache_warning().find((dir_ / "kernels").string()), std::string::npos) << nvrtc.cache_warning();
  fs::remove(dir_);
}

}  // namespace
