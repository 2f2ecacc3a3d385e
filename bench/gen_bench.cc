// Throughput of `persona gen`: events/s of EventGenerator::Next() and of WriteLines() in each
// format, with the default catalog and population (100k users, 200k items). The target is
// >= 3M events/s for the taobao format on one core (in a build without sanitizers).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "gen/generator.h"

namespace persona {
namespace {

constexpr size_t kChunkEvents = 4096;

// The shape of a 100M-event run (users' activity is calibrated to the event count, so a
// shorter stream would not be the same workload); benchmarks start over if they ever use it up.
std::unique_ptr<EventGenerator> MakeGenerator(GenOptions::Format format) {
  GenOptions o;
  o.events = 100'000'000;
  o.format = format;
  return std::make_unique<EventGenerator>(o);
}

void BM_GenNext(benchmark::State& state) {
  auto gen = MakeGenerator(GenOptions::Format::kJsonl);
  for (auto _ : state) {
    EventBatch batch;
    if (!gen->Next(kChunkEvents, &batch)) {
      state.PauseTiming();
      gen = MakeGenerator(GenOptions::Format::kJsonl);
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(batch.events.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kChunkEvents));
}
BENCHMARK(BM_GenNext)->Unit(benchmark::kMicrosecond);

void BM_GenWriteLines(benchmark::State& state, GenOptions::Format format) {
  auto gen = MakeGenerator(format);
  std::string out;
  out.reserve(kChunkEvents * 400);
  int64_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    if (gen->WriteLines(kChunkEvents, &out) == 0) {
      state.PauseTiming();
      gen = MakeGenerator(format);
      state.ResumeTiming();
    }
    bytes += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kChunkEvents));
  state.SetBytesProcessed(bytes);
}
BENCHMARK_CAPTURE(BM_GenWriteLines, taobao, GenOptions::Format::kTaobao)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GenWriteLines, jsonl, GenOptions::Format::kJsonl)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GenWriteLines, csv, GenOptions::Format::kCsv)->Unit(benchmark::kMicrosecond);

// Construction cost: catalog, population and first session of every user.
void BM_GenSetup(benchmark::State& state) {
  for (auto _ : state) {
    auto gen = MakeGenerator(GenOptions::Format::kTaobao);
    benchmark::DoNotOptimize(gen.get());
  }
}
BENCHMARK(BM_GenSetup)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace persona
