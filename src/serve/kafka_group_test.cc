// Scale-out over a consumer group, against the real binary and an external producer: kcat writes a
// generated stream (key = user_id, murmur2) to a 6-partition topic of a 3-broker mock cluster;
// three `persona serve` instances in one group share the partitions; one is killed with SIGKILL
// mid-stream and its partitions move to the other two, which rebuild them from the topic. Then
// every user's applied events and event-derived profile, read through the instance that does NOT
// own the user's partition (it forwards to the owner), equal those of a single instance that
// consumed the same messages alone, and so do trending and item-CF on every member (each combines
// the other's partitions through the cluster topic). De-duplication is off, so a message applied
// twice (or lost) would show. Writes through any member with ?wait=applied are read back at once.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "common/hash.h"
#include "kafka/kafka_mock_cluster.h"
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
constexpr int kPartitions = 6;

std::string Get(HttpClient& client, const std::string& target) {
  auto r = client.Request("GET", target, "");
  return r.ok() && r->status == 200 ? r->body : "";
}

// What of a user's state does not depend on the reading instance's "now" (its watermark is the
// newest event of the partitions it consumed, which differs between instances): the timeline of
// applied events, the event counts, the funnel, the recent sequence and the spend.
// A partition restored from the changelog keeps its timelines from the restore on only (they are
// read from the local log): `with_timeline = false` leaves the timeline out.
std::string EventDerived(HttpClient& client, const std::string& user, bool with_timeline = true) {
  std::string out =
      with_timeline ? Get(client, "/v1/users/" + user + "/timeline?limit=1000") : std::string();
  Json profile(Get(client, "/v1/users/" + user + "/profile"));
  for (const char* part : {"/stats/events", "/stats/counts", "/funnel", "/sequence",
                           "/consumption/orders", "/consumption/monetary", "/sessions/count"}) {
    simdjson::dom::element e;
    out += std::string("\n") + part + " ";
    if (profile.ok() && !profile.root().at_pointer(part).get(e)) out += simdjson::minify(e);
  }
  return out;
}

// A condition query with a fixed seed, and what of its answer one instance holding every
// partition must agree with (count, page of ids, cursor, sample rows with a field).
constexpr char kAudienceQuery[] =
    R"({"condition":"events >= 3","sample":25,"page_size":40,"seed":7,"fields":["events"]})";
std::string AudienceAnswer(const std::string& body) {
  Json doc(body);
  std::string out;
  for (const char* part : {"/count", "/ids", "/next_cursor", "/sample"}) {
    simdjson::dom::element e;
    out += std::string("\n") + part + " ";
    if (doc.ok() && !doc.root().at_pointer(part).get(e)) out += simdjson::minify(e);
  }
  return out;
}

// Condition exports (a page with its cursor, then everything) and what of them must agree.
constexpr const char* kExports[] = {
    "/v1/audiences:export?condition=events%20%3E%3D%203&format=ndjson&fields=events&limit=50",
    "/v1/"
    "audiences:export?condition=events%20%3E%3D%203&format=csv&fields=events,monetary,purchases"};
std::string ExportAnswer(HttpClient& client, const std::string& target) {
  auto r = client.Request("GET", target, "");
  if (!r.ok()) return "no answer";
  std::string out = std::to_string(r->status) + "\n" + r->body;
  for (const auto& [name, value] : r->headers) {
    if (name == "X-Persona-Next-Cursor" || name == "x-persona-next-cursor") out += "\n" + value;
  }
  return out;
}

// A condition report, and what of it must agree with one instance's: the integer statistics
// exactly, the sums to 9 digits (added in another order).
constexpr char kReport[] = R"({"condition":"events >= 3","top":5})";
std::string ReportAnswer(const std::string& body) {
  Json doc(body);
  std::string out;
  for (const char* part : {"/size", "/lifecycle", "/price_tiers", "/segments"}) {
    simdjson::dom::element e;
    out += std::string("\n") + part + " ";
    if (doc.ok() && !doc.root().at_pointer(part).get(e)) out += simdjson::minify(e);
  }
  for (int64_t i = 0; i < doc.ArraySize("/top_categories"); ++i) {
    const std::string at = "/top_categories/" + std::to_string(i);
    out += "\n" + doc.Str(at + "/category").value_or("?") + " " +
           std::to_string(doc.Int(at + "/users").value_or(-1));
  }
  char sum[64];
  std::snprintf(sum, sizeof sum, "\nspend %.9g", doc.Number("/spend/sum").value_or(-1));
  return out + sum;
}

// Partition -> (assigned here, next offset) from an instance's /v1/stats.
std::map<int, std::pair<bool, int64_t>> Ownership(HttpClient& client) {
  Json stats(Get(client, "/v1/stats"));
  std::map<int, std::pair<bool, int64_t>> out;
  for (int64_t i = 0; i < stats.ArraySize("/kafka/partitions"); ++i) {
    const std::string p = "/kafka/partitions/" + std::to_string(i);
    out[static_cast<int>(stats.Int(p + "/partition").value_or(-1))] = {
        stats.Bool(p + "/assigned").value_or(false), stats.Int(p + "/next_offset").value_or(-1)};
  }
  return out;
}

TEST(KafkaGroupTest, ThreeInstancesShareATopicAndAKilledOnesPartitionsMove) {
  if (std::system("command -v kcat >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "kcat is not installed (scripts/setup.sh installs it)";
  }
  ScopedTempDir dir("persona-kafka-group");
  const std::string stream = dir.File("events.jsonl");
  const size_t events = 30000;
  auto gen = RunPersona({"gen", "--events", std::to_string(events), "--users", "600", "--items",
                         "3000", "--seed", "9", "--out", stream, "--quiet"});
  ASSERT_TRUE(gen.ok() && gen->exit.code == 0) << (gen.ok() ? gen->output : "");
  auto cluster = KafkaMockCluster::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic(kTopic, kPartitions).ok());
  // The group's changelog: a moved partition is restored from its last owner's checkpoint.
  ASSERT_TRUE((*cluster)->CreateTopic("group-changelog", kPartitions).ok());
  const std::string brokers = (*cluster)->bootstrap();

  // kcat as the shop's producer: "key<TAB>value" lines, Kafka's murmur2 partitioner.
  std::set<std::string> users;
  std::vector<int64_t> ends(kPartitions, 0);
  {
    const std::string keyed = dir.File("keyed.tsv");
    std::ifstream in(stream);
    std::ofstream out(keyed);
    for (std::string line; std::getline(in, line);) {
      const std::string user = *Json(line).Str("/user_id");
      users.insert(user);
      ++ends[KafkaPartitionOf(user, kPartitions)];
      out << user << '\t' << line << '\n';
    }
    out.close();
    const std::string cmd =
        "kcat -P -b " + brokers + " -t " + kTopic +
        " -l -K '\t' -X partitioner=murmur2_random -X enable.idempotence=true " + keyed + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  const std::string config = dir.File("persona.toml");
  {
    std::ofstream out(config);
    out << "sync = \"always\"\ndedup_window = \"0s\"\ndedup_recent_events = 0\n"
        << "checkpoint_every_events = 300\n"
        << "[server]\naccess_log = \"\"\n"
        << "[kafka]\nmax_batch_events = 100\nshare_interval = \"1s\"\n"
        << "[kafka.client]\n\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 500\n"
        << "\"partition.assignment.strategy\" = \"roundrobin\"\n\"fetch.wait.max.ms\" = 5\n";
  }
  auto start = [&](const std::string& name, const std::string& group) {
    testing_util::ServerOptions options;
    options.data_dir = dir.File(name);
    options.config_file = config;
    options.extra_args = {"--quiet", "--kafka-brokers", brokers, "--kafka-topic",
                          kTopic,    "--kafka-group",   group};
    auto s = ServerProcess::Start(options);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  };
  auto wait_until = [](const std::function<bool()>& done, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  };

  // Reference: one instance consuming everything alone.
  std::map<std::string, std::string> expected, without_timeline, expected_profile;
  std::string expected_trending, expected_similar, top_item, expected_audience;
  std::vector<std::string> expected_exports;
  std::string expected_report;
  {
    auto single = start("single", "single");
    ASSERT_NE(single, nullptr);
    HttpClient client = single->Client();
    ASSERT_TRUE(wait_until(
        [&] {
          auto r = client.Request("GET", "/readyz", "");
          return r.ok() && r->status == 200;
        },
        std::chrono::seconds(120)))
        << single->OutputTail();
    for (const std::string& u : users) {
      expected[u] = EventDerived(client, u);
      without_timeline[u] = EventDerived(client, u, false);
      expected_profile[u] = Get(client, "/v1/users/" + u + "/profile?fields=stats");
    }
    auto q = client.Request("POST", "/v1/audiences:query", kAudienceQuery);
    ASSERT_TRUE(q.ok() && q->status == 200) << (q.ok() ? q->Describe() : "no answer");
    expected_audience = AudienceAnswer(q->body);
    for (const char* target : kExports) expected_exports.push_back(ExportAnswer(client, target));
    auto report = client.Request("POST", "/v1/audiences:report", kReport);
    ASSERT_TRUE(report.ok() && report->status == 200)
        << (report.ok() ? report->Describe() : "no answer");
    expected_report = ReportAnswer(report->body);
    expected_trending = Get(client, "/v1/trending?limit=100");
    top_item = *Json(expected_trending).Str("/items/0/item_id");
    expected_similar = Get(client, "/v1/items/" + top_item + "/similar?limit=50");
    single->Terminate(SIGTERM);
    ASSERT_TRUE(single->WaitExit(std::chrono::seconds(60)).ok());
  }

  // The group: three instances; all own partitions, then one dies mid-stream.
  std::vector<std::unique_ptr<ServerProcess>> members;
  for (const char* name : {"a", "b", "c"}) {
    members.push_back(start(name, "group"));
    ASSERT_NE(members.back(), nullptr);
  }
  auto owned_by = [&](size_t m) {
    HttpClient client = members[m]->Client();
    int n = 0;
    for (const auto& [p, state] : Ownership(client)) n += state.first;
    return n;
  };
  ASSERT_TRUE(wait_until([&] { return owned_by(0) > 0 && owned_by(1) > 0 && owned_by(2) > 0; },
                         std::chrono::seconds(60)))
      << "the group never gave every member partitions";
  {
    HttpClient b = members[1]->Client();
    int64_t applied = 0, total = 0;
    for (const auto& [p, state] : Ownership(b)) {
      if (!state.first) continue;
      applied += std::max<int64_t>(0, state.second);
      total += ends[p];
    }
    EXPECT_LT(applied, total) << "b finished before it was killed: the test needs a slower stream";
  }
  members[1]->Terminate(SIGKILL);
  ASSERT_TRUE(members[1]->WaitExit(std::chrono::seconds(30)).ok());

  // The survivors take b's partitions over and catch up with every partition's end.
  std::map<int, size_t> owner;
  ASSERT_TRUE(wait_until(
      [&] {
        owner.clear();
        for (size_t m : {size_t{0}, size_t{2}}) {
          HttpClient client = members[m]->Client();
          for (const auto& [p, state] : Ownership(client)) {
            if (state.first && state.second >= ends[p]) owner[p] = m;
          }
        }
        return owner.size() == static_cast<size_t>(kPartitions);
      },
      std::chrono::seconds(120)))
      << "the survivors did not take every partition over; a: " << members[0]->OutputTail(1500)
      << "\nc: " << members[2]->OutputTail(1500);
  // b's partitions came from the changelog (its checkpoints every 300 events) where a survivor
  // had no state of them, or from the events topic where it had some.
  std::set<int> restored;
  for (size_t m : {size_t{0}, size_t{2}}) {
    HttpClient client = members[m]->Client();
    Json stats(Get(client, "/v1/stats"));
    for (int64_t i = 0; i < stats.ArraySize("/changelog/restored_partitions"); ++i) {
      restored.insert(static_cast<int>(
          stats.Int("/changelog/restored_partitions/" + std::to_string(i)).value_or(-1)));
    }
    EXPECT_EQ(stats.Int("/changelog/failures"), 0) << stats.text();
    EXPECT_GE(stats.Int("/changelog/transactions").value_or(0), 1) << stats.text();
  }
  // Any instance answers for any user: each user is read through the survivor that does NOT own
  // its partition, which forwards to the owner.
  size_t differing = 0;
  for (const std::string& u : users) {
    const int p = static_cast<int>(KafkaPartitionOf(u, kPartitions));
    const size_t o = owner[p];
    HttpClient client = members[o == 0 ? 2 : 0]->Client();
    const bool whole = !restored.contains(p);
    if (EventDerived(client, u, whole) != (whole ? expected[u] : without_timeline[u]) &&
        ++differing <= 3) {
      ADD_FAILURE() << "events of " << u << " read through the non-owner differ from the single "
                    << "instance's";
    }
  }
  EXPECT_EQ(differing, 0u);

  // A batch read through one member gathers every user from its owner, in request order.
  {
    std::vector<std::string> ordered(users.begin(), users.end());
    ordered.resize(std::min<size_t>(ordered.size(), 500));
    std::string body = "{\"fields\":\"stats\",\"user_ids\":[";
    for (size_t i = 0; i < ordered.size(); ++i) body += (i ? ",\"" : "\"") + ordered[i] + "\"";
    body += ",\"nobody\"]}";
    HttpClient client = members[0]->Client();
    auto r = client.Request("POST", "/v1/profiles:batchGet", body);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->Describe() : "no answer");
    Json batch(r->body);
    ASSERT_EQ(batch.ArraySize("/profiles"), static_cast<int64_t>(ordered.size())) << r->Describe();
    for (size_t i = 0; i < ordered.size(); ++i) {
      const std::string at = "/profiles/" + std::to_string(i);
      ASSERT_EQ(batch.Str(at + "/user_id"), ordered[i]);
      EXPECT_EQ(batch.Int(at + "/stats/events"),
                Json(expected_profile[ordered[i]]).Int("/stats/events"))
          << ordered[i];
    }
    EXPECT_EQ(batch.ArraySize("/not_found"), 1);
  }

  // Audience queries gather every instance's partitions (each scans only those it owns, never a
  // foreign partition's leftovers): the count, the page of ids and the seeded sample through
  // either survivor equal the single instance's, and a forwarded query answers for the
  // instance's own partitions only, which add up to every user once.
  int64_t counted = 0;
  for (size_t m : {size_t{0}, size_t{2}}) {
    HttpClient client = members[m]->Client();
    auto r = client.Request("POST", "/v1/audiences:query", kAudienceQuery);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->Describe() : "no answer");
    EXPECT_EQ(AudienceAnswer(r->body), expected_audience) << "member " << m;
    EXPECT_EQ(Json(r->body).Int("/instances"), 2) << r->body.substr(0, 300);
    auto report = client.Request("POST", "/v1/audiences:report", kReport);
    ASSERT_TRUE(report.ok() && report->status == 200)
        << (report.ok() ? report->Describe() : "no answer");
    EXPECT_EQ(ReportAnswer(report->body), expected_report) << "member " << m;
    EXPECT_EQ(Json(report->body).Int("/instances"), 2);
    for (size_t i = 0; i < std::size(kExports); ++i) {
      EXPECT_EQ(ExportAnswer(client, kExports[i]), expected_exports[i])
          << "member " << m << ": " << kExports[i];
    }
    auto own = client.Request("POST", "/v1/audiences:query", R"({"condition":"events >= 1"})",
                              {{"X-Persona-Forwarded", "1"}});
    ASSERT_TRUE(own.ok() && own->status == 200) << (own.ok() ? own->Describe() : "no answer");
    counted += Json(own->body).Int("/count").value_or(-1);
  }
  EXPECT_EQ(counted, static_cast<int64_t>(users.size()));

  // State spanning users combines both survivors' partitions: trending and item-CF on each equal
  // the single instance's, which saw every partition (shared every second in this test).
  for (size_t m : {size_t{0}, size_t{2}}) {
    HttpClient client = members[m]->Client();
    EXPECT_TRUE(wait_until(
        [&] {
          return Get(client, "/v1/trending?limit=100") == expected_trending &&
                 Get(client, "/v1/items/" + top_item + "/similar?limit=50") == expected_similar;
        },
        std::chrono::seconds(30)))
        << "member " << m << "'s trending or similar items never combined the other's partitions:\n"
        << Get(client, "/v1/trending?limit=5") << "\nexpected\n"
        << expected_trending.substr(0, 400);
  }

  // Any instance takes writes, and ?wait=applied waits for the owner: an event posted to the
  // member that does not own the user is applied by the owner before the answer, and read back
  // through the member it was posted to.
  std::string user;
  size_t writer = 0;
  for (const std::string& u : users) {
    const size_t o = owner[static_cast<int>(KafkaPartitionOf(u, kPartitions))];
    user = u;
    writer = o == 0 ? 2 : 0;
    break;
  }
  HttpClient write_client = members[writer]->Client();
  auto posted = write_client.Request("POST", "/v1/events?wait=applied",
                                     "{\"user_id\":\"" + user +
                                         "\",\"type\":\"view\",\"ts\":1512300000000,"
                                         "\"item_id\":\"posted-elsewhere\"}",
                                     {{"Content-Type", "application/json"}});
  ASSERT_TRUE(posted.ok()) << posted.status();
  ASSERT_EQ(posted->status, 200) << posted->Describe();
  EXPECT_EQ(Json(posted->body).Int("/produced"), 1);
  EXPECT_EQ(Json(posted->body).Bool("/applied"), true) << posted->body;
  EXPECT_NE(Get(write_client, "/v1/users/" + user + "/timeline?limit=5").find("posted-elsewhere"),
            std::string::npos)
      << "read-your-writes through the instance the event was posted to";
  auto direct = write_client.Request("GET", "/v1/users/" + user + "/profile", "");
  ASSERT_TRUE(direct.ok());
  EXPECT_TRUE(direct->HasHeader("X-Persona-Served-By")) << direct->Describe();
}

}  // namespace
}  // namespace persona::serve
