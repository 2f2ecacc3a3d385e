// Kafka consumption, engine only: a topic of generated native-JSON events (keyed by user, murmur2)
// on librdkafka's mock cluster (in process, real protocol over loopback), consumed by a
// KafkaSource into an engine without the product's operators (profiles only), timed from Start
// to every partition applied up to the end. Producing is setup, not timed. The whole product
// (every operator of `persona serve`) is bench/kafka_consume.sh.
//
//   ./build-rel/persona_bench --benchmark_filter=Kafka
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/hash.h"
#include "common/json_writer.h"
#include "engine/engine.h"
#include "event/json_event.h"
#include "gen/generator.h"
#include "kafka/kafka_mock_cluster.h"
#include "kafka/kafka_producer.h"
#include "kafka/kafka_source.h"

namespace persona {
namespace {

constexpr char kTopic[] = "bench-events";

struct Topic {
  std::unique_ptr<KafkaMockCluster> cluster;
  std::vector<int64_t> ends;
  size_t events = 0;
};

// One mock cluster per (events, partitions), produced once.
Topic& ProducedTopic(size_t events, uint32_t partitions) {
  static std::map<std::pair<size_t, uint32_t>, Topic> topics;
  Topic& t = topics[{events, partitions}];
  if (t.cluster) return t;
  t.cluster = std::move(*KafkaMockCluster::Start(1));
  (void)t.cluster->CreateTopic(kTopic, static_cast<int>(partitions));
  auto producer = std::move(*KafkaProducer::Create(t.cluster->bootstrap(), {{"linger.ms", "20"}}));
  GenOptions o;
  o.events = events;
  o.users = std::max<size_t>(1, events / 100);
  o.items = std::max<size_t>(1, events / 25);
  EventGenerator gen(o);
  t.ends.assign(partitions, 0);
  JsonWriter w;
  for (bool more = true; more;) {
    EventBatch b;
    more = gen.Next(8192, &b);
    for (const Event& e : b.events) {
      w.Clear();
      WriteEventJson(w, e);
      (void)producer->Produce(kTopic, e.user_id, w.str());
      ++t.ends[KafkaPartitionOf(e.user_id, partitions)];
      ++t.events;
    }
  }
  (void)producer->Flush(std::chrono::minutes(5));
  return t;
}

void BM_KafkaConsumeEngineOnly(benchmark::State& state) {
  const size_t events = static_cast<size_t>(state.range(0));
  const auto partitions = static_cast<uint32_t>(state.range(1));
  Topic& topic = ProducedTopic(events, partitions);
  for (auto _ : state) {
    state.PauseTiming();
    const std::string dir = "/tmp/persona_bench_kafka_" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    EngineConfig cfg;
    cfg.data_dir = dir;
    cfg.partitions = partitions;
    cfg.kafka_routing = true;
    cfg.sync = SyncPolicy::kInterval;
    auto engine = std::move(*Engine::Open(cfg));
    KafkaConfig kc;
    kc.brokers = topic.cluster->bootstrap();
    kc.topic = kTopic;
    kc.group = "bench-" + std::to_string(state.iterations());
    // The mock coordinator holds a new group's first join for about the session timeout.
    // ... and does not answer a waiting fetch when data arrives (a real broker does).
    kc.client = {{"session.timeout.ms", "6000"},
                 {"heartbeat.interval.ms", "500"},
                 {"fetch.wait.max.ms", "5"}};
    auto source = KafkaSource::Start(engine.get(), kc);
    if (!source.ok()) {
      state.SkipWithError(std::string(source.status().message()).c_str());
      return;
    }
    // Joining the group is not timed (the mock coordinator takes seconds for a new group).
    for (bool assigned = false; !assigned;) {
      assigned = true;
      for (const auto& p : (*source)->Status().partitions) assigned &= p.assigned;
      if (!assigned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    state.ResumeTiming();
    for (;;) {
      bool done = true;
      for (uint32_t p = 0; p < partitions; ++p) done &= engine->SourceOffset(p) >= topic.ends[p];
      if (done) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    state.PauseTiming();
    (*source)->Stop();
    (void)engine->Close();
    engine.reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * topic.events));
}
// Timed from the assignment (the group join is not timed) to every partition applied. Args: events,
// partitions. librdkafka's mock broker keeps only ~5 MB per partition (~20k events), so a larger
// backlog needs more partitions to stay whole: 1M events over 48.
BENCHMARK(BM_KafkaConsumeEngineOnly)
    ->Args({30000, 2})
    ->Args({1000000, 48})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
}  // namespace persona
