#include "serve/access_log.h"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/json_writer.h"
#include "common/time_util.h"

namespace persona::serve {
namespace {

constexpr auto kFlushWait = std::chrono::seconds(5);

// Request targets and methods are client bytes. JSON text must be UTF-8, so any byte that does
// not start a well-formed sequence becomes U+FFFD; otherwise one hostile request could make a
// line unreadable for every tool that consumes the log.
std::string_view ValidUtf8(std::string_view s, std::string& scratch) {
  auto sequence_length = [&](size_t i) -> size_t {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) return 1;
    size_t length;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return 0;
    }
    if (i + length > s.size()) return 0;
    if (byte(i + 1) < low || byte(i + 1) > high) return 0;
    for (size_t k = 2; k < length; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    }
    return length;
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t n = sequence_length(i);
    if (n == 0) break;
    i += n;
  }
  if (i == s.size()) return s;  // the common case: no copy
  scratch.assign(s.substr(0, i));
  while (i < s.size()) {
    size_t n = sequence_length(i);
    if (n == 0) {
      scratch.append("\xEF\xBF\xBD");
      ++i;
    } else {
      scratch.append(s.substr(i, n));
      i += n;
    }
  }
  return scratch;
}

std::atomic<uint64_t> next_logger_id{0};

}  // namespace

// Runs on the writer thread. Besides forwarding, it flushes whenever the queue has drained (so
// an idle server's log is complete on disk within one line's latency, while a busy one batches
// writes), and counts explicit flushes so Flush() can wait for its own.
class AccessLog::Sink final : public spdlog::sinks::sink {
 public:
  explicit Sink(std::shared_ptr<spdlog::sinks::sink> target) : target_(std::move(target)) {}

  void set_pool(spdlog::details::thread_pool* pool) { pool_ = pool; }

  void log(const spdlog::details::log_msg& msg) override {
    target_->log(msg);
    if (pool_ != nullptr && pool_->queue_size() == 0) target_->flush();
  }
  void flush() override {
    target_->flush();
    {
      std::lock_guard lock(mu_);
      ++completed_flushes_;
    }
    flushed_.notify_all();
  }
  void set_pattern(const std::string& pattern) override { target_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    target_->set_formatter(std::move(formatter));
  }

  // Queues a flush behind every line queued so far and waits until the writer has done it.
  // Tickets are taken in queue order (under request_mu_) and the single writer thread completes
  // flushes in that order, so completed >= ticket means ours is done.
  void FlushAndWait(spdlog::async_logger& logger) {
    uint64_t ticket;
    {
      std::lock_guard lock(request_mu_);
      ticket = ++requested_flushes_;
      logger.flush();
    }
    std::unique_lock lock(mu_);
    flushed_.wait_for(lock, kFlushWait, [&] { return completed_flushes_ >= ticket; });
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> target_;
  spdlog::details::thread_pool* pool_ = nullptr;  // owned by the AccessLog, outlives the writes
  std::mutex request_mu_;
  uint64_t requested_flushes_ = 0;
  std::mutex mu_;
  std::condition_variable flushed_;
  uint64_t completed_flushes_ = 0;
};

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Open(std::string_view destination) {
  std::unique_ptr<AccessLog> log(new AccessLog());  // private constructor
  if (destination.empty()) return log;
  std::shared_ptr<spdlog::sinks::sink> target;
  if (destination == "-") {
    target = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      target = std::make_shared<spdlog::sinks::basic_file_sink_mt>(std::string(destination),
                                                                   /*truncate=*/false);
    } catch (const spdlog::spdlog_ex& e) {
      return absl::UnavailableError("cannot open access log \"" + std::string(destination) +
                                    "\": " + e.what());
    }
  }
  log->sink_ = std::make_shared<Sink>(std::move(target));
  log->pool_ = std::make_shared<spdlog::details::thread_pool>(kQueueLines, /*threads_n=*/1);
  log->sink_->set_pool(log->pool_.get());
  // Not registered with spdlog's global registry: nothing else needs to find it, and several
  // instances (tests, a reload) cannot collide on names. The name only labels spdlog's own
  // error messages.
  log->logger_ = std::make_shared<spdlog::async_logger>(
      absl::StrCat("access_log_", next_logger_id.fetch_add(1)), log->sink_, log->pool_,
      spdlog::async_overflow_policy::overrun_oldest);
  log->logger_->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%v", spdlog::pattern_time_type::utc, std::string("\n")));
  log->logger_->set_level(spdlog::level::info);
  return log;
}

AccessLog::~AccessLog() {
  if (logger_ == nullptr) return;
  logger_->flush();
  logger_.reset();
  // The pool's destructor lets its thread write everything still queued, then joins it.
  pool_.reset();
  sink_.reset();
}

void AccessLog::Write(const HttpExchange& x, std::string_view key_name) {
  if (logger_ == nullptr) return;
  // One writer and scratch buffer per I/O thread: no allocation per line once warmed up.
  thread_local JsonWriter json;
  thread_local std::string scratch;
  json.Clear();
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  json.BeginObject();
  json.Key("ts").String(FormatIsoTime(now_ms));
  json.Key("method").String(ValidUtf8(x.method, scratch));
  json.Key("target").String(ValidUtf8(x.target, scratch));
  json.Key("route").String(ValidUtf8(x.route, scratch));
  json.Key("status").Int(x.status);
  json.Key("req_bytes").Uint(x.request_bytes);
  json.Key("resp_bytes").Uint(x.response_bytes);
  json.Key("duration_us")
      .Int(std::chrono::duration_cast<std::chrono::microseconds>(x.duration).count());
  json.Key("remote").String(ValidUtf8(x.remote, scratch));
  if (key_name.empty()) {
    json.Key("key").Null();
  } else {
    json.Key("key").String(ValidUtf8(key_name, scratch));
  }
  json.EndObject();
  // The string_view overload copies the line as is (no format-string interpretation of braces).
  logger_->log(spdlog::level::info, spdlog::string_view_t(json.str()));
}

void AccessLog::Flush() {
  if (logger_ == nullptr) return;
  sink_->FlushAndWait(*logger_);
}

uint64_t AccessLog::dropped() const { return pool_ == nullptr ? 0 : pool_->overrun_counter(); }

}  // namespace persona::serve
