#include "gen/user_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "gen/random.h"

namespace persona::gen {
namespace {

TEST(UserScheduleTest, PopsUsersInTimeOrderWithTiesBrokenByUser) {
  UserSchedule schedule({50, 10, 30, 10, 20});
  std::vector<std::pair<int64_t, uint32_t>> order;
  for (int i = 0; i < 5; ++i) {
    order.emplace_back(schedule.top_ts_ms(), schedule.top_user());
    schedule.RescheduleTop(1000);  // out of the way
  }
  EXPECT_EQ(order, (std::vector<std::pair<int64_t, uint32_t>>{
                       {10, 1}, {10, 3}, {20, 4}, {30, 2}, {50, 0}}));
}

TEST(UserScheduleTest, RescheduledUsersInterleaveByTimeLikeAMergeOfStreams) {
  // Each user acts at random increasing times; the schedule must merge them into one
  // non-decreasing stream, matching a sort of all (time, user) pairs. Gaps range from
  // milliseconds (inside one wheel bucket) over hours and days (more than a lap of the wheel) to
  // a year (a long silence the wheel jumps over).
  Rng rng(5);
  constexpr int kUsers = 300, kEventsPerUser = 40;
  auto gap = [&rng]() -> int64_t {
    const uint64_t kind = rng.Below(10);
    if (kind < 5) return 1 + static_cast<int64_t>(rng.Below(120'000));
    if (kind < 8) return static_cast<int64_t>(rng.Below(6 * 3'600'000));
    if (kind < 9) return static_cast<int64_t>(rng.Below(10 * 86'400'000LL));
    return 400 * 86'400'000LL;
  };
  std::vector<std::vector<int64_t>> times(kUsers);
  std::vector<int64_t> first(kUsers);
  std::vector<std::pair<int64_t, uint32_t>> expected;
  for (int u = 0; u < kUsers; ++u) {
    int64_t t = 1'500'000'000'000 + static_cast<int64_t>(rng.Below(100'000'000));
    for (int k = 0; k < kEventsPerUser; ++k) {
      times[u].push_back(t);
      expected.emplace_back(t, u);
      t += gap();
    }
    first[u] = times[u][0];
  }
  std::sort(expected.begin(), expected.end());
  UserSchedule schedule(first);
  std::vector<size_t> next(kUsers, 1);
  std::vector<std::pair<int64_t, uint32_t>> got;
  for (size_t i = 0; i < expected.size(); ++i) {
    const uint32_t u = schedule.top_user();
    got.emplace_back(schedule.top_ts_ms(), u);
    schedule.RescheduleTop(next[u] < times[u].size() ? times[u][next[u]++]
                                                     : std::numeric_limits<int64_t>::max());
  }
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace persona::gen
