// The Kafka source against librdkafka's mock cluster (the real Kafka protocol on localhost):
// profiles equal a direct ingest of the same events, restarts resume exactly once, bad messages
// become dead letters naming topic/partition/offset, and a consumer group spreads and moves
// partitions between instances.
#include "kafka/kafka_source.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "common/hash.h"
#include "common/json_writer.h"
#include "engine/testing/engine_test_util.h"
#include "kafka/kafka_mock_cluster.h"
#include "kafka/kafka_producer.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

using testing_util::JsonDiff;
using testing_util::TempDir;

constexpr uint32_t kPartitions = 4;
constexpr char kTopic[] = "events";

// A synthetic stream: `users` users browsing, carting and buying, one JSON object per event.
std::vector<std::pair<std::string, std::string>> MakeEvents(int n, int users, uint32_t seed,
                                                            int64_t t0 = 1700000000000) {
  std::mt19937 rng(seed);
  std::vector<std::pair<std::string, std::string>> out;
  static const char* kTypes[] = {"view", "view", "view", "cart", "fav", "purchase"};
  for (int i = 0; i < n; ++i) {
    const std::string user = "u" + std::to_string(rng() % users);
    const char* type = kTypes[rng() % 6];
    JsonWriter w;
    w.BeginObject();
    w.Key("event_id").String("e" + std::to_string(seed) + "-" + std::to_string(i));
    w.Key("user_id").String(user);
    w.Key("type").String(type);
    w.Key("ts").Int(t0 + i * 1000);
    w.Key("item_id").String("i" + std::to_string(rng() % 300));
    w.Key("category_id").String("c" + std::to_string(rng() % 12));
    if (std::string_view(type) == "purchase") w.Key("price").Double(5 + rng() % 200);
    w.EndObject();
    out.emplace_back(user, w.str());
  }
  return out;
}

EngineConfig KafkaEngineConfig(const std::string& dir) {
  EngineConfig c;
  c.data_dir = dir;
  c.partitions = kPartitions;
  c.kafka_routing = true;
  c.sync = SyncPolicy::kNone;
  return c;
}

class KafkaSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = KafkaMockCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    ASSERT_TRUE(cluster_->CreateTopic(kTopic, kPartitions).ok());
    config_.brokers = cluster_->bootstrap();
    config_.topic = kTopic;
    config_.group = "g-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name();
    config_.client = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
    auto producer = KafkaProducer::Create(config_.brokers);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = std::move(*producer);
  }

  void Produce(const std::vector<std::pair<std::string, std::string>>& events) {
    for (const auto& [key, value] : events)
      ASSERT_TRUE(producer_->Produce(kTopic, key, value).ok());
    ASSERT_TRUE(producer_->Flush(std::chrono::seconds(30)).ok());
  }

  // Waits until the engine's partitions have applied every message produced so far.
  static void WaitApplied(const Engine& engine, const std::vector<int64_t>& ends) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      bool done = true;
      for (uint32_t p = 0; p < ends.size(); ++p) done &= engine.SourceOffset(p) >= ends[p];
      if (done) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the source did not catch up";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // The end offset of each partition, counted from what was produced (murmur2 of the key).
  void Count(const std::vector<std::pair<std::string, std::string>>& events) {
    ends_.resize(kPartitions, 0);
    for (const auto& [key, value] : events) ++ends_[KafkaPartitionOf(key, kPartitions)];
  }

  // Profiles of a direct ingest of `events` (same routing, same per-partition order).
  static std::map<std::string, std::string> Direct(
      const std::vector<std::pair<std::string, std::string>>& events) {
    TempDir dir("kafka_direct");
    auto engine = Engine::Open(KafkaEngineConfig(dir.path()));
    EXPECT_TRUE(engine.ok()) << engine.status();
    std::string ndjson;
    for (const auto& [key, value] : events) ndjson += value + "\n";
    IngestOutcome o = (*engine)->Ingest(testing_util::BatchFromJson(ndjson));
    EXPECT_EQ(o.accepted, events.size());
    return Profiles(**engine);
  }

  static std::map<std::string, std::string> Profiles(const Engine& engine) {
    std::map<std::string, std::string> out;
    for (const std::string& user : testing_util::AllUsers(engine)) {
      out[user] = engine.ProfileJson(user, ProfileSection::kAll).value_or("");
    }
    return out;
  }

  static void ExpectSameProfiles(const std::map<std::string, std::string>& want,
                                 const std::map<std::string, std::string>& got) {
    ASSERT_EQ(want.size(), got.size());
    for (const auto& [user, json] : want) {
      auto it = got.find(user);
      ASSERT_NE(it, got.end()) << user;
      EXPECT_EQ(JsonDiff(json, it->second, 1e-9), "") << user;
    }
  }

  std::unique_ptr<KafkaMockCluster> cluster_;
  std::unique_ptr<KafkaProducer> producer_;
  KafkaConfig config_;
  std::vector<int64_t> ends_;
};

TEST_F(KafkaSourceTest, ProfilesEqualADirectIngestOfTheSameEvents) {
  const auto events = MakeEvents(3000, 150, 1);
  Produce(events);
  Count(events);
  TempDir dir("kafka_consume");
  auto engine = Engine::Open(KafkaEngineConfig(dir.path()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto source = KafkaSource::Start(engine->get(), config_);
  ASSERT_TRUE(source.ok()) << source.status();
  WaitApplied(**engine, ends_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(*source)->caught_up() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE((*source)->caught_up());
  const KafkaSourceStatus st = (*source)->Status();
  EXPECT_EQ(st.messages, events.size());
  EXPECT_EQ(st.events, events.size());
  EXPECT_EQ(st.dead_letters, 0u);
  ExpectSameProfiles(Direct(events), Profiles(**engine));
}

TEST_F(KafkaSourceTest, RestartResumesFromTheStoredOffsetsExactlyOnce) {
  const auto first = MakeEvents(1500, 100, 2);
  const auto second = MakeEvents(1500, 100, 3, 1700100000000);
  Produce(first);
  Count(first);
  TempDir dir("kafka_restart");
  {
    EngineConfig cfg = KafkaEngineConfig(dir.path());
    cfg.checkpoint_on_close = false;  // the restart replays the log tail, as after a crash
    auto engine = Engine::Open(cfg);
    ASSERT_TRUE(engine.ok()) << engine.status();
    auto source = KafkaSource::Start(engine->get(), config_);
    ASSERT_TRUE(source.ok()) << source.status();
    WaitApplied(**engine, ends_);
    (*source)->Stop();
    ASSERT_TRUE((*engine)->Close().ok());
  }
  Produce(second);
  Count(second);  // adds to the ends of the first stream
  auto engine = Engine::Open(KafkaEngineConfig(dir.path()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto source = KafkaSource::Start(engine->get(), config_);
  ASSERT_TRUE(source.ok()) << source.status();
  WaitApplied(**engine, ends_);
  (*source)->Stop();
  EXPECT_EQ((*source)->Status().messages, second.size()) << "consumed the first stream again";
  auto all = first;
  all.insert(all.end(), second.begin(), second.end());
  uint64_t duplicates = 0;
  for (const PartitionStats& p : (*engine)->Stats()) duplicates += p.duplicates;
  EXPECT_EQ(duplicates, 0u);
  ExpectSameProfiles(Direct(all), Profiles(**engine));
}

TEST_F(KafkaSourceTest, BadMessagesBecomeDeadLettersNamingTheirOffset) {
  auto events = MakeEvents(200, 20, 4);
  Produce(events);
  Count(events);
  // Malformed JSON, an empty message, an invalid event, and a user in the wrong partition.
  const std::string wrong_user = "u-moved";
  const int32_t owner = static_cast<int32_t>(KafkaPartitionOf(wrong_user, kPartitions));
  const int32_t other = (owner + 1) % kPartitions;
  ASSERT_TRUE(producer_->Produce(kTopic, "u1", "{\"user_id\": \"u1\", \"type\": ").ok());
  ASSERT_TRUE(producer_->Produce(kTopic, "u1", "").ok());
  ASSERT_TRUE(
      producer_->Produce(kTopic, "u1", R"({"user_id":"u1","type":"teleport","ts":1})").ok());
  ASSERT_TRUE(
      producer_
          ->Produce(kTopic, wrong_user,
                    R"({"user_id":"u-moved","type":"view","ts":1700000000000,"item_id":"i1"})",
                    other)
          .ok());
  ASSERT_TRUE(producer_->Flush(std::chrono::seconds(30)).ok());
  ends_[KafkaPartitionOf("u1", kPartitions)] += 3;
  ends_[other] += 1;

  TempDir dir("kafka_bad");
  auto engine = Engine::Open(KafkaEngineConfig(dir.path()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto source = KafkaSource::Start(engine->get(), config_);
  ASSERT_TRUE(source.ok()) << source.status();
  WaitApplied(**engine, ends_);
  EXPECT_EQ((*source)->Status().dead_letters, 4u);
  auto letters = (*engine)->store().ListDeadLetters("", 100);
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_EQ(letters->size(), 4u);
  std::map<std::string, std::string> rules;
  for (const StoredDeadLetter& l : *letters) {
    EXPECT_EQ(l.letter.source.rfind("kafka:events/", 0), 0u) << l.letter.source;
    rules[l.letter.raw.substr(0, 12)] = l.letter.field + " " + l.letter.rule;
  }
  bool moved = false;
  for (const StoredDeadLetter& l : *letters) {
    if (l.letter.user_id == wrong_user) {
      moved = true;
      EXPECT_EQ(l.letter.source, "kafka:events/" + std::to_string(other));
      EXPECT_NE(l.letter.rule.find("belongs to partition " + std::to_string(owner)),
                std::string::npos)
          << l.letter.rule;
    }
  }
  EXPECT_TRUE(moved);
  EXPECT_FALSE((*engine)->ProfileJson(wrong_user, ProfileSection::kAll).has_value());
}

TEST_F(KafkaSourceTest, RefusesATopicWithAnotherPartitionCount) {
  ASSERT_TRUE(cluster_->CreateTopic("three", 3).ok());
  TempDir dir("kafka_count");
  auto engine = Engine::Open(KafkaEngineConfig(dir.path()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  KafkaConfig c = config_;
  c.topic = "three";
  auto source = KafkaSource::Start(engine->get(), c);
  ASSERT_FALSE(source.ok());
  EXPECT_NE(source.status().message().find("has 3 partitions but the data directory has 4"),
            std::string::npos)
      << source.status();
  c.topic = "missing";
  source = KafkaSource::Start(engine->get(), c);
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound) << source.status();
}

TEST_F(KafkaSourceTest, RefusesADataDirectoryWithPersonasOwnRouting) {
  TempDir dir("kafka_routing");
  EngineConfig cfg = KafkaEngineConfig(dir.path());
  cfg.kafka_routing = false;
  {
    auto engine = Engine::Open(cfg);
    ASSERT_TRUE(engine.ok()) << engine.status();
    (*engine)->Ingest(testing_util::BatchFromJson(MakeEvents(1, 1, 5)[0].second + "\n"));
    auto source = KafkaSource::Start(engine->get(), config_);
    EXPECT_EQ(source.status().code(), absl::StatusCode::kFailedPrecondition) << source.status();
  }
  cfg.kafka_routing = true;  // an existing directory cannot change its routing
  auto engine = Engine::Open(cfg);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition) << engine.status();
}

TEST_F(KafkaSourceTest, BrokerOutageAndFailedRequestsLoseNothingAndApplyNothingTwice) {
  const auto first = MakeEvents(3000, 200, 7);
  const auto second = MakeEvents(3000, 200, 8, 1700100000000);
  Produce(first);
  Count(first);
  TempDir dir("kafka_faults");
  EngineConfig cfg = KafkaEngineConfig(dir.path());
  cfg.dedup_window_ms = 0;  // a message applied twice would show: only the offsets keep it exact
  cfg.dedup_recent_events = 0;
  auto engine = Engine::Open(cfg);
  ASSERT_TRUE(engine.ok()) << engine.status();
  KafkaConfig c = config_;
  c.max_batch_events = 50;
  c.commit_interval = std::chrono::milliseconds(100);
  // Fetches fail (a leader change, then dropped connections) and offset commits time out while
  // the first half is consumed.
  cluster_->FailRequests(/*Fetch=*/1, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
  cluster_->FailRequests(/*Fetch=*/1, 2, RD_KAFKA_RESP_ERR__TRANSPORT);
  cluster_->FailRequests(/*OffsetCommit=*/8, 2, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  auto source = KafkaSource::Start(engine->get(), c);
  ASSERT_TRUE(source.ok()) << source.status();
  WaitApplied(**engine, ends_);
  // The only broker goes away; the second half is produced meanwhile (the idempotent producer
  // retries) and arrives once the broker is back.
  ASSERT_TRUE(cluster_->SetBrokerUp(1, false).ok());
  for (const auto& [key, value] : second) ASSERT_TRUE(producer_->Produce(kTopic, key, value).ok());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(cluster_->SetBrokerUp(1, true).ok());
  ASSERT_TRUE(producer_->Flush(std::chrono::seconds(60)).ok());
  Count(second);
  WaitApplied(**engine, ends_);
  (*source)->Stop();
  uint64_t accepted = 0;
  for (const PartitionStats& p : (*engine)->Stats()) accepted += p.accepted;
  auto all = first;
  all.insert(all.end(), second.begin(), second.end());
  EXPECT_EQ(accepted, all.size());
  ExpectSameProfiles(Direct(all), Profiles(**engine));
}

// Two instances of one group split the partitions; when one leaves, the other takes its
// partitions over and rebuilds them from the topic (it has no state of theirs): the union of what
// the instances own equals a direct ingest.
TEST_F(KafkaSourceTest, AGroupSplitsPartitionsAndMovesThemWhenAnInstanceLeaves) {
  const auto events = MakeEvents(2000, 120, 6);
  Produce(events);
  Count(events);
  TempDir dir_a("kafka_group_a"), dir_b("kafka_group_b");
  auto a = Engine::Open(KafkaEngineConfig(dir_a.path()));
  auto b = Engine::Open(KafkaEngineConfig(dir_b.path()));
  ASSERT_TRUE(a.ok() && b.ok());
  auto source_a = KafkaSource::Start(a->get(), config_);
  auto source_b = KafkaSource::Start(b->get(), config_);
  ASSERT_TRUE(source_a.ok() && source_b.ok());
  // Both members own partitions once the group settles, and together they apply everything.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto owned = [](const KafkaSource& s) {
    int n = 0;
    for (const auto& p : s.Status().partitions) n += p.assigned;
    return n;
  };
  for (;;) {
    bool done = owned(**source_a) + owned(**source_b) == static_cast<int>(kPartitions) &&
                owned(**source_a) > 0 && owned(**source_b) > 0;
    for (uint32_t p = 0; p < kPartitions && done; ++p) {
      done = std::max((*a)->SourceOffset(p), (*b)->SourceOffset(p)) >= ends_[p];
    }
    if (done) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the group did not settle";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ((*source_a)->Status().messages + (*source_b)->Status().messages, events.size());
  // B leaves: A gets every partition and consumes B's from the beginning.
  (*source_b)->Stop();
  WaitApplied(**a, ends_);
  (*source_a)->Stop();
  ExpectSameProfiles(Direct(events), Profiles(**a));
}

// Producers built on librdkafka partition by CRC-32 by default (consistent_random): a data
// directory created with kafka_partitioner = "crc32" routes users the same way and applies every
// message, while one routing by murmur2 dead-letters the messages that landed elsewhere. A
// directory keeps its partitioner for life.
TEST_F(KafkaSourceTest, Crc32PartitionerMatchesLibrdkafkasConsistentPartitioner) {
  auto crc_producer =
      KafkaProducer::Create(config_.brokers, {{"partitioner", "consistent_random"}});
  ASSERT_TRUE(crc_producer.ok()) << crc_producer.status();
  const auto events = MakeEvents(2000, 100, 11);
  std::vector<int64_t> ends(kPartitions, 0);
  size_t moved = 0;
  for (const auto& [key, value] : events) {
    ASSERT_TRUE((*crc_producer)->Produce(kTopic, key, value).ok());
    ++ends[KafkaCrc32PartitionOf(key, kPartitions)];
    moved += KafkaCrc32PartitionOf(key, kPartitions) != KafkaPartitionOf(key, kPartitions);
  }
  ASSERT_TRUE((*crc_producer)->Flush(std::chrono::seconds(30)).ok());
  ASSERT_GT(moved, 0u) << "the two partitioners must disagree on some users for this test";

  TempDir dir("kafka_crc32");
  EngineConfig cfg = KafkaEngineConfig(dir.path());
  cfg.kafka_partitioner = "crc32";
  {
    auto engine = Engine::Open(cfg);
    ASSERT_TRUE(engine.ok()) << engine.status();
    auto source = KafkaSource::Start(engine->get(), config_);
    ASSERT_TRUE(source.ok()) << source.status();
    WaitApplied(**engine, ends);
    const KafkaSourceStatus st = (*source)->Status();
    EXPECT_EQ(st.dead_letters, 0u);
    EXPECT_EQ(st.events, events.size());
    (*source)->Stop();
    ASSERT_TRUE((*engine)->Close().ok());
  }
  // The directory keeps crc32: asking for murmur2 is refused, naming both.
  cfg.kafka_partitioner = "murmur2";
  auto reopened = Engine::Open(cfg);
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.status().message().find("crc32"), std::string::npos) << reopened.status();

  // A murmur2 directory on the same messages keeps the misrouted ones as dead letters.
  TempDir other("kafka_murmur_on_crc");
  auto engine = Engine::Open(KafkaEngineConfig(other.path()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  config_.group += "-murmur";
  auto source = KafkaSource::Start(engine->get(), config_);
  ASSERT_TRUE(source.ok()) << source.status();
  WaitApplied(**engine, ends);
  EXPECT_GT((*source)->Status().dead_letters, 0u);
  (*source)->Stop();
  ASSERT_TRUE((*engine)->Close().ok());
}

}  // namespace
}  // namespace persona
