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
  // One writer per I/O thread: no allocation per line once warmed up. Client bytes that are not
  // UTF-8 (targets are the client's) come out as U+FFFD: JsonWriter guarantees valid JSON.
  thread_local JsonWriter json;
  json.Clear();
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  json.BeginObject();
  json.Key("ts").String(FormatIsoTime(now_ms));
  json.Key("method").String(x.method);
  json.Key("target").String(x.target);
  json.Key("route").String(x.route);
  json.Key("status").Int(x.status);
  json.Key("req_bytes").Uint(x.request_bytes);
  json.Key("resp_bytes").Uint(x.response_bytes);
  json.Key("duration_us")
      .Int(std::chrono::duration_cast<std::chrono::microseconds>(x.duration).count());
  json.Key("remote").String(x.remote);
  if (key_name.empty()) {
    json.Key("key").Null();
  } else {
    json.Key("key").String(key_name);
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
