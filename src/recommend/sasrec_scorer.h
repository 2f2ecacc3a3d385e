// A trained SASRec model (recommend/sasrec_model.h) as an offline next-item scorer. The model has
// its own vocabulary (the item names it was trained on); the evaluation data is matched to it by
// item name once, so a model trained on one export can be evaluated on another.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "eval/sequence_data.h"
#include "eval/sequence_eval.h"
#include "recommend/sasrec_model.h"

namespace persona {

class SasRecScorer : public SequenceScorer {
 public:
  // Maps every item of `data` to the model's vocabulary through data.item_names. `name` labels
  // the scorer in reports.
  SasRecScorer(std::shared_ptr<const SasRecModel> model, const SequenceDataset& data,
               std::string name = "sasrec");

  std::string name() const override { return name_; }
  // scores[i] = the model's score of dataset item i. History items unknown to the model are
  // skipped; items unknown to the model score -inf (they rank below everything, ties against the
  // target included, so a target the model cannot name is a miss). Thread-safe.
  void Score(std::span<const uint32_t> history, std::span<float> scores) const override;

  // Dataset items (1..num_items) the model's vocabulary does not contain.
  uint32_t unknown_items() const { return unknown_items_; }

 private:
  std::shared_ptr<const SasRecModel> model_;
  std::string name_;
  std::vector<uint32_t> to_model_;  // dataset index -> vocabulary index (0 = unknown)
  uint32_t unknown_items_ = 0;
};

}  // namespace persona
