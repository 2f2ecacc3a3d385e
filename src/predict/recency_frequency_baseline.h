// The "recency + frequency" heuristic that every propensity/churn model must beat: a logistic
// regression on two numbers a marketer would look at first, log1p(days_since_last_seen) and
// log1p(events_30d). Fitted by Newton's method (IRLS) with a small L2 penalty on the two slopes,
// so it is deterministic and needs no tuning.
#pragma once

#include <array>
#include <functional>
#include <span>

#include "predict/point_in_time.h"

namespace persona {

class RecencyFrequencyBaseline {
 public:
  // Fits on every row of `set`, `label(row)` giving the target (e.g. row.purchased). The two
  // features are found by name in set.feature_names; when either is missing, or the set has a
  // single class, the model predicts the training positive rate for everyone (0.5 on an empty
  // set). A NaN feature value counts as the training mean of that feature.
  static RecencyFrequencyBaseline Fit(const PointInTimeSet& set,
                                      const std::function<bool(const LabeledRow&)>& label);

  // P(label) for one feature vector laid out like the training set's feature_names.
  double Probability(std::span<const float> features) const;

  // intercept, weight of log1p(days_since_last_seen), weight of log1p(events_30d).
  const std::array<double, 3>& weights() const { return weights_; }

 private:
  RecencyFrequencyBaseline() = default;
  // The two inputs of one vector: log1p of each feature, NaN (or out of range) -> training mean.
  std::array<double, 2> Inputs(std::span<const float> features) const;

  int recency_index_ = -1;
  int frequency_index_ = -1;
  std::array<double, 2> fill_ = {0, 0};  // training means of the two inputs
  std::array<double, 3> weights_ = {0, 0, 0};
};

}  // namespace persona
