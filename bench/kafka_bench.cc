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
#include <future>
#include <map>
#include <thread>

#include "common/hash.h"
#include "common/json_writer.h"
#include "engine/checkpoint_listener.h"
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

// The engine's half of a partition move through the changelog (kafka/changelog.h): installing a
// partition image of `users` profiles (decoding every profile, the meta and the operators' states,
// then one local checkpoint replacing the partition's state), as Engine::RestorePartition does on
// the new owner after reading the changelog. The image is what a full checkpoint hands the
// changelog, captured by a listener. Reading the changelog from Kafka is not part of it (the mock
// keeps ~5 MB per partition; bench/kafka_cluster.sh measures a restore through the mock).
struct ImageCapture : CheckpointListener {
  PartitionImage image;
  bool NeedsFull(uint32_t) override { return true; }
  void Begin(uint32_t, bool) override { image = PartitionImage(); }
  void Erased(uint32_t, std::span<const std::string>) override {}
  void Profiles(uint32_t, NamedBlobs blobs) override {
    for (const auto& [user, blob] : blobs) image.profiles.emplace_back(user, blob);
  }
  void Commit(uint32_t, uint64_t seq, int64_t source_next, std::string_view meta,
              NamedBlobs states) override {
    image.seq = seq;
    image.source_next = source_next;
    image.meta = meta;
    for (const auto& [name, state] : states) image.states.emplace_back(name, state);
  }
};

const PartitionImage& CapturedImage(size_t users) {
  static std::map<size_t, PartitionImage> images;
  auto it = images.find(users);
  if (it != images.end()) return it->second;
  const std::string dir = "/tmp/persona_bench_image_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  EngineConfig cfg;
  cfg.data_dir = dir;
  cfg.partitions = 1;
  cfg.sync = SyncPolicy::kNone;
  auto engine = std::move(*Engine::Open(cfg));
  // About a third of the generator's users are active in a stream of 3 events per user: three
  // times as many users give about `users` profiles.
  GenOptions o;
  o.events = users * 9;
  o.users = users * 3;
  o.items = std::max<size_t>(1, users);
  EventGenerator gen(o);
  for (bool more = true; more;) {
    auto b = std::make_shared<EventBatch>();
    more = gen.Next(5000, b.get());
    if (!b->events.empty()) engine->Ingest(b);
  }
  ImageCapture capture;
  engine->SetCheckpointListener(&capture);
  (void)engine->Checkpoint();
  engine->SetCheckpointListener(nullptr);
  (void)engine->Close();
  engine.reset();
  std::filesystem::remove_all(dir);
  return images[users] = std::move(capture.image);
}

void BM_RestorePartition(benchmark::State& state) {
  const PartitionImage& image = CapturedImage(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    const std::string dir = "/tmp/persona_bench_restore_" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    EngineConfig cfg;
    cfg.data_dir = dir;
    cfg.partitions = 1;
    cfg.sync = SyncPolicy::kInterval;
    auto engine = std::move(*Engine::Open(cfg));
    auto copy = std::make_shared<PartitionImage>(image);
    state.ResumeTiming();
    std::promise<absl::Status> done;
    engine->RestorePartition(0, std::move(copy), [&](absl::Status s) { done.set_value(s); });
    if (absl::Status s = done.get_future().get(); !s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
    state.PauseTiming();
    (void)engine->Close();
    engine.reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.counters["profiles"] = static_cast<double>(image.profiles.size());
  size_t bytes = image.meta.size();
  for (const auto& [user, blob] : image.profiles) bytes += user.size() + blob.size();
  state.counters["image_MB"] = static_cast<double>(bytes) / 1e6;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * image.profiles.size()));
}
// Args: about that many profiles in the partition (the `profiles` counter says how many).
BENCHMARK(BM_RestorePartition)
    ->Arg(100000)
    ->Arg(1000000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

}  // namespace
}  // namespace persona
