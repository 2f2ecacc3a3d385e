#include "predict/recency_frequency_baseline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "eval/classification_metrics.h"
#include "predict/profile_vector.h"

namespace persona {
namespace {

size_t IndexOf(const std::vector<std::string>& names, const char* name) {
  return std::find(names.begin(), names.end(), name) - names.begin();
}

// Rows whose purchase probability falls with days since last seen and rises with recent
// activity, through a known logistic model on the log1p inputs.
PointInTimeSet PlantedSet(size_t n, double w0, double w_recency, double w_frequency) {
  PointInTimeSet set;
  set.feature_names = ProfileVectorNames();
  const size_t recency = IndexOf(set.feature_names, "days_since_last_seen");
  const size_t frequency = IndexOf(set.feature_names, "events_30d");
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> days(0, 30);
  std::uniform_int_distribution<int> events(0, 200);
  std::uniform_real_distribution<double> coin(0, 1);
  for (size_t i = 0; i < n; ++i) {
    LabeledRow row;
    row.features.assign(set.feature_names.size(), std::nanf(""));
    const double d = days(rng);
    const int e = events(rng);
    row.features[recency] = static_cast<float>(d);
    row.features[frequency] = static_cast<float>(e);
    const double z = w0 + w_recency * std::log1p(d) + w_frequency * std::log1p(e);
    row.purchased = coin(rng) < 1 / (1 + std::exp(-z));
    set.rows.push_back(std::move(row));
  }
  return set;
}

TEST(RecencyFrequencyBaselineTest, RecoversSignsAndMagnitudesOfAPlantedModel) {
  const PointInTimeSet set = PlantedSet(4000, -1.0, -1.2, 0.8);
  const auto model =
      RecencyFrequencyBaseline::Fit(set, [](const LabeledRow& r) { return r.purchased; });
  EXPECT_LT(model.weights()[1], 0);
  EXPECT_GT(model.weights()[2], 0);
  // 4000 rows pin the slopes down to about +-0.1.
  EXPECT_NEAR(model.weights()[1], -1.2, 0.25);
  EXPECT_NEAR(model.weights()[2], 0.8, 0.25);

  // Order: recent and active above stale and idle.
  std::vector<float> recent_active(set.feature_names.size(), std::nanf(""));
  std::vector<float> stale_idle = recent_active;
  recent_active[IndexOf(set.feature_names, "days_since_last_seen")] = 0.5f;
  recent_active[IndexOf(set.feature_names, "events_30d")] = 150;
  stale_idle[IndexOf(set.feature_names, "days_since_last_seen")] = 25;
  stale_idle[IndexOf(set.feature_names, "events_30d")] = 2;
  EXPECT_GT(model.Probability(recent_active), model.Probability(stale_idle));

  // And it ranks the planted labels well.
  std::vector<double> p;
  std::vector<uint8_t> y;
  for (const LabeledRow& r : set.rows) {
    p.push_back(model.Probability(r.features));
    y.push_back(r.purchased);
  }
  EXPECT_GT(EvaluateBinary(p, y).auc, 0.7);
}

TEST(RecencyFrequencyBaselineTest, MissingFeatureValueCountsAsTheTrainingMean) {
  const PointInTimeSet set = PlantedSet(500, 0, -1, 1);
  const auto model =
      RecencyFrequencyBaseline::Fit(set, [](const LabeledRow& r) { return r.purchased; });
  std::vector<float> all_missing(set.feature_names.size(), std::nanf(""));
  const double p = model.Probability(all_missing);
  EXPECT_TRUE(std::isfinite(p));
  EXPECT_GT(p, 0);
  EXPECT_LT(p, 1);
}

TEST(RecencyFrequencyBaselineTest, SingleClassOrMissingColumnsPredictTheBaseRate) {
  PointInTimeSet set = PlantedSet(100, 0, -1, 1);
  const auto never = RecencyFrequencyBaseline::Fit(set, [](const LabeledRow&) { return false; });
  EXPECT_LT(never.Probability(set.rows[0].features), 1e-5);

  size_t positives = 0;
  for (const LabeledRow& r : set.rows) positives += r.purchased;
  set.feature_names[IndexOf(set.feature_names, "events_30d")] = "renamed";
  const auto constant =
      RecencyFrequencyBaseline::Fit(set, [](const LabeledRow& r) { return r.purchased; });
  EXPECT_NEAR(constant.Probability(set.rows[0].features), positives / 100.0, 1e-9);
  EXPECT_NEAR(constant.Probability(set.rows[1].features), positives / 100.0, 1e-9);

  PointInTimeSet empty;
  EXPECT_DOUBLE_EQ(
      RecencyFrequencyBaseline::Fit(empty, [](const LabeledRow&) { return true; }).Probability({}),
      0.5);
}

}  // namespace
}  // namespace persona
