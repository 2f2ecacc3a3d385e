#include "event/event.h"

#include <gtest/gtest.h>

#include <string>

#include "common/hash.h"

namespace persona {
namespace {

// The definition of the derived id as first shipped: one heap string holding the canonical bytes.
// DeriveEventHash must keep producing exactly these values, since ids are persisted.
uint64_t ReferenceDerivedHash(const Event& e) {
  std::string buf;
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

TEST(DeriveEventHashTest, MatchesTheOriginalDefinitionForSmallAndOversizedEvents) {
  Event e;
  e.user_id = "u1";
  e.type = EventType::kPurchase;
  e.ts_ms = 1572566400000;
  e.item_id = "item-9";
  e.order_id = "o-1";
  e.price = 12.5;
  e.quantity = 2;
  EXPECT_EQ(DeriveEventHash(e), ReferenceDerivedHash(e));

  // Review text beyond the stack buffer takes the heap path; the value must not change.
  const std::string long_text(5000, 'x');
  e.type = EventType::kReview;
  e.text = long_text;
  e.rating = 4;
  EXPECT_EQ(DeriveEventHash(e), ReferenceDerivedHash(e));
}

TEST(DeriveEventHashTest, DiffersWhenContentDiffers) {
  Event a;
  a.user_id = "u1";
  a.item_id = "i1";
  a.ts_ms = 1572566400000;
  Event b = a;
  b.ts_ms += 1;
  EXPECT_NE(DeriveEventHash(a), DeriveEventHash(b));
  b = a;
  b.price = 0;  // a present zero price is content, unlike an absent one
  EXPECT_NE(DeriveEventHash(a), DeriveEventHash(b));
}

TEST(EventTypeTest, NamesRoundTripAndUnknownNamesFail) {
  for (int i = 0; i < kEventTypeCount; ++i) {
    const auto t = static_cast<EventType>(i);
    EXPECT_EQ(ParseEventType(EventTypeName(t)), t);
  }
  EXPECT_EQ(ParseEventType("buy"), std::nullopt);
  EXPECT_EQ(ParseEventType(""), std::nullopt);
}

}  // namespace
}  // namespace persona
