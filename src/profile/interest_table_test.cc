#include "profile/interest_table.h"

#include <algorithm>
#include <map>
#include <random>

#include "gtest/gtest.h"

namespace persona {
namespace {

double ScoreOf(const InterestTable& t, uint32_t code) {
  const InterestTable::Entry* e = t.Find(code);
  return e ? e->score : -1;
}

TEST(InterestTableTest, EmptyTableOwnsNoMemory) {
  InterestTable t;
  EXPECT_EQ(t.HeapBytes(), 0u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.exact());
  EXPECT_EQ(t.total(), 0.0);
}

TEST(InterestTableTest, SumsIncrementsPerKeyWhileBelowCapacity) {
  InterestTable t;
  t.Add(1, 2.0, 4, false);
  t.Add(2, 1.0, 4, false);
  t.Add(1, 0.5, 4, false);
  t.AddTotal(3.5);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(ScoreOf(t, 1), 2.5);
  EXPECT_EQ(ScoreOf(t, 2), 1.0);
  EXPECT_EQ(t.total(), 3.5);
  EXPECT_TRUE(t.exact());
}

TEST(InterestTableTest, FullTableEvictsSmallestAndRecordsItAsError) {
  InterestTable t;
  t.Add(1, 5.0, 2, false);
  t.Add(2, 1.0, 2, false);
  t.Add(3, 2.0, 2, false);  // evicts 2 (score 1): 3 gets 1 + 2 with error 1
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(2), nullptr);
  ASSERT_NE(t.Find(3), nullptr);
  EXPECT_EQ(t.Find(3)->score, 3.0);
  EXPECT_EQ(t.Find(3)->error, 1.0f);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_FALSE(t.exact());
}

TEST(InterestTableTest, MarkIsStickyAndIgnoredByLookup) {
  InterestTable t;
  t.Add(7, 1.0, 4, false);
  EXPECT_FALSE(t.Find(7)->marked());
  t.Add(7, 1.0, 4, true);
  t.Add(7, 1.0, 4, false);
  EXPECT_TRUE(t.Find(7)->marked());
  EXPECT_EQ(t.Find(7)->code(), 7u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(InterestTableTest, ScalingByPowerOfTwoIsExact) {
  InterestTable t;
  t.Add(1, 0.1, 4, false);
  t.Add(2, 3.0e10, 4, false);
  t.AddTotal(7.77);
  t.ScaleDownByPowerOfTwo(10);
  EXPECT_EQ(ScoreOf(t, 1), 0.1 / 1024);
  EXPECT_EQ(ScoreOf(t, 2), 3.0e10 / 1024);
  EXPECT_EQ(t.total(), 7.77 / 1024);
}

TEST(InterestTableTest, SpaceSavingGuaranteeHoldsOnSkewedWeightedStream) {
  // Zipf-like stream of 200 keys with random weights into 16 slots.
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> weight(0.1, 3.0);
  InterestTable t;
  std::map<uint32_t, double> truth;
  double total = 0;
  for (int i = 0; i < 20000; ++i) {
    const double u = 0.005 + static_cast<double>(rng() % 1000) / 1000.0;
    const auto key = static_cast<uint32_t>(std::min(199.0, std::floor(1.0 / u)));
    const double w = weight(rng);
    t.Add(key, w, 16, false);
    truth[key] += w;
    total += w;
  }
  EXPECT_EQ(t.size(), 16u);
  EXPECT_GT(t.evictions(), 0u);
  for (const InterestTable::Entry& e : t.entries()) {
    const double real = truth[e.code()];
    EXPECT_GE(e.score, real * (1 - 1e-12));
    EXPECT_LE(e.score, (real + e.error) * (1 + 1e-12));
  }
  for (const auto& [key, score] : truth) {
    if (score > total / 16) {
      EXPECT_NE(t.Find(key), nullptr) << key;
    }
  }
}

TEST(InterestTableTest, RestoreCutsToSmallerCapacityKeepingLargestScores) {
  InterestTable::Entry entries[] = {{1.0, 1, 0}, {5.0, 2, 0}, {3.0, 3, 0}};
  InterestTable t;
  t.Restore(9.0, 0, entries, 2);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(1), nullptr);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(t.total(), 9.0);
  InterestTable copy = t;
  EXPECT_EQ(copy.Find(2)->score, 5.0);
  EXPECT_EQ(copy.HeapBytes(), t.HeapBytes());
}

}  // namespace
}  // namespace persona
