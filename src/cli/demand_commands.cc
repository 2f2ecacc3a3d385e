// `persona eval demand`: rolling-origin evaluation of the category demand forecast. The input is
// replayed into a CategoryDemand (the same counters the server keeps), the most active categories'
// series are cut at successive origins, and each cut is forecast `--horizon` buckets ahead by
// holt_winters and by the two baselines every forecast has to beat: the last value (naive) and the
// value one season earlier (seasonal naive). One markdown table (or --json) on stdout, progress on
// stderr.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "eval/holt_winters.h"
#include "event/event_reader.h"
#include "predict/category_demand.h"

namespace persona::cli {
namespace {

struct DemandEvalOptions {
  std::string input;
  std::string format = "jsonl";
  std::string period = "hour";
  std::string metric = "events";
  std::string bucket;  // 1h | 5m | 1d | <n>m | <n>h | <n>d; default by period
  uint32_t top = 20;
  int horizon = 24;
  int season = -1;  // -1 = by bucket width (a day of hours, a week of days)
  int step = 0;     // origins apart, 0 = horizon
  bool json = false;
  bool quiet = false;
};

// Parses "5m", "1h", "1d" (and any count of m/h/d) into milliseconds; 0 when malformed.
int64_t ParseBucket(const std::string& text) {
  if (text.size() < 2) return 0;
  const char unit = text.back();
  const std::string digits = text.substr(0, text.size() - 1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return 0;
  const int64_t n = std::stoll(digits);
  switch (unit) {
    case 'm':
      return n * 60'000;
    case 'h':
      return n * 3'600'000;
    case 'd':
      return n * 86'400'000;
  }
  return 0;
}

// Sums of one forecaster's errors over every (category, origin, step).
struct ErrorSums {
  std::string name;
  double abs = 0;
  uint64_t points = 0;
  double ape = 0;  // over non-zero actuals
  uint64_t nonzero = 0;
  double sape = 0;       // 2|f - a| / (|f| + |a|), 0 when both are 0
  uint64_t covered = 0;  // actuals inside the interval (holt_winters only)
  bool has_interval = false;

  void Add(double forecast, double actual) {
    const double e = std::abs(forecast - actual);
    abs += e;
    ++points;
    if (actual != 0) {
      ape += e / std::abs(actual);
      ++nonzero;
    }
    const double denom = std::abs(forecast) + std::abs(actual);
    sape += denom > 0 ? 2 * e / denom : 0;
  }
  double mae() const { return points ? abs / points : NAN; }
  double mape() const { return nonzero ? 100 * ape / nonzero : NAN; }
  double smape() const { return points ? 100 * sape / points : NAN; }
};

// Stderr progress: redrawn in place on a terminal, a line per quarter otherwise.
class DemandProgress {
 public:
  explicit DemandProgress(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}
  void Reading(uint64_t done, uint64_t total, uint64_t events) {
    if (quiet_ || !tty_ || total == 0) return;
    std::fprintf(stderr, "\rdemand: reading %5.1f%%  %llu events", 100.0 * done / total,
                 static_cast<unsigned long long>(events));
    drawn_ = true;
  }
  void Category(size_t done, size_t total) {
    if (quiet_ || total == 0) return;
    if (tty_) {
      std::fprintf(stderr, "\r\033[Kdemand: forecasting category %zu/%zu", done, total);
      drawn_ = true;
    } else if (done * 4 / total > quarter_ && done < total) {
      quarter_ = done * 4 / total;
      std::fprintf(stderr, "demand: forecasting category %zu/%zu\n", done, total);
    }
  }
  void Line(const std::string& text) {
    if (quiet_) return;
    if (drawn_) std::fputs("\r\033[K", stderr);
    drawn_ = false;
    std::fprintf(stderr, "demand: %s\n", text.c_str());
  }

 private:
  bool quiet_, tty_;
  bool drawn_ = false;
  size_t quarter_ = 0;
};

std::string Num(double v, const char* fmt = "%.3f") {
  if (std::isnan(v)) return "-";
  char buf[48];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

int RunEvalDemand(const DemandEvalOptions& o) {
  const auto format = ParseInputFormat(o.format);
  if (!format) {
    std::cerr << "persona: unknown --format '" << o.format << "'\n";
    return 2;
  }
  DemandPeriod period;
  DemandMetric metric;
  if (!ParseDemandPeriod(o.period, &period)) {
    std::cerr << "persona: --period must be hour or day\n";
    return 2;
  }
  if (!ParseDemandMetric(o.metric, &metric)) {
    std::cerr << "persona: --metric must be events or purchases\n";
    return 2;
  }
  const std::string bucket_text =
      o.bucket.empty() ? (period == DemandPeriod::kHour ? "1h" : "1d") : o.bucket;
  const int64_t bucket_ms = ParseBucket(bucket_text);
  if (bucket_ms <= 0) {
    std::cerr << "persona: --bucket must look like 5m, 1h or 1d\n";
    return 2;
  }
  if (o.horizon < 1 || o.horizon > 1000 || o.top == 0) {
    std::cerr << "persona: --horizon must be in 1..1000 and --top positive\n";
    return 2;
  }
  int season = o.season;
  if (season < 0) {
    season = bucket_ms == 3'600'000 ? 24 : bucket_ms == 86'400'000 ? 7 : 0;
  }
  // The rings span 14 days of buckets (at least 64) so that a short slice fits whole.
  CategoryDemandConfig config;
  const int window = static_cast<int>(std::max<int64_t>(64, 14 * 86'400'000LL / bucket_ms));
  if (period == DemandPeriod::kHour) {
    config.hour_bucket_ms = bucket_ms;
    config.hour_buckets = window;
    config.hour_season = season;
  } else {
    config.day_bucket_ms = bucket_ms;
    config.day_buckets = window;
    config.day_season = season;
  }
  config.max_categories = 1'000'000;
  CategoryDemand demand(config);

  DemandProgress progress(o.quiet);
  auto reader = EventReader::Open(o.input, *format, ValidationLimits());
  if (!reader.ok()) return Fail(reader.status());
  EventBatch batch;
  std::vector<EventIssue> issues;
  uint64_t events = 0, rejected = 0;
  while ((*reader)->Next(8192, &batch, &issues)) {
    for (const Event& e : batch.events) demand.Add(e);
    events += batch.events.size();
    rejected += issues.size();
    issues.clear();
    progress.Reading((*reader)->bytes_read(), (*reader)->file_size(), events);
  }
  if (!(*reader)->status().ok()) return Fail((*reader)->status());
  progress.Line(std::to_string(events) + " events read (" + std::to_string(rejected) +
                " lines rejected), " + std::to_string(demand.category_count()) + " categories");
  if (events == 0) {
    std::cerr << "persona: no events in " << o.input << "\n";
    return 1;
  }

  const int horizon = o.horizon;
  const int step = o.step > 0 ? o.step : horizon;
  // Training needs two seasons for the seasonal models, and never less than two horizons.
  const int min_train = std::max({season > 1 ? 2 * season : 0, 2 * horizon, 8});
  ErrorSums model{"holt_winters"}, naive{"naive (last value)"}, snaive{"seasonal naive"};
  model.has_interval = true;
  int methods[4] = {0, 0, 0, 0};
  uint64_t origins = 0;
  size_t evaluated_categories = 0;
  const std::vector<CategoryActivity> top = demand.Categories(o.top);
  for (size_t c = 0; c < top.size(); ++c) {
    progress.Category(c + 1, top.size());
    auto series = demand.Series(top[c].category, period, metric);
    if (!series.ok()) return Fail(series.status());
    const std::vector<double>& y = *series;
    // The bucket holding the last event is cut short wherever the input ends (rees46's head file
    // stops mid-bucket): it is no actual to score against.
    const int n = static_cast<int>(y.size()) - 1;
    bool used = false;
    for (int origin = min_train; origin + horizon <= n; origin += step) {
      used = true;
      ++origins;
      const std::span<const double> train(y.data(), origin);
      const SmoothingForecast f = Forecast(train, horizon, season);
      ++methods[static_cast<int>(f.method)];
      for (int h = 1; h <= horizon; ++h) {
        const double actual = y[origin + h - 1];
        const ForecastPoint& p = f.points[h - 1];
        model.Add(p.mean, actual);
        if (actual >= p.lo && actual <= p.hi) ++model.covered;
        naive.Add(y[origin - 1], actual);
        if (season > 1) snaive.Add(y[origin - season + (h - 1) % season], actual);
      }
    }
    if (used) ++evaluated_categories;
  }
  if (origins == 0) {
    std::cerr << "persona: no category has " << min_train + horizon << " buckets of " << bucket_text
              << " (" << min_train << " to train, " << horizon
              << " to test); use a smaller --bucket or --horizon\n";
    return 1;
  }
  std::vector<const ErrorSums*> baselines = {&naive};
  if (season > 1) baselines.push_back(&snaive);
  const ErrorSums* best = baselines[0];
  for (const ErrorSums* b : baselines) {
    if (b->mae() < best->mae()) best = b;
  }
  const double gain = 100 * (model.mae() - best->mae()) / best->mae();
  const bool wins = model.mae() < best->mae();
  progress.Line(std::to_string(evaluated_categories) + " categories, " + std::to_string(origins) +
                " origins evaluated");

  if (o.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("input").String(o.input);
    w.Key("period").String(DemandPeriodName(period));
    w.Key("metric").String(DemandMetricName(metric));
    w.Key("bucket_ms").Int(bucket_ms);
    w.Key("season").Int(season);
    w.Key("horizon").Int(horizon);
    w.Key("step").Int(step);
    w.Key("min_train").Int(min_train);
    w.Key("events").Uint(events);
    w.Key("categories").Uint(evaluated_categories);
    w.Key("origins").Uint(origins);
    w.Key("methods").BeginObject();
    for (int m = 0; m < 4; ++m) {
      w.Key(SmoothingMethodName(static_cast<SmoothingMethod>(m))).Int(methods[m]);
    }
    w.EndObject();
    w.Key("forecasters").BeginArray();
    std::vector<const ErrorSums*> all = {&model};
    all.insert(all.end(), baselines.begin(), baselines.end());
    for (const ErrorSums* s : all) {
      w.BeginObject();
      w.Key("name").String(s->name);
      w.Key("baseline").Bool(s != &model);
      w.Key("points").Uint(s->points);
      w.Key("mae").Double(s->mae());
      w.Key("mape").Double(s->mape());
      w.Key("smape").Double(s->smape());
      if (s->has_interval) w.Key("interval_coverage").Double(double(s->covered) / s->points);
      w.EndObject();
    }
    w.EndArray();
    w.Key("best_baseline").String(best->name);
    w.Key("beats_best_baseline").Bool(wins);
    w.Key("mae_change_vs_best_baseline_pct").Double(gain);
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }

  std::printf(
      "Demand forecast, %s per %s bucket, top %zu categories, %llu origins, horizon %d, "
      "season %d\n\n",
      std::string(DemandMetricName(metric)).c_str(), bucket_text.c_str(), evaluated_categories,
      static_cast<unsigned long long>(origins), horizon, season);
  std::printf(
      "| forecaster | MAE | MAPE %% (actual > 0) | sMAPE %% | 95%% interval coverage | "
      "vs best baseline (MAE) |\n|---|---|---|---|---|---|\n");
  std::printf("| %s | %s | %s | %s | %s | %s |\n", model.name.c_str(), Num(model.mae()).c_str(),
              Num(model.mape(), "%.1f").c_str(), Num(model.smape(), "%.1f").c_str(),
              Num(100.0 * model.covered / model.points, "%.1f%%").c_str(),
              (std::string(wins ? "wins, " : "LOSES to ") + best->name + " " + Num(gain, "%+.1f%%"))
                  .c_str());
  for (const ErrorSums* b : baselines) {
    std::printf("| %s | %s | %s | %s | - | baseline |\n", b->name.c_str(), Num(b->mae()).c_str(),
                Num(b->mape(), "%.1f").c_str(), Num(b->smape(), "%.1f").c_str());
  }
  std::printf("\nmethods chosen: simple %d, holt %d, seasonal %d, holt_winters %d\n", methods[0],
              methods[1], methods[2], methods[3]);
  return 0;
}

}  // namespace

void RegisterDemandCommands(Registry& r) {
  CLI::App* eval = r.app().get_subcommand("eval");
  auto o = std::make_shared<DemandEvalOptions>();
  CLI::App* cmd = eval->add_subcommand(
      "demand", "Rolling-origin evaluation of the category demand forecast vs naive baselines");
  cmd->add_option("--input", o->input, "Event file")->required();
  cmd->add_option("--format", o->format, "jsonl, csv, taobao, rees46, retailrocket")
      ->capture_default_str();
  cmd->add_option("--period", o->period, "hour | day: which ring of counters")
      ->capture_default_str();
  cmd->add_option("--metric", o->metric, "events | purchases")->capture_default_str();
  cmd->add_option("--bucket", o->bucket, "Bucket width: 5m, 1h, 1d, ... (default 1h / 1d)");
  cmd->add_option("--top", o->top, "Most active categories evaluated")->capture_default_str();
  cmd->add_option("--horizon", o->horizon, "Buckets forecast from each origin")
      ->capture_default_str();
  cmd->add_option("--season", o->season,
                  "Season length in buckets (default 24 for 1h, 7 for 1d, none otherwise)");
  cmd->add_option("--step", o->step, "Buckets between origins (default: the horizon)");
  cmd->add_flag("--json", o->json, "Print JSON instead of the table");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress output");
  r.AddExisting(cmd, [o] { return RunEvalDemand(*o); });
}

}  // namespace persona::cli
