// What `persona gen` is asked to produce. The field names are the contract with the CLI; the
// shape constants behind them (behaviour mix, session gaps, prices, ...) live in gen/shape.h.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace persona {

struct GenOptions {
  uint64_t events = 1'000'000;
  uint64_t users = 100'000;
  uint64_t items = 200'000;
  uint32_t top_categories = 12;
  uint64_t seed = 42;
  int64_t start_ms = 1511568000000;  // 2017-11-25T00:00:00Z, the start of the taobao log
  int64_t span_ms = 9 * 86400000LL;  // users' activity is calibrated to fill this span
  // Planted users (disjoint groups) and out-of-order delivery, as fractions of users / events.
  double shift_fraction = 0.05, high_spender_fraction = 0.02, bot_fraction = 0.005;
  double late_fraction = 0.0;
  // jsonl = the native format; taobao = the 5-column CSV user,item,category,behavior,seconds
  // (only views, carts, favs and purchases); csv = the native fields as CSV with a header row.
  enum class Format { kJsonl, kTaobao, kCsv } format = Format::kJsonl;
  // Item popularity ~ rank^-item_zipf (0.8 fits the rees46 and taobao slices; see gen/shape.h).
  double item_zipf = 0.8;
};

// InvalidArgument naming the field when options cannot describe a stream: users or items of 0,
// fewer than 2 top-level categories or more of them than items, start before 2000-01-01 (events
// would fail validation), span <= 0, a fraction outside [0, 1], planted fractions summing above
// 1, or a negative Zipf exponent.
absl::Status ValidateGenOptions(const GenOptions& options);

}  // namespace persona
