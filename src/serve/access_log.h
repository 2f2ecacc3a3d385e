// AccessLog: one JSON object per line for every HTTP exchange, e.g.
//   {"ts":"2026-11-22T10:00:00.123Z","method":"GET","target":"/v1/users/u1/profile",
//    "route":"/v1/users/{id}/profile","status":200,"req_bytes":0,"resp_bytes":512,
//    "duration_us":87,"remote":"127.0.0.1:5555","key":"shop"}
// Lines go through a bounded in-memory queue to a background thread that writes the file, so an
// I/O thread never waits for the disk: when the writer falls behind by more than kQueueLines,
// the oldest queued lines are dropped (and counted) instead.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "serve/http_server.h"

namespace spdlog {
class async_logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace persona::serve {

class AccessLog {
 public:
  static constexpr size_t kQueueLines = 8192;

  // `destination`: "-" = stderr, "" = disabled (Write does nothing), anything else = a file path,
  // opened for appending and created if missing. Fails when the file cannot be opened.
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(std::string_view destination);
  // Flushes what is queued, then stops the writer thread.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const { return logger_ != nullptr; }
  // Queues one line for `x`; `key_name` is the authenticated API key's name ("" = none, written
  // as null). Thread-safe and never blocks on I/O.
  void Write(const HttpExchange& x, std::string_view key_name);
  // Returns once every line queued before the call is written and flushed to the destination
  // (or after 5 s if the writer is stuck, e.g. on a hung disk).
  void Flush();
  // Lines dropped so far because the queue was full.
  uint64_t dropped() const;

 private:
  // The writer thread's sink: forwards to the file or stderr and reports completed flushes.
  class Sink;

  AccessLog() = default;

  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::async_logger> logger_;
};

}  // namespace persona::serve
