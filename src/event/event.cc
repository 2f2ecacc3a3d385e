#include "event/event.h"

#include <cstring>

#include "common/hash.h"

namespace persona {
namespace {
constexpr std::string_view kNames[kEventTypeCount] = {
    "view", "click", "search", "cart", "remove_cart", "fav", "purchase", "review", "refund"};
}

std::string_view EventTypeName(EventType t) { return kNames[static_cast<int>(t)]; }

std::optional<EventType> ParseEventType(std::string_view name) {
  for (int i = 0; i < kEventTypeCount; ++i)
    if (kNames[i] == name) return static_cast<EventType>(i);
  return std::nullopt;
}

uint64_t DeriveEventHash(const Event& e) {
  std::string buf;
  buf.reserve(128);
  auto add = [&](std::string_view s) {
    buf.append(s);
    buf.push_back('\x1f');
  };
  add(e.user_id);
  add(EventTypeName(e.type));
  buf.append(reinterpret_cast<const char*>(&e.ts_ms), sizeof e.ts_ms);
  add(e.item_id);
  add(e.order_id);
  add(e.query);
  add(e.session_id);
  add(e.text);
  if (e.has_price()) buf.append(reinterpret_cast<const char*>(&e.price), sizeof e.price);
  buf.append(reinterpret_cast<const char*>(&e.quantity), sizeof e.quantity);
  buf.push_back(static_cast<char>(e.rating));
  return Hash64(buf);
}

}  // namespace persona
