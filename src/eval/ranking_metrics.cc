#include "eval/ranking_metrics.h"

#include <algorithm>
#include <cmath>

namespace persona {

double HitRate(uint32_t rank, uint32_t k) { return rank < k ? 1.0 : 0.0; }

double Ndcg(uint32_t rank, uint32_t k) {
  return rank < k ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0;
}

uint32_t RankAmong(std::span<const float> scores, uint32_t target,
                   std::span<const uint32_t> candidates) {
  const float t = scores[target];
  uint32_t rank = 0;
  for (uint32_t c : candidates) {
    if (c == target) continue;
    // >= counts ties against the model. NaN compares false both ways, so a NaN candidate never
    // outranks the target; a NaN target is beaten by everything (handled below).
    rank += scores[c] >= t;
  }
  if (std::isnan(t)) {
    rank = 0;
    for (uint32_t c : candidates) rank += c != target;
  }
  return rank;
}

uint32_t RankAmongAll(std::span<const float> scores, uint32_t target,
                      std::span<const uint32_t> excluded) {
  const float t = scores[target];
  const size_t n = scores.size();
  uint32_t rank = 0;
  if (std::isnan(t)) {
    rank = n > 1 ? static_cast<uint32_t>(n - 2) : 0;  // everything but the target
  } else {
    for (size_t i = 1; i < n; ++i) rank += scores[i] >= t;
    rank -= 1;  // the target itself (scores[target] >= t)
  }
  // Take back the excluded items that were counted (duplicates in `excluded` count once).
  bool have_previous = false;
  uint32_t previous = 0;
  for (uint32_t e : excluded) {
    const bool repeat = have_previous && e == previous;
    have_previous = true;
    previous = e;
    if (repeat || e == 0 || e >= n || e == target) continue;
    if (std::isnan(t) || scores[e] >= t) --rank;
  }
  return rank;
}

}  // namespace persona
