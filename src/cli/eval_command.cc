// `persona eval`: the offline next-item protocol (eval/sequence_eval.h) on a sequence file, for
// trained SASRec artifacts and the built-in baselines. Tables go to stdout (markdown), progress to
// stderr, every number to --json.
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "eval/sequence_data.h"
#include "eval/sequence_eval.h"
#include "recommend/item_cf_scorer.h"
#include "recommend/sasrec_model.h"
#include "recommend/sasrec_scorer.h"

namespace persona::cli {
namespace {

struct EvalCli {
  std::string input;
  std::vector<std::string> models;
  std::vector<std::string> baselines = {"popularity", "itemcf"};
  std::vector<uint64_t> seeds = {1, 2, 3, 4, 5};
  uint32_t negatives = 100;
  std::vector<uint32_t> ks = {1, 5, 10, 20};
  bool no_full = false;
  bool validation = false;
  uint32_t max_users = 0;
  uint32_t threads = 2;
  std::string json;
  bool quiet = false;
  ItemCfScorerOptions itemcf;
};

// One evaluated model: the result plus how long its scorer took to build.
struct Evaluated {
  SequenceEvalResult result;
  double build_seconds = 0;
  std::string source;  // model file, or "baseline"
};

// "users done" redrawn in place on a terminal; a line per quarter otherwise, so logs stay short.
class ProgressLine {
 public:
  ProgressLine(std::string label, bool quiet)
      : label_(std::move(label)), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

  void Update(uint64_t done, uint64_t total) {
    if (quiet_ || total == 0) return;
    if (tty_) {
      std::fprintf(stderr, "\r%s: %llu/%llu users", label_.c_str(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
      drawn_ = true;
      return;
    }
    const uint64_t quarter = done * 4 / total;
    if (quarter > quarter_ && quarter < 4) {
      std::fprintf(stderr, "%s: %llu/%llu users\n", label_.c_str(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    }
    quarter_ = std::max(quarter_, quarter);
  }
  void Done(const Evaluated& e) {
    if (quiet_) return;
    if (drawn_) std::fputs("\r\033[K", stderr);
    std::fprintf(stderr, "%s: %llu users, scorer built in %.1f s, evaluated in %.1f s\n",
                 label_.c_str(), static_cast<unsigned long long>(e.result.users), e.build_seconds,
                 e.result.seconds);
  }

 private:
  std::string label_;
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  uint64_t quarter_ = 0;
};

std::string Cell(double mean, double std, bool with_std) {
  char buf[64];
  if (with_std) {
    std::snprintf(buf, sizeof(buf), "%.4f ± %.4f", mean, std);
  } else {
    std::snprintf(buf, sizeof(buf), "%.4f", mean);
  }
  return buf;
}

void PrintTable(const std::vector<Evaluated>& all, const std::vector<uint32_t>& ks, bool sampled) {
  std::string header = "| model |";
  std::string rule = "|---|";
  for (uint32_t k : ks) {
    header += " HR@" + std::to_string(k) + " | NDCG@" + std::to_string(k) + " |";
    rule += "---|---|";
  }
  header += sampled ? " seconds |" : "";
  rule += sampled ? "---|" : "";
  std::printf("%s\n%s\n", header.c_str(), rule.c_str());
  for (const Evaluated& e : all) {
    std::string row = "| " + e.result.model + " |";
    for (uint32_t k : ks) {
      const MetricsAtK* m = sampled ? e.result.SampledAt(k) : e.result.FullAt(k);
      if (m == nullptr) {
        row += " | |";
        continue;
      }
      row += " " + Cell(m->hr, m->hr_std, sampled) + " | " + Cell(m->ndcg, m->ndcg_std, sampled) +
             " |";
    }
    if (sampled) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), " %.1f |", e.build_seconds + e.result.seconds);
      row += buf;
    }
    std::printf("%s\n", row.c_str());
  }
}

void WriteMetrics(JsonWriter& w, const std::vector<MetricsAtK>& metrics, bool with_std) {
  w.BeginArray();
  for (const MetricsAtK& m : metrics) {
    w.BeginObject();
    w.Key("k").Uint(m.k);
    w.Key("hr").Double(m.hr);
    w.Key("ndcg").Double(m.ndcg);
    if (with_std) {
      w.Key("hr_std").Double(m.hr_std);
      w.Key("ndcg_std").Double(m.ndcg_std);
    }
    w.EndObject();
  }
  w.EndArray();
}

// A float knob as JSON in its own shortest form (0.7, not 0.699999988079071).
void FloatValue(JsonWriter& w, float v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc() || !std::isfinite(v)) {
    w.Double(v);
    return;
  }
  w.Raw(std::string_view(buf, end - buf));
}

std::string ResultsJson(const EvalCli& o, const SequenceDataset& data,
                        const std::vector<Evaluated>& all) {
  JsonWriter w;
  w.BeginObject();
  w.Key("input").String(o.input);
  w.Key("protocol").String(o.validation ? "validation" : "test");
  w.Key("users").Uint(data.sequences.size());
  w.Key("items").Uint(data.num_items);
  w.Key("interactions").Uint(data.interactions());
  w.Key("negatives").Uint(o.negatives);
  w.Key("seeds").BeginArray();
  if (o.negatives > 0) {
    for (uint64_t s : o.seeds) w.Uint(s);
  }
  w.EndArray();
  w.Key("max_users").Uint(o.max_users);
  w.Key("itemcf").BeginObject();
  w.Key("max_neighbours").Uint(o.itemcf.cf.max_neighbours);
  w.Key("window").Uint(o.itemcf.cf.window);
  FloatValue(w.Key("distance_decay"), o.itemcf.cf.distance_decay);
  FloatValue(w.Key("shrink"), o.itemcf.cf.shrink);
  w.Key("depth").Uint(o.itemcf.depth);
  FloatValue(w.Key("recency"), o.itemcf.recency);
  w.EndObject();
  w.Key("models").BeginArray();
  for (const Evaluated& e : all) {
    w.BeginObject();
    w.Key("model").String(e.result.model);
    w.Key("source").String(e.source);
    w.Key("users").Uint(e.result.users);
    w.Key("build_seconds").Double(e.build_seconds);
    w.Key("eval_seconds").Double(e.result.seconds);
    w.Key("sampled");
    WriteMetrics(w, e.result.sampled, true);
    w.Key("full");
    WriteMetrics(w, e.result.full, false);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int RunEval(EvalCli& o) {
  if (o.input.empty()) {
    std::cerr << "persona: eval needs --input (next-item evaluation) or a subcommand; see "
                 "`persona eval --help`\n";
    return 2;
  }
  if (o.ks.empty()) {
    std::cerr << "persona: --k needs at least one cut-off\n";
    return 2;
  }
  for (uint32_t k : o.ks) {
    if (k == 0) {
      std::cerr << "persona: --k values must be positive\n";
      return 2;
    }
  }
  if (o.negatives > 0 && o.seeds.empty()) {
    std::cerr << "persona: --seeds needs at least one seed (or --negatives 0)\n";
    return 2;
  }
  if (o.baselines.size() == 1 && o.baselines[0] == "none") o.baselines.clear();
  for (const std::string& b : o.baselines) {
    if (b != "popularity" && b != "itemcf") {
      std::cerr << "persona: unknown baseline '" << b << "' (popularity, itemcf or none)\n";
      return 2;
    }
  }
  if (o.models.empty() && o.baselines.empty()) {
    std::cerr << "persona: nothing to evaluate: give --model or --baselines\n";
    return 2;
  }

  auto read = ReadSequenceFile(o.input);
  if (!read.ok()) return Fail(read.status());
  const SequenceDataset data = std::move(*read);
  uint64_t with_targets = 0;
  for (const auto& s : data.sequences) with_targets += s.size() >= 3;
  if (!o.quiet) {
    std::fprintf(stderr,
                 "persona: %s: %zu users (%llu with targets), %u items, %llu interactions; %s "
                 "protocol\n",
                 o.input.c_str(), data.sequences.size(),
                 static_cast<unsigned long long>(with_targets), data.num_items,
                 static_cast<unsigned long long>(data.interactions()),
                 o.validation ? "validation" : "test");
  }

  // Load every model before the long part, so a bad path fails at once.
  std::vector<std::pair<std::string, std::shared_ptr<const SasRecModel>>> models;
  for (const std::string& path : o.models) {
    auto model = SasRecModel::Load(path);
    if (!model.ok()) return Fail(model.status());
    models.emplace_back(path, std::move(*model));
  }

  SequenceEvalOptions options;
  options.ks = o.ks;
  options.negatives = o.negatives;
  options.seeds = o.negatives > 0 ? o.seeds : std::vector<uint64_t>{};
  options.full_ranking = !o.no_full;
  options.validation = o.validation;
  options.max_users = o.max_users;
  options.threads = std::max<uint32_t>(1, o.threads);

  std::vector<Evaluated> all;
  auto evaluate = [&](const SequenceScorer& scorer, double build_seconds, std::string source) {
    ProgressLine progress(scorer.name(), o.quiet);
    options.progress = [&](uint64_t done, uint64_t total) { progress.Update(done, total); };
    Evaluated e{EvaluateSequences(data, scorer, options), build_seconds, std::move(source)};
    options.progress = nullptr;  // it refers to `progress`, which ends here
    progress.Done(e);
    all.push_back(std::move(e));
  };

  for (const auto& [path, model] : models) {
    auto start = std::chrono::steady_clock::now();
    std::string label = "sasrec:" + std::filesystem::path(path).stem().string();
    SasRecScorer scorer(model, data, label);
    if (scorer.unknown_items() > 0 && !o.quiet) {
      std::fprintf(stderr, "persona: %s does not know %u of the %u items (they score -inf)\n",
                   path.c_str(), scorer.unknown_items(), data.num_items);
    }
    evaluate(scorer, SecondsSince(start), path);
  }
  for (const std::string& baseline : o.baselines) {
    auto start = std::chrono::steady_clock::now();
    if (baseline == "popularity") {
      PopularityScorer scorer(data);
      evaluate(scorer, SecondsSince(start), "baseline");
    } else {
      // The test protocol lets the CF learn the validation items too: the model being compared
      // sees them in the history at test time.
      ItemCfScorer scorer(data, /*include_valid=*/!o.validation, o.itemcf);
      evaluate(scorer, SecondsSince(start), "baseline");
    }
  }

  const uint64_t users = all.empty() ? 0 : all.front().result.users;
  if (o.negatives > 0) {
    std::printf(
        "## Sampled: target vs %u random unseen items (mean ± std over %zu seeds), %s "
        "protocol, %llu users\n\n",
        o.negatives, o.seeds.size(), o.validation ? "validation" : "test",
        static_cast<unsigned long long>(users));
    PrintTable(all, o.ks, /*sampled=*/true);
  }
  if (!o.no_full) {
    std::printf("%s## Full ranking: target vs all items except the user's own, %llu users\n\n",
                o.negatives > 0 ? "\n" : "", static_cast<unsigned long long>(users));
    PrintTable(all, o.ks, /*sampled=*/false);
  }
  std::fflush(stdout);

  if (!o.json.empty()) {
    std::ofstream out(o.json, std::ios::binary | std::ios::trunc);
    out << ResultsJson(o, data, all) << "\n";
    out.close();
    if (!out) {
      std::cerr << "persona: cannot write " << o.json << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace

void RegisterEval(Registry& r) {
  auto o = std::make_shared<EvalCli>();
  CLI::App* cmd = r.Add("eval",
                        "Offline next-item evaluation (leave-one-out; sampled and full ranking) of "
                        "SASRec models and baselines",
                        [o] { return RunEval(*o); });
  cmd->add_option("--input", o->input,
                  "Sequence file (`user item` pairs or `user item...` lines); required unless a "
                  "subcommand (propensity, churn, next-category, segments, demand, sentiment) "
                  "is given");
  cmd->add_option("--model", o->models, "SASRec model file (repeatable)");
  cmd->add_option("--baselines", o->baselines, "Comma list: popularity, itemcf, or none")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--seeds", o->seeds, "Comma list of negative-sampling seeds")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--negatives", o->negatives, "Sampled negatives per user (0 = full ranking only)")
      ->capture_default_str();
  cmd->add_option("--k", o->ks, "Comma list of cut-offs")->delimiter(',')->capture_default_str();
  cmd->add_flag("--no-full", o->no_full, "Skip the full-ranking protocol");
  cmd->add_flag("--validation", o->validation,
                "Rank the validation item from the training items (model selection)");
  cmd->add_option("--max-users", o->max_users,
                  "Evaluate a deterministic random subset of users (0 = all)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Worker threads")->capture_default_str();
  cmd->add_option("--json", o->json, "Write every number to this JSON file");
  cmd->add_option("--itemcf-neighbours", o->itemcf.cf.max_neighbours,
                  "Item-CF: counters kept per item")
      ->capture_default_str();
  cmd->add_option("--itemcf-window", o->itemcf.cf.window,
                  "Item-CF: previous items paired with each new one")
      ->capture_default_str();
  cmd->add_option("--itemcf-decay", o->itemcf.cf.distance_decay,
                  "Item-CF: pair weight decay per step of distance")
      ->capture_default_str();
  cmd->add_option("--itemcf-shrink", o->itemcf.cf.shrink, "Item-CF: similarity shrinkage")
      ->capture_default_str();
  cmd->add_option("--itemcf-depth", o->itemcf.depth, "Item-CF: history items that score")
      ->capture_default_str();
  cmd->add_option("--itemcf-recency", o->itemcf.recency,
                  "Item-CF: weight factor per older history item")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", o->quiet, "No progress output");
}

}  // namespace persona::cli
