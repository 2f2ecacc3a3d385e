// Test helpers shared by the event stage's tests (header-only, so the stage library never links
// gtest).
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>

#include "event/event.h"

namespace persona {

// Expects every field of `actual` to equal `expected`; prices compare by bit pattern so that
// -0.0, NaN (absent) and denormals must survive exactly.
inline void ExpectSameEvent(const Event& actual, const Event& expected) {
  EXPECT_EQ(actual.event_id, expected.event_id);
  EXPECT_EQ(actual.id_hash, expected.id_hash);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.type, expected.type);
  EXPECT_EQ(actual.ts_ms, expected.ts_ms);
  EXPECT_EQ(actual.item_id, expected.item_id);
  EXPECT_EQ(actual.category_id, expected.category_id);
  EXPECT_EQ(actual.category_path, expected.category_path);
  EXPECT_EQ(actual.brand, expected.brand);
  EXPECT_EQ(actual.order_id, expected.order_id);
  EXPECT_EQ(actual.query, expected.query);
  EXPECT_EQ(actual.text, expected.text);
  EXPECT_EQ(actual.session_id, expected.session_id);
  EXPECT_EQ(actual.device, expected.device);
  EXPECT_EQ(actual.rec_id, expected.rec_id);
  EXPECT_EQ(actual.attrs_json, expected.attrs_json);
  EXPECT_EQ(actual.has_price(), expected.has_price());
  if (actual.has_price() && expected.has_price()) {
    EXPECT_EQ(std::bit_cast<uint64_t>(actual.price), std::bit_cast<uint64_t>(expected.price))
        << actual.price << " vs " << expected.price;
  }
  EXPECT_EQ(actual.quantity, expected.quantity);
  EXPECT_EQ(actual.rating, expected.rating);
}

}  // namespace persona
