// Sessions of one user: how many, how long, how many events each. A session is identified by the
// event's session_id when it has one (a different id starts a new session) and otherwise by
// inactivity (an event more than `gap_ms` after the current session's last event starts a new one).
//
// Only the current session is kept (28 bytes), so this assumes events arrive roughly in time
// order: an out-of-order event that fits neither the current session's id nor its time span
// (extended by the gap on both sides) is counted as a session of its own with zero duration.
// Sessions are therefore not order-independent, unlike counts and interests.
#pragma once

#include <cstdint>

namespace persona {

class SessionTracker {
 public:
  // Assigns an event at `ts_ms` to a session. `session_key` is a non-zero hash of the event's
  // session_id, or 0 when the event has none.
  void Observe(int64_t ts_ms, uint32_t session_key, int64_t gap_ms);

  // Sessions seen, including the current one.
  uint32_t count() const { return count_; }
  // Sum of session durations (last event - first event), in ms: closed sessions at one-second
  // resolution plus the current one exactly.
  int64_t total_duration_ms() const {
    return static_cast<int64_t>(closed_seconds_) * 1000 + (current_end_ms_ - current_start_ms_);
  }
  int64_t current_start_ms() const { return current_start_ms_; }
  int64_t current_end_ms() const { return current_end_ms_; }
  uint32_t current_key() const { return current_key_; }
  uint32_t closed_seconds() const { return closed_seconds_; }

  // Replaces the state (decoding).
  void Restore(uint32_t count, uint32_t closed_seconds, int64_t start_ms, int64_t end_ms,
               uint32_t key) {
    count_ = count;
    closed_seconds_ = closed_seconds;
    current_start_ms_ = start_ms;
    current_end_ms_ = end_ms;
    current_key_ = key;
  }

 private:
  int64_t current_start_ms_ = 0;
  int64_t current_end_ms_ = 0;
  uint32_t count_ = 0;
  uint32_t closed_seconds_ = 0;  // saturating: 136 years of sessions
  uint32_t current_key_ = 0;
};

}  // namespace persona
