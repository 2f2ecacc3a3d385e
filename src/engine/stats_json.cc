#include "engine/stats_json.h"

#include <unistd.h>

#include <fstream>

#include "common/json_writer.h"
#include "common/time_util.h"

namespace persona {

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

std::string EngineStatsJson(Engine& engine) {
  JsonWriter w;
  w.BeginObject();
  w.Key("data_dir").String(engine.config().data_dir);
  w.Key("partitions").Uint(engine.partitions());
  w.Key("watermark").String(FormatIsoTime(engine.watermark_ms()));
  // The whole process (profiles, operators' state, RocksDB's caches and memtables, allocator):
  // with memory_bytes per partition and recommend.item_cf_bytes, where a user's RSS goes.
  w.Key("rss_bytes").Uint(ResidentBytes());
  w.Key("recovered_events").Uint(engine.recovered_events());
  w.Key("recovery_seconds").Double(engine.recovery_seconds());
  w.Key("recovered_events_per_second")
      .Double(engine.recovery_seconds() > 0 ? engine.recovered_events() / engine.recovery_seconds()
                                            : 0);
  auto stats = engine.Stats();
  auto memory = engine.MemoryUsage();
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
    w.Key("log").BeginObject();
    w.Key("first_seq").Uint(s.log_first_seq);
    w.Key("bytes").Uint(s.log_bytes);
    w.Key("segments").Uint(s.log_segments);
    w.Key("trimmed_segments").Uint(s.log_trimmed_segments);
    w.EndObject();
    w.Key("queued_events").Uint(s.queued_events);
    w.Key("lag_seconds").Double(s.lag_seconds);
    w.Key("checkpoints").Uint(s.checkpoints);
    w.Key("last_checkpoint_seconds").Double(s.last_checkpoint_seconds);
    const CheckpointBreakdown& b = s.last_checkpoint;
    w.Key("last_checkpoint").BeginObject();
    w.Key("profiles").Uint(b.profiles);
    w.Key("profile_bytes").Uint(b.profile_bytes);
    w.Key("profiles_seconds").Double(b.profiles_seconds);
    w.Key("operators").BeginArray();
    for (const auto& op : b.operators) {
      w.BeginObject();
      w.Key("name").String(op.name);
      w.Key("bytes").Uint(op.bytes);
      w.Key("seconds").Double(op.seconds);
      w.EndObject();
    }
    w.EndArray();
    w.Key("meta_bytes").Uint(b.meta_bytes);
    w.Key("meta_seconds").Double(b.meta_seconds);
    w.Key("commit_seconds").Double(b.commit_seconds);
    w.Key("cleanup_seconds").Double(b.cleanup_seconds);
    w.EndObject();
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
  auto dl = engine.store().CountDeadLetters();
  w.Key("dead_letters").Uint(dl.ok() ? *dl : 0);
  w.Key("profile_bytes_per_user").Double(totals[0] ? double(totals[4]) / totals[0] : 0);
  w.Key("state_bytes_per_user").Double(totals[0] ? double(mem_total) / totals[0] : 0);
  w.EndObject();
  w.EndObject();
  return w.Take();
}

}  // namespace persona
