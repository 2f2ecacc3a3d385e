// Ad-hoc audience queries over 1,000,000 live profiles: one parallel scan that counts, samples 10
// members and pages 100 ids (AudienceScanner::Query with the API's defaults). The issue's target
// is <= 100 ms per query on 2 cores.
//
//   ./build-perf/persona_bench --benchmark_filter=Audience
//
// The profiles are built once per process by ingesting ~3 hand-made events per user through a
// real engine (2 partitions, sync none) in a temp dir: each user leans to one of 12 top-level
// categories, buys now and then (some large orders), and was last active somewhere in the last
// 90 days, so lifecycle, spend and interest conditions are all selective.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "audience/audience_scan.h"
#include "common/hash.h"
#include "common/time_util.h"
#include "engine/engine.h"

namespace persona {
namespace {

constexpr uint64_t kUsers = 1'000'000;
constexpr int64_t kEndMs = 1700000000000;

class AudienceFixture {
 public:
  AudienceFixture() {
    dir_ = "/tmp/persona_bench_audience_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    EngineConfig c;
    c.data_dir = dir_;
    c.partitions = 2;
    c.sync = SyncPolicy::kNone;
    c.checkpoint_on_close = false;
    c.checkpoint_every_events = 0;
    c.checkpoint_interval_ms = 0;
    engine_ = std::move(*Engine::Open(c));
    Ingest();
  }
  ~AudienceFixture() {
    (void)engine_->Close();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  Engine* engine() { return engine_.get(); }
  uint64_t events() const { return events_; }

 private:
  void Ingest() {
    std::mt19937_64 rng(42);
    std::atomic<size_t> pending{0};
    auto batch = std::make_shared<EventBatch>();
    auto submit = [&] {
      pending++;
      (void)engine_->Submit(
          std::move(batch), [&pending](IngestOutcome) { pending--; }, /*block=*/true);
      batch = std::make_shared<EventBatch>();
    };
    std::string scratch;
    for (uint64_t u = 0; u < kUsers; ++u) {
      const std::string user = "user" + std::to_string(u);
      const uint64_t favourite = rng() % 12;
      // Last active uniformly in the last 90 days (the first user exactly at the end, so the
      // watermark is kEndMs); events over the 5 days before that.
      const int64_t last = u == 0 ? kEndMs : kEndMs - static_cast<int64_t>(rng() % (90 * kDayMs));
      const int events = 2 + static_cast<int>(rng() % 3);
      for (int i = 0; i < events; ++i) {
        Event e;
        e.user_id = batch->arena.Copy(user);
        const uint64_t r = rng() % 100;
        e.type = r < 55   ? EventType::kView
                 : r < 70 ? EventType::kCart
                 : r < 90 ? EventType::kPurchase
                 : r < 95 ? EventType::kFav
                          : EventType::kSearch;
        e.ts_ms = i == 0 ? last : last - static_cast<int64_t>(rng() % (5 * kDayMs));
        const uint64_t top = rng() % 10 < 7 ? favourite : rng() % 12;
        scratch = "c" + std::to_string(top + 1) + ".c" + std::to_string(top + 1) + "_" +
                  std::to_string(1 + rng() % 8);
        if (e.type == EventType::kSearch) {
          e.query = batch->arena.Copy("gift ideas");
        } else {
          e.category_path = batch->arena.Copy(scratch);
          e.item_id = batch->arena.Copy("i" + std::to_string(rng() % 200000));
          // Mostly small prices, one purchase in five a large one.
          e.price = rng() % 5 == 0 ? 300 + static_cast<double>(rng() % 1200)
                                   : 5 + static_cast<double>(rng() % 150);
          e.quantity = 1;
        }
        if (e.type == EventType::kPurchase) {
          e.order_id = batch->arena.Copy(user + "/" + std::to_string(i));
        }
        scratch = user + "#" + std::to_string(i);
        e.event_id = batch->arena.Copy(scratch);
        e.id_hash = Hash64(e.event_id);
        batch->source_index.push_back(static_cast<uint32_t>(batch->events.size()));
        batch->events.push_back(e);
        ++events_;
      }
      if (batch->events.size() >= 8192) submit();
    }
    if (!batch->events.empty()) submit();
    while (pending.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::string dir_;
  std::unique_ptr<Engine> engine_;
  uint64_t events_ = 0;
};

AudienceFixture& Fixture() {
  static AudienceFixture fixture;
  return fixture;
}

constexpr const char* kConditions[] = {
    "purchases >= 1 and monetary > 100",
    // The issue's example without the prediction term, on a category of this population.
    "interest.category(\"c3\") > 0.3 and rfm.monetary_30d >= 500 and lifecycle = \"dormant\" "
    "and not tag(\"bot\")",
};

// Args: condition index, scan threads.
void BM_AudienceCount(benchmark::State& state) {
  AudienceFixture& fixture = Fixture();
  const absl::StatusOr<AudienceCondition> condition =
      AudienceCondition::Compile(kConditions[state.range(0)]);
  if (!condition.ok()) {
    state.SkipWithError(std::string(condition.status().message()).c_str());
    return;
  }
  AudienceScanner scanner(fixture.engine(), nullptr);
  AudienceQueryOptions options;  // the API's defaults: sample 10, page of 100 ids
  options.threads = static_cast<uint32_t>(state.range(1));
  options.seed = 1;
  uint64_t count = 0, scanned = 0;
  for (auto _ : state) {
    absl::StatusOr<AudienceQueryResult> r = scanner.Query({&*condition}, options);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    count = r->count;
    scanned = r->scanned;
  }
  state.counters["profiles"] = static_cast<double>(scanned);
  state.counters["matches"] = static_cast<double>(count);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * scanned));
  state.SetLabel(std::string(kConditions[state.range(0)]).substr(0, 40) + "...");
}
BENCHMARK(BM_AudienceCount)
    ->ArgNames({"condition", "threads"})
    ->Args({0, 1})
    ->Args({0, 2})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace persona
