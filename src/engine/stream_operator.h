// One stage of a partition's stream pipeline. Everything derived from events beyond the profile
// itself (enrichment, tag rules, recommendation learners, demand and keyword learners, audience
// membership, A/B attribution) is a StreamOperator in one ordered list that the engine is opened
// with (Engine::Open) and that every partition drives, in list order, with the same code for live
// batches and for the log tail replayed at recovery. There is no other way in: no hook is attached
// or detached later, so a replay after a crash runs exactly the stages the live run ran.
//
// Per applied event, on the partition's writer thread, with the user's shard lock held:
//   1. every operator's BeforeApply(profile before the event)
//   2. Profile::Apply (the profile update, built in)
//   3. every operator's OnEvent(profile after the event)
// Per batch, once for each profile the batch changed (and on attribute changes):
//   4. every operator's OnProfileChanged (the engine's tag-rule stage is first in the list)
// Erasure: every operator's OnProfileErased, with the profile as it was.
//
// Threading contract (RocksDB's EventListener and Kafka Streams' Processor are the models):
//  - Callbacks for partition p run only on p's writer thread (or, before the writers start, on
//    the thread recovering p), never concurrently with each other for the same p, and
//    concurrently for different partitions. They must be quick and must not call back into the
//    engine (reads take shard locks: a callback already holds one).
//  - State an operator keeps per partition is touched only by these callbacks; state read by
//    other threads (request handlers) must be safe for that (atomics, a lock of the operator's).
//  - Determinism: what an operator does for partition p must depend only on p's own stream (the
//    events, profiles and now_ms it is handed) and on its own state for p, never on other
//    partitions' progress. State that spans partitions (trending, co-occurrence, population
//    statistics) is kept as per-partition parts and combined at read time. That is what makes
//    recovery exact and lets one partition be checkpointed, restored or moved on its own.
//  - Checkpoints: SaveState(p) runs on p's writer thread between batches; its bytes are committed
//    atomically with the partition's profiles and log position, and LoadState(p) receives them at
//    the next open before the log tail after that position is replayed through the pipeline.
//    Operators whose state is a function of the profiles alone may rebuild it in OnProfileLoaded
//    instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "event/event.h"
#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

// One event as the pipeline hands it to OnEvent: valid only during the callback.
struct AppliedEvent {
  uint32_t partition;
  std::string_view user_id;
  const Event& event;
  Profile& profile;     // already includes `event`; operators may enrich it
  ProfileContext& ctx;  // the partition's context (string pool, prices, population)
  int64_t now_ms;       // the partition's "now" (its event-time watermark, or the wall clock)
  bool replay;          // true while the log tail is replayed at open
};

// One changed profile, after every event of its batch: valid only during the callback.
struct ChangedProfile {
  uint32_t partition;
  std::string_view user_id;
  Profile& profile;
  const ProfileContext& ctx;
  int64_t now_ms;
  // 64 bits of operator-owned state kept in the engine's entry for this profile (saved audience
  // membership), 0 for a new profile; not persisted (rebuild it after open with a scan).
  uint64_t& membership;
  bool replay;
};

class StreamOperator {
 public:
  virtual ~StreamOperator() = default;
  // A stable name: the key of this operator's checkpointed state. Unique within a pipeline.
  virtual std::string_view name() const = 0;

  // Called once by Engine::Open before any partition recovers, with the partition count.
  virtual void OpenPartitions(uint32_t partitions) { (void)partitions; }
  // A profile loaded from the checkpoint at open, before the log tail is replayed.
  virtual void OnProfileLoaded(uint32_t partition, std::string_view user_id, const Profile& profile,
                               const ProfileContext& ctx) {
    (void)partition, (void)user_id, (void)profile, (void)ctx;
  }

  virtual void BeforeApply(uint32_t partition, const Event& event, const Profile& before) {
    (void)partition, (void)event, (void)before;
  }
  virtual void OnEvent(const AppliedEvent& applied) { (void)applied; }
  virtual void OnProfileChanged(const ChangedProfile& changed) { (void)changed; }
  virtual void OnProfileErased(uint32_t partition, std::string_view user_id, const Profile& profile,
                               uint64_t membership) {
    (void)partition, (void)user_id, (void)profile, (void)membership;
  }

  // Appends the operator's checkpointed state of `partition` to `out` (nothing = no state).
  virtual void SaveState(uint32_t partition, std::string* out) { (void)partition, (void)out; }
  // Restores what SaveState wrote (called only when a state was committed). DataLoss for bytes it
  // cannot read.
  virtual absl::Status LoadState(uint32_t partition, std::string_view blob) {
    (void)partition, (void)blob;
    return absl::OkStatus();
  }
  // Every partition recovered (checkpoint + log tail); called on Open's thread before the writers
  // start. Read-side caches may be (re)built here.
  virtual void OnRecovered() {}
};

// One profile as a scan sees it (Engine::ScanProfiles): valid only during the callback, which
// runs with the profile's shard lock held.
struct ProfileScanItem {
  uint32_t partition;
  std::string_view user_id;
  const Profile& profile;
  const ProfileContext& ctx;
  uint64_t& membership;  // the operators' bits (ChangedProfile::membership); a scan may rewrite
};

}  // namespace persona
