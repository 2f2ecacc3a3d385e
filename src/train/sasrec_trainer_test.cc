#include "train/sasrec_trainer.h"

#include <gtest/gtest.h>

#include <random>

#include "eval/sequence_eval.h"
#include "train/sasrec_net.h"

namespace persona {
namespace {

// Users walk the item ring i -> i+1 (mod num_items) from a random start; with probability
// `noise` a step jumps to a random item instead. The next item is thus predictable from the
// last one, which popularity cannot see (every item is about equally popular).
SequenceDataset PlantedSuccessorWalks(uint32_t users, uint32_t num_items, uint32_t length,
                                      double noise, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint32_t> item(1, num_items);
  std::bernoulli_distribution jump(noise);
  SequenceDataset data;
  data.num_items = num_items;
  data.item_names.push_back("");
  for (uint32_t i = 1; i <= num_items; ++i) data.item_names.push_back("item" + std::to_string(i));
  for (uint32_t u = 0; u < users; ++u) {
    data.user_names.push_back("user" + std::to_string(u));
    std::vector<uint32_t> seq = {item(rng)};
    while (seq.size() < length) seq.push_back(jump(rng) ? item(rng) : seq.back() % num_items + 1);
    data.sequences.push_back(std::move(seq));
  }
  return data;
}

class SasRecModelScorer : public SequenceScorer {
 public:
  explicit SasRecModelScorer(const SasRecModel& m) : m_(m) {}
  std::string name() const override { return "sasrec"; }
  void Score(std::span<const uint32_t> h, std::span<float> s) const override { m_.ScoreAll(h, s); }

 private:
  const SasRecModel& m_;
};

SasRecTrainOptions SmallOptions() {
  SasRecTrainOptions o;
  o.hyper = {.max_len = 12, .dim = 32, .blocks = 1, .heads = 1};
  o.dropout = 0.1f;
  o.learning_rate = 5e-3f;
  o.batch_size = 32;
  o.epochs = 8;
  o.patience = 3;
  o.threads = 1;  // a spinning second OpenMP thread makes the test slow on a busy machine
  o.seed = 7;
  o.valid_users = 0;
  return o;
}

TEST(SasRecTrainerTest, LearnsPlantedSuccessorPatternFarAbovePopularity) {
  const SequenceDataset data = PlantedSuccessorWalks(200, 50, 12, 0.1, 1);
  std::vector<SasRecEpoch> seen;
  uint64_t progress_calls = 0;
  auto result = TrainSasRec(
      data, SmallOptions(), [&](uint64_t, uint64_t, double) { ++progress_calls; },
      [&](const SasRecEpoch& e) { seen.push_back(e); });
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_FALSE(result->epochs.empty());
  EXPECT_EQ(seen.size(), result->epochs.size());
  EXPECT_GT(progress_calls, 0u);
  EXPECT_GE(result->best_epoch, 1u);
  EXPECT_LT(result->epochs.back().loss, result->epochs.front().loss);

  SequenceEvalOptions eval;
  eval.ks = {10};
  eval.seeds = {1};
  eval.full_ranking = false;
  eval.validation = true;
  const double popularity = EvaluateSequences(data, PopularityScorer(data), eval).SampledAt(10)->hr;
  const double best_valid = [&] {
    for (const auto& e : result->epochs)
      if (e.epoch == result->best_epoch) return e.valid_hr10;
    return 0.0;
  }();
  EXPECT_GT(best_valid, 0.85) << "popularity " << popularity;
  EXPECT_GT(best_valid, popularity + 0.4);
  // The returned model is the best epoch's: it reproduces that epoch's validation number.
  EXPECT_NEAR(EvaluateSequences(data, SasRecModelScorer(*result->model), eval).SampledAt(10)->hr,
              best_valid, 1e-9);
  // ... and it generalises to the held-out test targets.
  eval.validation = false;
  EXPECT_GT(EvaluateSequences(data, SasRecModelScorer(*result->model), eval).SampledAt(10)->hr,
            0.8);
  EXPECT_NE(result->model->metadata_json().find("\"epochs\":["), std::string::npos);
  EXPECT_EQ(result->model->version().rfind("sasrec-", 0), 0u);
  EXPECT_EQ(result->model->ItemAt(7), "item7");
}

// The serving forward pass (plain C++) and the training one (torch) must agree on the same
// weights, or a model that validates well in training would serve garbage.
TEST(SasRecTrainerTest, ExportedModelScoresEqualTorchEvalOutput) {
  const SasRecHyper hyper{.max_len = 8, .dim = 16, .blocks = 2, .heads = 2};
  const uint32_t num_items = 30;
  torch::manual_seed(3);
  SasRecNet net(hyper, num_items, 0.3);
  {
    // Perturb everything (LayerNorm gains and biases too) so that no mapping can hide behind
    // an initial value of 1 or 0.
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.2);
    net->named_parameters()["item_emb.weight"][0].zero_();
  }
  net->eval();
  const std::vector<std::vector<uint32_t>> sequences = {
      {5},
      {1, 2},
      {3, 9, 27, 4, 10},
      {1, 2, 3, 4, 5, 6, 7, 8},
      {30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20}};
  const torch::Tensor torch_scores = net->ScoreLast(LeftPad(sequences, hyper.max_len));
  const SasRecModel model(hyper, std::vector<std::string>(num_items + 1), net->ExportWeights(), "v",
                          "{}");
  std::vector<float> scores(num_items + 1);
  for (size_t r = 0; r < sequences.size(); ++r) {
    model.ScoreAll(sequences[r], scores);
    double max_diff = 0;
    for (uint32_t i = 1; i <= num_items; ++i) {
      max_diff = std::max<double>(max_diff, std::abs(scores[i] - torch_scores[r][i].item<float>()));
    }
    EXPECT_LT(max_diff, 1e-4) << "sequence " << r;
  }
}

TEST(SasRecTrainerTest, SameSeedGivesSameModel) {
  const SequenceDataset data = PlantedSuccessorWalks(60, 20, 8, 0.2, 2);
  SasRecTrainOptions o = SmallOptions();
  o.epochs = 2;
  o.patience = 0;
  auto a = TrainSasRec(data, o);
  auto b = TrainSasRec(data, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->epochs[1].loss, b->epochs[1].loss);
  EXPECT_EQ(a->model->weights().item_emb, b->model->weights().item_emb);
  o.seed = 8;
  auto c = TrainSasRec(data, o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->model->weights().item_emb, c->model->weights().item_emb);
}

TEST(SasRecTrainerTest, SampledNegativesAlsoLearnThePattern) {
  const SequenceDataset data = PlantedSuccessorWalks(200, 50, 12, 0.1, 3);
  SasRecTrainOptions o = SmallOptions();
  o.sampled_negatives = 16;
  auto result = TrainSasRec(data, o);
  ASSERT_TRUE(result.ok()) << result.status();
  double best = 0;
  for (const auto& e : result->epochs) best = std::max(best, e.valid_hr10);
  EXPECT_GT(best, 0.8);
  EXPECT_NE(result->model->metadata_json().find("sampled_softmax"), std::string::npos);
}

TEST(SasRecTrainerTest, NothingToTrainIsFailedPrecondition) {
  SequenceDataset data = PlantedSuccessorWalks(10, 5, 3, 0.0, 4);  // 3 items: no training pair
  auto result = TrainSasRec(data, SmallOptions());
  EXPECT_TRUE(absl::IsFailedPrecondition(result.status())) << result.status();
}

TEST(SasRecTrainerTest, BadHyperParametersAreInvalidArgument) {
  const SequenceDataset data = PlantedSuccessorWalks(10, 5, 6, 0.0, 5);
  SasRecTrainOptions o = SmallOptions();
  o.hyper.heads = 3;  // 32 % 3 != 0
  EXPECT_TRUE(absl::IsInvalidArgument(TrainSasRec(data, o).status()));
}

TEST(SasRecTrainerTest, PatienceStopsAfterEpochsWithoutImprovement) {
  // Pure noise: nothing to learn, so validation stops improving early.
  const SequenceDataset data = PlantedSuccessorWalks(100, 40, 8, 1.0, 6);
  SasRecTrainOptions o = SmallOptions();
  o.epochs = 60;
  o.patience = 2;
  auto result = TrainSasRec(data, o);
  ASSERT_TRUE(result.ok());
  ASSERT_LT(result->epochs.size(), 60u);
  EXPECT_EQ(result->epochs.size(), result->best_epoch + 2u);
  EXPECT_FALSE(result->epochs.back().best);
}

}  // namespace
}  // namespace persona
