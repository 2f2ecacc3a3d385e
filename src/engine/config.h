// Engine configuration: a TOML file (see config/persona.toml for every key with its default),
// overridable by command-line flags. LoadConfig validates values and names the offending key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "event/validate.h"
#include "profile/profile_config.h"

namespace persona {

enum class SyncPolicy { kAlways, kInterval, kNone };
std::string_view SyncPolicyName(SyncPolicy p);
absl::StatusOr<SyncPolicy> ParseSyncPolicy(std::string_view s);

struct EngineConfig {
  std::string data_dir = "data";
  uint32_t partitions = 0;  // 0 = number of cores
  SyncPolicy sync = SyncPolicy::kInterval;
  int64_t sync_interval_ms = 100;
  // Events drained into one log write by a partition (group commit).
  uint32_t max_batch_events = 4096;
  // Bounded ingest queue per partition, in events; Submit fails with ResourceExhausted when full
  // (non-blocking mode) so that the service can answer 429.
  uint32_t queue_capacity_events = 262144;
  // Periodic checkpoint: every `checkpoint_interval_ms` of wall time or `checkpoint_every_events`
  // applied events per partition, whichever comes first. 0 disables that trigger.
  int64_t checkpoint_interval_ms = 60000;
  uint64_t checkpoint_every_events = 5000000;
  // Write a checkpoint when the engine closes (off only for recovery benchmarks and tests).
  bool checkpoint_on_close = true;
  // Duplicate event ids are dropped while the original's event time is within dedup_window_ms of
  // the watermark, or while it is among the last dedup_recent_events accepted by its partition.
  int64_t dedup_window_ms = 24 * kHourMs;
  uint64_t dedup_recent_events = 1000000;
  // "now" for decay and windows: the event-time watermark (default) or the wall clock.
  bool wall_clock = false;
  // Log retention: once a partition's checkpoint covers them, log segments whose newest record was
  // appended more than `log_retention_ms` ago (wall time; 0 = no age limit) are deleted, and so
  // are the oldest while the partition's log exceeds `log_retention_bytes` (0 = no size limit).
  // The log then serves the timeline, erasure and offline training for the retained window only.
  int64_t log_retention_ms = 30 * 24 * kHourMs;
  uint64_t log_retention_bytes = 0;
  // A log segment (the unit retention deletes) closes after this many bytes or an hour of appends.
  uint64_t log_segment_bytes = 64 << 20;
  // Route users to partitions with Kafka's murmur2 partitioner (KafkaPartitionOf) instead of
  // xxHash, so that engine partition k is Kafka partition k. Set by the Kafka source; recorded in
  // the data directory at creation ("config.routing"), which then keeps it for life.
  bool kafka_routing = false;
  // With kafka_routing: the producers' partitioner, "murmur2" (Kafka's default, Java clients) or
  // "crc32" (librdkafka's consistent / consistent_random, the default of librdkafka-based clients).
  // Recorded at creation too; an existing directory keeps its own.
  std::string kafka_partitioner = "murmur2";
  // File of tag rules (`name: expression` per line); empty = none. Reloadable.
  std::string tag_rules_file;
  ValidationLimits limits;
  ProfileConfig profile;
};

// Reads a TOML file into `config` (keys absent from the file keep their current values).
absl::Status LoadConfigFile(const std::string& path, EngineConfig* config);
// Same from TOML text; `origin` names the source in error messages.
absl::Status LoadConfigText(std::string_view toml, std::string_view origin, EngineConfig* config);

}  // namespace persona
