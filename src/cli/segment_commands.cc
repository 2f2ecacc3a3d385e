// persona train segments|next-category and persona eval segments|next-category: K-means customer
// segments and next-category prediction, trained on replayed profiles of an event file or a data
// directory's log. Tables go to stdout (markdown, or JSON with --json), progress to stderr.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "predict/event_log.h"
#include "predict/next_category.h"
#include "predict/point_in_time.h"
#include "predict/segment_model.h"

namespace persona::cli {
namespace {

// Where the events come from and how profiles are built from them.
struct SourceCli {
  std::string input;
  std::string format;
  EngineOptions engine;
  bool quiet = false;
};

void AddSourceOptions(CLI::App* cmd, SourceCli* o) {
  cmd->add_option("--input", o->input, "Event file to train on");
  cmd->add_option("--format", o->format, "Format of --input (taobao, rees46, jsonl, csv, ...)");
  cmd->add_option("--data", o->engine.data_dir, "Data directory: train on its event log");
  cmd->add_option("--config", o->engine.config_file, "TOML config file (profile settings)");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress output");
}

struct Source {
  std::unique_ptr<EventLog> log;
  ProfileConfig profile;
  std::string description;  // "file X (format)" / "data directory X"
};

// Reads the events; exit code 2 for bad usage, 1 for a failure, 0 with `out` filled.
int ReadSource(const SourceCli& o, Source* out) {
  if (o.input.empty() == o.engine.data_dir.empty()) {
    std::cerr << "persona: needs exactly one of --input FILE (with --format) or --data DIR\n";
    return 2;
  }
  auto config = MakeConfig(o.engine);
  if (!config.ok()) return Fail(config.status());
  out->profile = config->profile;
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<EventLog> log = absl::UnknownError("unset");
  if (!o.input.empty()) {
    const auto format = ParseInputFormat(o.format);
    if (!format) {
      std::cerr << "persona: --format must name an import format (taobao, rees46, jsonl, csv, "
                   "retailrocket), got '"
                << o.format << "'\n";
      return 2;
    }
    const bool tty = isatty(STDERR_FILENO) != 0;
    int last_decile = -1;
    log = EventLog::FromFile(o.input, *format, [&](uint64_t done, uint64_t total) {
      if (o.quiet || total == 0) return;
      const int decile = static_cast<int>(10 * done / total);
      if (tty) {
        std::fprintf(stderr, "\rpersona: reading %s: %3d%%", o.input.c_str(),
                     static_cast<int>(100 * done / total));
      } else if (decile != last_decile) {
        std::fprintf(stderr, "persona: reading %s: %d%%\n", o.input.c_str(), decile * 10);
      }
      last_decile = decile;
    });
    if (!o.quiet && tty) std::fprintf(stderr, "\n");
    out->description = absl::StrCat("file ", o.input, " (", o.format, ")");
  } else {
    log = EventLog::FromDataDir(o.engine.data_dir);
    out->description = "data directory " + o.engine.data_dir;
  }
  if (!log.ok()) return Fail(log.status());
  if (log->events().empty()) {
    std::cerr << "persona: " << out->description << " holds no events\n";
    return 2;
  }
  if (!o.quiet) {
    std::fprintf(stderr, "persona: %zu events (%llu skipped), %s .. %s, read in %.1f s\n",
                 log->events().size(), static_cast<unsigned long long>(log->skipped()),
                 FormatIsoTime(log->min_ts_ms()).c_str(), FormatIsoTime(log->max_ts_ms()).c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  out->log = std::make_unique<EventLog>(std::move(*log));
  return 0;
}

// Creates the parent directory of `path` when needed; false (reported) on failure.
bool MakeParent(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return true;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) std::cerr << "persona: cannot create " << parent << ": " << ec.message() << "\n";
  return !ec;
}

// DIR/models/<name>/<version><ext>, with -2, -3, ... when a file of that name exists already
// (two trainings within one second).
std::string DefaultArtifactPath(const std::string& data_dir, const std::string& name,
                                const std::string& version, const std::string& ext) {
  const std::string base = data_dir + "/models/" + name + "/" + version;
  std::string path = base + ext;
  for (int i = 2; std::filesystem::exists(path); ++i) path = base + "-" + std::to_string(i) + ext;
  return path;
}

// ---------------------------------------------------------------------------------------------
// Segments

struct SegmentsCli {
  SourceCli source;
  SegmentTrainOptions train;
  std::string out;
  bool json = false;
};

void AddSegmentOptions(CLI::App* cmd, SegmentsCli* o) {
  AddSourceOptions(cmd, &o->source);
  cmd->add_option("--k-min", o->train.k_min, "Smallest k tried")->capture_default_str();
  cmd->add_option("--k-max", o->train.k_max, "Largest k tried")->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "Random seed (k-means++ and silhouette sample)")
      ->capture_default_str();
  cmd->add_option("--restarts", o->train.restarts, "k-means restarts per k")->capture_default_str();
  cmd->add_option("--top-categories", o->train.top_categories,
                  "Top-level categories in the features (at most 8)")
      ->capture_default_str();
}

// Replays the log to its end and trains; prints progress. Exit code in *code on failure.
absl::StatusOr<SegmentModel> TrainSegments(SegmentsCli& o, const Source& src) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<SegmentObservation> observations;
  PointInTimeOptions pit;
  pit.cutoffs_ms = {src.log->max_ts_ms()};
  pit.horizon_ms = 1;  // no labels are used
  pit.profile = src.profile;
  auto replay = BuildPointInTime(
      *src.log, pit, [&](const Profile& p, const ProfileContext& ctx, std::string_view, int64_t) {
        observations.push_back(ObserveSegmentInputs(p, ctx));
      });
  if (!replay.ok()) return replay.status();
  if (!o.source.quiet) {
    std::fprintf(stderr, "persona: %zu profiles replayed in %.1f s; k-means for k = %d..%d\n",
                 observations.size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                 o.train.k_min, o.train.k_max);
  }
  o.train.data_source = src.description;
  return SegmentModel::Train(observations, o.train);
}

int FailTraining(const absl::Status& s) {
  if (absl::IsFailedPrecondition(s) || absl::IsInvalidArgument(s)) {
    std::cerr << "persona: " << s.message() << "\n";
    return 2;
  }
  return Fail(s);
}

std::string SegmentsMarkdown(const SegmentModel& m) {
  std::string out = "| k | silhouette |\n|---|---|\n";
  for (const auto& [k, s] : m.silhouette_by_k()) {
    absl::StrAppend(&out, "| ", k, " | ", absl::StrFormat("%.4f", s),
                    static_cast<size_t>(k) == m.segments().size() ? " (chosen)" : "", " |\n");
  }
  size_t total = 0;
  for (const auto& s : m.segments()) total += s.train_size;
  absl::StrAppend(&out, "\nk = ", m.segments().size(), ", silhouette ",
                  absl::StrFormat("%.4f", m.silhouette()), ", ", total, " profiles\n\n");
  absl::StrAppend(
      &out,
      "| segment | size | share | description | monetary | orders | events_30d | "
      "sessions | price_index | cart_rate |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& s : m.segments()) {
    auto value = [&](std::string_view name) {
      for (const auto& [n, v] : s.centroid) {
        if (n == name) return absl::StrFormat("%.2f", v);
      }
      return std::string("-");
    };
    absl::StrAppend(&out, "| ", s.id, " | ", s.train_size, " | ",
                    absl::StrFormat("%.1f%%", total ? 100.0 * s.train_size / total : 0.0), " | ",
                    s.description, " | ", value("monetary"), " | ", value("orders"), " | ",
                    value("events_30d"), " | ", value("sessions"), " | ", value("price_index"),
                    " | ", value("cart_rate"), " |\n");
  }
  return out;
}

std::string SegmentsJson(const SegmentModel& m) {
  JsonWriter w;
  w.BeginObject();
  w.Key("model").String("segments");
  w.Key("version").String(m.version());
  w.Key("k").Uint(m.segments().size());
  w.Key("silhouette").Double(m.silhouette());
  w.Key("silhouette_by_k").BeginArray();
  for (const auto& [k, s] : m.silhouette_by_k()) {
    w.BeginObject();
    w.Key("k").Int(k);
    w.Key("silhouette").Double(s);
    w.EndObject();
  }
  w.EndArray();
  w.Key("top_categories").BeginArray();
  for (const std::string& c : m.top_categories()) w.String(c);
  w.EndArray();
  w.Key("segments").BeginArray();
  for (const auto& s : m.segments()) {
    w.BeginObject();
    w.Key("id").Int(s.id);
    w.Key("size").Uint(s.train_size);
    w.Key("description").String(s.description);
    w.Key("centroid").BeginObject();
    for (const auto& [name, value] : s.centroid) w.Key(name).Double(value);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

int RunTrainSegments(SegmentsCli& o) {
  if (!o.source.input.empty() && o.out.empty()) {
    std::cerr << "persona: --out is required with --input\n";
    return 2;
  }
  Source src;
  if (int code = ReadSource(o.source, &src); code != 0) return code;
  auto model = TrainSegments(o, src);
  if (!model.ok()) return FailTraining(model.status());
  const std::string out = o.out.empty() ? DefaultArtifactPath(o.source.engine.data_dir, "segments",
                                                              model->version(), ".pseg")
                                        : o.out;
  if (!MakeParent(out)) return 1;
  if (auto s = model->Save(out); !s.ok()) return Fail(s);
  std::printf("%s\n", out.c_str());
  if (!o.source.quiet) {
    std::fprintf(stderr, "persona: wrote %s (%s): k = %zu, silhouette %.4f\n", out.c_str(),
                 model->version().c_str(), model->segments().size(), model->silhouette());
  }
  return 0;
}

int RunEvalSegments(SegmentsCli& o) {
  Source src;
  if (int code = ReadSource(o.source, &src); code != 0) return code;
  auto model = TrainSegments(o, src);
  if (!model.ok()) return FailTraining(model.status());
  std::printf("%s\n", (o.json ? SegmentsJson(*model) : SegmentsMarkdown(*model)).c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Next category

struct NextCategoryCli {
  SourceCli source;
  std::string out;
  std::string cutoff;   // eval: ISO time; default 80% into the log
  std::string horizon;  // eval: label window after the cutoff; default to the end of the log
  double valid_fraction = 0.2;
  std::string session_gap = "30m";
  bool fold_repeats = false;
  bool json = false;
};

void AddNextCategoryOptions(CLI::App* cmd, NextCategoryCli* o) {
  AddSourceOptions(cmd, &o->source);
  cmd->add_option(
         "--valid-fraction", o->valid_fraction,
         "Fraction of the training events (the latest) whose users' first events tune alpha")
      ->capture_default_str();
  cmd->add_option(
         "--session-gap", o->session_gap,
         "With --fold-repeats: a return to the same category after this gap is a transition")
      ->capture_default_str();
  cmd->add_flag("--fold-repeats", o->fold_repeats,
                "Count only transitions between distinct categories (and returns after a gap)");
}

// The time by which `fraction` of the events up to `end_ms` have happened. Event quantiles rather
// than a fraction of the time range: a few stray timestamps (taobao has events weeks before its
// nine days) would otherwise put the cutoff where there is no data.
int64_t EventQuantileTime(const EventLog& log, int64_t end_ms, double fraction) {
  const auto& events = log.events();
  const auto end = std::upper_bound(events.begin(), events.end(), end_ms,
                                    [](int64_t t, const Event* e) { return t < e->ts_ms; });
  const size_t n = static_cast<size_t>(end - events.begin());
  if (n == 0) return log.min_ts_ms();
  const size_t i = std::min(n - 1, static_cast<size_t>(fraction * static_cast<double>(n)));
  return events[i]->ts_ms;
}

// Trains on events up to `end_ms`, tuning on the users' first events in the last
// valid_fraction of [min, end].
absl::StatusOr<NextCategoryModel> TrainNextCategory(const NextCategoryCli& o, const Source& src,
                                                    int64_t end_ms, size_t* valid_users) {
  const auto gap = ParseDuration(o.session_gap);
  if (!gap || *gap <= 0) return absl::InvalidArgumentError("--session-gap must be a duration");
  if (!(o.valid_fraction > 0 && o.valid_fraction < 1)) {
    return absl::InvalidArgumentError("--valid-fraction must lie in (0, 1)");
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t valid_cutoff = EventQuantileTime(*src.log, end_ms, 1 - o.valid_fraction);
  auto valid = BuildNextCategoryData(*src.log, valid_cutoff, end_ms, src.profile);
  if (!valid.ok()) return valid.status();
  auto all = BuildNextCategoryData(*src.log, end_ms, end_ms, src.profile);
  if (!all.ok()) return all.status();
  if (!o.source.quiet) {
    std::fprintf(stderr,
                 "persona: %zu users with categorised events up to %s; %zu validation users "
                 "(cutoff %s); replayed in %.1f s\n",
                 all->sequences.size(), FormatIsoTime(end_ms).c_str(), valid->examples.size(),
                 FormatIsoTime(valid_cutoff).c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  *valid_users = valid->examples.size();
  NextCategoryTrainOptions options;
  options.session_gap_ms = *gap;
  options.count_repeats = !o.fold_repeats;
  options.validation_cutoff_ms = valid_cutoff;
  options.data_source = src.description;
  return NextCategoryModel::Train(all->sequences, valid->examples, options);
}

int RunTrainNextCategory(NextCategoryCli& o) {
  if (!o.source.input.empty() && o.out.empty()) {
    std::cerr << "persona: --out is required with --input\n";
    return 2;
  }
  Source src;
  if (int code = ReadSource(o.source, &src); code != 0) return code;
  size_t valid_users = 0;
  auto model = TrainNextCategory(o, src, src.log->max_ts_ms(), &valid_users);
  if (!model.ok()) return FailTraining(model.status());
  const std::string out =
      o.out.empty()
          ? DefaultArtifactPath(o.source.engine.data_dir, "next_category", model->version(), ".pnc")
          : o.out;
  if (!MakeParent(out)) return 1;
  if (auto s = model->Save(out); !s.ok()) return Fail(s);
  std::printf("%s\n", out.c_str());
  if (!o.source.quiet) {
    std::string metrics;
    for (const auto& [name, value] : model->metrics()) {
      absl::StrAppend(&metrics, metrics.empty() ? "" : ", ", name, " ", value);
    }
    std::fprintf(stderr, "persona: wrote %s (%s): %s\n", out.c_str(), model->version().c_str(),
                 metrics.c_str());
  }
  return 0;
}

int RunEvalNextCategory(NextCategoryCli& o) {
  Source src;
  if (int code = ReadSource(o.source, &src); code != 0) return code;
  const int64_t min_ts = src.log->min_ts_ms(), max_ts = src.log->max_ts_ms();
  int64_t cutoff = EventQuantileTime(*src.log, max_ts, 0.8);
  if (!o.cutoff.empty()) {
    const auto parsed = ParseIsoTime(o.cutoff);
    if (!parsed) {
      std::cerr << "persona: --cutoff must be an ISO-8601 time, got '" << o.cutoff << "'\n";
      return 2;
    }
    cutoff = *parsed;
  }
  if (cutoff <= min_ts || cutoff >= max_ts) {
    std::cerr << "persona: --cutoff must lie inside the events' time range "
              << FormatIsoTime(min_ts) << " .. " << FormatIsoTime(max_ts) << "\n";
    return 2;
  }
  int64_t label_end = max_ts;
  if (!o.horizon.empty()) {
    const auto h = ParseDuration(o.horizon);
    if (!h || *h <= 0) {
      std::cerr << "persona: --horizon must be a positive duration (e.g. 1d)\n";
      return 2;
    }
    label_end = cutoff + *h;
  }
  size_t valid_users = 0;
  auto model = TrainNextCategory(o, src, cutoff, &valid_users);
  if (!model.ok()) return FailTraining(model.status());
  auto test = BuildNextCategoryData(*src.log, cutoff, label_end, src.profile);
  if (!test.ok()) return Fail(test.status());
  if (test->examples.empty()) {
    std::cerr << "persona: no user is active both before and after the cutoff\n";
    return 2;
  }
  const auto rows = EvaluateNextCategory(*model, test->examples);
  const NextCategoryEvalRow* baseline = nullptr;
  for (const auto& r : rows) {
    if (r.baseline) baseline = &r;
  }
  if (o.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("model").String("next_category");
    w.Key("data_source").String(src.description);
    w.Key("cutoff").String(FormatIsoTime(cutoff));
    w.Key("label_end").String(FormatIsoTime(label_end));
    w.Key("test_users").Uint(test->examples.size());
    w.Key("valid_users").Uint(valid_users);
    w.Key("params").BeginObject();
    w.Key("alpha").Double(model->params().alpha);
    w.Key("beta").Double(model->params().beta);
    w.Key("decay").Double(model->params().decay);
    w.EndObject();
    w.Key("rows").BeginArray();
    for (const auto& r : rows) {
      w.BeginObject();
      w.Key("method").String(r.method);
      w.Key("baseline").Bool(r.baseline);
      w.Key("accuracy_at1").Double(r.accuracy_at1);
      w.Key("accuracy_at3").Double(r.accuracy_at3);
      if (!r.baseline && baseline != nullptr) {
        w.Key("beats_baseline_at3").Bool(r.accuracy_at3 > baseline->accuracy_at3);
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }
  std::printf(
      "Next category on %s: cutoff %s, targets = first event in (cutoff, %s]; %zu test "
      "users, alpha %.2f (beta %g, decay %g) tuned on %zu validation users\n\n",
      src.description.c_str(), FormatIsoTime(cutoff).c_str(), FormatIsoTime(label_end).c_str(),
      test->examples.size(), model->params().alpha, model->params().beta, model->params().decay,
      valid_users);
  std::printf("| method | accuracy@1 | accuracy@3 | vs baseline @3 |\n|---|---|---|---|\n");
  for (const auto& r : rows) {
    std::string verdict = "(baseline)";
    if (!r.baseline && baseline != nullptr) {
      verdict = r.accuracy_at3 > baseline->accuracy_at3    ? "beats baseline"
                : r.accuracy_at3 == baseline->accuracy_at3 ? "ties baseline"
                                                           : "LOSES to baseline";
    }
    std::printf("| %s | %.4f | %.4f | %s |\n", r.method.c_str(), r.accuracy_at1, r.accuracy_at3,
                verdict.c_str());
  }
  return 0;
}

}  // namespace

void RegisterSegmentCommands(Registry& r) {
  CLI::App* train = r.app().get_subcommand("train");
  CLI::App* eval = r.app().get_subcommand("eval");

  auto train_segments = std::make_shared<SegmentsCli>();
  CLI::App* cmd = train->add_subcommand(
      "segments", "Train K-means customer segments (k by silhouette) and write the model");
  AddSegmentOptions(cmd, train_segments.get());
  cmd->add_option("--out", train_segments->out,
                  "Model file (default with --data: DIR/models/segments/<version>.pseg)");
  r.AddExisting(cmd, [train_segments] { return RunTrainSegments(*train_segments); });

  auto train_next = std::make_shared<NextCategoryCli>();
  cmd = train->add_subcommand("next-category",
                              "Train next-category prediction (transitions + interests)");
  AddNextCategoryOptions(cmd, train_next.get());
  cmd->add_option("--out", train_next->out,
                  "Model file (default with --data: DIR/models/next_category/<version>.pnc)");
  r.AddExisting(cmd, [train_next] { return RunTrainNextCategory(*train_next); });

  auto eval_segments = std::make_shared<SegmentsCli>();
  cmd = eval->add_subcommand(
      "segments", "Silhouette per k, the chosen k and the segments with sizes and descriptions");
  AddSegmentOptions(cmd, eval_segments.get());
  cmd->add_flag("--json", eval_segments->json, "JSON instead of markdown tables");
  r.AddExisting(cmd, [eval_segments] { return RunEvalSegments(*eval_segments); });

  auto eval_next = std::make_shared<NextCategoryCli>();
  cmd = eval->add_subcommand(
      "next-category",
      "Accuracy@1/@3 of next-category prediction at a cutoff vs the most-frequent baseline");
  AddNextCategoryOptions(cmd, eval_next.get());
  cmd->add_option("--cutoff", eval_next->cutoff,
                  "ISO time: train on events up to it, predict the first event after it "
                  "(default: when 80% of the events have happened)");
  cmd->add_option("--horizon", eval_next->horizon,
                  "Targets must fall within this long after the cutoff (default: to the end)");
  cmd->add_flag("--json", eval_next->json, "JSON instead of a markdown table");
  r.AddExisting(cmd, [eval_next] { return RunEvalNextCategory(*eval_next); });
}

}  // namespace persona::cli
