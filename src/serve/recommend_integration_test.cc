// Recommendations end to end against the real binary: `persona train sasrec` trains a tiny model
// on a generated sequence file, `persona serve` serves it next to item-CF and trending learned
// from the events posted here; a new event is reflected by the next call; the model hot-swaps on
// reload while requests keep succeeding; rec_id attribution reaches /metrics and the impressions
// log that `persona eval-online` reads.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "serve/testing/http_client.h"
#include "serve/testing/json_doc.h"
#include "serve/testing/prometheus_text.h"
#include "serve/testing/server_process.h"

namespace persona::serve {
namespace {

using testing_util::HttpClient;
using testing_util::Json;
using testing_util::Response;
using testing_util::RunPersona;
using testing_util::ScopedTempDir;
using testing_util::ServerProcess;

constexpr int64_t kBaseTs = 1763800000000;  // 2025-11-22

std::string View(const std::string& user, const std::string& item, int64_t ts,
                 const std::string& type = "view", const std::string& extra = "") {
  std::string s = "{\"user_id\":\"" + user + "\",\"type\":\"" + type +
                  "\",\"ts\":" + std::to_string(ts) + ",\"item_id\":\"" + item +
                  "\",\"category_path\":\"games.cat" + std::to_string(item.size() % 3) + "\"";
  if (type == "purchase") s += ",\"price\":25,\"quantity\":2";
  if (!extra.empty()) s += "," + extra;
  return s + "}";
}

Response Call(HttpClient& client, const std::string& method, const std::string& target,
              const std::string& body = "") {
  auto r = client.Request(method, target, body);
  EXPECT_TRUE(r.ok()) << method << " " << target << ": " << r.status();
  return r.ok() ? *r : Response{};
}

class RecommendIntegrationTest : public ::testing::Test {
 protected:
  // One trained model shared by the tests of this suite (training is the slow part).
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir("persona-rec");
    // 120 users walking a ring of 30 items (1 -> 2 -> ... -> 30 -> 1) from random starts: a
    // sequential pattern SASRec learns in a few epochs.
    std::ofstream seq(dir_->File("ring.txt"));
    for (int u = 0; u < 120; ++u) {
      seq << "u" << u;
      for (int i = 0; i < 8; ++i) seq << " " << ((u * 7 + i) % 30) + 1;
      seq << "\n";
    }
    seq.close();
    std::filesystem::create_directories(dir_->File("models"));
    auto trained = RunPersona({"train", "sasrec", "--input", dir_->File("ring.txt"), "--out",
                               dir_->File("models/sasrec-ring.psm"), "--epochs", "60", "--patience", "60",
                               "--batch", "32", "--lr", "0.01", "--dropout", "0.1", "--dim", "16",
                               "--max-len", "10",
                               "--threads", "1", "--seed", "7"},
                              std::chrono::minutes(5));
    ASSERT_TRUE(trained.ok()) << trained.status();
    train_output_ = new std::string(trained->output);
    ASSERT_EQ(trained->exit.code, 0) << trained->output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete train_output_;
  }

  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(dir_->File("models/sasrec-ring.psm"))) << *train_output_;
    data_ = std::make_unique<ScopedTempDir>("persona-rec-data");
    const std::string config = data_->File("persona.toml");
    std::ofstream(config) << "partitions = 2\n[recommend]\nmodel_poll_seconds = 0\n";
    testing_util::ServerOptions options;
    options.data_dir = data_->File("db");
    options.config_file = config;
    auto started = ServerProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(*started);
    client_ = server_->Client();
  }

  void Post(const std::vector<std::string>& events) {
    std::string body = "[";
    for (size_t i = 0; i < events.size(); ++i) body += (i ? "," : "") + events[i];
    body += "]";
    Response r = Call(client_, "POST", "/v1/events", body);
    ASSERT_EQ(r.status, 200) << r.Describe();
  }
  // Items u0..u19 view a then b: item-CF pairs (a, b).
  void PlantPairs() {
    std::vector<std::string> events;
    for (int u = 0; u < 20; ++u) {
      events.push_back(View("p" + std::to_string(u), "a", kBaseTs + u * 10));
      events.push_back(View("p" + std::to_string(u), "b", kBaseTs + u * 10 + 1));
    }
    Post(events);
  }
  // Installs the trained artifact in the server's model directory and reloads.
  std::string InstallModel(const std::string& name) {
    const std::string dir = data_->File("db/models/sasrec");
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(dir_->File("models/sasrec-ring.psm"), dir + "/" + name,
                               std::filesystem::copy_options::overwrite_existing);
    Response r = Call(client_, "POST", "/v1/admin/reload");
    EXPECT_EQ(r.status, 200) << r.Describe();
    return Json(r.body).Str("/model_version").value_or("");
  }

  static ScopedTempDir* dir_;
  static std::string* train_output_;
  std::unique_ptr<ScopedTempDir> data_;
  std::unique_ptr<ServerProcess> server_;
  HttpClient client_;
};
ScopedTempDir* RecommendIntegrationTest::dir_ = nullptr;
std::string* RecommendIntegrationTest::train_output_ = nullptr;

TEST_F(RecommendIntegrationTest, ANewEventIsReflectedByTheNextCall) {
  PlantPairs();
  Response r = Call(client_, "GET", "/v1/users/newbie/recommendations?k=3");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json cold(r.body);
  EXPECT_EQ(cold.Bool("/known_user"), false);
  EXPECT_EQ(cold.Bool("/cold_start"), true);
  EXPECT_EQ(cold.Str("/items/0/source"), "trending");

  Post({View("newbie", "a", kBaseTs + 5000)});
  r = Call(client_, "GET", "/v1/users/newbie/recommendations?k=3&source=item_cf");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json warm(r.body);
  EXPECT_EQ(warm.Bool("/cold_start"), false);
  EXPECT_EQ(warm.Str("/items/0/item_id"), "b");
  EXPECT_EQ(warm.Str("/items/0/source"), "item_cf");
  EXPECT_EQ(warm.Str("/items/0/because"), "a");

  r = Call(client_, "GET", "/v1/items/a/similar?k=5");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Json(r.body).Str("/items/0/item_id"), "b");
  r = Call(client_, "GET", "/v1/trending?k=2&category=games");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Json(r.body).ArraySize("/items"), 2);
}

TEST_F(RecommendIntegrationTest, TheTrainedModelServesTheLiveSequenceAfterReload) {
  Response none = Call(client_, "GET", "/v1/users/walker/recommendations?source=sasrec");
  ASSERT_EQ(none.status, 200);
  EXPECT_EQ(Json(none.body).ArraySize("/items"), 0);  // no model yet: the source has nothing

  // The version is the artifact's own (set by `persona train`), whatever the file is called.
  const std::string version = InstallModel("sasrec-20261122T000000Z.psm");
  EXPECT_EQ(version.rfind("sasrec-", 0), 0u) << version << server_->OutputTail();
  // A user walking the ring 3 -> 4 -> 5 -> 6: the model learned that 7 comes next.
  Post({View("walker", "3", kBaseTs), View("walker", "4", kBaseTs + 1),
        View("walker", "5", kBaseTs + 2), View("walker", "6", kBaseTs + 3)});
  Response r = Call(client_, "GET", "/v1/users/walker/recommendations?k=3&source=sasrec");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json j(r.body);
  EXPECT_EQ(j.Str("/model_version"), version);
  EXPECT_EQ(j.Str("/items/0/source"), "sasrec");
  EXPECT_EQ(j.Str("/items/0/item_id"), "7") << r.body;
  // One more step along the ring moves the prediction at once.
  Post({View("walker", "7", kBaseTs + 4)});
  r = Call(client_, "GET", "/v1/users/walker/recommendations?k=3&source=sasrec");
  EXPECT_EQ(Json(r.body).Str("/items/0/item_id"), "8") << r.body;
  // The blend carries the model too.
  r = Call(client_, "GET", "/v1/users/walker/recommendations?k=5");
  EXPECT_EQ(Json(r.body).Str("/items/0/source"), "sasrec") << r.body;
  // Items the model knows but no one co-viewed yet have embedding neighbours.
  r = Call(client_, "GET", "/v1/items/20/similar?k=3");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Json(r.body).ArraySize("/items"), 3);
}

TEST_F(RecommendIntegrationTest, ReloadUnderLoadNeverFailsARequest) {
  Post({View("loaded", "1", kBaseTs), View("loaded", "2", kBaseTs + 1)});
  const std::string version = InstallModel("sasrec-20261122T000000Z.psm");
  ASSERT_FALSE(version.empty());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread reader([&] {
    HttpClient c = server_->Client();
    while (!stop.load()) {
      auto r = c.Request("GET", "/v1/users/loaded/recommendations?k=5");
      if (r.ok() && r->status == 200 && Json(r->body).ArraySize("/items") == 5) {
        ok++;
      } else {
        failed++;
      }
    }
  });
  // Newer artifact files (by name) are swapped in one after the other.
  for (int i = 1; i <= 4; ++i) {
    EXPECT_EQ(InstallModel("sasrec-20261122T00000" + std::to_string(i) + "Z.psm"), version);
  }
  while (ok.load() < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  reader.join();
  EXPECT_EQ(failed.load(), 0);
  // A corrupt artifact is refused with 400 and the model in service stays.
  std::ofstream(data_->File("db/models/sasrec/sasrec-20991231T000000Z.psm")) << "garbage";
  Response bad = Call(client_, "POST", "/v1/admin/reload");
  EXPECT_EQ(bad.status, 400) << bad.Describe();
  EXPECT_EQ(Json(bad.body).Str("/error"), "invalid_model");
  Response r = Call(client_, "GET", "/v1/users/loaded/recommendations?k=5");
  EXPECT_EQ(Json(r.body).Str("/model_version"), version);
}

TEST_F(RecommendIntegrationTest, RecIdAttributesClicksAndPurchasesToTheVariant) {
  PlantPairs();
  Post({View("buyer", "a", kBaseTs + 100)});
  Response r = Call(client_, "GET", "/v1/users/buyer/recommendations?k=2");
  ASSERT_EQ(r.status, 200);
  Json j(r.body);
  const std::string rec_id = j.Str("/rec_id").value_or("");
  const std::string variant = j.Str("/variant").value_or("");
  EXPECT_EQ(variant, "blend");
  ASSERT_EQ(rec_id.rfind("blend.", 0), 0u) << rec_id;
  const std::string item = j.Str("/items/0/item_id").value_or("");
  Post({View("buyer", item, kBaseTs + 101, "click", "\"rec_id\":\"" + rec_id + "\""),
        View("buyer", item, kBaseTs + 102, "purchase", "\"rec_id\":\"" + rec_id + "\"")});
  Response m = Call(client_, "GET", "/metrics");
  ASSERT_TRUE(CheckPrometheusText(m.body).ok());
  EXPECT_EQ(PrometheusSample(m.body, "persona_recommendations_total",
                                           {{"variant", "blend"}}),
            1.0);
  EXPECT_EQ(PrometheusSample(m.body, "persona_rec_attributed_events_total",
                                           {{"variant", "blend"}, {"type", "click"}}),
            1.0);
  EXPECT_EQ(PrometheusSample(m.body, "persona_rec_attributed_events_total",
                                           {{"variant", "blend"}, {"type", "purchase"}}),
            1.0);
  EXPECT_EQ(PrometheusSample(m.body, "persona_rec_revenue_total",
                                           {{"variant", "blend"}}),
            50.0);
  Response stats = Call(client_, "GET", "/v1/stats");
  EXPECT_EQ(Json(stats.body).Int("/recommend/variants/0/clicks"), 1) << stats.body;

  // The impressions log (flushed within a second) joined with the event log, read while the
  // server runs: one response, clicked and converted.
  const std::string log = data_->File("db/recs/impressions.ndjson");
  for (int i = 0; i < 100; ++i) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find(rec_id) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto report = RunPersona({"eval-online", "--data", data_->File("db"), "--json"});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->exit.code, 0) << report->output;
  Json j2(report->output);
  EXPECT_EQ(j2.Str("/variants/0/name"), "blend") << report->output;
  EXPECT_EQ(j2.Int("/variants/0/responses"), 1) << report->output;
  EXPECT_EQ(j2.Number("/variants/0/ctr"), 1.0) << report->output;
  EXPECT_EQ(j2.Number("/variants/0/conversion"), 1.0) << report->output;
  EXPECT_EQ(j2.Number("/variants/0/revenue"), 50.0) << report->output;
}

TEST_F(RecommendIntegrationTest, BadParametersAreExplained) {
  PlantPairs();
  struct Case {
    std::string target;
    int status;
    std::string field;
  } cases[] = {
      {"/v1/users/p1/recommendations?k=0", 400, "k"},
      {"/v1/users/p1/recommendations?k=abc", 400, "k"},
      {"/v1/users/p1/recommendations?k=101", 400, "k"},
      {"/v1/users/p1/recommendations?source=magic", 400, "source"},
      {"/v1/users/p1/recommendations?category=no.such", 404, "category"},
      {"/v1/items/nope/similar", 404, ""},
      {"/v1/trending?category=no.such", 404, "category"},
      {"/v1/trending?k=-1", 400, "k"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    Response r = Call(client_, "GET", c.target);
    EXPECT_EQ(r.status, c.status) << r.Describe();
    Json j(r.body);
    EXPECT_TRUE(j.Str("/detail").has_value()) << r.body;
    if (!c.field.empty()) {
      EXPECT_EQ(j.Str("/field"), c.field) << r.body;
    }
  }
}

}  // namespace
}  // namespace persona::serve
