// Per-user rate statistics behind the anomaly (bot) flags: how fast, how regularly and how
// one-sidedly a user acts. Updated by Profile::Apply from in-order events only (an event older
// than the latest one seen is a late arrival and leaves the rhythm unchanged, so these statistics
// depend on arrival order). 32 bytes inline in every profile.
//
//   events per minute   events in the current 60-second window (from the window's first event)
//                       and the largest such count ever seen
//   timing regularity   Welford mean and M2 of the gaps (seconds, at millisecond resolution)
//                       between consecutive in-order events less than the session gap apart:
//                       scripts act at near-constant
//                       intervals, people do not, so a low coefficient of variation is suspect
//   view streaks        consecutive views/clicks without a cart, fav or purchase, and the longest
#pragma once

#include <cmath>
#include <cstdint>

#include "event/event.h"

namespace persona {

struct ActivityRhythm {
  int64_t last_event_ms = 0;    // event time of the latest in-order event, 0 before any
  uint32_t minute_start_s = 0;  // start of the current 60-second window (epoch seconds)
  uint16_t minute_events = 0;
  uint16_t max_minute_events = 0;
  uint16_t view_streak = 0;
  uint16_t max_view_streak = 0;
  uint32_t gaps = 0;  // gaps counted into the mean and M2
  float gap_mean_s = 0;
  float gap_m2 = 0;

  // Folds one event in. `session_gap_ms` bounds the gaps that count as within-session.
  void Observe(EventType type, int64_t ts_ms, int64_t session_gap_ms);
  // Coefficient of variation (stddev / mean) of the within-session gaps; NaN with fewer than 2
  // gaps or a zero mean.
  double GapVariation() const;

  bool operator==(const ActivityRhythm&) const = default;
};

// Anomaly flags, a bit set kept in the profile (Profile::anomaly_flags) and set by the model
// stage's AnomalyDetector at update time.
enum AnomalyFlag : uint8_t {
  kAnomalyHighRate = 1,       // far more events per minute than the population
  kAnomalyRegularTiming = 2,  // machine-like constant gaps between events
  kAnomalyViewBurst = 4,      // a very long run of views without any other action
  kAnomalyCartChurn = 8,      // carts that are almost all removed again
};
inline constexpr int kAnomalyFlagCount = 4;
// "high_rate", "regular_timing", "view_burst", "cart_churn" for one flag bit; "" otherwise.
const char* AnomalyFlagName(uint8_t flag);

}  // namespace persona
