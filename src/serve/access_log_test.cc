#include "serve/access_log.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/time_util.h"

namespace persona::serve {
namespace {

namespace fs = std::filesystem;

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("access_log_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::vector<std::string> ReadLines(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  static HttpExchange Exchange(std::string_view target, int status) {
    HttpExchange x;
    x.method = "GET";
    x.target = target;
    x.route = "/v1/users/{id}/profile";
    x.remote = "127.0.0.1:5555";
    x.status = status;
    x.request_bytes = 0;
    x.response_bytes = 512;
    x.duration = std::chrono::microseconds(87);
    return x;
  }

  fs::path dir_;
};

TEST_F(AccessLogTest, WritesOneJsonObjectPerExchange) {
  const fs::path path = dir_ / "access.log";
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open(path.string());
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->enabled());
  const int64_t before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  (*log)->Write(Exchange("/v1/users/u0/profile", 200), "shop");
  HttpExchange post = Exchange("/v1/events", 207);
  post.method = "POST";
  post.route = "/v1/events";
  post.request_bytes = 1234;
  (*log)->Write(post, "shop");
  (*log)->Write(Exchange("/v1/users/u2/profile", 401), "");
  (*log)->Flush();

  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  simdjson::dom::parser parser;
  const std::string targets[] = {"/v1/users/u0/profile", "/v1/events", "/v1/users/u2/profile"};
  const int64_t statuses[] = {200, 207, 401};
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(lines[i]).get(doc), simdjson::SUCCESS);
    std::string_view ts;
    ASSERT_EQ(doc["ts"].get(ts), simdjson::SUCCESS);
    std::optional<int64_t> ts_ms = ParseIsoTime(ts);
    ASSERT_TRUE(ts_ms.has_value());
    EXPECT_GE(*ts_ms, before_ms);
    EXPECT_TRUE(ts.ends_with("Z"));
    EXPECT_EQ(ts.size(), std::string_view("2026-11-22T10:00:00.123Z").size());
    EXPECT_EQ(std::string_view(doc["target"]), targets[i]);
    EXPECT_EQ(int64_t(doc["status"]), statuses[i]);
    EXPECT_EQ(int64_t(doc["resp_bytes"]), 512);
    EXPECT_EQ(int64_t(doc["duration_us"]), 87);
    EXPECT_EQ(std::string_view(doc["remote"]), "127.0.0.1:5555");
  }
  simdjson::dom::element second = parser.parse(lines[1]);
  EXPECT_EQ(std::string_view(second["method"]), "POST");
  EXPECT_EQ(std::string_view(second["route"]), "/v1/events");
  EXPECT_EQ(int64_t(second["req_bytes"]), 1234);
  EXPECT_EQ(std::string_view(second["key"]), "shop");
  simdjson::dom::element third = parser.parse(lines[2]);
  EXPECT_EQ(std::string_view(third["route"]), "/v1/users/{id}/profile");
  EXPECT_TRUE(third["key"].is_null());
  EXPECT_EQ((*log)->dropped(), 0u);
}

TEST_F(AccessLogTest, AppendsToAnExistingFile) {
  const fs::path path = dir_ / "access.log";
  std::ofstream(path) << "earlier line\n";
  {
    absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open(path.string());
    ASSERT_TRUE(log.ok()) << log.status();
    (*log)->Write(Exchange("/healthz", 200), "");
  }  // the destructor writes what is queued
  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "earlier line");
  EXPECT_TRUE(lines[1].starts_with("{\"ts\":")) << lines[1];
}

TEST_F(AccessLogTest, DisabledLogWritesNothing) {
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open("");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_FALSE((*log)->enabled());
  (*log)->Write(Exchange("/healthz", 200), "shop");
  (*log)->Flush();
  EXPECT_EQ((*log)->dropped(), 0u);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(AccessLogTest, DashMeansStderr) {
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open("-");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE((*log)->enabled());
  (*log)->Flush();
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(AccessLogTest, UnwritablePathFailsToOpen) {
  const fs::path blocker = dir_ / "file";
  std::ofstream(blocker) << "x";
  // A regular file where a directory should be: cannot be created by anyone, even root.
  absl::StatusOr<std::unique_ptr<AccessLog>> log =
      AccessLog::Open((blocker / "access.log").string());
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("access.log"), std::string_view::npos) << log.status();
}

TEST_F(AccessLogTest, HostileTargetIsEscapedAndStaysOneValidLine) {
  const fs::path path = dir_ / "access.log";
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open(path.string());
  ASSERT_TRUE(log.ok()) << log.status();
  const std::string hostile = "/v1/x\"}\n{\"forged\":true,\"a\\b\t\x01";
  (*log)->Write(Exchange(hostile, 404), "");
  const std::string invalid_utf8 = "/v1/\xff\xc3(\xe2\x82\xac";  // bad, bad, then a valid euro
  (*log)->Write(Exchange(invalid_utf8, 404), "");
  (*log)->Write(Exchange("/v1/{}{0}%s", 404), "");  // no format-string interpretation
  (*log)->Flush();
  std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(lines[0]).get(doc), simdjson::SUCCESS) << lines[0];
  EXPECT_EQ(std::string_view(doc["target"]), hostile);
  EXPECT_EQ(doc["forged"].error(), simdjson::NO_SUCH_FIELD);
  ASSERT_EQ(parser.parse(lines[1]).get(doc), simdjson::SUCCESS) << lines[1];
  EXPECT_EQ(std::string_view(doc["target"]), "/v1/\xEF\xBF\xBD\xEF\xBF\xBD(\xe2\x82\xac");
  ASSERT_EQ(parser.parse(lines[2]).get(doc), simdjson::SUCCESS) << lines[2];
  EXPECT_EQ(std::string_view(doc["target"]), "/v1/{}{0}%s");
}

TEST_F(AccessLogTest, ConcurrentWritersProduceWholeLines) {
  const fs::path path = dir_ / "access.log";
  absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open(path.string());
  ASSERT_TRUE(log.ok()) << log.status();
  constexpr int kThreads = 4;
  constexpr int kLinesEach = 500;  // 2000 in all: below the queue size, so nothing is dropped
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLinesEach; ++i) {
        std::string target = "/t" + std::to_string(t) + "/" + std::to_string(i);
        (*log)->Write(Exchange(target, 200), "k");
        if (i % 100 == 0) (*log)->Flush();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  (*log)->Flush();
  std::vector<std::string> lines = ReadLines(path);
  EXPECT_EQ(lines.size(), size_t{kThreads} * kLinesEach);
  EXPECT_EQ((*log)->dropped(), 0u);
  simdjson::dom::parser parser;
  for (const std::string& line : lines) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
  }
}

}  // namespace
}  // namespace persona::serve
