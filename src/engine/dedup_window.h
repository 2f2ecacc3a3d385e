// Remembers the id hashes of accepted events so that a redelivered event (same event_id, or same
// content when it has none) is dropped instead of applied twice. One per partition, owned by its
// writer thread.
//
// An id is remembered while EITHER its event time is within `window_ms` of the watermark (late
// duplicates of live traffic) OR it is among the last `recent_events` ids accepted by the partition
// (producer retries and overlapping replays of old data, whose event times can be far behind the
// watermark). Arrival order is the log order, so recovery rebuilds exactly the same window.
// Memory is bounded by the events inside the window plus `recent_events`; expired entries are swept
// in amortised O(1). An entry is 16 bytes (the id hash, the event time in whole seconds rounded up,
// the low 32 bits of its arrival number): under live traffic the window holds a day of ids, more
// than the profiles themselves, so every byte of it counts. Rounding the time up keeps an id at
// most a second longer; the arrival age is taken modulo 2^32, which can only keep an entry longer.
// Live runs and recovery use the same representation, so they keep exactly the same ids.
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
  // Approximate bytes per remembered id: the hash table's slot and control byte at its maximum
  // load factor (7/8).
  static constexpr size_t EntryBytes() { return (sizeof(uint64_t) + sizeof(Seen) + 1) * 8 / 7; }

  // Serialises the live entries (checkpoint meta); Decode replaces the contents, false if corrupt.
  void Encode(std::string* out) const;
  bool Decode(std::string_view* in);

 private:
  struct Seen {
    uint32_t ts_s;     // event time in seconds since 1970, rounded up, clamped to [0, 2^32)
    uint32_t arrival;  // low 32 bits of accepted_ when it was accepted
  };
  static uint32_t SecondsUp(int64_t ts_ms);
  Seen Make(int64_t ts_ms) const {
    return Seen{SecondsUp(ts_ms), static_cast<uint32_t>(accepted_)};
  }
  bool Expired(const Seen& s, int64_t watermark_ms) const {
    const uint32_t age = static_cast<uint32_t>(accepted_) - s.arrival;
    return int64_t{s.ts_s} * 1000 < watermark_ms - window_ms_ && age > recent_events_;
  }
  void MaybeSweep(int64_t watermark_ms);

  int64_t window_ms_;
  uint64_t recent_events_;
  uint64_t accepted_ = 0;
  absl::flat_hash_map<uint64_t, Seen> seen_;
  size_t sweep_at_ = 1 << 16;  // sweep when the map reaches this size
};

}  // namespace persona
