#include "profile/category_price_stats.h"

#include <string>

#include "gtest/gtest.h"

namespace persona {
namespace {

TEST(CategoryPriceStatsTest, NoPercentileBelowTwentyPrices) {
  CategoryPriceStats s;
  for (int i = 0; i < 19; ++i) s.Add("shoes", 10.0 + i);
  EXPECT_FALSE(s.Percentile("shoes", 15).has_value());
  s.Add("shoes", 50);
  EXPECT_TRUE(s.Percentile("shoes", 15).has_value());
  EXPECT_FALSE(s.Percentile("hats", 15).has_value());
}

TEST(CategoryPriceStatsTest, PercentileIsMidRankOfThePriceBucket) {
  CategoryPriceStats s;
  // 10 prices at 1.0, 10 at 100.0, 20 at 10000.0 (far apart: distinct buckets).
  for (int i = 0; i < 10; ++i) s.Add("c", 1.0);
  for (int i = 0; i < 10; ++i) s.Add("c", 100.0);
  for (int i = 0; i < 20; ++i) s.Add("c", 10000.0);
  EXPECT_DOUBLE_EQ(*s.Percentile("c", 1.0), 5.0 / 40);
  EXPECT_DOUBLE_EQ(*s.Percentile("c", 100.0), 15.0 / 40);
  EXPECT_DOUBLE_EQ(*s.Percentile("c", 10000.0), 30.0 / 40);
  EXPECT_DOUBLE_EQ(*s.Percentile("c", 0.5), 0.0);    // below everything
  EXPECT_DOUBLE_EQ(*s.Percentile("c", 1e6), 1.0);    // above everything
  EXPECT_DOUBLE_EQ(*s.Percentile("c", 500.0), 0.5);  // between: all lower prices below it
  EXPECT_FALSE(s.Percentile("c", -1).has_value());
}

TEST(CategoryPriceStatsTest, BucketsAreLogSpacedFourPerDoubling) {
  EXPECT_EQ(CategoryPriceStats::BucketOf(0), 0);
  EXPECT_EQ(CategoryPriceStats::BucketOf(1.0), 28);
  EXPECT_EQ(CategoryPriceStats::BucketOf(2.0), 32);
  EXPECT_EQ(CategoryPriceStats::BucketOf(1e12), CategoryPriceStats::kBuckets - 1);
}

TEST(CategoryPriceStatsTest, EncodeDecodeRoundTripsAndRejectsCorruption) {
  CategoryPriceStats s;
  for (int i = 0; i < 30; ++i) s.Add("electronics.audio", 20.0 * (i + 1));
  s.Add("books", 9.99);
  std::string blob;
  s.Encode(&blob);
  CategoryPriceStats t;
  ASSERT_TRUE(t.Decode(blob).ok());
  EXPECT_EQ(t.categories(), 2u);
  EXPECT_EQ(t.count("electronics.audio"), 30u);
  EXPECT_EQ(*t.Percentile("electronics.audio", 300), *s.Percentile("electronics.audio", 300));
  std::string again;
  t.Encode(&again);
  EXPECT_EQ(again, blob);
  for (size_t n = 0; n < blob.size(); ++n) {
    CategoryPriceStats u;
    u.Add("keep", 1.0);
    EXPECT_FALSE(u.Decode(std::string_view(blob).substr(0, n)).ok()) << n;
    EXPECT_EQ(u.count("keep"), 1u);  // unchanged on error
  }
}

}  // namespace
}  // namespace persona
