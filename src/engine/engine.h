// The engine: routes events by hash(user_id) to P partitions, each with one writer thread, and
// serves reads of the resulting profiles. This is the library API the CLI and the HTTP service
// call.
//
//   auto engine = Engine::Open(config);           // recovers: checkpoint + log tail per partition
//   engine->Submit(batch, done, /*block=*/false);  // done(outcome) once durable and applied
//   engine->ProfileJson("u1", kAll);               // read-your-writes after done() ran
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json_writer.h"
#include "engine/config.h"
#include "engine/ingest_outcome.h"
#include "engine/partition.h"
#include "engine/stream_operator.h"
#include "engine/tag_rule_stage.h"
#include "store/store.h"

namespace persona {

class Engine {
 public:
  // Opens (or creates) the data directory and recovers every partition (in parallel): its
  // checkpoint, then the log tail after it through the pipeline. `operators` is the pipeline
  // after the built-in stages (profile update, tag rules), in order (engine/stream_operator.h);
  // they must outlive the engine, and the list is fixed for its lifetime. `log` receives
  // human-readable progress lines (may be empty).
  static absl::StatusOr<std::unique_ptr<Engine>> Open(
      const EngineConfig& config, std::function<void(std::string_view)> log = {},
      std::vector<StreamOperator*> operators = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Drains every queue, checkpoints and closes the store. Idempotent.
  absl::Status Close();

  // Routes `batch` to its partitions. `done` runs (on a partition thread) once every event is
  // durable under the sync policy and applied, or rejected/duplicate. With block=false, returns
  // ResourceExhausted without enqueuing anything when a target partition's queue is full.
  absl::Status Submit(std::shared_ptr<const EventBatch> batch,
                      std::function<void(IngestOutcome)> done, bool block);
  // Enqueues the events of one external source's batch (consecutive messages of one Kafka
  // partition) to `partition` as they are, without routing: the caller checked ownership. The
  // write that makes them durable also stores `rejects` (messages that did not parse, as dead
  // letters) and `source_next`, the offset after the batch's last message (Partition::
  // source_offset); a batch over max_batch_events is split, the offset going with its last part.
  // Same `done` and `block` as Submit.
  absl::Status SubmitSourced(uint32_t partition, std::shared_ptr<const EventBatch> batch,
                             std::vector<DeadLetter> rejects, int64_t source_next,
                             std::function<void(IngestOutcome)> done, bool block);
  // The partition that owns `user_id` (xxHash, or with kafka_routing Kafka's murmur2 or
  // librdkafka's CRC-32, EngineConfig::kafka_partitioner).
  uint32_t RouteOf(std::string_view user_id) const;
  bool kafka_routing() const { return kafka_routing_; }
  // Partition i's next source offset not yet durable and applied (-1: never consumed a source).
  int64_t SourceOffset(uint32_t partition) const { return partitions_[partition]->source_offset(); }
  // Submit + wait. Blocks for queue space.
  IngestOutcome Ingest(std::shared_ptr<const EventBatch> batch);
  // Records parse/validation rejections that never reached a partition.
  absl::Status AddDeadLetters(std::span<const DeadLetter> letters);

  // The profile as JSON (sections: see profile_json.h), or nullopt for an unknown user.
  // `extra(w, profile, ctx, now)`, when given, adds members before the object closes (the server
  // adds `predictions` there); it runs under the profile's lock.
  using ProfileJsonExtra =
      std::function<void(JsonWriter&, const Profile&, const ProfileContext&, int64_t now_ms)>;
  std::optional<std::string> ProfileJson(std::string_view user_id, uint32_t sections,
                                         const ProfileJsonExtra& extra = nullptr) const;
  bool ReadProfile(std::string_view user_id,
                   const std::function<void(const Profile&, const ProfileContext&)>& fn) const;
  // The user's most recent raw events (newest first) as a JSON array; NotFound for unknown users.
  absl::StatusOr<std::string> TimelineJson(std::string_view user_id, size_t limit) const;

  // Sets (merge) or replaces the user's attributes (a JSON object; a null value deletes a key),
  // creating the profile when the user is unknown. Ordered with the user's events on its
  // partition's writer; `done` runs there with the resulting attributes object once the change is
  // durable under the sync policy, or with an error (InvalidArgument for a bad object).
  void SetAttributes(std::string_view user_id, std::string_view json_object, bool merge,
                     std::function<void(absl::StatusOr<std::string>)> done);
  // Erases the user everywhere the engine keeps them: the profile (memory and checkpoint), their
  // events in the log (redacted in place: timeline and replay no longer see them) and dead letters
  // with their id. Ordered after events already queued for the user; `done` runs on the writer.
  void EraseUser(std::string_view user_id, std::function<void(absl::StatusOr<UserErasure>)> done);
  // Blocking forms of the two calls above.
  absl::StatusOr<std::string> SetAttributes(std::string_view user_id, std::string_view json_object,
                                            bool merge);
  absl::StatusOr<UserErasure> EraseUser(std::string_view user_id);

  // Cluster support (kafka/cluster_exchange.h). A partition is foreign while another instance owns
  // it: this instance applies none of its events, its checkpoints keep this instance's own state,
  // and its operators' parts may show the owner's shared state (LoadForeignStates), so that reads
  // of state spanning users (trending, item-CF, demand) combine every instance's partitions.
  // SetForeign(p, true) checkpoints p first; SetForeign(p, false) restores p's own operator state
  // before any later event of p. All three are ordered with p's events on its writer; `done` runs
  // there.
  void SetForeign(uint32_t partition, bool foreign, std::function<void(absl::Status)> done);
  // Each operator's SaveState of an owned partition (nullopt when foreign or failed).
  void ShareStates(uint32_t partition, std::function<void(std::optional<SharedStates>)> done);
  // Lays an owner's shared state (ShareStates) over a foreign partition's operator parts.
  // FailedPrecondition when the partition is owned here.
  // `watermark_ms` (the owner's, -1 = keep) becomes the partition's "now" while foreign.
  void LoadForeignStates(uint32_t partition,
                         std::vector<std::pair<std::string, std::string>> states,
                         int64_t watermark_ms, std::function<void(absl::Status)> done);
  bool foreign(uint32_t partition) const { return partitions_[partition]->foreign(); }
  // Every partition's later checkpoints go to `listener` while owned (engine/
  // checkpoint_listener.h: the Kafka changelog); null detaches. It must outlive its attachment.
  void SetCheckpointListener(CheckpointListener* listener) {
    for (auto& p : partitions_) p->SetCheckpointListener(listener);
  }
  // Replaces partition p's whole state by `image` (a changelog's copy of its owner's last
  // checkpoint) and resumes its source at image.source_next, committed as one checkpoint; ordered
  // with p's events on its writer, where `done` runs.
  void RestorePartition(uint32_t partition, std::shared_ptr<PartitionImage> image,
                        std::function<void(absl::Status)> done);
  // Partition i's last committed checkpoint seq.
  uint64_t CheckpointSeq(uint32_t partition) const {
    return partitions_[partition]->checkpoint_seq();
  }
  // Partition i's last log seq (what ShareStates' seq reflects when nothing is queued).
  uint64_t LastSeq(uint32_t partition) const { return partitions_[partition]->last_seq(); }
  // OK, or the first storage error of any partition (that partition then rejects all writes).
  absl::Status health() const;

  absl::Status Checkpoint();
  // Re-reads the tag rules file; on error the old rules stay in force.
  absl::Status ReloadTagRules();

  // "now" for reads: the event-time watermark (max over partitions), or wall clock. Update-time
  // stages use their partition's own "now" (Partition::NowMs) instead.
  int64_t NowMs() const;
  int64_t watermark_ms() const;
  uint32_t partitions() const { return static_cast<uint32_t>(partitions_.size()); }
  std::vector<PartitionStats> Stats() const;
  std::vector<Partition::Memory> MemoryUsage() const;
  // Scans (the three below) visit the partitions this instance owns: a foreign partition's users
  // belong to the instance that owns it (SetForeign).
  // Visits every user id (partition by partition, shard by shard).
  // Every profile, each read under its shard lock: fn must be quick and must not call back into
  // the engine (ReadProfile from fn would deadlock). For scans (segment sizes, population stats).
  void ForEachProfile(const std::function<void(std::string_view, const Profile&,
                                               const ProfileContext&)>& fn) const {
    for (const auto& p : partitions_) {
      if (!p->foreign()) p->ForEachProfile(fn);
    }
  }
  // Calls fn for every profile, each under its shard lock, on up to `threads` threads at once
  // (0 = one per core): the partitions' shards are split into ranges that the threads take in
  // turn, so one partition still uses every thread. fn runs concurrently on different threads
  // (never for the same profile at once), must be quick and must not call back into the engine.
  // `thread_index` (0..ScanThreads(threads)-1) lets fn keep per-thread state without locking.
  void ScanProfiles(uint32_t threads,
                    const std::function<void(uint32_t thread_index, const ProfileScanItem&)>& fn);
  // The thread count ScanProfiles(threads, ...) will use.
  uint32_t ScanThreads(uint32_t threads) const;
  void ForEachUser(const std::function<void(std::string_view)>& fn) const {
    for (const auto& p : partitions_) {
      if (!p->foreign()) p->ForEachUser(fn);
    }
  }
  uint64_t recovered_events() const { return recovered_events_; }
  // Wall time Open spent loading checkpoints and replaying logs.
  double recovery_seconds() const { return recovery_seconds_; }
  const EngineConfig& config() const { return config_; }
  Store& store() { return *store_; }
  // Keeps `owned` (typically the operators the engine was opened with) alive until the engine is
  // destroyed, after its partitions stopped.
  void KeepAlive(std::shared_ptr<void> owned) { keep_alive_.push_back(std::move(owned)); }
  std::shared_ptr<const TagRules> tag_rules() const;

 private:
  explicit Engine(const EngineConfig& config);
  // Reads the routing the data directory was created with, or records Kafka's for a new one.
  absl::Status ChooseRouting();
  // Enqueues a partition-addressed control (SetForeign, ShareStates, LoadForeignStates); when it
  // cannot be queued, its done callback gets the error (share_done: nullopt).
  void EnqueueOnPartition(uint32_t partition, std::shared_ptr<PartitionControl> control);
  // Routes a control request to its user's partition (InvalidArgument for an empty user id).
  absl::Status EnqueueControl(std::shared_ptr<PartitionControl> control);

  std::vector<std::shared_ptr<void>> keep_alive_;  // destroyed last
  EngineConfig config_;
  std::unique_ptr<Store> store_;
  TagRuleStage tag_stage_;
  std::vector<StreamOperator*> operators_;  // tag_stage_, then the caller's
  std::vector<std::unique_ptr<Partition>> partitions_;
  uint64_t recovered_events_ = 0;
  double recovery_seconds_ = 0;
  bool closed_ = false;
  bool kafka_routing_ = false;
  bool kafka_crc32_ = false;  // with kafka_routing_: librdkafka's consistent partitioner
};

}  // namespace persona
