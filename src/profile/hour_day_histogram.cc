#include "profile/hour_day_histogram.h"

#include "common/time_util.h"

namespace persona {
namespace {

template <size_t N>
void Increment(std::array<uint16_t, N>& buckets, size_t i) {
  if (buckets[i] == UINT16_MAX) {
    for (uint16_t& b : buckets) b >>= 1;
  }
  ++buckets[i];
}

}  // namespace

void HourDayHistogram::Add(int64_t ts_ms) {
  const int64_t day = FloorDiv(ts_ms, kDayMs);
  const int64_t hour = FloorDiv(ts_ms - day * kDayMs, kHourMs);
  // 1970-01-01 was a Thursday (index 3 with Monday = 0).
  const int64_t weekday = ((day + 3) % 7 + 7) % 7;
  Increment(hours_, static_cast<size_t>(hour));
  Increment(weekdays_, static_cast<size_t>(weekday));
}

}  // namespace persona
