#include "event/validate.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace persona {
namespace {

Rejection Reject(std::string_view field, std::string rule) {
  return Rejection{std::string(field), std::move(rule)};
}

std::optional<Rejection> CheckLength(std::string_view field, std::string_view value, size_t limit) {
  if (value.size() <= limit) return std::nullopt;
  return Reject(field, absl::StrCat("longer than ", limit, " bytes"));
}

// Types whose whole meaning is "the user touched this item".
bool NeedsItem(EventType t) {
  switch (t) {
    case EventType::kView:
    case EventType::kClick:
    case EventType::kCart:
    case EventType::kRemoveCart:
    case EventType::kFav:
    case EventType::kPurchase:
    case EventType::kRefund:
    case EventType::kReview:
      return true;
    case EventType::kSearch:
      return false;
  }
  return false;
}

// "24h", "90m", "45s" or "1500ms": the skew limit as an operator wrote it in the config.
std::string FormatDurationMs(int64_t ms) {
  if (ms != 0 && ms % kHourMs == 0) return absl::StrCat(ms / kHourMs, "h");
  if (ms != 0 && ms % kMinuteMs == 0) return absl::StrCat(ms / kMinuteMs, "m");
  if (ms != 0 && ms % kSecondMs == 0) return absl::StrCat(ms / kSecondMs, "s");
  return absl::StrCat(ms, "ms");
}

constexpr char kTypeRule[] =
    "must be one of view, click, search, cart, remove_cart, fav, purchase, review, refund";

}  // namespace

std::optional<Rejection> ValidateEvent(const Event& e, const ValidationLimits& limits,
                                       bool price_optional) {
  if (e.user_id.empty()) return Reject("user_id", "is required");
  if (static_cast<int>(e.type) >= kEventTypeCount) return Reject("type", kTypeRule);
  if (e.ts_ms < kEpoch2000Ms) return Reject("ts", "must be at or after 2000-01-01T00:00:00Z");

  const struct {
    std::string_view field;
    std::string_view value;
    size_t limit;
  } lengths[] = {
      {"event_id", e.event_id, limits.max_id_length},
      {"user_id", e.user_id, limits.max_id_length},
      {"item_id", e.item_id, limits.max_id_length},
      {"order_id", e.order_id, limits.max_id_length},
      {"session_id", e.session_id, limits.max_id_length},
      {"device", e.device, limits.max_id_length},
      {"rec_id", e.rec_id, limits.max_id_length},
      {"brand", e.brand, limits.max_id_length},
      {"category_id", e.category_id, limits.max_category_length},
      {"category_path", e.category_path, limits.max_category_length},
      {"query", e.query, limits.max_query_length},
      {"text", e.text, limits.max_text_length},
      {"attrs", e.attrs_json, limits.max_attrs_length},
  };
  for (const auto& l : lengths) {
    if (auto r = CheckLength(l.field, l.value, l.limit)) return r;
  }

  const std::string_view type = EventTypeName(e.type);
  if (NeedsItem(e.type) && e.item_id.empty()) {
    return Reject("item_id", "is required for " + std::string(type));
  }
  // A present price must be usable in sums whatever the type; NaN is the "absent" encoding.
  const bool bad_price = e.has_price() && (!std::isfinite(e.price) || e.price < 0);
  switch (e.type) {
    case EventType::kPurchase:
    case EventType::kRefund:
      if (bad_price || (!e.has_price() && !price_optional)) {
        return Reject("price", "must be a number >= 0 for " + std::string(type));
      }
      if (e.quantity < 1) {
        return Reject("quantity", "must be an integer >= 1 for " + std::string(type));
      }
      break;
    case EventType::kSearch:
      if (e.query.empty()) return Reject("query", "is required for search");
      break;
    case EventType::kReview:
      if (e.rating == 0 && e.text.empty()) {
        return Reject("rating", "or a non-empty text is required for review");
      }
      break;
    default:
      break;
  }
  if (e.rating != 0 && (e.rating < 1 || e.rating > 5)) {
    return Reject("rating", "must be an integer 1..5");
  }
  if (bad_price) return Reject("price", "must be a number >= 0");
  // 0 is how an Event says "absent"; only purchases and refunds require a count.
  if (e.quantity < 0) return Reject("quantity", "must be an integer >= 1");
  return std::nullopt;
}

std::optional<Rejection> CheckEventTime(const Event& e, int64_t watermark_ms,
                                        const ValidationLimits& limits) {
  if (watermark_ms == 0) return std::nullopt;
  if (e.ts_ms <= watermark_ms) return std::nullopt;
  // Unsigned difference: exact for ts > watermark even at the ends of the int64 range.
  const uint64_t ahead = static_cast<uint64_t>(e.ts_ms) - static_cast<uint64_t>(watermark_ms);
  if (limits.max_future_skew_ms >= 0 && ahead <= static_cast<uint64_t>(limits.max_future_skew_ms)) {
    return std::nullopt;
  }
  // The rule text stays the same for every event so that summaries group by it; the event's own
  // ts is in the dead letter and the watermark in `persona stats`.
  return Reject("ts", absl::StrCat("is more than ", FormatDurationMs(limits.max_future_skew_ms),
                                   " after the watermark"));
}

}  // namespace persona
