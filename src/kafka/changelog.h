// The changelog: a compacted Kafka topic that mirrors every checkpoint of the partitions an
// instance owns, so that a partition moved to an instance without its state (a new machine, or
// one whose local copy is old) is restored from it instead of re-consuming the events topic
// (which retention may have trimmed).
//
// Partition p of the events topic has partition p of the changelog ([kafka] changelog_topic,
// "<group>-changelog" by default, with the same partition count, cleanup.policy=compact).
// Each checkpoint of p is ONE Kafka transaction on that partition, written by a producer whose
// transactional.id is "<changelog topic>-<p>":
//   "u<user id>"          -> epoch (8 bytes) + the profile's checkpoint bytes; null = erased
//   "s<operator>/<chunk>" -> the operator's state, in chunks of at most 512 KiB
//   "b/<chunk>"           -> the partition meta (dedup window, counters, watermark, prices)
//   "m"                   -> the header, last: format, epoch, writer instance and checkpoint seq,
//                            the source offset covered, chunk counts
// A checkpoint carries the profiles changed since the previous one; a full one (the first after
// an assignment, or after a failed transaction) carries all of them under a new epoch, and
// profile records of an older epoch are not part of the state. Readers use read_committed, so
// what they see is always the whole of the last committed checkpoint.
//
// On assignment of p (OnAssigned, before any of p's messages are consumed) a new producer with
// p's transactional.id is initialised, which fences the previous owner: a killed instance that
// comes back cannot append to p's changelog any more. Then the changelog's header is compared
// with the local state: the same writer and seq (this instance wrote it) keeps the local state and
// publishes incrementally. When this instance has no state of p, or the events its state lacks
// were deleted from the events topic by retention, and the changelog covers a later offset, the
// changelog is read in full and installed (Engine::RestorePartition) and consumption resumes at
// its offset; a restored partition's timelines (GET .../timeline, read from the local log) start
// there. Otherwise the local state stays, the events topic brings it up to date (timelines stay
// whole), and the next checkpoint is published in full.
//
// Threading: OnAssigned runs on the Kafka source's consumer thread; the listener calls on p's
// writer thread; each partition's producer is guarded by its own mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/checkpoint_listener.h"
#include "engine/engine.h"
#include "kafka/kafka_client.h"
#include "kafka/kafka_config.h"

namespace persona {

struct ChangelogStatus {
  std::string topic;
  uint64_t transactions = 0, full_transactions = 0, records = 0, bytes = 0, failures = 0;
  uint64_t restores = 0, restored_profiles = 0;
  double last_restore_seconds = 0;
  double restore_seconds_total = 0;  // restores (reading the changelog + installing the state)
  double assign_seconds_total = 0;   // all of OnAssigned: fencing, reading, restoring
  std::vector<uint32_t> restored;    // partitions restored by this process, in order
  std::string last_error;
};

// The status as the JSON object of GET /v1/stats's "changelog".
std::string ChangelogStatusJson(const ChangelogStatus& status);

class Changelog : public CheckpointListener {
 public:
  // Checks that the topic exists with engine->partitions() partitions: NotFound when it does not
  // exist (the caller runs without a changelog), FailedPrecondition for another count. Does not
  // attach itself: the caller calls engine->SetCheckpointListener.
  static absl::StatusOr<std::unique_ptr<Changelog>> Start(
      Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log = {});
  ~Changelog() override;
  Changelog(const Changelog&) = delete;
  Changelog& operator=(const Changelog&) = delete;

  // Partition `partition` was assigned to this instance: fence its earlier writers and restore it
  // from the changelog when that is ahead of the local state. An error leaves the local state (the
  // events topic is then consumed from the local offset) and the next checkpoint full.
  absl::Status OnAssigned(uint32_t partition);
  ChangelogStatus Status() const;
  const std::string& topic() const { return topic_; }

  // CheckpointListener (the partition's writer thread).
  bool NeedsFull(uint32_t partition) override;
  void Begin(uint32_t partition, bool full) override;
  void Erased(uint32_t partition, std::span<const std::string> users) override;
  void Profiles(uint32_t partition, NamedBlobs user_blobs) override;
  void Commit(uint32_t partition, uint64_t seq, int64_t source_next, std::string_view meta,
              NamedBlobs states) override;

 private:
  struct Part {
    std::mutex mu;
    RdKafkaHandle producer;  // transactional, created on assignment (null: not publishing)
    bool needs_full = true;
    bool in_txn = false;
    bool txn_failed = false;  // a produce in the open transaction failed
    bool full = false;        // the open transaction is a full one
    uint64_t epoch = 0;
    uint64_t records = 0, bytes = 0;  // of the open transaction
    // Erased users whose tombstones no committed transaction carried yet: sent again in every
    // transaction until one commits (an aborted one must not leave their data in the topic).
    std::vector<std::string> pending_tombstones;
  };
  struct Header {
    uint64_t epoch = 0;
    std::string instance;
    uint64_t seq = 0;
    int64_t source_next = -1;
    uint32_t meta_chunks = 0;
    std::vector<std::pair<std::string, uint32_t>> state_chunks;  // operator name, chunk count
  };

  Changelog(Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log);
  absl::Status Assigned(uint32_t partition);
  absl::StatusOr<RdKafkaHandle> MakeProducer(uint32_t partition);
  absl::StatusOr<RdKafkaHandle> MakeReader(uint32_t partition, int64_t from);
  // Reads partition p from `from` to its last stable offset; fn(key, value, has_value).
  absl::Status ReadTo(uint32_t partition, int64_t from,
                      const std::function<void(std::string_view, std::string_view, bool)>& fn);
  void Produce(Part& part, uint32_t partition, std::string_view key, const std::string* value);
  void Abort(Part& part, uint32_t partition, std::string why);
  static std::string EncodeHeader(const Header& h);
  static bool DecodeHeader(std::string_view in, Header* h);
  void NoteError(std::string message);
  void Log(std::string_view line) const;

  Engine* const engine_;
  const KafkaConfig config_;
  const std::string topic_;
  const std::function<void(std::string_view)> log_;
  std::string instance_;  // this data directory's id (the header's writer)
  std::vector<std::unique_ptr<Part>> parts_;
  mutable std::mutex error_mu_;
  std::string last_error_;          // guarded by error_mu_
  std::vector<uint32_t> restored_;  // guarded by error_mu_
  std::atomic<uint64_t> transactions_{0}, full_transactions_{0}, records_{0}, bytes_{0};
  std::atomic<uint64_t> failures_{0}, restores_{0}, restored_profiles_{0};
  std::atomic<double> last_restore_seconds_{0}, restore_seconds_total_{0}, assign_seconds_total_{0};
};

}  // namespace persona
