// `persona eval-online --data DIR`: the A/B report of recommendation variants, from the
// impressions log the server writes and the events in the log that carry a rec_id. Opens the
// store read-only, so it runs beside a live server.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "engine/batch_record.h"
#include "recommend/online_eval.h"
#include "recommend/recommend_config.h"
#include "store/store.h"

namespace persona::cli {
namespace {

struct EvalOnlineOptions {
  std::string data_dir;
  std::string config_file;
  std::string impressions;
  bool json = false;
};

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f%%", v * 100);
  return buf;
}

std::string PValue(double p) {
  if (std::isnan(p)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", p);
  return buf;
}

int Run(const EvalOnlineOptions& o) {
  RecommendConfig config;
  if (!o.config_file.empty()) {
    if (absl::Status s = LoadRecommendConfigFile(o.config_file, &config); !s.ok()) {
      std::cerr << "persona: " << s.message() << "\n";
      return 2;
    }
  }
  std::string impressions = o.impressions;
  if (impressions.empty()) {
    if (config.impressions_log.empty()) {
      std::cerr << "persona: recommend.impressions_log is off in the config; pass --impressions\n";
      return 2;
    }
    impressions = (std::filesystem::path(o.data_dir) / config.impressions_log).string();
  }
  std::ifstream in(impressions);
  if (!in) {
    std::cerr << "persona: cannot read the impressions log " << impressions
              << " (the server writes it when it serves recommendations)\n";
    return 2;
  }
  OnlineEvaluator eval;
  std::string line;
  uint64_t line_no = 0, skipped = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    if (absl::Status s = eval.AddImpression(line); !s.ok()) {
      // A torn last line after a crash must not hide the rest of the report.
      std::cerr << "persona: " << impressions << ":" << line_no << ": " << s.message()
                << " (line skipped)\n";
      ++skipped;
    }
  }
  auto store = Store::OpenReadOnly(o.data_dir);
  if (!store.ok()) return Fail(store.status());
  std::vector<RecordedEvent> events;
  uint64_t scanned = 0;
  for (uint32_t p = 0; p < (*store)->partitions(); ++p) {
    auto it = (*store)->ReadLog(p, 1);
    for (; it->Valid(); it->Next()) {
      if (!DecodeBatchRecord(it->record(), &events)) {
        std::cerr << "persona: partition " << p << ": corrupt log record " << it->seq()
                  << " (skipped)\n";
        continue;
      }
      for (const RecordedEvent& r : events) {
        if (IsRedacted(r.event)) continue;
        ++scanned;
        eval.AddEvent(r.event);
      }
    }
    if (!it->status().ok()) return Fail(it->status());
  }
  const std::vector<VariantOutcome> report = eval.Report();
  if (o.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("impressions_log").String(impressions);
    w.Key("skipped_lines").Uint(skipped);
    w.Key("events_scanned").Uint(scanned);
    w.Key("unmatched_events").Uint(eval.unmatched_events());
    w.Key("other_item_events").Uint(eval.other_item_events());
    w.Key("variants").BeginArray();
    for (const VariantOutcome& v : report) {
      w.BeginObject();
      w.Key("name").String(v.name);
      w.Key("responses").Uint(v.responses);
      w.Key("items_shown").Uint(v.items_shown);
      w.Key("clicked").Uint(v.clicked);
      w.Key("carted").Uint(v.carted);
      w.Key("converted").Uint(v.converted);
      w.Key("revenue").Double(v.revenue);
      w.Key("ctr").Double(v.ctr);
      w.Key("ctr_ci95").BeginArray();
      w.Double(v.ctr_low);
      w.Double(v.ctr_high);
      w.EndArray();
      w.Key("conversion").Double(v.conversion);
      w.Key("conversion_ci95").BeginArray();
      w.Double(v.conversion_low);
      w.Double(v.conversion_high);
      w.EndArray();
      w.Key("ctr_p_vs_first");
      std::isnan(v.ctr_p) ? w.Null() : w.Double(v.ctr_p);
      w.Key("conversion_p_vs_first");
      std::isnan(v.conversion_p) ? w.Null() : w.Double(v.conversion_p);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::cout << w.str() << "\n";
    return 0;
  }
  std::cout << "| variant | responses | items | CTR [95% CI] | conversion [95% CI] | revenue | "
               "p CTR vs "
            << (report.empty() ? "-" : report[0].name) << " | p conv. |\n"
            << "|---|---|---|---|---|---|---|---|\n";
  for (const VariantOutcome& v : report) {
    char revenue[32];
    std::snprintf(revenue, sizeof(revenue), "%.2f", v.revenue);
    std::cout << "| " << v.name << " | " << v.responses << " | " << v.items_shown << " | "
              << Percent(v.ctr) << " [" << Percent(v.ctr_low) << ", " << Percent(v.ctr_high)
              << "] | " << Percent(v.conversion) << " [" << Percent(v.conversion_low) << ", "
              << Percent(v.conversion_high) << "] | " << revenue << " | " << PValue(v.ctr_p)
              << " | " << PValue(v.conversion_p) << " |\n";
  }
  std::cout << scanned << " logged events scanned; " << eval.unmatched_events()
            << " carried a rec_id no logged response has, " << eval.other_item_events()
            << " named an item the response did not show";
  if (skipped > 0) std::cout << "; " << skipped << " impression line(s) skipped";
  std::cout << "\n";
  return 0;
}

}  // namespace

void RegisterEvalOnline(Registry& r) {
  auto o = std::make_shared<EvalOnlineOptions>();
  CLI::App* cmd = r.Add("eval-online",
                        "A/B report of recommendation variants: CTR and conversion per variant "
                        "from served rec_ids and the events carrying them",
                        [o] { return Run(*o); });
  cmd->add_option("--data", o->data_dir, "Data directory (opened read-only)")->required();
  cmd->add_option("--config", o->config_file, "TOML config (for recommend.impressions_log)");
  cmd->add_option("--impressions", o->impressions,
                  "Impressions log (default <data>/<recommend.impressions_log>)");
  cmd->add_flag("--json", o->json, "Print JSON instead of a table");
}

}  // namespace persona::cli
