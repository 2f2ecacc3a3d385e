// Ranking metrics for next-item evaluation. A target's rank is the number of candidates scored
// strictly higher plus the number of OTHER candidates with an equal score (ties count against the
// model: a constant scorer gets the worst rank, not a lucky one). Ranks are 0-based.
#pragma once

#include <cstdint>
#include <span>

namespace persona {

// 1 when rank < k.
double HitRate(uint32_t rank, uint32_t k);
// 1 / log2(rank + 2) when rank < k, else 0 (one relevant item, so IDCG = 1).
double Ndcg(uint32_t rank, uint32_t k);
// Rank of scores[target] among scores[candidates[i]] (target excluded from the candidates if
// present).
uint32_t RankAmong(std::span<const float> scores, uint32_t target,
                   std::span<const uint32_t> candidates);
// Rank of scores[target] among all indices 1..scores.size()-1 except those in `excluded` (sorted
// ascending; typically the user's other interactions) and except the target itself.
uint32_t RankAmongAll(std::span<const float> scores, uint32_t target,
                      std::span<const uint32_t> excluded);

}  // namespace persona
