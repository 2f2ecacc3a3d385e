#include "predict/gbdt_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace persona {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Two trees over features (a, b, c) in XGBoost 1.7's JSON layout. Tree 0 splits on a < 0.5
// (missing -> left), then b < 2 on the right; tree 1 splits on c < -1 (missing -> right). Tree 1
// lists its nodes out of pre-order (children before a later-allocated sibling), as XGBoost does
// after pruning, so the importer must relabel them.
std::string TwoTreeJson(const std::string& objective = "binary:logistic",
                        const std::string& split_type1 = "[0,0,0]") {
  return absl::StrCat(R"({"learner":{"attributes":{},"feature_names":["a","b","c"],
  "feature_types":[],"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1",
  "num_trees":"2","size_leaf_vector":"0"},"tree_info":[0,0],"trees":[
  {"base_weights":[0,0,0,0,0],"default_left":[1,0,0,0,0],"id":0,
   "left_children":[1,-1,3,-1,-1],"right_children":[2,-1,4,-1,-1],
   "split_conditions":[5E-1,-1E-1,2E0,2E-1,3E-1],"split_indices":[0,0,1,0,0],
   "split_type":[0,0,0,0,0],"tree_param":{"num_deleted":"0","num_feature":"3","num_nodes":"5",
   "size_leaf_vector":"0"}},
  {"base_weights":[0,0,0],"default_left":[0,0,0],"id":1,
   "left_children":[2,-1,-1],"right_children":[1,-1,-1],
   "split_conditions":[-1E0,4E-2,-5E-2],"split_indices":[2,0,0],
   "split_type":)",
                      split_type1, R"(,"tree_param":{"num_deleted":"0","num_feature":"3",
   "num_nodes":"3","size_leaf_vector":"0"}}]},"name":"gbtree"},
  "learner_model_param":{"base_score":"2E-1","boost_from_average":"1","num_class":"0",
  "num_feature":"3","num_target":"1"},"objective":{"name":")",
                      objective, R"(","reg_loss_param":{"scale_pos_weight":"1"}}},
  "version":[1,7,4]})");
}

// The margin the two trees above define, written out by hand.
double ExpectedMargin(float a, float b, float c) {
  double m = std::log(0.2 / 0.8);
  if (std::isnan(a) || a < 0.5f) {
    m += -0.1;
  } else {
    m += (std::isnan(b) || !(b < 2.0f)) ? 0.3 : 0.2;  // default right
  }
  m += (!std::isnan(c) && c < -1.0f) ? -0.05 : 0.04;  // default right
  return m;
}

GbdtModel TwoTrees() {
  auto m = GbdtModel::FromXgboostJson(TwoTreeJson());
  EXPECT_TRUE(m.ok()) << m.status();
  return *std::move(m);
}

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              absl::StrCat("gbdt_model_test_", ::getpid())) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(std::string_view name) const { return (path_ / std::string(name)).string(); }

 private:
  std::filesystem::path path_;
};

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

TEST(GbdtModelTest, MarginFollowsThresholdsDefaultsAndBaseScore) {
  const GbdtModel m = TwoTrees();
  EXPECT_EQ(m.num_features(), 3u);
  EXPECT_EQ(m.num_trees(), 2u);
  EXPECT_EQ(m.meta().feature_names, (std::vector<std::string>{"a", "b", "c"}));
  const float values[] = {-3.0f, 0.49f, 0.5f, 1.99f, 2.0f, 7.0f, -1.0f, -1.01f, kNaN};
  for (float a : values) {
    for (float b : values) {
      for (float c : values) {
        const float x[] = {a, b, c};
        EXPECT_NEAR(m.Margin(x), ExpectedMargin(a, b, c), 1e-6) << a << " " << b << " " << c;
      }
    }
  }
}

TEST(GbdtModelTest, ThresholdEqualityGoesRightAsInXgboost) {
  const GbdtModel m = TwoTrees();
  const float at_threshold[] = {0.5f, 1.0f, 0.0f};
  const float just_below[] = {std::nextafter(0.5f, 0.0f), 1.0f, 0.0f};
  EXPECT_NEAR(m.Margin(at_threshold) - m.Margin(just_below), 0.2 - (-0.1), 1e-6);
}

TEST(GbdtModelTest, ProbabilityAppliesPlattCalibration) {
  GbdtModel m = TwoTrees();
  const float x[] = {1.0f, 1.0f, 0.0f};
  const double margin = m.Margin(x);
  EXPECT_NEAR(m.Probability(x), 1.0 / (1.0 + std::exp(-margin)), 1e-12);
  m.mutable_meta().platt_a = 0.5;
  m.mutable_meta().platt_b = -1.0;
  EXPECT_NEAR(m.Probability(x), 1.0 / (1.0 + std::exp(-(0.5 * margin - 1.0))), 1e-12);
}

TEST(GbdtModelTest, ImportRefusesWhatItCannotServe) {
  EXPECT_FALSE(GbdtModel::FromXgboostJson("{").ok());
  EXPECT_FALSE(GbdtModel::FromXgboostJson(R"({"learner":{}})").ok());
  auto other = GbdtModel::FromXgboostJson(TwoTreeJson("reg:squarederror"));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("binary:logistic"), std::string_view::npos);
  auto categorical = GbdtModel::FromXgboostJson(TwoTreeJson("binary:logistic", "[1,0,0]"));
  ASSERT_FALSE(categorical.ok());
  EXPECT_NE(categorical.status().message().find("categorical"), std::string_view::npos);
  // A child link back to the root makes a cycle.
  std::string cyclic = absl::StrReplaceAll(
      TwoTreeJson(), {{R"("left_children":[2,-1,-1],"right_children":[1,-1,-1])",
                       R"("left_children":[2,-1,-1],"right_children":[0,-1,-1])"}});
  ASSERT_NE(cyclic, TwoTreeJson());
  EXPECT_FALSE(GbdtModel::FromXgboostJson(cyclic).ok());
  // A split on a feature the model does not have.
  std::string out_of_range = absl::StrReplaceAll(
      TwoTreeJson(), {{R"("split_indices":[2,0,0])", R"("split_indices":[3,0,0])"}});
  EXPECT_FALSE(GbdtModel::FromXgboostJson(out_of_range).ok());
}

TEST(GbdtModelTest, SaveLoadRoundTripKeepsPredictionsAndMeta) {
  TempDir dir;
  GbdtModel m = TwoTrees();
  GbdtMeta& meta = m.mutable_meta();
  meta.name = "churn";
  meta.version = "churn-20171201T000000Z";
  meta.horizon_ms = 2 * 86400000LL;
  meta.importance = {{"a", 0.7}, {"c", 0.3}};
  meta.metrics = {{"valid_auc", 0.81}, {"valid_logloss", 0.42}};
  meta.platt_a = 0.9;
  meta.platt_b = 0.1;
  meta.trained_at_ms = 1512086400000LL;
  const std::string path = dir.File("m.pgbm");
  ASSERT_TRUE(m.Save(path).ok());
  auto loaded = GbdtModel::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const GbdtModel& l = **loaded;
  EXPECT_EQ(l.meta().name, meta.name);
  EXPECT_EQ(l.meta().version, meta.version);
  EXPECT_EQ(l.meta().horizon_ms, meta.horizon_ms);
  EXPECT_EQ(l.meta().feature_names, meta.feature_names);
  EXPECT_EQ(l.meta().importance, meta.importance);
  EXPECT_EQ(l.meta().metrics, meta.metrics);
  EXPECT_EQ(l.meta().trained_at_ms, meta.trained_at_ms);
  const float rows[][3] = {{0, 0, 0}, {1, 1, -2}, {1, 3, kNaN}, {kNaN, kNaN, kNaN}};
  for (const auto& row : rows) {
    EXPECT_EQ(l.Margin(row), m.Margin(row));
    EXPECT_EQ(l.Probability(row), m.Probability(row));
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(GbdtModelTest, CorruptTruncatedAndForeignFilesAreRefused) {
  TempDir dir;
  const std::string path = dir.File("m.pgbm");
  ASSERT_TRUE(TwoTrees().Save(path).ok());
  const std::string good = ReadBytes(path);

  EXPECT_EQ(GbdtModel::Load(dir.File("missing.pgbm")).status().code(), absl::StatusCode::kNotFound);
  for (size_t cut : {size_t{3}, size_t{15}, good.size() / 2, good.size() - 1}) {
    WriteBytes(path, std::string_view(good).substr(0, cut));
    auto s = GbdtModel::Load(path).status();
    EXPECT_FALSE(s.ok()) << "cut at " << cut;
  }
  WriteBytes(path, good + "x");
  EXPECT_NE(GbdtModel::Load(path).status().message().find("trailing garbage"),
            std::string_view::npos);
  for (size_t at : {size_t{20}, good.size() / 2, good.size() - 12}) {
    std::string flipped = good;
    flipped[at] ^= 0x10;
    WriteBytes(path, flipped);
    auto s = GbdtModel::Load(path).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << "flipped byte " << at;
    EXPECT_NE(s.message().find("checksum"), std::string_view::npos) << s;
  }
  std::string foreign = good;
  foreign[0] = 'X';
  WriteBytes(path, foreign);
  EXPECT_EQ(GbdtModel::Load(path).status().code(), absl::StatusCode::kInvalidArgument);
  WriteBytes(path, good);
  EXPECT_TRUE(GbdtModel::Load(path).ok());
}

}  // namespace
}  // namespace persona
