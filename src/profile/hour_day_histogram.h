// When a user is active: events per UTC hour of day (24 buckets) and per UTC day of week (7,
// Monday first). Buckets are uint16 and, when one would overflow, every bucket of that histogram is
// halved: the shape (what the histograms are for) survives, the absolute counts do not (those live
// in Profile's counters). 62 bytes.
#pragma once

#include <array>
#include <cstdint>

namespace persona {

class HourDayHistogram {
 public:
  void Add(int64_t ts_ms);

  const std::array<uint16_t, 24>& hours() const { return hours_; }
  // Index 0 is Monday.
  const std::array<uint16_t, 7>& weekdays() const { return weekdays_; }

  // Replaces the state (decoding).
  void Restore(const std::array<uint16_t, 24>& hours, const std::array<uint16_t, 7>& weekdays) {
    hours_ = hours;
    weekdays_ = weekdays;
  }

 private:
  std::array<uint16_t, 24> hours_{};
  std::array<uint16_t, 7> weekdays_{};
};

}  // namespace persona
