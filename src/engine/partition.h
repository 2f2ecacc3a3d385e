// A partition owns the profiles of the users that hash to it, and one writer thread that is the
// only mutator of that state: it drains its queue, writes one log record per group of batches
// (group commit), applies the events to the profiles, then acknowledges. Readers on other threads
// take a per-shard mutex for the few microseconds they read one profile; there is no lock shared
// between partitions anywhere on the update path.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/batch_record.h"
#include "engine/checkpoint_listener.h"
#include "engine/config.h"
#include "engine/dedup_window.h"
#include "engine/ingest_outcome.h"
#include "engine/stream_operator.h"
#include "event/event.h"
#include "profile/population.h"
#include "profile/profile.h"
#include "profile/profile_context.h"
#include "store/store.h"

namespace persona {

// Shared between the partitions a batch was split over; the last partition to finish calls `done`.
struct PendingIngest {
  std::mutex mu;
  IngestOutcome outcome;
  std::atomic<int> remaining{0};
  std::function<void(IngestOutcome)> done;
};

// What erasing a user removed from a partition.
struct UserErasure {
  bool profile = false;     // the profile (memory and checkpoint)
  uint64_t log_events = 0;  // events redacted from the log (the timeline)
  uint64_t dead_letters = 0;
};

// The operators' state of one partition as its owner shares it with the other instances of a
// cluster (Engine::ShareStates): each operator's SaveState bytes, by operator name.
struct SharedStates {
  uint64_t seq = 0;          // the partition's last log seq they reflect
  int64_t source_next = -1;  // the partition's source offset they reflect
  int64_t watermark_ms = 0;  // the partition's event-time watermark (its "now")
  std::vector<std::pair<std::string, std::string>> states;  // (operator name, SaveState bytes)
};

// A request that is not a batch of events but must be ordered with them on the writer thread.
// kSetForeign, kShareStates and kLoadForeign address a partition, not a user (Engine::SetForeign).
struct PartitionControl {
  enum class Kind { kSetAttributes, kEraseUser, kSetForeign, kShareStates, kLoadForeign, kRestore };
  Kind kind = Kind::kSetAttributes;
  std::string user_id;
  std::string attributes_json;                              // kSetAttributes
  bool merge = true;                                        // kSetAttributes
  bool foreign = false;                                     // kSetForeign
  std::vector<std::pair<std::string, std::string>> states;  // kLoadForeign
  int64_t watermark_ms = -1;                                // kLoadForeign: the owner's (-1: keep)
  std::shared_ptr<PartitionImage> image;                    // kRestore
  // kSetAttributes: the resulting attributes object. kEraseUser: unused.
  std::function<void(absl::StatusOr<std::string>)> attributes_done;
  std::function<void(absl::StatusOr<UserErasure>)> erase_done;
  std::function<void(absl::Status)> status_done;  // kSetForeign, kLoadForeign, kRestore
  std::function<void(std::optional<SharedStates>)> share_done;  // kShareStates
};

struct PartitionWork {
  std::shared_ptr<const EventBatch> batch;
  std::vector<uint32_t> indexes;  // events of `batch` routed to this partition
  std::shared_ptr<PendingIngest> pending;
  std::shared_ptr<PartitionControl> control;  // set instead of batch for control requests
  int64_t enqueued_ns = 0;                    // steady clock, for the partition's lag
  // Work from an external source (a Kafka partition): the source offset after its last message,
  // recorded atomically with the log record (Store::Append), and the messages that never became
  // events (dead letters with their offsets), stored in the same write. -1: not from a source.
  int64_t source_next = -1;
  std::vector<DeadLetter> source_rejects;
};

// Where the last checkpoint's time went (all on the partition's writer thread, which applies no
// event meanwhile): what an operator needs to see why ingest paused.
struct CheckpointBreakdown {
  uint64_t profiles = 0;  // changed profiles encoded and written
  uint64_t profile_bytes = 0;
  double profiles_seconds = 0;
  struct OperatorState {
    std::string name;
    uint64_t bytes = 0;
    double seconds = 0;  // SaveState
  };
  std::vector<OperatorState> operators;
  uint64_t meta_bytes = 0;  // partition meta: dedup window, segments, population
  double meta_seconds = 0;
  double commit_seconds = 0;   // the atomic store write of states + meta
  double cleanup_seconds = 0;  // deleting the replaced profile versions, trimming the log
};

struct PartitionStats {
  uint32_t partition = 0;
  uint64_t profiles = 0;
  uint64_t last_seq = 0;
  uint64_t checkpoint_seq = 0;
  int64_t watermark_ms = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t queued_events = 0;
  // Age of the oldest work waiting in the queue (0 when empty): how far the partition lags.
  double lag_seconds = 0;
  uint64_t dedup_entries = 0;
  // The retained log: its first seq (records below were trimmed by retention), bytes, segments.
  uint64_t log_first_seq = 0;
  uint64_t log_bytes = 0;
  uint64_t log_segments = 0;
  uint64_t log_trimmed_segments = 0;  // deleted by retention since this process started
  uint64_t checkpoints = 0;           // completed by this process
  double checkpoint_seconds_total = 0;
  double last_checkpoint_seconds = 0;
  CheckpointBreakdown last_checkpoint;
  uint64_t events_by_type[kEventTypeCount] = {};  // accepted (persisted across restarts)
  // Since this process started (not persisted):
  uint64_t duplicates_by_type[kEventTypeCount] = {};
  uint64_t rejected_by_type[kEventTypeCount] = {};
};

class Partition {
 public:
  // `operators` is the pipeline (engine/stream_operator.h), driven in order for live batches and
  // for the replayed log tail alike; it must outlive the partition. `global_watermark_ms` is the
  // max event time over all partitions, against which future-skewed events are rejected (the only
  // cross-partition input, and one that decides rejections, not derived state).
  Partition(uint32_t id, Store* store, const EngineConfig& config,
            const std::vector<StreamOperator*>* operators,
            std::function<int64_t()> global_watermark_ms);
  ~Partition();
  Partition(const Partition&) = delete;
  Partition& operator=(const Partition&) = delete;

  // Loads the last checkpoint (profiles, partition meta, operator states), then replays the log
  // tail after it through the pipeline. Call once, before Start.
  absl::Status Recover(uint64_t* replayed_events, std::string* phases);
  void Start();
  // Stops accepting, drains the queue, writes a final checkpoint, joins the thread.
  absl::Status Stop();

  // Enqueues work. With `block`, waits for queue space; without, returns ResourceExhausted when
  // the queue holds more than the configured capacity.
  // `force` enqueues even past capacity (the caller already checked HasSpace for a whole batch).
  enum class EnqueueMode { kBlock, kForce };
  void Enqueue(PartitionWork work, EnqueueMode mode);
  bool HasSpace(size_t events) const;
  // Queues a control request behind the events already queued (never refused for space: control
  // requests are rare and small). Its callback runs on the writer thread.
  // FailedPrecondition once the partition is stopping (the callback is then never called).
  absl::Status EnqueueControl(std::shared_ptr<PartitionControl> control);
  // The first storage error the writer hit; once set, the partition rejects all new events.
  absl::Status health() const;
  // Runs `fn` on the profile of `user_id` under its shard lock; false when the user is unknown.
  bool Read(std::string_view user_id,
            const std::function<void(const Profile&, const ProfileContext&)>& fn) const;
  // Requests a checkpoint and waits until it is committed.
  absl::Status Checkpoint();
  uint64_t last_seq() const { return last_seq_.load(std::memory_order_acquire); }
  // The next offset of this partition's external source that is not yet durable and applied
  // (every message before it is in the log, or a dead letter); -1 if it never consumed one.
  int64_t source_offset() const { return source_next_.load(std::memory_order_acquire); }
  uint64_t checkpoint_seq() const { return checkpoint_seq_.load(std::memory_order_acquire); }
  // "now" for this partition's derived state: its own event-time watermark (or the wall clock
  // when configured), so that a partition's pipeline depends on its own stream alone.
  int64_t NowMs() const;
  // The partition's RFM population (the buyers of this partition; see profile/population.h).
  const Population& population() const { return population_; }

  PartitionStats Stats() const;
  // Sum of Profile::MemoryBytes over all profiles plus the pool and dedup window; walks every
  // profile (takes each shard lock in turn), so it is for stats commands, not hot paths.
  struct Memory {
    uint64_t profiles = 0, profile_bytes = 0, pool_bytes = 0, dedup_bytes = 0, map_bytes = 0;
  };
  Memory MemoryUsage() const;
  // Visits every user id (shard by shard).
  void ForEachUser(const std::function<void(std::string_view)>& fn) const;
  // Calls fn for every profile under its shard lock (fn must not call back into the engine).
  void ForEachProfile(
      const std::function<void(std::string_view, const Profile&, const ProfileContext&)>& fn) const;
  // Calls fn for every profile of shards [shard_begin, shard_end) under its shard lock, with the
  // operator-owned membership bits (a scan may rewrite them; see ChangedProfile::membership).
  void ScanShards(size_t shard_begin, size_t shard_end,
                  const std::function<void(const ProfileScanItem&)>& fn);
  int64_t watermark_ms() const { return watermark_.load(std::memory_order_relaxed); }
  uint32_t id() const { return id_; }
  // Receives every later checkpoint of this partition while owned (engine/checkpoint_listener.h);
  // null = none. Set before events flow, or between checkpoints (an atomic pointer).
  void SetCheckpointListener(CheckpointListener* listener) {
    listener_.store(listener, std::memory_order_release);
  }
  // Another instance owns this partition (Engine::SetForeign).
  bool foreign() const { return foreign_flag_.load(std::memory_order_acquire); }
  // The recorded events of a user's timeline, newest first, following the log chain.
  absl::Status Timeline(std::string_view user_id, size_t limit,
                        const std::function<void(const Event&, uint64_t position)>& fn) const;

 private:
  struct Entry {
    std::string user_id;  // the map key views this string: one copy per user
    Profile profile;
    uint64_t label_seq = 0;   // checkpoint generation of the stored version (0 = none stored)
    uint64_t touched = 0;     // last batch number that touched it (tags, dirty tracking)
    uint64_t membership = 0;  // owned by the operators (ChangedProfile::membership)
    bool dirty = false;
    uint8_t shard = 0;  // index into shards_, fixed at creation
  };

 public:
  static constexpr size_t kShards = 64;

 private:
  static_assert(kShards <= 256, "Entry::shard is one byte");
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string_view, std::unique_ptr<Entry>> users;
  };

  void Run();
  void ProcessBatch(std::vector<PartitionWork>& works);
  void ProcessControl(PartitionControl& control);
  absl::StatusOr<std::string> SetAttributes(const PartitionControl& control);
  absl::StatusOr<UserErasure> EraseUser(std::string_view user_id);
  // Rewrites the log records holding `user_id`'s events with those events redacted, following the
  // timeline chain from `head`; returns how many events were redacted.
  absl::StatusOr<uint64_t> RedactLogChain(uint64_t head);
  Entry* FindOrCreate(std::string_view user_id, size_t* shard_index);
  // The pipeline over accepted_scratch_ (events of log record `seq`): BeforeApply, Apply, OnEvent
  // per event, then OnProfileChanged per changed profile. The same code for live and replay.
  void RunPipeline(uint64_t seq, int64_t now_ms, bool replay);
  // OnProfileChanged of every operator for one entry.
  void AfterChange(Entry* entry, int64_t now_ms, bool replay);
  void FailWorks(std::vector<PartitionWork>& works, const absl::Status& status);
  // `replace` (a restore) makes the commit also drop every older profile version and replace the
  // partition's attributes and source offset, in the same atomic write.
  absl::Status WriteCheckpoint(const Store::CheckpointReplacement* replace = nullptr);
  // Replaces the whole state by `image` (a mirror's checkpoint; Engine::RestorePartition).
  absl::Status Restore(const PartitionImage& image);
  void SetForeign(bool foreign, const std::function<void(absl::Status)>& done);
  void LoadForeign(PartitionControl& control);
  // Log retention bookkeeping: a record of `bytes` was appended (or replayed) at `wall_ms`.
  void NoteAppend(uint64_t seq, uint64_t bytes, int64_t wall_ms);
  // Drops from segments_ the log segments the retention policy lets go among those a checkpoint
  // at `covered` includes; returns the seq below which the log may then be trimmed (0 = none).
  uint64_t PlanRetention(uint64_t covered);
  // WAL sync (unless every write synced already) and the closing checkpoint.
  absl::Status FinalSync();
  std::string EncodeMeta() const;
  absl::Status DecodeMeta(std::string_view blob);
  size_t ShardOf(std::string_view user_id) const;

  const uint32_t id_;
  Store* const store_;
  const EngineConfig& config_;
  const std::vector<StreamOperator*>& operators_;
  std::function<int64_t()> global_watermark_ms_;
  Population population_;
  ProfileContext ctx_;
  DedupWindow dedup_;
  std::unique_ptr<Shard[]> shards_;
  std::vector<Entry*> dirty_;
  // Foreign: another instance owns this partition (Engine::SetForeign). Its operators' parts then
  // show the owner's shared state (kLoadForeign), and own_states_ keeps this instance's own
  // operator states (SaveState when it became foreign), which checkpoints write and which are
  // restored when it owns the partition again. Writer thread only.
  bool foreign_ = false;
  std::vector<std::string> own_states_;
  int64_t own_watermark_ms_ = 0;  // the watermark when it became foreign (checkpointed meanwhile)
  std::atomic<bool> foreign_flag_{false};  // foreign_ for other threads
  std::atomic<CheckpointListener*> listener_{nullptr};
  // Users erased since the last checkpoint (for the listener's tombstones). Writer thread only.
  std::vector<std::string> erased_since_checkpoint_;
  // Per-batch scratch, kept to reuse allocations.
  struct Accepted {
    const Event* event;
    Entry* entry;
    uint32_t shard;
    uint32_t index;  // position in the log record
  };
  std::vector<Accepted> accepted_scratch_;
  absl::flat_hash_map<Entry*, uint64_t> batch_heads_;
  std::vector<Entry*> touched_scratch_;

  // Queue (producers: any thread; consumer: the writer).
  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;  // writer waits for work
  std::condition_variable space_cv_;  // blocked producers wait for space
  std::deque<PartitionWork> queue_;
  uint64_t queued_events_ = 0;
  bool stopping_ = false;
  bool checkpoint_requested_ = false;
  uint64_t checkpoint_generation_ = 0;  // completed checkpoints
  std::condition_variable checkpoint_cv_;
  absl::Status last_error_;

  // The log as segments of consecutive records (~64 MiB or 1 h of appends each), oldest first:
  // the unit of retention. Writer thread only; persisted in the checkpoint meta.
  struct LogSegment {
    uint64_t first_seq = 0, last_seq = 0, bytes = 0;
    int64_t first_append_ms = 0, last_append_ms = 0;
  };
  std::deque<LogSegment> segments_;
  std::atomic<uint64_t> log_first_seq_{0}, log_bytes_{0}, log_segments_{0}, log_trimmed_{0};

  std::thread thread_;
  bool recovered_ = false;  // Recover completed: the state may be checkpointed
  uint64_t next_seq_ = 1;
  uint64_t batch_number_ = 0;
  uint64_t events_since_checkpoint_ = 0;
  int64_t last_checkpoint_wall_ms_ = 0;
  std::atomic<uint64_t> checkpoint_seq_{0};
  std::atomic<uint64_t> last_seq_{0};
  std::atomic<int64_t> source_next_{-1};  // next source offset not in the log (-1: none)
  std::atomic<int64_t> watermark_{0};
  std::atomic<uint64_t> dedup_entries_{0};
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<double> checkpoint_seconds_total_{0}, last_checkpoint_seconds_{0};
  mutable std::mutex breakdown_mu_;
  CheckpointBreakdown last_breakdown_;  // guarded by breakdown_mu_
  std::atomic<uint64_t> accepted_{0}, duplicates_{0}, rejected_{0}, profiles_{0};
  std::atomic<uint64_t> by_type_[kEventTypeCount] = {};
  std::atomic<uint64_t> duplicates_by_type_[kEventTypeCount] = {};
  std::atomic<uint64_t> rejected_by_type_[kEventTypeCount] = {};
  BatchRecordWriter record_;
};

}  // namespace persona
