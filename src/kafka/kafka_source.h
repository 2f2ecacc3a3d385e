// The Kafka source: consumes the shop's events topic as a member of a consumer group and feeds
// each Kafka partition to the engine partition of the same number, exactly once across crashes.
//
// Exactly once: a batch of consecutive messages of Kafka partition k goes to engine partition k
// with Engine::SubmitSourced, whose single durable write holds the batch's events, the dead letters
// of its bad messages and the offset after its last message. On assignment the source seeks each
// partition to that stored offset (Engine::SourceOffset), so after a crash it resumes exactly where
// the durable state ends; the offsets it commits to the group are for lag monitoring by the usual
// tools, never read back. Routing: the engine routes users with Kafka's murmur2 partitioner
// (EngineConfig::kafka_routing), so a producer that keys messages by user_id with Kafka's default
// partitioner writes each user to the partition that owns the user. A message whose user belongs
// to another partition (a producer keyed by something else) is a dead letter, not a split profile.
//
// Readiness: caught_up() once the group assigned this instance its partitions and every one of
// them has been applied up to the end offset it had when assigned: the backlog at start is part of
// "complete"; later lag is reported (persona_kafka_lag), not waited for.
//
// Threading: one consumer thread polls, parses, batches and submits (blocking while a partition's
// queue is full: backpressure reaches the brokers as unfetched messages); completion callbacks run
// on partition threads and touch only atomics and the in-flight count. Status() is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "event/json_event.h"
#include "kafka/kafka_client.h"
#include "kafka/kafka_config.h"

namespace persona {

struct KafkaPartitionStatus {
  int32_t partition = 0;
  bool assigned = false;
  int64_t next_offset = -1;   // next offset not yet durable and applied (-1: none consumed)
  int64_t end_offset = -1;    // the broker's high watermark as last seen (-1: unknown)
  int64_t lag = 0;            // end_offset - next_offset (0 when unknown)
  uint64_t messages = 0;      // consumed by this process
  uint64_t dead_letters = 0;  // of those, kept as dead letters
};

struct KafkaSourceStatus {
  std::string brokers, topic, group;
  bool caught_up = false;
  uint64_t messages = 0, events = 0, dead_letters = 0, batches = 0;
  uint64_t rebalances = 0, errors = 0;
  // Offsets deleted from the topic (retention) before this source consumed them: lost events.
  uint64_t skipped = 0;
  std::string last_error;
  std::vector<KafkaPartitionStatus> partitions;  // one per engine partition
};

// The status as the JSON object of GET /v1/stats's "kafka" (docs/openapi.yaml).
std::string KafkaSourceStatusJson(const KafkaSourceStatus& status);

class KafkaSource {
 public:
  // Checks that the topic has exactly engine->partitions() partitions and that the engine routes
  // with Kafka's partitioner, then joins the group and starts consuming. `log` receives
  // human-readable lines (assignments, errors); may be empty.
  // `on_assignment` (may be empty) runs on the consumer thread after every assignment change with
  // the partitions owned now (index = partition): after an assignment before any of its messages
  // is handed to the engine, after a revocation once the revoked partitions' work is durable.
  // `before_resume` (may be empty) runs on the consumer thread for each newly assigned partition
  // before its stored offset is read: the changelog restores a moved partition there
  // (kafka/changelog.h), so consumption resumes where the restored state ends.
  using AssignmentFn = std::function<void(const std::vector<bool>& owned)>;
  using ResumeFn = std::function<void(uint32_t partition)>;
  static absl::StatusOr<std::unique_ptr<KafkaSource>> Start(
      Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log = {},
      AssignmentFn on_assignment = {}, ResumeFn before_resume = {});
  ~KafkaSource();
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // Hands over what was polled, waits until it is durable and applied, commits the offsets and
  // leaves the group (its partitions go to the other members). Idempotent.
  void Stop();

  bool caught_up() const { return caught_up_.load(std::memory_order_acquire); }
  // Calls done(true) once `offset` of `partition` is durable and applied here; done(false) at once
  // when this instance does not own the partition, or when `timeout` passes or the source stops
  // first. `done` runs on any thread and must be quick.
  void WhenApplied(int32_t partition, int64_t offset, std::chrono::milliseconds timeout,
                   std::function<void(bool)> done);
  KafkaSourceStatus Status() const;

 private:
  struct Slot;
  KafkaSource(Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log);
  void NotifyAssignment();

  void Run();
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void Assign(rd_kafka_topic_partition_list_t* partitions);
  void Revoke(rd_kafka_topic_partition_list_t* partitions);
  void HandleMessage(const rd_kafka_message_t& m);
  void Flush(Slot& slot);
  void FlushAll();
  void WaitInFlight(Slot& slot);
  void CommitOffsets(bool async);
  void RefreshEnds();
  void UpdateCaughtUp();
  // Fires the waiters of `slot` whose offset is applied, and (with `now`) those past their
  // deadline; with `all`, every waiter (false unless applied).
  void FireWaiters(Slot& slot, std::chrono::steady_clock::time_point now, bool all);
  void NoteError(std::string message);
  void Log(std::string_view line) const;

  Engine* const engine_;
  const KafkaConfig config_;
  const std::function<void(std::string_view)> log_;
  AssignmentFn on_assignment_;
  ResumeFn before_resume_;
  const std::string source_name_;            // "kafka:<topic>" prefix of dead letters' source
  std::unique_ptr<JsonEventParser> parser_;  // consumer thread only
  RdKafkaHandle rk_;
  std::vector<std::unique_ptr<Slot>> slots_;  // index = partition
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> caught_up_{false};
  bool assigned_once_ = false;  // consumer thread only
  std::atomic<uint64_t> messages_{0}, events_{0}, dead_letters_{0}, batches_{0};
  std::atomic<uint64_t> rebalances_{0}, errors_{0}, skipped_{0};
  mutable std::mutex error_mu_;
  std::string last_error_ ABSL_GUARDED_BY(error_mu_);
  std::mutex inflight_mu_;
  std::condition_variable inflight_cv_;
  std::atomic<int> waiters_{0};
  bool stopped_ = false;
};

}  // namespace persona
