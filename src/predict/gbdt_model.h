// A gradient-boosted tree ensemble (binary:logistic) as Persona serves it: the propensity model
// (will the user buy within the horizon?) and the churn model (will the user be silent for the
// whole horizon?). Training happens in src/train with XGBoost; serving does not link XGBoost: the
// trees are imported from XGBoost's JSON model dump into flat node arrays and walked here, which
// costs about a microsecond per row for 100 depth-6 trees and keeps the server free of
// XGBoost's threads and global state.
//
// Semantics follow XGBoost exactly: at an internal node the row goes left when
// x[feature] < threshold (float comparison), right otherwise, and down the node's default branch
// when x[feature] is NaN (missing). The margin is logit(base_score) + the sum of the leaves
// reached. The probability is Platt-calibrated: sigmoid(platt_a * margin + platt_b), with a, b
// fitted on held-out predictions (a = 1, b = 0 is XGBoost's own sigmoid).
//
// Artifact file format: see docs/model_format.md ("Gradient-boosted trees").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace persona {

// What a served model needs besides its trees, and what it reports about itself.
struct GbdtMeta {
  std::string name;     // "propensity" or "churn"
  std::string version;  // e.g. "propensity-20240501T120000Z"
  int64_t horizon_ms = 0;
  // Input order: Margin's x[i] is the feature named feature_names[i]. A server checks these
  // against ProfileVectorNames() before serving, so a model built for another feature set is
  // refused instead of silently fed the wrong columns.
  std::vector<std::string> feature_names;
  std::vector<std::pair<std::string, double>> importance;  // share of total gain, sorted desc
  std::vector<std::pair<std::string, double>> metrics;     // e.g. valid_auc, valid_logloss
  double platt_a = 1;
  double platt_b = 0;
  int64_t trained_at_ms = 0;
};

class GbdtModel {
 public:
  // One node of the flat array. Internal nodes: go to `left` when x[feature] < value, to `right`
  // otherwise, to the default child when x[feature] is NaN. Leaves: feature == kLeaf and value is
  // the leaf's contribution to the margin. Child indices are absolute in nodes() and always
  // greater than the parent's, so every walk ends.
  struct Node {
    static constexpr uint32_t kLeaf = 0xffffffffu;
    uint32_t feature = kLeaf;
    float value = 0;
    uint32_t left = 0;
    uint32_t right = 0;
    bool default_left = false;
  };

  GbdtModel() = default;

  // Imports XGBoosterSaveModelToBuffer's {"format":"json"} output of a binary:logistic gbtree
  // model with numeric splits. InvalidArgument naming what is wrong for anything else (another
  // objective or booster, categorical splits, inconsistent arrays, child links that do not point
  // forward). meta().feature_names gets the model's names when it has them, else f0..f{n-1}.
  static absl::StatusOr<GbdtModel> FromXgboostJson(std::string_view json);

  // Reads an artifact written by Save; NotFound when the file cannot be opened, InvalidArgument
  // for a file that is not a Persona model or a format version this build does not read,
  // DataLoss naming what is wrong for a truncated or corrupt one.
  static absl::StatusOr<std::shared_ptr<const GbdtModel>> Load(const std::string& path);
  // Writes the artifact atomically (temp file, fsync, rename, fsync of the directory): a reader
  // sees the old file or the new one, never half of one.
  absl::Status Save(const std::string& path) const;

  // The raw score: logit(base_score) + sum of the leaves `x` reaches. NaN takes each node's
  // default branch; features beyond x.size() count as NaN.
  double Margin(std::span<const float> x) const;
  // sigmoid(platt_a * Margin(x) + platt_b): the calibrated probability of the positive class.
  double Probability(std::span<const float> x) const;
  // The calibrated probability of a raw margin (what Probability applies to Margin).
  double Calibrate(double margin) const;

  const GbdtMeta& meta() const { return meta_; }
  GbdtMeta& mutable_meta() { return meta_; }
  uint32_t num_features() const { return num_features_; }
  size_t num_trees() const { return roots_.size(); }
  double base_margin() const { return base_margin_; }
  std::span<const Node> nodes() const { return nodes_; }

 private:
  // The walk's own layout, derived from nodes_ by BuildWalk. Leaves become self-loops (threshold
  // -inf, both children themselves), so a tree can be stepped a fixed number of times without a
  // leaf test; Margin steps kWalkLanes trees in lockstep, which overlaps their dependent loads
  // and replaces unpredictable branches by conditional moves.
  struct WalkNode {
    uint32_t feature_and_default;  // feature | (default_left << 31)
    float threshold;
    uint32_t left;
    uint32_t right;
  };
  static constexpr size_t kWalkLanes = 8;
  void BuildWalk();

  GbdtMeta meta_;
  std::vector<WalkNode> walk_;
  std::vector<float> leaf_value_;     // per node; 0 for internal nodes
  std::vector<uint32_t> lane_depth_;  // per group of kWalkLanes trees: its deepest leaf
  uint32_t num_features_ = 0;
  double base_margin_ = 0;
  std::vector<uint32_t> roots_;  // index of each tree's root in nodes_
  std::vector<Node> nodes_;
};

}  // namespace persona
