#include "gen/alias_table.h"

#include <cmath>

namespace persona::gen {

AliasTable::AliasTable(std::span<const double> weights) {
  double total = 0;
  for (double w : weights) total += w;
  if (weights.empty() || !(total > 0)) return;

  const size_t n = weights.size();
  size_ = n;
  std::vector<uint32_t> threshold(n, 0);
  std::vector<uint32_t> alias(n);
  // Scaled so that the average column holds exactly 1.
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / total;
    alias[i] = static_cast<uint32_t>(i);
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  constexpr double kOne = 4294967296.0;  // 2^32
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back();
    small.pop_back();
    const uint32_t l = large.back();
    const double t = std::floor(scaled[s] * kOne);
    threshold[s] = t >= kOne - 1 ? 0xffffffffu : static_cast<uint32_t>(t);
    alias[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left holds 1 up to rounding: those columns keep themselves (their alias is
  // themselves too, so the 2^-32 chance of passing the threshold changes nothing).
  for (uint32_t i : large) threshold[i] = 0xffffffffu;
  for (uint32_t i : small) threshold[i] = 0xffffffffu;
  // Zero-weight outcomes must never come out, whatever rounding did.
  uint32_t first_positive = 0;
  while (!(weights[first_positive] > 0)) ++first_positive;
  for (size_t i = 0; i < n; ++i) {
    if (weights[i] > 0) continue;
    threshold[i] = 0;
    if (alias[i] == i) alias[i] = first_positive;
  }
  columns_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    columns_[i] = Column{threshold[i], alias[i]};
  }
}

}  // namespace persona::gen
