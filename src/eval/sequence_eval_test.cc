#include "eval/sequence_eval.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// scores[i] = i, and every history it was asked about.
class IndexScorer : public SequenceScorer {
 public:
  std::string name() const override { return "index"; }
  void Score(std::span<const uint32_t> history, std::span<float> scores) const override {
    for (size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<float>(i);
    std::lock_guard<std::mutex> lock(mu_);
    histories_.emplace_back(history.begin(), history.end());
  }
  std::vector<std::vector<uint32_t>> histories() const {
    std::lock_guard<std::mutex> lock(mu_);
    return histories_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::vector<uint32_t>> histories_;
};

// 10 items. u1: train [1, 2], valid 3, test 4. u2: train [8], valid 9, test 10. u3 has 2 items,
// so no targets.
SequenceDataset Toy() {
  auto data = ParseSequenceText("u1 1 2 3 4\nu2 8 9 10\nu3 1 2\n", "toy");
  EXPECT_TRUE(data.ok());
  data->num_items = 10;  // items 5..7 never occur but are candidates
  data->item_names.resize(11);
  return *std::move(data);
}

SequenceEvalOptions ToyOptions() {
  SequenceEvalOptions options;
  options.ks = {1, 5, 10};
  options.negatives = 3;
  options.threads = 1;
  return options;
}

TEST(SequenceEvalTest, TestProtocolOnHandComputedToy) {
  SequenceDataset data = Toy();
  IndexScorer scorer;
  SequenceEvalResult r = EvaluateSequences(data, scorer, ToyOptions());
  EXPECT_EQ(r.model, "index");
  EXPECT_EQ(r.users, 2u);
  // The model sees train + valid; each user is scored once, not once per seed.
  EXPECT_THAT(scorer.histories(), UnorderedElementsAre(ElementsAre(1, 2, 3), ElementsAre(8, 9)));
  // u1's target 4 is below every item it can be sampled against (5..10): rank 3 of 3 negatives.
  // u2's target 10 is the top item: rank 0.
  const MetricsAtK* s1 = r.SampledAt(1);
  const MetricsAtK* s5 = r.SampledAt(5);
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s5, nullptr);
  EXPECT_DOUBLE_EQ(s1->hr, 0.5);
  EXPECT_DOUBLE_EQ(s1->ndcg, 0.5);
  EXPECT_DOUBLE_EQ(s5->hr, 1.0);
  EXPECT_DOUBLE_EQ(s5->ndcg, (1.0 / std::log2(5.0) + 1.0) / 2);
  EXPECT_EQ(s5->hr_std, 0.0);
  EXPECT_EQ(s5->ndcg_std, 0.0);
  // Full ranking: u1's target 4 is beaten by 5..10 (1..3 are its own items): rank 6.
  const MetricsAtK* f5 = r.FullAt(5);
  const MetricsAtK* f10 = r.FullAt(10);
  ASSERT_NE(f5, nullptr);
  ASSERT_NE(f10, nullptr);
  EXPECT_DOUBLE_EQ(f5->hr, 0.5);
  EXPECT_DOUBLE_EQ(f5->ndcg, 0.5);
  EXPECT_DOUBLE_EQ(f10->hr, 1.0);
  EXPECT_DOUBLE_EQ(f10->ndcg, (1.0 / std::log2(8.0) + 1.0) / 2);
  EXPECT_EQ(r.SampledAt(20), nullptr);
}

TEST(SequenceEvalTest, ValidationProtocolHidesTheTestItemEverywhere) {
  SequenceDataset data = Toy();
  IndexScorer scorer;
  SequenceEvalOptions options = ToyOptions();
  options.validation = true;
  SequenceEvalResult r = EvaluateSequences(data, scorer, options);
  EXPECT_THAT(scorer.histories(), UnorderedElementsAre(ElementsAre(1, 2), ElementsAre(8)));
  // u2's target is 9; its test item 10 scores higher but is the user's own item, so it is never
  // a negative and not a full-ranking competitor: u2 ranks first in both protocols.
  EXPECT_DOUBLE_EQ(r.SampledAt(1)->hr, 0.5);
  EXPECT_DOUBLE_EQ(r.FullAt(1)->hr, 0.5);
  // u1's target 3 is beaten by all of 5..10 (4 is its own): full rank 6.
  EXPECT_DOUBLE_EQ(r.FullAt(5)->hr, 0.5);
  EXPECT_DOUBLE_EQ(r.FullAt(10)->hr, 1.0);
}

TEST(SequenceEvalTest, FewerFreeItemsThanNegativesRanksAgainstAllOfThem) {
  SequenceDataset data = Toy();
  IndexScorer scorer;
  SequenceEvalOptions options = ToyOptions();
  options.negatives = 100;
  options.ks = {5, 7};
  SequenceEvalResult r = EvaluateSequences(data, scorer, options);
  // u1 has 6 free items, all above its target: rank 6, without repeats.
  EXPECT_DOUBLE_EQ(r.SampledAt(5)->hr, 0.5);
  EXPECT_DOUBLE_EQ(r.SampledAt(7)->hr, 1.0);
}

// A scorer that knows the data: every item of the user's own sequence except the target scores
// above the target, everything else below. Any own item that leaks into the negatives or the
// full-ranking candidates pushes the target down from rank 0.
class OwnItemsFirstScorer : public SequenceScorer {
 public:
  OwnItemsFirstScorer(const SequenceDataset& data, bool validation)
      : data_(data), validation_(validation) {}
  std::string name() const override { return "own-items-first"; }
  void Score(std::span<const uint32_t> history, std::span<float> scores) const override {
    std::fill(scores.begin(), scores.end(), 0.0f);
    for (const auto& sequence : data_.sequences) {
      if (sequence.size() < 3) continue;
      const size_t seen = sequence.size() - (validation_ ? 2 : 1);
      if (history.size() != seen || !std::equal(history.begin(), history.end(), sequence.begin()))
        continue;
      for (uint32_t item : sequence) scores[item] = 1.0f;
      scores[sequence[seen]] = 0.5f;
      return;
    }
    ADD_FAILURE() << "history of no user";
  }

 private:
  const SequenceDataset& data_;
  bool validation_;
};

// 200 users over 40 items, sequences of 3..30 distinct items, so both the rejection sampler
// (short sequences) and the shuffled free list (long ones) are exercised.
SequenceDataset Synthetic() {
  SequenceDataset data;
  data.num_items = 40;
  data.item_names.resize(41);
  uint64_t x = 12345;
  for (uint32_t u = 0; u < 200; ++u) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const uint32_t length = 3 + static_cast<uint32_t>((x >> 33) % 28);
    std::vector<uint32_t> sequence;
    uint32_t item = 1 + static_cast<uint32_t>((x >> 40) % 40);
    for (uint32_t i = 0; i < length; ++i) {
      sequence.push_back(item);
      item = item % 40 + 1 + (u % 3 == 0 && i % 2 == 0);  // mostly consecutive ids, some gaps
      if (item > 40) item = 1;
    }
    data.user_names.push_back("u" + std::to_string(u));
    data.sequences.push_back(std::move(sequence));
  }
  return data;
}

TEST(SequenceEvalTest, NegativesAndFullRankingNeverIncludeTheUsersOwnItems) {
  SequenceDataset data = Synthetic();
  for (bool validation : {false, true}) {
    OwnItemsFirstScorer scorer(data, validation);
    SequenceEvalOptions options;
    options.ks = {1};
    options.negatives = 10;
    options.validation = validation;
    SequenceEvalResult r = EvaluateSequences(data, scorer, options);
    EXPECT_EQ(r.users, 200u);
    EXPECT_EQ(r.SampledAt(1)->hr, 1.0) << "validation=" << validation;
    EXPECT_EQ(r.FullAt(1)->hr, 1.0) << "validation=" << validation;
  }
}

// Pseudo-random fixed scores, so ranks depend on which negatives are drawn.
class HashScorer : public SequenceScorer {
 public:
  std::string name() const override { return "hash"; }
  void Score(std::span<const uint32_t> history, std::span<float> scores) const override {
    uint64_t h = history.size() * 0x9e3779b97f4a7c15ULL;
    for (uint32_t item : history) h = (h ^ item) * 0xbf58476d1ce4e5b9ULL;
    for (size_t i = 0; i < scores.size(); ++i) {
      uint64_t v = (h ^ i) * 0x94d049bb133111ebULL;
      scores[i] = static_cast<float>((v >> 40) % 1000);
    }
  }
};

void ExpectSameNumbers(const SequenceEvalResult& a, const SequenceEvalResult& b) {
  ASSERT_EQ(a.sampled.size(), b.sampled.size());
  ASSERT_EQ(a.full.size(), b.full.size());
  EXPECT_EQ(a.users, b.users);
  for (size_t i = 0; i < a.sampled.size(); ++i) {
    EXPECT_EQ(a.sampled[i].hr, b.sampled[i].hr);
    EXPECT_EQ(a.sampled[i].ndcg, b.sampled[i].ndcg);
    EXPECT_EQ(a.sampled[i].hr_std, b.sampled[i].hr_std);
    EXPECT_EQ(a.sampled[i].ndcg_std, b.sampled[i].ndcg_std);
  }
  for (size_t i = 0; i < a.full.size(); ++i) {
    EXPECT_EQ(a.full[i].hr, b.full[i].hr);
    EXPECT_EQ(a.full[i].ndcg, b.full[i].ndcg);
  }
}

TEST(SequenceEvalTest, ResultsDoNotDependOnTheThreadCount) {
  SequenceDataset data = Synthetic();
  HashScorer scorer;
  SequenceEvalOptions options;
  options.negatives = 10;
  options.threads = 1;
  SequenceEvalResult one = EvaluateSequences(data, scorer, options);
  options.threads = 3;
  SequenceEvalResult three = EvaluateSequences(data, scorer, options);
  ExpectSameNumbers(one, three);
  // The seeds matter: with random scores, different negatives give different hit rates.
  EXPECT_GT(one.SampledAt(5)->hr_std, 0.0);
}

TEST(SequenceEvalTest, AUsersNegativesDependOnlyOnSeedAndUser) {
  SequenceDataset data = Synthetic();
  HashScorer scorer;
  SequenceEvalOptions options;
  options.negatives = 10;
  options.seeds = {7};
  SequenceEvalResult all = EvaluateSequences(data, scorer, options);
  // The same users evaluated as a different set of seeds (7 listed twice) give the same mean.
  options.seeds = {7, 7};
  SequenceEvalResult twice = EvaluateSequences(data, scorer, options);
  EXPECT_EQ(all.SampledAt(10)->hr, twice.SampledAt(10)->hr);
  EXPECT_EQ(twice.SampledAt(10)->hr_std, 0.0);
  options.seeds = {8};
  SequenceEvalResult other = EvaluateSequences(data, scorer, options);
  EXPECT_NE(all.SampledAt(10)->hr, other.SampledAt(10)->hr);
}

TEST(SequenceEvalTest, MaxUsersIsADeterministicSubsample) {
  SequenceDataset data = Synthetic();
  HashScorer scorer;
  SequenceEvalOptions options;
  options.negatives = 10;
  options.max_users = 50;
  SequenceEvalResult a = EvaluateSequences(data, scorer, options);
  options.threads = 1;
  SequenceEvalResult b = EvaluateSequences(data, scorer, options);
  EXPECT_EQ(a.users, 50u);
  ExpectSameNumbers(a, b);
}

TEST(SequenceEvalTest, ProgressEndsWithAllUsersDone) {
  SequenceDataset data = Synthetic();
  HashScorer scorer;
  SequenceEvalOptions options;
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  options.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  EvaluateSequences(data, scorer, options);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t{200}, uint64_t{200}));
}

TEST(SequenceEvalTest, ZeroNegativesMeansFullRankingOnly) {
  SequenceDataset data = Toy();
  IndexScorer scorer;
  SequenceEvalOptions options = ToyOptions();
  options.negatives = 0;
  SequenceEvalResult r = EvaluateSequences(data, scorer, options);
  EXPECT_TRUE(r.sampled.empty());  // not a trivial HR of 1 against no candidates
  EXPECT_DOUBLE_EQ(r.FullAt(5)->hr, 0.5);
}

TEST(SequenceEvalTest, NoFullRankingAndNoEligibleUsers) {
  SequenceDataset data = *ParseSequenceText("a 1 2\nb 2 3\n", "short");
  HashScorer scorer;
  SequenceEvalOptions options;
  options.full_ranking = false;
  SequenceEvalResult r = EvaluateSequences(data, scorer, options);
  EXPECT_EQ(r.users, 0u);
  EXPECT_TRUE(r.full.empty());
  ASSERT_NE(r.SampledAt(10), nullptr);
  EXPECT_EQ(r.SampledAt(10)->hr, 0.0);
}

TEST(PopularityScorerTest, CountsTrainingPartsOnly) {
  // Training parts: u1 [1, 2, 2], u2 [2]; valid/test items (3, 4, 5, 1) are not counted.
  SequenceDataset data = *ParseSequenceText("u1 1 2 2 3 4\nu2 2 5 1\n", "pop");
  PopularityScorer scorer(data);
  std::vector<float> scores(data.num_items + 1);
  scorer.Score({}, scores);
  EXPECT_THAT(std::vector<float>(scores.begin() + 1, scores.end()), ElementsAre(1, 3, 0, 0, 0));
  EXPECT_EQ(scorer.name(), "popularity");
}

// `persona eval` as a user runs it.
struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunPersona(const std::string& args) {
  CommandResult r;
  FILE* pipe = popen((std::string(PERSONA_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `persona eval` end to end on the toy file: popularity over the training parts counts items 1
// and 2 twice and 8 once. u1's target 4 (count 0) is beaten by 8 and tied by 5, 6, 7, 9, 10:
// rank 6. u2's target 10 is beaten by 1 and 2 and tied by 3..7: rank 7.
TEST(EvalCommandTest, PrintsTheFullRankingTableAndWritesJson) {
  const auto dir = std::filesystem::path(::testing::TempDir());
  const auto input = dir / "eval_command_toy.txt";
  const auto json = dir / "eval_command_toy.json";
  std::ofstream(input) << "u1 1 2 3 4\nu2 8 9 10\nu3 1 2\n";
  CommandResult r =
      RunPersona("eval --input " + input.string() +
                 " --negatives 0 --k 5,10 --baselines popularity --json " + json.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("| model | HR@5 | NDCG@5 | HR@10 | NDCG@10 |"));
  // NDCG@10 = (1/log2(8) + 1/log2(9)) / 2.
  EXPECT_THAT(r.output, HasSubstr("| popularity | 0.0000 | 0.0000 | 1.0000 | 0.3244 |"));
  std::stringstream written;
  written << std::ifstream(json).rdbuf();
  EXPECT_THAT(written.str(),
              HasSubstr("\"full\":[{\"k\":5,\"hr\":0,\"ndcg\":0},{\"k\":10,\"hr\":1,"));
  std::filesystem::remove(input);
  std::filesystem::remove(json);
}

TEST(EvalCommandTest, BadFileExitsTwoNamingTheLine) {
  const auto input = std::filesystem::path(::testing::TempDir()) / "eval_command_bad.txt";
  std::ofstream(input) << "1 2 3\n2 4\nlonely\n";
  CommandResult r = RunPersona("eval --input " + input.string());
  std::filesystem::remove(input);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("line 3: user 'lonely' has no items"));
}

}  // namespace
}  // namespace persona
