// Offline evaluation of next-item recommenders on a leave-one-out split (the SASRec paper's
// protocol): for each user with targets, the model sees the training items (plus the validation
// item when the test target is ranked) and ranks the target
//   - against `negatives` items drawn uniformly from those the user never interacted with
//     (sampled protocol; fixed seeds, averaged over seeds), and
//   - against the full item set minus the user's other interactions (full protocol).
// HR@K and NDCG@K for each K are averaged over users.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "eval/sequence_data.h"

namespace persona {

// A recommender under evaluation: scores every item 1..num_items for a history (oldest first).
// Score must be safe to call from several threads at once.
class SequenceScorer {
 public:
  virtual ~SequenceScorer() = default;
  virtual std::string name() const = 0;
  // scores.size() == num_items + 1; scores[0] is ignored.
  virtual void Score(std::span<const uint32_t> history, std::span<float> scores) const = 0;
};

struct SequenceEvalOptions {
  std::vector<uint32_t> ks = {1, 5, 10, 20};
  uint32_t negatives = 100;
  std::vector<uint64_t> seeds = {1, 2, 3, 4, 5};
  bool full_ranking = true;
  // Rank the validation target from the training items instead of the test target (model
  // selection during training).
  bool validation = false;
  // Evaluate only the first max_users eligible users in a seed-1 shuffle (0 = all).
  uint32_t max_users = 0;
  uint32_t threads = 2;
  // Called now and then with (users done, users total).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct MetricsAtK {
  uint32_t k = 0;
  double hr = 0, ndcg = 0;
  double hr_std = 0, ndcg_std = 0;  // across seeds (sampled protocol only)
};

struct SequenceEvalResult {
  std::string model;
  uint64_t users = 0;
  std::vector<MetricsAtK> sampled;  // one per K, mean over seeds
  std::vector<MetricsAtK> full;     // one per K (empty unless full_ranking)
  double seconds = 0;
  // The entry for K in `sampled` / `full` (nullptr when absent).
  const MetricsAtK* SampledAt(uint32_t k) const;
  const MetricsAtK* FullAt(uint32_t k) const;
};

SequenceEvalResult EvaluateSequences(const SequenceDataset& data, const SequenceScorer& scorer,
                                     const SequenceEvalOptions& options);

// Most popular items in training (counts over every user's training part).
class PopularityScorer : public SequenceScorer {
 public:
  explicit PopularityScorer(const SequenceDataset& data);
  std::string name() const override { return "popularity"; }
  void Score(std::span<const uint32_t> history, std::span<float> scores) const override;

 private:
  std::vector<float> counts_;
};

}  // namespace persona
