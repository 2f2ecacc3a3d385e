#include "predict/recency_frequency_baseline.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace persona {
namespace {

// L2 penalty on the slopes (not the intercept): enough to keep Newton finite on separable data,
// too small to matter on thousands of rows.
constexpr double kL2 = 1e-3;
constexpr int kMaxIterations = 50;

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

int IndexOf(const std::vector<std::string>& names, const char* name) {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

double Logit(double p) { return std::log(p / (1 - p)); }

// Solves the 3x3 system a x = b by Gaussian elimination with partial pivoting; false when a is
// (numerically) singular.
bool Solve3(std::array<std::array<double, 3>, 3> a, std::array<double, 3> b,
            std::array<double, 3>* x) {
  for (int col = 0; col < 3; ++col) {
    int pivot = col;
    for (int r = col + 1; r < 3; ++r) {
      if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
    }
    if (std::abs(a[pivot][col]) < 1e-12) return false;
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    for (int r = col + 1; r < 3; ++r) {
      const double f = a[r][col] / a[col][col];
      for (int c = col; c < 3; ++c) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  for (int r = 2; r >= 0; --r) {
    double s = b[r];
    for (int c = r + 1; c < 3; ++c) s -= a[r][c] * (*x)[c];
    (*x)[r] = s / a[r][r];
  }
  return true;
}

}  // namespace

std::array<double, 2> RecencyFrequencyBaseline::Inputs(std::span<const float> features) const {
  std::array<double, 2> in = fill_;
  const int index[2] = {recency_index_, frequency_index_};
  for (int k = 0; k < 2; ++k) {
    if (index[k] < 0 || static_cast<size_t>(index[k]) >= features.size()) continue;
    const double v = features[index[k]];
    // Both features are non-negative by definition; clamping keeps log1p defined if one is not.
    if (!std::isnan(v)) in[k] = std::log1p(std::max(0.0, v));
  }
  return in;
}

RecencyFrequencyBaseline RecencyFrequencyBaseline::Fit(
    const PointInTimeSet& set, const std::function<bool(const LabeledRow&)>& label) {
  RecencyFrequencyBaseline model;
  const size_t n = set.rows.size();
  std::vector<uint8_t> y(n);
  double positives = 0;
  for (size_t i = 0; i < n; ++i) positives += y[i] = label(set.rows[i]) ? 1 : 0;
  if (n == 0) return model;  // all weights 0: probability 0.5
  const double rate = positives / static_cast<double>(n);
  // A constant model is the honest answer for a single class; clip so the logit stays finite.
  model.weights_[0] = Logit(std::clamp(rate, 1e-6, 1 - 1e-6));
  model.recency_index_ = IndexOf(set.feature_names, "days_since_last_seen");
  model.frequency_index_ = IndexOf(set.feature_names, "events_30d");
  if (model.recency_index_ < 0 || model.frequency_index_ < 0 || positives == 0 ||
      positives == static_cast<double>(n)) {
    model.recency_index_ = model.frequency_index_ = -1;
    return model;
  }

  // Means first (they stand in for NaN), then the design matrix.
  std::array<double, 2> sum = {0, 0}, count = {0, 0};
  const int index[2] = {model.recency_index_, model.frequency_index_};
  for (const LabeledRow& row : set.rows) {
    for (int k = 0; k < 2; ++k) {
      const float v = static_cast<size_t>(index[k]) < row.features.size() ? row.features[index[k]]
                                                                          : std::nanf("");
      if (std::isnan(v)) continue;
      sum[k] += std::log1p(std::max(0.0f, v));
      count[k] += 1;
    }
  }
  for (int k = 0; k < 2; ++k) model.fill_[k] = count[k] > 0 ? sum[k] / count[k] : 0;
  std::vector<std::array<double, 2>> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = model.Inputs(set.rows[i].features);

  // Newton-Raphson on the penalised log-likelihood: H = X'WX + L2, g = X'(y - p) - L2 w.
  std::array<double, 3>& w = model.weights_;
  for (int iter = 0; iter < kMaxIterations; ++iter) {
    std::array<std::array<double, 3>, 3> h{};
    std::array<double, 3> g{};
    for (size_t i = 0; i < n; ++i) {
      const double xi[3] = {1, x[i][0], x[i][1]};
      const double p = Sigmoid(w[0] + w[1] * xi[1] + w[2] * xi[2]);
      const double r = static_cast<double>(y[i]) - p;
      const double v = std::max(p * (1 - p), 1e-12);
      for (int a = 0; a < 3; ++a) {
        g[a] += r * xi[a];
        for (int b = 0; b < 3; ++b) h[a][b] += v * xi[a] * xi[b];
      }
    }
    for (int a = 1; a < 3; ++a) {
      g[a] -= kL2 * static_cast<double>(n) * w[a];
      h[a][a] += kL2 * static_cast<double>(n);
    }
    std::array<double, 3> step{};
    if (!Solve3(h, g, &step)) break;
    double largest = 0;
    for (int a = 0; a < 3; ++a) {
      w[a] += step[a];
      largest = std::max(largest, std::abs(step[a]));
    }
    if (largest < 1e-9) break;
  }
  return model;
}

double RecencyFrequencyBaseline::Probability(std::span<const float> features) const {
  if (recency_index_ < 0) return Sigmoid(weights_[0]);
  const std::array<double, 2> in = Inputs(features);
  return Sigmoid(weights_[0] + weights_[1] * in[0] + weights_[2] * in[1]);
}

}  // namespace persona
