// An in-memory, time-ordered copy of an event stream for offline work (point-in-time datasets,
// evaluation, model training): read from an event file in any import format, or from a data
// directory's log (read-only, so a running server may hold the store). Events keep pointing into
// the batches the log owns.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "event/csv_formats.h"
#include "event/event.h"

namespace persona {

class EventLog {
 public:
  // Reads `path` in `format` (taobao, rees46, jsonl, ...). Lines that fail validation are skipped
  // and counted in skipped(); a read error or an unknown path is an error naming the path.
  // `progress(bytes_read, total_bytes)` is called now and then when given.
  static absl::StatusOr<EventLog> FromFile(
      const std::string& path, InputFormat format,
      const std::function<void(uint64_t, uint64_t)>& progress = nullptr);
  // Reads every partition's log of the data directory `dir` (redacted records are skipped).
  static absl::StatusOr<EventLog> FromDataDir(const std::string& dir);

  EventLog(EventLog&&) noexcept = default;
  EventLog& operator=(EventLog&&) noexcept = default;

  // All events, sorted by (ts_ms, input order): a stable sort, so same-time events keep the order
  // they were read in.
  const std::vector<const Event*>& events() const { return events_; }
  uint64_t skipped() const { return skipped_; }
  int64_t min_ts_ms() const { return events_.empty() ? 0 : events_.front()->ts_ms; }
  int64_t max_ts_ms() const { return events_.empty() ? 0 : events_.back()->ts_ms; }

 private:
  EventLog() = default;
  std::vector<EventBatch> batches_;
  std::vector<const Event*> events_;
  uint64_t skipped_ = 0;
};

}  // namespace persona
