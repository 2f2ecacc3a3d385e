// `persona gen`: writes a synthetic event stream with planted ground truth.
#include <iostream>

#include "cli/commands.h"
#include "gen/generator.h"

namespace persona::cli {
namespace {

struct GenCli {
  GenOptions gen;
  std::string format = "jsonl";
  std::string out = "-";
  std::string truth;
  bool quiet = false;
};

int RunGenCli(GenCli& o) {
  if (o.format == "jsonl")
    o.gen.format = GenOptions::Format::kJsonl;
  else if (o.format == "taobao")
    o.gen.format = GenOptions::Format::kTaobao;
  else if (o.format == "csv")
    o.gen.format = GenOptions::Format::kCsv;
  else {
    std::cerr << "persona: --format must be jsonl, csv or taobao\n";
    return 2;
  }
  absl::Status s = RunGen(o.gen, o.out, o.truth, !o.quiet);
  if (!s.ok()) return Fail(s);
  return 0;
}

}  // namespace

void RegisterGen(Registry& r) {
  auto o = std::make_shared<GenCli>();
  CLI::App* cmd = r.Add("gen", "Write a synthetic behaviour stream with planted ground truth",
                        [o] { return RunGenCli(*o); });
  cmd->add_option("--events", o->gen.events, "Events to write")->capture_default_str();
  cmd->add_option("--users", o->gen.users, "Users")->capture_default_str();
  cmd->add_option("--items", o->gen.items, "Items")->capture_default_str();
  cmd->add_option("--seed", o->gen.seed, "Random seed")->capture_default_str();
  cmd->add_option("--start-ms", o->gen.start_ms, "First event time (epoch ms)")
      ->capture_default_str();
  cmd->add_option("--span-ms", o->gen.span_ms, "Time span (ms)")->capture_default_str();
  cmd->add_option("--shift-fraction", o->gen.shift_fraction, "Users with an interest shift")
      ->capture_default_str();
  cmd->add_option("--late-fraction", o->gen.late_fraction, "Out-of-order events")
      ->capture_default_str();
  cmd->add_option("--high-spender-fraction", o->gen.high_spender_fraction,
                  "Users planted as high spenders")
      ->capture_default_str();
  cmd->add_option("--bot-fraction", o->gen.bot_fraction, "Users planted as bots")
      ->capture_default_str();
  cmd->add_option("--top-categories", o->gen.top_categories, "Top-level categories")
      ->capture_default_str();
  cmd->add_option("--item-zipf", o->gen.item_zipf, "Zipf exponent of item popularity")
      ->capture_default_str();
  cmd->add_option("--format", o->format, "jsonl | csv | taobao")->capture_default_str();
  cmd->add_option("--out", o->out, "Output file ('-' = stdout)")->capture_default_str();
  cmd->add_option("--truth", o->truth, "Ground-truth file (JSON lines)");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress output");
}

}  // namespace persona::cli
