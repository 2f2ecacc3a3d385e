// The cluster exchange: what the instances of one consumer group tell each other through a
// compacted Kafka topic ([kafka] cluster_topic, "<topic>-cluster" by default), so that any instance
// answers for any user and state spanning users combines every instance's partitions.
//
// Two kinds of records, both keyed so that compaction keeps the latest of each:
//  - "member/<url>": an instance's HTTP address and the partitions it owns, with the wall time of
//    that assignment (JSON: {"url","partitions","at_ms"}). Published after every assignment
//    change and, with no partitions, when the instance stops. The owner of a partition, for
//    forwarding, is the member whose latest record lists it with the newest at_ms (a killed
//    instance's stale record loses to its successor's newer one; clocks must agree to well under
//    a rebalance, as NTP gives).
//  - "state/<p>/<chunk>": partition p's shared state as its owner last published it: every
//    operator's SaveState bytes (trending, item-CF, catalogue, demand, keyword, anomaly parts) at
//    one log position, cut into chunks of at most 512 KiB. Owners publish each owned partition
//    whose log moved, every share_interval, while the group has other members (a member that
//    joins gets every partition's state at the next round). Snapshots run on the partitions'
//    writers, so sharing is spaced to take at most a tenth of the time.
//
// On this instance, every partition it does not own is foreign in the engine (Engine::SetForeign):
// its operator parts show the newest shared state received for it, so trending, item-CF and
// demand read the whole group's data with a delay of about share_interval, while the instance's
// own state of the partition stays in its checkpoint and comes back when it owns the partition
// again. Shared state is a view, never an input: nothing derived from it is checkpointed, so
// recovery stays exact.
//
// Threading: one thread consumes the topic and publishes shared state; OnAssignment runs on the
// Kafka source's consumer thread; OwnerUrl and Status are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "kafka/kafka_client.h"
#include "kafka/kafka_config.h"
#include "kafka/kafka_producer.h"

namespace persona {

struct ClusterMember {
  std::string url;
  std::vector<int32_t> partitions;
  int64_t at_ms = 0;
};

struct ClusterPartitionStatus {
  int32_t partition = 0;
  bool foreign = false;        // owned by another instance
  std::string owner;           // its owner's URL as the directory says ("" = unknown or this one)
  uint64_t shared_seq = 0;     // log seq of the shared state laid over it (0 = none)
  int64_t shared_age_ms = -1;  // how old that state is (-1 = none)
};

struct ClusterStatus {
  std::string topic, self_url;
  std::vector<ClusterMember> members;
  uint64_t shares_published = 0, share_bytes_published = 0;
  uint64_t shares_received = 0, shares_applied = 0, errors = 0;
  std::string last_error;
  std::vector<ClusterPartitionStatus> partitions;
};

// The status as the JSON object of GET /v1/stats's "cluster" (docs/openapi.yaml).
std::string ClusterStatusJson(const ClusterStatus& status);

class ClusterExchange {
 public:
  // Starts consuming the topic from its beginning (creating it where the brokers allow it).
  // Member records are published once SetSelfUrl told where this instance is reached.
  static absl::StatusOr<std::unique_ptr<ClusterExchange>> Start(
      Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log = {});
  ~ClusterExchange();
  ClusterExchange(const ClusterExchange&) = delete;
  ClusterExchange& operator=(const ClusterExchange&) = delete;

  // Publishes an empty member record and stops. Idempotent.
  void Stop();

  // KafkaSource's assignment listener: marks the partitions owned elsewhere foreign (laying the
  // newest shared state over them) and the owned ones not, then publishes the member record.
  void OnAssignment(const std::vector<bool>& owned);

  // The URL of the instance that owns `partition`, when another instance does and the directory
  // knows it.
  std::optional<std::string> OwnerUrl(uint32_t partition) const;
  // Where the other instances reach this one's HTTP API (known once the server listens); publishes
  // the member record.
  void SetSelfUrl(std::string url);
  std::string self_url() const;
  ClusterStatus Status() const;

 private:
  struct Shared {
    std::string url;
    int64_t at_ms = 0;
    uint64_t seq = 0;
    int64_t watermark_ms = -1;
    std::vector<std::pair<std::string, std::string>> states;
  };
  struct Assembly {
    std::string url;
    int64_t at_ms = -1;
    uint64_t seq = 0;
    std::vector<std::string> chunks;
    size_t received = 0;
  };

  ClusterExchange(Engine* engine, const KafkaConfig& config,
                  std::function<void(std::string_view)> log);
  void Run();
  void HandleRecord(std::string_view key, std::string_view value);
  void HandleMember(std::string_view value);
  void HandleChunk(uint32_t partition, std::string_view value);
  void ApplyShared(uint32_t partition, const Shared& shared);
  void ShareOwned();
  absl::Status PublishMember(const std::vector<bool>& owned);
  void NoteError(std::string message);
  void Log(std::string_view line) const;

  Engine* const engine_;
  const KafkaConfig config_;
  const std::string topic_;
  const std::function<void(std::string_view)> log_;
  std::unique_ptr<KafkaProducer> producer_;
  RdKafkaHandle consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool stopped_ = false;

  mutable std::mutex mu_;
  std::string self_url_;                          // "" until SetSelfUrl
  std::map<std::string, ClusterMember> members_;  // by URL
  std::vector<bool> owned_;                       // as of the last OnAssignment
  std::vector<bool> foreign_;                     // what this exchange told the engine
  std::vector<std::optional<Shared>> latest_;     // newest complete shared state per partition
  std::vector<uint64_t> applied_seq_;             // shared seq laid over each foreign partition
  std::vector<int64_t> applied_at_ms_;
  std::vector<uint64_t> published_seq_;  // consumer thread only
  std::vector<Assembly> assembling_;     // consumer thread only
  // Its own lock: engine callbacks (which may run synchronously while mu_ is held) note errors.
  mutable std::mutex error_mu_;
  std::string last_error_;
  std::atomic<uint64_t> shares_published_{0}, share_bytes_published_{0};
  std::atomic<uint64_t> shares_received_{0}, shares_applied_{0}, errors_{0};
};

}  // namespace persona
