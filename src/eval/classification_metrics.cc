#include "eval/classification_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace persona {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMinProb = 1e-15;

}  // namespace

BinaryMetrics EvaluateBinary(std::span<const double> prob, std::span<const uint8_t> label,
                             int ece_bins) {
  BinaryMetrics m;
  const size_t n = std::min(prob.size(), label.size());
  m.n = n;
  for (size_t i = 0; i < n; ++i) m.positives += label[i] != 0;
  if (n == 0) {
    m.auc = m.log_loss = m.threshold = m.ece = kNaN;
    return m;
  }
  const size_t negatives = n - m.positives;

  // Log-loss.
  double loss = 0;
  for (size_t i = 0; i < n; ++i) {
    const double p = std::clamp(std::isnan(prob[i]) ? 0.0 : prob[i], kMinProb, 1 - kMinProb);
    loss -= label[i] ? std::log(p) : std::log1p(-p);
  }
  m.log_loss = loss / static_cast<double>(n);

  // One pass over the examples in descending score order serves both AUC and the F1 sweep. A NaN
  // would break the sort's ordering, so it ranks as 0 (the contract excludes it anyway).
  std::vector<double> score(prob.begin(), prob.begin() + static_cast<ptrdiff_t>(n));
  for (double& s : score) {
    if (std::isnan(s)) s = 0;
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  // AUC = P(score of a random positive > score of a random negative), ties counting one half:
  // each negative contributes the positives ranked strictly above it plus half of those tied
  // with it, which is the Mann-Whitney U with averaged ranks.
  double wins = 0;
  size_t positives_above = 0;  // positives in earlier (higher-scored) tie groups
  double best_f1 = -1;
  m.threshold = kNaN;
  for (size_t begin = 0; begin < n;) {
    size_t end = begin;
    size_t group_pos = 0;
    while (end < n && score[order[end]] == score[order[begin]])
      group_pos += label[order[end++]] != 0;
    const size_t group_neg = (end - begin) - group_pos;
    wins += static_cast<double>(group_neg) *
            (static_cast<double>(positives_above) + 0.5 * static_cast<double>(group_pos));
    positives_above += group_pos;
    // Predicting positive for everything scored >= this group's score.
    if (m.positives > 0) {
      const double tp = static_cast<double>(positives_above);
      const double predicted = static_cast<double>(end);
      const double f1 = 2 * tp / (predicted + static_cast<double>(m.positives));
      if (f1 > best_f1) {  // strict: the first (highest) threshold wins ties
        best_f1 = f1;
        m.threshold = score[order[begin]];
        m.precision = tp / predicted;
        m.recall = tp / static_cast<double>(m.positives);
        m.f1 = f1;
      }
    }
    begin = end;
  }
  m.auc = (m.positives == 0 || negatives == 0)
              ? kNaN
              : wins / (static_cast<double>(m.positives) * static_cast<double>(negatives));

  // Calibration.
  const int bins = std::max(1, ece_bins);
  std::vector<double> sum_p(bins, 0), sum_y(bins, 0), count(bins, 0);
  for (size_t i = 0; i < n; ++i) {
    const double p = std::clamp(score[i], 0.0, 1.0);
    const int b = std::min(bins - 1, static_cast<int>(p * bins));
    sum_p[b] += p;
    sum_y[b] += label[i] != 0;
    count[b] += 1;
  }
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] > 0) ece += std::abs(sum_p[b] - sum_y[b]);  // = count * |mean p - rate|
  }
  m.ece = ece / static_cast<double>(n);
  return m;
}

}  // namespace persona
