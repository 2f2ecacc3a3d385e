// `persona profile`, `persona timeline`, `persona stats`, `persona checkpoint`.
#include <iostream>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "engine/stats_json.h"
#include "profile/profile_json.h"
#include "recommend/recommender.h"

namespace persona::cli {
namespace {

struct ProfileOptions {
  EngineOptions engine;
  std::string user;
  std::string sections = "all";
};

int RunProfile(ProfileOptions& o) {
  uint32_t sections = kAll;
  if (o.sections != "all") {
    auto parsed = ParseSections(o.sections);
    if (!parsed) {
      std::cerr << "persona: unknown section in --sections '" << o.sections << "'\n";
      return 2;
    }
    sections = *parsed;
  }
  o.engine.quiet = true;
  auto engine = OpenEngine(o.engine);
  if (!engine.ok()) return Fail(engine.status());
  auto json = (*engine)->ProfileJson(o.user, sections);
  if (!json) {
    std::cerr << "persona: unknown user '" << o.user << "'\n";
    return 2;
  }
  std::cout << *json << "\n";
  if (auto s = (*engine)->Close(); !s.ok()) return Fail(s);
  return 0;
}

struct TimelineOptions {
  EngineOptions engine;
  std::string user;
  size_t limit = 20;
};

int RunTimeline(TimelineOptions& o) {
  o.engine.quiet = true;
  auto engine = OpenEngine(o.engine);
  if (!engine.ok()) return Fail(engine.status());
  auto json = (*engine)->TimelineJson(o.user, o.limit);
  if (!json.ok()) return Fail(json.status());
  std::cout << *json << "\n";
  return 0;
}

int RunStats(EngineOptions& o) {
  o.quiet = true;
  StandardOperators ops;
  auto engine = OpenEngine(o, &ops);
  if (!engine.ok()) return Fail(engine.status());
  Engine& eng = **engine;
  std::string json = EngineStatsJson(eng);
  if (ops.recommender != nullptr && !json.empty() && json.back() == '}') {
    json.pop_back();
    json += ",\"recommend\":" + ops.recommender->StatsJson() + "}";
  }
  std::cout << json << "\n";
  return 0;
}

int RunCheckpoint(EngineOptions& o) {
  auto engine = OpenEngine(o);
  if (!engine.ok()) return Fail(engine.status());
  if (auto s = (*engine)->Checkpoint(); !s.ok()) return Fail(s);
  if (auto s = (*engine)->Close(); !s.ok()) return Fail(s);
  std::cout << "checkpoint written\n";
  return 0;
}

}  // namespace

void RegisterRead(Registry& r) {
  auto p = std::make_shared<ProfileOptions>();
  CLI::App* cmd =
      r.Add("profile", "Print a user's profile as JSON", [p] { return RunProfile(*p); });
  AddEngineOptions(cmd, &p->engine);
  cmd->add_option("--sections", p->sections,
                  "Comma list: identity,stats,sessions,interests,consumption,funnel,lifecycle,"
                  "sequence,tags (default all)");
  cmd->add_option("user_id", p->user, "User id")->required();

  auto t = std::make_shared<TimelineOptions>();
  cmd = r.Add("timeline", "Print a user's most recent raw events (newest first)",
              [t] { return RunTimeline(*t); });
  AddEngineOptions(cmd, &t->engine);
  cmd->add_option("--limit", t->limit, "Events to print")->capture_default_str();
  cmd->add_option("user_id", t->user, "User id")->required();

  auto s = std::make_shared<EngineOptions>();
  cmd = r.Add("stats", "Print totals per partition as JSON", [s] { return RunStats(*s); });
  AddEngineOptions(cmd, s.get());

  auto c = std::make_shared<EngineOptions>();
  cmd = r.Add("checkpoint", "Write a checkpoint of every partition now",
              [c] { return RunCheckpoint(*c); });
  AddEngineOptions(cmd, c.get());
}

}  // namespace persona::cli
