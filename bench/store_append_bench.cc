// Store log throughput and latency: Append of 64 KiB records (about one group-committed batch of
// a few hundred events) with sync=false and sync=true, from 1 and 4 partition threads (4 threads
// show the group commit: concurrent syncs share fsyncs), and GetLogRecord latency from the
// memtable and from SST files.
//
//   ./build-release/persona_bench --benchmark_filter='Store' --benchmark_min_time=1
//
// The store lives in a fresh directory under $TMPDIR (default /tmp), removed at exit; put TMPDIR on
// the disk you want to measure.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/store.h"

namespace persona {
namespace {

constexpr size_t kRecordBytes = 64 * 1024;
constexpr uint32_t kPartitions = 8;

// Text shaped like an encoded event batch (ids, types, times), so that LZ4 sees realistic
// redundancy rather than zeros or noise.
std::string MakeRecord(uint64_t seed) {
  static constexpr const char* kTypes[] = {"view", "cart", "fav", "buy"};
  std::mt19937_64 rng(seed);
  std::string record;
  record.reserve(kRecordBytes + 64);
  while (record.size() < kRecordBytes) {
    record += std::to_string(rng() % 1000000) + "," + std::to_string(rng() % 5000000) + "," +
              std::to_string(rng() % 10000) + "," + kTypes[rng() % 4] + "," +
              std::to_string(1511500000 + rng() % 800000) + "\n";
  }
  record.resize(kRecordBytes);
  return record;
}

// One store for the whole bench run, as one engine process has one.
class BenchStore {
 public:
  static BenchStore& Get() {
    static BenchStore instance;
    return instance;
  }
  ~BenchStore() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Store& store() { return *store_; }
  // Seqs continue across benchmark runs on the same partition.
  uint64_t NextSeq(uint32_t partition) { return ++next_seq_[partition]; }

 private:
  BenchStore() {
    const char* tmp = std::getenv("TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/persona_store_bench_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    auto store = Store::Open(dir_, kPartitions);
    if (!store.ok()) {
      fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
      std::abort();
    }
    store_ = *std::move(store);
  }
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::atomic<uint64_t> next_seq_[kPartitions] = {};
};

const std::vector<std::string>& Records() {
  static const std::vector<std::string> records = [] {
    std::vector<std::string> r;
    for (uint64_t i = 0; i < 16; ++i) r.push_back(MakeRecord(i));
    return r;
  }();
  return records;
}

// Arg 0: sync. Each thread is one partition's writer.
void BM_StoreAppend64KiB(benchmark::State& state) {
  const bool sync = state.range(0) != 0;
  const uint32_t partition = static_cast<uint32_t>(state.thread_index());
  Store& store = BenchStore::Get().store();
  const auto& records = Records();
  uint64_t first_seq = 0;
  size_t i = 0;
  for (auto _ : state) {
    const uint64_t seq = BenchStore::Get().NextSeq(partition);
    if (first_seq == 0) first_seq = seq;
    absl::Status s = store.Append(partition, seq, records[i++ % records.size()], {}, sync);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecordBytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  // Keep the disk footprint bounded between runs, as the engine's checkpoints do.
  (void)store.TrimLog(partition, BenchStore::Get().NextSeq(partition));
}
BENCHMARK(BM_StoreAppend64KiB)
    ->ArgName("sync")
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(4)
    ->UseRealTime();

// Arg 0: 1 = the records were flushed to SST files (a read after a restart or of an old record),
// 0 = they are still in the memtable (a read of the recent tail).
void BM_StoreGetLogRecord64KiB(benchmark::State& state) {
  constexpr uint32_t kPartition = kPartitions - 1;
  constexpr uint64_t kCount = 512;
  Store& store = BenchStore::Get().store();
  (void)store.TrimLog(kPartition, ~0ULL);
  uint64_t base = 0;
  for (uint64_t i = 0; i < kCount; ++i) {
    const uint64_t seq = BenchStore::Get().NextSeq(kPartition);
    if (base == 0) base = seq;
    (void)store.Append(kPartition, seq, Records()[i % Records().size()], {}, false);
  }
  if (state.range(0) != 0) (void)store.Flush();
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    absl::StatusOr<std::string> record = store.GetLogRecord(kPartition, base + rng() % kCount);
    if (!record.ok()) {
      state.SkipWithError(std::string(record.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(record->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecordBytes));
}
BENCHMARK(BM_StoreGetLogRecord64KiB)->ArgName("flushed")->Arg(0)->Arg(1);

}  // namespace
}  // namespace persona

// persona_bench links every bench/*_bench.cc into one binary and no bench file owns main(). This
// one is weak: it is used unless another file defines a strong main (e.g. BENCHMARK_MAIN()), and
// several weak ones do not collide.
__attribute__((weak)) int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
