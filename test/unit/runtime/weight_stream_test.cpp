// The weight-reading pipeline (runtime/src/weight_stream.h) through the host sink, so it runs
// without a GPU: every transform of plan.fbs, with chunks far smaller than the tensors (rows and
// elements split by chunk boundaries, several reads in flight, two shards), gives the bytes of a
// plain reference written here; reads go shard by shard in file order; O_DIRECT falls back to the
// page cache where the filesystem refuses it; a short read and an I/O error (injected through
// ShardFs) are reported naming the shard and the offset.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>

#include "codegen/reference/reference.h"
#include "runtime/src/weight_stream.h"
#include "support/safetensors_writer.h"
#include "test/unit/runtime/test_plan.h"
#include "test/unit/temp_path.h"

namespace mm::rt {
namespace {

using plan::DType;
using plan::WeightTransform;

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

// ---- Faults injected under the loader -------------------------------------------------------

enum class Fault { NONE, EIO_AT, EOF_AT, TRICKLE, NO_DIRECT_OPEN, NO_DIRECT_READ, DIRECT_EFAULT };

class FaultFs final : public ShardFs {
 public:
  Fault fault = Fault::NONE;
  std::string file;        // the shard (file name) the fault hits
  uint64_t at = 0;         // EIO_AT: the bad byte; EOF_AT: where the file seems to end
  std::mutex mu;
  std::vector<std::pair<std::string, uint64_t>> reads;  // (file, offset) of every request, in call order

  Expected<std::unique_ptr<ShardFile>> open(const std::string& path, bool direct) override {
    const std::string name = path.substr(path.rfind('/') + 1);
    if (direct && fault == Fault::NO_DIRECT_OPEN) return Error::usage(path + ": cannot open shard with O_DIRECT: Invalid argument");
    auto f = posix_shard_fs().open(path, direct);
    if (!f) return f.error();
    return std::unique_ptr<ShardFile>(new File(*this, name, direct, std::move(*f)));
  }

 private:
  class File final : public ShardFile {
   public:
    File(FaultFs& fs, std::string name, bool direct, std::unique_ptr<ShardFile> inner)
        : fs_(fs), name_(std::move(name)), direct_(direct), inner_(std::move(inner)) {}
    int64_t read_at(void* dst, uint64_t n, uint64_t off) override {
      {
        std::lock_guard<std::mutex> lk(fs_.mu);
        fs_.reads.emplace_back(name_, off);
      }
      const bool hit = fs_.file.empty() || fs_.file == name_;
      switch (hit ? fs_.fault : Fault::NONE) {
        case Fault::EIO_AT:  // one bad sector at `at`: a request reaching it stops short, one starting there fails
          if (off == fs_.at) return -EIO;
          if (off < fs_.at && off + n > fs_.at) n = fs_.at - off;
          break;
        case Fault::EOF_AT:  // the file seems to end at `at`
          if (off >= fs_.at) return 0;
          n = std::min(n, fs_.at - off);
          break;
        case Fault::TRICKLE:
          n = std::min<uint64_t>(n, 1000);  // a slow network filesystem: short reads everywhere
          break;
        case Fault::NO_DIRECT_READ:  // a filesystem that opens with O_DIRECT but refuses the requests
          if (direct_) return -EINVAL;
          break;
        case Fault::DIRECT_EFAULT:  // memory direct I/O cannot pin
          if (direct_) return -EFAULT;
          break;
        default:
          break;
      }
      return inner_->read_at(dst, n, off);
    }
    void drop_cache(uint64_t off, uint64_t n) override { inner_->drop_cache(off, n); }

   private:
    FaultFs& fs_;
    std::string name_;
    bool direct_;
    std::unique_ptr<ShardFile> inner_;
  };
};

// ---- A two-shard checkpoint and the reference bytes of each transform ------------------------

struct Tensor {
  const char* file;
  mm::DType dtype;
  std::vector<int64_t> shape;
};

DType plan_dtype(mm::DType d) {
  return d == mm::DType::I32 ? DType::I32 : d == mm::DType::F16 ? DType::F16 : DType::BF16;
}

class WeightStreamTest : public ::testing::Test {
 public:
  // Writes the shards; zero-point tensors (names starting with 'z') hold 0x77777777 except word 2,
  // which holds zero_word.
  void write(const std::map<std::string, Tensor>& tensors, uint32_t zero_word, const std::string& tag) {
    dir = mm::test::temp_path("weight_stream_") + tag;
    ::mkdir(dir.c_str(), 0755);
    for (const char* file : {kShard1, kShard2}) {
      std::vector<SafetensorsEntry> entries;
      for (auto& [n, t] : tensors)
        if (t.file == file) entries.push_back({n, t.dtype, t.shape});
      auto layout = plan_safetensors(entries, {{"format", "pt"}});
      ASSERT_TRUE(layout.ok());
      auto w = SafetensorsFileWriter::create(dir + "/" + file, *layout);
      ASSERT_TRUE(w.ok()) << w.error().message;
      for (size_t i = 0; i < entries.size(); ++i) {
        const std::string& name = entries[i].name;
        std::vector<uint8_t>& bytes = data[name];
        bytes.resize(layout->nbytes[i]);
        for (size_t b = 0; b + 2 <= bytes.size(); b += 2) {
          uint16_t v = static_cast<uint16_t>(ref::splitmix64(std::hash<std::string>{}(name) + b));
          // 16-bit tensors hold finite numbers (upcast sources must not be NaN patterns).
          if (entries[i].dtype == mm::DType::F16) v = ref::f32_to_f16(0.001f * static_cast<float>(v % 977));
          if (entries[i].dtype == mm::DType::BF16) v = ref::f32_to_bf16(-0.5f + 0.0001f * static_cast<float>(v % 9973));
          std::memcpy(bytes.data() + b, &v, 2);
        }
        if (name[0] == 'z')
          for (size_t b = 0; b + 4 <= bytes.size(); b += 4) {
            const uint32_t v = b == 8 ? zero_word : 0x77777777u;
            std::memcpy(bytes.data() + b, &v, 4);
          }
        ASSERT_TRUE(w->write_data(i, 0, bytes.data(), bytes.size()).ok());
        src[name] = {name, file, layout->offsets[i], layout->nbytes[i], plan_dtype(entries[i].dtype), entries[i].shape};
      }
      ASSERT_TRUE(w->close().ok());
    }
  }

  test::WeightSpec spec(const std::string& name, DType dt, std::vector<int64_t> shape, WeightTransform t,
                        const std::vector<std::string>& sources) {
    test::WeightSpec w{name, dt, shape, t, {}};
    // As the compiler records it: 16-bit [N, K] matrices along the first dim, quantized tensors
    // along the last.
    if (t == WeightTransform::CONCAT_N) w.concat_axis = dt == DType::BF16 ? 0 : static_cast<int>(shape.size()) - 1;
    for (auto& s : sources) w.sources.push_back(src.at(s));
    return w;
  }

  // The bytes a weight must hold, composed here from the tensors' bytes without chunks.
  std::vector<uint8_t> expected(const test::WeightSpec& w) {
    std::vector<uint8_t> out;
    const size_t es = plan_dtype_size(w.dtype);
    const int64_t last = w.shape.back();
    switch (w.transform) {
      case WeightTransform::UPCAST_F32: {
        const auto& in = data.at(w.sources[0].name);
        const size_t n = in.size() / 2;
        out.resize(4 * n);
        for (size_t i = 0; i < n; ++i) {
          uint16_t v;
          std::memcpy(&v, in.data() + 2 * i, 2);
          const float f = w.sources[0].dtype == DType::F16 ? ref::f16_to_f32(v) : ref::bf16_to_f32(v);
          std::memcpy(out.data() + 4 * i, &f, 4);
        }
        return out;
      }
      case WeightTransform::STACK_EXPERTS_W13:
      case WeightTransform::CONCAT_N: {
        const bool first_dim = w.transform == WeightTransform::CONCAT_N && w.sources[0].shape.back() == last;
        if (!first_dim) {
          // Rows of the destination: [src0 row | src1 row | ...] per expert (W13: pairs).
          const size_t group = w.transform == WeightTransform::CONCAT_N ? w.sources.size() : 2;
          for (size_t g = 0; g < w.sources.size(); g += group)
            for (int64_t r = 0; r < w.sources[g].shape[0]; ++r)
              for (size_t j = g; j < g + group; ++j) {
                const auto& in = data.at(w.sources[j].name);
                const size_t rb = static_cast<size_t>(w.sources[j].shape.back()) * es;
                out.insert(out.end(), in.begin() + r * rb, in.begin() + (r + 1) * rb);
              }
          return out;
        }
        [[fallthrough]];
      }
      default:
        for (const auto& s : w.sources) out.insert(out.end(), data.at(s.name).begin(), data.at(s.name).end());
        return out;
    }
  }

  // The same bytes in strips of 32 columns (plan.fbs QuantLayout STRIPS32): per matrix [KR, N],
  // word (r, c) at (c / 32) * KR * 32 + r * 32 + c % 32.
  std::vector<uint8_t> expected_strips(const test::WeightSpec& w) {
    const std::vector<uint8_t> rows = expected(w);
    const size_t n = static_cast<size_t>(w.shape.back()), kr = static_cast<size_t>(w.shape[w.shape.size() - 2]);
    std::vector<uint8_t> out(rows.size());
    for (size_t m = 0; m < rows.size() / (4 * kr * n); ++m)
      for (size_t r = 0; r < kr; ++r)
        for (size_t c = 0; c < n; ++c)
          std::memcpy(out.data() + 4 * (m * kr * n + (c / 32) * kr * 32 + r * 32 + c % 32),
                      rows.data() + 4 * (m * kr * n + r * n + c), 4);
    return out;
  }

  std::shared_ptr<const Plan> make_plan(const std::vector<test::WeightSpec>& specs) {
    auto bytes = test::build_weights_plan(specs);
    test::stamp_model_hash(&bytes, dir);
    auto plan = load_plan_from_memory(bytes.data(), bytes.size(), "stream.mmp");
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    return plan.ok() ? *plan : nullptr;
  }

  // Streams into one host allocation laid out as the device's; returns the status.
  Status stream(const Plan& plan, const LoadOptions& o, WeightLoadStats* stats = nullptr) {
    const WeightLayout layout = weight_layout(plan);
    memory.assign(layout.total_bytes, 0xEE);
    dst.assign(layout.offsets.size(), nullptr);
    for (size_t i = 0; i < dst.size(); ++i)
      if (plan.def().weights()->Get(i)->transform() != WeightTransform::CHECK_ZEROS)
        dst[i] = memory.data() + layout.offsets[i];
    auto sink = make_host_sink();
    return stream_weights(plan, dir, dst, *sink, o, stats);
  }

  std::string dir;
  std::map<std::string, test::WeightSpec::Source> src;
  std::map<std::string, std::vector<uint8_t>> data;
  std::vector<uint8_t> memory;
  std::vector<void*> dst;
};

// Every tensor spans several 4 KiB chunks; rows of 160, 96 and 144 bytes cross chunk boundaries.
const std::map<std::string, Tensor> kTensors = {
    {"a", {kShard1, mm::DType::BF16, {100, 48}}},    // COPY
    {"d1", {kShard2, mm::DType::BF16, {30, 64}}},    // CONCAT_N along the first dim
    {"d2", {kShard2, mm::DType::BF16, {50, 64}}},
    {"q1", {kShard1, mm::DType::I32, {64, 40}}},     // CONCAT_N along the last dim, across shards
    {"q2", {kShard2, mm::DType::I32, {64, 24}}},
    {"w1_0", {kShard1, mm::DType::I32, {32, 36}}}, {"w3_0", {kShard2, mm::DType::I32, {32, 36}}},
    {"w1_1", {kShard1, mm::DType::I32, {32, 36}}}, {"w3_1", {kShard2, mm::DType::I32, {32, 36}}},
    {"w1_2", {kShard1, mm::DType::I32, {32, 36}}}, {"w3_2", {kShard2, mm::DType::I32, {32, 36}}},
    {"w2_0", {kShard2, mm::DType::I32, {36, 32}}}, {"w2_1", {kShard2, mm::DType::I32, {36, 32}}},
    {"w2_2", {kShard2, mm::DType::I32, {36, 32}}},
    {"bb", {kShard1, mm::DType::BF16, {3000}}},      // UPCAST_F32 across chunks
    {"bf", {kShard2, mm::DType::F16, {6}}},
    {"z", {kShard1, mm::DType::I32, {8, 4}}},        // CHECK_ZEROS
};

std::vector<test::WeightSpec> all_transforms(WeightStreamTest& t) {
  return {t.spec("a", DType::BF16, {100, 48}, WeightTransform::COPY, {"a"}),
          t.spec("dense", DType::BF16, {80, 64}, WeightTransform::CONCAT_N, {"d1", "d2"}),
          t.spec("qkv", DType::I32, {64, 64}, WeightTransform::CONCAT_N, {"q1", "q2"}),
          t.spec("w13", DType::I32, {3, 32, 72}, WeightTransform::STACK_EXPERTS_W13,
                 {"w1_0", "w3_0", "w1_1", "w3_1", "w1_2", "w3_2"}),
          t.spec("w2", DType::I32, {3, 36, 32}, WeightTransform::STACK_EXPERTS, {"w2_0", "w2_1", "w2_2"}),
          t.spec("w2r", DType::I32, {2, 36, 32}, WeightTransform::STACK_EXPERTS, {"w2_2", "w2_0"}),
          t.spec("bb", DType::F32, {3000}, WeightTransform::UPCAST_F32, {"bb"}),
          t.spec("bf", DType::F32, {6}, WeightTransform::UPCAST_F32, {"bf"}),
          t.spec("z", DType::I32, {8, 4}, WeightTransform::CHECK_ZEROS, {"z"})};
}

void expect_weights(WeightStreamTest& t, const std::vector<test::WeightSpec>& specs, const std::string& what) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!t.dst[i]) continue;
    const std::vector<uint8_t> want =
        specs[i].qlayout == plan::QuantLayout::STRIPS32 ? t.expected_strips(specs[i]) : t.expected(specs[i]);
    ASSERT_EQ(want.size(), static_cast<size_t>(std::accumulate(specs[i].shape.begin(), specs[i].shape.end(), int64_t{1},
                                                               std::multiplies<int64_t>()) *
                                               plan_dtype_size(specs[i].dtype)));
    EXPECT_EQ(0, std::memcmp(t.dst[i], want.data(), want.size())) << "weight " << specs[i].name << " differs: " << what;
  }
}

TEST_F(WeightStreamTest, GivesTheTransformsBytesWhateverTheChunksReadersAndIo) {
  write(kTensors, 0x77777777u, "all");
  const auto specs = all_transforms(*this);
  auto plan = make_plan(specs);
  ASSERT_TRUE(plan);
  struct Case {
    uint64_t chunk;
    int readers, buffers;
    IoMode io;
  };
  for (const Case& c : {Case{4096, 1, 1, IoMode::BUFFERED}, Case{4096, 3, 0, IoMode::AUTO},
                        Case{8192, 2, 3, IoMode::BUFFERED}, Case{uint64_t{16} << 20, 4, 0, IoMode::AUTO}}) {
    WeightLoadStats stats;
    LoadOptions o;
    o.chunk_bytes = c.chunk;
    o.readers = c.readers;
    o.buffers = c.buffers;
    o.io = c.io;
    Status st = stream(*plan, o, &stats);
    const std::string what = "chunk " + std::to_string(c.chunk) + ", " + std::to_string(c.readers) + " readers, " +
                             io_mode_name(c.io);
    ASSERT_TRUE(st.ok()) << what << ": " << st.error().message;
    expect_weights(*this, specs, what);
    EXPECT_EQ(stats.source, "checkpoint");
    EXPECT_EQ(stats.files, 2);
    if (c.io == IoMode::BUFFERED) { EXPECT_EQ(stats.direct_files, 0); }
    EXPECT_GE(stats.file_bytes, 30000u);
    EXPECT_GT(stats.peak_rss_kib, 0);
    // Host memory is the staging buffers (+ a small scratch), not the checkpoint.
    const int buffers = c.buffers ? c.buffers : c.readers + 2;
    EXPECT_LE(stats.staging_bytes, static_cast<uint64_t>(buffers) * c.chunk + (uint64_t{4} << 20)) << what;
  }
}

// Quantized weights laid out in strips of 32 columns: every transform the compiler lays out so
// (one matrix, columns and rows concatenated, stacked experts, w1 | w3 pairs), with 4 KiB chunks
// that split rows mid-strip and chunks that hold whole tensors (one copy per matrix).
const std::map<std::string, Tensor> kStripTensors = {
    {"c", {kShard1, mm::DType::I32, {40, 96}}},      // COPY: 3 strips of 40 rows
    {"s1", {kShard1, mm::DType::I32, {24, 64}}},     // CONCAT_N along the last dim, across shards
    {"s2", {kShard2, mm::DType::I32, {24, 32}}},
    {"r1", {kShard2, mm::DType::I32, {20, 64}}},     // CONCAT_N along the first dim
    {"r2", {kShard1, mm::DType::I32, {12, 64}}},
    {"w1_0", {kShard1, mm::DType::I32, {48, 64}}}, {"w3_0", {kShard2, mm::DType::I32, {48, 64}}},
    {"w1_1", {kShard1, mm::DType::I32, {48, 64}}}, {"w3_1", {kShard2, mm::DType::I32, {48, 64}}},
    {"w2_0", {kShard2, mm::DType::I32, {36, 96}}}, {"w2_1", {kShard1, mm::DType::I32, {36, 96}}},
};

TEST_F(WeightStreamTest, LaysQuantizedWeightsOutInStripsOf32Columns) {
  write(kStripTensors, 0x77777777u, "strips");
  std::vector<test::WeightSpec> specs = {
      spec("c", DType::I32, {40, 96}, WeightTransform::COPY, {"c"}),
      spec("qkv", DType::I32, {24, 96}, WeightTransform::CONCAT_N, {"s1", "s2"}),
      spec("rows", DType::I32, {32, 64}, WeightTransform::CONCAT_N, {"r1", "r2"}),
      spec("w13", DType::I32, {2, 48, 128}, WeightTransform::STACK_EXPERTS_W13, {"w1_0", "w3_0", "w1_1", "w3_1"}),
      spec("w2", DType::I32, {2, 36, 96}, WeightTransform::STACK_EXPERTS, {"w2_1", "w2_0"})};
  specs[2].concat_axis = 0;
  for (auto& w : specs) {
    w.role = plan::WeightRole::QWEIGHT;
    w.qlayout = plan::QuantLayout::STRIPS32;
  }
  auto plan = make_plan(specs);
  ASSERT_TRUE(plan);
  for (uint64_t chunk : {uint64_t{4096}, uint64_t{8192}, uint64_t{16} << 20}) {
    LoadOptions o;
    o.chunk_bytes = chunk;
    o.readers = 2;
    o.io = IoMode::BUFFERED;
    Status st = stream(*plan, o);
    ASSERT_TRUE(st.ok()) << "chunk " << chunk << ": " << st.error().message;
    expect_weights(*this, specs, "strips, chunk " + std::to_string(chunk));
  }
}

TEST_F(WeightStreamTest, ReadsShardByShardInFileOrder) {
  write(kTensors, 0x77777777u, "order");
  auto plan = make_plan(all_transforms(*this));
  ASSERT_TRUE(plan);
  FaultFs fs;
  LoadOptions o;
  o.chunk_bytes = 4096;
  o.readers = 1;
  o.fs = &fs;
  Status st = stream(*plan, o);
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_GT(fs.reads.size(), 10u);
  for (size_t i = 1; i < fs.reads.size(); ++i) {
    const auto& [f0, o0] = fs.reads[i - 1];
    const auto& [f1, o1] = fs.reads[i];
    EXPECT_TRUE(f0 < f1 || (f0 == f1 && o0 < o1)) << "read " << i << ": " << f1 << " @" << o1 << " after " << f0 << " @" << o0;
  }
  EXPECT_EQ(fs.reads.front().first, kShard1);
  EXPECT_EQ(fs.reads.back().first, kShard2);
}

TEST_F(WeightStreamTest, ReportsAnIoErrorNamingTheShardAndOffset) {
  write(kTensors, 0x77777777u, "eio");
  auto plan = make_plan(all_transforms(*this));
  ASSERT_TRUE(plan);
  for (IoMode io : {IoMode::BUFFERED, IoMode::AUTO}) {
    FaultFs fs;
    fs.fault = Fault::EIO_AT;
    fs.file = kShard2;
    fs.at = src.at("w2_1").offset + 100;  // a bad sector inside a tensor
    LoadOptions o;
    o.chunk_bytes = 8192;
    o.readers = 3;
    o.io = io;
    o.fs = &fs;
    Status st = stream(*plan, o);
    ASSERT_FALSE(st.ok());
    const std::string& m = st.error().message;
    EXPECT_NE(m.find(dir + "/" + kShard2 + ": read of "), std::string::npos) << m;
    EXPECT_NE(m.find("at offset " + std::to_string(fs.at) + " failed: " + std::strerror(EIO)), std::string::npos) << m;
    EXPECT_EQ(st.error().exit_code(), 1);
  }
}

TEST_F(WeightStreamTest, ReportsAShortReadNamingTheShardAndOffset) {
  write(kTensors, 0x77777777u, "short");
  auto plan = make_plan(all_transforms(*this));
  ASSERT_TRUE(plan);
  FaultFs fs;
  fs.fault = Fault::EOF_AT;
  fs.file = kShard1;
  fs.at = src.at("q1").offset + 5000;  // the file seems to end inside q1
  LoadOptions o;
  o.chunk_bytes = 4096;
  o.fs = &fs;
  Status st = stream(*plan, o);
  ASSERT_FALSE(st.ok());
  const std::string& m = st.error().message;
  EXPECT_NE(m.find(dir + "/" + kShard1 + ": short read: the file ends at offset " + std::to_string(fs.at)),
            std::string::npos)
      << m;
  EXPECT_EQ(st.error().exit_code(), 1);
}

TEST_F(WeightStreamTest, LoadsThroughShortReadsAndRefusedDirectIo) {
  write(kTensors, 0x77777777u, "slow");
  const auto specs = all_transforms(*this);
  auto plan = make_plan(specs);
  ASSERT_TRUE(plan);
  for (Fault f : {Fault::TRICKLE, Fault::NO_DIRECT_OPEN, Fault::NO_DIRECT_READ, Fault::DIRECT_EFAULT}) {
    FaultFs fs;
    fs.fault = f;
    LoadOptions o;
    o.chunk_bytes = 8192;
    o.readers = 2;
    o.io = IoMode::AUTO;
    o.fs = &fs;
    WeightLoadStats stats;
    Status st = stream(*plan, o, &stats);
    ASSERT_TRUE(st.ok()) << static_cast<int>(f) << ": " << st.error().message;
    expect_weights(*this, specs, "fault " + std::to_string(static_cast<int>(f)));
    if (f != Fault::TRICKLE) { EXPECT_EQ(stats.direct_files, 0) << "O_DIRECT was refused: the page cache serves"; }
  }
  // Asked for O_DIRECT outright, a refusal is an error naming the shard.
  FaultFs fs;
  fs.fault = Fault::NO_DIRECT_OPEN;
  LoadOptions o;
  o.io = IoMode::DIRECT;
  o.fs = &fs;
  Status st = stream(*plan, o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(kShard1), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("direct I/O was asked for"), std::string::npos) << st.error().message;
}

TEST_F(WeightStreamTest, RefusesZeroPointsThatAreNotSymmetric) {
  write(kTensors, 0x77770777u, "zeros");
  auto plan = make_plan(all_transforms(*this));
  ASSERT_TRUE(plan);
  LoadOptions o;
  o.chunk_bytes = 4096;
  Status st = stream(*plan, o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("tensor 'z' word 2 is 0x77770777"), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().exit_code(), 1);
}

TEST_F(WeightStreamTest, RefusesADirectoryThatDoesNotMatchThePlan) {
  write(kTensors, 0x77777777u, "mismatch");
  auto specs = all_transforms(*this);
  specs[0].sources[0].shape = {100, 49};  // the plan expects another shape than the shard holds
  specs[0].shape = {100, 49};
  specs[0].sources[0].nbytes = 100 * 49 * 2;
  auto plan = make_plan(specs);
  ASSERT_TRUE(plan);
  Status st = stream(*plan, LoadOptions{});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("tensor 'a'"), std::string::npos) << st.error().message;
}

// A shard whose header length is odd puts every tensor at an odd offset, so 4 KiB chunk
// boundaries split f16 elements and zero-point words: they are completed across chunks.
TEST(WeightStreamOddOffsets, CompletesElementsSplitByChunkBoundaries) {
  const std::string dir = mm::test::temp_path("weight_stream_odd");
  ::mkdir(dir.c_str(), 0755);
  constexpr int kZ = 3000, kU = 3001;  // words of zero points, f16 elements
  char json[256];
  std::snprintf(json, sizeof json,
                R"({"z":{"dtype":"I32","shape":[%d],"data_offsets":[0,%d]},"u":{"dtype":"F16","shape":[%d],"data_offsets":[%d,%d]}})",
                kZ, 4 * kZ, kU, 4 * kZ, 4 * kZ + 2 * kU);
  std::string header = json;
  if (header.size() % 2 == 0) header += ' ';
  std::vector<uint8_t> file(8 + header.size() + 4 * kZ + 2 * kU);
  const uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(len >> (8 * i));
  std::memcpy(file.data() + 8, header.data(), header.size());
  const uint64_t z0 = 8 + header.size(), u0 = z0 + 4 * kZ;
  ASSERT_EQ(z0 % 2, 1u);
  std::vector<float> want(kU);
  for (int i = 0; i < kZ; ++i) {
    const uint32_t v = 0x77777777u;
    std::memcpy(file.data() + z0 + 4 * i, &v, 4);
  }
  for (int i = 0; i < kU; ++i) {
    const uint16_t h = ref::f32_to_f16(0.25f * static_cast<float>(i % 101) - 7.0f);
    want[i] = ref::f16_to_f32(h);
    std::memcpy(file.data() + u0 + 2 * i, &h, 2);
  }
  const std::string path = dir + "/model.safetensors";
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  ASSERT_EQ(std::fwrite(file.data(), 1, file.size(), f), file.size());
  std::fclose(f);

  const std::vector<test::WeightSpec> specs = {
      {"z", DType::I32, {kZ}, WeightTransform::CHECK_ZEROS, {{"z", "model.safetensors", z0, 4 * kZ, DType::I32, {kZ}}}},
      {"u", DType::F32, {kU}, WeightTransform::UPCAST_F32, {{"u", "model.safetensors", u0, 2 * kU, DType::F16, {kU}}}}};
  auto bytes = test::build_weights_plan(specs);
  test::stamp_model_hash(&bytes, dir);
  auto plan = load_plan_from_memory(bytes.data(), bytes.size(), "odd.mmp");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  std::vector<float> got(kU, -1.0f);
  std::vector<void*> dst = {nullptr, got.data()};
  auto sink = make_host_sink();
  LoadOptions o;
  o.chunk_bytes = 4096;
  o.io = IoMode::BUFFERED;
  Status st = stream_weights(**plan, dir, dst, *sink, o, nullptr);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(got, want);

  // A bad word that straddles a chunk boundary is reported whole.
  const uint64_t boundary = 2 * 4096;
  const uint64_t word = (boundary - z0) / 4;  // the word holding the boundary's byte
  ASSERT_NE((z0 + 4 * word) % 4096, 0u);
  const uint32_t bad = 0x77707777u;
  std::memcpy(file.data() + z0 + 4 * word, &bad, 4);
  f = std::fopen(path.c_str(), "wb");
  ASSERT_TRUE(f);
  ASSERT_EQ(std::fwrite(file.data(), 1, file.size(), f), file.size());
  std::fclose(f);
  st = stream_weights(**plan, dir, dst, *sink, o, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("tensor 'z' word " + std::to_string(word) + " is 0x77707777"), std::string::npos)
      << st.error().message;
}

}  // namespace
}  // namespace mm::rt
