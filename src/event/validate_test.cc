#include "event/validate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace persona {
namespace {

constexpr int64_t kOct2019 = 1569888000000;  // 2019-10-01T00:00:00Z

Event ValidOf(EventType type) {
  Event e;
  e.user_id = "u1";
  e.type = type;
  e.ts_ms = kOct2019;
  e.quantity = 1;
  switch (type) {
    case EventType::kSearch:
      e.query = "red shoes";
      break;
    case EventType::kPurchase:
    case EventType::kRefund:
      e.item_id = "i1";
      e.price = 10;
      break;
    case EventType::kReview:
      e.item_id = "i1";
      e.rating = 5;
      break;
    default:
      e.item_id = "i1";
  }
  return e;
}

void ExpectRejected(const Event& e, std::string_view field, std::string_view rule,
                    bool price_optional = false) {
  const std::optional<Rejection> r = ValidateEvent(e, ValidationLimits(), price_optional);
  ASSERT_TRUE(r.has_value()) << "expected rejection of " << field << " " << rule;
  EXPECT_EQ(r->field, field);
  EXPECT_EQ(r->rule, rule);
}

TEST(ValidateEventTest, AcceptsAValidEventOfEveryType) {
  for (int i = 0; i < kEventTypeCount; ++i) {
    const Event e = ValidOf(static_cast<EventType>(i));
    EXPECT_EQ(ValidateEvent(e, ValidationLimits(), false), std::nullopt) << EventTypeName(e.type);
  }
}

TEST(ValidateEventTest, UserIdIsRequired) {
  Event e = ValidOf(EventType::kView);
  e.user_id = "";
  ExpectRejected(e, "user_id", "is required");
}

TEST(ValidateEventTest, TimestampBefore2000IsRejectedAndExactly2000Accepted) {
  Event e = ValidOf(EventType::kView);
  e.ts_ms = kEpoch2000Ms - 1;
  ExpectRejected(e, "ts", "must be at or after 2000-01-01T00:00:00Z");
  e.ts_ms = kEpoch2000Ms;
  EXPECT_EQ(ValidateEvent(e, ValidationLimits(), false), std::nullopt);
}

TEST(ValidateEventTest, TypeOutOfRangeIsRejected) {
  Event e = ValidOf(EventType::kView);
  e.type = static_cast<EventType>(200);
  ExpectRejected(e, "type",
                 "must be one of view, click, search, cart, remove_cart, fav, purchase, review, "
                 "refund");
}

TEST(ValidateEventTest, PurchaseAndRefundNeedItemPriceAndQuantity) {
  for (EventType t : {EventType::kPurchase, EventType::kRefund}) {
    const std::string name(EventTypeName(t));
    Event e = ValidOf(t);
    e.item_id = "";
    ExpectRejected(e, "item_id", "is required for " + name);

    e = ValidOf(t);
    e.price = std::nan("");
    ExpectRejected(e, "price", "must be a number >= 0 for " + name);
    EXPECT_EQ(ValidateEvent(e, ValidationLimits(), /*price_optional=*/true), std::nullopt);

    e = ValidOf(t);
    e.price = -0.01;
    ExpectRejected(e, "price", "must be a number >= 0 for " + name);
    // A present negative price is wrong even when the format has no price column.
    ExpectRejected(e, "price", "must be a number >= 0 for " + name, /*price_optional=*/true);

    e = ValidOf(t);
    e.price = 0;  // free items exist
    EXPECT_EQ(ValidateEvent(e, ValidationLimits(), false), std::nullopt);

    e = ValidOf(t);
    e.quantity = 0;
    ExpectRejected(e, "quantity", "must be an integer >= 1 for " + name);
    e.quantity = -2;
    ExpectRejected(e, "quantity", "must be an integer >= 1 for " + name);
  }
}

TEST(ValidateEventTest, SearchNeedsAQueryButNoItem) {
  Event e = ValidOf(EventType::kSearch);
  e.query = "";
  ExpectRejected(e, "query", "is required for search");
}

TEST(ValidateEventTest, ReviewNeedsItemAndRatingOrText) {
  Event e = ValidOf(EventType::kReview);
  e.item_id = "";
  ExpectRejected(e, "item_id", "is required for review");

  e = ValidOf(EventType::kReview);
  e.rating = 0;
  ExpectRejected(e, "rating", "or a non-empty text is required for review");
  e.text = "great";
  EXPECT_EQ(ValidateEvent(e, ValidationLimits(), false), std::nullopt);
}

TEST(ValidateEventTest, ItemEventsNeedAnItem) {
  for (EventType t : {EventType::kView, EventType::kClick, EventType::kCart, EventType::kRemoveCart,
                      EventType::kFav}) {
    Event e = ValidOf(t);
    e.item_id = "";
    ExpectRejected(e, "item_id", "is required for " + std::string(EventTypeName(t)));
  }
}

TEST(ValidateEventTest, RatingWhenPresentMustBeOneToFive) {
  Event e = ValidOf(EventType::kView);
  for (int8_t bad : {int8_t{6}, int8_t{-1}, int8_t{100}}) {
    e.rating = bad;
    ExpectRejected(e, "rating", "must be an integer 1..5");
  }
  for (int8_t good : {int8_t{1}, int8_t{5}}) {
    e.rating = good;
    EXPECT_EQ(ValidateEvent(e, ValidationLimits(), false), std::nullopt);
  }
  e = ValidOf(EventType::kReview);
  e.rating = 9;
  ExpectRejected(e, "rating", "must be an integer 1..5");
}

TEST(ValidateEventTest, PriceWhenPresentMustBeFiniteAndNonNegative) {
  Event e = ValidOf(EventType::kView);
  e.price = -1;
  ExpectRejected(e, "price", "must be a number >= 0");
  e.price = std::numeric_limits<double>::infinity();
  ExpectRejected(e, "price", "must be a number >= 0");
  e.price = 3.5;
  EXPECT_EQ(ValidateEvent(e, ValidationLimits(), false), std::nullopt);
}

TEST(ValidateEventTest, NegativeQuantityOnOtherTypesIsRejected) {
  Event e = ValidOf(EventType::kCart);
  e.quantity = -1;
  ExpectRejected(e, "quantity", "must be an integer >= 1");
  e.quantity = 0;  // how an Event says "absent"
  EXPECT_EQ(ValidateEvent(e, ValidationLimits(), false), std::nullopt);
}

TEST(ValidateEventTest, EveryStringFieldHasItsLengthLimit) {
  const ValidationLimits limits;
  struct Case {
    std::string_view Event::*member;
    std::string_view field;
    size_t limit;
  };
  const Case cases[] = {
      {&Event::event_id, "event_id", limits.max_id_length},
      {&Event::user_id, "user_id", limits.max_id_length},
      {&Event::item_id, "item_id", limits.max_id_length},
      {&Event::order_id, "order_id", limits.max_id_length},
      {&Event::session_id, "session_id", limits.max_id_length},
      {&Event::device, "device", limits.max_id_length},
      {&Event::rec_id, "rec_id", limits.max_id_length},
      {&Event::brand, "brand", limits.max_id_length},
      {&Event::category_id, "category_id", limits.max_category_length},
      {&Event::category_path, "category_path", limits.max_category_length},
      {&Event::query, "query", limits.max_query_length},
      {&Event::text, "text", limits.max_text_length},
      {&Event::attrs_json, "attrs", limits.max_attrs_length},
  };
  for (const Case& c : cases) {
    const std::string at_limit(c.limit, 'a');
    const std::string over(c.limit + 1, 'a');
    Event e = ValidOf(EventType::kView);
    e.*c.member = at_limit;
    EXPECT_EQ(ValidateEvent(e, limits, false), std::nullopt) << c.field;
    e.*c.member = over;
    ExpectRejected(e, c.field, "longer than " + std::to_string(c.limit) + " bytes");
  }
}

TEST(ValidateEventTest, CustomLimitsAreHonoured) {
  ValidationLimits limits;
  limits.max_id_length = 4;
  Event e = ValidOf(EventType::kView);
  e.item_id = "12345";
  const auto r = ValidateEvent(e, limits, false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->field, "item_id");
  EXPECT_EQ(r->rule, "longer than 4 bytes");
}

TEST(CheckEventTimeTest, ZeroWatermarkAcceptsAnything) {
  Event e = ValidOf(EventType::kView);
  e.ts_ms = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(CheckEventTime(e, 0, ValidationLimits()), std::nullopt);
}

TEST(CheckEventTimeTest, RejectsOnlyBeyondWatermarkPlusSkew) {
  ValidationLimits limits;  // 1 day
  Event e = ValidOf(EventType::kView);
  e.ts_ms = kOct2019 + kDayMs;
  EXPECT_EQ(CheckEventTime(e, kOct2019, limits), std::nullopt);
  e.ts_ms = kOct2019 - 365 * kDayMs;  // old events are fine: replays are normal
  EXPECT_EQ(CheckEventTime(e, kOct2019, limits), std::nullopt);
  e.ts_ms = kOct2019 + kDayMs + 1;
  const auto r = CheckEventTime(e, kOct2019, limits);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->field, "ts");
  EXPECT_EQ(r->rule, "is more than 24h after the watermark");

  limits.max_future_skew_ms = 90 * kSecondMs;
  e.ts_ms = kOct2019 + 91 * kSecondMs;
  const auto r2 = CheckEventTime(e, kOct2019, limits);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->rule, "is more than 90s after the watermark");
}

TEST(CheckEventTimeTest, ExtremeTimestampsDoNotOverflow) {
  Event e = ValidOf(EventType::kView);
  e.ts_ms = std::numeric_limits<int64_t>::max();
  ValidationLimits limits;
  limits.max_future_skew_ms = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(CheckEventTime(e, kOct2019, limits), std::nullopt);
  limits.max_future_skew_ms = kDayMs;
  EXPECT_TRUE(CheckEventTime(e, kOct2019, limits).has_value());
}

}  // namespace
}  // namespace persona
