// `persona profile`, `persona timeline`, `persona stats`, `persona checkpoint`.
#include <iostream>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "profile/profile_json.h"

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
  auto engine = OpenEngine(o);
  if (!engine.ok()) return Fail(engine.status());
  Engine& eng = **engine;
  JsonWriter w;
  w.BeginObject();
  w.Key("data_dir").String(eng.config().data_dir);
  w.Key("partitions").Uint(eng.partitions());
  w.Key("watermark").String(FormatIsoTime(eng.watermark_ms()));
  w.Key("recovered_events").Uint(eng.recovered_events());
  w.Key("recovery_seconds").Double(eng.recovery_seconds());
  w.Key("recovered_events_per_second")
      .Double(eng.recovery_seconds() > 0 ? eng.recovered_events() / eng.recovery_seconds() : 0);
  auto stats = eng.Stats();
  auto memory = eng.MemoryUsage();
  uint64_t totals[5] = {};
  uint64_t mem_total = 0;
  w.Key("per_partition").BeginArray();
  for (size_t i = 0; i < stats.size(); ++i) {
    const auto& s = stats[i];
    const auto& m = memory[i];
    w.BeginObject();
    w.Key("partition").Uint(s.partition);
    w.Key("profiles").Uint(s.profiles);
    w.Key("accepted").Uint(s.accepted);
    w.Key("duplicates").Uint(s.duplicates);
    w.Key("rejected").Uint(s.rejected);
    w.Key("log_seq").Uint(s.last_seq);
    w.Key("checkpoint_seq").Uint(s.checkpoint_seq);
    w.Key("watermark").String(FormatIsoTime(s.watermark_ms));
    w.Key("dedup_entries").Uint(s.dedup_entries);
    w.Key("events_by_type").BeginObject();
    for (int t = 0; t < kEventTypeCount; ++t)
      w.Key(EventTypeName(static_cast<EventType>(t))).Uint(s.events_by_type[t]);
    w.EndObject();
    w.Key("memory_bytes").BeginObject();
    w.Key("profiles").Uint(m.profile_bytes);
    w.Key("user_index").Uint(m.map_bytes);
    w.Key("string_pool").Uint(m.pool_bytes);
    w.Key("dedup_window").Uint(m.dedup_bytes);
    w.EndObject();
    w.EndObject();
    totals[0] += s.profiles;
    totals[1] += s.accepted;
    totals[2] += s.duplicates;
    totals[3] += s.rejected;
    totals[4] += m.profile_bytes;
    mem_total += m.profile_bytes + m.map_bytes + m.pool_bytes + m.dedup_bytes;
  }
  w.EndArray();
  w.Key("totals").BeginObject();
  w.Key("profiles").Uint(totals[0]);
  w.Key("accepted").Uint(totals[1]);
  w.Key("duplicates").Uint(totals[2]);
  w.Key("rejected").Uint(totals[3]);
  auto dl = eng.store().CountDeadLetters();
  w.Key("dead_letters").Uint(dl.ok() ? *dl : 0);
  w.Key("profile_bytes_per_user").Double(totals[0] ? double(totals[4]) / totals[0] : 0);
  w.Key("state_bytes_per_user").Double(totals[0] ? double(mem_total) / totals[0] : 0);
  w.EndObject();
  w.EndObject();
  std::cout << w.str() << "\n";
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
