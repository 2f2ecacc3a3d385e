#include "eval/classification_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace persona {
namespace {

BinaryMetrics Eval(const std::vector<double>& p, const std::vector<uint8_t>& y, int bins = 10) {
  return EvaluateBinary(p, y, bins);
}

TEST(ClassificationMetricsTest, HandComputedCaseWithoutTies) {
  const BinaryMetrics m = Eval({0.9, 0.8, 0.7, 0.6}, {1, 0, 1, 0});
  EXPECT_EQ(m.n, 4u);
  EXPECT_EQ(m.positives, 2u);
  // Positive/negative pairs: 0.9>0.8, 0.9>0.6, 0.7<0.8, 0.7>0.6 -> 3 of 4.
  EXPECT_DOUBLE_EQ(m.auc, 0.75);
  // -(ln 0.9 + ln 0.2 + ln 0.7 + ln 0.4) / 4 = (0.1053605 + 1.6094379 + 0.3566749 + 0.9162907) / 4
  EXPECT_NEAR(m.log_loss, 0.7469410, 1e-6);
  // F1 = 2TP / (predicted + positives): t=0.9 2/3, t=0.8 2/4, t=0.7 4/5, t=0.6 4/6 -> t = 0.7.
  EXPECT_DOUBLE_EQ(m.threshold, 0.7);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.f1, 0.8);
  // One example per bin: (|0.9-1| + |0.8-0| + |0.7-1| + |0.6-0|) / 4 = 1.8 / 4.
  EXPECT_NEAR(m.ece, 0.45, 1e-12);
}

TEST(ClassificationMetricsTest, TiedScoresCountHalfInAucAndShareOneThreshold) {
  const BinaryMetrics m = Eval({0.5, 0.5, 0.5, 0.2}, {1, 0, 0, 1}, 2);
  // Pairs: the 0.5 positive ties both negatives (0.5 + 0.5), the 0.2 positive loses both: 1 / 4.
  // Same by ranks: ascending ranks 0.2 -> 1, the three 0.5 -> 3 on average; positives' rank sum
  // 4, U = 4 - 2*3/2 = 1, AUC = 1 / (2*2).
  EXPECT_DOUBLE_EQ(m.auc, 0.25);
  // t=0.5 predicts 3 (TP 1): F1 2/5; t=0.2 predicts 4 (TP 2): F1 4/6 -> t = 0.2.
  EXPECT_DOUBLE_EQ(m.threshold, 0.2);
  EXPECT_DOUBLE_EQ(m.precision, 0.5);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_NEAR(m.f1, 2.0 / 3, 1e-12);
  // Bin [0, 0.5): one example, |0.2 - 1| = 0.8. Bin [0.5, 1]: three, |0.5 - 1/3| * 3 = 0.5.
  // (0.8 + 0.5) / 4.
  EXPECT_NEAR(m.ece, 0.325, 1e-12);
}

TEST(ClassificationMetricsTest, PerfectAndReversedRankingsAndCalibratedBins) {
  EXPECT_DOUBLE_EQ(Eval({0.9, 0.1, 0.8, 0.2}, {1, 0, 1, 0}).auc, 1.0);
  EXPECT_DOUBLE_EQ(Eval({0.1, 0.9, 0.2, 0.8}, {1, 0, 1, 0}).auc, 0.0);
  // Four examples at 0.25 with one positive: the bin's mean equals its rate.
  EXPECT_NEAR(Eval({0.25, 0.25, 0.25, 0.25}, {0, 1, 0, 0}).ece, 0.0, 1e-12);
  // Probability 1.0 lands in the last bin, not past it.
  EXPECT_NEAR(Eval({1.0}, {1}).ece, 0.0, 1e-12);
}

TEST(ClassificationMetricsTest, CertainWrongAnswersAreClippedNotInfinite) {
  const BinaryMetrics m = Eval({0.0, 1.0}, {1, 0});
  // About -ln(1e-15) = 34.5388 each: 1 - 1e-15 is not exact in binary, so the clipped 1.0 costs
  // -ln(1 - 0.999999999999999000799) = 34.5396, and the mean is 34.5392.
  EXPECT_NEAR(m.log_loss, 34.5392, 1e-3);
  EXPECT_TRUE(std::isfinite(m.log_loss));
}

TEST(ClassificationMetricsTest, SingleClassAndEmptyInputsAreUndefinedNotCrashes) {
  const BinaryMetrics negatives = Eval({0.3, 0.6}, {0, 0});
  EXPECT_TRUE(std::isnan(negatives.auc));
  EXPECT_TRUE(std::isnan(negatives.threshold));
  EXPECT_EQ(negatives.f1, 0);
  EXPECT_NEAR(negatives.log_loss, -(std::log(0.7) + std::log(0.4)) / 2, 1e-12);

  const BinaryMetrics positives = Eval({0.3, 0.6}, {1, 1});
  EXPECT_TRUE(std::isnan(positives.auc));
  EXPECT_DOUBLE_EQ(positives.threshold, 0.3);  // everything positive: recall 1, precision 1
  EXPECT_DOUBLE_EQ(positives.f1, 1.0);

  const BinaryMetrics empty = Eval({}, {});
  EXPECT_EQ(empty.n, 0u);
  EXPECT_TRUE(std::isnan(empty.auc));
  EXPECT_TRUE(std::isnan(empty.log_loss));
  EXPECT_TRUE(std::isnan(empty.ece));
}

}  // namespace
}  // namespace persona
