#include "profile/session_tracker.h"

#include <algorithm>

namespace persona {

void SessionTracker::Observe(int64_t ts_ms, uint32_t session_key, int64_t gap_ms) {
  if (count_ == 0) {
    current_start_ms_ = current_end_ms_ = ts_ms;
    current_key_ = session_key;
    count_ = 1;
    return;
  }
  const bool same = session_key != 0
                        ? session_key == current_key_
                        : ts_ms >= current_start_ms_ - gap_ms && ts_ms <= current_end_ms_ + gap_ms;
  if (same) {
    current_start_ms_ = std::min(current_start_ms_, ts_ms);
    current_end_ms_ = std::max(current_end_ms_, ts_ms);
    return;
  }
  if (count_ != UINT32_MAX) ++count_;
  if (ts_ms < current_start_ms_) return;  // a late event of an earlier session: zero duration
  const uint64_t closed =
      closed_seconds_ + static_cast<uint64_t>((current_end_ms_ - current_start_ms_) / 1000);
  closed_seconds_ = static_cast<uint32_t>(std::min<uint64_t>(closed, UINT32_MAX));
  current_start_ms_ = current_end_ms_ = ts_ms;
  current_key_ = session_key;
}

}  // namespace persona
