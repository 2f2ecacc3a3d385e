#include "predict/next_category.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/time_util.h"

namespace persona {
namespace {

constexpr int64_t kStart = 1700000000000;

CategorySequence Sequence(std::initializer_list<std::pair<int64_t, std::string>> events) {
  CategorySequence s;
  s.events.assign(events.begin(), events.end());
  return s;
}

std::vector<std::string> Names(const std::vector<std::pair<std::string, double>>& top) {
  std::vector<std::string> out;
  for (const auto& [name, score] : top) out.push_back(name);
  return out;
}

// Users who always go A -> B -> C within a session, and some D -> E noise.
std::vector<CategorySequence> ChainSequences() {
  std::vector<CategorySequence> out;
  for (int u = 0; u < 30; ++u) {
    const int64_t t = kStart + u * kMinuteMs;
    out.push_back(Sequence({{t, "A"}, {t + 1000, "A"}, {t + 2000, "B"}, {t + 3000, "C"}}));
    if (u % 3 == 0) out.push_back(Sequence({{t, "D"}, {t + 1000, "E"}}));
  }
  return out;
}

NextCategoryTrainOptions Folded() {
  NextCategoryTrainOptions options;
  options.count_repeats = false;
  options.session_gap_ms = 30 * kMinuteMs;
  return options;
}

TEST(NextCategoryTest, LearnsPlantedTransitionsFromTheLastDistinctCategory) {
  const auto seqs = ChainSequences();
  auto model = NextCategoryModel::Train(seqs, {}, Folded());
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<std::string_view> after_a = {"A"};
  const std::vector<std::string_view> after_ab = {"A", "B"};
  const auto top_a = model->PredictWithAlpha(after_a, {}, 3, 1.0);
  ASSERT_FALSE(top_a.empty());
  EXPECT_EQ(top_a[0].first, "B");
  EXPECT_EQ(model->PredictWithAlpha(after_ab, {}, 1, 1.0)[0].first, "C");
  // Scores are probabilities of a smoothed distribution: positive, at most 1, best first.
  EXPECT_GT(top_a[0].second, 0.5);
  EXPECT_LE(top_a[0].second, 1.0);
  for (size_t i = 1; i < top_a.size(); ++i) EXPECT_LE(top_a[i].second, top_a[i - 1].second);
  // Within-session repeats are not transitions: A never follows A here.
  for (const auto& [name, score] : top_a) {
    if (name == "A") {
      EXPECT_LT(score, 0.2);
    }
  }
}

TEST(NextCategoryTest, ReturningAfterASessionGapIsASelfTransition) {
  std::vector<CategorySequence> seqs;
  for (int u = 0; u < 20; ++u) {
    const int64_t t = kStart + u * kDayMs;
    seqs.push_back(Sequence({{t, "shoes"},
                             {t + 3 * kHourMs, "shoes"},
                             {t + 9 * kHourMs, "shoes"},
                             {t + 10 * kHourMs, "socks"}}));
  }
  auto model = NextCategoryModel::Train(seqs, {}, Folded());
  ASSERT_TRUE(model.ok());
  const std::vector<std::string_view> recent = {"shoes"};
  EXPECT_EQ(model->PredictWithAlpha(recent, {}, 1, 1.0)[0].first, "shoes");
}

TEST(NextCategoryTest, CountingRepeatsLearnsTheChanceOfStayingInACategory) {
  std::vector<CategorySequence> seqs;
  for (int u = 0; u < 20; ++u) {
    const int64_t t = kStart + u * kDayMs;
    seqs.push_back(Sequence({{t, "A"}, {t + 1000, "A"}, {t + 2000, "A"}, {t + 3000, "B"}}));
  }
  auto model = NextCategoryModel::Train(seqs, {}, {});  // count_repeats by default
  ASSERT_TRUE(model.ok());
  const std::vector<std::string_view> recent = {"A"};
  const auto top = model->PredictWithAlpha(recent, {}, 2, 1.0);
  ASSERT_EQ(Names(top), (std::vector<std::string>{"A", "B"}));
  EXPECT_GT(top[0].second, 0.55);  // 40 stays against 20 moves, smoothed
}

TEST(NextCategoryTest, InterestsOnlyRanksByDirectInterestShare) {
  auto model = NextCategoryModel::Train(ChainSequences(), {}, {});
  ASSERT_TRUE(model.ok());
  std::vector<ScoredInterest> interests(2);
  interests[0].key = "X";
  interests[0].score = 1;
  interests[1].key = "Y";
  interests[1].score = 3;
  const auto top = model->PredictWithAlpha({}, interests, 2, 0.0);
  EXPECT_EQ(Names(top), (std::vector<std::string>{"Y", "X"}));
  EXPECT_DOUBLE_EQ(top[0].second, 0.75);
  // A user with no history at all still gets k answers: the global distribution.
  EXPECT_EQ(model->Predict({}, {}, 3).size(), 3u);
}

// Validation where the answer is the user's strongest interest and transitions say nothing,
// and the opposite: alpha must follow whichever signal is informative.
TEST(NextCategoryTest, AlphaIsPickedOnValidationTowardsTheInformativeSignal) {
  const auto seqs = ChainSequences();
  std::vector<NextCategoryExample> interest_driven, transition_driven;
  for (int u = 0; u < 40; ++u) {
    NextCategoryExample e;
    e.recent = {"A"};
    const std::string favourite = "F" + std::to_string(u % 7);
    e.interests = {{favourite, 5.0}, {"G", 1.0}};
    e.target = favourite;
    interest_driven.push_back(e);
    e.target = "B";
    e.interests = {{favourite, 5.0}, {"G", 4.0}, {"H", 3.0}};
    transition_driven.push_back(e);
  }
  auto by_interest = NextCategoryModel::Train(seqs, interest_driven, Folded());
  auto by_transition = NextCategoryModel::Train(seqs, transition_driven, Folded());
  ASSERT_TRUE(by_interest.ok() && by_transition.ok());
  // Any alpha that ranks the right answer first is optimal; the informative signal must weigh
  // more in the model tuned on it.
  EXPECT_LT(by_interest->params().alpha, 0.5);
  EXPECT_GT(by_transition->params().alpha, by_interest->params().alpha);
  const auto rows = EvaluateNextCategory(*by_transition, transition_driven);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_DOUBLE_EQ(rows[0].accuracy_at1, 1.0);  // the blend
  EXPECT_DOUBLE_EQ(rows[1].accuracy_at1, 1.0);  // transitions only
  EXPECT_DOUBLE_EQ(rows[2].accuracy_at3, 0.0);  // interests only never says B
  EXPECT_TRUE(rows[3].baseline);
}

TEST(NextCategoryTest, BaselineCountsTheMostFrequentCategories) {
  auto model = NextCategoryModel::Train(ChainSequences(), {}, {});
  ASSERT_TRUE(model.ok());
  NextCategoryExample hit1, hit3, miss;
  hit1.most_frequent = {"A", "B", "C"};
  hit1.target = "A";
  hit3 = hit1;
  hit3.target = "C";
  miss = hit1;
  miss.target = "Z";
  const std::vector<NextCategoryExample> test = {hit1, hit3, miss, miss};
  const auto rows = EvaluateNextCategory(*model, test);
  EXPECT_DOUBLE_EQ(rows[3].accuracy_at1, 0.25);
  EXPECT_DOUBLE_EQ(rows[3].accuracy_at3, 0.5);
}

class NextCategoryFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("next_category_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(NextCategoryFileTest, SaveLoadRoundTripPredictsTheSame) {
  std::vector<NextCategoryExample> valid(1);
  valid[0].recent = {"A"};
  valid[0].target = "B";
  auto model = NextCategoryModel::Train(ChainSequences(), valid, {});
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(model->Save(Path("m.pnc")).ok());
  auto loaded = NextCategoryModel::Load(Path("m.pnc"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->version(), model->version());
  EXPECT_EQ((*loaded)->metrics(), model->metrics());
  EXPECT_EQ((*loaded)->params().alpha, model->params().alpha);
  std::vector<ScoredInterest> interests(1);
  interests[0].key = "E";
  interests[0].score = 2;
  for (const std::vector<std::string_view>& recent :
       {std::vector<std::string_view>{"A"}, {"D"}, {"A", "B"}, {"unknown"}, {}}) {
    EXPECT_EQ((*loaded)->Predict(recent, interests, 5), model->Predict(recent, interests, 5));
  }
}

TEST_F(NextCategoryFileTest, CorruptTruncatedAndForeignFilesAreRefused) {
  auto model = NextCategoryModel::Train(ChainSequences(), {}, {});
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(model->Save(Path("m.pnc")).ok());
  std::ifstream in(Path("m.pnc"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(Path(name), std::ios::binary) << content;
    return Path(name);
  };
  std::string flipped = bytes;
  flipped[bytes.size() - 12] ^= 1;
  auto s = NextCategoryModel::Load(write("flipped", flipped)).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  s = NextCategoryModel::Load(write("short", bytes.substr(0, 30))).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  s = NextCategoryModel::Load(write("foreign", std::string(64, 'x'))).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

TEST(NextCategoryTest, RefusesDataWithoutCategories) {
  std::vector<CategorySequence> empty(3);
  EXPECT_TRUE(absl::IsFailedPrecondition(NextCategoryModel::Train(empty, {}, {}).status()));
}

// A taobao-format file (user,item,category,behavior,seconds): the example at the cutoff sees only
// events up to it, its target is the first event after it.
TEST_F(NextCategoryFileTest, ExamplesSeeOnlyEventsUpToTheCutoff) {
  const int64_t t0 = 1511658000;  // seconds
  std::ofstream(Path("events.csv")) << "1,100,7,pv," << t0 << "\n"
                                    << "1,101,7,pv," << t0 + 60 << "\n"
                                    << "1,200,8,cart," << t0 + 120 << "\n"
                                    << "2,100,7,pv," << t0 + 130 << "\n"
                                    << "1,300,9,pv," << t0 + 7200 << "\n"
                                    << "1,400,5,buy," << t0 + 7300 << "\n"
                                    << "3,300,9,pv," << t0 + 7400 << "\n";
  auto log = EventLog::FromFile(Path("events.csv"), InputFormat::kTaobao);
  ASSERT_TRUE(log.ok()) << log.status();
  const int64_t cutoff = (t0 + 3600) * 1000;
  auto data = BuildNextCategoryData(*log, cutoff, (t0 + 9000) * 1000, ProfileConfig{});
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->examples.size(), 1u);  // user 2 has nothing after, user 3 nothing before
  const NextCategoryExample& e = data->examples[0];
  EXPECT_EQ(e.user, "1");
  EXPECT_EQ(e.target, "9");
  EXPECT_EQ(e.recent, (std::vector<std::string>{"7", "8"}));
  EXPECT_EQ(e.most_frequent, (std::vector<std::string>{"7", "8"}));
  for (const auto& [category, score] : e.interests) {
    EXPECT_TRUE(category == "7" || category == "8") << category;
  }
  ASSERT_EQ(data->sequences.size(), 2u);  // users 1 and 2, events up to the cutoff only
  size_t events = 0;
  for (const auto& s : data->sequences) events += s.events.size();
  EXPECT_EQ(events, 4u);
}

}  // namespace
}  // namespace persona
