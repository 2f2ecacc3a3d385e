#include "recommend/sasrec_model.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/model_artifact.h"

namespace persona {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the artifact stores little-endian integers and floats as raw bytes");

// LayerNorm epsilon, as in the reference SASRec code; the torch trainer uses the same value.
constexpr float kLayerNormEps = 1e-8f;

// ---------------------------------------------------------------------------------------------
// Kernels. The build does not use -ffast-math, so g++ will not reorder a float reduction on its
// own; Dot keeps 8 independent partial sums instead, which the SLP vectoriser maps onto SIMD
// registers at -O2 (the inner loop has a constant trip count, so no epilogue is needed).

inline float HorizontalSum(const float (&acc)[8]) {
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

inline float Dot(const float* a, const float* b, uint32_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // size_t, not uint32_t: a 32-bit k + j could wrap, and then g++ cannot prove the eight loads
  // contiguous and gathers them one by one.
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (size_t j = 0; j < 8; ++j) acc[j] += a[k + j] * b[k + j];
  }
  float tail = 0;
  for (; k < n; ++k) tail += a[k] * b[k];
  return HorizontalSum(acc) + tail;
}

// out[i] += a * x[i]
inline void Axpy(float a, const float* x, float* out, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) out[i] += a * x[i];
}

// out[o] = <w[o], x> for the `rows` rows of the row-major matrix w (rows x n). Four rows at a
// time share each load of x and give the CPU four independent accumulator chains; that is what
// makes ScoreAll's pass over the item table and the per-layer products fast. A second copy is
// compiled for x86-64-v3 (AVX2 + FMA) and picked at load time on CPUs that have it.
__attribute__((target_clones("arch=x86-64-v3", "default"))) void MatVec(const float* w,
                                                                        uint32_t rows, uint32_t n,
                                                                        const float* x,
                                                                        float* out) {
  uint32_t o = 0;
  for (; o + 4 <= rows; o += 4) {
    const float* w0 = w + static_cast<size_t>(o) * n;
    const float* w1 = w0 + n;
    const float* w2 = w1 + n;
    const float* w3 = w2 + n;
    float a0[8] = {0, 0, 0, 0, 0, 0, 0, 0}, a1[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float a2[8] = {0, 0, 0, 0, 0, 0, 0, 0}, a3[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
      for (size_t j = 0; j < 8; ++j) {
        const float xv = x[k + j];
        a0[j] += w0[k + j] * xv;
        a1[j] += w1[k + j] * xv;
        a2[j] += w2[k + j] * xv;
        a3[j] += w3[k + j] * xv;
      }
    }
    float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (; k < n; ++k) {
      t0 += w0[k] * x[k];
      t1 += w1[k] * x[k];
      t2 += w2[k] * x[k];
      t3 += w3[k] * x[k];
    }
    out[o] = HorizontalSum(a0) + t0;
    out[o + 1] = HorizontalSum(a1) + t1;
    out[o + 2] = HorizontalSum(a2) + t2;
    out[o + 3] = HorizontalSum(a3) + t3;
  }
  for (; o < rows; ++o) out[o] = Dot(w + static_cast<size_t>(o) * n, x, n);
}

// y (rows x out_dim) = x (rows x in_dim) * W^T + b, W row-major out_dim x in_dim (torch Linear).
void Linear(const float* x, uint32_t rows, uint32_t in_dim, const float* w, const float* b,
            uint32_t out_dim, float* y) {
  for (uint32_t r = 0; r < rows; ++r) {
    float* yr = y + static_cast<size_t>(r) * out_dim;
    MatVec(w, out_dim, in_dim, x + static_cast<size_t>(r) * in_dim, yr);
    for (uint32_t o = 0; o < out_dim; ++o) yr[o] += b[o];
  }
}

void LayerNorm(const float* x, uint32_t rows, uint32_t d, const float* g, const float* b,
               float* y) {
  for (uint32_t r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * d;
    float* yr = y + static_cast<size_t>(r) * d;
    float mean = 0;
    for (uint32_t i = 0; i < d; ++i) mean += xr[i];
    mean /= static_cast<float>(d);
    float var = 0;
    for (uint32_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<float>(d);  // biased, as torch's layer_norm
    const float inv = 1.0f / std::sqrt(var + kLayerNormEps);
    for (uint32_t i = 0; i < d; ++i) yr[i] = (xr[i] - mean) * inv * g[i] + b[i];
  }
}

// Per-thread scratch for Encode: sized once per thread and model shape, then reused, so a
// request allocates nothing.
struct EncodeScratch {
  std::vector<uint32_t> items;
  std::vector<float> x, qn, q, k, v, attn, att_out, ln2, hidden, weights;
  void Reserve(uint32_t len, uint32_t d) {
    const size_t m = static_cast<size_t>(len) * d;
    items.resize(len);
    for (auto* buf : {&x, &qn, &q, &k, &v, &attn, &att_out, &ln2, &hidden}) {
      if (buf->size() < m) buf->resize(m);
    }
    if (weights.size() < len) weights.resize(len);
  }
};

// ---------------------------------------------------------------------------------------------
// Payload encoding (docs/model_format.md); model_artifact.h wraps it in the envelope.

constexpr std::string_view kKindSasRec = "sasrec";

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}
// Bounds-checked reader over the payload; every failure names what it was reading.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view bytes) : rest_(bytes) {}

  absl::Status U32(absl::string_view what, uint32_t* v) {
    if (rest_.size() < 4) return Truncated(what);
    std::memcpy(v, rest_.data(), 4);
    rest_.remove_prefix(4);
    return absl::OkStatus();
  }
  absl::Status String(absl::string_view what, std::string* s) {
    uint32_t len = 0;
    if (auto st = U32(what, &len); !st.ok()) return st;
    if (rest_.size() < len) return Truncated(what);
    s->assign(rest_.data(), len);
    rest_.remove_prefix(len);
    return absl::OkStatus();
  }
  absl::Status Floats(absl::string_view what, size_t count, std::vector<float>* v) {
    if (rest_.size() / sizeof(float) < count) return Truncated(what);
    v->resize(count);
    std::memcpy(v->data(), rest_.data(), count * sizeof(float));
    rest_.remove_prefix(count * sizeof(float));
    return absl::OkStatus();
  }
  size_t remaining() const { return rest_.size(); }

 private:
  static absl::Status Truncated(absl::string_view what) {
    return absl::DataLossError(absl::StrCat("model payload ends inside ", what));
  }
  std::string_view rest_;
};

// Calls f(name, shape, tensor) for every weight tensor in file order. `W` is SasRecWeights or
// const SasRecWeights; `w.blocks` must already hold hyper.blocks entries.
template <typename W, typename F>
void ForEachTensor(const SasRecHyper& h, uint32_t num_items, W& w, F&& f) {
  const uint32_t d = h.dim;
  f("item_emb", {num_items + 1, d}, w.item_emb);
  f("pos_emb", {h.max_len, d}, w.pos_emb);
  for (uint32_t b = 0; b < h.blocks; ++b) {
    auto& blk = w.blocks[b];
    const std::string p = absl::StrCat("block", b, ".");
    f(p + "ln1_g", {d}, blk.ln1_g);
    f(p + "ln1_b", {d}, blk.ln1_b);
    f(p + "in_proj_w", {3 * d, d}, blk.in_proj_w);
    f(p + "in_proj_b", {3 * d}, blk.in_proj_b);
    f(p + "out_proj_w", {d, d}, blk.out_proj_w);
    f(p + "out_proj_b", {d}, blk.out_proj_b);
    f(p + "ln2_g", {d}, blk.ln2_g);
    f(p + "ln2_b", {d}, blk.ln2_b);
    f(p + "ff1_w", {d, d}, blk.ff1_w);
    f(p + "ff1_b", {d}, blk.ff1_b);
    f(p + "ff2_w", {d, d}, blk.ff2_w);
    f(p + "ff2_b", {d}, blk.ff2_b);
  }
  f("lnf_g", {d}, w.lnf_g);
  f("lnf_b", {d}, w.lnf_b);
}

constexpr uint32_t TensorCount(const SasRecHyper& h) { return 4 + 12 * h.blocks; }

absl::Status ReadTensor(PayloadReader& in, const std::string& expected_name,
                        std::initializer_list<uint32_t> shape, std::vector<float>* dest) {
  std::string name;
  if (auto s = in.String("tensor name", &name); !s.ok()) return s;
  if (name != expected_name) {
    return absl::DataLossError(
        absl::StrCat("tensor '", name, "' where ", expected_name, " belongs"));
  }
  uint32_t rank = 0;
  if (auto s = in.U32(expected_name, &rank); !s.ok()) return s;
  if (rank != shape.size()) {
    return absl::DataLossError(absl::StrCat(expected_name, " has rank ", rank));
  }
  size_t count = 1;
  for (uint32_t expected : shape) {
    uint32_t dim = 0;
    if (auto s = in.U32(expected_name, &dim); !s.ok()) return s;
    if (dim != expected) {
      return absl::DataLossError(
          absl::StrCat(expected_name, " has a dimension ", dim, ", expected ", expected));
    }
    count *= dim;
  }
  return in.Floats(expected_name, count, dest);
}

}  // namespace

SasRecModel::SasRecModel(SasRecHyper hyper, std::vector<std::string> items, SasRecWeights weights,
                         std::string version, std::string metadata_json)
    : hyper_(hyper),
      items_(std::move(items)),
      weights_(std::move(weights)),
      version_(std::move(version)),
      metadata_json_(std::move(metadata_json)) {
  if (items_.empty()) items_.emplace_back();
  index_.reserve(items_.size());
  for (uint32_t i = 1; i < items_.size(); ++i) index_.emplace(items_[i], i);
}

uint32_t SasRecModel::IndexOf(std::string_view item) const {
  auto it = index_.find(absl::string_view(item.data(), item.size()));
  return it == index_.end() ? 0 : it->second;
}

void SasRecModel::Encode(std::span<const uint32_t> sequence, std::span<float> out) const {
  const uint32_t d = hyper_.dim;
  const uint32_t max_len = hyper_.max_len;
  const uint32_t heads = hyper_.heads;
  const uint32_t dh = d / heads;
  const uint32_t n_items = num_items();
  thread_local EncodeScratch s;
  s.Reserve(max_len, d);

  // The last max_len real items, oldest first. Padding (0) and indices outside the vocabulary
  // are skipped, so they cannot shift the window.
  uint32_t n = 0;
  for (size_t i = sequence.size(); i-- > 0 && n < max_len;) {
    const uint32_t item = sequence[i];
    if (item != 0 && item <= n_items) s.items[max_len - 1 - n++] = item;
  }
  std::fill(out.begin(), out.end(), 0.0f);
  if (n == 0) return;
  const uint32_t* items = s.items.data() + (max_len - n);
  // Left padding: the latest item sits at position max_len-1 and the real items at
  // max_len-n .. max_len-1. Padding rows are zero and masked as keys, so they change nothing
  // and are simply not computed.
  const uint32_t first_pos = max_len - n;
  const float scale = std::sqrt(static_cast<float>(d));
  for (uint32_t j = 0; j < n; ++j) {
    const float* e = weights_.item_emb.data() + static_cast<size_t>(items[j]) * d;
    const float* p = weights_.pos_emb.data() + static_cast<size_t>(first_pos + j) * d;
    float* x = s.x.data() + static_cast<size_t>(j) * d;
    for (uint32_t i = 0; i < d; ++i) x[i] = e[i] * scale + p[i];
  }

  const float inv_sqrt_dh = 1.0f / std::sqrt(static_cast<float>(dh));
  uint32_t rows = n;  // rows of x that are live (the last block only needs the latest one)
  for (uint32_t b = 0; b < hyper_.blocks; ++b) {
    const auto& blk = weights_.blocks[b];
    // Only the latest position feeds the output; in the last block the earlier queries are dead.
    const bool last_block = b + 1 == hyper_.blocks;
    const uint32_t q_first = last_block ? n - 1 : 0;
    const uint32_t q_rows = n - q_first;
    const float* xq = s.x.data() + static_cast<size_t>(q_first) * d;

    LayerNorm(xq, q_rows, d, blk.ln1_g.data(), blk.ln1_b.data(), s.qn.data());
    Linear(s.qn.data(), q_rows, d, blk.in_proj_w.data(), blk.in_proj_b.data(), d, s.q.data());
    const size_t dd = static_cast<size_t>(d) * d;
    Linear(s.x.data(), n, d, blk.in_proj_w.data() + dd, blk.in_proj_b.data() + d, d, s.k.data());
    Linear(s.x.data(), n, d, blk.in_proj_w.data() + 2 * dd, blk.in_proj_b.data() + 2 * d, d,
           s.v.data());

    // Causal attention: query row r (sequence position q_first + r) sees keys 0..q_first + r.
    for (uint32_t r = 0; r < q_rows; ++r) {
      const uint32_t visible = q_first + r + 1;
      float* att = s.attn.data() + static_cast<size_t>(r) * d;
      std::fill(att, att + d, 0.0f);
      for (uint32_t h = 0; h < heads; ++h) {
        const float* qh = s.q.data() + static_cast<size_t>(r) * d + h * dh;
        float max_logit = -std::numeric_limits<float>::infinity();
        for (uint32_t j = 0; j < visible; ++j) {
          const float logit =
              Dot(qh, s.k.data() + static_cast<size_t>(j) * d + h * dh, dh) * inv_sqrt_dh;
          s.weights[j] = logit;
          max_logit = std::max(max_logit, logit);
        }
        float sum = 0;
        for (uint32_t j = 0; j < visible; ++j) {
          s.weights[j] = std::exp(s.weights[j] - max_logit);
          sum += s.weights[j];
        }
        const float inv_sum = 1.0f / sum;
        for (uint32_t j = 0; j < visible; ++j) {
          Axpy(s.weights[j] * inv_sum, s.v.data() + static_cast<size_t>(j) * d + h * dh,
               att + h * dh, dh);
        }
      }
    }
    Linear(s.attn.data(), q_rows, d, blk.out_proj_w.data(), blk.out_proj_b.data(), d,
           s.att_out.data());
    // x = LN1(x) + MHA(...); x = FFN(LN2(x)) + x. The new x has q_rows rows.
    const size_t live = static_cast<size_t>(q_rows) * d;
    for (size_t i = 0; i < live; ++i) s.att_out[i] += s.qn[i];
    LayerNorm(s.att_out.data(), q_rows, d, blk.ln2_g.data(), blk.ln2_b.data(), s.ln2.data());
    Linear(s.ln2.data(), q_rows, d, blk.ff1_w.data(), blk.ff1_b.data(), d, s.hidden.data());
    for (size_t i = 0; i < live; ++i) s.hidden[i] = std::max(s.hidden[i], 0.0f);
    Linear(s.hidden.data(), q_rows, d, blk.ff2_w.data(), blk.ff2_b.data(), d, s.ln2.data());
    for (size_t i = 0; i < live; ++i) s.x[i] = s.ln2[i] + s.att_out[i];
    rows = q_rows;
  }
  LayerNorm(s.x.data() + static_cast<size_t>(rows - 1) * d, 1, d, weights_.lnf_g.data(),
            weights_.lnf_b.data(), out.data());
}

void SasRecModel::ScoreAll(std::span<const uint32_t> sequence, std::span<float> scores) const {
  const uint32_t d = hyper_.dim;
  thread_local std::vector<float> h;
  if (h.size() < d) h.resize(d);
  Encode(sequence, std::span<float>(h.data(), d));
  const uint32_t n = num_items();
  const float* e = weights_.item_emb.data();
  MatVec(e + d, n, d, h.data(), scores.data() + 1);
  scores[0] = -std::numeric_limits<float>::infinity();
}

absl::Status SasRecModel::Save(const std::string& path) const {
  if (weights_.blocks.size() != hyper_.blocks) {
    return absl::InvalidArgumentError(
        absl::StrCat("model has ", weights_.blocks.size(), " blocks, hyper says ", hyper_.blocks));
  }
  std::string payload;
  payload.reserve((weights_.item_emb.size() + weights_.pos_emb.size() +
                   hyper_.blocks * 8 * static_cast<size_t>(hyper_.dim) * hyper_.dim) *
                      sizeof(float) +
                  items_.size() * 16 + metadata_json_.size() + 4096);
  PutString(&payload, kKindSasRec);
  PutU32(&payload, hyper_.max_len);
  PutU32(&payload, hyper_.dim);
  PutU32(&payload, hyper_.blocks);
  PutU32(&payload, hyper_.heads);
  PutString(&payload, version_);
  PutString(&payload, metadata_json_);
  PutU32(&payload, num_items());
  for (uint32_t i = 1; i < items_.size(); ++i) PutString(&payload, items_[i]);
  PutU32(&payload, TensorCount(hyper_));
  absl::Status shape_error;
  ForEachTensor(
      hyper_, num_items(), weights_,
      [&](const std::string& name, std::initializer_list<uint32_t> shape,
          const std::vector<float>& data) {
        size_t expected = 1;
        for (uint32_t dim : shape) expected *= dim;
        if (data.size() != expected && shape_error.ok()) {
          shape_error = absl::InvalidArgumentError(
              absl::StrCat("tensor ", name, " has ", data.size(), " values, expected ", expected));
        }
        PutString(&payload, name);
        PutU32(&payload, static_cast<uint32_t>(shape.size()));
        for (uint32_t dim : shape) PutU32(&payload, dim);
        payload.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
      });
  if (!shape_error.ok()) return shape_error;

  return WriteModelArtifact(path, payload);
}

absl::StatusOr<std::shared_ptr<const SasRecModel>> SasRecModel::Load(const std::string& path) {
  auto payload = ReadModelArtifact(path);
  if (!payload.ok()) return payload.status();
  auto bad = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("model ", path, ": ", what));
  };

  // The checksum matched, so a parse failure below means a writer bug or a foreign file; the
  // checks still run so that nothing is trusted blindly.
  PayloadReader in(*payload);
  std::string kind;
  if (auto s = in.String("model kind", &kind); !s.ok()) return bad(s.message());
  if (kind != kKindSasRec) return bad(absl::StrCat("model kind is '", kind, "', not sasrec"));
  SasRecHyper hyper;
  for (auto [name, field] : {std::pair{"max_len", &hyper.max_len},
                             {"dim", &hyper.dim},
                             {"blocks", &hyper.blocks},
                             {"heads", &hyper.heads}}) {
    if (auto s = in.U32(name, field); !s.ok()) return bad(s.message());
  }
  if (hyper.max_len == 0 || hyper.max_len > 4096 || hyper.dim == 0 || hyper.dim > 4096 ||
      hyper.heads == 0 || hyper.dim % hyper.heads != 0 || hyper.blocks > 64) {
    return bad(absl::StrCat("implausible hyper-parameters max_len=", hyper.max_len,
                            " dim=", hyper.dim, " blocks=", hyper.blocks, " heads=", hyper.heads));
  }
  std::string version, metadata;
  if (auto s = in.String("version", &version); !s.ok()) return bad(s.message());
  if (auto s = in.String("metadata", &metadata); !s.ok()) return bad(s.message());
  uint32_t num_items = 0;
  if (auto s = in.U32("item count", &num_items); !s.ok()) return bad(s.message());
  // Each name takes at least its 4-byte length: refuse counts the payload cannot hold before
  // allocating for them.
  if (num_items > in.remaining() / 4) return bad("item count exceeds the payload");
  std::vector<std::string> items(static_cast<size_t>(num_items) + 1);
  for (uint32_t i = 1; i <= num_items; ++i) {
    if (auto s = in.String("item names", &items[i]); !s.ok()) return bad(s.message());
  }
  SasRecWeights weights;
  weights.blocks.resize(hyper.blocks);
  uint32_t tensor_count = 0;
  if (auto s = in.U32("tensor count", &tensor_count); !s.ok()) return bad(s.message());
  if (tensor_count != TensorCount(hyper)) {
    return bad(absl::StrCat(tensor_count, " tensors, expected ", TensorCount(hyper)));
  }
  absl::Status error;
  ForEachTensor(hyper, num_items, weights,
                [&](const std::string& expected_name, std::initializer_list<uint32_t> shape,
                    std::vector<float>& dest) {
                  if (!error.ok()) return;
                  error = ReadTensor(in, expected_name, shape, &dest);
                });
  if (!error.ok()) return bad(error.message());
  if (in.remaining() != 0) return bad(absl::StrCat(in.remaining(), " unread payload bytes"));
  return std::make_shared<const SasRecModel>(hyper, std::move(items), std::move(weights),
                                             std::move(version), std::move(metadata));
}

}  // namespace persona
