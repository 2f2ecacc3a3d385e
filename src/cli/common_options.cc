#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "recommend/recommend_config.h"

namespace persona::cli {

CLI::App* Registry::Add(const std::string& name, const std::string& help,
                        std::function<int()> run) {
  CLI::App* cmd = app_.add_subcommand(name, help);
  commands_.emplace_back(cmd, std::move(run));
  return cmd;
}

int Registry::Run() {
  // Latest first: a nested subcommand (`eval propensity`) is registered after its parent, and both
  // report parsed().
  for (auto it = commands_.rbegin(); it != commands_.rend(); ++it) {
    if (it->first->parsed()) return it->second();
  }
  return 2;
}

void AddEngineOptions(CLI::App* cmd, EngineOptions* opts) {
  cmd->add_option("--data", opts->data_dir, "Data directory (created if absent)")->required();
  cmd->add_option("--config", opts->config_file, "TOML config file (see config/persona.toml)");
  cmd->add_option("--sync", opts->sync, "Durability: always | interval | none");
  cmd->add_option("--partitions", opts->partitions,
                  "Partitions for a new data directory (default: number of cores)");
  cmd->add_option("--tag-rules", opts->tag_rules, "Tag rules file (name: condition per line)");
  cmd->add_flag("--quiet,-q", opts->quiet, "No progress output");
}

absl::StatusOr<EngineConfig> MakeConfig(const EngineOptions& opts) {
  EngineConfig config;
  if (!opts.config_file.empty()) {
    if (auto s = LoadConfigFile(opts.config_file, &config); !s.ok()) return s;
  }
  config.data_dir = opts.data_dir;
  if (!opts.sync.empty()) {
    auto p = ParseSyncPolicy(opts.sync);
    if (!p.ok()) return p.status();
    config.sync = *p;
  }
  if (opts.partitions) config.partitions = opts.partitions;
  if (opts.kafka_routing) config.kafka_routing = true;
  config.kafka_partitioner = opts.kafka_partitioner;
  if (!opts.tag_rules.empty()) config.tag_rules_file = opts.tag_rules;
  return config;
}

absl::StatusOr<std::unique_ptr<Engine>> OpenEngine(const EngineOptions& opts,
                                                   StandardOperators* operators) {
  auto config = MakeConfig(opts);
  if (!config.ok()) return config.status();
  const bool quiet = opts.quiet;
  RecommendConfig rec_config;
  if (!opts.config_file.empty()) {
    if (absl::Status s = LoadRecommendConfigFile(opts.config_file, &rec_config); !s.ok()) {
      return s;
    }
  }
  StandardOperators ops;
  ops.recommender = std::make_shared<Recommender>(rec_config, config->data_dir);
  ops.predictor = std::make_shared<Predictor>(config->data_dir, ops.recommender.get());
  auto audiences = SavedAudiences::Open(ops.predictor.get(), config->data_dir + "/audiences.json");
  if (!audiences.ok()) return audiences.status();
  ops.audiences = std::move(*audiences);
  ops.profile_changes = std::make_shared<ProfileChangeSink>();
  auto engine = Engine::Open(
      *config,
      [quiet](std::string_view line) {
        if (!quiet) std::cerr << "persona: " << line << "\n";
      },
      {ops.predictor.get(), ops.recommender.get(), ops.audiences.get(), ops.profile_changes.get()});
  if (!engine.ok()) return engine.status();
  ops.predictor->Bind(engine->get());
  (*engine)->KeepAlive(ops.predictor);
  (*engine)->KeepAlive(ops.recommender);
  (*engine)->KeepAlive(ops.audiences);
  (*engine)->KeepAlive(ops.profile_changes);
  if (operators != nullptr) *operators = std::move(ops);
  return engine;
}

std::string HumanCount(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

int Fail(const absl::Status& s) {
  std::cerr << "persona: " << s.message() << "\n";
  return absl::IsInvalidArgument(s) || absl::IsNotFound(s) ? 2 : 1;
}

}  // namespace persona::cli
