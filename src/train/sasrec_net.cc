#include "train/sasrec_net.h"

#include <cmath>
#include <string>

namespace persona {
namespace {

namespace F = torch::nn::functional;

// LayerNorm epsilon shared with SasRecModel (the reference code's 1e-8).
constexpr double kLayerNormEps = 1e-8;

torch::nn::LayerNorm MakeLayerNorm(uint32_t d) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({static_cast<int64_t>(d)}).eps(kLayerNormEps));
}

std::vector<float> ToVector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

}  // namespace

SasRecNetImpl::SasRecNetImpl(const SasRecHyper& hyper, uint32_t num_items, double dropout)
    : hyper_(hyper), num_items_(num_items), dropout_(dropout) {
  const int64_t d = hyper.dim;
  item_emb_ = register_module(
      "item_emb",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(num_items + 1, d).padding_idx(0)));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(hyper.max_len, d));
  for (uint32_t b = 0; b < hyper.blocks; ++b) {
    const std::string p = "block" + std::to_string(b) + "_";
    Block blk;
    blk.ln1 = register_module(p + "ln1", MakeLayerNorm(hyper.dim));
    blk.ln2 = register_module(p + "ln2", MakeLayerNorm(hyper.dim));
    blk.in_proj_w = register_parameter(p + "in_proj_w", torch::empty({3 * d, d}));
    blk.in_proj_b = register_parameter(p + "in_proj_b", torch::zeros({3 * d}));
    blk.out_proj = register_module(p + "out_proj", torch::nn::Linear(d, d));
    blk.ff1 = register_module(p + "ff1", torch::nn::Linear(d, d));
    blk.ff2 = register_module(p + "ff2", torch::nn::Linear(d, d));
    blocks_.push_back(std::move(blk));
  }
  lnf_ = register_module("lnf", MakeLayerNorm(hyper.dim));

  // The reference initialises every matrix Xavier-normal; biases start at zero.
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    if (p.value().dim() >= 2) {
      torch::nn::init::xavier_normal_(p.value());
    } else if (p.key().find("ln") == std::string::npos) {
      p.value().zero_();
    }
  }
  item_emb_->weight[0].zero_();
}

torch::Tensor SasRecNetImpl::Forward(const torch::Tensor& seqs) {
  const int64_t batch = seqs.size(0), len = seqs.size(1), d = hyper_.dim;
  const int64_t heads = hyper_.heads, dh = d / heads;
  const torch::Tensor real = seqs.ne(0);                              // (B, L)
  const torch::Tensor keep = real.unsqueeze(-1).to(torch::kFloat32);  // (B, L, 1)

  // A batch may be trimmed to its last `len` columns (all earlier ones being padding); its
  // columns are still the last `len` positions of the max_len window.
  const int64_t max_len = hyper_.max_len;
  torch::Tensor x = item_emb_(seqs) * std::sqrt(static_cast<double>(d)) +
                    pos_emb_->weight.slice(0, max_len - len, max_len).unsqueeze(0);
  x = F::dropout(x, F::DropoutFuncOptions().p(dropout_).training(is_training()));
  x = x * keep;

  // Query t may attend to key s when s <= t and s is a real item. A padding query would see no
  // key at all (left padding), which makes softmax NaN; letting it see itself keeps the numbers
  // finite, and its row is zeroed after the block anyway.
  const torch::Tensor causal = torch::ones({len, len}, torch::kBool).tril();
  torch::Tensor allowed = causal.unsqueeze(0) & real.unsqueeze(1);  // (B, Lq, Lk)
  allowed = allowed | torch::eye(len, torch::kBool).unsqueeze(0);
  const torch::Tensor bias =
      torch::zeros({batch, 1, len, len})
          .masked_fill(allowed.logical_not().unsqueeze(1), -std::numeric_limits<float>::infinity());
  const double inv_sqrt_dh = 1.0 / std::sqrt(static_cast<double>(dh));

  for (Block& blk : blocks_) {
    const torch::Tensor qn = blk.ln1(x);
    auto heads_first = [&](const torch::Tensor& t) {  // (B, L, d) -> (B, H, L, dh)
      return t.view({batch, len, heads, dh}).transpose(1, 2);
    };
    const torch::Tensor q =
        heads_first(F::linear(qn, blk.in_proj_w.slice(0, 0, d), blk.in_proj_b.slice(0, 0, d)));
    const torch::Tensor k = heads_first(
        F::linear(x, blk.in_proj_w.slice(0, d, 2 * d), blk.in_proj_b.slice(0, d, 2 * d)));
    const torch::Tensor v = heads_first(
        F::linear(x, blk.in_proj_w.slice(0, 2 * d, 3 * d), blk.in_proj_b.slice(0, 2 * d, 3 * d)));
    torch::Tensor att = torch::softmax(q.matmul(k.transpose(-2, -1)) * inv_sqrt_dh + bias, -1);
    att = F::dropout(att, F::DropoutFuncOptions().p(dropout_).training(is_training()));
    torch::Tensor out = att.matmul(v).transpose(1, 2).reshape({batch, len, d});
    x = qn + blk.out_proj(out);
    torch::Tensor ff = blk.ff1(blk.ln2(x)).relu();
    ff = F::dropout(ff, F::DropoutFuncOptions().p(dropout_).training(is_training()));
    ff = F::dropout(blk.ff2(ff), F::DropoutFuncOptions().p(dropout_).training(is_training()));
    x = (x + ff) * keep;
  }
  return lnf_(x);
}

torch::Tensor SasRecNetImpl::FullSoftmaxLoss(const torch::Tensor& hidden,
                                             const torch::Tensor& targets) {
  const torch::Tensor sel = targets.ne(0);
  const torch::Tensor h = hidden.index({sel});                // (M, d)
  const torch::Tensor t = targets.index({sel}) - 1;           // (M,), 0-based over items 1..N
  const torch::Tensor items = item_emb_->weight.slice(0, 1);  // (N, d), padding row excluded
  return F::cross_entropy(h.matmul(items.t()), t);
}

torch::Tensor SasRecNetImpl::SampledSoftmaxLoss(const torch::Tensor& hidden,
                                                const torch::Tensor& targets,
                                                const torch::Tensor& negatives) {
  const torch::Tensor sel = targets.ne(0);
  const torch::Tensor h = hidden.index({sel});                             // (M, d)
  const torch::Tensor t = targets.index({sel});                            // (M,)
  const torch::Tensor pos = (h * item_emb_(t)).sum(-1, /*keepdim=*/true);  // (M, 1)
  torch::Tensor neg = h.matmul(item_emb_(negatives).t());                  // (M, S)
  neg = neg.masked_fill(negatives.unsqueeze(0).eq(t.unsqueeze(1)),
                        -std::numeric_limits<float>::infinity());
  return F::cross_entropy(torch::cat({pos, neg}, 1),
                          torch::zeros({h.size(0)}, torch::TensorOptions().dtype(torch::kLong)));
}

torch::Tensor SasRecNetImpl::ScoreLast(const torch::Tensor& seqs) {
  const torch::Tensor h = Forward(seqs).select(1, seqs.size(1) - 1);  // (B, d)
  torch::Tensor scores = h.matmul(item_emb_->weight.t());
  scores.select(1, 0).fill_(-std::numeric_limits<float>::infinity());
  return scores;
}

SasRecWeights SasRecNetImpl::ExportWeights() const {
  SasRecWeights w;
  w.item_emb = ToVector(item_emb_->weight);
  w.pos_emb = ToVector(pos_emb_->weight);
  for (const Block& blk : blocks_) {
    SasRecWeights::Block b;
    b.ln1_g = ToVector(blk.ln1->weight);
    b.ln1_b = ToVector(blk.ln1->bias);
    b.in_proj_w = ToVector(blk.in_proj_w);
    b.in_proj_b = ToVector(blk.in_proj_b);
    b.out_proj_w = ToVector(blk.out_proj->weight);
    b.out_proj_b = ToVector(blk.out_proj->bias);
    b.ln2_g = ToVector(blk.ln2->weight);
    b.ln2_b = ToVector(blk.ln2->bias);
    b.ff1_w = ToVector(blk.ff1->weight);
    b.ff1_b = ToVector(blk.ff1->bias);
    b.ff2_w = ToVector(blk.ff2->weight);
    b.ff2_b = ToVector(blk.ff2->bias);
    w.blocks.push_back(std::move(b));
  }
  w.lnf_g = ToVector(lnf_->weight);
  w.lnf_b = ToVector(lnf_->bias);
  return w;
}

torch::Tensor LeftPad(std::span<const std::vector<uint32_t>> sequences, uint32_t max_len) {
  torch::Tensor out = torch::zeros({static_cast<int64_t>(sequences.size()), max_len},
                                   torch::TensorOptions().dtype(torch::kLong));
  int64_t* p = out.data_ptr<int64_t>();
  for (size_t r = 0; r < sequences.size(); ++r) {
    int64_t* row = p + r * max_len;
    uint32_t col = max_len;
    for (size_t i = sequences[r].size(); i-- > 0 && col > 0;) {
      if (sequences[r][i] != 0) row[--col] = sequences[r][i];
    }
  }
  return out;
}

}  // namespace persona
