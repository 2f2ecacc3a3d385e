#include "recommend/item_cf_scorer.h"

#include <algorithm>

namespace persona {
namespace {

// The popularity prior is at most this. A CF score is recency^r * sim with sim >= roughly
// 1e-6 on the Amazon sets (a pair of weight 0.24 between two items with 10^4 pair weight each,
// shrunk), so the prior never reorders items the CF has an opinion on; it only stops the many
// items without signal from tying (ties rank pessimistically, so a tie is a miss).
constexpr float kPriorScale = 1e-9f;

}  // namespace

ItemCfScorer::ItemCfScorer(const SequenceDataset& data, bool include_valid,
                           ItemCfScorerOptions options)
    : options_(options) {
  ItemCf cf(options.cf);
  std::vector<float> counts(data.num_items + 1, 0.0f);
  std::vector<uint32_t> known;
  std::vector<uint32_t> previous;  // most recent first
  for (const auto& sequence : data.sequences) {
    LeaveOneOut split = SplitLeaveOneOut(sequence);
    known = std::move(split.train);
    if (include_valid && split.valid != 0) known.push_back(split.valid);
    for (size_t t = 0; t < known.size(); ++t) {
      previous.clear();
      const size_t window = std::min<size_t>(t, options.cf.window);
      for (size_t d = 1; d <= window; ++d) previous.push_back(known[t - d]);
      cf.Add(known[t], previous);
      counts[known[t]] += 1.0f;
    }
  }
  pairs_ = cf.pairs();
  items_with_neighbours_ = cf.items();

  offsets_.assign(data.num_items + 2, 0);
  for (uint32_t item = 1; item <= data.num_items; ++item) {
    offsets_[item] = static_cast<uint32_t>(neighbours_.size());
    std::vector<ItemCf::Neighbour> similar = cf.Similar(item, options.cf.max_neighbours);
    neighbours_.insert(neighbours_.end(), similar.begin(), similar.end());
  }
  offsets_[data.num_items + 1] = static_cast<uint32_t>(neighbours_.size());

  const float max_count = std::max(1.0f, *std::max_element(counts.begin(), counts.end()));
  prior_.resize(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) prior_[i] = kPriorScale * counts[i] / max_count;
}

void ItemCfScorer::Score(std::span<const uint32_t> history, std::span<float> scores) const {
  const size_t n = std::min(scores.size(), prior_.size());
  std::copy(prior_.begin(), prior_.begin() + n, scores.begin());
  std::fill(scores.begin() + n, scores.end(), 0.0f);
  float weight = 1.0f;
  const size_t depth = std::min<size_t>(options_.depth, history.size());
  for (size_t r = 0; r < depth; ++r, weight *= options_.recency) {
    const uint32_t item = history[history.size() - 1 - r];
    if (item + 1 >= offsets_.size()) continue;
    for (uint32_t i = offsets_[item]; i < offsets_[item + 1]; ++i) {
      const ItemCf::Neighbour& neighbour = neighbours_[i];
      if (neighbour.item < scores.size()) scores[neighbour.item] += weight * neighbour.similarity;
    }
  }
}

}  // namespace persona
