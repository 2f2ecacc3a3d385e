// Integration tests of `persona serve`: each suite starts the real binary on a free port (see
// testing/server_process.h) and talks HTTP to it, checking the answers against the API contract
// (docs/openapi.yaml). Suites share one server where their tests do not interfere (each test uses
// its own user ids); restarts, overload and authentication get servers of their own.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "serve/testing/http_client.h"
#include "serve/testing/json_doc.h"
#include "serve/testing/prometheus_text.h"
#include "serve/testing/server_process.h"

namespace persona::serve {
namespace {

using testing_util::HeaderList;
using testing_util::HttpClient;
using testing_util::Json;
using testing_util::ProcessExit;
using testing_util::Response;
using testing_util::RunPersona;
using testing_util::ScopedTempDir;
using testing_util::ServerOptions;
using testing_util::ServerProcess;
using testing_util::TestApiKey;
using testing_util::TestConfig;

constexpr int64_t kBaseTs = 1569888000000;  // 2019-10-01T00:00:00Z

// ---------------------------------------------------------------------------------------------
// Small helpers: unique event ids, event JSON, parsed JSON bodies, calls that never throw.

std::string NextEventId() {
  static std::atomic<uint64_t> next{0};
  return absl::StrCat("it-", getpid(), "-", next.fetch_add(1));
}

// One valid event of `type` for `user` (fields each type needs are filled in).
std::string EventJson(const std::string& user, const std::string& type, int64_t ts,
                      const std::string& extra = "") {
  std::string json = absl::StrCat(R"({"user_id":")", user, R"(","event_id":")", NextEventId(),
                                  R"(","type":")", type, R"(","ts":)", ts);
  if (type == "search") {
    json += R"(,"query":"red shoes")";
  } else {
    json += R"(,"item_id":"sku-1","category_path":"shoes.running")";
  }
  if (type == "purchase" || type == "refund") json += R"(,"price":19.5,"quantity":1)";
  if (type == "review") json += R"(,"rating":4)";
  if (!extra.empty()) absl::StrAppend(&json, ",", extra);
  json += "}";
  return json;
}

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ",";
    out += items[i];
  }
  out += "]";
  return out;
}

// A request whose transport failure is a test failure (status 0 then fails what follows).
Response Call(HttpClient& client, const std::string& method, const std::string& target,
              const std::string& body = "", const HeaderList& headers = {}) {
  auto r = client.Request(method, target, body, headers);
  EXPECT_TRUE(r.ok()) << method << " " << target << ": " << r.status();
  return r.ok() ? *std::move(r) : Response{};
}

// Checks an error answer: status, JSON {error, detail[, field]}.
void ExpectError(const Response& r, int status, const std::string& code,
                 const std::string& field = "") {
  EXPECT_EQ(r.status, status) << r.Describe();
  Json j(r.body);
  ASSERT_TRUE(j.ok()) << "error body is not JSON: " << r.Describe();
  EXPECT_EQ(j.Str("/error").value_or("<none>"), code) << r.Describe();
  EXPECT_TRUE(j.Str("/detail").has_value()) << "no detail: " << r.Describe();
  if (!field.empty()) {
    EXPECT_EQ(j.Str("/field").value_or("<none>"), field) << r.Describe();
  }
  EXPECT_EQ(r.Header("Content-Type").substr(0, 16), "application/json") << r.Describe();
}

// GET profile -> stats.events, or -1 when the user is unknown (404), -2 on anything else.
int64_t ProfileEvents(HttpClient& client, const std::string& user) {
  Response r = Call(client, "GET", "/v1/users/" + user + "/profile?fields=stats");
  if (r.status == 404) return -1;
  if (r.status != 200) {
    ADD_FAILURE() << "GET profile of " << user << ": " << r.Describe();
    return -2;
  }
  return Json(r.body).Int("/stats/events").value_or(-2);
}

double Sample(const std::string& text, const std::string& name, const MetricLabels& labels) {
  return PrometheusSample(text, name, labels).value_or(0);
}

// Starts a server with `config` in a fresh data directory owned by the caller.
absl::StatusOr<std::unique_ptr<ServerProcess>> StartServer(const ScopedTempDir& dir,
                                                           const TestConfig& config,
                                                           bool fresh_config = true) {
  const std::string config_file = dir.File("persona.toml");
  if (fresh_config) {
    if (auto s = testing_util::WriteConfigFile(config_file, config); !s.ok()) return s;
  }
  ServerOptions options;
  options.data_dir = dir.File("data");
  options.config_file = config_file;
  return ServerProcess::Start(options);
}

// SIGTERM, then the exit status (which a clean shutdown makes 0).
ProcessExit StopServer(ServerProcess& server) {
  server.Terminate(SIGTERM);
  auto exit = server.WaitExit(std::chrono::seconds(60));
  EXPECT_TRUE(exit.ok()) << exit.status() << "\n" << server.OutputTail();
  return exit.ok() ? *exit : ProcessExit{};
}

// A server shared by the tests of one suite: started in SetUpTestSuite, stopped (and required to
// exit 0 on SIGTERM) in TearDownTestSuite.
struct SharedServer {
  std::unique_ptr<ScopedTempDir> dir;
  std::unique_ptr<ServerProcess> server;
  std::string start_error;

  // `tag_rules` (if any) becomes the engine's tag rules file.
  void Start(std::string_view name, TestConfig config, const std::string& tag_rules = "") {
    dir = std::make_unique<ScopedTempDir>(name);
    if (!tag_rules.empty()) {
      const std::string rules_file = dir->File("tags.rules");
      std::ofstream(rules_file) << tag_rules;
      absl::StrAppend(&config.engine_toml, "tag_rules_file = \"", rules_file, "\"\n");
    }
    auto s = StartServer(*dir, config);
    if (s.ok()) {
      server = *std::move(s);
    } else {
      start_error = s.status().ToString();
    }
  }
  void Stop() {
    if (server != nullptr) {
      ProcessExit exit = StopServer(*server);
      EXPECT_TRUE(exit.exited && exit.code == 0)
          << "SIGTERM should end the server with status 0, got " << exit.ToString() << "\n"
          << server->OutputTail();
    }
    server.reset();
    dir.reset();
  }
  // For SetUp: the server is there and alive.
  void ExpectRunning() const {
    ASSERT_NE(server, nullptr) << (start_error.empty() ? "server not started" : start_error);
    ASSERT_TRUE(server->running()) << "the server died:\n" << server->OutputTail();
  }
};

// ---------------------------------------------------------------------------------------------
// One open (no API keys) server shared by the tests of this suite.

class ServeIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TestConfig config;
    config.engine_toml = "partitions = 2\n";
    config.server_toml =
        "max_body_bytes = 262144\n"
        "max_batch_events = 100\n"
        "max_batch_get = 50\n"
        "read_timeout = \"1s\"\n"
        "access_log = \"\"\n";
    shared().Start("serve_it", config, "viewer: views >= 1\nbuyer_tag: purchases >= 1\n");
    server_ = shared().server.get();
  }
  static void TearDownTestSuite() {
    shared().Stop();
    server_ = nullptr;
  }
  static SharedServer& shared() {
    static SharedServer s;
    return s;
  }
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(shared().ExpectRunning());
    client_ = server_->Client();
  }
  void TearDown() override {
    if (server_ != nullptr && HasFailure()) {
      std::cerr << "server output (tail):\n" << server_->OutputTail() << "\n";
    }
  }

  // POSTs `body` and expects 200 with `accepted` events.
  void PostOk(const std::string& body, int64_t accepted) {
    Response r = Call(client_, "POST", "/v1/events", body);
    ASSERT_EQ(r.status, 200) << r.Describe();
    Json j(r.body);
    EXPECT_EQ(j.Int("/accepted"), accepted) << r.body;
    EXPECT_EQ(j.ArraySize("/rejected"), 0) << r.body;
  }

  static inline ServerProcess* server_ = nullptr;  // owned by shared()
  HttpClient client_;
};

TEST_F(ServeIntegrationTest, HealthzAndReadyzAnswerOkAfterStart) {
  Response h = Call(client_, "GET", "/healthz");
  EXPECT_EQ(h.status, 200) << h.Describe();
  EXPECT_EQ(Json(h.body).Str("/status"), "ok") << h.body;
  Response r = Call(client_, "GET", "/readyz");
  EXPECT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Json(r.body).Str("/status"), "ready") << r.body;
}

TEST_F(ServeIntegrationTest, PostSingleObjectArrayAndNdjsonAreAccepted) {
  PostOk(EventJson("forms-1", "view", kBaseTs), 1);
  PostOk(JsonArray({EventJson("forms-1", "view", kBaseTs + 1),
                    EventJson("forms-1", "cart", kBaseTs + 2),
                    EventJson("forms-1", "purchase", kBaseTs + 3)}),
         3);
  // NDJSON: one object per line, blank lines ignored; CRLF line ends are fine too.
  const std::string ndjson = EventJson("forms-1", "search", kBaseTs + 4) + "\n\n" +
                             EventJson("forms-1", "fav", kBaseTs + 5) + "\r\n" +
                             EventJson("forms-1", "review", kBaseTs + 6) + "\n";
  Response r =
      Call(client_, "POST", "/v1/events", ndjson, {{"Content-Type", "application/x-ndjson"}});
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Json(r.body).Int("/accepted"), 3) << r.body;
  // A charset parameter does not change the media type.
  r = Call(client_, "POST", "/v1/events", EventJson("forms-1", "click", kBaseTs + 7),
           {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(r.status, 200) << r.Describe();

  Response p = Call(client_, "GET", "/v1/users/forms-1/profile");
  ASSERT_EQ(p.status, 200) << p.Describe();
  Json j(p.body);
  EXPECT_EQ(j.Str("/user_id"), "forms-1");
  EXPECT_EQ(j.Int("/stats/events"), 8) << p.body;
  EXPECT_EQ(j.Int("/stats/counts/view"), 2) << p.body;
  EXPECT_EQ(j.Int("/stats/counts/purchase"), 1) << p.body;
  EXPECT_EQ(j.Int("/stats/counts/review"), 1) << p.body;
  for (const char* section : {"/identity", "/stats", "/sessions", "/interests", "/consumption",
                              "/funnel", "/lifecycle", "/sequence", "/tags"}) {
    EXPECT_TRUE(j.Has(section)) << section << " missing from the default (all) profile";
  }
}

TEST_F(ServeIntegrationTest, DuplicateEventIdIsCountedOnceAndNotAppliedTwice) {
  const std::string event =
      R"({"event_id":"dup-fixed-1","user_id":"dup-1","type":"view","ts":1569888000000,)"
      R"("item_id":"sku-9"})";
  PostOk(event, 1);
  Response r = Call(client_, "POST", "/v1/events", event);
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json j(r.body);
  EXPECT_EQ(j.Int("/accepted"), 0) << r.body;
  EXPECT_EQ(j.Int("/duplicates"), 1) << r.body;
  EXPECT_EQ(ProfileEvents(client_, "dup-1"), 1);
}

TEST_F(ServeIntegrationTest, ReadYourWritesAfterEveryPost) {
  HttpClient other = server_->Client();  // reads also on a second connection (another thread)
  int64_t total = 0, views = 0, carts = 0;
  for (int i = 0; i < 50; ++i) {
    std::vector<std::string> events;
    const int n = 1 + i % 3;
    for (int k = 0; k < n; ++k) {
      const bool view = (i + k) % 2 == 0;
      events.push_back(EventJson("ryw-1", view ? "view" : "cart", kBaseTs + i * 1000 + k));
      ++(view ? views : carts);
    }
    total += n;
    ASSERT_NO_FATAL_FAILURE(PostOk(JsonArray(events), n)) << "iteration " << i;
    HttpClient& reader = i % 2 == 0 ? client_ : other;
    Response p = Call(reader, "GET", "/v1/users/ryw-1/profile?fields=stats");
    ASSERT_EQ(p.status, 200) << "iteration " << i << ": " << p.Describe();
    Json j(p.body);
    ASSERT_EQ(j.Int("/stats/events"), total) << "iteration " << i << ": " << p.body;
    ASSERT_EQ(j.Int("/stats/counts/view"), views) << "iteration " << i;
    ASSERT_EQ(j.Int("/stats/counts/cart"), carts) << "iteration " << i;
  }
}

TEST_F(ServeIntegrationTest, MalformedJsonIs400) {
  for (const std::string body : {"{not json", "42", "\"a string\"", "[{\"user_id\":", "null"}) {
    SCOPED_TRACE(body);
    ExpectError(Call(client_, "POST", "/v1/events", body), 400, "malformed_json");
  }
  // An empty body is not JSON either.
  ExpectError(Call(client_, "POST", "/v1/events", "", {{"Content-Type", "application/json"}}), 400,
              "malformed_json");
}

TEST_F(ServeIntegrationTest, WrongFieldTypeIs207NamingFieldAndIndex) {
  const std::string bad =
      R"({"user_id":"types-1","type":"purchase","ts":1569888000000,"item_id":"sku-1",)"
      R"("price":"abc"})";
  Response r = Call(client_, "POST", "/v1/events",
                    JsonArray({EventJson("types-1", "view", kBaseTs), bad,
                               EventJson("types-1", "view", kBaseTs + 1)}));
  ASSERT_EQ(r.status, 207) << r.Describe();
  Json j(r.body);
  EXPECT_EQ(j.Int("/accepted"), 2) << r.body;
  EXPECT_EQ(j.Int("/duplicates"), 0) << r.body;
  ASSERT_EQ(j.ArraySize("/rejected"), 1) << r.body;
  EXPECT_EQ(j.Int("/rejected/0/index"), 1) << r.body;
  EXPECT_EQ(j.Str("/rejected/0/field"), "price") << r.body;
  EXPECT_FALSE(j.Str("/rejected/0/reason").value_or("").empty()) << r.body;
  EXPECT_EQ(ProfileEvents(client_, "types-1"), 2);

  // A single object reports index 0; NDJSON reports the line index.
  r = Call(client_, "POST", "/v1/events", bad);
  ASSERT_EQ(r.status, 207) << r.Describe();
  EXPECT_EQ(Json(r.body).Int("/rejected/0/index"), 0) << r.body;
  EXPECT_EQ(Json(r.body).Int("/accepted"), 0) << r.body;
  const std::string ndjson = EventJson("types-1", "view", kBaseTs + 2) + "\n" +
                             R"({"user_id":"types-1","type":"view","ts":"yesterday"})" + "\n" +
                             EventJson("types-1", "view", kBaseTs + 3) + "\n";
  r = Call(client_, "POST", "/v1/events", ndjson, {{"Content-Type", "application/x-ndjson"}});
  ASSERT_EQ(r.status, 207) << r.Describe();
  Json n(r.body);
  EXPECT_EQ(n.Int("/accepted"), 2) << r.body;
  EXPECT_EQ(n.Int("/rejected/0/index"), 1) << r.body;
  EXPECT_EQ(n.Str("/rejected/0/field"), "ts") << r.body;
}

TEST_F(ServeIntegrationTest, RejectedEventsBecomeDeadLetters) {
  auto dead_letters = [&] {
    Response s = Call(client_, "GET", "/v1/stats");
    EXPECT_EQ(s.status, 200) << s.Describe();
    return Json(s.body).Int("/totals/dead_letters").value_or(-1);
  };
  const int64_t before = dead_letters();
  Response r = Call(client_, "POST", "/v1/events",
                    JsonArray({R"({"user_id":"dl-1","type":"view","ts":1569888000000})",
                               R"({"user_id":"dl-1","type":"teleport","ts":1569888000000,)"
                               R"("item_id":"x"})"}));
  ASSERT_EQ(r.status, 207) << r.Describe();
  EXPECT_EQ(Json(r.body).Str("/rejected/0/field"), "item_id") << r.body;
  EXPECT_EQ(Json(r.body).Str("/rejected/1/field"), "type") << r.body;
  EXPECT_EQ(dead_letters(), before + 2);
}

TEST_F(ServeIntegrationTest, UnknownFieldIsRejectedOnlyWhenStrict) {
  auto with_color = [](int64_t ts) {
    return EventJson("strict-1", "view", ts, R"("color":"red")");
  };
  PostOk(with_color(kBaseTs), 1);  // default: server.strict = false
  Response r = Call(client_, "POST", "/v1/events?strict=false", with_color(kBaseTs + 1));
  EXPECT_EQ(r.status, 200) << r.Describe();
  r = Call(client_, "POST", "/v1/events?strict=true", with_color(kBaseTs + 2));
  ASSERT_EQ(r.status, 207) << r.Describe();
  Json j(r.body);
  EXPECT_EQ(j.Int("/accepted"), 0) << r.body;
  EXPECT_EQ(j.Str("/rejected/0/field"), "color") << r.body;
  EXPECT_EQ(ProfileEvents(client_, "strict-1"), 2);
  ExpectError(Call(client_, "POST", "/v1/events?strict=maybe", with_color(kBaseTs + 3)), 400,
              "invalid_argument", "strict");
}

TEST_F(ServeIntegrationTest, OversizedBodyIs413PayloadTooLarge) {
  // max_body_bytes = 262144. A body just over the limit, sent whole.
  std::string big = EventJson("big-1", "view", kBaseTs,
                              absl::StrCat(R"("text":")", std::string(262144, 'x'), "\""));
  ExpectError(Call(client_, "POST", "/v1/events", big), 413, "payload_too_large");
  // A declared length over the limit is refused before the body is sent.
  HttpClient raw = server_->Client();
  ASSERT_TRUE(raw.SendRaw("POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                          "\r\nContent-Length: 10000000\r\n\r\n")
                  .ok());
  auto r = raw.ReadResponse();
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectError(*r, 413, "payload_too_large");
  EXPECT_EQ(ProfileEvents(client_, "big-1"), -1);
  // The server still serves other connections.
  EXPECT_EQ(Call(client_, "GET", "/healthz").status, 200);
}

TEST_F(ServeIntegrationTest, TooManyEventsIs413BatchTooLargeAndAppliesNothing) {
  std::vector<std::string> events;
  for (int i = 0; i < 101; ++i) events.push_back(EventJson("batch-1", "view", kBaseTs + i));
  ExpectError(Call(client_, "POST", "/v1/events", JsonArray(events)), 413, "batch_too_large");
  EXPECT_EQ(ProfileEvents(client_, "batch-1"), -1);
  events.pop_back();  // exactly max_batch_events = 100 is fine
  PostOk(JsonArray(events), 100);
  EXPECT_EQ(ProfileEvents(client_, "batch-1"), 100);
}

TEST_F(ServeIntegrationTest, UnsupportedMediaTypeIs415) {
  const std::string event = EventJson("media-1", "view", kBaseTs);
  for (const std::string type : {"text/plain", "application/xml", "multipart/form-data"}) {
    SCOPED_TRACE(type);
    ExpectError(Call(client_, "POST", "/v1/events", event, {{"Content-Type", type}}), 415,
                "unsupported_media_type");
  }
  // No Content-Type at all is not JSON either.
  ExpectError(Call(client_, "POST", "/v1/events", event, {{"Content-Type", ""}}), 415,
              "unsupported_media_type");
  EXPECT_EQ(ProfileEvents(client_, "media-1"), -1);
}

TEST_F(ServeIntegrationTest, UnknownUserIs404) {
  ExpectError(Call(client_, "GET", "/v1/users/nobody-404/profile"), 404, "not_found");
  ExpectError(Call(client_, "GET", "/v1/users/nobody-404/timeline"), 404, "not_found");
  ExpectError(Call(client_, "DELETE", "/v1/users/nobody-404"), 404, "not_found");
}

TEST_F(ServeIntegrationTest, UnknownRoutesAre404) {
  for (const std::string target :
       {"/v1", "/v2/events", "/v1/nothing", "/v1/users", "/v1/users/u1/nothing",
        "/v1/users/u1/predictions/x", "/v1/items/i1", "/v1/items/i1/similar/x",
        "/v1/audiences/a/unknown", "/v1/audiences:unknown", "/assets/x/y.js", "/assets/..%2fx",
        "/healthz/extra"}) {
    SCOPED_TRACE(target);
    ExpectError(Call(client_, "GET", target), 404, "not_found");
  }
}

TEST_F(ServeIntegrationTest, WrongMethodIs405WithAllow) {
  const struct {
    std::string method, target, allowed;
  } cases[] = {
      {"GET", "/v1/events", "POST"},
      {"DELETE", "/v1/events", "POST"},
      {"GET", "/v1/users/u1/attributes", "PUT"},
      {"POST", "/v1/users/u1/profile", "GET"},
      {"PUT", "/v1/users/u1/timeline", "GET"},
      {"GET", "/v1/profiles:batchGet", "POST"},
      {"POST", "/v1/stats", "GET"},
      {"POST", "/healthz", "GET"},
      {"DELETE", "/readyz", "GET"},
      {"POST", "/metrics", "GET"},
      {"GET", "/v1/admin/checkpoint", "POST"},
      {"GET", "/v1/admin/reload", "POST"},
      {"GET", "/v1/audiences:query", "POST"},
      {"PUT", "/v1/audiences", "POST, GET"},
      {"POST", "/v1/audiences/a1", "GET, DELETE"},
      {"GET", "/v1/users/u1", "DELETE"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + c.target);
    Response r = Call(client_, c.method, c.target, c.method == "GET" ? "" : "{}");
    ExpectError(r, 405, "method_not_allowed");
    EXPECT_NE(r.Header("Allow").find(c.allowed), std::string::npos)
        << "Allow: " << r.Header("Allow");
  }
}

TEST_F(ServeIntegrationTest, TimelineIsNewestFirstAndLimitIsChecked) {
  std::vector<std::string> events;
  for (int i = 0; i < 25; ++i) events.push_back(EventJson("tl-1", "view", kBaseTs + i * 1000));
  PostOk(JsonArray(events), 25);
  Response r = Call(client_, "GET", "/v1/users/tl-1/timeline");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json j(r.body);
  EXPECT_EQ(j.Str("/user_id"), "tl-1");
  ASSERT_EQ(j.ArraySize("/events"), 20) << "default limit is 20: " << r.body;
  EXPECT_EQ(j.Int("/events/0/ts"), kBaseTs + 24 * 1000) << "newest first";
  EXPECT_EQ(j.Int("/events/19/ts"), kBaseTs + 5 * 1000);
  EXPECT_EQ(j.Str("/events/0/user_id"), "tl-1");
  EXPECT_EQ(j.Str("/events/0/type"), "view");

  r = Call(client_, "GET", "/v1/users/tl-1/timeline?limit=1");
  EXPECT_EQ(Json(r.body).ArraySize("/events"), 1) << r.Describe();
  r = Call(client_, "GET", "/v1/users/tl-1/timeline?limit=1000");
  EXPECT_EQ(Json(r.body).ArraySize("/events"), 25) << r.Describe();
  for (const std::string limit : {"0", "1001", "-1", "abc", "1.5"}) {
    SCOPED_TRACE("limit=" + limit);
    ExpectError(Call(client_, "GET", "/v1/users/tl-1/timeline?limit=" + limit), 400,
                "invalid_argument", "limit");
  }
}

TEST_F(ServeIntegrationTest, ProfileFieldsSelectSectionsAndUnknownSectionIs400) {
  PostOk(EventJson("fields-1", "view", kBaseTs), 1);
  Response r = Call(client_, "GET", "/v1/users/fields-1/profile?fields=stats,tags");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json j(r.body);
  EXPECT_EQ(j.Str("/user_id"), "fields-1");
  EXPECT_TRUE(j.Has("/as_of"));
  EXPECT_TRUE(j.Has("/stats"));
  EXPECT_EQ(j.Str("/tags/0"), "viewer") << "tag rules apply: " << r.body;
  EXPECT_EQ(j.ArraySize("/tags"), 1) << r.body;
  EXPECT_FALSE(j.Has("/identity")) << r.body;
  EXPECT_FALSE(j.Has("/interests")) << r.body;
  ExpectError(Call(client_, "GET", "/v1/users/fields-1/profile?fields=stats,statz"), 400,
              "invalid_argument", "fields");
}

TEST_F(ServeIntegrationTest, PercentEncodedUserIdIsDecoded) {
  PostOk(EventJson("u 1/x", "view", kBaseTs), 1);
  Response r = Call(client_, "GET", "/v1/users/u%201%2Fx/profile");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Json(r.body).Str("/user_id"), "u 1/x");
  r = Call(client_, "GET", "/v1/users/u%201%2Fx/timeline");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Json(r.body).Str("/events/0/user_id"), "u 1/x");
}

TEST_F(ServeIntegrationTest, BatchGetReturnsFoundInOrderAndListsNotFound) {
  PostOk(JsonArray({EventJson("bg-1", "view", kBaseTs), EventJson("bg-2", "view", kBaseTs),
                    EventJson("bg-2", "cart", kBaseTs + 1)}),
         3);
  Response r = Call(client_, "POST", "/v1/profiles:batchGet",
                    R"({"user_ids":["bg-2","bg-missing","bg-1"],"fields":"stats"})");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json j(r.body);
  ASSERT_EQ(j.ArraySize("/profiles"), 2) << r.body;
  EXPECT_EQ(j.Str("/profiles/0/user_id"), "bg-2");
  EXPECT_EQ(j.Int("/profiles/0/stats/events"), 2);
  EXPECT_EQ(j.Str("/profiles/1/user_id"), "bg-1");
  EXPECT_FALSE(j.Has("/profiles/0/identity")) << "fields=stats: " << r.body;
  ASSERT_EQ(j.ArraySize("/not_found"), 1) << r.body;
  EXPECT_EQ(j.Str("/not_found/0"), "bg-missing");
}

TEST_F(ServeIntegrationTest, BatchGetInputErrorsAre400) {
  std::vector<std::string> ids;
  for (int i = 0; i < 51; ++i) ids.push_back(absl::StrCat("\"id-", i, "\""));
  ExpectError(Call(client_, "POST", "/v1/profiles:batchGet",
                   absl::StrCat(R"({"user_ids":)", JsonArray(ids), "}")),
              400, "too_many_users");
  ids.pop_back();  // exactly max_batch_get = 50
  EXPECT_EQ(Call(client_, "POST", "/v1/profiles:batchGet",
                 absl::StrCat(R"({"user_ids":)", JsonArray(ids), "}"))
                .status,
            200);
  for (const std::string body :
       {R"({"user_ids":[]})", R"({"user_ids":[1,2]})", R"({"user_ids":"bg-1"})", "{}"}) {
    SCOPED_TRACE(body);
    ExpectError(Call(client_, "POST", "/v1/profiles:batchGet", body), 400, "invalid_argument",
                "user_ids");
  }
  ExpectError(
      Call(client_, "POST", "/v1/profiles:batchGet", R"({"user_ids":["bg-1"],"fields":"nope"})"),
      400, "invalid_argument", "fields");
  Response r = Call(client_, "POST", "/v1/profiles:batchGet", "{not json");
  EXPECT_EQ(r.status, 400) << r.Describe();
}

TEST_F(ServeIntegrationTest, PutAttributesMergesReplacesAndNullDeletes) {
  Response r = Call(client_, "PUT", "/v1/users/attr-1/attributes", R"({"age":34,"city":"Berlin"})");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json a(r.body);
  EXPECT_EQ(a.Str("/user_id"), "attr-1");
  EXPECT_EQ(a.Int("/attributes/age"), 34);
  EXPECT_EQ(a.Str("/attributes/city"), "Berlin");
  // The profile exists now, although the user never sent an event.
  Response p = Call(client_, "GET", "/v1/users/attr-1/profile?fields=identity");
  ASSERT_EQ(p.status, 200) << p.Describe();
  EXPECT_EQ(Json(p.body).Str("/identity/attributes/city"), "Berlin") << p.body;

  r = Call(client_, "PUT", "/v1/users/attr-1/attributes", R"({"city":null,"vip":true})");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json m(r.body);
  EXPECT_EQ(m.Int("/attributes/age"), 34) << r.body;
  EXPECT_EQ(m.Bool("/attributes/vip"), true) << r.body;
  EXPECT_FALSE(m.Has("/attributes/city")) << "null deletes: " << r.body;

  r = Call(client_, "PUT", "/v1/users/attr-1/attributes?merge=false", R"({"segment":[1,2]})");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json repl(r.body);
  EXPECT_EQ(repl.Keys("/attributes"), std::vector<std::string>{"segment"}) << r.body;
  p = Call(client_, "GET", "/v1/users/attr-1/profile?fields=identity");
  EXPECT_EQ(Json(p.body).Keys("/identity/attributes"), std::vector<std::string>{"segment"})
      << p.body;

  for (const std::string body : {"[1,2]", "\"x\"", "42", "{broken"}) {
    SCOPED_TRACE(body);
    ExpectError(Call(client_, "PUT", "/v1/users/attr-1/attributes", body), 400, "invalid_argument");
  }
  p = Call(client_, "GET", "/v1/users/attr-1/profile?fields=identity");
  EXPECT_EQ(Json(p.body).Keys("/identity/attributes"), std::vector<std::string>{"segment"})
      << "a rejected PUT changes nothing: " << p.body;
}

TEST_F(ServeIntegrationTest, DeleteUserErasesProfileAndTimelineButNotOthers) {
  // Events of both users in the same batches (so in the same log records).
  int64_t b_events = 0;
  for (int i = 0; i < 3; ++i) {
    PostOk(JsonArray({EventJson("del-a", "view", kBaseTs + i * 10),
                      EventJson("del-b", "view", kBaseTs + i * 10 + 1),
                      EventJson("del-a", "cart", kBaseTs + i * 10 + 2),
                      EventJson("del-b", "cart", kBaseTs + i * 10 + 3)}),
           4);
    b_events += 2;
  }
  Response r = Call(client_, "DELETE", "/v1/users/del-a");
  ASSERT_EQ(r.status, 200) << r.Describe();
  Json j(r.body);
  EXPECT_EQ(j.Str("/user_id"), "del-a");
  EXPECT_EQ(j.Bool("/erased/profile"), true) << r.body;
  EXPECT_EQ(j.Int("/erased/log_events"), 6) << r.body;
  EXPECT_TRUE(j.Int("/erased/dead_letters").has_value()) << r.body;

  ExpectError(Call(client_, "GET", "/v1/users/del-a/profile"), 404, "not_found");
  ExpectError(Call(client_, "GET", "/v1/users/del-a/timeline"), 404, "not_found");
  ExpectError(Call(client_, "DELETE", "/v1/users/del-a"), 404, "not_found");
  Response t = Call(client_, "GET", "/v1/users/del-b/timeline?limit=100");
  ASSERT_EQ(t.status, 200) << t.Describe();
  EXPECT_EQ(Json(t.body).ArraySize("/events"), b_events) << t.body;
  EXPECT_EQ(ProfileEvents(client_, "del-b"), b_events);
}

TEST_F(ServeIntegrationTest, StatsCheckpointAndReloadAnswer200) {
  PostOk(EventJson("ops-1", "view", kBaseTs), 1);
  Response s = Call(client_, "GET", "/v1/stats");
  ASSERT_EQ(s.status, 200) << s.Describe();
  Json st(s.body);
  EXPECT_EQ(st.Int("/partitions"), 2) << s.body;
  EXPECT_EQ(st.ArraySize("/per_partition"), 2) << s.body;
  EXPECT_GE(st.Int("/totals/accepted").value_or(0), 1) << s.body;
  EXPECT_GE(st.Int("/totals/profiles").value_or(0), 1) << s.body;

  Response c = Call(client_, "POST", "/v1/admin/checkpoint");
  ASSERT_EQ(c.status, 200) << c.Describe();
  Json cp(c.body);
  EXPECT_EQ(cp.Int("/partitions"), 2) << c.body;
  EXPECT_TRUE(cp.Number("/duration_ms").has_value()) << c.body;

  Response rl = Call(client_, "POST", "/v1/admin/reload");
  ASSERT_EQ(rl.status, 200) << rl.Describe();
  Json rj(rl.body);
  EXPECT_EQ(rj.Str("/reloaded/0"), "tag_rules") << rl.body;
  EXPECT_EQ(rj.Str("/reloaded/1"), "api_keys") << rl.body;
}

TEST_F(ServeIntegrationTest, MetricsAreValidPrometheusAndCountAcceptedViews) {
  auto scrape = [&] {
    Response m = Call(client_, "GET", "/metrics");
    EXPECT_EQ(m.status, 200) << m.Describe();
    EXPECT_EQ(m.Header("Content-Type").substr(0, 25), "text/plain; version=0.0.4")
        << m.Header("Content-Type");
    absl::Status valid = CheckPrometheusText(m.body);
    EXPECT_TRUE(valid.ok()) << valid << "\n" << m.body.substr(0, 4000);
    return m.body;
  };
  const MetricLabels views = {{"type", "view"}, {"outcome", "accepted"}};
  const double before = Sample(scrape(), "persona_events_total", views);
  std::vector<std::string> events;
  for (int i = 0; i < 37; ++i) events.push_back(EventJson("metrics-1", "view", kBaseTs + i));
  events.push_back(EventJson("metrics-1", "cart", kBaseTs + 99));
  PostOk(JsonArray(events), 38);
  const std::string text = scrape();
  EXPECT_EQ(Sample(text, "persona_events_total", views) - before, 37.0);
  for (const char* family :
       {"persona_http_requests_total", "persona_http_request_duration_seconds_bucket",
        "persona_partition_queue_events", "persona_partition_lag_seconds", "persona_profiles",
        "persona_memory_bytes", "persona_dead_letters", "persona_http_connections"}) {
    EXPECT_NE(text.find(std::string("\n") + family), std::string::npos)
        << family << " missing from /metrics";
  }
  EXPECT_GE(PrometheusSample(text, "persona_profiles", {}).value_or(0), 1);
  EXPECT_GE(PrometheusSample(text, "persona_http_connections", {}).value_or(0), 1);
  // The request counter names the route template; the exchange is recorded after the response
  // is written, so allow the scrape to trail by a moment.
  const MetricLabels posts = {{"route", "/v1/events"}, {"status", "200"}};
  const double posted = Sample(text, "persona_http_requests_total", posts);
  PostOk(EventJson("metrics-1", "view", kBaseTs + 100), 1);
  double after = 0;
  for (int i = 0; i < 100 && after < posted + 1; ++i) {
    after = Sample(scrape(), "persona_http_requests_total", posts);
    if (after < posted + 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(after, posted + 1);
}

TEST_F(ServeIntegrationTest, ConcurrentWritersAndReadersSeeExactCounts) {
  constexpr int kUsers = 20, kWriters = 4, kReaders = 4, kPostsPerWriter = 25, kPerPost = 8;
  auto user = [](int u) { return absl::StrCat("conc-", u); };
  std::mutex mu;
  std::map<std::string, int64_t> sent;  // guarded by mu: events acknowledged per user
  std::atomic<int> errors{0};
  std::string first_error;  // guarded by mu
  auto fail = [&](const std::string& what) {
    if (errors.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(mu);
      first_error = what;
    }
  };
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      HttpClient c = server_->Client();
      std::mt19937 rng(w);
      for (int p = 0; p < kPostsPerWriter; ++p) {
        std::vector<std::string> events;
        std::map<std::string, int64_t> mine;
        for (int k = 0; k < kPerPost; ++k) {
          const std::string u = user(static_cast<int>(rng() % kUsers));
          events.push_back(EventJson(u, k % 3 == 0 ? "cart" : "view", kBaseTs + p * 100 + k));
          ++mine[u];
        }
        auto r = c.Post("/v1/events", JsonArray(events));
        if (!r.ok() || r->status != 200 || Json(r->body).Int("/accepted") != kPerPost) {
          fail(r.ok() ? r->Describe() : r.status().ToString());
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& [u, n] : mine) sent[u] += n;
      }
    });
  }
  for (int rd = 0; rd < kReaders; ++rd) {
    threads.emplace_back([&, rd] {
      HttpClient c = server_->Client();
      std::map<std::string, int64_t> seen;  // counts never go backwards on one connection
      for (int i = 0; writing.load(); ++i) {
        const std::string u = user((rd * 7 + i) % kUsers);
        auto r = c.Get("/v1/users/" + u + "/profile?fields=stats");
        if (!r.ok() || (r->status != 200 && r->status != 404)) {
          fail(r.ok() ? r->Describe() : r.status().ToString());
          continue;
        }
        if (r->status == 404) continue;
        const int64_t events = Json(r->body).Int("/stats/events").value_or(-1);
        if (events < seen[u]) fail(absl::StrCat(u, " went from ", seen[u], " to ", events));
        seen[u] = events;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  writing.store(false);
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(errors.load(), 0) << first_error;
  int64_t total = 0;
  for (int u = 0; u < kUsers; ++u) {
    const int64_t expected = sent.count(user(u)) ? sent[user(u)] : -1;
    EXPECT_EQ(ProfileEvents(client_, user(u)), expected) << user(u);
    total += std::max<int64_t>(expected, 0);
  }
  EXPECT_EQ(total, kWriters * kPostsPerWriter * kPerPost);
}

TEST_F(ServeIntegrationTest, SlowClientIsDisconnectedAfterReadTimeout) {
  // read_timeout = 1s: a request whose body never completes is cut off, not waited for.
  HttpClient slow = server_->Client();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.SendRaw("POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: "
                           "application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\":")
                  .ok());
  bool closed = false;
  const std::string got = slow.ReadUntilClose(std::chrono::seconds(8), &closed);
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(closed) << "connection still open after 8 s; received: " << got;
  EXPECT_GE(waited, 0.8) << "closed before the read timeout; received: " << got;
  // Headers that never finish are cut off too.
  HttpClient slow_head = server_->Client();
  ASSERT_TRUE(slow_head.SendRaw("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ").ok());
  slow_head.ReadUntilClose(std::chrono::seconds(8), &closed);
  EXPECT_TRUE(closed) << "half a header block kept the connection open";
  EXPECT_EQ(Call(client_, "GET", "/healthz").status, 200);
}

TEST_F(ServeIntegrationTest, MalformedHttpIs400AndTheServerKeepsServing) {
  for (const std::string& garbage :
       {std::string("GARBAGE\r\n\r\n"),
        std::string("POST /v1/events HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)}) {
    SCOPED_TRACE(garbage);
    HttpClient raw = server_->Client();
    ASSERT_TRUE(raw.SendRaw(garbage).ok());
    bool closed = false;
    const std::string got = raw.ReadUntilClose(std::chrono::seconds(5), &closed);
    EXPECT_TRUE(closed) << "connection not closed after malformed HTTP; got: " << got;
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << got;
  }
  EXPECT_EQ(Call(client_, "GET", "/healthz").status, 200);
}

// ---------------------------------------------------------------------------------------------
// Authentication: keys with one scope each; /metrics needs `read` (metrics_public = false).

class ServeIntegrationAuthTest : public ::testing::Test {
 protected:
  static TestConfig Config() {
    TestConfig config;
    config.engine_toml = "partitions = 2\n";
    config.server_toml = "metrics_public = false\naccess_log = \"\"\n";
    config.api_keys = {{"ingester", "secret-ingest", {"ingest"}},
                       {"reader", "secret-read", {"read"}},
                       {"operator", "secret-admin", {"admin"}}};
    return config;
  }
  static void SetUpTestSuite() {
    shared().Start("serve_auth", Config());
    server_ = shared().server.get();
  }
  static void TearDownTestSuite() {
    shared().Stop();
    server_ = nullptr;
  }
  static SharedServer& shared() {
    static SharedServer s;
    return s;
  }
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(shared().ExpectRunning());
    client_ = server_->Client();
  }

  static HeaderList Bearer(const std::string& secret) {
    return {{"Authorization", "Bearer " + secret}};
  }

  static inline ServerProcess* server_ = nullptr;  // owned by shared()
  HttpClient client_;
};

struct RouteCase {
  std::string scope;  // the scope the route needs
  std::string method;
  std::string target;
  std::string body;
  int ok_status;  // the answer with the right key
};

std::vector<RouteCase> AuthRoutes() {
  return {
      {"ingest", "POST", "/v1/events", EventJson("auth-u", "view", kBaseTs + 1), 200},
      {"ingest", "PUT", "/v1/users/auth-u/attributes", R"({"tier":"gold"})", 200},
      {"read", "GET", "/v1/users/auth-u/profile", "", 200},
      {"read", "GET", "/v1/users/auth-u/timeline", "", 200},
      {"read", "POST", "/v1/profiles:batchGet", R"({"user_ids":["auth-u"]})", 200},
      {"read", "GET", "/v1/stats", "", 200},
      {"read", "GET", "/metrics", "", 200},
      {"read", "GET", "/v1/users/auth-u/recommendations", "", 200},
      {"read", "GET", "/v1/trending", "", 200},
      {"read", "GET", "/v1/items/auth-item/similar", "", 404},
      {"read", "GET", "/v1/users/auth-u/predictions", "", 200},
      {"read", "GET", "/v1/segments", "", 200},
      {"read", "GET", "/v1/forecast", "", 200},
      {"read", "GET", "/v1/models", "", 200},
      {"admin", "DELETE", "/v1/users/auth-erase", "", 200},
      {"admin", "POST", "/v1/admin/checkpoint", "", 200},
      {"admin", "POST", "/v1/admin/reload", "", 200},
  };
}

TEST_F(ServeIntegrationAuthTest, EachScopeOpensExactlyItsRoutes) {
  // Users the read and admin routes find.
  Response seed = Call(
      client_, "POST", "/v1/events",
      JsonArray({EventJson("auth-u", "view", kBaseTs), EventJson("auth-erase", "view", kBaseTs)}),
      Bearer("secret-ingest"));
  ASSERT_EQ(seed.status, 200) << seed.Describe();
  const std::map<std::string, std::string> secrets = {
      {"ingest", "secret-ingest"}, {"read", "secret-read"}, {"admin", "secret-admin"}};
  for (const RouteCase& route : AuthRoutes()) {
    for (const auto& [scope, secret] : secrets) {
      SCOPED_TRACE(route.method + " " + route.target + " with the " + scope + " key");
      Response r = Call(client_, route.method, route.target, route.body, Bearer(secret));
      if (scope == route.scope) {
        EXPECT_EQ(r.status, route.ok_status) << r.Describe();
      } else {
        ExpectError(r, 403, "forbidden");
      }
    }
  }
}

TEST_F(ServeIntegrationAuthTest, MissingOrUnknownKeyIs401WithWwwAuthenticate) {
  for (const RouteCase& route : AuthRoutes()) {
    for (const HeaderList& headers :
         {HeaderList{}, Bearer("not-a-key"), HeaderList{{"X-Api-Key", "not-a-key"}},
          HeaderList{{"Authorization", "Basic c2VjcmV0LXJlYWQ6"}}, Bearer("")}) {
      SCOPED_TRACE(route.method + " " + route.target +
                   (headers.empty() ? " without a key" : " with " + headers[0].second));
      Response r = Call(client_, route.method, route.target, route.body, headers);
      ExpectError(r, 401, "unauthenticated");
      EXPECT_EQ(r.Header("WWW-Authenticate").substr(0, 6), "Bearer") << r.Describe();
    }
  }
}

TEST_F(ServeIntegrationAuthTest, XApiKeyHeaderWorksLikeBearer) {
  Response r = Call(client_, "GET", "/v1/stats", "", {{"X-Api-Key", "secret-read"}});
  EXPECT_EQ(r.status, 200) << r.Describe();
  r = Call(client_, "GET", "/v1/stats", "", {{"x-api-key", "secret-ingest"}});
  ExpectError(r, 403, "forbidden");
  r = Call(client_, "GET", "/v1/stats", "", {{"authorization", "bearer secret-read"}});
  EXPECT_EQ(r.status, 200) << "the auth scheme is case-insensitive: " << r.Describe();
}

TEST_F(ServeIntegrationAuthTest, HealthAndReadinessNeedNoKey) {
  EXPECT_EQ(Call(client_, "GET", "/healthz").status, 200);
  EXPECT_EQ(Call(client_, "GET", "/readyz").status, 200);
  // Unknown routes are 404 whether or not a key is sent.
  ExpectError(Call(client_, "GET", "/v1/nothing", "", Bearer("secret-read")), 404, "not_found");
}

TEST_F(ServeIntegrationAuthTest, ReloadPicksUpNewKeysAndKeepsOldOnesWhenInvalid) {
  const std::string config_file = shared().dir->File("persona.toml");
  TestConfig config = Config();
  config.api_keys.push_back({"late", "secret-late", {"read"}});
  ASSERT_TRUE(testing_util::WriteConfigFile(config_file, config).ok());
  ExpectError(Call(client_, "GET", "/v1/stats", "", Bearer("secret-late")), 401, "unauthenticated");
  Response r = Call(client_, "POST", "/v1/admin/reload", "", Bearer("secret-admin"));
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Call(client_, "GET", "/v1/stats", "", Bearer("secret-late")).status, 200);

  // A key with an unknown scope: the reload fails and the keys in force stay.
  TestConfig broken = config;
  broken.api_keys.push_back({"bad", "secret-bad", {"superuser"}});
  ASSERT_TRUE(testing_util::WriteConfigFile(config_file, broken).ok());
  ExpectError(Call(client_, "POST", "/v1/admin/reload", "", Bearer("secret-admin")), 400,
              "invalid_config");
  EXPECT_EQ(Call(client_, "GET", "/v1/stats", "", Bearer("secret-late")).status, 200);
  EXPECT_EQ(Call(client_, "GET", "/v1/stats", "", Bearer("secret-bad")).status, 401);

  // Back to the original keys.
  ASSERT_TRUE(testing_util::WriteConfigFile(config_file, Config()).ok());
  EXPECT_EQ(Call(client_, "POST", "/v1/admin/reload", "", Bearer("secret-admin")).status, 200);
  EXPECT_EQ(Call(client_, "GET", "/v1/stats", "", Bearer("secret-late")).status, 401);
}

// ---------------------------------------------------------------------------------------------
// Restarts: a server per test, stopped with SIGTERM and started again on the same data.

class ServeIntegrationRestartTest : public ::testing::Test {
 protected:
  ServeIntegrationRestartTest() : dir_("serve_restart") {
    config_.engine_toml = "partitions = 2\n";
    config_.server_toml = "access_log = \"\"\n";
  }
  // Starts (or restarts, keeping the data and config) the server.
  void Start(bool fresh_config) {
    server_.reset();
    auto s = StartServer(dir_, config_, fresh_config);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    client_ = server_->Client();
  }
  void Stop() {
    client_.Close();
    ProcessExit exit = StopServer(*server_);
    EXPECT_TRUE(exit.exited && exit.code == 0)
        << "SIGTERM should end the server with 0, got " << exit.ToString() << "\n"
        << server_->OutputTail();
  }
  void TearDown() override {
    if (server_ != nullptr && HasFailure()) {
      std::cerr << "server output (tail):\n" << server_->OutputTail() << "\n";
    }
  }

  ScopedTempDir dir_;
  TestConfig config_;
  std::unique_ptr<ServerProcess> server_;
  HttpClient client_;
};

TEST_F(ServeIntegrationRestartTest, AttributesAndErasureSurviveRestart) {
  ASSERT_NO_FATAL_FAILURE(Start(true));
  // Attributes: set, merge (null deletes), replace on another user.
  ASSERT_EQ(Call(client_, "PUT", "/v1/users/keep-attrs/attributes", R"({"a":1,"b":2})").status,
            200);
  ASSERT_EQ(Call(client_, "PUT", "/v1/users/keep-attrs/attributes", R"({"b":null,"c":"x"})").status,
            200);
  ASSERT_EQ(Call(client_, "PUT", "/v1/users/repl-attrs/attributes", R"({"old":true})").status, 200);
  ASSERT_EQ(
      Call(client_, "PUT", "/v1/users/repl-attrs/attributes?merge=false", R"({"new":1})").status,
      200);
  // Two users in the same batches, each with one rejected event (a dead letter).
  int64_t keep_events = 0;
  for (int i = 0; i < 4; ++i) {
    Response r =
        Call(client_, "POST", "/v1/events",
             JsonArray({EventJson("erase-me", "view", kBaseTs + i * 10),
                        EventJson("keep-me", "view", kBaseTs + i * 10 + 1),
                        i == 0 ? R"({"user_id":"erase-me","type":"view","ts":1569888000000})"
                               : EventJson("erase-me", "cart", kBaseTs + i * 10 + 2),
                        i == 0 ? R"({"user_id":"keep-me","type":"view","ts":1569888000000})"
                               : EventJson("keep-me", "cart", kBaseTs + i * 10 + 3)}));
    ASSERT_EQ(r.status, i == 0 ? 207 : 200) << r.Describe();
    keep_events += i == 0 ? 1 : 2;
  }
  Response erased = Call(client_, "DELETE", "/v1/users/erase-me");
  ASSERT_EQ(erased.status, 200) << erased.Describe();
  Json e(erased.body);
  EXPECT_EQ(e.Bool("/erased/profile"), true) << erased.body;
  EXPECT_EQ(e.Int("/erased/log_events"), 7) << erased.body;
  EXPECT_EQ(e.Int("/erased/dead_letters"), 1) << erased.body;
  Response stats = Call(client_, "GET", "/v1/stats");
  EXPECT_EQ(Json(stats.body).Int("/totals/dead_letters"), 1) << "only keep-me's dead letter "
                                                                "stays: "
                                                             << stats.body;
  ASSERT_NO_FATAL_FAILURE(Stop());

  // The dead letters on disk: keep-me's is there, erase-me's is gone.
  auto listed = RunPersona(
      {"deadletter", "list", "--data", dir_.File("data"), "--config", dir_.File("persona.toml")});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->exit.exited && listed->exit.code == 0) << listed->output;
  EXPECT_NE(listed->output.find("keep-me"), std::string::npos) << listed->output;
  EXPECT_EQ(listed->output.find("erase-me"), std::string::npos) << listed->output;

  ASSERT_NO_FATAL_FAILURE(Start(false));
  Response p = Call(client_, "GET", "/v1/users/keep-attrs/profile?fields=identity");
  ASSERT_EQ(p.status, 200) << p.Describe();
  Json kp(p.body);
  EXPECT_EQ(kp.Int("/identity/attributes/a"), 1) << p.body;
  EXPECT_EQ(kp.Str("/identity/attributes/c"), "x") << p.body;
  EXPECT_FALSE(kp.Has("/identity/attributes/b")) << p.body;
  p = Call(client_, "GET", "/v1/users/repl-attrs/profile?fields=identity");
  EXPECT_EQ(Json(p.body).Keys("/identity/attributes"), std::vector<std::string>{"new"}) << p.body;

  ExpectError(Call(client_, "GET", "/v1/users/erase-me/profile"), 404, "not_found");
  ExpectError(Call(client_, "GET", "/v1/users/erase-me/timeline"), 404, "not_found");
  ExpectError(Call(client_, "DELETE", "/v1/users/erase-me"), 404, "not_found");
  Response t = Call(client_, "GET", "/v1/users/keep-me/timeline?limit=100");
  ASSERT_EQ(t.status, 200) << t.Describe();
  EXPECT_EQ(Json(t.body).ArraySize("/events"), keep_events) << t.body;
  EXPECT_EQ(ProfileEvents(client_, "keep-me"), keep_events);
  ASSERT_NO_FATAL_FAILURE(Stop());
}

TEST_F(ServeIntegrationRestartTest, SigtermDuringIngestLosesNoAcknowledgedEvent) {
  ASSERT_NO_FATAL_FAILURE(Start(true));
  constexpr int kWriters = 2, kUsersPerWriter = 10, kPerPost = 20;
  std::mutex mu;
  std::map<std::string, int64_t> acked;  // guarded by mu
  std::atomic<int64_t> posts{0};
  std::atomic<int> bad_answers{0};
  std::string first_bad;  // guarded by mu
  std::vector<std::thread> writers;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient c = server_->Client();
      for (int p = 0; std::chrono::steady_clock::now() < give_up; ++p) {
        std::vector<std::string> events;
        std::map<std::string, int64_t> mine;
        for (int k = 0; k < kPerPost; ++k) {
          const std::string u = absl::StrCat("sig-", w, "-", (p + k) % kUsersPerWriter);
          events.push_back(EventJson(u, "view", kBaseTs + p * 100 + k));
          ++mine[u];
        }
        auto r = c.Post("/v1/events", JsonArray(events));
        if (!r.ok()) return;           // connection refused or dropped: server gone
        if (r->status == 503) return;  // shutting down
        if (r->status != 200 || Json(r->body).Int("/accepted") != kPerPost) {
          std::lock_guard<std::mutex> lock(mu);
          if (bad_answers.fetch_add(1) == 0) first_bad = r->Describe();
          return;
        }
        posts.fetch_add(1);
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& [u, n] : mine) acked[u] += n;
      }
    });
  }
  // Let ingest run a while, then ask the server to stop while requests are in flight.
  while (posts.load() < 20 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  server_->Terminate(SIGTERM);
  for (auto& t : writers) t.join();
  auto exit = server_->WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status() << server_->OutputTail();
  EXPECT_TRUE(exit->exited && exit->code == 0) << exit->ToString() << server_->OutputTail();
  EXPECT_EQ(bad_answers.load(), 0) << first_bad;
  ASSERT_GE(posts.load(), 20);

  ASSERT_NO_FATAL_FAILURE(Start(false));
  int64_t acked_total = 0, applied_total = 0;
  for (int w = 0; w < kWriters; ++w) {
    for (int k = 0; k < kUsersPerWriter; ++k) {
      const std::string u = absl::StrCat("sig-", w, "-", k);
      const int64_t want = acked.count(u) ? acked[u] : 0;
      const int64_t got = std::max<int64_t>(ProfileEvents(client_, u), 0);
      EXPECT_GE(got, want) << u << ": acknowledged events lost";
      acked_total += want;
      applied_total += got;
    }
  }
  EXPECT_EQ(applied_total, acked_total)
      << "events applied after restart vs acknowledged before SIGTERM";
  ASSERT_NO_FATAL_FAILURE(Stop());
}

// ---------------------------------------------------------------------------------------------
// Backpressure: a tiny partition queue and fsync on every batch make concurrent posts overflow.

TEST(ServeIntegrationOverloadTest, FullPartitionQueueIs429WithRetryAfterAndAppliesNothing) {
  ScopedTempDir dir("serve_overload");
  TestConfig config;
  config.engine_toml = "partitions = 1\nqueue_capacity_events = 64\nsync = \"always\"\n";
  config.server_toml = "access_log = \"\"\n";
  auto server = StartServer(dir, config);
  ASSERT_TRUE(server.ok()) << server.status();
  constexpr int kThreads = 8, kPerPost = 200, kUsers = 10;
  std::atomic<int> overloaded{0}, accepted_posts{0}, other{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string first_other, retry_after, overload_body;  // guarded by mu
  std::map<std::string, int64_t> acked;                 // guarded by mu
  std::vector<std::thread> threads;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c = (*server)->Client();
      for (int p = 0; !stop.load() && std::chrono::steady_clock::now() < give_up; ++p) {
        std::vector<std::string> events;
        std::map<std::string, int64_t> mine;
        for (int k = 0; k < kPerPost; ++k) {
          const std::string u = absl::StrCat("ovl-", (t + k) % kUsers);
          events.push_back(EventJson(u, "view", kBaseTs + p * 1000 + k));
          ++mine[u];
        }
        auto r = c.Post("/v1/events", JsonArray(events));
        std::lock_guard<std::mutex> lock(mu);
        if (r.ok() && r->status == 429) {
          if (overloaded.fetch_add(1) == 0) {
            retry_after = r->Header("Retry-After");
            overload_body = r->body;
          }
          if (overloaded.load() >= 5 && accepted_posts.load() >= 5) stop.store(true);
        } else if (r.ok() && r->status == 200 && Json(r->body).Int("/accepted") == kPerPost) {
          accepted_posts.fetch_add(1);
          for (const auto& [u, n] : mine) acked[u] += n;
        } else {
          if (other.fetch_add(1) == 0) first_other = r.ok() ? r->Describe() : r.status().ToString();
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0) << first_other;
  ASSERT_GE(overloaded.load(), 1) << "no 429 in 30 s of concurrent posts into a 64-event queue";
  EXPECT_EQ(retry_after, "1");
  Json body(overload_body);
  EXPECT_EQ(body.Str("/error"), "overloaded") << overload_body;
  // Refused batches left nothing behind: each user has exactly the acknowledged events.
  HttpClient c = (*server)->Client();
  for (int u = 0; u < kUsers; ++u) {
    const std::string user = absl::StrCat("ovl-", u);
    EXPECT_EQ(ProfileEvents(c, user), acked.count(user) ? acked[user] : -1) << user;
  }
  ProcessExit exit = StopServer(**server);
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString() << (*server)->OutputTail();
}

}  // namespace
}  // namespace persona::serve
