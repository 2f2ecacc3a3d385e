#include "profile/hour_day_histogram.h"

#include "common/time_util.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

TEST(HourDayHistogramTest, CountsUtcHourAndWeekdayMondayFirst) {
  HourDayHistogram h;
  h.Add(*ParseIsoTime("2017-11-27T13:45:00Z"));  // a Monday
  h.Add(*ParseIsoTime("2017-12-03T23:59:59Z"));  // a Sunday
  h.Add(*ParseIsoTime("1970-01-01T00:00:00Z"));  // a Thursday
  EXPECT_EQ(h.hours()[13], 1);
  EXPECT_EQ(h.hours()[23], 1);
  EXPECT_EQ(h.hours()[0], 1);
  EXPECT_EQ(h.weekdays()[0], 1);
  EXPECT_EQ(h.weekdays()[6], 1);
  EXPECT_EQ(h.weekdays()[3], 1);
  h.Add(*ParseIsoTime("1969-12-31T23:00:00Z"));  // before the epoch: a Wednesday, 23h
  EXPECT_EQ(h.weekdays()[2], 1);
  EXPECT_EQ(h.hours()[23], 2);
}

TEST(HourDayHistogramTest, SaturatedBucketHalvesAllKeepingTheShape) {
  HourDayHistogram h;
  const int64_t nine = 9 * kHourMs;  // a Thursday, 09:00
  const int64_t ten = 10 * kHourMs;
  for (int i = 0; i < 1000; ++i) h.Add(ten);
  for (int i = 0; i < 65535; ++i) h.Add(nine);
  EXPECT_EQ(h.hours()[9], 65535);
  h.Add(nine);
  EXPECT_EQ(h.hours()[9], 32767 + 1);
  EXPECT_EQ(h.hours()[10], 500);
  EXPECT_GT(h.hours()[9], h.hours()[10]);
}

}  // namespace
}  // namespace persona
