// The behaviour event: Persona's unit of input. Parsers produce Events whose strings are views into
// storage owned by the enclosing EventBatch (its arena or the input buffer it keeps alive).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/arena.h"

namespace persona {

enum class EventType : uint8_t {
  kView = 0,
  kClick,
  kSearch,
  kCart,
  kRemoveCart,
  kFav,
  kPurchase,
  kReview,
  kRefund,
};
inline constexpr int kEventTypeCount = 9;

// "view", "click", ... as used in the JSON format and in profile output.
std::string_view EventTypeName(EventType t);
// Parses a native type name; nullopt when unknown.
std::optional<EventType> ParseEventType(std::string_view name);

struct Event {
  // Original `event_id` when the producer supplied one; empty otherwise.
  std::string_view event_id;
  // De-duplication key: Hash64(event_id) when given, else a hash of the canonical content
  // (see DeriveEventHash). Always set by parsers.
  uint64_t id_hash = 0;
  std::string_view user_id;
  EventType type = EventType::kView;
  int64_t ts_ms = 0;  // event time, epoch milliseconds UTC
  std::string_view item_id;
  std::string_view category_id;
  std::string_view category_path;  // dotted hierarchy, e.g. "electronics.audio.headphones"
  std::string_view brand;
  std::string_view order_id;
  std::string_view query;  // search text
  std::string_view text;   // review text
  std::string_view session_id;
  std::string_view device;
  std::string_view rec_id;  // recommendation that led here
  std::string_view attrs_json;  // a JSON object as text ("{...}"), or empty
  double price = std::nan("");  // NaN when absent
  int32_t quantity = 0;         // 0 when absent
  int8_t rating = 0;            // 1..5, 0 when absent

  bool has_price() const { return !std::isnan(price); }
  // The category key used for interests: the path when given, else the id.
  std::string_view category_key() const { return category_path.empty() ? category_id : category_path; }
};

// Hash of the event's canonical content (user, type, ts, item, order, query, price, quantity,
// rating, session, text): two deliveries of the same event without event_id get the same id.
uint64_t DeriveEventHash(const Event& e);

// A batch of events plus the storage their views point into. Movable, not copyable.
struct EventBatch {
  std::vector<Event> events;
  // For each event, its position in the source (input line number, or index in an HTTP body), so
  // that outcomes can be reported against what the client sent.
  std::vector<uint32_t> source_index;
  StringArena arena;
  // Optional buffer that views may point into (e.g. the raw input chunk).
  std::shared_ptr<const std::string> input;
  // True when the source format carries no price column (taobao, retailrocket, sequence): purchases
  // and refunds are then accepted without `price` and add nothing to monetary features.
  bool price_optional = false;
};

}  // namespace persona
