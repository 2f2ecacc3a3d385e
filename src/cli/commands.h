// Subcommands of the `persona` CLI. Each Register* adds one or more subcommands to the registry;
// Registry::Run executes the one that was parsed and returns the process exit code
// (0 ok, 1 runtime failure, 2 bad input/usage).
#pragma once

#include <CLI/CLI.hpp>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audience/saved_audiences.h"
#include "engine/config.h"
#include "engine/engine.h"
#include "kafka/profile_change_sink.h"
#include "predict/predictor.h"
#include "recommend/recommender.h"

namespace persona::cli {

// Options shared by every command that opens a data directory.
struct EngineOptions {
  std::string data_dir;
  std::string config_file;
  std::string sync;
  std::string tag_rules;
  uint32_t partitions = 0;
  bool quiet = false;
  // Route users with Kafka's partitioner (set by `serve` when a Kafka source is configured).
  bool kafka_routing = false;
  std::string kafka_partitioner = "murmur2";
};

class Registry {
 public:
  explicit Registry(CLI::App& app) : app_(app) {}
  CLI::App* Add(const std::string& name, const std::string& help, std::function<int()> run);
  // Registers a subcommand created elsewhere (nested subcommands).
  void AddExisting(CLI::App* cmd, std::function<int()> run) {
    commands_.emplace_back(cmd, std::move(run));
  }
  int Run();
  CLI::App& app() { return app_; }

 private:
  CLI::App& app_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

// Adds --data, --config, --sync, --partitions, --tag-rules to `cmd`.
void AddEngineOptions(CLI::App* cmd, EngineOptions* opts);
// Builds the config: defaults <- config file <- flags.
absl::StatusOr<EngineConfig> MakeConfig(const EngineOptions& opts);
// The operators of Persona's stream pipeline (engine/stream_operator.h), in pipeline order after
// the built-in stages: predictions (enrichment, demand, keywords), recommendations (trending,
// item-CF, attribution), saved audiences. Every command that opens a data directory opens it with
// all of them, so that a replay or a bulk import builds exactly the state live traffic would, and
// no operator's checkpointed state falls behind the log.
struct StandardOperators {
  std::shared_ptr<Predictor> predictor;
  std::shared_ptr<Recommender> recommender;
  std::shared_ptr<SavedAudiences> audiences;
  // Last in the pipeline, inert unless serve attaches a profile topic.
  std::shared_ptr<ProfileChangeSink> profile_changes;
};
// Opens the engine with the standard operators (kept alive by the engine; handed to the caller
// through `operators` when given), printing recovery progress to stderr unless quiet. The
// predictor is bound to the engine; starting the recommender's model watcher and attaching the
// saved audiences is the caller's choice (serve does both).
absl::StatusOr<std::unique_ptr<Engine>> OpenEngine(const EngineOptions& opts,
                                                   StandardOperators* operators = nullptr);
// "1.23M", "45.6k" or "789": rates and counts in progress lines.
std::string HumanCount(double v);
// Blocks SIGINT and SIGTERM in the calling thread (threads started later inherit the mask) and
// ignores SIGPIPE; returns the set, for sigwait/sigtimedwait on a thread of the caller's choice,
// so that shutdown runs as ordinary code with no async-signal-safety puzzles.
sigset_t BlockStopSignals();
// Prints "persona: <message>" to stderr and returns the exit code for the status.
int Fail(const absl::Status& s);

void RegisterImport(Registry& r);
void RegisterIngest(Registry& r);
void RegisterRead(Registry& r);        // profile, timeline, stats, checkpoint
void RegisterDeadLetter(Registry& r);  // deadletter list|export|purge
void RegisterGen(Registry& r);
void RegisterServe(Registry& r);          // serve, apikey new
void RegisterReplay(Registry& r);         // replay (event files to a running server)
void RegisterKafkaCommands(Registry& r);  // kafka-produce, kafka-mock
void RegisterTrain(Registry& r);          // train sasrec
void RegisterEval(Registry& r);           // eval (offline next-item protocol)
void RegisterEvalOnline(Registry& r);     // eval-online (A/B report of recommendation variants)
// Issue 5 (predictions). Each adds subcommands under the existing `train` and `eval` commands
// (r.app().get_subcommand("train") / ("eval")), so they must be called after RegisterTrain and
// RegisterEval.
void RegisterDataset(Registry& r);            // dataset (point-in-time training sets)
void RegisterGbdtCommands(Registry& r);       // train|eval propensity, churn
void RegisterSegmentCommands(Registry& r);    // train|eval segments, next-category
void RegisterSentimentCommands(Registry& r);  // train|eval sentiment
void RegisterDemandCommands(Registry& r);     // eval demand

}  // namespace persona::cli
