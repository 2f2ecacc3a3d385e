// Audiences end to end against the real binary: an ad-hoc query answers a count, a sample and
// pages that add up to the full match set; a typo answers 400 with the column; a saved audience
// follows new events at once (its size, and an "enter" that a waiting long-poll receives), is
// exported as CSV and NDJSON, reported with and without noise, survives a restart, and needs the
// admin scope to be created or deleted.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "serve/testing/http_client.h"
#include "serve/testing/json_doc.h"
#include "serve/testing/server_process.h"

namespace persona::serve {
namespace {

using testing_util::HttpClient;
using testing_util::Json;
using testing_util::Response;
using testing_util::ScopedTempDir;
using testing_util::ServerOptions;
using testing_util::ServerProcess;
using testing_util::TestConfig;

constexpr int64_t kT0 = 1700000000000;
constexpr const char* kAll = "Bearer k-all";
constexpr const char* kRead = "Bearer k-read";

Response Call(HttpClient& c, const std::string& method, const std::string& target,
              const std::string& body = "", const char* auth = kAll) {
  auto r = c.Request(method, target, body, {{"Authorization", auth}});
  EXPECT_TRUE(r.ok()) << method << " " << target << ": " << r.status();
  return r.ok() ? *r : Response{};
}

// 60 users: user i views i % 5 + 1 items, and users with i % 3 == 0 buy for 10 * i.
std::string Population() {
  std::string body = "[";
  int n = 0;
  for (int i = 0; i < 60; ++i) {
    const std::string user = "user" + std::to_string(i);
    for (int v = 0; v <= i % 5; ++v) {
      if (n++ > 0) body += ",";
      body += std::string(R"({"user_id":")") + user + R"(","type":"view","item_id":"sku)" +
              std::to_string(v) + R"(","category_path":"audio.headphones","ts":)" +
              std::to_string(kT0 + n) + "}";
    }
    if (i % 3 == 0) {
      body += std::string(",") + R"({"user_id":")" + user +
              R"(","type":"purchase","item_id":"sku0","category_path":"audio","price":)" +
              std::to_string(10 * i) + R"(,"ts":)" + std::to_string(kT0 + ++n) + "}";
    }
  }
  return body + "]";
}

class AudienceIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<ScopedTempDir>("persona-audiences");
    TestConfig config;
    config.server_toml = "access_log = \"\"\n";
    config.api_keys = {{"all", "k-all", {"ingest", "read", "admin"}},
                       {"read", "k-read", {"read"}}};
    config_file_ = dir_->File("persona.toml");
    ASSERT_TRUE(testing_util::WriteConfigFile(config_file_, config).ok());
    Start();
    HttpClient c = server_->Client();
    const Response r = Call(c, "POST", "/v1/events", Population());
    ASSERT_EQ(r.status, 200) << r.Describe();
  }
  void Start() {
    ServerOptions options;
    options.data_dir = dir_->File("data");
    options.config_file = config_file_;
    auto started = ServerProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(*started);
  }
  void Restart() {
    server_->Terminate(SIGTERM);
    auto exit = server_->WaitExit(std::chrono::seconds(60));
    ASSERT_TRUE(exit.ok() && exit->exited && exit->code == 0) << server_->OutputTail();
    server_.reset();
    Start();
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << server_->OutputTail() << "\n";
  }

  std::unique_ptr<ScopedTempDir> dir_;
  std::string config_file_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(AudienceIntegrationTest, AdHocQueryCountsSamplesAndPagesTheExactMatchSet) {
  HttpClient c = server_->Client();
  // Buyers with at least 3 views: i % 3 == 0 and i % 5 >= 2.
  std::set<std::string> expected;
  for (int i = 0; i < 60; ++i) {
    if (i % 3 == 0 && i % 5 >= 2) expected.insert("user" + std::to_string(i));
  }
  const std::string condition = R"(buyer and views >= 3 and interest.category(\"audio\") > 0.5)";
  std::set<std::string> paged;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    const std::string body = R"({"condition":")" + condition +
                             R"(","page_size":3,"sample":2,"fields":["monetary","lifecycle"])" +
                             (cursor.empty() ? "" : R"(,"cursor":")" + cursor + "\"") + "}";
    const Response r = Call(c, "POST", "/v1/audiences:query", body, kRead);
    ASSERT_EQ(r.status, 200) << r.Describe();
    Json j(r.body);
    EXPECT_EQ(j.Int("/count"), static_cast<int64_t>(expected.size()));
    EXPECT_EQ(j.Int("/scanned"), 60);
    EXPECT_EQ(j.ArraySize("/sample"), 2);
    EXPECT_TRUE(j.Number("/sample/0/monetary").has_value()) << r.body;
    EXPECT_TRUE(j.Str("/sample/0/lifecycle").has_value()) << r.body;
    for (int64_t k = 0; k < j.ArraySize("/ids"); ++k) {
      EXPECT_TRUE(paged.insert(*j.Str("/ids/" + std::to_string(k))).second) << "repeated id";
    }
    const auto next = j.Str("/next_cursor");
    if (!next) break;
    cursor = *next;
  }
  EXPECT_EQ(paged, expected);

  const Response bad = Call(c, "POST", "/v1/audiences:query",
                            R"({"condition":"views >= and buyer"})", kRead);
  ASSERT_EQ(bad.status, 400) << bad.Describe();
  Json e(bad.body);
  EXPECT_EQ(e.Str("/error"), "invalid_condition");
  EXPECT_EQ(e.Int("/column"), 10);
  EXPECT_NE(e.Str("/detail")->find("expected"), std::string::npos) << bad.body;
  const Response unknown = Call(c, "POST", "/v1/audiences:query",
                                R"({"condition":"rfm.monetary_30 > 1"})", kRead);
  ASSERT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("did you mean 'rfm.monetary_30d'"), std::string::npos)
      << unknown.body;
}

TEST_F(AudienceIntegrationTest, SavedAudienceFollowsEventsStreamsChangesAndSurvivesRestart) {
  HttpClient c = server_->Client();
  // Saving needs the admin scope.
  const std::string create = R"({"name":"Big buyers","condition":"monetary >= 300"})";
  EXPECT_EQ(Call(c, "POST", "/v1/audiences", create, kRead).status, 403);
  const Response made = Call(c, "POST", "/v1/audiences", create);
  ASSERT_EQ(made.status, 201) << made.Describe();
  const std::string id = *Json(made.body).Str("/id");
  // monetary = 10 * i for i % 3 == 0: i in {30, 33, ..., 57} -> 10 users.
  EXPECT_EQ(Json(made.body).Int("/size"), 10);
  EXPECT_EQ(Call(c, "POST", "/v1/audiences", create).status, 409);

  // A long-poll from after the current position waits for the next change.
  const Response before = Call(c, "GET", "/v1/audiences/" + id + "/changes?limit=1000");
  ASSERT_EQ(before.status, 200) << before.Describe();
  const std::string after = before.Header("X-Persona-Next-After");
  ASSERT_FALSE(after.empty());
  auto poll = std::async(std::launch::async, [&] {
    HttpClient waiter = server_->Client();
    return Call(waiter, "GET", "/v1/audiences/" + id + "/changes?after=" + after + "&wait_ms=20000");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string purchase = R"({"user_id":"user1","type":"purchase","item_id":"sku9",)"
                               R"("price":500,"ts":)" + std::to_string(kT0 + 100000) + "}";
  ASSERT_EQ(Call(c, "POST", "/v1/events", purchase).status, 200);
  const Response got = poll.get();
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_NE(got.body.find(R"("user_id":"user1","change":"enter")"), std::string::npos)
      << got.body;
  EXPECT_EQ(Json(Call(c, "GET", "/v1/audiences/" + id).body).Int("/size"), 11);

  // Exports: CSV with a header and one line per member; NDJSON one object per member.
  const Response csv =
      Call(c, "GET", "/v1/audiences/" + id + "/export?format=csv&fields=monetary,orders", "",
           kRead);
  ASSERT_EQ(csv.status, 200) << csv.Describe();
  EXPECT_EQ(csv.Header("Content-Type").rfind("text/csv", 0), 0u);
  std::istringstream lines(csv.body);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "user_id,monetary,orders");
  int rows = 0;
  while (std::getline(lines, line)) rows += line.empty() ? 0 : 1;
  EXPECT_EQ(rows, 11);
  const Response nd = Call(c, "GET", "/v1/audiences/" + id + "/export?format=ndjson", "", kRead);
  ASSERT_EQ(nd.status, 200);
  EXPECT_EQ(std::count(nd.body.begin(), nd.body.end(), '\n'), 11);

  // Reports: exact without epsilon; noisy (and saying so) with it.
  Json exact(Call(c, "GET", "/v1/audiences/" + id + "/report", "", kRead).body);
  EXPECT_EQ(exact.Int("/size"), 11);
  EXPECT_EQ(exact.Bool("/privacy/noisy"), false);
  Json noisy(Call(c, "GET", "/v1/audiences/" + id + "/report?epsilon=0.5", "", kRead).body);
  EXPECT_EQ(noisy.Bool("/privacy/noisy"), true);
  EXPECT_EQ(noisy.Str("/privacy/mechanism"), "laplace");

  // The definition survives a restart; membership is recomputed from the profiles.
  Restart();
  HttpClient c2 = server_->Client();
  const Response listed = Call(c2, "GET", "/v1/audiences", "", kRead);
  ASSERT_EQ(listed.status, 200);
  Json list(listed.body);
  ASSERT_EQ(list.ArraySize("/audiences"), 1) << listed.body;
  EXPECT_EQ(list.Str("/audiences/0/id"), id);
  EXPECT_EQ(list.Int("/audiences/0/size"), 11);

  EXPECT_EQ(Call(c2, "DELETE", "/v1/audiences/" + id, "", kRead).status, 403);
  EXPECT_EQ(Call(c2, "DELETE", "/v1/audiences/" + id).status, 200);
  EXPECT_EQ(Call(c2, "GET", "/v1/audiences/" + id, "", kRead).status, 404);
}

}  // namespace
}  // namespace persona::serve
