// `persona dataset`: a point-in-time training set (predict/point_in_time.h) as CSV, from an event
// file or a data directory's log, with a per-cutoff summary of the labels on stderr.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/time_util.h"
#include "predict/event_log.h"
#include "predict/point_in_time.h"

namespace persona::cli {
namespace {

struct DatasetCli {
  std::string input;
  std::string format;
  EngineOptions engine;
  std::vector<std::string> cutoffs;
  std::string horizon;
  std::string active_within;
  std::string out;
  bool quiet = false;
};

bool AllDigits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// A point in time: ISO-8601 (a missing zone means UTC) or epoch milliseconds.
std::optional<int64_t> ParseTimeArg(const std::string& s) {
  if (AllDigits(s)) return std::stoll(s);
  return ParseIsoTime(s);
}

// A duration: "30m", "2h", "2d", ... or plain milliseconds (ParseDuration alone would read a bare
// number as seconds, which is not what the other time flags of this command take).
std::optional<int64_t> ParseSpanArg(const std::string& s) {
  if (AllDigits(s)) return std::stoll(s);
  return ParseDuration(s);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string Percent(uint64_t part, uint64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", whole ? 100.0 * part / whole : 0.0);
  return buf;
}

int RunDataset(const DatasetCli& o) {
  if (o.input.empty() == o.engine.data_dir.empty()) {
    std::cerr
        << "persona: dataset needs exactly one of --input FILE (with --format) or --data DIR\n";
    return 2;
  }
  std::optional<InputFormat> format;
  if (!o.input.empty()) {
    format = ParseInputFormat(o.format);
    if (!format) {
      std::cerr << "persona: --format: '" << o.format
                << "' is not one of jsonl, csv, taobao, rees46, retailrocket, sequence\n";
      return 2;
    }
  }
  PointInTimeOptions options;
  for (const std::string& c : o.cutoffs) {
    const auto t = ParseTimeArg(c);
    if (!t) {
      std::cerr << "persona: --cutoff: cannot parse '" << c
                << "' (expected ISO-8601 such as 2017-12-01T00:00:00Z, or epoch ms)\n";
      return 2;
    }
    options.cutoffs_ms.push_back(*t);
  }
  const auto horizon = ParseSpanArg(o.horizon);
  if (!horizon || *horizon <= 0) {
    std::cerr << "persona: --horizon: '" << o.horizon
              << "' is not a positive duration (such as 30m, 2h, 2d, or ms)\n";
    return 2;
  }
  options.horizon_ms = *horizon;
  if (!o.active_within.empty()) {
    const auto within = ParseSpanArg(o.active_within);
    if (!within) {
      std::cerr << "persona: --active-within: '" << o.active_within
                << "' is not a duration (such as 30m, 2h, 7d, or ms)\n";
      return 2;
    }
    options.active_within_ms = *within;
  }
  if (!o.engine.config_file.empty()) {
    auto config = MakeConfig(o.engine);
    if (!config.ok()) return Fail(config.status());
    options.profile = config->profile;
  }

  const auto read_start = std::chrono::steady_clock::now();
  absl::StatusOr<EventLog> log = absl::UnknownError("unread");
  if (format) {
    const bool tty = isatty(STDERR_FILENO) != 0;
    int shown = -1;
    log = EventLog::FromFile(o.input, *format, [&](uint64_t done, uint64_t total) {
      if (o.quiet || total == 0) return;
      const int percent = static_cast<int>(100 * done / total);
      // A redrawn line on a terminal; in logs, a line per quarter.
      if (tty && percent != shown) {
        std::fprintf(stderr, "\rreading %s %d%%", o.input.c_str(), percent);
        shown = percent;
      } else if (!tty && percent / 25 > shown / 25 && percent < 100) {
        std::fprintf(stderr, "reading %s %d%%\n", o.input.c_str(), percent);
        shown = percent;
      }
    });
    if (!o.quiet && tty && shown >= 0) std::fputs("\r\033[K", stderr);
  } else {
    log = EventLog::FromDataDir(o.engine.data_dir);
  }
  if (!log.ok()) return Fail(log.status());
  const double read_seconds = Seconds(read_start);

  const auto build_start = std::chrono::steady_clock::now();
  auto set = BuildPointInTime(*log, options);
  if (!set.ok()) {
    if (absl::IsInvalidArgument(set.status())) {
      // Every InvalidArgument here is about the cutoffs or the horizon the user gave.
      const std::string message(set.status().message());
      std::cerr << "persona: "
                << (message.find("horizon") != std::string::npos ? "--horizon: " : "--cutoff: ")
                << message << "\n";
      return 2;
    }
    return Fail(set.status());
  }
  const double build_seconds = Seconds(build_start);

  const std::string csv = PointInTimeCsv(*set);
  if (o.out.empty()) {
    std::fwrite(csv.data(), 1, csv.size(), stdout);
    if (std::fflush(stdout) != 0) {
      std::cerr << "persona: writing the CSV to stdout failed\n";
      return 1;
    }
  } else {
    std::ofstream out(o.out, std::ios::binary | std::ios::trunc);
    out.write(csv.data(), static_cast<std::streamsize>(csv.size()));
    out.close();
    if (!out) {
      std::cerr << "persona: --out: cannot write " << o.out << "\n";
      return 1;
    }
  }

  if (!o.quiet) {
    std::fprintf(stderr,
                 "persona: %zu events (%llu skipped) read in %.2f s; %zu rows x %zu features "
                 "built in %.2f s (%llu anomaly-flagged and %llu other rows excluded)\n",
                 log->events().size(), static_cast<unsigned long long>(log->skipped()),
                 read_seconds, set->rows.size(), set->feature_names.size(), build_seconds,
                 static_cast<unsigned long long>(set->anomalous),
                 static_cast<unsigned long long>(set->excluded));
    struct Counts {
      uint64_t rows = 0, purchased = 0, churned = 0;
    };
    std::map<int64_t, Counts> per_cutoff;
    for (const int64_t c : options.cutoffs_ms) per_cutoff[c];  // cutoffs without rows show too
    for (const LabeledRow& r : set->rows) {
      Counts& c = per_cutoff[r.cutoff_ms];
      ++c.rows;
      c.purchased += r.purchased;
      c.churned += r.churned;
    }
    for (const auto& [cutoff, c] : per_cutoff) {
      std::fprintf(stderr, "  cutoff %s: %llu rows, purchased %llu (%s), churned %llu (%s)\n",
                   FormatIsoTime(cutoff).c_str(), static_cast<unsigned long long>(c.rows),
                   static_cast<unsigned long long>(c.purchased),
                   Percent(c.purchased, c.rows).c_str(), static_cast<unsigned long long>(c.churned),
                   Percent(c.churned, c.rows).c_str());
      if (cutoff + options.horizon_ms > log->max_ts_ms()) {
        // The log stops inside the label window: users look churned (and not purchasing) only
        // because their future was not recorded.
        std::fprintf(stderr,
                     "  warning: the label window of %s ends after the last event (%s); its "
                     "labels are incomplete\n",
                     FormatIsoTime(cutoff).c_str(), FormatIsoTime(log->max_ts_ms()).c_str());
      }
    }
  }
  return 0;
}

}  // namespace

void RegisterDataset(Registry& r) {
  auto o = std::make_shared<DatasetCli>();
  CLI::App* cmd = r.Add("dataset",
                        "Build a point-in-time training set (features at each cutoff, labels "
                        "from the horizon after it) as CSV",
                        [o] { return RunDataset(*o); });
  cmd->add_option("--input", o->input, "Event file to replay");
  cmd->add_option("--format", o->format,
                  "Format of --input: jsonl, csv, taobao, rees46, retailrocket, sequence");
  cmd->add_option("--data", o->engine.data_dir, "Data directory whose log to replay (read-only)");
  cmd->add_option("--config", o->engine.config_file, "TOML config file ([profile] settings)");
  cmd->add_option("--cutoff", o->cutoffs,
                  "Cutoff time, ISO-8601 UTC (2017-12-01T00:00:00Z) or epoch ms; repeatable")
      ->required();
  cmd->add_option("--horizon", o->horizon, "Label window after each cutoff: 30m, 2h, 2d, or ms")
      ->required();
  cmd->add_option(
      "--active-within", o->active_within,
      "Leave out users not seen within this span before the cutoff (default: keep all)");
  cmd->add_option("--out", o->out, "CSV file to write (default: stdout)");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress or summary on stderr");
}

}  // namespace persona::cli
