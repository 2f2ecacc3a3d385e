// A trained SASRec model (Kang & McAuley 2018, self-attentive sequential recommendation) as
// Persona serves it: the versioned artifact (hyper-parameters, vocabulary, metadata, weights) and
// an exact forward pass in plain C++. Training happens in src/train with libtorch; serving does
// not touch torch: one user's forward pass is a few 50x64 matrix products plus one dot product per
// item, cheaper and with a steadier tail than a libtorch call per request.
//
// Architecture (pre-LayerNorm, as in the PyTorch reproduction the issue cites):
//   x = E[item] * sqrt(d) + P[pos]                 (positions 0..L-1, padding rows zeroed)
//   per block: q = LN1(x); x = q + MHA(q, x, x, causal); x = FFN(LN2(x)) + x; x *= mask
//   h = LNf(x)[last];  score(i) = <h, E[i]>
// FFN is Linear(d,d) -> ReLU -> Linear(d,d). Dropout is training-only.
//
// Artifact file format: see docs/model_format.md.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace persona {

struct SasRecHyper {
  uint32_t max_len = 50;
  uint32_t dim = 64;
  uint32_t blocks = 2;
  uint32_t heads = 1;
};

// Weights in row-major float arrays; shapes given for dim d, max_len L, items N (+1 padding row).
struct SasRecWeights {
  std::vector<float> item_emb;  // (N+1) x d, row 0 = padding
  std::vector<float> pos_emb;   // L x d
  struct Block {
    std::vector<float> ln1_g, ln1_b;  // d
    std::vector<float> in_proj_w;     // 3d x d (q, k, v stacked, as torch's MultiheadAttention)
    std::vector<float> in_proj_b;     // 3d
    std::vector<float> out_proj_w;    // d x d
    std::vector<float> out_proj_b;    // d
    std::vector<float> ln2_g, ln2_b;  // d
    std::vector<float> ff1_w, ff1_b;  // d x d, d
    std::vector<float> ff2_w, ff2_b;  // d x d, d
  };
  std::vector<Block> blocks;
  std::vector<float> lnf_g, lnf_b;  // d
};

class SasRecModel {
 public:
  // `items[i]` names vocabulary index i (items[0] is the empty padding name). `metadata_json` is a
  // JSON object (training data, metrics, wall time, ...) stored verbatim.
  SasRecModel(SasRecHyper hyper, std::vector<std::string> items, SasRecWeights weights,
              std::string version, std::string metadata_json);

  // Reads an artifact; InvalidArgument/DataLoss naming what is wrong for a bad file.
  static absl::StatusOr<std::shared_ptr<const SasRecModel>> Load(const std::string& path);
  // Writes the artifact atomically (temp file + rename).
  absl::Status Save(const std::string& path) const;

  const SasRecHyper& hyper() const { return hyper_; }
  const std::string& version() const { return version_; }
  const std::string& metadata_json() const { return metadata_json_; }
  uint32_t num_items() const { return static_cast<uint32_t>(items_.size()) - 1; }
  // Vocabulary index of an item name, 0 when unknown.
  uint32_t IndexOf(std::string_view item) const;
  std::string_view ItemAt(uint32_t index) const { return items_[index]; }

  // The user representation after `sequence` (vocabulary indices, oldest first; 0s are skipped;
  // only the last max_len are used). `out.size()` == dim. An empty sequence gives zeros.
  void Encode(std::span<const uint32_t> sequence, std::span<float> out) const;
  // scores[i] = <Encode(sequence), E[i]> for i in 1..N; scores[0] = -inf. scores.size() == N+1.
  void ScoreAll(std::span<const uint32_t> sequence, std::span<float> scores) const;
  const SasRecWeights& weights() const { return weights_; }

 private:
  SasRecHyper hyper_;
  std::vector<std::string> items_;
  absl::flat_hash_map<std::string, uint32_t> index_;
  SasRecWeights weights_;
  std::string version_;
  std::string metadata_json_;
};

}  // namespace persona
