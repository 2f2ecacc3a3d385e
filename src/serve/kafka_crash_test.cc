// Exactly-once consumption of a Kafka topic by the real binary across SIGKILLs. A generated stream
// (with bots) is produced to a topic of librdkafka's mock cluster (real Kafka protocol, in this
// test process), keyed by user_id. One `persona serve --kafka-brokers` consumes it without
// interruption; another, in its own consumer group, is killed with SIGKILL at random moments while
// it consumes and restarted until it is caught up. Then both must hold the same state: every
// profile (including signals), trending, and every event counted once (no duplicate, no loss).
// /readyz must say 503 while the backlog is being consumed and 200 once it is complete.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "kafka/kafka_mock_cluster.h"
#include "kafka/kafka_producer.h"
#include "serve/testing/http_client.h"
#include "serve/testing/json_doc.h"
#include "serve/testing/server_process.h"

namespace persona::serve {
namespace {

using testing_util::HttpClient;
using testing_util::Json;
using testing_util::RunPersona;
using testing_util::ScopedTempDir;
using testing_util::ServerProcess;

constexpr char kTopic[] = "shop-events";

std::string Get(HttpClient& client, const std::string& target, int* status = nullptr) {
  auto r = client.Request("GET", target, "");
  if (!r.ok()) return "";
  if (status != nullptr) *status = r->status;
  return r->body;
}

// Sum over partitions of "accepted" and "duplicates" in /v1/stats.
std::pair<int64_t, int64_t> Counts(HttpClient& client) {
  Json stats(Get(client, "/v1/stats"));
  int64_t accepted = 0, duplicates = 0;
  for (int64_t i = 0; i < stats.ArraySize("/per_partition"); ++i) {
    accepted += stats.Int("/per_partition/" + std::to_string(i) + "/accepted").value_or(0);
    duplicates += stats.Int("/per_partition/" + std::to_string(i) + "/duplicates").value_or(0);
  }
  return {accepted, duplicates};
}

// A one-broker mock cluster with the events topic and `sink_topic` (2 partitions each), and a
// server consuming it with `kafka_keys` in its [kafka] table (and a 5 ms fetch wait: the mock never
// ends a waiting fetch).
struct SinkSetup {
  std::unique_ptr<KafkaMockCluster> cluster;
  std::unique_ptr<ServerProcess> server;
  std::string brokers;
};
absl::StatusOr<SinkSetup> StartWithSink(ScopedTempDir& dir, const std::string& sink_topic,
                                        const std::string& kafka_keys) {
  SinkSetup out;
  auto cluster = KafkaMockCluster::Start(1);
  if (!cluster.ok()) return cluster.status();
  out.cluster = std::move(*cluster);
  for (const std::string& topic : {std::string(kTopic), sink_topic}) {
    if (absl::Status s = out.cluster->CreateTopic(topic, 2); !s.ok()) return s;
  }
  out.brokers = out.cluster->bootstrap();
  testing_util::ServerOptions options;
  options.data_dir = dir.File("data");
  options.config_file = dir.File("persona.toml");
  {
    std::ofstream file(options.config_file);
    file << "[server]\naccess_log = \"\"\n[kafka]\n"
         << kafka_keys << "[kafka.client]\n\"fetch.wait.max.ms\" = 5\n";
  }
  options.extra_args = {"--quiet", "--kafka-brokers", out.brokers, "--kafka-topic", kTopic};
  auto server = ServerProcess::Start(options);
  if (!server.ok()) return server.status();
  out.server = std::move(*server);
  return out;
}

// Every message of `topic` so far as (key, value), read by kcat as a downstream tool would.
std::vector<std::pair<std::string, std::string>> ReadTopic(ScopedTempDir& dir,
                                                           const std::string& brokers,
                                                           const std::string& topic) {
  const std::string out = dir.File(topic + ".txt");
  const std::string cmd = "kcat -C -b " + brokers + " -t " + topic +
                          " -o beginning -e -q -f '%k\\t%s\\n' > " + out + " 2>/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<std::pair<std::string, std::string>> messages;
  std::ifstream in(out);
  for (std::string line; std::getline(in, line);) {
    const size_t tab = line.find('\t');
    EXPECT_NE(tab, std::string::npos) << line;
    if (tab != std::string::npos) messages.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return messages;
}

// `persona serve` consuming kTopic at `brokers` as a member of `group`, with the config file
// `config` and its data in `data`; null (after a test failure) when it did not start.
std::unique_ptr<ServerProcess> StartConsumer(const std::string& brokers, const std::string& config,
                                             const std::string& data, const std::string& group) {
  testing_util::ServerOptions options;
  options.data_dir = data;
  options.config_file = config;
  options.extra_args = {"--quiet", "--kafka-brokers", brokers, "--kafka-topic",
                        kTopic,    "--kafka-group",   group};
  auto s = ServerProcess::Start(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

bool Ready(HttpClient& client) {
  int status = 0;
  Get(client, "/readyz", &status);
  return status == 200;
}

TEST(KafkaCrashTest, SigkillWhileConsumingLeavesTheStateOfAnUncrashedConsumer) {
  ScopedTempDir dir("persona-kafka-crash");
  const std::string stream = dir.File("events.jsonl");
  const size_t events = 20000;
  auto gen =
      RunPersona({"gen", "--events", std::to_string(events), "--users", "400", "--items", "3000",
                  "--bot-fraction", "0.02", "--seed", "5", "--out", stream, "--quiet"});
  ASSERT_TRUE(gen.ok() && gen->exit.code == 0) << (gen.ok() ? gen->output : "");
  auto cluster = KafkaMockCluster::Start(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic(kTopic, 2).ok());
  const std::string brokers = (*cluster)->bootstrap();
  std::set<std::string> users;
  {
    auto producer = KafkaProducer::Create(brokers);
    ASSERT_TRUE(producer.ok()) << producer.status();
    std::ifstream in(stream);
    for (std::string line; std::getline(in, line);) {
      const std::string user = *Json(line).Str("/user_id");
      users.insert(user);
      ASSERT_TRUE((*producer)->Produce(kTopic, user, line).ok());
    }
    ASSERT_TRUE((*producer)->Flush(std::chrono::seconds(60)).ok());
  }
  const std::string config = dir.File("persona.toml");
  {
    std::ofstream out(config);
    // De-duplication off: a message delivered twice would be applied twice, so only the offsets
    // stored with the events can make the state exact.
    out << "sync = \"always\"\ncheckpoint_every_events = 4000\n"
        << "dedup_window = \"0s\"\ndedup_recent_events = 0\n"
        << "[server]\naccess_log = \"\"\n"
        << "[kafka]\nmax_batch_events = 100\n"
        << "[kafka.client]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 500\n";
  }
  auto start = [&](const std::string& data, const std::string& group) {
    return StartConsumer(brokers, config, data, group);
  };
  auto wait_ready = [&](ServerProcess& server, std::chrono::seconds limit) {
    HttpClient client = server.Client();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!Ready(client)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  };
  auto snapshot = [&](HttpClient& client) {
    std::map<std::string, std::string> out;
    for (const std::string& u : users) out[u] = Get(client, "/v1/users/" + u + "/profile");
    out["trending"] = Get(client, "/v1/trending?k=40");
    return out;
  };

  // Reference: one consumer that never crashes. /readyz is 503 while it works off the backlog.
  std::map<std::string, std::string> expected;
  {
    auto server = start(dir.File("ref"), "ref");
    ASSERT_NE(server, nullptr);
    HttpClient client = server->Client();
    int first_status = 0;
    Get(client, "/readyz", &first_status);
    ASSERT_TRUE(wait_ready(*server, std::chrono::seconds(120))) << server->OutputTail();
    auto [accepted, duplicates] = Counts(client);
    ASSERT_EQ(accepted, static_cast<int64_t>(events)) << "ready before the backlog was consumed";
    EXPECT_EQ(duplicates, 0);
    EXPECT_EQ(first_status, 503) << "ready before consuming anything";
    Json stats(Get(client, "/v1/stats"));
    EXPECT_EQ(stats.Int("/kafka/lag"), 0);
    EXPECT_EQ(stats.Bool("/kafka/caught_up"), true);
    const std::string metrics = Get(client, "/metrics");
    EXPECT_NE(metrics.find("persona_kafka_lag{partition=\"0\"} 0"), std::string::npos);
    expected = snapshot(client);
    server->Terminate(SIGTERM);
    ASSERT_TRUE(server->WaitExit(std::chrono::seconds(60)).ok());
  }

  // Crash runs: kill -9 at a random moment after consumption started, restart, until caught up.
  std::mt19937_64 rng(20261207);
  const std::string crash_data = dir.File("crash");
  int kills = 0;
  for (int run = 0;; ++run) {
    ASSERT_LT(run, 40) << "never caught up";
    auto server = start(crash_data, "crash");
    ASSERT_NE(server, nullptr);
    HttpClient client = server->Client();
    const int64_t before = Counts(client).first;
    if (before >= static_cast<int64_t>(events) || kills >= 8) {
      ASSERT_TRUE(wait_ready(*server, std::chrono::seconds(120))) << server->OutputTail();
      auto [accepted, duplicates] = Counts(client);
      EXPECT_EQ(accepted, static_cast<int64_t>(events));
      EXPECT_EQ(duplicates, 0) << "a message was applied twice";
      // The offsets stored with the events: one message per event and no dead letters, so the
      // next offsets add up to the events applied, neither more nor fewer.
      Json stats(Get(client, "/v1/stats"));
      int64_t next = 0;
      for (int64_t i = 0; i < stats.ArraySize("/kafka/partitions"); ++i) {
        next += stats.Int("/kafka/partitions/" + std::to_string(i) + "/next_offset").value_or(0);
      }
      EXPECT_EQ(next, static_cast<int64_t>(events));
      const auto got = snapshot(client);
      ASSERT_EQ(got.size(), expected.size());
      for (const auto& [key, value] : expected) {
        EXPECT_TRUE(got.at(key) == value) << key << " differs after " << kills << " kills";
      }
      break;
    }
    // Wait for consumption to start, then kill at a random moment.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (Counts(client).first == before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Soon after consumption started: a fetch brings thousands of messages at once, and a slow
    // (sanitizer) build must still be killed several times before the stream is consumed.
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
    server->Terminate(SIGKILL);
    ASSERT_TRUE(server->WaitExit(std::chrono::seconds(30)).ok());
    ++kills;
  }
  EXPECT_GE(kills, 3);
}

// The changelog (kafka/changelog.h): an instance with an empty data directory that gets the
// partitions restores them from the changelog topic, consuming none of the events topic's backlog,
// and then continues with new messages to exactly the state of a consumer that read everything.
TEST(KafkaChangelogTest, AMovedPartitionIsRestoredFromTheChangelogAndContinuesExactly) {
  ScopedTempDir dir("persona-kafka-changelog");
  const std::string stream = dir.File("events.jsonl");
  const size_t events = 12000, later = 1500;
  auto gen = RunPersona({"gen", "--events", std::to_string(events + later), "--users", "300",
                         "--items", "2000", "--seed", "11", "--out", stream, "--quiet"});
  ASSERT_TRUE(gen.ok() && gen->exit.code == 0) << (gen.ok() ? gen->output : "");
  auto cluster = KafkaMockCluster::Start(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic(kTopic, 2).ok());
  ASSERT_TRUE((*cluster)->CreateTopic("shop-changelog", 2).ok());
  const std::string brokers = (*cluster)->bootstrap();
  std::vector<std::pair<std::string, std::string>> messages;
  std::set<std::string> users;
  {
    std::ifstream in(stream);
    for (std::string line; std::getline(in, line);) {
      messages.emplace_back(*Json(line).Str("/user_id"), line);
      users.insert(messages.back().first);
    }
  }
  auto produce = [&](size_t from, size_t to) {
    auto producer = KafkaProducer::Create(brokers);
    ASSERT_TRUE(producer.ok()) << producer.status();
    for (size_t i = from; i < to; ++i) {
      ASSERT_TRUE((*producer)->Produce(kTopic, messages[i].first, messages[i].second).ok());
    }
    ASSERT_TRUE((*producer)->Flush(std::chrono::seconds(60)).ok());
  };
  const std::string config = dir.File("persona.toml");
  {
    std::ofstream out(config);
    out << "checkpoint_every_events = 3000\n[server]\naccess_log = \"\"\n"
        << "[kafka]\ncluster = false\n"
        << "[kafka.client]\n\"fetch.wait.max.ms\" = 5\n\"session.timeout.ms\" = 6000\n"
        << "\"heartbeat.interval.ms\" = 500\n";
  }
  auto start = [&](const std::string& data, const std::string& group) {
    return StartConsumer(brokers, config, data, group);
  };
  auto applied = [&](HttpClient& client, int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!Ready(client) || Counts(client).first < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  };
  auto snapshot = [&](HttpClient& client) {
    std::map<std::string, std::string> out;
    for (const std::string& u : users) out[u] = Get(client, "/v1/users/" + u + "/profile");
    out["trending"] = Get(client, "/v1/trending?k=40");
    return out;
  };
  produce(0, events);
  // A user erased on the first owner (none of their events come later): the restored state must
  // not have them (the changelog carries a tombstone).
  std::string erased;
  std::set<std::string> later_users;
  for (size_t i = events; i < events + later; ++i) later_users.insert(messages[i].first);
  auto erase = [&](HttpClient& client, const char* where) {
    auto r = client.Request("DELETE", "/v1/users/" + erased, "");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << where << ": " << r->Describe();
  };

  // The first owner consumes the backlog and, stopping, publishes its last checkpoint.
  {
    auto first = start(dir.File("first"), "shop");
    ASSERT_NE(first, nullptr);
    HttpClient client = first->Client();
    ASSERT_TRUE(applied(client, events)) << first->OutputTail();
    for (const std::string& u : users) {
      int status = 0;
      Get(client, "/v1/users/" + u + "/profile", &status);
      if (status == 200 && !later_users.contains(u)) {
        erased = u;
        break;
      }
    }
    ASSERT_FALSE(erased.empty());
    erase(client, "first owner");
    Json stats(Get(client, "/v1/stats"));
    EXPECT_GE(stats.Int("/changelog/transactions").value_or(0), 1) << stats.text();
    EXPECT_EQ(stats.Int("/changelog/failures"), 0) << stats.text();
    first->Terminate(SIGTERM);
    ASSERT_TRUE(first->WaitExit(std::chrono::seconds(60)).ok());
  }
  // A new machine in the same group: both partitions come from the changelog.
  auto second = start(dir.File("second"), "shop");
  ASSERT_NE(second, nullptr);
  HttpClient client = second->Client();
  ASSERT_TRUE(applied(client, events)) << second->OutputTail();
  {
    Json stats(Get(client, "/v1/stats"));
    EXPECT_EQ(stats.Int("/changelog/restores"), 2) << stats.text();
    EXPECT_EQ(stats.Int("/kafka/messages"), 0) << "re-consumed the events topic: " << stats.text();
    EXPECT_EQ(stats.Int("/kafka/lag"), 0) << stats.text();
    int status = 0;
    Get(client, "/v1/users/" + erased + "/profile", &status);
    EXPECT_EQ(status, 404) << erased << " came back from the changelog";
  }
  // New messages continue from the restored offsets.
  produce(events, events + later);
  ASSERT_TRUE(applied(client, events + later)) << second->OutputTail();
  const auto got = snapshot(client);
  {
    Json stats(Get(client, "/v1/stats"));
    EXPECT_EQ(stats.Int("/kafka/messages"), static_cast<int64_t>(later)) << stats.text();
  }
  // Reference: a consumer that read every message itself (its group's changelog topic,
  // "reference-changelog", does not exist: it runs without one).
  auto reference = start(dir.File("reference"), "reference");
  ASSERT_NE(reference, nullptr);
  HttpClient ref_client = reference->Client();
  ASSERT_TRUE(applied(ref_client, events + later)) << reference->OutputTail();
  {
    Json stats(Get(ref_client, "/v1/stats"));
    EXPECT_EQ(stats.Int("/kafka/messages"), static_cast<int64_t>(events + later)) << stats.text();
  }
  erase(ref_client, "reference");
  const auto expected = snapshot(ref_client);
  for (const auto& [key, value] : expected) {
    EXPECT_TRUE(got.at(key) == value) << key << " differs from the reference:\n"
                                      << got.at(key) << "\n"
                                      << value;
  }
}

// Profile-change notifications ([kafka] profile_topic): every changed profile is published keyed
// by user_id; the last notification of each user carries the profile as the server holds it.
TEST(KafkaProfileChangesTest, ChangedProfilesArriveOnTheProfileTopic) {
  if (std::system("command -v kcat >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "kcat is not installed (scripts/setup.sh installs it)";
  }
  ScopedTempDir dir("persona-kafka-profiles");
  auto setup =
      StartWithSink(dir, "profile-changes",
                    "profile_topic = \"profile-changes\"\nprofile_fields = \"stats,tags\"\n");
  ASSERT_TRUE(setup.ok()) << setup.status();
  const std::string& brokers = setup->brokers;
  std::map<std::string, int64_t> events_of;
  {
    auto producer = KafkaProducer::Create(brokers);
    ASSERT_TRUE(producer.ok());
    for (int i = 0; i < 200; ++i) {
      const std::string user = "p" + std::to_string(i % 25);
      ++events_of[user];
      const std::string event = "{\"user_id\":\"" + user + "\",\"type\":\"view\",\"ts\":" +
                                std::to_string(1700000000000 + i * 1000) + ",\"item_id\":\"i" +
                                std::to_string(i % 9) + "\"}";
      ASSERT_TRUE((*producer)->Produce(kTopic, user, event).ok());
    }
    ASSERT_TRUE((*producer)->Flush(std::chrono::seconds(30)).ok());
  }
  std::map<std::string, int64_t> last;  // user -> stats.events of its newest notification
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (last != events_of && std::chrono::steady_clock::now() < deadline) {
    last.clear();
    for (const auto& [user, value] : ReadTopic(dir, brokers, "profile-changes")) {
      Json profile(value);
      ASSERT_TRUE(profile.ok()) << value;
      EXPECT_EQ(profile.Str("/user_id"), user) << "keyed by user_id: " << value;
      EXPECT_TRUE(profile.Int("/changed_at_ms").has_value()) << value;
      int64_t& n = last[user];
      n = std::max(n, profile.Int("/stats/events").value_or(-1));
    }
    if (last != events_of) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(last, events_of);
}
// Produce errors on the HTTP path: brokers refusing produce requests with a retriable error
// (NOT_ENOUGH_REPLICAS) cost a retry but neither an event nor a duplicate (idempotent producer);
// a permanent error (TOPIC_AUTHORIZATION_FAILED) answers 503 with the reason, and sending the same
// events again once it clears applies each exactly once (event_id de-duplication).
TEST(KafkaHttpIngestTest, ProduceErrorsAreRetriedOrReportedAndNeverDuplicate) {
  ScopedTempDir dir("persona-kafka-produce-errors");
  auto setup = StartWithSink(dir, "unused-sink", "");  // no sink configured: the topic idles
  ASSERT_TRUE(setup.ok()) << setup.status();
  auto& cluster = setup->cluster;
  auto& server = setup->server;
  HttpClient client = server->Client();
  const testing_util::HeaderList ndjson = {{"Content-Type", "application/x-ndjson"}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!Ready(client)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << server->OutputTail();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto body = [](int round) {
    std::string out;
    for (int i = 0; i < 20; ++i) {
      out += "{\"event_id\":\"r" + std::to_string(round) + "-" + std::to_string(i) +
             "\",\"user_id\":\"q" + std::to_string(i) +
             "\",\"type\":\"view\",\"ts\":" + std::to_string(1700000000000 + round * 100000 + i) +
             ",\"item_id\":\"i" + std::to_string(round) + "\"}\n";
    }
    return out;
  };
  auto views = [&](int user) {
    return Json(Get(client, "/v1/users/q" + std::to_string(user) + "/profile"))
        .Int("/stats/counts/view")
        .value_or(0);
  };
  // Retriable: the producer retries and every event lands once.
  cluster->FailRequests(0, 3, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  auto r = client.Request("POST", "/v1/events?wait=applied", body(0), ndjson);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(Json(r->body).Int("/produced"), 20);
  EXPECT_EQ(Json(r->body).Bool("/applied"), true);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(views(i), 1) << "q" << i << " after retried produces";
  // Permanent: the request is answered 503 with the broker's reason.
  cluster->FailRequests(0, 50, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  r = client.Request("POST", "/v1/events?wait=applied", body(1), ndjson);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503) << r->Describe();
  EXPECT_NE(r->body.find("uthoriz"), std::string::npos) << r->body;
  // Once the brokers accept again, the client's retry of the same events applies each once.
  cluster->ClearFailures(0);
  const auto retry_until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    r = client.Request("POST", "/v1/events?wait=applied", body(1), ndjson);
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->status == 200) break;
    ASSERT_LT(std::chrono::steady_clock::now(), retry_until) << r->Describe();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(Json(r->body).Bool("/applied"), true);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(views(i), 2) << "q" << i << " after the retried request";
}

}  // namespace
}  // namespace persona::serve

namespace persona::serve {
namespace {

// A saved audience's enter changes arrive on the sink topic ([kafka] audience_topic), one message
// per member, keyed by user_id, read back by kcat as a downstream campaign tool would.
TEST(KafkaAudienceSinkTest, EnterChangesOfASavedAudienceArriveOnTheSinkTopic) {
  if (std::system("command -v kcat >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "kcat is not installed (scripts/setup.sh installs it)";
  }
  ScopedTempDir dir("persona-kafka-sink");
  auto setup = StartWithSink(dir, "audience-changes", "audience_topic = \"audience-changes\"\n");
  ASSERT_TRUE(setup.ok()) << setup.status();
  const std::string& brokers = setup->brokers;
  auto& server = setup->server;
  HttpClient client = server->Client();
  auto created = client.Request("POST", "/v1/audiences",
                                R"({"id":"carters","name":"carters","condition":"carts >= 1"})");
  ASSERT_TRUE(created.ok() && (created->status == 200 || created->status == 201))
      << (created.ok() ? created->Describe() : std::string(created.status().message()));
  // Events after the audience exists: every user who carts enters it.
  std::set<std::string> carters;
  {
    auto producer = KafkaProducer::Create(brokers);
    ASSERT_TRUE(producer.ok());
    for (int i = 0; i < 300; ++i) {
      const std::string user = "u" + std::to_string(i % 60);
      const char* type = i % 7 == 0 ? "cart" : "view";
      if (i % 7 == 0) carters.insert(user);
      const std::string event = "{\"user_id\":\"" + user + "\",\"type\":\"" + type +
                                "\",\"ts\":" + std::to_string(1700000000000 + i * 1000) +
                                ",\"item_id\":\"i" + std::to_string(i % 13) + "\"}";
      ASSERT_TRUE((*producer)->Produce(kTopic, user, event).ok());
    }
    ASSERT_TRUE((*producer)->Flush(std::chrono::seconds(30)).ok());
  }
  // Read the sink topic until every carter's enter change is there.
  std::set<std::string> entered;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (entered.size() < carters.size() && std::chrono::steady_clock::now() < deadline) {
    entered.clear();
    for (const auto& [user, value] : ReadTopic(dir, brokers, "audience-changes")) {
      Json change(value);
      EXPECT_EQ(change.Str("/audience"), "carters") << value;
      EXPECT_EQ(change.Str("/change"), "enter") << value;
      EXPECT_EQ(change.Str("/user_id"), user) << "keyed by user_id: " << value;
      entered.insert(user);
    }
    if (entered.size() < carters.size())
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(entered, carters);
}

}  // namespace
}  // namespace persona::serve

namespace persona::serve {
namespace {

// On a Kafka-fed service, POST /v1/events produces to the topic; ?wait=applied answers once this
// instance (the owner of every partition here) applied the events: read-your-writes holds.
TEST(KafkaHttpIngestTest, PostProducesToTheTopicAndWaitAppliedGivesReadYourWrites) {
  ScopedTempDir dir("persona-kafka-post");
  auto cluster = KafkaMockCluster::Start(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic(kTopic, 2).ok());
  testing_util::ServerOptions options;
  options.data_dir = dir.File("data");
  options.config_file = dir.File("persona.toml");
  {
    std::ofstream out(options.config_file);
    out << "[server]\naccess_log = \"\"\n[kafka.client]\n\"fetch.wait.max.ms\" = 5\n";
  }
  options.extra_args = {"--quiet", "--kafka-brokers", (*cluster)->bootstrap(), "--kafka-topic",
                        kTopic};
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  HttpClient client = (*server)->Client();
  const testing_util::HeaderList ndjson = {{"Content-Type", "application/x-ndjson"}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!Ready(client)) {  // the group assigned the partitions
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << (*server)->OutputTail();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int round = 0; round < 5; ++round) {
    std::string body;
    for (int i = 0; i < 20; ++i) {
      body += "{\"user_id\":\"p" + std::to_string(i) +
              "\",\"type\":\"view\",\"ts\":" + std::to_string(1700000000000 + round * 100000 + i) +
              ",\"item_id\":\"i" + std::to_string(round) + "\"}\n";
    }
    body += "{\"user_id\":\"p0\",\"type\":\"teleport\",\"ts\":1}\n";  // rejected, not produced
    auto r = client.Request("POST", "/v1/events?wait=applied", body, ndjson);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 207) << r->Describe();
    Json answer(r->body);
    EXPECT_EQ(answer.Int("/produced"), 20);
    EXPECT_EQ(answer.Bool("/applied"), true);
    EXPECT_EQ(answer.ArraySize("/rejected"), 1);
    // Read-your-writes: every user already shows this round's view.
    for (int i = 0; i < 20; ++i) {
      Json profile(Get(client, "/v1/users/p" + std::to_string(i) + "/profile"));
      EXPECT_EQ(profile.Int("/stats/counts/view"), round + 1) << "p" << i << " round " << round;
    }
  }
  Json stats(Get(client, "/v1/stats"));
  EXPECT_EQ(stats.Int("/kafka/messages"), 100) << "the events came back through the topic";
  auto bad = client.Request("POST", "/v1/events?wait=soon", "{}", ndjson);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace persona::serve
