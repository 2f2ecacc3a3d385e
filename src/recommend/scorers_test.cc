// ItemCfScorer and SasRecScorer: the adapters that put the serving models under the offline
// next-item protocol (eval/sequence_eval.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "eval/sequence_eval.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "recommend/item_cf_scorer.h"
#include "recommend/sasrec_scorer.h"

namespace persona {
namespace {

SequenceDataset Parse(std::string_view text) {
  auto data = ParseSequenceText(text, "test");
  EXPECT_TRUE(data.ok()) << data.status();
  return *std::move(data);
}

// Users walk a chain: item i is followed by i+1 (wrapping after 50). The next item is fully
// predictable from the last one, and popularity knows nothing about it.
SequenceDataset Chains() {
  std::string text;
  std::mt19937 rng(7);
  for (int u = 0; u < 300; ++u) {
    text += "u" + std::to_string(u);
    uint32_t item = 1 + rng() % 50;
    const int length = 5 + static_cast<int>(rng() % 4);
    for (int i = 0; i < length; ++i) {
      text += " " + std::to_string(item);
      item = item % 50 + 1;
    }
    text += "\n";
  }
  return Parse(text);
}

std::vector<float> ScoresOf(const SequenceScorer& scorer, const SequenceDataset& data,
                            std::vector<uint32_t> history) {
  std::vector<float> scores(data.num_items + 1, 0.0f);
  scorer.Score(history, scores);
  return scores;
}

TEST(ItemCfScorerTest, ScoresMatchItemCfRecommend) {
  SequenceDataset data = Chains();
  ItemCfScorer scorer(data, /*include_valid=*/true);
  // The same CF built by hand from train + valid, fed in order.
  ItemCf cf;
  for (const auto& sequence : data.sequences) {
    std::vector<uint32_t> known(sequence.begin(), sequence.end() - 1);
    for (size_t t = 0; t < known.size(); ++t) {
      std::vector<uint32_t> previous;
      for (size_t d = 1; d <= t && d <= 5; ++d) previous.push_back(known[t - d]);
      cf.Add(known[t], previous);
    }
  }
  const std::vector<uint32_t> history = {3, 9, 4, 5};  // oldest first
  const std::vector<uint32_t> recent_first(history.rbegin(), history.rend());
  auto recommended = cf.Recommend(recent_first, 100);
  ASSERT_GT(recommended.size(), 3u);
  std::vector<float> scores = ScoresOf(scorer, data, history);
  for (const auto& r : recommended) {
    EXPECT_NEAR(scores[r.item], r.score, 1e-5f) << "item " << r.item;
  }
  EXPECT_EQ(recommended.front().item, 6u);  // the chain continues from 5
}

TEST(ItemCfScorerTest, ValidationItemsAreLearnedOnlyForTheTestProtocol) {
  // Train [7, 8], valid 1, test 2: the pair (8, 1) exists only through the validation item.
  SequenceDataset data = Parse("a 7 8 1 2\nb 3 4 5\n");
  ItemCfScorer with_valid(data, /*include_valid=*/true);
  ItemCfScorer without_valid(data, /*include_valid=*/false);
  EXPECT_GT(ScoresOf(with_valid, data, {7, 8})[1], 1e-3f);
  EXPECT_LT(ScoresOf(without_valid, data, {7, 8})[1], 1e-8f);
  // The test item is never learned.
  EXPECT_LT(ScoresOf(with_valid, data, {1})[2], 1e-8f);
}

TEST(ItemCfScorerTest, PopularityOrdersOnlyItemsWithoutSignal) {
  // Training parts [1, 2, 1], [1, 5, 6], [1, 2]: 6 co-occurred with 5 and 1 only; 2 was seen
  // twice and 3 never (it is a validation item).
  SequenceDataset data = Parse("a 1 2 1 3 4\nb 1 5 6 9 9\nc 1 2 9 9\n");
  ItemCfScorer scorer(data, /*include_valid=*/false);
  std::vector<float> scores = ScoresOf(scorer, data, {6});
  EXPECT_GT(scores[5], 1e-3f);      // CF signal...
  EXPECT_GT(scores[5], scores[1]);  // ...the nearer co-occurrence weighs more
  EXPECT_GT(scores[1], 1e-3f);
  EXPECT_GT(scores[2], scores[3]);  // no signal for either: training counts 2 vs 0 decide
  EXPECT_LT(scores[2], 1e-8f);
  EXPECT_EQ(scorer.name(), "itemcf");
}

TEST(ItemCfScorerTest, BeatsPopularityOnPlantedChains) {
  SequenceDataset data = Chains();
  SequenceEvalOptions options;
  options.ks = {1, 10};
  options.negatives = 20;
  SequenceEvalResult cf = EvaluateSequences(data, ItemCfScorer(data, true), options);
  SequenceEvalResult pop = EvaluateSequences(data, PopularityScorer(data), options);
  EXPECT_GT(cf.SampledAt(1)->hr, 0.95);
  EXPECT_GT(cf.FullAt(1)->hr, 0.95);
  EXPECT_LT(pop.SampledAt(1)->hr, 0.5);
}

// A SASRec model with random weights over items "i1".."iN".
std::shared_ptr<const SasRecModel> RandomModel(uint32_t num_items) {
  const SasRecHyper h{.max_len = 4, .dim = 8, .blocks = 1, .heads = 2};
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  auto random = [&](size_t n, float offset = 0.0f) {
    std::vector<float> v(n);
    for (float& x : v) x = offset + normal(rng);
    return v;
  };
  const size_t d = h.dim;
  SasRecWeights w;
  w.item_emb = random((num_items + 1) * d);
  std::fill(w.item_emb.begin(), w.item_emb.begin() + d, 0.0f);
  w.pos_emb = random(h.max_len * d);
  SasRecWeights::Block b;
  b.ln1_g = random(d, 1.0f);
  b.ln1_b = random(d);
  b.in_proj_w = random(3 * d * d);
  b.in_proj_b = random(3 * d);
  b.out_proj_w = random(d * d);
  b.out_proj_b = random(d);
  b.ln2_g = random(d, 1.0f);
  b.ln2_b = random(d);
  b.ff1_w = random(d * d);
  b.ff1_b = random(d);
  b.ff2_w = random(d * d);
  b.ff2_b = random(d);
  w.blocks.push_back(std::move(b));
  w.lnf_g = random(d, 1.0f);
  w.lnf_b = random(d);
  std::vector<std::string> items = {""};
  for (uint32_t i = 1; i <= num_items; ++i) items.push_back("i" + std::to_string(i));
  return std::make_shared<SasRecModel>(h, std::move(items), std::move(w), "test", "{}");
}

TEST(SasRecScorerTest, MapsDatasetItemsToTheModelVocabularyByName) {
  auto model = RandomModel(6);
  // Dataset numbering differs from the model's: i5 is dataset item 1, i2 is 2, ...; "x" is
  // unknown to the model.
  SequenceDataset data = Parse("u i5 i2 x i3\nv i1 i6\n");
  ASSERT_THAT(data.item_names, ::testing::ElementsAre("", "i5", "i2", "x", "i3", "i1", "i6"));
  SasRecScorer scorer(model, data, "sasrec-random");
  EXPECT_EQ(scorer.name(), "sasrec-random");
  EXPECT_EQ(scorer.unknown_items(), 1u);

  std::vector<float> scores = ScoresOf(scorer, data, {1, 3, 2});  // i5, x, i2
  std::vector<float> expected(model->num_items() + 1);
  model->ScoreAll(std::vector<uint32_t>{5, 2}, expected);  // the unknown item is skipped
  EXPECT_EQ(scores[1], expected[5]);
  EXPECT_EQ(scores[2], expected[2]);
  EXPECT_EQ(scores[4], expected[3]);
  EXPECT_EQ(scores[5], expected[1]);
  EXPECT_EQ(scores[6], expected[6]);
  EXPECT_EQ(scores[3], -std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace persona
