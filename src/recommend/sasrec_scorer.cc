#include "recommend/sasrec_scorer.h"

#include <limits>

namespace persona {

SasRecScorer::SasRecScorer(std::shared_ptr<const SasRecModel> model, const SequenceDataset& data,
                           std::string name)
    : model_(std::move(model)), name_(std::move(name)), to_model_(data.num_items + 1, 0) {
  for (uint32_t i = 1; i <= data.num_items && i < data.item_names.size(); ++i) {
    to_model_[i] = model_->IndexOf(data.item_names[i]);
  }
  for (uint32_t i = 1; i <= data.num_items; ++i) unknown_items_ += to_model_[i] == 0;
}

void SasRecScorer::Score(std::span<const uint32_t> history, std::span<float> scores) const {
  // Scratch per thread: the evaluator calls Score once per user from a few long-lived threads.
  thread_local std::vector<uint32_t> sequence;
  thread_local std::vector<float> model_scores;
  sequence.clear();
  for (uint32_t item : history) {
    const uint32_t index = item < to_model_.size() ? to_model_[item] : 0;
    if (index != 0) sequence.push_back(index);
  }
  model_scores.resize(model_->num_items() + 1);
  model_->ScoreAll(sequence, model_scores);
  constexpr float kUnknown = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < scores.size(); ++i) {
    const uint32_t index = i < to_model_.size() ? to_model_[i] : 0;
    scores[i] = index == 0 ? kUnknown : model_scores[index];
  }
}

}  // namespace persona
