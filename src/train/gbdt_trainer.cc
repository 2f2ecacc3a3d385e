#include "train/gbdt_trainer.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "eval/classification_metrics.h"

namespace persona {
namespace {

absl::Status XgbError(absl::string_view call) {
  return absl::InternalError(absl::StrCat("XGBoost ", call, ": ", XGBGetLastError()));
}

#define PERSONA_XGB(call)                    \
  do {                                       \
    if ((call) != 0) return XgbError(#call); \
  } while (false)

// Owners of XGBoost's C handles.
class DMatrix {
 public:
  DMatrix() = default;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  ~DMatrix() {
    if (h_ != nullptr) XGDMatrixFree(h_);
  }
  DMatrixHandle* out() { return &h_; }
  DMatrixHandle get() const { return h_; }

 private:
  DMatrixHandle h_ = nullptr;
};

class Booster {
 public:
  Booster() = default;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster() {
    if (h_ != nullptr) XGBoosterFree(h_);
  }
  BoosterHandle* out() { return &h_; }
  BoosterHandle get() const { return h_; }

 private:
  BoosterHandle h_ = nullptr;
};

// One side of the user split as XGBoost wants it: a dense row-major matrix (NaN = missing) and
// 0/1 labels.
struct Side {
  std::vector<float> x;
  std::vector<float> y;
  size_t rows = 0;
  size_t positives = 0;
};

absl::Status MakeDMatrix(const Side& side, size_t cols, const std::vector<std::string>& names,
                         DMatrix* m) {
  PERSONA_XGB(XGDMatrixCreateFromMat(side.x.data(), side.rows, cols,
                                     std::numeric_limits<float>::quiet_NaN(), m->out()));
  PERSONA_XGB(XGDMatrixSetFloatInfo(m->get(), "label", side.y.data(), side.rows));
  std::vector<const char*> c_names;
  for (const std::string& n : names) c_names.push_back(n.c_str());
  // The names travel into the model JSON and into the importance scores.
  PERSONA_XGB(XGDMatrixSetStrFeatureInfo(m->get(), "feature_name", c_names.data(), cols));
  return absl::OkStatus();
}

// The number after "valid-logloss:" in XGBoosterEvalOneIter's "[i]\tvalid-logloss:0.123".
double ParseEvalLogLoss(const char* eval) {
  const char* at = std::strstr(eval, "valid-logloss:");
  if (at == nullptr) return std::numeric_limits<double>::quiet_NaN();
  return std::strtod(at + std::strlen("valid-logloss:"), nullptr);
}

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

double MeanLogLoss(const std::vector<double>& margins, const std::vector<float>& y, double a,
                   double b) {
  double sum = 0;
  for (size_t i = 0; i < margins.size(); ++i) {
    const double p = std::clamp(Sigmoid(a * margins[i] + b), 1e-15, 1 - 1e-15);
    sum -= y[i] > 0.5f ? std::log(p) : std::log(1 - p);
  }
  return sum / static_cast<double>(margins.size());
}

// Platt scaling: the (a, b) minimising the log-loss of sigmoid(a * margin + b) on held-out
// margins, by Newton's method from the identity (1, 0) with step halving. Platt's smoothed
// targets (N+ + 1)/(N+ + 2) and 1/(N- + 2) keep a from running off to infinity when the margins
// separate the classes perfectly on a small validation set.
std::pair<double, double> FitPlatt(const std::vector<double>& margins,
                                   const std::vector<float>& y) {
  double pos = 0;
  for (float v : y) pos += v > 0.5f ? 1 : 0;
  const double neg = static_cast<double>(y.size()) - pos;
  const double t_pos = (pos + 1) / (pos + 2), t_neg = 1 / (neg + 2);
  auto loss = [&](double a, double b) {
    double sum = 0;
    for (size_t i = 0; i < margins.size(); ++i) {
      const double t = y[i] > 0.5f ? t_pos : t_neg;
      const double z = a * margins[i] + b;
      // -[t log s(z) + (1-t) log(1-s(z))] = log(1 + e^z) - t z, computed without overflow
      sum += (z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z))) - t * z;
    }
    return sum;
  };
  double a = 1, b = 0, current = loss(a, b);
  for (int iter = 0; iter < 100; ++iter) {
    double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
    for (size_t i = 0; i < margins.size(); ++i) {
      const double t = y[i] > 0.5f ? t_pos : t_neg;
      const double m = margins[i];
      const double p = Sigmoid(a * m + b);
      const double w = std::max(p * (1 - p), 1e-12);
      ga += (p - t) * m;
      gb += p - t;
      haa += w * m * m;
      hab += w * m;
      hbb += w;
    }
    const double det = haa * hbb - hab * hab;
    if (!(det > 1e-18)) break;
    const double da = (hbb * ga - hab * gb) / det;
    const double db = (haa * gb - hab * ga) / det;
    double step = 1;
    bool improved = false;
    while (step > 1e-6) {
      const double na = a - step * da, nb = b - step * db;
      const double next = loss(na, nb);
      if (std::isfinite(next) && next < current) {
        a = na;
        b = nb;
        improved = current - next > 1e-12 * std::max(1.0, current);
        current = next;
        break;
      }
      step /= 2;
    }
    if (!improved) break;
  }
  return {a, b};
}

// "<name>-YYYYMMDDTHHMMSSZ" for a Unix time.
std::string VersionFor(std::string_view name, std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return absl::StrCat(std::string(name), "-", buf);
}

}  // namespace

absl::StatusOr<GbdtModel> TrainGbdt(const PointInTimeSet& set,
                                    const std::function<bool(const LabeledRow&)>& label,
                                    std::string_view name, const GbdtTrainOptions& options,
                                    const std::function<void(int, double)>& progress) {
  if (options.rounds < 1 || options.max_depth < 1 || !(options.eta > 0) ||
      !(options.subsample > 0 && options.subsample <= 1) ||
      !(options.colsample > 0 && options.colsample <= 1) ||
      !(options.valid_fraction > 0 && options.valid_fraction < 1) || options.early_stopping < 1) {
    return absl::InvalidArgumentError(
        "GBDT options out of range (rounds, max_depth, early_stopping >= 1; eta > 0; subsample, "
        "colsample in (0, 1]; valid_fraction in (0, 1))");
  }
  const size_t cols = set.feature_names.size();
  if (cols == 0) return absl::FailedPreconditionError("the training set has no features");

  // The split depends only on the user id, so it is the same for every cutoff and every run.
  const uint64_t valid_below = static_cast<uint64_t>(options.valid_fraction * 10000);
  Side train, valid;
  for (const LabeledRow& row : set.rows) {
    if (row.features.size() != cols) {
      return absl::InvalidArgumentError(absl::StrCat(
          "row of user ", row.user, " has ", row.features.size(), " features, set has ", cols));
    }
    Side& side = Hash64(row.user) % 10000 < valid_below ? valid : train;
    side.x.insert(side.x.end(), row.features.begin(), row.features.end());
    const bool positive = label(row);
    side.y.push_back(positive ? 1.0f : 0.0f);
    side.positives += positive ? 1 : 0;
    ++side.rows;
  }
  for (const auto& [side, what] : {std::pair{&train, "training"}, {&valid, "validation"}}) {
    if (side->rows == 0 || side->positives == 0 || side->positives == side->rows) {
      return absl::FailedPreconditionError(
          absl::StrCat("the ", what, " users have ", side->rows, " rows of which ", side->positives,
                       " positive: both classes are needed (more users, more cutoffs, or a "
                       "longer horizon)"));
    }
  }

  DMatrix dtrain, dvalid;
  if (auto s = MakeDMatrix(train, cols, set.feature_names, &dtrain); !s.ok()) return s;
  if (auto s = MakeDMatrix(valid, cols, set.feature_names, &dvalid); !s.ok()) return s;
  Booster booster;
  DMatrixHandle cache[] = {dtrain.get(), dvalid.get()};
  PERSONA_XGB(XGBoosterCreate(cache, 2, booster.out()));
  const std::vector<std::pair<std::string, std::string>> params = {
      {"objective", "binary:logistic"},
      {"eval_metric", "logloss"},
      {"tree_method", "hist"},
      {"max_depth", std::to_string(options.max_depth)},
      {"eta", std::to_string(options.eta)},
      {"subsample", std::to_string(options.subsample)},
      {"colsample_bytree", std::to_string(options.colsample)},
      {"seed", std::to_string(options.seed)},
      {"verbosity", "0"},
  };
  for (const auto& [key, value] : params) {
    PERSONA_XGB(XGBoosterSetParam(booster.get(), key.c_str(), value.c_str()));
  }
  if (options.threads > 0) {
    PERSONA_XGB(
        XGBoosterSetParam(booster.get(), "nthread", std::to_string(options.threads).c_str()));
  }

  DMatrixHandle eval_sets[] = {dvalid.get()};
  const char* eval_names[] = {"valid"};
  int best_round = 0;
  double best_loss = std::numeric_limits<double>::infinity();
  for (int round = 0; round < options.rounds; ++round) {
    PERSONA_XGB(XGBoosterUpdateOneIter(booster.get(), round, dtrain.get()));
    const char* eval = nullptr;
    PERSONA_XGB(XGBoosterEvalOneIter(booster.get(), round, eval_sets, eval_names, 1, &eval));
    const double loss = ParseEvalLogLoss(eval);
    if (!std::isfinite(loss)) {
      return absl::InternalError(absl::StrCat("XGBoost evaluation gave no log-loss: ", eval));
    }
    if (progress) progress(round + 1, loss);
    if (loss < best_loss) {
      best_loss = loss;
      best_round = round;
    } else if (round - best_round >= options.early_stopping) {
      break;
    }
  }

  // Keep the trees of rounds 0..best_round; later ones only fitted the training users better.
  Booster best;
  PERSONA_XGB(XGBoosterSlice(booster.get(), 0, best_round + 1, 1, best.out()));
  std::vector<const char*> c_names;
  for (const std::string& n : set.feature_names) c_names.push_back(n.c_str());
  PERSONA_XGB(XGBoosterSetStrFeatureInfo(best.get(), "feature_name", c_names.data(), cols));
  bst_ulong json_len = 0;
  const char* json = nullptr;
  PERSONA_XGB(XGBoosterSaveModelToBuffer(best.get(), R"({"format":"json"})", &json_len, &json));
  auto model = GbdtModel::FromXgboostJson(std::string_view(json, json_len));
  if (!model.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot import the trained trees: ", model.status().message()));
  }

  // Importance: each feature's share of the total split gain (XGBoost's "total_gain"; the
  // average gain per split, "gain", overrates a feature used once for a lucky split).
  bst_ulong n_features = 0, score_dim = 0;
  const char** feature_names = nullptr;
  const bst_ulong* score_shape = nullptr;
  const float* scores = nullptr;
  PERSONA_XGB(XGBoosterFeatureScore(best.get(), R"({"importance_type":"total_gain"})", &n_features,
                                    &feature_names, &score_dim, &score_shape, &scores));
  GbdtMeta& meta = model->mutable_meta();
  meta.feature_names = set.feature_names;
  double total_gain = 0;
  for (bst_ulong i = 0; i < n_features; ++i) total_gain += scores[i];
  for (bst_ulong i = 0; i < n_features; ++i) {
    meta.importance.emplace_back(feature_names[i], total_gain > 0 ? scores[i] / total_gain : 0);
  }
  std::stable_sort(meta.importance.begin(), meta.importance.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });

  // Calibration on the validation users, through the native predictor the server will use.
  std::vector<double> margins(valid.rows);
  for (size_t r = 0; r < valid.rows; ++r) {
    margins[r] = model->Margin(std::span<const float>(valid.x.data() + r * cols, cols));
  }
  const auto [platt_a, platt_b] = FitPlatt(margins, valid.y);
  meta.platt_a = platt_a;
  meta.platt_b = platt_b;
  std::vector<double> calibrated(valid.rows);
  std::vector<uint8_t> valid_labels(valid.rows);
  for (size_t r = 0; r < valid.rows; ++r) {
    calibrated[r] = model->Calibrate(margins[r]);
    valid_labels[r] = valid.y[r] > 0.5f ? 1 : 0;
  }
  const BinaryMetrics valid_metrics = EvaluateBinary(calibrated, valid_labels);

  const auto now = std::chrono::system_clock::now();
  meta.name = std::string(name);
  meta.version = VersionFor(name, std::chrono::system_clock::to_time_t(now));
  meta.trained_at_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  meta.metrics = {
      {"train_rows", static_cast<double>(train.rows)},
      {"train_positive_rate", static_cast<double>(train.positives) / train.rows},
      {"valid_rows", static_cast<double>(valid.rows)},
      {"valid_positive_rate", static_cast<double>(valid.positives) / valid.rows},
      {"trees", static_cast<double>(best_round + 1)},
      {"valid_auc", valid_metrics.auc},
      {"valid_logloss_uncalibrated", MeanLogLoss(margins, valid.y, 1, 0)},
      {"valid_logloss", valid_metrics.log_loss},
      {"valid_ece", valid_metrics.ece},
  };
  return model;
}

}  // namespace persona
