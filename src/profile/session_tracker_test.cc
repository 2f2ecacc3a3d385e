#include "profile/session_tracker.h"

#include "common/time_util.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int64_t kT0 = 1511500000000;
constexpr int64_t kGap = 30 * kMinuteMs;

TEST(SessionTrackerTest, InactivityGapSplitsSessionsWithoutIds) {
  SessionTracker s;
  s.Observe(kT0, 0, kGap);
  s.Observe(kT0 + 10 * kMinuteMs, 0, kGap);
  s.Observe(kT0 + 20 * kMinuteMs, 0, kGap);  // session 1: 20 minutes
  s.Observe(kT0 + 51 * kMinuteMs, 0, kGap);  // 31 min later: session 2
  s.Observe(kT0 + 56 * kMinuteMs, 0, kGap);  // session 2: 5 minutes
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.total_duration_ms(), 25 * kMinuteMs);
}

TEST(SessionTrackerTest, NewSessionIdStartsSessionEvenWithinGap) {
  SessionTracker s;
  s.Observe(kT0, 11, kGap);
  s.Observe(kT0 + kMinuteMs, 11, kGap);
  s.Observe(kT0 + 2 * kMinuteMs, 22, kGap);
  // Same id continues the session even after a long pause.
  s.Observe(kT0 + 5 * kHourMs, 22, kGap);
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.total_duration_ms(), kMinuteMs + 5 * kHourMs - 2 * kMinuteMs);
}

TEST(SessionTrackerTest, LateEventWithinSessionExtendsItAndOlderOneCountsAlone) {
  SessionTracker s;
  s.Observe(kT0 + 10 * kMinuteMs, 0, kGap);
  s.Observe(kT0 + 5 * kMinuteMs, 0, kGap);  // late, within the gap: extends backwards
  EXPECT_EQ(s.count(), 1u);
  EXPECT_EQ(s.total_duration_ms(), 5 * kMinuteMs);
  s.Observe(kT0 - 2 * kHourMs, 0, kGap);  // far older: its own zero-length session
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.total_duration_ms(), 5 * kMinuteMs);
  EXPECT_EQ(s.current_start_ms(), kT0 + 5 * kMinuteMs);
}

}  // namespace
}  // namespace persona
