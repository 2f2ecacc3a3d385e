// End-to-end engine throughput: events routed, logged (RocksDB, per sync policy), applied to
// profiles and acknowledged; and recovery speed (checkpoint-less log replay).
//
//   ./build-release/persona_bench --benchmark_filter='Engine' --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "event/event_reader.h"
#include "gen/generator.h"
#include "recommend/recommender.h"

namespace persona {
namespace {

std::string FreshDir(const std::string& name) {
  std::string dir = "/tmp/persona_bench_" + name + "_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

// Pre-generated synthetic batches (taobao-shaped mix), shared by the benchmarks.
const std::vector<std::shared_ptr<const EventBatch>>& Batches(size_t events) {
  static std::map<size_t, std::vector<std::shared_ptr<const EventBatch>>> cache;
  auto& v = cache[events];
  if (v.empty()) {
    GenOptions o;
    o.events = events;
    o.users = events / 100;
    o.items = events / 10;
    EventGenerator gen(o);
    while (true) {
      auto b = std::make_shared<EventBatch>();
      bool more = gen.Next(8192, b.get());
      if (!b->events.empty()) v.push_back(b);
      if (!more) break;
    }
  }
  return v;
}

void IngestAll(Engine& engine, const std::vector<std::shared_ptr<const EventBatch>>& batches) {
  std::atomic<size_t> left{batches.size()};
  for (const auto& b : batches) {
    (void)engine.Submit(
        b, [&left](IngestOutcome) { left--; }, /*block=*/true);
  }
  while (left.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

void BM_EngineIngestGenerated(benchmark::State& state) {
  const auto sync = static_cast<SyncPolicy>(state.range(0));
  const auto& batches = Batches(2'000'000);
  size_t events = 0;
  for (const auto& b : batches) events += b->events.size();
  for (auto _ : state) {
    state.PauseTiming();
    EngineConfig c;
    c.data_dir = FreshDir("ingest");
    c.partitions = 2;
    c.sync = sync;
    c.checkpoint_on_close = false;
    c.checkpoint_every_events = 0;
    c.checkpoint_interval_ms = 0;
    auto engine = std::move(*Engine::Open(c));
    state.ResumeTiming();
    IngestAll(*engine, batches);
    state.PauseTiming();
    (void)engine->Close();
    engine.reset();
    std::filesystem::remove_all(c.data_dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * events);
  state.SetLabel(std::string("sync=") + std::string(SyncPolicyName(sync)));
}
BENCHMARK(BM_EngineIngestGenerated)
    ->Arg(static_cast<int>(SyncPolicy::kNone))
    ->Arg(static_cast<int>(SyncPolicy::kInterval))
    ->Arg(static_cast<int>(SyncPolicy::kAlways))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The same ingest with the recommender in the pipeline (trending, item-CF and the catalogue updated
// by every event on the partition writers): the cost of live recommendation state on the hot path.
void BM_EngineIngestWithRecommender(benchmark::State& state) {
  const auto& batches = Batches(2'000'000);
  size_t events = 0;
  for (const auto& b : batches) events += b->events.size();
  for (auto _ : state) {
    state.PauseTiming();
    EngineConfig c;
    c.data_dir = FreshDir("ingest_rec");
    c.partitions = 2;
    c.sync = SyncPolicy::kNone;
    c.checkpoint_on_close = false;
    c.checkpoint_every_events = 0;
    c.checkpoint_interval_ms = 0;
    RecommendConfig rc;
    rc.impressions_log.clear();
    rc.model_poll_seconds = 0;
    // The recommender is an operator of the pipeline (or not at all): it outlives the engine.
    auto rec = std::make_unique<Recommender>(rc, "");
    std::vector<StreamOperator*> operators;
    if (state.range(0) != 0) operators.push_back(rec.get());
    auto engine = std::move(*Engine::Open(c, {}, operators));
    state.ResumeTiming();
    IngestAll(*engine, batches);
    state.PauseTiming();
    (void)engine->Close();
    engine.reset();
    state.counters["catalog_items"] = static_cast<double>(rec->catalog().size());
    rec.reset();
    std::filesystem::remove_all(c.data_dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * events);
  state.SetLabel(state.range(0) != 0 ? "sync=none, recommender in the pipeline"
                                     : "sync=none, no recommender");
}
BENCHMARK(BM_EngineIngestWithRecommender)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// File replay of the real taobao slice: parse + route + log + apply, as `persona import` does.
void BM_EngineReplayTaobaoFile(benchmark::State& state) {
  const std::string file = std::string(PERSONA_DATASETS) + "/taobao/UserBehavior-by-user.csv";
  if (!std::filesystem::exists(file)) {
    state.SkipWithError("dataset absent");
    return;
  }
  const auto sync = static_cast<SyncPolicy>(state.range(0));
  size_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    EngineConfig c;
    c.data_dir = FreshDir("taobao");
    c.partitions = 2;
    c.sync = sync;
    c.checkpoint_on_close = false;
    auto engine = std::move(*Engine::Open(c));
    state.ResumeTiming();
    auto reader = std::move(*EventReader::Open(file, InputFormat::kTaobao, c.limits));
    std::vector<EventIssue> issues;
    std::atomic<size_t> left{0};
    while (true) {
      auto b = std::make_shared<EventBatch>();
      bool more = reader->Next(8192, b.get(), &issues);
      events += b->events.size();
      left++;
      (void)engine->Submit(
          b, [&left](IngestOutcome) { left--; }, true);
      if (!more) break;
    }
    while (left.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    state.PauseTiming();
    (void)engine->Close();
    engine.reset();
    std::filesystem::remove_all(c.data_dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(events);
  state.SetLabel(std::string("sync=") + std::string(SyncPolicyName(sync)));
}
BENCHMARK(BM_EngineReplayTaobaoFile)
    ->Arg(static_cast<int>(SyncPolicy::kNone))
    ->Arg(static_cast<int>(SyncPolicy::kInterval))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Recovery: open a data directory whose state exists only in the log (no checkpoint).
void BM_EngineRecoveryReplay(benchmark::State& state) {
  const auto& batches = Batches(2'000'000);
  EngineConfig c;
  c.data_dir = FreshDir("recovery");
  c.partitions = 2;
  c.sync = SyncPolicy::kNone;
  c.checkpoint_on_close = false;
  c.checkpoint_every_events = 0;
  c.checkpoint_interval_ms = 0;
  {
    auto engine = std::move(*Engine::Open(c));
    IngestAll(*engine, batches);
    (void)engine->Close();
  }
  uint64_t replayed = 0;
  for (auto _ : state) {
    auto engine = std::move(*Engine::Open(c));
    replayed += engine->recovered_events();
    state.PauseTiming();
    (void)engine->Close();
    engine.reset();
    state.ResumeTiming();
  }
  std::filesystem::remove_all(c.data_dir);
  state.SetItemsProcessed(replayed);
}
BENCHMARK(BM_EngineRecoveryReplay)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace persona
