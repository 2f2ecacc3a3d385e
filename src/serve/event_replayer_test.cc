// EventReplayer against a real `persona serve` (testing/server_process.h): every event of a file
// reaches the server's profiles, bad lines are reported by line and skipped, the rate holds, Stop
// ends cleanly, repeats are duplicates unless shifted, rejected batches and refused keys are
// reported, and a server that is gone is given up on in bounded time. Retry-After is tested
// against a scripted stub, since a real server's 429 cannot be produced on demand.
#include "serve/event_replayer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "serve/testing/http_client.h"
#include "serve/testing/json_doc.h"
#include "serve/testing/server_process.h"

namespace persona::serve {
namespace {

using testing_util::HttpClient;
using testing_util::Json;
using testing_util::ScopedTempDir;
using testing_util::ServerOptions;
using testing_util::ServerProcess;
using testing_util::TestConfig;

constexpr int64_t kBaseTs = 1569888000000;  // 2019-10-01T00:00:00Z
constexpr int kMaxBatchEvents = 100;        // the shared server's max_batch_events

// One valid view event as a JSON line.
std::string ViewLine(const std::string& user, const std::string& event_id, int64_t ts) {
  return absl::StrCat(R"({"event_id":")", event_id, R"(","user_id":")", user,
                      R"(","type":"view","ts":)", ts,
                      R"(,"item_id":"sku-1","category_path":"shoes.running"})");
}

// Writes `users` x `per_user` view events (users "<prefix>-0".., interleaved) to `path`, with
// `replace` substituting whole lines (1-based line number -> text). Returns the users.
std::vector<std::string> WriteEvents(const std::string& path, const std::string& prefix, int users,
                                     int per_user, const std::map<int, std::string>& replace = {}) {
  std::vector<std::string> ids;
  for (int u = 0; u < users; ++u) ids.push_back(absl::StrCat(prefix, "-", u));
  std::ofstream out(path);
  int line = 0;
  for (int i = 0; i < per_user; ++i) {
    for (int u = 0; u < users; ++u) {
      ++line;
      auto it = replace.find(line);
      out << (it != replace.end()
                  ? it->second
                  : ViewLine(ids[u], absl::StrCat(prefix, "-e", line), kBaseTs + line * 1000))
          << "\n";
    }
  }
  return ids;
}

// Runs a replayer, keeping its messages.
struct Replay {
  ReplayOptions options;
  std::mutex mu;
  std::vector<std::string> messages;
  std::unique_ptr<EventReplayer> replayer;

  std::vector<ReplayProgress> reports;  // guarded by mu

  explicit Replay(ReplayOptions o) : options(std::move(o)) {
    replayer = std::make_unique<EventReplayer>(
        options,
        [this](std::string_view m) {
          std::lock_guard lock(mu);
          messages.emplace_back(m);
        },
        [this](const ReplayProgress& p) {
          std::lock_guard lock(mu);
          reports.push_back(p);
        });
  }
  ReplayReport Run() { return replayer->Run(); }
  // Messages containing `text`.
  int Count(const std::string& text) {
    std::lock_guard lock(mu);
    int n = 0;
    for (const std::string& m : messages) n += m.find(text) != std::string::npos;
    return n;
  }
  std::string All() {
    std::lock_guard lock(mu);
    std::string all;
    for (const std::string& m : messages) absl::StrAppend(&all, m, "\n");
    return all;
  }
};

std::string Describe(const ReplayReport& r) {
  const ReplayProgress& t = r.totals;
  std::string s =
      absl::StrCat(r.status.ToString(), " read=", t.read, " bad=", t.bad_lines, " sent=", t.sent,
                   " accepted=", t.accepted, " duplicates=", t.duplicates, " rejected=", t.rejected,
                   " unacknowledged=", t.unacknowledged, " not_sent=", t.not_sent,
                   " retries=", t.retries, " passes=", t.passes);
  for (const auto& [reason, n] : r.reasons) absl::StrAppend(&s, " [", n, " ", reason, "]");
  return s;
}

// A port nothing listens on (bound, then released).
uint16_t UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class EventReplayerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir("replay_it");
    TestConfig config;
    config.engine_toml = "partitions = 2\n";
    config.server_toml = absl::StrCat("max_batch_events = ", kMaxBatchEvents,
                                      "\n"
                                      "access_log = \"\"\n");
    const std::string config_file = dir_->File("persona.toml");
    if (auto s = testing_util::WriteConfigFile(config_file, config); !s.ok()) {
      start_error_ = s.ToString();
      return;
    }
    ServerOptions options;
    options.data_dir = dir_->File("data");
    options.config_file = config_file;
    auto server = ServerProcess::Start(options);
    if (server.ok()) {
      server_ = server->release();
    } else {
      start_error_ = server.status().ToString();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << start_error_;
    ASSERT_TRUE(server_->running()) << server_->OutputTail();
    client_ = server_->Client();
  }

  static ReplayOptions Options(const std::vector<std::string>& files) {
    ReplayOptions o;
    o.url = server_->BaseUrl();
    o.files = files;
    o.rate = 0;
    o.batch = 50;
    o.connections = 2;
    o.timeout = std::chrono::seconds(10);
    return o;
  }

  // The user's stats.events, -1 when the server does not know the user.
  int64_t ProfileEvents(const std::string& user) {
    auto r = client_.Get("/v1/users/" + user + "/profile?fields=stats");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->status == 404) return -1;
    EXPECT_EQ(r->status, 200) << r->Describe();
    return Json(r->body).Int("/stats/events").value_or(-2);
  }

  static inline ScopedTempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline std::string start_error_;
  HttpClient client_;
};

TEST_F(EventReplayerTest, EveryEventOfTheFileReachesTheServersProfiles) {
  const std::string file = dir_->File("all.jsonl");
  const auto users = WriteEvents(file, "all", 12, 25);
  Replay replay(Options({file}));
  const ReplayReport r = replay.Run();
  ASSERT_TRUE(r.status.ok()) << Describe(r) << "\n" << replay.All();
  EXPECT_EQ(r.totals.read, 300u) << Describe(r);
  EXPECT_EQ(r.totals.sent, 300u) << Describe(r);
  EXPECT_EQ(r.totals.accepted, 300u) << Describe(r);
  EXPECT_EQ(r.totals.duplicates, 0u) << Describe(r);
  EXPECT_EQ(r.totals.rejected, 0u) << Describe(r);
  EXPECT_EQ(r.totals.unacknowledged, 0u) << Describe(r);
  EXPECT_EQ(r.totals.not_sent, 0u) << Describe(r);
  EXPECT_EQ(r.totals.batches, 6u) << Describe(r);
  EXPECT_EQ(r.totals.passes, 1u) << Describe(r);
  EXPECT_GT(r.totals.p99_ms, 0) << Describe(r);
  for (const std::string& u : users) EXPECT_EQ(ProfileEvents(u), 25) << u;

  // The same file again: the server knows every event id, so all are acknowledged as duplicates.
  Replay again(Options({file}));
  const ReplayReport r2 = again.Run();
  ASSERT_TRUE(r2.status.ok()) << Describe(r2);
  EXPECT_EQ(r2.totals.accepted, 0u) << Describe(r2);
  EXPECT_EQ(r2.totals.duplicates, 300u) << Describe(r2);
  EXPECT_EQ(r2.totals.acknowledged(), 300u) << Describe(r2);
  for (const std::string& u : users) EXPECT_EQ(ProfileEvents(u), 25) << u;
}

TEST_F(EventReplayerTest, BadLinesAreReportedByLineAndTheRestIsSent) {
  const std::string file = dir_->File("bad.jsonl");
  const auto users =
      WriteEvents(file, "bad", 4, 25,
                  {{37, "{not json"},
                   {50, absl::StrCat(R"({"user_id":"bad-1","type":"purchase","ts":)", kBaseTs,
                                     R"(,"item_id":"sku-1","price":-3})")}});
  Replay replay(Options({file}));
  const ReplayReport r = replay.Run();
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(replay.Count(file + ": line 37: "), 1) << replay.All();
  EXPECT_EQ(replay.Count(file + ": line 50: field 'price': "), 1) << replay.All();
  EXPECT_EQ(r.totals.bad_lines, 2u) << Describe(r);
  EXPECT_EQ(r.totals.read, 98u) << Describe(r);
  EXPECT_EQ(r.totals.sent, 98u) << Describe(r);
  EXPECT_EQ(r.totals.accepted, 98u) << Describe(r);
  int64_t total = 0;
  for (const std::string& u : users) total += ProfileEvents(u);
  EXPECT_EQ(total, 98);
}

TEST_F(EventReplayerTest, RateIsHeldOpenLoop) {
  const std::string file = dir_->File("rate.jsonl");
  WriteEvents(file, "rate", 10, 100);
  ReplayOptions o = Options({file});
  o.rate = 2000;
  o.batch = 100;
  o.progress_interval = std::chrono::milliseconds(100);
  Replay replay(o);
  const auto start = std::chrono::steady_clock::now();
  const ReplayReport r = replay.Run();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(r.totals.accepted, 1000u) << Describe(r);
  // 1000 events at 2000/s: the last batch is due at 0.5 s.
  EXPECT_GE(secs, 0.4);
  EXPECT_LT(secs, 10.0);
  // Progress every 100 ms: counts that only grow, and the rate of the interval near 2000/s.
  std::lock_guard lock(replay.mu);
  ASSERT_GE(replay.reports.size(), 3u);
  for (size_t i = 1; i < replay.reports.size(); ++i) {
    EXPECT_GE(replay.reports[i].sent, replay.reports[i - 1].sent);
    EXPECT_GE(replay.reports[i].accepted, replay.reports[i - 1].accepted);
  }
  double sent_per_s = 0;
  for (const ReplayProgress& p : replay.reports) sent_per_s += p.events_per_s;
  sent_per_s /= replay.reports.size();
  EXPECT_GT(sent_per_s, 1000);
  EXPECT_LT(sent_per_s, 4000);
}

TEST_F(EventReplayerTest, StopEndsALoopCleanly) {
  const std::string file = dir_->File("stop.jsonl");
  WriteEvents(file, "stop", 4, 50);
  ReplayOptions o = Options({file});
  o.loop = true;
  o.rate = 2000;
  Replay replay(o);
  ReplayReport r;
  std::thread runner([&] { r = replay.Run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const auto stop = std::chrono::steady_clock::now();
  replay.replayer->Stop();
  runner.join();
  const double stop_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop).count();
  EXPECT_LT(stop_secs, 3.0);
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_GE(r.totals.sent, 500u) << Describe(r);
  EXPECT_GE(r.totals.passes, 2u) << Describe(r);
  // Whatever was sent was answered; whatever was read and not sent is counted as such.
  EXPECT_EQ(r.totals.unacknowledged, 0u) << Describe(r);
  EXPECT_EQ(r.totals.acknowledged(), r.totals.sent) << Describe(r);
  EXPECT_EQ(r.totals.sent + r.totals.not_sent, r.totals.read) << Describe(r);
  // Repeats without a shift are the same events: the server applied each once.
  EXPECT_EQ(r.totals.accepted, 200u) << Describe(r);
  EXPECT_EQ(ProfileEvents("stop-0"), 50);

  // Stop before Run: nothing is sent.
  Replay idle(Options({file}));
  idle.replayer->Stop();
  const ReplayReport ri = idle.Run();
  EXPECT_TRUE(ri.status.ok()) << Describe(ri);
  EXPECT_EQ(ri.totals.sent, 0u) << Describe(ri);
}

TEST_F(EventReplayerTest, LoopShiftMakesEveryRepeatNewEvents) {
  const std::string file = dir_->File("shift.jsonl");
  WriteEvents(file, "shift", 2, 10);
  ReplayOptions o = Options({file});
  o.loop_shift = true;
  o.rate = 200;
  o.duration = std::chrono::milliseconds(800);
  Replay replay(o);
  const ReplayReport r = replay.Run();
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_GE(r.totals.passes, 3u) << Describe(r);
  EXPECT_EQ(r.totals.duplicates, 0u) << Describe(r);
  EXPECT_EQ(r.totals.unacknowledged, 0u) << Describe(r);
  EXPECT_EQ(r.totals.accepted, r.totals.sent) << Describe(r);
  EXPECT_EQ(ProfileEvents("shift-0") + ProfileEvents("shift-1"),
            static_cast<int64_t>(r.totals.accepted));
}

TEST_F(EventReplayerTest, BatchRejectedByTheServerIsCountedAndReportedOnce) {
  const std::string file = dir_->File("big.jsonl");
  WriteEvents(file, "big", 3, 100);
  ReplayOptions o = Options({file});
  o.batch = kMaxBatchEvents + 50;  // 413 batch_too_large
  Replay replay(o);
  const ReplayReport r = replay.Run();
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(r.totals.sent, 300u) << Describe(r);
  EXPECT_EQ(r.totals.rejected, 300u) << Describe(r);
  EXPECT_EQ(r.totals.accepted, 0u) << Describe(r);
  EXPECT_EQ(r.reasons.size(), 1u) << Describe(r);
  EXPECT_EQ(r.reasons.begin()->second, 300u) << Describe(r);
  EXPECT_EQ(replay.Count("batch_too_large"), 1) << replay.All();
  EXPECT_EQ(ProfileEvents("big-0"), -1);
}

TEST_F(EventReplayerTest, UnreachableServerIsGivenUpAfterTheTimeout) {
  const std::string file = dir_->File("gone.jsonl");
  WriteEvents(file, "gone", 2, 10);
  ReplayOptions o = Options({file});
  o.url = absl::StrCat("http://127.0.0.1:", UnusedPort());
  o.timeout = std::chrono::seconds(1);
  Replay replay(o);
  const auto start = std::chrono::steady_clock::now();
  const ReplayReport r = replay.Run();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(absl::IsUnavailable(r.status)) << Describe(r);
  EXPECT_NE(r.status.message().find("gave up"), std::string::npos) << r.status;
  EXPECT_GE(secs, 0.9);
  EXPECT_LT(secs, 8.0);
  EXPECT_EQ(r.totals.acknowledged(), 0u) << Describe(r);
  EXPECT_GT(r.totals.unacknowledged, 0u) << Describe(r);
  EXPECT_EQ(r.totals.unacknowledged + r.totals.not_sent, 20u) << Describe(r);
}

TEST_F(EventReplayerTest, BadUrlAndMissingFileFailBeforeSending) {
  const std::string file = dir_->File("ok.jsonl");
  WriteEvents(file, "ok", 1, 1);
  for (const char* url : {"127.0.0.1:8080", "https://127.0.0.1:1", "http://:80", "http://h:x"}) {
    ReplayOptions o = Options({file});
    o.url = url;
    Replay replay(o);
    EXPECT_TRUE(absl::IsInvalidArgument(replay.Run().status)) << url;
  }
  Replay missing(Options({file, dir_->File("no-such-file.jsonl")}));
  const ReplayReport r = missing.Run();
  EXPECT_TRUE(absl::IsInvalidArgument(r.status)) << Describe(r);
  EXPECT_NE(r.status.message().find("no-such-file.jsonl"), std::string::npos) << r.status;
  EXPECT_EQ(r.totals.sent, 0u);
}

// ---------------------------------------------------------------------------------------------
// API keys: a server of its own.

TEST(EventReplayerApiKeyTest, TheKeyIsSentAndARefusedKeyStopsTheReplay) {
  ScopedTempDir dir("replay_keys");
  TestConfig config;
  config.server_toml = "access_log = \"\"\n";
  config.api_keys = {{"ingester", "secret-ingest", {"ingest"}},
                     {"reader", "secret-read", {"read"}}};
  ASSERT_TRUE(testing_util::WriteConfigFile(dir.File("persona.toml"), config).ok());
  ServerOptions options;
  options.data_dir = dir.File("data");
  options.config_file = dir.File("persona.toml");
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string file = dir.File("keys.jsonl");
  WriteEvents(file, "keys", 2, 100);

  auto replay_with = [&](const std::string& key) {
    ReplayOptions o;
    o.url = (*server)->BaseUrl();
    o.files = {file};
    o.rate = 0;
    o.batch = 20;
    o.api_key = key;
    o.timeout = std::chrono::seconds(10);
    return EventReplayer(o, {}).Run();
  };
  const ReplayReport ok = replay_with("secret-ingest");
  EXPECT_TRUE(ok.status.ok()) << Describe(ok);
  EXPECT_EQ(ok.totals.accepted, 200u) << Describe(ok);

  const ReplayReport none = replay_with("");
  EXPECT_TRUE(absl::IsUnauthenticated(none.status)) << Describe(none);
  EXPECT_EQ(none.totals.accepted, 0u) << Describe(none);
  const ReplayReport wrong = replay_with("secret-wrong");
  EXPECT_TRUE(absl::IsUnauthenticated(wrong.status)) << Describe(wrong);
  const ReplayReport read_only = replay_with("secret-read");
  EXPECT_TRUE(absl::IsPermissionDenied(read_only.status)) << Describe(read_only);
  // Refused early: the rest of the file is not sent batch after batch.
  EXPECT_LT(read_only.totals.sent, 200u) << Describe(read_only);
}

// ---------------------------------------------------------------------------------------------
// Retry-After, against a stub that answers a scripted status per request.

class ScriptedServer {
 public:
  // Answers request i with statuses[i] (the last one repeats): 429/503 with Retry-After: 1 and an
  // error body, 200 with every event of the body accepted.
  explicit ScriptedServer(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 8);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  void Serve() {
    while (true) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      ServeConnection(fd);
      close(fd);
    }
  }
  void ServeConnection(int fd) {
    std::string in;
    char buf[65536];
    while (true) {
      size_t head_end;
      while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, n);
      }
      const std::string head = in.substr(0, head_end);
      size_t length = 0;
      if (const size_t at = head.find("Content-Length: "); at != std::string::npos) {
        length = std::stoul(head.substr(at + 16));
      }
      while (in.size() < head_end + 4 + length) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, n);
      }
      const std::string body = in.substr(head_end + 4, length);
      in.erase(0, head_end + 4 + length);
      int status;
      {
        std::lock_guard lock(mu_);
        status = statuses_[std::min(bodies_.size(), statuses_.size() - 1)];
        bodies_.push_back(body);
      }
      size_t events = 0;
      for (size_t at = 0; (at = body.find("\"user_id\"", at)) != std::string::npos; ++at) ++events;
      const std::string answer =
          status == 200
              ? absl::StrCat(R"({"accepted":)", events, R"(,"duplicates":0,"rejected":[]})")
              : R"({"error":"overloaded","detail":"partition queue is full"})";
      const std::string response =
          absl::StrCat("HTTP/1.1 ", status, status == 200 ? " OK" : " Busy",
                       "\r\nContent-Type: application/json\r\nContent-Length: ", answer.size(),
                       status == 200 ? "" : "\r\nRetry-After: 1", "\r\n\r\n", answer);
      if (write(fd, response.data(), response.size()) != static_cast<ssize_t>(response.size())) {
        return;
      }
    }
  }

  std::vector<int> statuses_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
};

TEST(EventReplayerRetryTest, OverloadedAnswerIsRetriedAfterRetryAfterWithTheSameBatch) {
  ScopedTempDir dir("replay_retry");
  const std::string file = dir.File("retry.jsonl");
  WriteEvents(file, "retry", 1, 30);
  ScriptedServer stub({429, 503, 200});
  ReplayOptions o;
  o.url = stub.url();
  o.files = {file};
  o.rate = 0;
  o.batch = 30;
  o.connections = 1;
  o.timeout = std::chrono::seconds(10);
  std::vector<std::string> messages;
  EventReplayer replayer(o, [&](std::string_view m) { messages.emplace_back(m); });
  const auto start = std::chrono::steady_clock::now();
  const ReplayReport r = replayer.Run();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.status.ok()) << Describe(r);
  EXPECT_EQ(r.totals.accepted, 30u) << Describe(r);
  EXPECT_EQ(r.totals.retries, 2u) << Describe(r);
  EXPECT_EQ(r.totals.sent, 30u) << Describe(r);
  EXPECT_GE(secs, 1.9);  // two Retry-After: 1
  // Latency counts the waits: it is measured from when the batch was due.
  EXPECT_GE(r.totals.max_ms, 1900) << Describe(r);
  const std::vector<std::string> bodies = stub.bodies();
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_EQ(bodies[0], bodies[1]);
  EXPECT_EQ(bodies[0], bodies[2]);
  int told = 0;
  for (const std::string& m : messages) told += m.find("HTTP 429 overloaded") != std::string::npos;
  EXPECT_EQ(told, 1);
}

TEST(EventReplayerRetryTest, ServerThatStaysOverloadedIsGivenUpAfterTheTimeout) {
  ScopedTempDir dir("replay_overload");
  const std::string file = dir.File("overload.jsonl");
  WriteEvents(file, "overload", 1, 10);
  ScriptedServer stub({429});
  ReplayOptions o;
  o.url = stub.url();
  o.files = {file};
  o.rate = 0;
  o.connections = 1;
  o.timeout = std::chrono::milliseconds(1500);
  const ReplayReport r = EventReplayer(o, {}).Run();
  EXPECT_TRUE(absl::IsUnavailable(r.status)) << Describe(r);
  EXPECT_EQ(r.totals.unacknowledged, 10u) << Describe(r);
}

}  // namespace
}  // namespace persona::serve
