// Remembers the id hashes of accepted events so that a redelivered event (same event_id, or same
// content when it has none) is dropped instead of applied twice. One per partition, owned by its
// writer thread.
//
// An id is remembered while EITHER its event time is within `window_ms` of the watermark (late
// duplicates of live traffic) OR it is among the last `recent_events` ids accepted by the partition
// (producer retries and overlapping replays of old data, whose event times can be far behind the
// watermark). Arrival order is the log order, so recovery rebuilds exactly the same window.
// Memory is bounded by the events inside the window plus `recent_events`; expired entries are swept
// in amortised O(1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace persona {

class DedupWindow {
 public:
  DedupWindow(int64_t window_ms, uint64_t recent_events)
      : window_ms_(window_ms), recent_events_(recent_events) {}

  // Returns true when `id_hash` is remembered (a duplicate); otherwise records it as the next
  // accepted event with event time `ts_ms` and returns false.
  bool CheckAndInsert(uint64_t id_hash, int64_t ts_ms, int64_t watermark_ms);
  // Records an id without checking (log replay: the log holds only accepted events).
  void Insert(uint64_t id_hash, int64_t ts_ms, int64_t watermark_ms);

  size_t size() const { return seen_.size(); }

  // Serialises the live entries (checkpoint meta); Decode replaces the contents, false if corrupt.
  void Encode(std::string* out) const;
  bool Decode(std::string_view* in);

 private:
  struct Seen {
    int64_t ts_ms;
    uint64_t arrival;  // value of accepted_ when it was accepted
  };
  bool Expired(const Seen& s, int64_t watermark_ms) const {
    return s.ts_ms < watermark_ms - window_ms_ && s.arrival + recent_events_ < accepted_;
  }
  void MaybeSweep(int64_t watermark_ms);

  int64_t window_ms_;
  uint64_t recent_events_;
  uint64_t accepted_ = 0;
  absl::flat_hash_map<uint64_t, Seen> seen_;
  size_t sweep_at_ = 1 << 16;  // sweep when the map reaches this size
};

}  // namespace persona
