#include "gen/gen_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/time_util.h"

namespace persona {
namespace {

absl::Status CheckFraction(const char* name, double value) {
  if (std::isfinite(value) && value >= 0 && value <= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(name, " must be in [0, 1], got ", value));
}

}  // namespace

absl::Status ValidateGenOptions(const GenOptions& o) {
  if (o.users == 0) return absl::InvalidArgumentError("users must be >= 1");
  if (o.users > 0xfffffff0u) return absl::InvalidArgumentError("users must be < 2^32");
  if (o.items > 0xfffffff0u) return absl::InvalidArgumentError("items must be < 2^32");
  if (o.top_categories < 2) {
    return absl::InvalidArgumentError(
        "top_categories must be >= 2 (a shifted user moves between two top-level categories)");
  }
  if (o.items < o.top_categories) {
    return absl::InvalidArgumentError(
        absl::StrCat("items (", o.items, ") must be >= top_categories (", o.top_categories, ")"));
  }
  if (o.start_ms < kEpoch2000Ms) {
    return absl::InvalidArgumentError("start_ms must be at or after 2000-01-01T00:00:00Z");
  }
  if (o.span_ms <= 0) return absl::InvalidArgumentError("span_ms must be > 0");
  for (auto [name, value] :
       {std::pair{"shift_fraction", o.shift_fraction},
        std::pair{"high_spender_fraction", o.high_spender_fraction},
        std::pair{"bot_fraction", o.bot_fraction}, std::pair{"late_fraction", o.late_fraction}}) {
    if (absl::Status s = CheckFraction(name, value); !s.ok()) return s;
  }
  if (o.shift_fraction + o.high_spender_fraction + o.bot_fraction > 1) {
    return absl::InvalidArgumentError(
        "shift_fraction + high_spender_fraction + bot_fraction must be <= 1");
  }
  if (!std::isfinite(o.item_zipf) || o.item_zipf < 0) {
    return absl::InvalidArgumentError("item_zipf must be >= 0");
  }
  return absl::OkStatus();
}

}  // namespace persona
