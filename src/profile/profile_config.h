// Settings that shape how events become a profile. Loaded from the [profile] table of the TOML config
// (see engine/config.h); defaults are the documented product defaults.
#pragma once

#include <array>
#include <cstdint>

#include "common/time_util.h"
#include "event/event.h"

namespace persona {

struct ProfileConfig {
  // Interest decay: an event's weight halves every `half_life_ms` of event time.
  int64_t half_life_ms = 7 * kDayMs;
  // Interest weight per event type, indexed by EventType.
  // view, click, search, cart, remove_cart, fav, purchase, review, refund
  std::array<double, kEventTypeCount> type_weight = {1, 1, 1, 3, 0, 2, 5, 2, 0};
  // A gap of inactivity longer than this starts a new session (when events carry no session_id).
  int64_t session_gap_ms = 30 * kMinuteMs;
  // Recent item sequence length kept per profile.
  uint32_t sequence_length = 200;
  // Space-Saving capacities of the interest tables (entries kept; top-K shown is min(K, capacity)).
  uint32_t category_capacity = 24;
  uint32_t brand_capacity = 16;
  uint32_t item_capacity = 16;
  uint32_t keyword_capacity = 16;
  // Lifecycle: "new" while first seen within new_days; "active" while last seen within
  // dormant_after; "dormant" until churned_after; "churned" after that.
  int64_t new_ms = 7 * kDayMs;
  int64_t dormant_after_ms = 14 * kDayMs;
  int64_t churned_after_ms = 60 * kDayMs;
};

}  // namespace persona
