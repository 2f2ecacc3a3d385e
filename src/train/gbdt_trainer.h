// Trains a gradient-boosted propensity or churn model with XGBoost (C API, binary:logistic, hist
// trees) on a point-in-time set and returns it as a servable GbdtModel (predict/gbdt_model.h).
//
// Users, not rows, are split into training and validation by a hash of the user id, so a user
// seen at several cutoffs never sits on both sides (their rows are strongly correlated, and a
// split by row would reward memorising users). Boosting stops when the validation log-loss has
// not improved for `early_stopping` rounds and keeps the best round's trees. A Platt scaling
// (sigmoid(a * margin + b)) is then fitted on the validation margins, so the served probability
// is calibrated on data the trees did not see.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "absl/status/statusor.h"
#include "predict/gbdt_model.h"
#include "predict/point_in_time.h"

namespace persona {

struct GbdtTrainOptions {
  int rounds = 300;  // upper bound on boosting rounds (trees)
  int max_depth = 6;
  double eta = 0.05;
  double subsample = 0.8;       // rows sampled per tree
  double colsample = 0.8;       // features sampled per tree
  int early_stopping = 30;      // rounds without validation log-loss gain before stopping
  double valid_fraction = 0.2;  // share of users held out for early stopping and calibration
  int threads = 0;              // XGBoost threads; 0 = XGBoost's default (all cores)
  uint64_t seed = 1;
};

// Trains on `set` with target `label(row)` (e.g. row.purchased) and returns the model with
// meta() filled in: name, version ("<name>-YYYYMMDDTHHMMSSZ" of the training time), features,
// gain importance, Platt parameters and metrics (train/valid rows and positive rates, trees kept,
// validation AUC and log-loss before and after calibration). The set does not record its
// horizon, so the caller sets meta().horizon_ms. `progress(round, valid_logloss)`
// is called after every round when given. FailedPrecondition when the training or validation
// side is empty or has a single class (nothing to learn or to stop on); Internal on an XGBoost
// error, with XGBoost's message.
absl::StatusOr<GbdtModel> TrainGbdt(
    const PointInTimeSet& set, const std::function<bool(const LabeledRow&)>& label,
    std::string_view name, const GbdtTrainOptions& options,
    const std::function<void(int round, double valid_logloss)>& progress = nullptr);

}  // namespace persona
