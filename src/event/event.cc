#include "event/event.h"

#include <cstring>

#include "common/hash.h"

namespace persona {
namespace {
constexpr std::string_view kNames[kEventTypeCount] = {
    "view", "click", "search", "cart", "remove_cart", "fav", "purchase", "review", "refund"};

// Appends the canonical content of `e` to `sink` (a callable taking (const void*, size_t)).
// DeriveEventHash hashes exactly these bytes; their order and separators are persisted through
// event ids, so they must never change.
template <typename Sink>
void ForEachCanonicalPiece(const Event& e, Sink&& sink) {
  static constexpr char kSeparator = '\x1f';
  auto add = [&](std::string_view s) {
    sink(s.data(), s.size());
    sink(&kSeparator, 1);
  };
  add(e.user_id);
  const std::string_view type = EventTypeName(e.type);
  add(type);
  sink(&e.ts_ms, sizeof e.ts_ms);
  add(e.item_id);
  add(e.order_id);
  add(e.query);
  add(e.session_id);
  add(e.text);
  if (e.has_price()) sink(&e.price, sizeof e.price);
  sink(&e.quantity, sizeof e.quantity);
  const char rating = static_cast<char>(e.rating);
  sink(&rating, 1);
}

}  // namespace

std::string_view EventTypeName(EventType t) {
  const int i = static_cast<int>(t);
  // Out-of-range values only come from corrupt memory; name them instead of reading past kNames.
  return i < kEventTypeCount ? kNames[i] : std::string_view("invalid");
}

std::optional<EventType> ParseEventType(std::string_view name) {
  for (int i = 0; i < kEventTypeCount; ++i)
    if (kNames[i] == name) return static_cast<EventType>(i);
  return std::nullopt;
}

uint64_t DeriveEventHash(const Event& e) {
  // Parsers call this for every event without an event_id, so the common case must not allocate:
  // the canonical bytes go to a stack buffer, and only oversized events (long review text) fall
  // back to the heap. Both paths hash the same bytes.
  char stack_buf[512];
  size_t used = 0;
  bool fits = true;
  ForEachCanonicalPiece(e, [&](const void* p, size_t n) {
    if (n == 0) return;  // empty views may have a null data()
    if (!fits || used + n > sizeof stack_buf) {
      fits = false;
      return;
    }
    std::memcpy(stack_buf + used, p, n);
    used += n;
  });
  if (fits) return Hash64(std::string_view(stack_buf, used));
  std::string buf;
  buf.reserve(used + 1024);
  ForEachCanonicalPiece(e, [&](const void* p, size_t n) {
    if (n != 0) buf.append(static_cast<const char*>(p), n);
  });
  return Hash64(buf);
}

}  // namespace persona
