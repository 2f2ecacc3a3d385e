#include "gen/alias_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace persona::gen {
namespace {

TEST(AliasTableTest, SamplesFollowTheWeights) {
  const std::vector<double> weights = {5, 1, 0.5, 3, 0.5};
  const AliasTable table(weights);
  ASSERT_EQ(table.size(), 5u);
  Rng rng(11);
  std::vector<int> counts(weights.size(), 0);
  constexpr int kN = 500000;
  for (int i = 0; i < kN; ++i) ++counts[table.Sample(rng)];
  for (size_t i = 0; i < weights.size(); ++i) {
    const double expected = kN * weights[i] / 10.0;
    // 5 standard deviations of a binomial count.
    EXPECT_NEAR(counts[i], expected, 5 * std::sqrt(expected)) << "outcome " << i;
  }
}

TEST(AliasTableTest, ZeroWeightOutcomesNeverComeOut) {
  const std::vector<double> weights = {0, 2, 0, 0, 1e-9, 0, 7};
  const AliasTable table(weights);
  Rng rng(12);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t s = table.Sample(rng);
    ASSERT_NE(weights[s], 0.0) << "sampled zero-weight outcome " << s;
  }
}

TEST(AliasTableTest, AllZeroOrNoWeightsGiveAnEmptyTable) {
  EXPECT_TRUE(AliasTable(std::vector<double>{}).empty());
  EXPECT_TRUE(AliasTable(std::vector<double>{0, 0}).empty());
  EXPECT_FALSE(AliasTable(std::vector<double>{0, 1}).empty());
}

TEST(AliasTableTest, SingleOutcomeAlwaysComesOut) {
  const AliasTable table(std::vector<double>{3.0});
  Rng rng(13);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(table.Sample(rng), 0u);
}

}  // namespace
}  // namespace persona::gen
