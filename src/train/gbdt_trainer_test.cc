#include "train/gbdt_trainer.h"

#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/time_util.h"
#include "eval/classification_metrics.h"
#include "predict/recency_frequency_baseline.h"

namespace persona {
namespace {

const std::string kTaobaoByUser =
    std::string(PERSONA_DATASETS) + "/taobao/UserBehavior-by-user.csv";

bool Purchased(const LabeledRow& r) { return r.purchased; }
bool Churned(const LabeledRow& r) { return r.churned; }

// The taobao by-user slice (815 users, 9 days) read once for all tests; null when absent.
const EventLog* TaobaoLog() {
  static const std::unique_ptr<EventLog> log = [] {
    if (!std::filesystem::exists(kTaobaoByUser)) return std::unique_ptr<EventLog>();
    auto read = EventLog::FromFile(kTaobaoByUser, InputFormat::kTaobao);
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? std::make_unique<EventLog>(std::move(*read)) : nullptr;
  }();
  return log.get();
}

PointInTimeSet TaobaoSet(std::vector<std::string_view> days, int64_t horizon_ms) {
  PointInTimeOptions o;
  for (std::string_view day : days) o.cutoffs_ms.push_back(*ParseIsoTime(day));
  o.horizon_ms = horizon_ms;
  auto set = BuildPointInTime(*TaobaoLog(), o);
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *std::move(set) : PointInTimeSet{};
}

// `rows` users whose label is Bernoulli(sigmoid(3 * x0 - 1)); x1 is noise, x2 is NaN half the
// time and otherwise equal to x0 (so the trees learn a default branch).
PointInTimeSet PlantedSet(size_t rows, uint64_t seed, bool noise_only = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<double> uniform;
  PointInTimeSet set;
  set.feature_names = {"signal", "noise", "sometimes_missing"};
  for (size_t i = 0; i < rows; ++i) {
    LabeledRow r;
    r.user = absl::StrCat("u", i);
    const float x0 = normal(rng);
    r.features = {x0, normal(rng), uniform(rng) < 0.5 ? NAN : x0};
    const double p = noise_only ? 0.3 : 1 / (1 + std::exp(-(3 * x0 - 1)));
    r.purchased = uniform(rng) < p;
    set.rows.push_back(std::move(r));
  }
  return set;
}

GbdtTrainOptions FastOptions() {
  GbdtTrainOptions o;
  o.rounds = 80;
  o.eta = 0.1;
  o.max_depth = 4;
  o.early_stopping = 10;
  o.threads = 1;  // deterministic and polite on a shared machine
  return o;
}

TEST(GbdtTrainerTest, NativeMarginsEqualXgboostPredictionsOnRealRows) {
  if (TaobaoLog() == nullptr) GTEST_SKIP() << "dataset absent: " << kTaobaoByUser;
  const PointInTimeSet set = TaobaoSet({"2017-11-29", "2017-12-01"}, 2 * kDayMs);
  ASSERT_GT(set.rows.size(), 500u);
  const size_t cols = set.feature_names.size();
  std::vector<float> x, y;
  size_t missing = 0;
  for (const LabeledRow& r : set.rows) {
    x.insert(x.end(), r.features.begin(), r.features.end());
    y.push_back(r.purchased ? 1 : 0);
    for (float v : r.features) missing += std::isnan(v) ? 1 : 0;
  }
  ASSERT_GT(missing, 0u) << "the rows should exercise the default branches";
  const size_t rows = y.size();

  DMatrixHandle dm = nullptr;
  ASSERT_EQ(XGDMatrixCreateFromMat(x.data(), rows, cols, NAN, &dm), 0) << XGBGetLastError();
  const std::unique_ptr<void, int (*)(DMatrixHandle)> free_dm(dm, XGDMatrixFree);
  ASSERT_EQ(XGDMatrixSetFloatInfo(dm, "label", y.data(), rows), 0);
  BoosterHandle booster = nullptr;
  ASSERT_EQ(XGBoosterCreate(&dm, 1, &booster), 0);
  const std::unique_ptr<void, int (*)(BoosterHandle)> free_booster(booster, XGBoosterFree);
  for (auto [k, v] : {std::pair{"objective", "binary:logistic"},
                      {"tree_method", "hist"},
                      {"max_depth", "6"},
                      {"eta", "0.3"},
                      {"nthread", "1"},
                      {"verbosity", "0"}}) {
    ASSERT_EQ(XGBoosterSetParam(booster, k, v), 0);
  }
  for (int i = 0; i < 40; ++i) ASSERT_EQ(XGBoosterUpdateOneIter(booster, i, dm), 0);

  bst_ulong len = 0;
  const char* json = nullptr;
  ASSERT_EQ(XGBoosterSaveModelToBuffer(booster, R"({"format":"json"})", &len, &json), 0);
  auto model = GbdtModel::FromXgboostJson(std::string_view(json, len));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->num_trees(), 40u);

  const std::string array =
      absl::StrCat(R"({"data":[)", reinterpret_cast<uintptr_t>(x.data()), R"(,true],"shape":[)",
                   rows, ",", cols, R"(],"typestr":"<f4","version":3})");
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* margins = nullptr;
  ASSERT_EQ(XGBoosterPredictFromDense(
                booster, array.c_str(),
                R"({"type":1,"training":false,"iteration_begin":0,"iteration_end":0,)"
                R"("strict_shape":false,"cache_id":0,"missing":NaN})",
                nullptr, &shape, &dim, &margins),
            0)
      << XGBGetLastError();
  ASSERT_EQ(shape[0], rows);
  double worst = 0;
  for (size_t r = 0; r < rows; ++r) {
    const double native = model->Margin(std::span<const float>(x.data() + r * cols, cols));
    worst = std::max(worst, std::fabs(native - margins[r]));
  }
  EXPECT_LT(worst, 1e-5) << "largest |native - XGBoost| margin difference over " << rows << " rows";
}

// Trained on earlier cutoffs, evaluated on a later one whose users' futures it never saw: the
// trees must rank users better than the recency + frequency logistic regression.
TEST(GbdtTrainerTest, PropensityBeatsRecencyFrequencyBaselineOnALaterCutoff) {
  if (TaobaoLog() == nullptr) GTEST_SKIP() << "dataset absent: " << kTaobaoByUser;
  const PointInTimeSet train = TaobaoSet({"2017-11-27", "2017-11-28", "2017-11-29"}, 2 * kDayMs);
  const PointInTimeSet test = TaobaoSet({"2017-12-01"}, 2 * kDayMs);
  ASSERT_FALSE(test.rows.empty());
  // Propensity only: churn on this slice has about 20 positives at the test cutoff (its users
  // are active most days), too few for a stable comparison; `persona eval churn` reports it.
  for (const auto& [name, label] : {std::pair{"propensity", &Purchased}}) {
    auto model = TrainGbdt(train, label, name, FastOptions());
    ASSERT_TRUE(model.ok()) << model.status();
    const RecencyFrequencyBaseline baseline = RecencyFrequencyBaseline::Fit(train, label);
    std::vector<double> gbdt_p, base_p;
    std::vector<uint8_t> labels;
    for (const LabeledRow& r : test.rows) {
      gbdt_p.push_back(model->Probability(r.features));
      base_p.push_back(baseline.Probability(r.features));
      labels.push_back(label(r));
    }
    const BinaryMetrics gbdt = EvaluateBinary(gbdt_p, labels);
    const BinaryMetrics base = EvaluateBinary(base_p, labels);
    std::fprintf(stderr,
                 "%s on %zu test rows: GBDT AUC %.4f log-loss %.4f, baseline AUC %.4f "
                 "log-loss %.4f\n",
                 name, labels.size(), gbdt.auc, gbdt.log_loss, base.auc, base.log_loss);
    EXPECT_GT(gbdt.auc, base.auc) << name;
    EXPECT_GT(gbdt.auc, 0.55) << name;
    EXPECT_EQ(model->meta().name, name);
    EXPECT_EQ(model->meta().feature_names, train.feature_names);
    ASSERT_FALSE(model->meta().importance.empty());
    for (size_t i = 1; i < model->meta().importance.size(); ++i) {
      EXPECT_GE(model->meta().importance[i - 1].second, model->meta().importance[i].second);
    }
  }
}

TEST(GbdtTrainerTest, LearnsPlantedSignalAndCalibratesOnHeldOutUsers) {
  const PointInTimeSet set = PlantedSet(4000, 1);
  std::vector<std::pair<int, double>> rounds;
  auto model = TrainGbdt(set, Purchased, "propensity", FastOptions(),
                         [&](int round, double loss) { rounds.emplace_back(round, loss); });
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_FALSE(rounds.empty());
  EXPECT_EQ(rounds.front().first, 1);
  EXPECT_LT(rounds.back().second, rounds.front().second);
  // The planted signal carries nearly all the gain.
  ASSERT_FALSE(model->meta().importance.empty());
  EXPECT_EQ(model->meta().importance.front().first, "signal");
  // A fresh sample from the same distribution: AUC near the Bayes rate of the planted model
  // (about 0.87) and probabilities that match frequencies.
  const PointInTimeSet fresh = PlantedSet(4000, 2);
  std::vector<double> p;
  std::vector<uint8_t> labels;
  for (const LabeledRow& r : fresh.rows) {
    p.push_back(model->Probability(r.features));
    labels.push_back(r.purchased);
  }
  const BinaryMetrics m = EvaluateBinary(p, labels);
  EXPECT_GT(m.auc, 0.83);
  EXPECT_LT(m.ece, 0.05);
  double valid_rows = 0;
  for (const auto& [k, v] : model->meta().metrics) {
    if (k == "valid_rows") valid_rows = v;
  }
  EXPECT_NEAR(valid_rows / 4000, 0.2, 0.03) << "users held out by hash";
}

TEST(GbdtTrainerTest, EarlyStoppingKeepsFewTreesWhenThereIsNothingToLearn) {
  const PointInTimeSet set = PlantedSet(2000, 3, /*noise_only=*/true);
  GbdtTrainOptions o = FastOptions();
  o.rounds = 200;
  int last_round = 0;
  auto model =
      TrainGbdt(set, Purchased, "churn", o, [&](int round, double) { last_round = round; });
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_LT(last_round, 200) << "training should stop early";
  // The kept trees are those up to the best round, which came early_stopping rounds before the
  // last one.
  EXPECT_EQ(static_cast<int>(model->num_trees()), last_round - o.early_stopping);
}

TEST(GbdtTrainerTest, SingleClassLabelIsFailedPrecondition) {
  PointInTimeSet set = PlantedSet(500, 4);
  auto model = TrainGbdt(set, Churned, "churn", FastOptions());  // churned is never set
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  set.rows.resize(3);  // too few users for both sides to hold both classes
  EXPECT_EQ(TrainGbdt(set, Purchased, "propensity", FastOptions()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace persona
