#include "profile/population.h"

#include <thread>
#include <vector>

#include "common/time_util.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int64_t kDay0 = 1512000000000;

RfmInputs Buyer(int64_t last_purchase_ms, uint32_t orders, double monetary) {
  return RfmInputs{true, last_purchase_ms, orders, monetary};
}

TEST(PopulationTest, QuintilesOfOneHundredBuyers) {
  Population pop;
  // Buyer i (1..100): last purchase i days after day0, i orders, 10*i spent.
  for (int i = 1; i <= 100; ++i) pop.Add(Buyer(kDay0 + i * kDayMs, i, 10.0 * i));
  EXPECT_EQ(pop.buyers(), 100u);
  const int64_t now = kDay0 + 200 * kDayMs;
  EXPECT_EQ(pop.RecencyScore(kDay0 + 100 * kDayMs, now), 5);  // most recent
  EXPECT_EQ(pop.RecencyScore(kDay0 + 1 * kDayMs, now), 1);
  EXPECT_EQ(pop.RecencyScore(kDay0 + 50 * kDayMs, now), 3);  // mid-rank 49.5%
  EXPECT_EQ(pop.FrequencyScore(100), 5);
  EXPECT_EQ(pop.FrequencyScore(1), 1);
  EXPECT_EQ(pop.FrequencyScore(10), 1);  // 9.5%
  EXPECT_EQ(pop.FrequencyScore(30), 2);
  EXPECT_EQ(pop.MonetaryScore(1000.0), 5);
  EXPECT_EQ(pop.MonetaryScore(10.0), 1);
}

TEST(PopulationTest, NonBuyersScoreZeroAndAreNotCounted) {
  Population pop;
  pop.Add(RfmInputs{});
  EXPECT_EQ(pop.buyers(), 0u);
  EXPECT_EQ(pop.RecencyScore(RfmInputs{}, kDay0), 0);
  EXPECT_EQ(pop.FrequencyScore(RfmInputs{}), 0);
  EXPECT_EQ(pop.MonetaryScore(RfmInputs{}), 0);
  EXPECT_EQ(pop.FrequencyScore(Buyer(kDay0, 3, 1)), 3);  // no buyers at all: the median
}

TEST(PopulationTest, UpdateMovesContributionAndRemoveUndoesAdd) {
  Population pop;
  for (int i = 0; i < 4; ++i) pop.Add(Buyer(kDay0, 1, 5));
  const RfmInputs before = Buyer(kDay0, 1, 5);
  pop.Add(before);
  const RfmInputs after = Buyer(kDay0 + kDayMs, 2, 50);
  pop.Update(before, after);
  EXPECT_EQ(pop.buyers(), 5u);
  EXPECT_EQ(pop.FrequencyScore(2), 5);  // alone at the top: (4 + 0.5) / 5
  EXPECT_EQ(pop.MonetaryScore(50), 5);
  pop.Remove(after);
  EXPECT_EQ(pop.buyers(), 4u);
  EXPECT_EQ(pop.FrequencyScore(1), 3);  // all tied
}

TEST(PopulationTest, ConcurrentWritersFromSeveralPartitionsLoseNoUpdate) {
  Population pop;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&pop, t] {
      for (int i = 0; i < 5000; ++i) pop.Add(Buyer(kDay0 + (i % 300) * kDayMs, 1 + i % 50, i + t));
    });
  }
  for (std::thread& w : writers) w.join();
  EXPECT_EQ(pop.buyers(), 20000u);
}

TEST(PopulationTest, BucketFunctionsAreMonotonic) {
  int previous = -1;
  for (uint32_t v = 0; v < 100000; v += 7) {
    const int b = Population::OrderBucket(v);
    EXPECT_GE(b, previous);
    EXPECT_LT(b, Population::kOrderBuckets);
    previous = b;
  }
  EXPECT_LT(Population::OrderBucket(UINT32_MAX), Population::kOrderBuckets);
  EXPECT_LT(Population::MoneyBucket(1e300), Population::kMoneyBuckets);
  EXPECT_EQ(Population::MoneyBucket(0), 0);
  EXPECT_EQ(Population::DayBucket(0), 0);
}

}  // namespace
}  // namespace persona
