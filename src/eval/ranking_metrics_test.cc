#include "eval/ranking_metrics.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

TEST(RankingMetricsTest, TargetThirdGivesHandComputedMetrics) {
  // index:                    0    1    2    3    4    5
  std::vector<float> scores = {0, 0.9, 0.1, 0.5, 0.7, 0.2};
  std::vector<uint32_t> candidates = {1, 2, 4, 5};  // two of them (1, 4) beat the target 3
  uint32_t rank = RankAmong(scores, 3, candidates);
  EXPECT_EQ(rank, 2u);
  EXPECT_EQ(HitRate(rank, 1), 0.0);
  EXPECT_EQ(HitRate(rank, 2), 0.0);
  EXPECT_EQ(HitRate(rank, 3), 1.0);
  EXPECT_EQ(HitRate(rank, 5), 1.0);
  EXPECT_DOUBLE_EQ(Ndcg(rank, 5), 0.5);  // 1 / log2(4)
  EXPECT_EQ(Ndcg(rank, 2), 0.0);
  EXPECT_DOUBLE_EQ(Ndcg(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(Ndcg(1, 10), 1.0 / std::log2(3.0));
}

TEST(RankingMetricsTest, TiesCountAgainstTheTarget) {
  std::vector<float> scores = {0, 1, 1, 1, 1};
  EXPECT_EQ(RankAmong(scores, 2, std::vector<uint32_t>{1, 3, 4}), 3u);
  EXPECT_EQ(RankAmongAll(scores, 2, {}), 3u);
  // A constant scorer never hits at K smaller than the candidate count.
  EXPECT_EQ(HitRate(RankAmongAll(scores, 4, {}), 3), 0.0);
}

TEST(RankingMetricsTest, TargetAmongCandidatesIsNotItsOwnCompetitor) {
  std::vector<float> scores = {0, 0.3, 0.8, 0.5};
  EXPECT_EQ(RankAmong(scores, 2, std::vector<uint32_t>{1, 2, 3}), 0u);
}

TEST(RankingMetricsTest, RankAmongAllSkipsExcludedItemsAndPadding) {
  // index 0 would beat everything but is padding; 1 and 4 beat 3 but 4 is excluded.
  std::vector<float> scores = {9, 0.9, 0.1, 0.5, 0.7, 0.5};
  EXPECT_EQ(RankAmongAll(scores, 3, {}), 3u);     // 1, 4 and the tie 5
  std::vector<uint32_t> excluded = {2, 3, 4, 4};  // 2 scores lower; the target and a repeat
  EXPECT_EQ(RankAmongAll(scores, 3, excluded), 2u);
  EXPECT_EQ(RankAmongAll(scores, 1, std::vector<uint32_t>{3, 5}), 0u);
}

TEST(RankingMetricsTest, UnscorableTargetRanksLast) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> scores = {0, 0.2, nan, -inf, 0.1};
  EXPECT_EQ(RankAmong(scores, 2, std::vector<uint32_t>{1, 3, 4}), 3u);
  EXPECT_EQ(RankAmongAll(scores, 2, std::vector<uint32_t>{4}), 2u);
  EXPECT_EQ(RankAmongAll(scores, 3, {}), 2u);  // -inf: beaten by every real score
  // A NaN candidate does not beat a real target.
  EXPECT_EQ(RankAmongAll(scores, 1, {}), 0u);
}

}  // namespace
}  // namespace persona
