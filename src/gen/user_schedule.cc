#include "gen/user_schedule.h"

#include <algorithm>

namespace persona::gen {

UserSchedule::UserSchedule(const std::vector<int64_t>& first_ts_ms) {
  heap_.reserve(first_ts_ms.size());
  for (size_t u = 0; u < first_ts_ms.size(); ++u) {
    heap_.push_back(Entry{first_ts_ms[u], static_cast<uint32_t>(u)});
  }
  for (size_t i = heap_.size() / kArity + 1; i-- > 0;) SiftDown(i);
}

void UserSchedule::RescheduleTop(int64_t next_ts_ms) {
  heap_[0].ts_ms = next_ts_ms;
  SiftDown(0);
}

void UserSchedule::SiftDown(size_t i) {
  const size_t n = heap_.size();
  const Entry moving = heap_[i];
  for (;;) {
    const size_t first = kArity * i + 1;
    if (first >= n) break;
    const size_t last = std::min(first + kArity, n);
    size_t child = first;
    for (size_t c = first + 1; c < last; ++c) {
      if (heap_[c] < heap_[child]) child = c;
    }
    if (!(heap_[child] < moving)) break;
    heap_[i] = heap_[child];
    i = child;
  }
  heap_[i] = moving;
}

}  // namespace persona::gen
