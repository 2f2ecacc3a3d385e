// Metrics of a binary classifier's probabilities against 0/1 labels, for the propensity and churn
// models and their baselines: ranking quality (AUC), probabilistic quality (log-loss,
// calibration error) and the best operating point (the threshold that maximises F1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace persona {

struct BinaryMetrics {
  size_t n = 0;
  size_t positives = 0;
  // Mann-Whitney AUC with tied scores counted as half-wins; NaN when there are no positives or
  // no negatives.
  double auc = 0;
  // Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15]; NaN when n == 0.
  double log_loss = 0;
  // The distinct score t maximising F1 of the rule "positive when prob >= t" (the highest such t
  // on ties), and precision, recall and F1 at it. Without positives: threshold NaN, the rest 0.
  double threshold = 0;
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  // Expected calibration error: over equal-width probability bins, the example-weighted mean of
  // |mean probability - positive rate|; NaN when n == 0.
  double ece = 0;
};

// Evaluates `prob` (each in [0, 1]) against `label` (0 or non-zero), which must have the same
// size (only the common prefix is used otherwise). `ece_bins` >= 1 equal-width bins over [0, 1].
// O(n log n).
BinaryMetrics EvaluateBinary(std::span<const double> prob, std::span<const uint8_t> label,
                             int ece_bins = 10);

}  // namespace persona
