#include "profile/daily_activity.h"

#include "common/time_util.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int32_t kDay0 = 17500;  // 2017-11-30
int64_t At(int32_t day, int hour) { return day * kDayMs + hour * kHourMs; }
uint64_t Views(const ActivityTotals& t) { return t.counts[static_cast<int>(EventType::kView)]; }
uint64_t Buys(const ActivityTotals& t) { return t.counts[static_cast<int>(EventType::kPurchase)]; }

TEST(DailyActivityTest, WindowsSumWholeUtcDaysEndingAtNow) {
  DailyActivity d;
  // 3 views on day0-10, 2 views + a 25.5 purchase on day0-3, 1 view on day0.
  for (int i = 0; i < 3; ++i) d.Add(kDay0 - 10, EventType::kView, 0);
  d.Add(kDay0 - 3, EventType::kView, 0);
  d.Add(kDay0 - 3, EventType::kView, 0);
  d.Add(kDay0 - 3, EventType::kPurchase, 25.5);
  d.Add(kDay0, EventType::kView, 0);
  // now = day0 at 23:00: 1d = day0 only, 7d = day0-6..day0, 30d = everything.
  const int64_t now = At(kDay0, 23);
  EXPECT_EQ(Views(d.Window(now, 1)), 1u);
  EXPECT_EQ(Views(d.Window(now, 7)), 3u);
  EXPECT_EQ(Buys(d.Window(now, 7)), 1u);
  EXPECT_EQ(d.Window(now, 7).purchase_amount, 25.5);
  EXPECT_EQ(Views(d.Window(now, 30)), 6u);
  EXPECT_EQ(d.Window(now, 30).events(), 7u);
  // Resolution is one UTC day: at 00:00 of day0+1 the 1d window no longer holds day0.
  EXPECT_EQ(d.Window(At(kDay0 + 1, 0), 1).events(), 0u);
  // A `now` before some buckets excludes them.
  EXPECT_EQ(Views(d.Window(At(kDay0 - 3, 12), 30)), 5u);
}

TEST(DailyActivityTest, KeepsOnlyTheLast30DaysOfActivity) {
  DailyActivity d;
  for (int32_t day = 0; day < 45; ++day) d.Add(kDay0 + day, EventType::kView, 0);
  EXPECT_EQ(d.bucket_count(), 30u);
  EXPECT_EQ(d.latest_day(), kDay0 + 44);
  int32_t first = -1;
  d.ForEach([&](const DayBucket& b) {
    if (first < 0) first = b.day;
  });
  EXPECT_EQ(first, kDay0 + 15);
  // A late event older than the kept range is ignored; one inside is merged in order.
  d.Add(kDay0 + 10, EventType::kView, 0);
  d.Add(kDay0 + 20, EventType::kCart, 0);
  EXPECT_EQ(d.bucket_count(), 30u);
  const ActivityTotals t = d.Sum(kDay0 + 20, kDay0 + 20);
  EXPECT_EQ(t.counts[static_cast<int>(EventType::kCart)], 1u);
  EXPECT_EQ(Views(t), 1u);
}

TEST(DailyActivityTest, LateEventCreatesBucketBetweenExistingDays) {
  DailyActivity d;
  d.Add(kDay0, EventType::kView, 0);
  d.Add(kDay0 + 5, EventType::kView, 0);
  d.Add(kDay0 + 2, EventType::kPurchase, 10);  // between
  d.Add(kDay0 - 1, EventType::kView, 0);       // before the first
  std::vector<int32_t> days;
  d.ForEach([&](const DayBucket& b) { days.push_back(b.day); });
  EXPECT_EQ(days, (std::vector<int32_t>{kDay0 - 1, kDay0, kDay0 + 2, kDay0 + 5}));
  // The latest day is still updated on the fast path after a slow-path insert.
  d.Add(kDay0 + 5, EventType::kPurchase, 2.5);
  EXPECT_EQ(d.Sum(kDay0 + 5, kDay0 + 5).purchase_amount, 2.5);
  EXPECT_EQ(d.Sum(kDay0 - 10, kDay0 + 10).purchase_amount, 12.5);
}

TEST(DailyActivityTest, TypicalDayCostsAFewBytes) {
  DailyActivity d;
  for (int i = 0; i < 60; ++i) d.Add(kDay0, EventType::kView, 0);
  d.Add(kDay0, EventType::kCart, 0);
  EXPECT_LE(d.bytes().size(), 6u);
}

TEST(DailyActivityTest, RestoreRoundTripsAndRejectsMalformedBytes) {
  DailyActivity d;
  d.Add(kDay0, EventType::kView, 0);
  d.Add(kDay0 + 3, EventType::kPurchase, 99.25);
  DailyActivity copy;
  ASSERT_TRUE(copy.Restore(d.bytes()).ok());
  EXPECT_EQ(copy.bytes(), d.bytes());
  EXPECT_EQ(copy.latest_day(), kDay0 + 3);
  copy.Add(kDay0 + 3, EventType::kView, 0);  // fast path works on restored state
  EXPECT_EQ(copy.Sum(kDay0 + 3, kDay0 + 3).events(), 2u);

  const std::string bytes(d.bytes());
  DailyActivity bad;
  EXPECT_FALSE(bad.Restore(bytes.substr(0, bytes.size() - 1)).ok());
  const std::string one_day = std::string("\x02\x01\x01", 3);  // day 1: one view
  EXPECT_TRUE(bad.Restore(one_day).ok());
  EXPECT_FALSE(bad.Restore(one_day + std::string("\x00\x01\x01", 3)).ok());  // day 1 again
  EXPECT_FALSE(bad.Restore(std::string("\x02\x80\x08", 3)).ok());            // unknown mask bit 10
  EXPECT_FALSE(bad.Restore(std::string("\x02\x03\x01", 3)).ok());            // second count missing
}

}  // namespace
}  // namespace persona
