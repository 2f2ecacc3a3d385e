#include "engine/dedup_window.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kT0 = 1511500000000;  // ms

TEST(DedupWindowTest, RedeliveryWithinTheWindowIsADuplicate) {
  DedupWindow w(24 * kHour, /*recent_events=*/0);
  EXPECT_FALSE(w.CheckAndInsert(1, kT0, kT0));
  EXPECT_TRUE(w.CheckAndInsert(1, kT0, kT0 + kHour));
  EXPECT_FALSE(w.CheckAndInsert(2, kT0 + 1, kT0 + kHour));
}

TEST(DedupWindowTest, AnIdOutsideBothBoundsIsForgottenAndAcceptedAnew) {
  DedupWindow w(kHour, /*recent_events=*/2);
  EXPECT_FALSE(w.CheckAndInsert(1, kT0, kT0));
  // Past the time window, but still among the last 2 accepted: kept.
  EXPECT_FALSE(w.CheckAndInsert(2, kT0 + 2 * kHour, kT0 + 2 * kHour));
  EXPECT_TRUE(w.CheckAndInsert(1, kT0, kT0 + 2 * kHour));
  EXPECT_FALSE(w.CheckAndInsert(3, kT0 + 2 * kHour, kT0 + 2 * kHour));
  EXPECT_FALSE(w.CheckAndInsert(4, kT0 + 2 * kHour, kT0 + 2 * kHour));
  // Now four arrivals old and two hours behind the watermark: accepted again.
  EXPECT_FALSE(w.CheckAndInsert(1, kT0, kT0 + 2 * kHour));
}

TEST(DedupWindowTest, TimesAreKeptToTheSecondRoundedUp) {
  // An entry at t + 1 ms is kept as t + 1 s: never forgotten earlier than its exact time says.
  DedupWindow w(kHour, 0);
  EXPECT_FALSE(w.CheckAndInsert(7, kT0 + 1, kT0 + 1));
  EXPECT_FALSE(w.CheckAndInsert(8, kT0 + kHour + 500, kT0 + kHour + 500));
  // Past its exact time by 499 ms, within the rounded-up second: kept.
  EXPECT_TRUE(w.CheckAndInsert(7, kT0 + 1, kT0 + kHour + 500));
  EXPECT_FALSE(w.CheckAndInsert(9, kT0 + kHour + 1001, kT0 + kHour + 1001));
  EXPECT_FALSE(w.CheckAndInsert(7, kT0 + 1, kT0 + kHour + 1001));  // past the rounded second
}

// A window restored from its encoding mid-stream decides every later event as the original does
// (recovery rebuilds the window from the checkpoint, then the log).
TEST(DedupWindowTest, DecodedWindowDecidesLikeTheOriginal) {
  std::mt19937_64 rng(5);
  DedupWindow live(2 * kHour, 500);
  std::vector<uint64_t> ids;
  int64_t watermark = kT0;
  auto next = [&](uint64_t* id, int64_t* ts) {
    watermark += static_cast<int64_t>(rng() % 2000);
    *ts = watermark - static_cast<int64_t>(rng() % (3 * kHour));
    if (!ids.empty() && rng() % 4 == 0) {
      *id = ids[rng() % ids.size()];
    } else {
      *id = rng();
      ids.push_back(*id);
    }
  };
  for (int i = 0; i < 20000; ++i) {
    uint64_t id;
    int64_t ts;
    next(&id, &ts);
    live.CheckAndInsert(id, ts, watermark);
  }
  std::string blob;
  live.Encode(&blob);
  DedupWindow restored(2 * kHour, 500);
  std::string_view in = blob;
  ASSERT_TRUE(restored.Decode(&in));
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(restored.size(), live.size());
  int duplicates = 0;
  for (int i = 0; i < 20000; ++i) {
    uint64_t id;
    int64_t ts;
    next(&id, &ts);
    const bool a = live.CheckAndInsert(id, ts, watermark);
    ASSERT_EQ(restored.CheckAndInsert(id, ts, watermark), a) << "event " << i;
    duplicates += a;
  }
  EXPECT_GT(duplicates, 300);  // the comparison covered both outcomes
  std::string_view truncated = std::string_view(blob).substr(0, blob.size() / 2);
  DedupWindow broken(2 * kHour, 500);
  EXPECT_FALSE(broken.Decode(&truncated));
}

}  // namespace
}  // namespace persona
