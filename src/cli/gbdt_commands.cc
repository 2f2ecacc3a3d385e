// `persona train propensity|churn` and `persona eval propensity|churn`: gradient-boosted models
// of "buys within the horizon" and "is silent for the whole horizon", trained with XGBoost on
// point-in-time rows (features at a cutoff, labels from the horizon after it) and written as
// servable artifacts (docs/model_format.md, "Gradient-boosted trees").
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "eval/classification_metrics.h"
#include "predict/event_log.h"
#include "predict/point_in_time.h"
#include "predict/recency_frequency_baseline.h"
#include "train/gbdt_trainer.h"

namespace persona::cli {
namespace {

using Label = bool (*)(const LabeledRow&);
bool Purchased(const LabeledRow& r) { return r.purchased; }
bool Churned(const LabeledRow& r) { return r.churned; }

struct GbdtCli {
  std::string name;  // propensity | churn
  std::string input;
  std::string format;
  std::string data_dir;
  std::vector<std::string> cutoffs;  // train: --cutoff; eval: --train-cutoff
  std::string test_cutoff;           // eval only
  std::string horizon;
  std::string active_within;
  std::string out;    // train only
  bool json = false;  // eval only
  bool quiet = false;
  GbdtTrainOptions train;

  Label label() const { return name == "churn" ? &Churned : &Purchased; }
};

// The per-round progress line: redrawn in place on a terminal, otherwise one line per 10 rounds
// so that logs stay readable.
class RoundPrinter {
 public:
  explicit RoundPrinter(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}
  ~RoundPrinter() { Finish(); }

  void Round(int round, double loss) {
    if (quiet_) return;
    best_ = std::min(best_, loss);
    if (tty_) {
      std::fprintf(stderr, "\rround %d  valid log-loss %.5f  best %.5f", round, loss, best_);
      drawn_ = true;
    } else if (round % 10 == 0) {
      std::fprintf(stderr, "round %d  valid log-loss %.5f  best %.5f\n", round, loss, best_);
    }
  }
  void Finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  double best_ = HUGE_VAL;
};

int Usage(absl::string_view message) {
  std::cerr << "persona: " << message << "\n";
  return 2;
}

absl::StatusOr<int64_t> TimeFlag(std::string_view flag, std::string_view value) {
  if (auto t = ParseIsoTime(value)) return *t;
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(flag), " '", std::string(value),
                   "' is not a time (e.g. 2017-12-01 or 2019-10-01T02:00:00Z)"));
}

absl::StatusOr<int64_t> DurationFlag(std::string_view flag, std::string_view value) {
  if (auto d = ParseDuration(value); d && *d > 0) return *d;
  return absl::InvalidArgumentError(absl::StrCat(std::string(flag), " '", std::string(value),
                                                 "' is not a positive duration (e.g. 2d, 30m)"));
}

absl::StatusOr<EventLog> ReadLog(const GbdtCli& o) {
  if (!o.data_dir.empty()) return EventLog::FromDataDir(o.data_dir);
  const auto format = ParseInputFormat(o.format);
  if (!format) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--format '", o.format, "' is not one of jsonl, csv, taobao, rees46, retailrocket"));
  }
  const bool tty = !o.quiet && isatty(STDERR_FILENO) != 0;
  auto log = EventLog::FromFile(o.input, *format, [tty](uint64_t done, uint64_t total) {
    if (tty && total > 0) std::fprintf(stderr, "\rreading %3.0f%%", 100.0 * done / total);
  });
  if (tty) std::fputs("\r\033[K", stderr);
  return log;
}

// Replays the log once for all cutoffs.
absl::StatusOr<PointInTimeSet> BuildSet(const GbdtCli& o, const EventLog& log,
                                        std::vector<int64_t> cutoffs, int64_t horizon_ms) {
  PointInTimeOptions p;
  p.cutoffs_ms = std::move(cutoffs);
  p.horizon_ms = horizon_ms;
  if (!o.active_within.empty()) {
    auto within = DurationFlag("--active-within", o.active_within);
    if (!within.ok()) return within.status();
    p.active_within_ms = *within;
  }
  return BuildPointInTime(log, p);
}

// A training failure that is the input's fault (a single class, too few users) is exit code 2.
int TrainFailure(const absl::Status& s) {
  if (absl::IsFailedPrecondition(s) || absl::IsInvalidArgument(s)) return Usage(s.message());
  return Fail(s);
}

absl::StatusOr<GbdtModel> Train(const GbdtCli& o, const PointInTimeSet& set, int64_t horizon_ms) {
  if (!o.quiet) {
    size_t positives = 0;
    for (const LabeledRow& r : set.rows) positives += o.label()(r) ? 1 : 0;
    std::fprintf(stderr, "persona: %s: %zu rows, %zu positive (%.1f%%), %zu features\n",
                 o.name.c_str(), set.rows.size(), positives,
                 set.rows.empty() ? 0.0 : 100.0 * positives / set.rows.size(),
                 set.feature_names.size());
  }
  RoundPrinter printer(o.quiet);
  auto model = TrainGbdt(set, o.label(), o.name, o.train,
                         [&](int round, double loss) { printer.Round(round, loss); });
  printer.Finish();
  if (model.ok()) model->mutable_meta().horizon_ms = horizon_ms;
  return model;
}

double Metric(const GbdtMeta& meta, std::string_view key) {
  for (const auto& [k, v] : meta.metrics) {
    if (k == key) return v;
  }
  return NAN;
}

// DIR/models/<name>/<version>.pgbm, with "-2", "-3", ... appended to the version when a model
// of the same second exists (so two trainings never overwrite each other).
std::string DefaultOut(const std::string& dir, GbdtModel& model) {
  const std::string base = dir + "/models/" + model.meta().name + "/";
  std::string version = model.meta().version;
  for (int n = 2; std::filesystem::exists(base + version + ".pgbm"); ++n) {
    version = absl::StrCat(model.meta().version, "-", n);
  }
  model.mutable_meta().version = version;
  return base + version + ".pgbm";
}

int RunTrainGbdt(GbdtCli& o) {
  if (o.input.empty() == o.data_dir.empty()) {
    return Usage(
        absl::StrCat("train ", o.name, " needs exactly one of --input FILE or --data DIR"));
  }
  if (!o.input.empty() && o.format.empty()) return Usage("--format is required with --input");
  if (!o.input.empty() && o.out.empty()) return Usage("--out is required with --input");
  if (o.cutoffs.empty()) return Usage("at least one --cutoff is required");
  std::vector<int64_t> cutoffs;
  for (const std::string& c : o.cutoffs) {
    auto t = TimeFlag("--cutoff", c);
    if (!t.ok()) return Usage(t.status().message());
    cutoffs.push_back(*t);
  }
  auto horizon = DurationFlag("--horizon", o.horizon);
  if (!horizon.ok()) return Usage(horizon.status().message());

  auto log = ReadLog(o);
  if (!log.ok()) return Fail(log.status());
  auto set = BuildSet(o, *log, cutoffs, *horizon);
  if (!set.ok()) return TrainFailure(set.status());
  auto model = Train(o, *set, *horizon);
  if (!model.ok()) return TrainFailure(model.status());

  const std::string out = o.out.empty() ? DefaultOut(o.data_dir, *model) : o.out;
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      std::cerr << "persona: cannot create " << parent << ": " << ec.message() << "\n";
      return 1;
    }
  }
  if (auto s = model->Save(out); !s.ok()) return Fail(s);
  std::printf("%s\n", out.c_str());
  if (!o.quiet) {
    std::fprintf(stderr,
                 "persona: wrote %s (%s): %zu trees, valid AUC %.4f, log-loss %.4f "
                 "(uncalibrated %.4f)\n",
                 out.c_str(), model->meta().version.c_str(), model->num_trees(),
                 Metric(model->meta(), "valid_auc"), Metric(model->meta(), "valid_logloss"),
                 Metric(model->meta(), "valid_logloss_uncalibrated"));
  }
  return 0;
}

struct EvalRow {
  std::string model;
  BinaryMetrics m;
  bool loses = false;
};

std::string Fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

int RunEvalGbdt(GbdtCli& o) {
  if (o.input.empty() == o.data_dir.empty()) {
    return Usage(absl::StrCat("eval ", o.name, " needs exactly one of --input FILE or --data DIR"));
  }
  if (!o.input.empty() && o.format.empty()) return Usage("--format is required with --input");
  if (o.cutoffs.empty()) return Usage("at least one --train-cutoff is required");
  auto horizon = DurationFlag("--horizon", o.horizon);
  if (!horizon.ok()) return Usage(horizon.status().message());
  auto test_cutoff = TimeFlag("--test-cutoff", o.test_cutoff);
  if (!test_cutoff.ok()) return Usage(test_cutoff.status().message());
  std::vector<int64_t> cutoffs;
  for (const std::string& c : o.cutoffs) {
    auto t = TimeFlag("--train-cutoff", c);
    if (!t.ok()) return Usage(t.status().message());
    // A training label window that reaches past the test cutoff would train on the very future
    // the test rows are judged on.
    if (*t + *horizon > *test_cutoff) {
      return Usage(absl::StrCat("--train-cutoff ", c, " + horizon ", o.horizon, " ends at ",
                                FormatIsoTime(*t + *horizon), ", after --test-cutoff ",
                                o.test_cutoff, ": training labels would overlap the test window"));
    }
    cutoffs.push_back(*t);
  }

  auto log = ReadLog(o);
  if (!log.ok()) return Fail(log.status());
  std::vector<int64_t> all = cutoffs;
  all.push_back(*test_cutoff);
  auto both = BuildSet(o, *log, all, *horizon);
  if (!both.ok()) return TrainFailure(both.status());
  PointInTimeSet train, test;
  train.feature_names = test.feature_names = both->feature_names;
  for (LabeledRow& r : both->rows) {
    (r.cutoff_ms == *test_cutoff ? test : train).rows.push_back(std::move(r));
  }
  if (test.rows.empty()) return Usage("no user was active at the test cutoff");

  auto model = Train(o, train, *horizon);
  if (!model.ok()) return TrainFailure(model.status());
  const RecencyFrequencyBaseline baseline = RecencyFrequencyBaseline::Fit(train, o.label());
  std::vector<double> gbdt_p, base_p;
  std::vector<uint8_t> labels;
  for (const LabeledRow& r : test.rows) {
    gbdt_p.push_back(model->Probability(r.features));
    base_p.push_back(baseline.Probability(r.features));
    labels.push_back(o.label()(r) ? 1 : 0);
  }
  std::vector<EvalRow> rows = {
      {"gbdt " + o.name, EvaluateBinary(gbdt_p, labels), false},
      {"baseline recency+frequency", EvaluateBinary(base_p, labels), false},
  };
  // Losing on AUC (ranking) or on log-loss (probabilities) both count: a served probability
  // that is worse than the two-number baseline's on either is not worth serving.
  rows[0].loses = !(rows[0].m.auc > rows[1].m.auc) || !(rows[0].m.log_loss < rows[1].m.log_loss);
  const auto& importance = model->meta().importance;
  const size_t top = std::min<size_t>(10, importance.size());

  if (o.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("task").String(o.name);
    w.Key("horizon_ms").Int(*horizon);
    w.Key("train_cutoffs").BeginArray();
    for (int64_t c : cutoffs) w.String(FormatIsoTime(c));
    w.EndArray();
    w.Key("test_cutoff").String(FormatIsoTime(*test_cutoff));
    w.Key("train_rows").Uint(train.rows.size());
    w.Key("trees").Uint(model->num_trees());
    w.Key("results").BeginArray();
    for (const EvalRow& r : rows) {
      w.BeginObject();
      w.Key("model").String(r.model);
      w.Key("auc").Double(r.m.auc);
      w.Key("log_loss").Double(r.m.log_loss);
      w.Key("precision").Double(r.m.precision);
      w.Key("recall").Double(r.m.recall);
      w.Key("f1").Double(r.m.f1);
      w.Key("threshold").Double(r.m.threshold);
      w.Key("ece").Double(r.m.ece);
      w.Key("n").Uint(r.m.n);
      w.Key("positive_rate").Double(r.m.n ? static_cast<double>(r.m.positives) / r.m.n : NAN);
      w.Key("loses_to_baseline").Bool(r.loses);
      w.EndObject();
    }
    w.EndArray();
    w.Key("importance").BeginArray();
    for (size_t i = 0; i < top; ++i) {
      w.BeginObject();
      w.Key("feature").String(importance[i].first);
      w.Key("gain_share").Double(importance[i].second);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }

  std::printf("%s, horizon %s: trained on %zu rows (%zu cutoffs), tested on %zu rows at %s\n\n",
              o.name.c_str(), o.horizon.c_str(), train.rows.size(), cutoffs.size(),
              test.rows.size(), FormatIsoTime(*test_cutoff).c_str());
  std::printf(
      "| model | AUC | log-loss | precision | recall | F1 | threshold | ECE | n | positive rate "
      "|\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (const EvalRow& r : rows) {
    std::printf("| %s%s | %s | %s | %s | %s | %s | %s | %s | %zu | %s |\n", r.model.c_str(),
                r.loses ? " (loses to baseline)" : "", Fixed(r.m.auc).c_str(),
                Fixed(r.m.log_loss).c_str(), Fixed(r.m.precision).c_str(),
                Fixed(r.m.recall).c_str(), Fixed(r.m.f1).c_str(), Fixed(r.m.threshold).c_str(),
                Fixed(r.m.ece).c_str(), r.m.n,
                Fixed(r.m.n ? static_cast<double>(r.m.positives) / r.m.n : NAN, 3).c_str());
  }
  std::printf("\nTop %zu features by share of total split gain (%zu trees):\n\n", top,
              model->num_trees());
  std::printf("| feature | gain share |\n|---|---|\n");
  for (size_t i = 0; i < top; ++i) {
    std::printf("| %s | %s |\n", importance[i].first.c_str(),
                Fixed(importance[i].second, 3).c_str());
  }
  return 0;
}

void AddTrainingOptions(CLI::App* cmd, GbdtCli* o) {
  GbdtTrainOptions& t = o->train;
  cmd->add_option("--input", o->input, "Event file");
  cmd->add_option("--format", o->format, "Event file format: taobao, rees46, jsonl, csv, ...");
  cmd->add_option("--data", o->data_dir, "Data directory: use its event log");
  cmd->add_option("--horizon", o->horizon, "Label window after each cutoff (e.g. 2d, 30m)")
      ->required();
  cmd->add_option("--active-within", o->active_within,
                  "Leave out users not seen within this long before a cutoff (default: keep all)");
  cmd->add_option("--rounds", t.rounds, "Maximum boosting rounds (trees)")->capture_default_str();
  cmd->add_option("--max-depth", t.max_depth, "Tree depth")->capture_default_str();
  cmd->add_option("--eta", t.eta, "Learning rate")->capture_default_str();
  cmd->add_option("--subsample", t.subsample, "Rows sampled per tree")->capture_default_str();
  cmd->add_option("--colsample", t.colsample, "Features sampled per tree")->capture_default_str();
  cmd->add_option("--early-stopping", t.early_stopping,
                  "Stop after N rounds without validation log-loss gain")
      ->capture_default_str();
  cmd->add_option("--valid-fraction", t.valid_fraction,
                  "Share of users held out for early stopping and calibration")
      ->capture_default_str();
  cmd->add_option("--threads", t.threads, "XGBoost threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--seed", t.seed, "Random seed")->capture_default_str();
  cmd->add_flag("--quiet,-q", o->quiet, "No progress output");
}

}  // namespace

void RegisterGbdtCommands(Registry& r) {
  CLI::App* train = r.app().get_subcommand("train");
  CLI::App* eval = r.app().get_subcommand("eval");
  for (const std::string name : {"propensity", "churn"}) {
    const std::string what = name == "propensity" ? "P(purchase within the horizon)"
                                                  : "P(no event at all within the horizon)";
    auto t = std::make_shared<GbdtCli>();
    t->name = name;
    CLI::App* tc = train->add_subcommand(name, "Train the gradient-boosted " + name + " model, " +
                                                   what + ", and write its artifact");
    AddTrainingOptions(tc, t.get());
    tc->add_option("--cutoff", t->cutoffs, "Cutoff time (repeatable): one row per user per cutoff")
        ->required();
    tc->add_option("--out", t->out,
                   "Model file (default with --data: DIR/models/" + name + "/<version>.pgbm)");
    r.AddExisting(tc, [t] { return RunTrainGbdt(*t); });

    auto e = std::make_shared<GbdtCli>();
    e->name = name;
    CLI::App* ec =
        eval->add_subcommand(name, "Train the " + name +
                                       " model on earlier cutoffs and compare it with the "
                                       "recency+frequency baseline on a later one");
    AddTrainingOptions(ec, e.get());
    ec->add_option("--train-cutoff", e->cutoffs, "Training cutoff (repeatable)")->required();
    ec->add_option("--test-cutoff", e->test_cutoff, "Evaluation cutoff")->required();
    ec->add_flag("--json", e->json, "Print JSON instead of markdown tables");
    r.AddExisting(ec, [e] { return RunEvalGbdt(*e); });
  }
}

}  // namespace persona::cli
