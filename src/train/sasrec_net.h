// The SASRec network in libtorch: the training-side twin of SasRecModel's forward pass
// (recommend/sasrec_model.h documents the architecture). Attention is written out with explicit
// projections instead of torch::nn::MultiheadAttention so that the weights map one to one onto
// SasRecWeights and the masking is exactly the serving code's: causal, padding keys masked,
// padding rows zeroed after every block.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <span>
#include <vector>

#include "recommend/sasrec_model.h"

namespace persona {

class SasRecNetImpl : public torch::nn::Module {
 public:
  // Weights start as in the reference implementation (Xavier-normal matrices, unit LayerNorms,
  // zero biases, a zero padding embedding).
  SasRecNetImpl(const SasRecHyper& hyper, uint32_t num_items, double dropout);

  // Hidden states (B, T, d) after the final LayerNorm for left-padded item indices (B, T) int64,
  // 0 = padding, T <= max_len: column c is window position max_len - T + c, so a batch whose
  // leading columns are all padding may be passed without them and gives the same states.
  // Dropout is active only in train() mode.
  torch::Tensor Forward(const torch::Tensor& seqs);

  // Mean cross-entropy of the next item over all items 1..N at every position whose target
  // (B, L) is not 0. Only those positions enter the (positions x N) logits product.
  torch::Tensor FullSoftmaxLoss(const torch::Tensor& hidden, const torch::Tensor& targets);
  // Same, with the item set replaced by `negatives` (S) int64 items shared by the batch plus
  // each position's own target; a negative equal to the target is masked out.
  torch::Tensor SampledSoftmaxLoss(const torch::Tensor& hidden, const torch::Tensor& targets,
                                   const torch::Tensor& negatives);

  // Scores (B, N+1) of every item after the last position of each row (column 0 is padding).
  torch::Tensor ScoreLast(const torch::Tensor& seqs);

  // Copies the current parameters into the serving layout.
  SasRecWeights ExportWeights() const;

  const SasRecHyper& hyper() const { return hyper_; }
  uint32_t num_items() const { return num_items_; }

 private:
  struct Block {
    torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
    torch::Tensor in_proj_w, in_proj_b;  // (3d, d), (3d): q, k, v stacked
    torch::nn::Linear out_proj{nullptr}, ff1{nullptr}, ff2{nullptr};
  };

  SasRecHyper hyper_;
  uint32_t num_items_;
  double dropout_;
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  std::vector<Block> blocks_;
  torch::nn::LayerNorm lnf_{nullptr};
};
TORCH_MODULE(SasRecNet);

// Rows of a (B, max_len) int64 tensor: each sequence's last max_len non-zero items, left-padded
// with 0 (the latest item in the last column), the layout both Forward and SasRecModel use.
torch::Tensor LeftPad(std::span<const std::vector<uint32_t>> sequences, uint32_t max_len);

}  // namespace persona
