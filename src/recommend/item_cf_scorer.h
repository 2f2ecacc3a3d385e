// Online item-to-item CF (recommend/item_cf.h) as an offline next-item scorer: the CF is fed the
// evaluation data's training sequences in order, exactly as live events would feed it, and then
// scores a history the way ItemCf::Recommend does, densely over every item.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "eval/sequence_data.h"
#include "eval/sequence_eval.h"
#include "recommend/item_cf.h"

namespace persona {

struct ItemCfScorerOptions {
  ItemCfConfig cf;
  uint32_t depth = 10;    // most recent history items that contribute (Recommend's `depth`)
  float recency = 0.65f;  // weight of the r-th most recent history item: recency^r (as ItemCf)
};

class ItemCfScorer : public SequenceScorer {
 public:
  // Learns from every user's leave-one-out training part, plus the validation item when
  // `include_valid` (the test protocol: the model may know everything before the test target;
  // for the validation protocol it must not see the validation item). Each item is added with the
  // user's earlier items, most recent first, as `previous`.
  ItemCfScorer(const SequenceDataset& data, bool include_valid, ItemCfScorerOptions options = {});

  std::string name() const override { return "itemcf"; }
  // scores[j] = sum over the last `depth` history items h_r (r = 0 most recent) of
  // recency^r * sim(h_r, j), plus a popularity prior below 1e-9 (see kPriorScale in the .cc) that
  // only orders items the CF has no signal for and breaks exact ties. Thread-safe.
  void Score(std::span<const uint32_t> history, std::span<float> scores) const override;

  // Items with at least one neighbour, and the learned pairs (for reports).
  size_t items_with_neighbours() const { return items_with_neighbours_; }
  uint64_t pairs() const { return pairs_; }

 private:
  ItemCfScorerOptions options_;
  // Every item's neighbours (CSR: those of item i are [offsets_[i], offsets_[i+1])), read from the
  // trained ItemCf once so that scoring takes no locks and allocates nothing.
  std::vector<uint32_t> offsets_;
  std::vector<ItemCf::Neighbour> neighbours_;
  std::vector<float> prior_;
  size_t items_with_neighbours_ = 0;
  uint64_t pairs_ = 0;
};

}  // namespace persona
