#include "profile/activity_rhythm.h"

#include <cmath>

#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int64_t kT0 = 1'570'000'000'000;
constexpr int64_t kGap = 30 * 60 * 1000;

TEST(ActivityRhythmTest, CountsTheBusiestMinuteFromItsFirstEvent) {
  ActivityRhythm r;
  for (int i = 0; i < 40; ++i) r.Observe(EventType::kView, kT0 + i * 1000, kGap);  // 40 in 40 s
  r.Observe(EventType::kView, kT0 + 70'000, kGap);  // a new window starts at 70 s
  EXPECT_EQ(r.max_minute_events, 40);  // 40 in [0, 60), then 1 in the new window
  EXPECT_EQ(r.minute_events, 1);
}

TEST(ActivityRhythmTest, ConstantGapsHaveZeroVariationAndHumanGapsDoNot) {
  ActivityRhythm bot, human;
  const int human_gaps[] = {3, 40, 7, 120, 15, 2, 66, 9, 31, 200};
  int64_t t = kT0;
  for (int i = 0; i < 10; ++i) {
    bot.Observe(EventType::kView, kT0 + i * 5000, kGap);
    human.Observe(EventType::kView, t, kGap);
    t += human_gaps[i] * 1000;
  }
  EXPECT_EQ(bot.gaps, 9u);
  EXPECT_NEAR(bot.GapVariation(), 0.0, 1e-6);
  EXPECT_GT(human.GapVariation(), 0.8);
}

TEST(ActivityRhythmTest, GapsAcrossSessionsAndLateEventsAreIgnored) {
  ActivityRhythm r;
  r.Observe(EventType::kView, kT0, kGap);
  r.Observe(EventType::kView, kT0 + 2 * kGap, kGap);  // a new session: no gap counted
  EXPECT_EQ(r.gaps, 0u);
  EXPECT_TRUE(std::isnan(r.GapVariation()));
  const ActivityRhythm before = r;
  r.Observe(EventType::kCart, kT0 + 1000, kGap);  // late: the rhythm is in-order only
  EXPECT_EQ(r, before);
}

TEST(ActivityRhythmTest, ViewStreaksEndOnEngagementButNotOnSearch) {
  ActivityRhythm r;
  int64_t t = kT0;
  for (int i = 0; i < 5; ++i) r.Observe(EventType::kView, t += 1000, kGap);
  r.Observe(EventType::kSearch, t += 1000, kGap);
  for (int i = 0; i < 3; ++i) r.Observe(EventType::kClick, t += 1000, kGap);
  EXPECT_EQ(r.view_streak, 8);
  r.Observe(EventType::kCart, t += 1000, kGap);
  r.Observe(EventType::kView, t += 1000, kGap);
  EXPECT_EQ(r.view_streak, 1);
  EXPECT_EQ(r.max_view_streak, 8);
}

}  // namespace
}  // namespace persona
