// read_regular_file / RegularFile (support/file_util.h): only regular files are read, never past a
// limit, and every refusal names the file and what it is. A FIFO must be refused at once: opening
// one for reading the ordinary way blocks until a writer comes, which is how `mm-inspect FIFO`
// used to hang.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "support/file_util.h"
#include "test/unit/temp_path.h"

namespace mm {
namespace {

std::string temp_path(const std::string& name) {
  const std::string p = mm::test::temp_path("file_util_test_") + name;
  std::filesystem::remove_all(p);
  return p;
}

void write(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

TEST(ReadRegularFile, ReadsAWholeFile) {
  const std::string p = temp_path("ok");
  write(p, "hello");
  auto r = read_regular_file(p, "test", 5);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "hello");
  write(p, "");
  r = read_regular_file(p, "test", 0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "");
}

TEST(ReadRegularFile, RefusesAFileOverTheLimitWithBothNumbers) {
  const std::string p = temp_path("big");
  write(p, "123456");
  auto r = read_regular_file(p, "--tools", 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code(), 1);
  EXPECT_NE(r.error().message.find("--tools: " + p + " is 6 bytes, more than the 5-byte limit"), std::string::npos)
      << r.error().message;
}

TEST(ReadRegularFile, RefusesASparseFileWithoutReadingIt) {
  // 64 GiB of holes: refused from its size alone, in no time.
  const std::string p = temp_path("sparse");
  write(p, "");
  ASSERT_EQ(::truncate(p.c_str(), off_t{64} << 30), 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = read_regular_file(p, "tokenizer", 1 << 20);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("68719476736 bytes"), std::string::npos) << r.error().message;
  std::filesystem::remove(p);
}

TEST(ReadRegularFile, RefusesAFifoWithoutBlocking) {
  const std::string p = temp_path("fifo");
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  auto r = read_regular_file(p, "plan", 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("plan: " + p + " is a FIFO (named pipe), expected a regular file"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(describe_file_kind(p), "a FIFO (named pipe)");
}

TEST(ReadRegularFile, RefusesDevicesAndDirectoriesByName) {
  auto r = read_regular_file("/dev/zero", "--tools", 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/dev/zero is a character device"), std::string::npos) << r.error().message;
  const std::string d = temp_path("dir");
  std::filesystem::create_directory(d);
  r = read_regular_file(d, "--tools", 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(d + " is a directory"), std::string::npos) << r.error().message;
}

TEST(ReadRegularFile, NamesAMissingFile) {
  auto r = read_regular_file(temp_path("missing"), "chat template", 10);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("chat template: file not found"), std::string::npos) << r.error().message;
  EXPECT_EQ(describe_file_kind(temp_path("missing")), "missing");
}

TEST(ReadRegularFile, ReadsAFileWhoseSizeIsUnknownUpToTheLimit) {
  // /proc files are regular but report size 0: the read goes on to the end, bounded by the limit.
  auto r = read_regular_file("/proc/self/status", "status", 1 << 20);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("Name:"), std::string::npos);
  r = read_regular_file("/proc/self/status", "status", 16);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("more than the 16-byte limit"), std::string::npos) << r.error().message;
}

TEST(RegularFile, ReadAtNamesAShortFile) {
  const std::string p = temp_path("short");
  write(p, "abcdef");
  auto f = RegularFile::open(p, "shard");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->size(), 6u);
  char buf[8];
  ASSERT_TRUE(f->read_at(2, buf, 4, "shard").ok());
  EXPECT_EQ(std::string(buf, 4), "cdef");
  Status st = f->read_at(4, buf, 8, "shard");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("ends at byte 6, 6 bytes short"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace mm
