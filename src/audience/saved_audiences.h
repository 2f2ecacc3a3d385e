// Saved audiences: named audience conditions whose members are kept up to date as events arrive,
// with a stream of enter/exit changes per audience.
//
// Each active audience owns one of the 64 membership bits the engine keeps per profile (see
// engine/stream_operator.h: this is the pipeline's audience stage). The engine calls
// OnProfileChanged once per profile a batch changed; the operator evaluates every active condition
// on that profile (one MatchAll, sharing variable values) and, for each bit that differs from the
// stored one, updates the audience's size and appends a change to its ring. Conditions that move
// with time alone (windows, recency, lifecycle, predictions) drift between a profile's changes;
// Reconcile() re-evaluates everything.
//
// Concurrency. The writer threads never take a lock of ours unless a membership actually changes:
// the active audiences are an immutable Snapshot published through an atomic shared_ptr, sizes
// and counters are atomics, and each audience's ring has its own mutex. Create/Delete/Attach/
// Reconcile are serialised by an admin mutex (never taken on the ingest path).
//
// Initialising a new bit while events keep arriving. Create publishes a snapshot in which the new
// bit is "initialising": writers evaluate it and store it, adjusting the size, but emit no
// change. A scan then recomputes the bit of every profile under its shard lock (also adjusting
// the size), and only then is a snapshot published in which the bit emits changes. Every flip of a
// bit, by a writer or a scan, happens under the profile's shard lock together with its size
// update, so size == the number of set bits at all times. A writer that loaded the snapshot
// before the new bit existed did so under the shard lock of its profile, so the scan visits that
// profile after the writer finished and computes the bit from the current profile. The change
// stream of an audience therefore describes every flip after the moment it started emitting; the
// bits at that moment are the "initial state" (no changes are emitted for it).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "audience/audience_condition.h"
#include "engine/engine.h"
#include "engine/stream_operator.h"
#include "predict/predictor.h"

namespace persona {

struct SavedAudienceInfo {
  std::string id;
  std::string name;
  std::string description;
  std::string condition;
  int64_t created_ms = 0;  // wall clock
  uint64_t size = 0;       // current members (0 while detached)
  uint64_t entered = 0;    // changes emitted since this process started
  uint64_t exited = 0;
  // The seq of the latest change (0 = none yet): a consumer that reads it, then exports the
  // members, then follows the changes after it misses nothing (changes are idempotent to apply).
  uint64_t last_seq = 0;
  bool active = false;  // false: the stored condition no longer compiles (see error)
  std::string error;
};

struct MembershipChange {
  uint64_t seq = 0;  // per audience, from 1, increasing by 1
  std::string user_id;
  bool entered = false;  // false: exited
  int64_t at_ms = 0;     // the engine's "now" when the change was seen
};

struct SavedAudiencesOptions {
  // Changes kept per audience (older ones are dropped; readers behind them see `truncated`).
  size_t retain = 100'000;
  // Threads of the initialising and reconciling scans (0 = one per core).
  uint32_t scan_threads = 0;
};

class SavedAudiences : public StreamOperator {
 public:
  static constexpr size_t kMaxAudiences = 64;  // one membership bit each
  static constexpr size_t kMaxNameBytes = 100;
  static constexpr size_t kMaxConditionBytes = 4096;
  static constexpr size_t kMaxDescriptionBytes = 1000;

  // Loads definitions from `path` (JSON; a missing file = none; "" = keep nothing on disk). A
  // definition whose condition no longer compiles is kept inactive with its error. Open the engine
  // with this operator in its pipeline, then call Attach(engine). `predictor` (may be null) must
  // outlive the object.
  static absl::StatusOr<std::unique_ptr<SavedAudiences>> Open(const Predictor* predictor,
                                                              std::string path,
                                                              SavedAudiencesOptions options = {});
  // Detaches (see Detach), stops the timer thread and calls every pending waiter.
  ~SavedAudiences() override;
  SavedAudiences(const SavedAudiences&) = delete;
  SavedAudiences& operator=(const SavedAudiences&) = delete;

  // Starts maintaining memberships over `engine` (opened with this operator in its pipeline; it
  // must outlive the attachment): full parallel scans set every profile's membership bits and
  // every size (no changes are emitted for this initial state). Events may be ingested meanwhile.
  // No-op when attached.
  void Attach(Engine* engine);
  // Stops maintaining memberships (sizes read 0 afterwards); the pipeline's calls are then no-ops.
  // Destroy the object only after the engine it was opened with is closed.
  void Detach();
  bool attached() const { return attached_; }
  // Calls every pending WaitForChanges waiter now (a server about to stop answers its long-polls
  // rather than holding them through the drain). Waiters registered later wait as usual.
  void ReleaseWaiters();

  // Compiles, assigns a free bit and an id (slug of the name + '-' + 6 random hex digits), persists
  // the definitions, then computes the membership by one scan when attached (no changes are emitted
  // for it). InvalidArgument for a bad condition ("column N: ...") or name (1..100 bytes),
  // AlreadyExists for a name already used (case-insensitive), ResourceExhausted when 64 audiences
  // exist, Internal when the file cannot be written.
  // `id`, when not empty, is the caller's choice (lowercase letters, digits and '-', 1..64
  // characters; InvalidArgument otherwise, AlreadyExists when taken), so that a campaign tool
  // can create idempotently under a name it already knows.
  absl::StatusOr<SavedAudienceInfo> Create(std::string_view name, std::string_view condition,
                                           std::string_view description, std::string_view id = {});
  // Removes the audience: it stops being evaluated at once, its bit is cleared in every profile and
  // freed, pending waiters are called. NotFound for an unknown id; Internal when the file cannot be
  // written (the audience then stays).
  absl::Status Delete(std::string_view id);
  // Every audience (active or not), oldest first.
  std::vector<SavedAudienceInfo> List() const;
  std::optional<SavedAudienceInfo> Get(std::string_view id) const;
  // The membership bit of an active audience (for AudienceSelector::saved_bit); nullopt for an
  // unknown or inactive id.
  std::optional<int> BitOf(std::string_view id) const;

  // Enter/exit changes with seq > after, oldest first, at most `limit` (0 = 1000). `next_after` is
  // the seq of the last change returned (`after` when none). `truncated` when changes after
  // `after` were already dropped from the ring (after < oldest retained seq - 1): the page then
  // starts at the oldest retained change. `epoch` is chosen at Open: when it changes the server
  // restarted, seqs start again at 1 and consumers re-export. NotFound for an unknown id.
  struct ChangesPage {
    std::vector<MembershipChange> changes;
    uint64_t next_after = 0;
    bool truncated = false;
    std::string epoch;
  };
  absl::StatusOr<ChangesPage> Changes(std::string_view id, uint64_t after, size_t limit) const;
  // Calls `ready` exactly once, on any thread and without our locks held: at once when a change
  // with seq > after exists or the audience is unknown/deleted, else when such a change arrives
  // (on the writer thread that made it: `ready` must be quick), when `timeout` passes or when
  // this object is destroyed. No thread is kept per waiter.
  void WaitForChanges(std::string_view id, uint64_t after, std::chrono::milliseconds timeout,
                      std::function<void()> ready);

  // Re-evaluates every active audience over every profile (parallel scan) and emits enter/exit
  // for the differences (drift from time alone: lifecycle, windows, recency, model swaps). The
  // server calls it every `reconcile_seconds`. No-op (zeros) when detached.
  struct ReconcileStats {
    uint64_t scanned = 0;
    uint64_t entered = 0;
    uint64_t exited = 0;
    double seconds = 0;
  };
  ReconcileStats Reconcile();

  // Profiles evaluated on the ingest path since Open (one MatchAll each), for metrics.
  uint64_t evaluations() const;

  const std::string& epoch() const { return epoch_; }
  const std::string& path() const { return path_; }

  // StreamOperator (writer threads). Membership is not checkpointed: Attach recomputes it by a
  // scan, and the change stream restarts with a new epoch.
  std::string_view name() const override { return "audiences"; }
  void OpenPartitions(uint32_t partitions) override;
  void OnProfileChanged(const ChangedProfile& changed) override;
  void OnProfileErased(uint32_t partition, std::string_view user_id, const Profile& profile,
                       uint64_t membership) override;

 private:
  struct Waiter;
  struct Audience;
  struct Snapshot;
  using Clock = std::chrono::steady_clock;

  SavedAudiences(const Predictor* predictor, std::string path, SavedAudiencesOptions options);

  absl::Status Load();
  // Writes `defs` (tmp file, fsync, rename, fsync of the directory). No-op when path_ is "".
  absl::Status Persist(const std::vector<const Audience*>& defs) const;
  // Publishes a snapshot of every active audience (admin_mu_ held; null when detached). Bits in
  // `initialising` are evaluated but emit no changes.
  void Publish(uint64_t initialising);
  // The active audiences whose bits are in `include` (list_mu_ or admin_mu_ held).
  std::shared_ptr<const Snapshot> BuildSnapshot(uint64_t include, uint64_t initialising,
                                                std::shared_ptr<const TagRules> tags) const;
  // Replaces the published snapshot by a copy evaluating with `current` tag rules.
  void RefreshTagRules(std::shared_ptr<const TagRules> current);
  // Stores `next` (bits of snap.mask) in `membership`: sizes and counters for every flipped bit,
  // a change for each flipped bit that is emitting. Runs under the profile's shard lock.
  void ApplyBits(const Snapshot& snap, std::string_view user_id, int64_t now_ms,
                 uint64_t& membership, uint64_t next, uint64_t* entered, uint64_t* exited);
  // Appends a change and moves the waiters it satisfies into `ready`.
  void AppendChange(Audience& a, std::string_view user_id, bool entered, int64_t now_ms,
                    std::vector<std::shared_ptr<Waiter>>& ready);
  // Full scans (admin_mu_ held). ScanEvaluate recomputes the bits of snap.mask for every
  // profile and applies them (emitting as the snapshot says); ScanClear zeroes `bits`.
  void ScanEvaluate(const Snapshot& snap, uint64_t* entered, uint64_t* exited, uint64_t* scanned);
  void ScanClear(uint64_t bits);
  std::shared_ptr<Audience> FindLocked(std::string_view id) const;
  std::string NewIdLocked(std::string_view name);
  SavedAudienceInfo InfoOf(const Audience& a) const;
  static void Fire(const std::shared_ptr<Waiter>& w);
  void TimerLoop(std::stop_token stop);

  Engine* engine_ = nullptr;  // set by Attach
  const Predictor* const predictor_;
  const std::string path_;
  const SavedAudiencesOptions options_;
  std::string epoch_;

  // admin_mu_ serialises changes and scans (held for a whole Create/Delete/Attach/Reconcile);
  // list_mu_ guards the definitions for readers and is only held briefly.
  std::mutex admin_mu_;
  mutable std::mutex list_mu_;
  std::vector<std::shared_ptr<Audience>> audiences_;  // oldest first
  uint64_t used_bits_ = 0;                            // admin_mu_
  std::mt19937_64 rng_;                               // admin_mu_
  std::atomic<bool> attached_{false};

  // What the writers evaluate. `live_` is false when nothing is evaluated, so that the ingest
  // path costs one atomic load then.
  std::atomic<bool> live_{false};
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  // Bumped after every store to snapshot_, so a writer can keep its own reference to the
  // snapshot and only reload it (an atomic shared_ptr load: a lock and a reference count on a
  // line both writers share) when the version moved.
  std::atomic<uint64_t> version_{1};
  std::mutex refresh_mu_;  // serialises every store to snapshot_ (admin publishes, tag refreshes)
  // Per-partition state of the writer threads: a partition's calls never run concurrently.
  struct alignas(64) PartitionState {
    AudienceEvalCache cache;
    uint64_t version = 0;  // of `snapshot`
    std::shared_ptr<const Snapshot> snapshot;
    std::atomic<uint64_t> evaluations{0};  // written by the partition's writer only
    int64_t tags_checked_now_ms = 0;       // `now_ms` of the last tag-rules check
    uint32_t calls_since_tag_check = 0;
  };
  // How often a writer compares the engine's tag rules with its snapshot's: whenever `now_ms`
  // moves (about once per batch: the watermark advances with the events) and at least every
  // this many calls. The comparison is another atomic shared_ptr load (~80 ns when both writers
  // do it), a tenth of an evaluation of 20 audiences; Reconcile evaluates with current rules.
  static constexpr uint32_t kTagCheckEvery = 64;
  std::vector<std::unique_ptr<PartitionState>> partitions_;

  // Long-poll timeouts: one thread for all waiters.
  std::mutex timer_mu_;
  std::condition_variable_any timer_cv_;
  std::multimap<Clock::time_point, std::shared_ptr<Waiter>> timers_;
  std::jthread timer_;  // last: stopped and joined first
};

}  // namespace persona
