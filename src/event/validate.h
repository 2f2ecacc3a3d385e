// Schema and type-specific rules for events. Stateless checks live here; the time-skew check needs
// the partition's watermark and is applied by the engine through CheckEventTime.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/time_util.h"
#include "event/event.h"

namespace persona {

struct ValidationLimits {
  size_t max_id_length = 256;        // user_id, item_id, event_id, order_id, session_id, ...
  size_t max_category_length = 512;  // category_id / category_path
  size_t max_query_length = 1024;
  size_t max_text_length = 16384;    // review text
  size_t max_attrs_length = 8192;    // attrs JSON text
  // Events later than max(watermark, wall clock) + max_future_skew_ms are rejected (the engine
  // passes that maximum to CheckEventTime).
  int64_t max_future_skew_ms = kDayMs;
};

// Why an event was rejected: the field and the rule it broke, e.g.
// {field: "price", rule: "must be a number >= 0"}. `field` is empty for whole-record problems
// (malformed JSON, wrong column count).
struct Rejection {
  std::string field;
  std::string rule;
};

// Stateless checks: required fields, type-specific rules, string lengths, ts >= 2000-01-01,
// rating in 1..5, price >= 0, quantity >= 1 where required. `price_optional` relaxes the price
// requirement for source formats without a price column.
std::optional<Rejection> ValidateEvent(const Event& e, const ValidationLimits& limits,
                                       bool price_optional);

// The watermark-relative check: ts must not exceed watermark + limits.max_future_skew_ms.
// A watermark of 0 (nothing seen yet) accepts any time.
std::optional<Rejection> CheckEventTime(const Event& e, int64_t watermark_ms,
                                        const ValidationLimits& limits);

}  // namespace persona
