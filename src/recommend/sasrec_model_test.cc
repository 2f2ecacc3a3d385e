#include "recommend/sasrec_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "store/scoped_temp_dir.h"

namespace persona {
namespace {

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float scale = 0.3f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A model with random weights (LayerNorm gains around 1) over items "i1".."iN".
std::shared_ptr<SasRecModel> RandomModel(SasRecHyper h, uint32_t num_items, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t d = h.dim;
  SasRecWeights w;
  w.item_emb = RandomVector((num_items + 1) * d, rng);
  std::fill(w.item_emb.begin(), w.item_emb.begin() + d, 0.0f);
  w.pos_emb = RandomVector(h.max_len * d, rng);
  auto gain = [&] {
    auto g = RandomVector(d, rng, 0.1f);
    for (float& x : g) x += 1.0f;
    return g;
  };
  for (uint32_t b = 0; b < h.blocks; ++b) {
    SasRecWeights::Block blk;
    blk.ln1_g = gain();
    blk.ln1_b = RandomVector(d, rng, 0.1f);
    blk.in_proj_w = RandomVector(3 * d * d, rng);
    blk.in_proj_b = RandomVector(3 * d, rng, 0.1f);
    blk.out_proj_w = RandomVector(d * d, rng);
    blk.out_proj_b = RandomVector(d, rng, 0.1f);
    blk.ln2_g = gain();
    blk.ln2_b = RandomVector(d, rng, 0.1f);
    blk.ff1_w = RandomVector(d * d, rng);
    blk.ff1_b = RandomVector(d, rng, 0.1f);
    blk.ff2_w = RandomVector(d * d, rng);
    blk.ff2_b = RandomVector(d, rng, 0.1f);
    w.blocks.push_back(std::move(blk));
  }
  w.lnf_g = gain();
  w.lnf_b = RandomVector(d, rng, 0.1f);
  std::vector<std::string> items = {""};
  for (uint32_t i = 1; i <= num_items; ++i) items.push_back("i" + std::to_string(i));
  return std::make_shared<SasRecModel>(h, std::move(items), std::move(w), "sasrec-test",
                                       R"({"note":"random"})");
}

// ---------------------------------------------------------------------------------------------
// The forward pass exactly as the header describes it, in doubles and without any of the
// serving shortcuts: the sequence is left-padded to max_len, every position is computed, padding
// keys are masked and padding rows are zeroed after each block.

using Mat = std::vector<std::vector<double>>;

Mat LinearRef(const Mat& x, const float* w, const float* b, size_t out, size_t in) {
  Mat y(x.size(), std::vector<double>(out));
  for (size_t r = 0; r < x.size(); ++r)
    for (size_t o = 0; o < out; ++o) {
      double s = b[o];
      for (size_t i = 0; i < in; ++i) s += static_cast<double>(w[o * in + i]) * x[r][i];
      y[r][o] = s;
    }
  return y;
}

Mat LayerNormRef(const Mat& x, const std::vector<float>& g, const std::vector<float>& b) {
  Mat y = x;
  for (auto& row : y) {
    double mean = 0, var = 0;
    for (double v : row) mean += v;
    mean /= row.size();
    for (double v : row) var += (v - mean) * (v - mean);
    var /= row.size();
    for (size_t i = 0; i < row.size(); ++i) {
      row[i] = (row[i] - mean) / std::sqrt(var + 1e-8) * g[i] + b[i];
    }
  }
  return y;
}

std::vector<double> ReferenceEncode(const SasRecModel& m, const std::vector<uint32_t>& seq) {
  const auto& h = m.hyper();
  const size_t L = h.max_len, d = h.dim, heads = h.heads, dh = d / heads;
  const auto& w = m.weights();
  std::vector<uint32_t> real;
  for (uint32_t item : seq)
    if (item != 0) real.push_back(item);
  std::vector<uint32_t> padded(L, 0);
  for (size_t j = 0; j < std::min(L, real.size()); ++j) {
    padded[L - 1 - j] = real[real.size() - 1 - j];
  }
  if (padded[L - 1] == 0) return std::vector<double>(d, 0.0);
  Mat x(L, std::vector<double>(d, 0.0));
  for (size_t t = 0; t < L; ++t) {
    if (padded[t] == 0) continue;
    for (size_t i = 0; i < d; ++i) {
      x[t][i] =
          w.item_emb[padded[t] * d + i] * std::sqrt(static_cast<double>(d)) + w.pos_emb[t * d + i];
    }
  }
  for (const auto& blk : w.blocks) {
    Mat qn = LayerNormRef(x, blk.ln1_g, blk.ln1_b);
    Mat q = LinearRef(qn, blk.in_proj_w.data(), blk.in_proj_b.data(), d, d);
    Mat k = LinearRef(x, blk.in_proj_w.data() + d * d, blk.in_proj_b.data() + d, d, d);
    Mat v = LinearRef(x, blk.in_proj_w.data() + 2 * d * d, blk.in_proj_b.data() + 2 * d, d, d);
    Mat att(L, std::vector<double>(d, 0.0));
    for (size_t t = 0; t < L; ++t) {
      for (size_t hh = 0; hh < heads; ++hh) {
        std::vector<double> logits;
        std::vector<size_t> keys;
        for (size_t s = 0; s <= t; ++s) {
          if (padded[s] == 0) continue;  // padding keys are masked
          double dot = 0;
          for (size_t i = 0; i < dh; ++i) dot += q[t][hh * dh + i] * k[s][hh * dh + i];
          logits.push_back(dot / std::sqrt(static_cast<double>(dh)));
          keys.push_back(s);
        }
        if (keys.empty()) continue;  // a padding query: its row is zeroed below anyway
        double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
        for (double& l : logits) sum += (l = std::exp(l - mx));
        for (size_t j = 0; j < keys.size(); ++j)
          for (size_t i = 0; i < dh; ++i)
            att[t][hh * dh + i] += logits[j] / sum * v[keys[j]][hh * dh + i];
      }
    }
    Mat a = LinearRef(att, blk.out_proj_w.data(), blk.out_proj_b.data(), d, d);
    for (size_t t = 0; t < L; ++t)
      for (size_t i = 0; i < d; ++i) x[t][i] = qn[t][i] + a[t][i];
    Mat f =
        LinearRef(LayerNormRef(x, blk.ln2_g, blk.ln2_b), blk.ff1_w.data(), blk.ff1_b.data(), d, d);
    for (auto& row : f)
      for (double& val : row) val = std::max(val, 0.0);
    f = LinearRef(f, blk.ff2_w.data(), blk.ff2_b.data(), d, d);
    for (size_t t = 0; t < L; ++t)
      for (size_t i = 0; i < d; ++i) x[t][i] = padded[t] == 0 ? 0.0 : f[t][i] + x[t][i];
  }
  return LayerNormRef({x[L - 1]}, w.lnf_g, w.lnf_b)[0];
}

std::vector<float> Encode(const SasRecModel& m, const std::vector<uint32_t>& seq) {
  std::vector<float> out(m.hyper().dim);
  m.Encode(seq, out);
  return out;
}

std::vector<float> Scores(const SasRecModel& m, const std::vector<uint32_t>& seq) {
  std::vector<float> scores(m.num_items() + 1);
  m.ScoreAll(seq, scores);
  return scores;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

const SasRecHyper kSmall{.max_len = 6, .dim = 8, .blocks = 2, .heads = 2};

TEST(SasRecModelTest, MatchesReferenceForwardWithPaddingMasks) {
  auto m = RandomModel(kSmall, 20, 1);
  for (const std::vector<uint32_t>& seq : std::vector<std::vector<uint32_t>>{
           {5}, {3, 7}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5, 6}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 20}}) {
    auto got = Encode(*m, seq);
    auto want = ReferenceEncode(*m, seq);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-4) << "sequence length " << seq.size() << " dim " << i;
    }
  }
}

TEST(SasRecModelTest, ThreeBlocksOneHeadMatchReference) {
  auto m = RandomModel({.max_len = 4, .dim = 16, .blocks = 3, .heads = 1}, 10, 2);
  const std::vector<uint32_t> seq = {2, 4, 6};
  auto got = Encode(*m, seq);
  auto want = ReferenceEncode(*m, seq);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4);
}

// One block, identity projections, zero FFN, unit LayerNorms: for a single item e at the last
// position p, x0 = e*sqrt(d) + p, attention over one key returns V = x0, so
// h = LN(LN(x0) + x0). Computed here with nothing but arithmetic.
TEST(SasRecModelTest, OneBlockIdentityModelMatchesHandComputation) {
  const uint32_t d = 4;
  SasRecHyper h{.max_len = 3, .dim = d, .blocks = 1, .heads = 1};
  SasRecWeights w;
  w.item_emb = {0, 0, 0, 0, /*item 1*/ 1, 0, 0, 0, /*item 2*/ 0, 1, 2, 3};
  w.pos_emb = {0, 0, 0, 0, 0, 0, 0, 0, /*last position*/ 0.5, 0, 0, 0};
  SasRecWeights::Block blk;
  blk.ln1_g = blk.ln2_g = {1, 1, 1, 1};
  blk.ln1_b = blk.ln2_b = {0, 0, 0, 0};
  blk.in_proj_w.assign(3 * d * d, 0.0f);
  for (uint32_t r = 0; r < 3 * d; ++r) blk.in_proj_w[r * d + r % d] = 1.0f;
  blk.in_proj_b.assign(3 * d, 0.0f);
  blk.out_proj_w.assign(d * d, 0.0f);
  for (uint32_t r = 0; r < d; ++r) blk.out_proj_w[r * d + r] = 1.0f;
  blk.out_proj_b.assign(d, 0.0f);
  blk.ff1_w.assign(d * d, 0.0f);
  blk.ff1_b.assign(d, 0.0f);
  blk.ff2_w.assign(d * d, 0.0f);
  blk.ff2_b.assign(d, 0.0f);
  w.blocks.push_back(blk);
  w.lnf_g = {1, 1, 1, 1};
  w.lnf_b = {0, 0, 0, 0};
  SasRecModel m(h, {"", "a", "b"}, w, "v", "{}");

  // item 2: x0 = 2*(0,1,2,3) + (0.5,0,0,0) = (0.5, 2, 4, 6); mean 3.125,
  // var = (6.890625 + 1.265625 + 0.765625 + 8.265625) / 4 = 4.296875.
  const double x0[4] = {0.5, 2, 4, 6};
  const double sd = std::sqrt(4.296875 + 1e-8);
  double x1[4];
  for (int i = 0; i < 4; ++i) x1[i] = (x0[i] - 3.125) / sd + x0[i];
  // LN(x1): the LN(x0) part has mean 0, so mean(x1) = 3.125 again.
  double var = 0;
  for (double v : x1) var += (v - 3.125) * (v - 3.125) / 4;
  auto got = Encode(m, {2});
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(got[i], (x1[i] - 3.125) / std::sqrt(var + 1e-8), 1e-5) << i;
  }
  auto scores = Scores(m, {2});
  EXPECT_NEAR(scores[1], got[0], 1e-6);                            // <h, (1,0,0,0)>
  EXPECT_NEAR(scores[2], got[1] + 2 * got[2] + 3 * got[3], 1e-5);  // <h, (0,1,2,3)>
}

TEST(SasRecModelTest, ScoreAllIsEncodeDotItemEmbedding) {
  auto m = RandomModel({.max_len = 10, .dim = 24, .blocks = 2, .heads = 3}, 50, 3);
  const std::vector<uint32_t> seq = {4, 8, 15, 16, 23, 42};
  auto h = Encode(*m, seq);
  auto scores = Scores(*m, seq);
  EXPECT_TRUE(std::isinf(scores[0]) && scores[0] < 0);
  const auto& e = m->weights().item_emb;
  for (uint32_t i = 1; i <= m->num_items(); ++i) {
    double dot = 0;
    for (uint32_t k = 0; k < 24; ++k) dot += static_cast<double>(h[k]) * e[i * 24 + k];
    EXPECT_NEAR(scores[i], dot, 1e-4) << i;
  }
}

TEST(SasRecModelTest, PaddingZerosAnywhereDoNotChangeScores) {
  auto m = RandomModel(kSmall, 20, 4);
  auto plain = Scores(*m, {3, 1, 4, 1, 5});
  EXPECT_EQ(Scores(*m, {0, 0, 0, 0, 0, 0, 0, 3, 1, 4, 1, 5}), plain);
  EXPECT_EQ(Scores(*m, {3, 0, 1, 4, 0, 0, 1, 5, 0}), plain);
  // Indices outside the vocabulary are skipped like padding.
  EXPECT_EQ(Scores(*m, {3, 1, 99, 4, 1, 5}), plain);
}

TEST(SasRecModelTest, OnlyTheLastMaxLenItemsMatter) {
  auto m = RandomModel(kSmall, 20, 5);  // max_len 6
  auto a = Scores(*m, {1, 2, 10, 11, 12, 13, 14, 15});
  auto b = Scores(*m, {7, 7, 7, 9, 10, 11, 12, 13, 14, 15});
  EXPECT_EQ(a, b);
  // ... and every one of those does: changing the oldest kept item changes the scores.
  auto c = Scores(*m, {1, 2, 19, 11, 12, 13, 14, 15});
  EXPECT_NE(a, c);
}

TEST(SasRecModelTest, EmptySequenceEncodesToZeros) {
  auto m = RandomModel(kSmall, 5, 6);
  for (float v : Encode(*m, {})) EXPECT_EQ(v, 0.0f);
  for (float v : Encode(*m, {0, 0})) EXPECT_EQ(v, 0.0f);
  auto s = Scores(*m, {});
  for (uint32_t i = 1; i <= 5; ++i) EXPECT_EQ(s[i], 0.0f);
}

TEST(SasRecModelTest, IndexOfMapsNamesAndUnknownIsZero) {
  auto m = RandomModel(kSmall, 5, 7);
  EXPECT_EQ(m->IndexOf("i3"), 3u);
  EXPECT_EQ(m->ItemAt(3), "i3");
  EXPECT_EQ(m->IndexOf("nope"), 0u);
  EXPECT_EQ(m->IndexOf(""), 0u);
}

TEST(SasRecModelTest, SaveLoadRoundTripGivesIdenticalScores) {
  ScopedTempDir dir("sasrec_model");
  const std::string path = dir.path() + "/m.psm";
  auto m = RandomModel(kSmall, 30, 8);
  ASSERT_TRUE(m->Save(path).ok());
  auto loaded = SasRecModel::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const SasRecModel& l = **loaded;
  EXPECT_EQ(l.version(), "sasrec-test");
  EXPECT_EQ(l.metadata_json(), R"({"note":"random"})");
  EXPECT_EQ(l.num_items(), 30u);
  EXPECT_EQ(l.IndexOf("i17"), 17u);
  EXPECT_EQ(l.hyper().heads, 2u);
  for (const auto& seq : std::vector<std::vector<uint32_t>>{{1}, {5, 9, 30, 2}, {}}) {
    EXPECT_EQ(Scores(l, seq), Scores(*m, seq));
  }
  // No temp file is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(SasRecModelTest, TruncatedFileIsDataLossNotCrash) {
  ScopedTempDir dir("sasrec_model");
  const std::string path = dir.path() + "/m.psm";
  ASSERT_TRUE(RandomModel(kSmall, 12, 9)->Save(path).ok());
  const std::string bytes = ReadFile(path);
  // Every cut in the first 200 bytes (header, names, shapes) and a stride over the rest.
  for (size_t len = 0; len < bytes.size(); len += len < 200 ? 1 : 37) {
    WriteFile(path, bytes.substr(0, len));
    auto r = SasRecModel::Load(path);
    ASSERT_FALSE(r.ok()) << "cut at " << len;
    EXPECT_TRUE(absl::IsDataLoss(r.status()) || absl::IsInvalidArgument(r.status())) << r.status();
  }
  WriteFile(path, bytes.substr(0, bytes.size() - 1));
  auto r = SasRecModel::Load(path);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("truncated"), absl::string_view::npos) << r.status();
}

TEST(SasRecModelTest, FlippedByteFailsTheChecksum) {
  ScopedTempDir dir("sasrec_model");
  const std::string path = dir.path() + "/m.psm";
  ASSERT_TRUE(RandomModel(kSmall, 12, 10)->Save(path).ok());
  const std::string bytes = ReadFile(path);
  for (size_t pos : {size_t{25}, bytes.size() / 2, bytes.size() - 9, bytes.size() - 1}) {
    std::string bad = bytes;
    bad[pos] ^= 0x10;
    WriteFile(path, bad);
    auto r = SasRecModel::Load(path);
    ASSERT_FALSE(r.ok()) << pos;
    EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
    EXPECT_NE(r.status().message().find("checksum"), absl::string_view::npos) << r.status();
  }
  WriteFile(path, bytes + "x");
  EXPECT_TRUE(absl::IsDataLoss(SasRecModel::Load(path).status()));
}

TEST(SasRecModelTest, ForeignOrNewerFilesAreRejectedByName) {
  ScopedTempDir dir("sasrec_model");
  const std::string path = dir.path() + "/m.psm";
  WriteFile(path, "{\"not\": \"a model\"}\n");
  auto r = SasRecModel::Load(path);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("not a Persona model"), absl::string_view::npos);

  ASSERT_TRUE(RandomModel(kSmall, 3, 11)->Save(path).ok());
  std::string bytes = ReadFile(path);
  bytes[8] = 2;  // format version 2
  WriteFile(path, bytes);
  r = SasRecModel::Load(path);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("format version 2"), absl::string_view::npos);

  EXPECT_TRUE(absl::IsNotFound(SasRecModel::Load(dir.path() + "/missing.psm").status()));
}

}  // namespace
}  // namespace persona
