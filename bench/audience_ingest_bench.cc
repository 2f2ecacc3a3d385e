// The ingest cost of saved audiences: the same end-to-end engine ingest as
// BM_EngineIngestGenerated (sync=none), with a SavedAudiences operator attached holding N saved
// audiences of realistic mixed conditions (count and money thresholds, interest shares,
// lifecycle, RFM, tag("bot"); no predictions). N = 0 is the attached-but-idle operator, which must
// cost nothing; the budget is <= 10% of throughput for N = 20.
//
//   ./build-eval-rel/persona_bench --benchmark_filter=IngestWithAudiences --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "audience/saved_audiences.h"
#include "engine/engine.h"
#include "gen/generator.h"

namespace persona {
namespace {

// CPU seconds of the whole process (all threads): less sensitive to other load on a shared
// machine than wall time.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// ~2M synthetic events (taobao-shaped mix) over 20k users, in batches of 1000.
const std::vector<std::shared_ptr<const EventBatch>>& AudienceBenchBatches() {
  static std::vector<std::shared_ptr<const EventBatch>> batches;
  if (batches.empty()) {
    GenOptions o;
    o.events = 2'000'000;
    o.users = 20'000;
    o.items = 200'000;
    EventGenerator gen(o);
    while (true) {
      auto b = std::make_shared<EventBatch>();
      const bool more = gen.Next(1000, b.get());
      if (!b->events.empty()) batches.push_back(std::move(b));
      if (!more) break;
    }
  }
  return batches;
}

constexpr const char* kConditions[] = {
    "purchases >= 2",
    "monetary > 500",
    "monetary_30d >= 100 and orders >= 2",
    "aov > 80",
    "views_7d > 20 and purchases_7d = 0",
    "carts > purchases + 3",
    "interest.category(\"c1\") > 0.3",
    "interest.category(\"c2\") > 0.5 and purchases >= 1",
    "lifecycle = \"active\"",
    "lifecycle = \"dormant\" and monetary > 100",
    "days_since_last_seen > 3",
    "tag(\"bot\")",
    "not tag(\"bot\") and views > 100",
    "rfm.m >= 4",
    "rfm.r >= 4 and rfm.f >= 3",
    "price_tier = \"premium\"",
    "events >= 50 and buyer",
    "sessions >= 5",
    "conversion_rate > 0.05",
    "favs >= 3 or reviews >= 1",
};

void BM_EngineIngestWithAudiences(benchmark::State& state) {
  const size_t audiences = static_cast<size_t>(state.range(0));
  const auto& batches = AudienceBenchBatches();
  size_t events = 0;
  for (const auto& b : batches) events += b->events.size();
  uint64_t members = 0, changes = 0, evaluations = 0;
  double cpu_seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    EngineConfig c;
    c.data_dir = "/tmp/persona_bench_audiences_" + std::to_string(getpid());
    std::filesystem::remove_all(c.data_dir);
    c.partitions = 2;
    c.sync = SyncPolicy::kNone;
    c.checkpoint_on_close = false;
    c.checkpoint_every_events = 0;
    c.checkpoint_interval_ms = 0;
    // The saved audiences are the pipeline's operator: opened before the engine, destroyed after.
    auto saved = std::move(*SavedAudiences::Open(nullptr, /*path=*/""));
    auto engine = std::move(*Engine::Open(c, {}, {saved.get()}));
    for (size_t i = 0; i < audiences; ++i) {
      const char* condition = kConditions[i % std::size(kConditions)];
      if (!saved->Create("audience " + std::to_string(i), condition, "").ok()) {
        state.SkipWithError(condition);
        return;
      }
    }
    saved->Attach(engine.get());
    const double cpu_start = ProcessCpuSeconds();
    state.ResumeTiming();

    std::atomic<size_t> left{batches.size()};
    for (const auto& b : batches) {
      (void)engine->Submit(
          b, [&left](IngestOutcome) { left--; }, /*block=*/true);
    }
    while (left.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));

    state.PauseTiming();
    cpu_seconds += ProcessCpuSeconds() - cpu_start;
    (void)engine->Close();
    members = changes = 0;
    evaluations = saved->evaluations();
    for (const auto& info : saved->List()) {
      members += info.size;
      changes += info.entered + info.exited;
    }
    engine.reset();
    saved.reset();
    std::filesystem::remove_all(c.data_dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events));
  state.counters["cpu_ns_per_event"] =
      1e9 * cpu_seconds / static_cast<double>(state.iterations() * events);
  state.counters["evaluations"] = static_cast<double>(evaluations);
  state.counters["members"] = static_cast<double>(members);
  state.counters["changes"] = static_cast<double>(changes);
  state.SetLabel(std::to_string(audiences) + " saved audiences, sync=none");
}
BENCHMARK(BM_EngineIngestWithAudiences)
    ->Arg(0)
    ->Arg(20)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The ingested population, shared by the evaluation benchmarks below (removed at exit), with
// saved audiences in its pipeline (no audience, detached, while it ingests).
struct IngestedEngine {
  IngestedEngine() {
    SavedAudiencesOptions options;
    options.scan_threads = 1;
    saved = std::move(*SavedAudiences::Open(nullptr, /*path=*/"", options));
    EngineConfig c;
    c.data_dir = "/tmp/persona_bench_reconcile_" + std::to_string(getpid());
    std::filesystem::remove_all(c.data_dir);
    c.partitions = 2;
    c.sync = SyncPolicy::kNone;
    c.checkpoint_on_close = false;
    c.checkpoint_every_events = 0;
    c.checkpoint_interval_ms = 0;
    dir = c.data_dir;
    engine = std::move(*Engine::Open(c, {}, {saved.get()}));
    for (const auto& b : AudienceBenchBatches()) (void)engine->Ingest(b);
  }
  ~IngestedEngine() {
    (void)engine->Close();
    engine.reset();
    saved.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  std::unique_ptr<SavedAudiences> saved;  // the engine's operator: outlives it
  std::unique_ptr<Engine> engine;
};
IngestedEngine& Ingested() {
  static IngestedEngine ingested;
  return ingested;
}

// The evaluation cost behind the ingest cost: one thread re-evaluating audiences over every
// profile of the ingested population (Reconcile), per profile. The operator does the same work
// once per profile a batch changed. Args: how many audiences, from which condition of the list
// (/1/i prices condition i alone).
void BM_SavedAudiencesReconcile(benchmark::State& state) {
  const size_t count = static_cast<size_t>(state.range(0));
  const size_t first = static_cast<size_t>(state.range(1));
  IngestedEngine& ingested = Ingested();
  SavedAudiences& saved = *ingested.saved;
  // The audiences of the previous run are replaced by this run's.
  saved.Detach();
  for (const SavedAudienceInfo& info : saved.List()) (void)saved.Delete(info.id);
  for (size_t i = first; i < first + count; ++i) {
    (void)saved.Create("audience " + std::to_string(i), kConditions[i % std::size(kConditions)],
                       "");
  }
  saved.Attach(ingested.engine.get());
  uint64_t scanned = 0;
  for (auto _ : state) scanned += saved.Reconcile().scanned;
  saved.Detach();
  state.SetItemsProcessed(static_cast<int64_t>(scanned));
  state.SetLabel(count == 1 ? kConditions[first] : std::to_string(count) + " audiences");
}
BENCHMARK(BM_SavedAudiencesReconcile)
    ->Args({20, 0})
    ->Apply([](benchmark::internal::Benchmark* b) {
      for (int64_t i = 0; i < static_cast<int64_t>(std::size(kConditions)); ++i) b->Args({1, i});
    })
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace persona
