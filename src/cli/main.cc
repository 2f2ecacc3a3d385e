// `persona`: the command that drives the engine. Each subcommand lives in its own file
// (import_command.cc, ...); this file wires them to CLI11.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"persona: real-time user profiles from e-commerce behaviour events"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every subcommand");
  persona::cli::Registry registry(app);
  persona::cli::RegisterImport(registry);
  persona::cli::RegisterIngest(registry);
  persona::cli::RegisterRead(registry);
  persona::cli::RegisterDeadLetter(registry);
  persona::cli::RegisterGen(registry);
  persona::cli::RegisterServe(registry);
  persona::cli::RegisterReplay(registry);
  persona::cli::RegisterKafkaCommands(registry);
  persona::cli::RegisterTrain(registry);
  persona::cli::RegisterEval(registry);
  persona::cli::RegisterEvalOnline(registry);
  persona::cli::RegisterDataset(registry);
  persona::cli::RegisterGbdtCommands(registry);
  persona::cli::RegisterSegmentCommands(registry);
  persona::cli::RegisterSentimentCommands(registry);
  persona::cli::RegisterDemandCommands(registry);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return registry.Run();
}
