// Predictions end to end against the real binary: the taobao slice is imported, every prediction
// model is trained by `persona train` on that data directory, `persona serve` loads them, and the
// routes answer from the live profile: a new event moves the propensity at once, a review's text
// sets the user's satisfaction, a script flooding views is flagged, counted in /metrics and kept
// out of trending, and forecasts and segments answer for the imported history.
#include <gtest/gtest.h>

#include <cmath>
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

const std::string kTaobao = std::string(PERSONA_DATASETS) + "/taobao/UserBehavior-by-user.csv";
const std::string kUci = std::string(PERSONA_DATASETS) + "/reviews/amazon_cells_labelled.txt";
constexpr int64_t kAfterSlice = 1512316800000;  // 2017-12-03T16:00Z, at the end of the slice

Response Call(HttpClient& client, const std::string& method, const std::string& target,
              const std::string& body = "") {
  auto r = client.Request(method, target, body);
  EXPECT_TRUE(r.ok()) << method << " " << target << ": " << r.status();
  return r.ok() ? *r : Response{};
}

std::string Event(const std::string& user, const std::string& type, int64_t ts,
                  const std::string& extra = "") {
  return "{\"user_id\":\"" + user + "\",\"type\":\"" + type + "\",\"ts\":" + std::to_string(ts) +
         (extra.empty() ? "" : "," + extra) + "}";
}

class PredictIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kTaobao) || !std::filesystem::exists(kUci)) return;
    dir_ = new ScopedTempDir("persona-predict");
    const std::string data = dir_->File("db");
    auto run = [](std::vector<std::string> args) {
      auto r = RunPersona(args, std::chrono::minutes(5));
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) {
        EXPECT_EQ(r->exit.code, 0) << r->output;
      }
    };
    run({"import", "--data", data, "--partitions", "2", "--sync", "none", "--format", "taobao",
         "--quiet", kTaobao});
    for (const char* model : {"propensity", "churn"}) {
      run({"train", model, "--data", data, "--cutoff", "2017-11-29T00:00:00Z", "--cutoff",
           "2017-11-30T00:00:00Z", "--horizon", "2d", "--rounds", "40", "--threads", "1", "-q"});
    }
    run({"train", "segments", "--data", data, "--k-max", "4", "-q"});
    run({"train", "next-category", "--data", data, "-q"});
    run({"train", "sentiment", "--corpus", kUci, "--data", data, "--buckets", "20000", "-q"});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (dir_ == nullptr) GTEST_SKIP() << "datasets absent: " << kTaobao << ", " << kUci;
    ASSERT_FALSE(HasFatalFailure());
    testing_util::ServerOptions options;
    options.data_dir = dir_->File("db");
    auto started = ServerProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(*started);
    client_ = server_->Client();
  }
  void TearDown() override {
    if (HasFailure() && server_ != nullptr) {
      std::cerr << "server output (tail):\n" << server_->OutputTail() << "\n";
    }
  }

  void Post(const std::vector<std::string>& events) {
    std::string body = "[";
    for (size_t i = 0; i < events.size(); ++i) body += (i ? "," : "") + events[i];
    body += "]";
    Response r = Call(client_, "POST", "/v1/events", body);
    ASSERT_EQ(r.status, 200) << r.Describe();
  }

  static ScopedTempDir* dir_;
  std::unique_ptr<ServerProcess> server_;
  HttpClient client_;
};

ScopedTempDir* PredictIntegrationTest::dir_ = nullptr;

TEST_F(PredictIntegrationTest, EveryTrainedModelIsServedWithItsVersionAndMetrics) {
  Response r = Call(client_, "GET", "/v1/models");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json models(r.body);
  EXPECT_EQ(models.ArraySize("/models"), 5) << r.body;
  EXPECT_EQ(models.ArraySize("/errors"), 0) << r.body;
  for (const char* name : {"propensity", "churn", "segments", "next_category", "sentiment"}) {
    EXPECT_NE(r.body.find(std::string("\"name\":\"") + name + "\""), std::string::npos) << name;
  }
}

TEST_F(PredictIntegrationTest, ImportedUserGetsCalibratedProbabilitiesSegmentAndNextCategories) {
  Response r = Call(client_, "GET", "/v1/users/1/predictions");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json p(r.body);
  const double propensity = p.Number("/propensity/probability").value_or(-1);
  const double churn = p.Number("/churn/probability").value_or(-1);
  EXPECT_GT(propensity, 0.0);
  EXPECT_LT(propensity, 1.0);
  EXPECT_GT(churn, 0.0);
  EXPECT_LT(churn, 1.0);
  EXPECT_EQ(p.Number("/propensity/horizon_hours").value_or(0), 48.0);
  EXPECT_TRUE(p.Int("/segment/id").has_value()) << r.body;
  EXPECT_FALSE(p.Str("/segment/description").value_or("").empty()) << r.body;
  EXPECT_GE(p.ArraySize("/next_categories"), 1) << r.body;
  // The profile carries the same object under `predictions`.
  Response profile = Call(client_, "GET", "/v1/users/1/profile");
  ASSERT_EQ(profile.status, 200);
  EXPECT_EQ(Json(profile.body).Number("/predictions/propensity/probability").value_or(-1),
            propensity);
}

TEST_F(PredictIntegrationTest, NewEventsMoveThePropensityAtOnce) {
  const std::string user = "fresh-buyer";
  Post({Event(user, "view", kAfterSlice, R"("item_id":"i1","category_id":"4756105")")});
  Response before = Call(client_, "GET", "/v1/users/" + user + "/predictions");
  ASSERT_EQ(before.status, 200) << before.Describe();
  const double p0 = Json(before.body).Number("/propensity/probability").value_or(-1);
  std::vector<std::string> events;
  for (int i = 1; i <= 12; ++i) {
    events.push_back(Event(user, i % 3 ? "view" : "cart", kAfterSlice + i * 60000,
                           R"("item_id":"i)" + std::to_string(i) + R"(","category_id":"4756105")"));
  }
  Post(events);
  Response after = Call(client_, "GET", "/v1/users/" + user + "/predictions");
  const double p1 = Json(after.body).Number("/propensity/probability").value_or(-1);
  EXPECT_GE(p0, 0.0);
  EXPECT_NE(p0, p1) << "the prediction ignored 12 new events: " << after.body;
}

TEST_F(PredictIntegrationTest, ReviewTextSetsSatisfactionAndCategorySentiment) {
  Post({Event("happy", "review", kAfterSlice,
              R"("item_id":"i1","category_id":"c1","text":"Great phone, works perfectly, I love it. Excellent value.")"),
        Event("angry", "review", kAfterSlice,
              R"("item_id":"i2","category_id":"c1","text":"Terrible. It broke after one day, poor quality, waste of money.")")});
  Response happy = Call(client_, "GET", "/v1/users/happy/profile?fields=signals");
  Response angry = Call(client_, "GET", "/v1/users/angry/profile?fields=signals");
  ASSERT_EQ(happy.status, 200);
  const double h = Json(happy.body).Number("/signals/sentiment/satisfaction").value_or(-1);
  const double a = Json(angry.body).Number("/signals/sentiment/satisfaction").value_or(-1);
  EXPECT_GT(h, 0.5) << happy.body;
  EXPECT_GE(a, 0.0) << angry.body;
  EXPECT_LT(a, 0.5) << angry.body;
  EXPECT_EQ(Json(happy.body).Str("/signals/sentiment/categories/0/key").value_or(""), "c1");
  EXPECT_EQ(Json(Call(client_, "GET", "/v1/users/happy/predictions").body)
                .Number("/satisfaction")
                .value_or(-1),
            h);
}

TEST_F(PredictIntegrationTest, ScriptFloodingViewsIsFlaggedCountedAndKeptOutOfTrending) {
  std::vector<std::string> events;
  for (int i = 0; i < 120; ++i) {  // two views a second, every second
    events.push_back(Event("script-1", "view", kAfterSlice + i * 500,
                           R"("item_id":"bot-item","category_id":"4756105")"));
  }
  Post(events);
  Response r = Call(client_, "GET", "/v1/users/script-1/predictions");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"high_rate\""), std::string::npos) << r.body;
  Response metrics = Call(client_, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_TRUE(CheckPrometheusText(metrics.body).ok()) << CheckPrometheusText(metrics.body);
  const double flagged =
      PrometheusSample(metrics.body, "persona_anomaly_flagged_total", {}).value_or(-1);
  const double skipped =
      PrometheusSample(metrics.body, "persona_rec_flagged_events_skipped_total", {}).value_or(-1);
  EXPECT_GE(flagged, 1);
  // The floor is 30 events in a minute: every view after the 30th is kept out.
  EXPECT_GE(skipped, 90);
  Response profile = Call(client_, "GET", "/v1/users/script-1/profile?fields=signals");
  EXPECT_GE(Json(profile.body).Int("/signals/anomalies/max_events_per_minute").value_or(0), 30);
}

TEST_F(PredictIntegrationTest, ForecastsAnswerForTheShopAndForACategory) {
  // The imported history reaches the demand counters through the log replay at start, which runs
  // in the background: wait for it (bounded).
  Response all;
  for (int i = 0; i < 200; ++i) {
    all = Call(client_, "GET", "/v1/forecast?period=hour&horizon=12");
    if (all.status == 200 && Json(all.body).Int("/history_buckets").value_or(0) > 48) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(all.status, 200) << all.Describe();
  Json f(all.body);
  EXPECT_EQ(f.ArraySize("/points"), 12);
  EXPECT_GT(f.Int("/history_buckets").value_or(0), 48) << "the imported 9 days were not replayed";
  EXPECT_GE(f.Number("/points/0/hi").value_or(-1), f.Number("/points/0/mean").value_or(0));
  Response cat = Call(client_, "GET", "/v1/forecast?category=4756105&period=day&metric=purchases");
  EXPECT_EQ(cat.status, 200) << cat.Describe();
  EXPECT_EQ(Call(client_, "GET", "/v1/forecast?category=no-such-category").status, 404);
  EXPECT_EQ(Call(client_, "GET", "/v1/forecast?period=week").status, 400);
  EXPECT_EQ(Call(client_, "GET", "/v1/forecast?horizon=0").status, 400);
}

TEST_F(PredictIntegrationTest, SegmentSizesAddUpToTheProfiles) {
  Response r = Call(client_, "GET", "/v1/segments");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json s(r.body);
  const int64_t k = s.ArraySize("/segments");
  ASSERT_GE(k, 2) << r.body;
  int64_t total = s.Int("/unassigned").value_or(-1);
  for (int64_t i = 0; i < k; ++i) {
    total += s.Int("/segments/" + std::to_string(i) + "/size").value_or(0);
    EXPECT_FALSE(s.Str("/segments/" + std::to_string(i) + "/description").value_or("").empty());
  }
  EXPECT_EQ(total, s.Int("/profiles").value_or(-2));
  EXPECT_GE(s.Int("/profiles").value_or(0), 815);
}

TEST_F(PredictIntegrationTest, UnknownUserIs404AndACorruptArtifactIsRefusedOnReload) {
  EXPECT_EQ(Call(client_, "GET", "/v1/users/nobody-here/predictions").status, 404);
  const std::string bad = dir_->File("db/models/churn/zzzz-newest.pgbm");
  std::ofstream(bad) << "not a model";
  Response r = Call(client_, "POST", "/v1/admin/reload");
  EXPECT_EQ(r.status, 400) << r.Describe();
  EXPECT_NE(r.body.find("invalid_model"), std::string::npos);
  std::filesystem::remove(bad);
  // The model in service stayed.
  Response p = Call(client_, "GET", "/v1/users/1/predictions");
  EXPECT_TRUE(Json(p.body).Number("/churn/probability").has_value()) << p.body;
}

}  // namespace
}  // namespace persona::serve
