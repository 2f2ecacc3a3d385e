#include "profile/activity_rhythm.h"

#include <algorithm>

namespace persona {

void ActivityRhythm::Observe(EventType type, int64_t ts_ms, int64_t session_gap_ms) {
  if (ts_ms < 0) return;
  if (last_event_ms != 0 && ts_ms < last_event_ms) return;  // late arrival: the rhythm is in-order
  if (last_event_ms != 0 && ts_ms - last_event_ms < session_gap_ms) {
    // Welford in float: a mean of gaps below the session gap needs no more precision.
    const float gap = static_cast<float>(ts_ms - last_event_ms) / 1000.0f;
    ++gaps;
    const float delta = gap - gap_mean_s;
    gap_mean_s += delta / static_cast<float>(gaps);
    gap_m2 += delta * (gap - gap_mean_s);
  }
  last_event_ms = ts_ms;
  const uint32_t ts_s = static_cast<uint32_t>(std::min<int64_t>(ts_ms / 1000, UINT32_MAX));
  if (minute_events == 0 || ts_s >= minute_start_s + 60) {
    minute_start_s = ts_s;
    minute_events = 0;
  }
  if (minute_events != UINT16_MAX) ++minute_events;
  max_minute_events = std::max(max_minute_events, minute_events);
  switch (type) {
    case EventType::kView:
    case EventType::kClick:
      if (view_streak != UINT16_MAX) ++view_streak;
      max_view_streak = std::max(max_view_streak, view_streak);
      break;
    case EventType::kCart:
    case EventType::kFav:
    case EventType::kPurchase:
      view_streak = 0;
      break;
    default:
      break;  // searches, reviews, removals and refunds neither extend nor end a streak
  }
}

double ActivityRhythm::GapVariation() const {
  if (gaps < 2 || !(gap_mean_s > 0)) return std::nan("");
  const double var = std::max(0.0, static_cast<double>(gap_m2) / (gaps - 1));
  return std::sqrt(var) / gap_mean_s;
}

const char* AnomalyFlagName(uint8_t flag) {
  switch (flag) {
    case kAnomalyHighRate:
      return "high_rate";
    case kAnomalyRegularTiming:
      return "regular_timing";
    case kAnomalyViewBurst:
      return "view_burst";
    case kAnomalyCartChurn:
      return "cart_churn";
    default:
      return "";
  }
}

}  // namespace persona
