#include "engine/partition.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/hash.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "common/varint.h"
#include "event/json_event.h"
#include "profile/profile_codec.h"
#include "rules/profile_features.h"

namespace persona {
namespace {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Meta format 2 adds the log segments (retention) after the price stats.
constexpr char kMetaFormatV2 = 2;
// A log segment closes after config_.log_segment_bytes or this much wall time of appends.
constexpr int64_t kSegmentMs = 3'600'000;
// Profiles are handed to the store in chunks of about this many bytes.
constexpr size_t kCheckpointChunkBytes = 4 << 20;

}  // namespace

Partition::Partition(uint32_t id, Store* store, const EngineConfig& config,
                     const std::vector<StreamOperator*>* operators,
                     std::function<int64_t()> global_watermark_ms)
    : id_(id),
      store_(store),
      config_(config),
      operators_(*operators),
      global_watermark_ms_(std::move(global_watermark_ms)),
      dedup_(config.dedup_window_ms, config.dedup_recent_events),
      shards_(std::make_unique<Shard[]>(kShards)) {
  ctx_.config = &config_.profile;
  // The partition's own buyers: RFM quintiles are a function of this partition's stream alone
  // (a uniform sample of the whole population, users being spread by hash).
  ctx_.population = &population_;
}

int64_t Partition::NowMs() const {
  return config_.wall_clock ? WallClockMs() : watermark_.load(std::memory_order_relaxed);
}

Partition::~Partition() {
  if (thread_.joinable()) (void)Stop();
}

size_t Partition::ShardOf(std::string_view user_id) const {
  // Low bits of the routing hash (routing uses the high bits), so shards stay balanced.
  return Hash64(user_id) & (kShards - 1);
}

Partition::Entry* Partition::FindOrCreate(std::string_view user_id, size_t* shard_index) {
  const size_t s = ShardOf(user_id);
  *shard_index = s;
  Shard& shard = shards_[s];
  // Only this (writer) thread mutates the map, so a lookup without the lock is race-free.
  auto it = shard.users.find(user_id);
  if (it != shard.users.end()) return it->second.get();
  auto entry = std::make_unique<Entry>();
  entry->user_id = std::string(user_id);
  entry->shard = static_cast<uint8_t>(s);
  Entry* raw = entry.get();
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.users.emplace(std::string_view(raw->user_id), std::move(entry));
  }
  profiles_.fetch_add(1, std::memory_order_relaxed);
  return raw;
}

void Partition::Enqueue(PartitionWork work, EnqueueMode mode) {
  std::unique_lock<std::mutex> lock(queue_mu_);
  if (mode == EnqueueMode::kBlock) {
    space_cv_.wait(lock, [&] {
      return stopping_ || queued_events_ == 0 ||
             queued_events_ + work.indexes.size() <= config_.queue_capacity_events;
    });
  }
  queued_events_ += work.indexes.size();
  work.enqueued_ns = SteadyNs();
  queue_.push_back(std::move(work));
  queue_cv_.notify_one();
}

absl::Status Partition::EnqueueControl(std::shared_ptr<PartitionControl> control) {
  PartitionWork work;
  work.control = std::move(control);
  std::lock_guard<std::mutex> lock(queue_mu_);
  if (stopping_) return absl::FailedPreconditionError("the engine is shutting down");
  work.enqueued_ns = SteadyNs();
  queue_.push_back(std::move(work));
  queue_cv_.notify_one();
  return absl::OkStatus();
}

void Partition::ProcessControl(PartitionControl& control) {
  switch (control.kind) {
    case PartitionControl::Kind::kSetAttributes: {
      absl::StatusOr<std::string> r = health().ok() ? SetAttributes(control) : health();
      control.attributes_done(std::move(r));
      break;
    }
    case PartitionControl::Kind::kEraseUser: {
      absl::StatusOr<UserErasure> r = health().ok() ? EraseUser(control.user_id) : health();
      control.erase_done(std::move(r));
      break;
    }
    case PartitionControl::Kind::kSetForeign:
      SetForeign(control.foreign, control.status_done);
      break;
    case PartitionControl::Kind::kShareStates: {
      if (foreign_ || !health().ok()) {
        control.share_done(std::nullopt);
        break;
      }
      SharedStates shared;
      shared.seq = next_seq_ - 1;
      shared.source_next = source_next_.load(std::memory_order_acquire);
      shared.watermark_ms = watermark_.load(std::memory_order_relaxed);
      for (StreamOperator* op : operators_) {
        std::string state;
        op->SaveState(id_, &state);
        if (!state.empty()) shared.states.emplace_back(std::string(op->name()), std::move(state));
      }
      control.share_done(std::move(shared));
      break;
    }
    case PartitionControl::Kind::kRestore: {
      absl::Status r = health().ok() ? Restore(*control.image) : health();
      control.image.reset();
      if (control.status_done) control.status_done(std::move(r));
      break;
    }
    case PartitionControl::Kind::kLoadForeign:
      LoadForeign(control);
      break;
  }
}

// Becoming foreign checkpoints first (what this instance applied is then all in its checkpoint,
// so a restart does not replay it) and keeps the operators' own states; checkpoints written while
// foreign store those, never the owner's shared state laid over the parts. Owning the partition
// again restores them before any event of the partition is applied: the state is then exactly
// the one this instance had, and consumption resumes from its own source offset.
void Partition::SetForeign(bool foreign, const std::function<void(absl::Status)>& done) {
  absl::Status status;
  if (foreign && !foreign_) {
    // The owner's last checkpoint (a listener publishes it: the next owner restores from it).
    if (health().ok()) status = WriteCheckpoint();
    own_states_.assign(operators_.size(), {});
    for (size_t i = 0; i < operators_.size(); ++i) operators_[i]->SaveState(id_, &own_states_[i]);
    own_watermark_ms_ = watermark_.load();
    foreign_ = true;
    foreign_flag_.store(true, std::memory_order_release);
  } else if (!foreign && foreign_) {
    for (size_t i = 0; i < operators_.size() && status.ok(); ++i) {
      if (own_states_[i].empty()) continue;
      status = operators_[i]->LoadState(id_, own_states_[i]);
    }
    if (!status.ok()) {
      status = absl::Status(status.code(), "partition " + std::to_string(id_) +
                                               ": restoring its own operator state: " +
                                               std::string(status.message()));
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (last_error_.ok()) last_error_ = status;
    }
    own_states_.clear();
    watermark_.store(own_watermark_ms_);
    foreign_ = false;
    foreign_flag_.store(false, std::memory_order_release);
  }
  if (done) done(status);
}

// A restore replaces the partition's state by a mirror's checkpoint (a moved partition's new owner
// restoring from the changelog): the profiles, meta (dedup window, counters, watermark, prices)
// and operator states become the image's, consumption resumes at its source offset, and one
// checkpoint commits all of it, replacing the local state in a single atomic write. The local log
// stays this instance's own: its segments are kept, the restored profiles' timelines start here
// (their heads pointed into the writer's log), and an empty log record opens a fresh checkpoint
// generation so that a crash before the commit leaves the previous local state whole.
absl::Status Partition::Restore(const PartitionImage& image) {
  const std::string where = "partition " + std::to_string(id_) + ": restore";
  // The new generation first: records and profile versions above the committed seq are ignored
  // (and deleted) by recovery until the commit below.
  const uint64_t seq = next_seq_;
  record_.Clear();
  if (absl::Status s = store_->Append(id_, seq, record_.Finish(), {}, /*sync=*/false, -1);
      !s.ok()) {
    return s;
  }
  next_seq_ = seq + 1;
  last_seq_.store(seq, std::memory_order_relaxed);
  NoteAppend(seq, record_.Finish().size(), WallClockMs());
  // Old profiles leave the operators' profile-derived state (anomaly histograms, audiences).
  for (size_t sh = 0; sh < kShards; ++sh) {
    Shard& shard = shards_[sh];
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [user, entry] : shard.users) {
      population_.Remove(entry->profile);
      for (StreamOperator* op : operators_) {
        op->OnProfileErased(id_, entry->user_id, entry->profile, entry->membership);
      }
    }
    shard.users.clear();
  }
  dirty_.clear();
  erased_since_checkpoint_.clear();
  profiles_.store(0, std::memory_order_relaxed);
  // The meta, keeping this instance's log segments.
  const std::deque<LogSegment> segments = segments_;
  absl::Status meta = DecodeMeta(image.meta);
  segments_ = segments;
  if (!meta.ok()) return absl::Status(meta.code(), where + ": " + std::string(meta.message()));
  dedup_entries_.store(dedup_.size(), std::memory_order_relaxed);
  // Operator states: live ones load now; a foreign partition keeps them as its own states, which
  // SetForeign(false) loads when the partition becomes owned.
  if (foreign_) {
    own_states_.assign(operators_.size(), {});
    own_watermark_ms_ = watermark_.load();
  }
  for (size_t i = 0; i < operators_.size(); ++i) {
    for (const auto& [name, blob] : image.states) {
      if (name != operators_[i]->name()) continue;
      if (foreign_) {
        own_states_[i] = blob;
      } else if (!blob.empty()) {
        if (absl::Status s = operators_[i]->LoadState(id_, blob); !s.ok()) {
          return absl::Status(s.code(),
                              where + ", operator " + name + ": " + std::string(s.message()));
        }
      }
    }
  }
  Store::CheckpointReplacement replace;
  replace.drop_profiles_below = seq;
  replace.source_next = image.source_next;
  for (const auto& [user, blob] : image.profiles) {
    size_t shard;
    Entry* entry = FindOrCreate(user, &shard);
    {
      std::lock_guard<std::mutex> lock(shards_[shard].mu);
      entry->profile = Profile();
      if (absl::Status s = DecodeProfile(blob, ctx_, &entry->profile); !s.ok()) {
        return absl::DataLossError(where + ", user '" + user + "': " + std::string(s.message()));
      }
      entry->profile.timeline_head = 0;
    }
    population_.Add(entry->profile);
    for (StreamOperator* op : operators_) op->OnProfileLoaded(id_, user, entry->profile, ctx_);
  }
  // The profiles go to the store as one ingested file under the new generation (a bulk load:
  // neither write-ahead log nor memtable), then the checkpoint commits them with the rest.
  // The image's bytes are what EncodeProfile gives for the restored profiles, but for their
  // timeline heads (cleared above): patched, not re-encoded.
  {
    std::vector<const std::pair<std::string, std::string>*> sorted;
    sorted.reserve(image.profiles.size());
    for (const auto& p : image.profiles) sorted.push_back(&p);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    std::vector<std::string> blobs(sorted.size());
    std::vector<std::pair<std::string_view, std::string_view>> rows(sorted.size());
    for (size_t i = 0; i < sorted.size(); ++i) {
      blobs[i] = sorted[i]->second;
      if (absl::Status s = SetEncodedTimelineHead(&blobs[i], 0); !s.ok()) {
        return absl::DataLossError(where + ", user '" + sorted[i]->first +
                                   "': " + std::string(s.message()));
      }
      rows[i] = {sorted[i]->first, blobs[i]};
    }
    if (absl::Status s = store_->IngestProfiles(id_, seq, rows); !s.ok()) return s;
  }
  for (size_t sh = 0; sh < kShards; ++sh) {
    for (const auto& [user, entry] : shards_[sh].users) entry->label_seq = seq;
  }
  source_next_.store(image.source_next, std::memory_order_release);
  return WriteCheckpoint(&replace);
}

void Partition::LoadForeign(PartitionControl& control) {
  absl::Status status;
  if (!foreign_) {
    status = absl::FailedPreconditionError("partition " + std::to_string(id_) +
                                           " is owned by this instance");
  } else {
    // The owner's "now", so that reads decaying by the watermark see what the owner sees.
    if (control.watermark_ms >= 0) watermark_.store(control.watermark_ms);
    for (const auto& [name, blob] : control.states) {
      for (StreamOperator* op : operators_) {
        if (op->name() != name || blob.empty()) continue;
        if (absl::Status s = op->LoadState(id_, blob); !s.ok() && status.ok()) {
          status =
              absl::Status(s.code(), "shared state of partition " + std::to_string(id_) +
                                         ", operator " + name + ": " + std::string(s.message()));
        }
      }
    }
  }
  if (control.status_done) control.status_done(status);
}

// Attribute updates are not events, so they are not in the log: the object is stored beside it
// (Store::PutAttributes, synced under the sync policy) and laid over the checkpointed profile at
// recovery. Derived state that reads attributes (tags, audiences) is re-evaluated when they change
// and at every later change of the profile, so the final state equals that of a run without crash.
absl::StatusOr<std::string> Partition::SetAttributes(const PartitionControl& control) {
  const Shard& probe = shards_[ShardOf(control.user_id)];
  const bool existed = probe.users.contains(control.user_id);
  size_t shard_index;
  Entry* entry = FindOrCreate(control.user_id, &shard_index);
  Shard& shard = shards_[shard_index];
  std::string attributes;
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    status = entry->profile.SetAttributes(control.attributes_json, control.merge);
    if (status.ok()) attributes = std::string(entry->profile.attributes_json());
  }
  if (!status.ok()) {
    if (!existed) {
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.users.erase(std::string_view(entry->user_id));
      profiles_.fetch_sub(1, std::memory_order_relaxed);
    }
    return status;
  }
  if (absl::Status s =
          store_->PutAttributes(id_, entry->user_id, attributes, config_.sync != SyncPolicy::kNone);
      !s.ok()) {
    return s;
  }
  AfterChange(entry, NowMs(), /*replay=*/false);
  if (!entry->dirty) {
    entry->dirty = true;
    dirty_.push_back(entry);
  }
  return attributes;
}

absl::StatusOr<uint64_t> Partition::RedactLogChain(uint64_t pos) {
  uint64_t redacted = 0;
  std::vector<RecordedEvent> events;
  std::string record, rewritten;
  while (pos != 0) {
    const uint64_t seq = PositionSeq(pos);
    auto r = store_->GetLogRecord(id_, seq);
    if (absl::IsNotFound(r.status())) break;  // older history was trimmed
    if (!r.ok()) return r.status();
    record = std::move(*r);
    if (!DecodeBatchRecord(record, &events)) {
      return absl::DataLossError("corrupt log record " + std::to_string(seq));
    }
    // The chain visits a record's events of this user consecutively (newest first).
    std::vector<uint32_t> indexes;
    while (pos != 0 && PositionSeq(pos) == seq) {
      const uint32_t idx = PositionIndex(pos);
      if (idx >= events.size()) return absl::DataLossError("dangling timeline position");
      indexes.push_back(idx);
      pos = events[idx].prev_position;
    }
    if (!RedactBatchRecord(record, indexes, &rewritten)) {
      return absl::DataLossError("corrupt log record " + std::to_string(seq));
    }
    if (absl::Status s = store_->PutLogRecord(id_, seq, rewritten); !s.ok()) return s;
    redacted += indexes.size();
  }
  return redacted;
}

absl::StatusOr<UserErasure> Partition::EraseUser(std::string_view user_id) {
  UserErasure out;
  Shard& shard = shards_[ShardOf(user_id)];
  auto it = shard.users.find(user_id);  // the writer is the only mutator: no lock to look
  if (it != shard.users.end()) {
    Entry* entry = it->second.get();
    auto redacted = RedactLogChain(entry->profile.timeline_head);
    if (!redacted.ok()) return redacted.status();
    out.log_events = *redacted;
    if (entry->label_seq != 0) {
      if (absl::Status s = store_->DeleteProfile(id_, user_id, entry->label_seq); !s.ok()) return s;
    }
    if (absl::Status s = store_->DeleteAttributes(id_, user_id); !s.ok()) return s;
    std::erase(dirty_, entry);
    population_.Remove(entry->profile);
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      for (StreamOperator* op : operators_) {
        op->OnProfileErased(id_, entry->user_id, entry->profile, entry->membership);
      }
      shard.users.erase(it);  // destroys the entry (and the key it owned)
    }
    profiles_.fetch_sub(1, std::memory_order_relaxed);
    if (listener_.load(std::memory_order_acquire) != nullptr) {
      erased_since_checkpoint_.emplace_back(user_id);
    }
    out.profile = true;
  }
  auto letters = store_->EraseDeadLettersOfUser(user_id);  // syncs, covering the writes above
  if (!letters.ok()) return letters.status();
  out.dead_letters = *letters;
  // The redacted events are gone from the log, so a replay from an older checkpoint could not
  // show them to the operators that counted them: checkpoint now, so that no replay crosses the
  // erasure (a crash between the redaction and this commit is the one window where stream-wide
  // aggregates may then miss the erased user's last events).
  if (out.profile) {
    if (absl::Status s = WriteCheckpoint(); !s.ok()) return s;
  }
  return out;
}

bool Partition::HasSpace(size_t events) const {
  std::lock_guard<std::mutex> lock(queue_mu_);
  return queued_events_ == 0 || queued_events_ + events <= config_.queue_capacity_events;
}

absl::Status Partition::health() const {
  std::lock_guard<std::mutex> lock(queue_mu_);
  return last_error_;
}

void Partition::Start() {
  thread_ = std::thread([this] { Run(); });
}

absl::Status Partition::Stop() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  space_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();  // the writer ran FinalSync before exiting
    return health();
  }
  return FinalSync();
}

absl::Status Partition::FinalSync() {
  // A partition whose recovery did not finish holds a partial state: checkpointing it would commit
  // that as the truth.
  if (!recovered_) return absl::OkStatus();
  absl::Status st = health();
  if (st.ok() && config_.sync != SyncPolicy::kAlways) st = store_->SyncWal();
  if (st.ok() && config_.checkpoint_on_close) st = WriteCheckpoint();
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (last_error_.ok()) last_error_ = st;
  }
  return st;
}

void Partition::Run() {
  std::vector<PartitionWork> works;
  PartitionWork control;
  last_checkpoint_wall_ms_ = WallClockMs();
  int64_t last_sync_ms = WallClockMs();
  bool unsynced = false;
  const auto tick = std::chrono::milliseconds(
      config_.sync == SyncPolicy::kInterval ? std::max<int64_t>(1, config_.sync_interval_ms) : 100);
  while (true) {
    bool checkpoint_now = false;
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait_for(lock, tick,
                         [&] { return stopping_ || checkpoint_requested_ || !queue_.empty(); });
      size_t n = 0;
      // A control request is processed alone, in queue order: it ends a group of event batches.
      if (!queue_.empty() && queue_.front().control) {
        control = std::move(queue_.front());
        queue_.pop_front();
      }
      while (!control.control && !queue_.empty() && !queue_.front().control &&
             (works.empty() || n + queue_.front().indexes.size() <= config_.max_batch_events)) {
        n += queue_.front().indexes.size();
        works.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_events_ -= n;
      checkpoint_now = checkpoint_requested_;
      stop = stopping_ && queue_.empty() && works.empty() && !control.control;
    }
    if (control.control) {
      ProcessControl(*control.control);
      control = PartitionWork{};
      unsynced = true;
    }
    if (!works.empty()) {
      space_cv_.notify_all();
      ProcessBatch(works);
      works.clear();
      unsynced = true;
    }
    const int64_t wall = WallClockMs();
    if (config_.sync == SyncPolicy::kInterval && unsynced &&
        wall - last_sync_ms >= config_.sync_interval_ms) {
      if (auto s = store_->SyncWal(); !s.ok()) {
        std::lock_guard<std::mutex> lock(queue_mu_);
        if (last_error_.ok()) last_error_ = s;
      }
      last_sync_ms = wall;
      unsynced = false;
    }
    if (!checkpoint_now && health().ok() &&
        ((config_.checkpoint_interval_ms > 0 && !dirty_.empty() &&
          wall - last_checkpoint_wall_ms_ >= config_.checkpoint_interval_ms) ||
         (config_.checkpoint_every_events > 0 &&
          events_since_checkpoint_ >= config_.checkpoint_every_events))) {
      checkpoint_now = true;
    }
    if (checkpoint_now) {
      absl::Status s = health();
      if (s.ok()) {
        const int64_t start = SteadyNs();
        s = WriteCheckpoint();
        const double seconds = static_cast<double>(SteadyNs() - start) * 1e-9;
        checkpoints_.fetch_add(1, std::memory_order_relaxed);
        checkpoint_seconds_total_.fetch_add(seconds, std::memory_order_relaxed);
        last_checkpoint_seconds_.store(seconds, std::memory_order_relaxed);
      }
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (!s.ok() && last_error_.ok()) last_error_ = s;
      checkpoint_requested_ = false;
      ++checkpoint_generation_;
      checkpoint_cv_.notify_all();
    }
    if (stop) break;
  }
  // On the writer thread, so that the partitions of an engine checkpoint in parallel at close.
  (void)FinalSync();
}

void Partition::FailWorks(std::vector<PartitionWork>& works, const absl::Status& status) {
  for (auto& w : works) {
    IngestOutcome out;
    for (uint32_t idx : w.indexes) {
      out.rejected.push_back({w.batch->source_index.empty() ? idx : w.batch->source_index[idx], "",
                              "not stored: " + std::string(status.message())});
    }
    rejected_.fetch_add(w.indexes.size(), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(w.pending->mu);
      w.pending->outcome.Merge(std::move(out));
    }
    if (w.pending->remaining.fetch_sub(1) == 1) w.pending->done(std::move(w.pending->outcome));
  }
}

void Partition::ProcessBatch(std::vector<PartitionWork>& works) {
  if (absl::Status h = health(); !h.ok()) {
    FailWorks(works, h);
    return;
  }
  ++batch_number_;
  const uint64_t seq = next_seq_;
  const int64_t wall = WallClockMs();
  record_.Clear();
  accepted_scratch_.clear();
  batch_heads_.clear();
  std::vector<DeadLetter> dead_letters;
  std::vector<IngestOutcome> outcomes(works.size());
  int64_t wm = watermark_.load(std::memory_order_relaxed);
  // Skew is judged against max(global watermark, wall clock). For live traffic the two coincide.
  // In a replay of history the watermark alone cannot tell clock skew from an ordinary gap (the
  // first user of a by-user-sorted file has >24h gaps before anything establishes the watermark),
  // while the wall clock still bounds what is impossible.
  int64_t skew_wm = std::max({wm, global_watermark_ms_(), wall});

  // Pass 1: decide each event's fate and encode the accepted ones into one log record. Nothing a
  // reader can see changes until the record is durable.
  for (uint32_t wi = 0; wi < works.size(); ++wi) {
    const PartitionWork& w = works[wi];
    for (uint32_t idx : w.indexes) {
      const Event& e = w.batch->events[idx];
      const uint64_t position = w.batch->source_index.empty() ? idx : w.batch->source_index[idx];
      if (auto why = CheckEventTime(e, skew_wm, config_.limits)) {
        JsonWriter raw;
        WriteEventJson(raw, e);
        dead_letters.push_back(DeadLetter{wall, "partition", position, std::string(e.user_id),
                                          why->field, why->rule, raw.Take()});
        outcomes[wi].rejected.push_back({position, std::move(why->field), std::move(why->rule)});
        rejected_by_type_[static_cast<int>(e.type)].fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (dedup_.CheckAndInsert(e.id_hash, e.ts_ms, wm)) {
        ++outcomes[wi].duplicates;
        duplicates_by_type_[static_cast<int>(e.type)].fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      wm = std::max(wm, e.ts_ms);
      skew_wm = std::max(skew_wm, wm);
      size_t shard;
      Entry* entry = FindOrCreate(e.user_id, &shard);
      const uint32_t index = record_.count();
      auto [head, fresh] = batch_heads_.try_emplace(entry, 0);
      record_.Add(e, fresh ? entry->profile.timeline_head : head->second);
      head->second = MakeLogPosition(seq, index);
      accepted_scratch_.push_back({&e, entry, static_cast<uint32_t>(shard), index});
      ++outcomes[wi].accepted;
    }
  }

  int64_t source_next = -1;
  for (PartitionWork& w : works) {
    source_next = std::max(source_next, w.source_next);
    for (DeadLetter& letter : w.source_rejects) dead_letters.push_back(std::move(letter));
    w.source_rejects.clear();
  }
  absl::Status st;
  size_t record_bytes = 0;
  const bool sync = config_.sync == SyncPolicy::kAlways;
  if (record_.count() > 0) {
    const std::string_view record = record_.Finish();
    record_bytes = record.size();
    st = store_->Append(id_, seq, record, dead_letters, sync, source_next);
  } else if (source_next >= 0) {
    st = store_->AddSourceProgress(id_, dead_letters, source_next, sync);
  } else if (!dead_letters.empty()) {
    st = store_->AddDeadLetters(dead_letters, sync);
  }
  if (!st.ok()) {
    // The in-memory dedup window and heads may now be ahead of the log: stop taking writes rather
    // than risk state that recovery could not reproduce.
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      last_error_ = st;
    }
    FailWorks(works, st);
    return;
  }
  if (record_.count() > 0) {
    next_seq_ = seq + 1;
    last_seq_.store(seq, std::memory_order_relaxed);
    NoteAppend(seq, record_bytes, wall);
  }
  const bool source_advanced = source_next > source_next_.load(std::memory_order_relaxed);

  // Pass 2: the pipeline, under the profiles' shard locks.
  watermark_.store(wm, std::memory_order_relaxed);
  dedup_entries_.store(dedup_.size(), std::memory_order_relaxed);
  if (!accepted_scratch_.empty()) RunPipeline(seq, NowMs(), /*replay=*/false);
  events_since_checkpoint_ += accepted_scratch_.size();

  uint64_t acc = 0, dup = 0, rej = 0;
  for (const IngestOutcome& o : outcomes) {
    acc += o.accepted;
    dup += o.duplicates;
    rej += o.rejected.size();
  }
  // Counters first: a caller woken by its callback must see its events counted.
  accepted_.fetch_add(acc, std::memory_order_relaxed);
  duplicates_.fetch_add(dup, std::memory_order_relaxed);
  rejected_.fetch_add(rej, std::memory_order_relaxed);
  if (source_advanced) source_next_.store(source_next, std::memory_order_release);
  for (uint32_t wi = 0; wi < works.size(); ++wi) {
    PendingIngest& p = *works[wi].pending;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      p.outcome.Merge(std::move(outcomes[wi]));
    }
    if (p.remaining.fetch_sub(1) == 1) p.done(std::move(p.outcome));
  }
}

void Partition::RunPipeline(uint64_t seq, int64_t now_ms, bool replay) {
  ++batch_number_;
  touched_scratch_.clear();
  constexpr size_t kPrefetchAhead = 8;
  for (size_t i = 0; i < accepted_scratch_.size(); ++i) {
    // Profiles of a large population are cache misses; start loading one a few events ahead.
    if (i + kPrefetchAhead < accepted_scratch_.size()) {
      const Entry* ahead = accepted_scratch_[i + kPrefetchAhead].entry;
      __builtin_prefetch(&ahead->profile);
      __builtin_prefetch(reinterpret_cast<const char*>(&ahead->profile) + 64);
    }
    const Accepted& a = accepted_scratch_[i];
    Entry* const entry = a.entry;
    std::lock_guard<std::mutex> lock(shards_[a.shard].mu);
    entry->profile.timeline_head = MakeLogPosition(seq, a.index);
    for (StreamOperator* op : operators_) op->BeforeApply(id_, *a.event, entry->profile);
    entry->profile.Apply(*a.event, ctx_);
    if (!operators_.empty()) {
      const AppliedEvent applied{id_,  entry->user_id, *a.event, entry->profile,
                                 ctx_, now_ms,         replay};
      for (StreamOperator* op : operators_) op->OnEvent(applied);
    }
    if (entry->touched != batch_number_) {
      entry->touched = batch_number_;
      touched_scratch_.push_back(entry);
      if (!entry->dirty) {
        entry->dirty = true;
        dirty_.push_back(entry);
      }
    }
    by_type_[static_cast<int>(a.event->type)].fetch_add(1, std::memory_order_relaxed);
  }
  if (!operators_.empty()) {
    for (Entry* e : touched_scratch_) AfterChange(e, now_ms, replay);
  }
}

void Partition::AfterChange(Entry* entry, int64_t now_ms, bool replay) {
  std::lock_guard<std::mutex> lock(shards_[entry->shard].mu);
  const ChangedProfile changed{id_,    entry->user_id,    entry->profile, ctx_,
                               now_ms, entry->membership, replay};
  for (StreamOperator* op : operators_) op->OnProfileChanged(changed);
}

void Partition::ScanShards(size_t shard_begin, size_t shard_end,
                           const std::function<void(const ProfileScanItem&)>& fn) {
  constexpr size_t kBatch = 16;
  Entry* batch[kBatch];
  for (size_t s = shard_begin; s < shard_end && s < kShards; ++s) {
    std::lock_guard<std::mutex> lock(shards_[s].mu);
    size_t n = 0;
    auto flush = [&] {
      for (size_t i = 0; i < n; ++i) {
        Entry* e = batch[i];
        fn(ProfileScanItem{id_, e->user_id, e->profile, ctx_, e->membership});
      }
      n = 0;
    };
    for (auto& [user, entry] : shards_[s].users) {
      const char* p = reinterpret_cast<const char*>(entry.get());
      for (size_t line = 0; line < sizeof(Entry); line += 64) __builtin_prefetch(p + line);
      batch[n++] = entry.get();
      if (n == kBatch) flush();
    }
    flush();
  }
}

bool Partition::Read(std::string_view user_id,
                     const std::function<void(const Profile&, const ProfileContext&)>& fn) const {
  const Shard& shard = shards_[ShardOf(user_id)];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.users.find(user_id);
  if (it == shard.users.end()) return false;
  fn(it->second->profile, ctx_);
  return true;
}

void Partition::ForEachUser(const std::function<void(std::string_view)>& fn) const {
  for (size_t s = 0; s < kShards; ++s) {
    std::lock_guard<std::mutex> lock(shards_[s].mu);
    for (const auto& [user, entry] : shards_[s].users) fn(user);
  }
}

void Partition::ForEachProfile(
    const std::function<void(std::string_view, const Profile&, const ProfileContext&)>& fn) const {
  for (size_t s = 0; s < kShards; ++s) {
    std::lock_guard<std::mutex> lock(shards_[s].mu);
    for (const auto& [user, entry] : shards_[s].users) fn(user, entry->profile, ctx_);
  }
}

absl::Status Partition::Checkpoint() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  if (!thread_.joinable()) {
    lock.unlock();
    return WriteCheckpoint();
  }
  const uint64_t target = checkpoint_generation_ + 1;
  checkpoint_requested_ = true;
  queue_cv_.notify_one();
  checkpoint_cv_.wait(lock, [&] { return checkpoint_generation_ >= target; });
  return last_error_;
}

std::string Partition::EncodeMeta() const {
  std::string out;
  out.push_back(kMetaFormatV2);
  AppendVarint64(&out, static_cast<uint64_t>(foreign_ ? own_watermark_ms_ : watermark_.load()));
  AppendVarint64(&out, accepted_.load());
  AppendVarint64(&out, duplicates_.load());
  AppendVarint64(&out, rejected_.load());
  for (const auto& c : by_type_) AppendVarint64(&out, c.load());
  dedup_.Encode(&out);
  std::string prices;
  ctx_.prices.Encode(&prices);
  AppendVarint64(&out, prices.size());
  out.append(prices);
  AppendVarint64(&out, segments_.size());
  for (const LogSegment& g : segments_) {
    AppendVarint64(&out, g.first_seq);
    AppendVarint64(&out, g.last_seq);
    AppendVarint64(&out, g.bytes);
    AppendVarint64(&out, ZigZagEncode64(g.first_append_ms));
    AppendVarint64(&out, ZigZagEncode64(g.last_append_ms));
  }
  return out;
}

absl::Status Partition::DecodeMeta(std::string_view in) {
  auto corrupt = [&](const char* what) {
    return absl::DataLossError("partition " + std::to_string(id_) + ": corrupt checkpoint meta (" +
                               what + ")");
  };
  if (in.empty() || in[0] != kMetaFormatV2) return corrupt("format");
  in.remove_prefix(1);
  uint64_t v[4];
  for (auto& x : v)
    if (!ReadVarint64(&in, &x)) return corrupt("counters");
  watermark_.store(static_cast<int64_t>(v[0]));
  accepted_.store(v[1]);
  duplicates_.store(v[2]);
  rejected_.store(v[3]);
  for (auto& c : by_type_) {
    uint64_t x;
    if (!ReadVarint64(&in, &x)) return corrupt("type counters");
    c.store(x);
  }
  if (!dedup_.Decode(&in)) return corrupt("dedup window");
  uint64_t n;
  if (!ReadVarint64(&in, &n) || n > in.size()) return corrupt("price stats");
  if (absl::Status s = ctx_.prices.Decode(in.substr(0, n)); !s.ok()) return s;
  in.remove_prefix(n);
  uint64_t count;
  if (!ReadVarint64(&in, &count) || count > in.size()) return corrupt("log segments");
  segments_.clear();
  for (uint64_t i = 0; i < count; ++i) {
    LogSegment g;
    uint64_t first_ms, last_ms;
    if (!ReadVarint64(&in, &g.first_seq) || !ReadVarint64(&in, &g.last_seq) ||
        !ReadVarint64(&in, &g.bytes) || !ReadVarint64(&in, &first_ms) ||
        !ReadVarint64(&in, &last_ms)) {
      return corrupt("log segments");
    }
    g.first_append_ms = ZigZagDecode64(first_ms);
    g.last_append_ms = ZigZagDecode64(last_ms);
    segments_.push_back(g);
  }
  return absl::OkStatus();
}

absl::Status Partition::WriteCheckpoint(const Store::CheckpointReplacement* replace) {
  const uint64_t seq = next_seq_ - 1;
  // A listener (the changelog) gets what this checkpoint commits, while the partition is owned
  // here; a restore's checkpoint is what the listener already holds.
  CheckpointListener* listener =
      foreign_ || replace != nullptr ? nullptr : listener_.load(std::memory_order_acquire);
  const bool full = listener != nullptr && listener->NeedsFull(id_);
  if (listener != nullptr) {
    listener->Begin(id_, full);
    // Tombstones even in a full checkpoint: the erased user's earlier records must leave the
    // topic (compaction removes a key's older records once a tombstone follows them).
    if (!erased_since_checkpoint_.empty()) listener->Erased(id_, erased_since_checkpoint_);
  }
  erased_since_checkpoint_.clear();
  CheckpointBreakdown breakdown;
  int64_t lap_ns = SteadyNs();
  const auto lap = [&lap_ns] {
    const int64_t now = SteadyNs();
    const double seconds = static_cast<double>(now - lap_ns) * 1e-9;
    lap_ns = now;
    return seconds;
  };
  breakdown.profiles = dirty_.size();
  std::vector<std::string> blobs;
  std::vector<std::pair<std::string_view, std::string_view>> chunk;
  size_t chunk_bytes = 0;
  auto flush = [&]() -> absl::Status {
    if (chunk.empty()) return absl::OkStatus();
    absl::Status s = store_->PutProfiles(id_, seq, chunk);
    if (listener != nullptr && s.ok()) listener->Profiles(id_, chunk);
    chunk.clear();
    blobs.clear();
    chunk_bytes = 0;
    return s;
  };
  blobs.reserve(4096);
  for (Entry* e : dirty_) {
    if (blobs.size() == blobs.capacity()) {
      if (auto s = flush(); !s.ok()) return s;
    }
    blobs.emplace_back();
    {
      std::lock_guard<std::mutex> lock(shards_[e->shard].mu);
      EncodeProfile(e->profile, ctx_, &blobs.back());
    }
    chunk.emplace_back(e->user_id, blobs.back());
    chunk_bytes += blobs.back().size() + e->user_id.size();
    breakdown.profile_bytes += blobs.back().size();
    if (chunk_bytes >= kCheckpointChunkBytes) {
      if (auto s = flush(); !s.ok()) return s;
    }
  }
  if (auto s = flush(); !s.ok()) return s;
  if (full) {
    // The listener's copy is stale: it also gets every profile that was not dirty (not rewritten
    // locally, where the stored version is current).
    std::vector<std::string_view> users;
    std::vector<std::string> more;
    std::vector<std::pair<std::string_view, std::string_view>> part;
    size_t part_bytes = 0;
    auto publish = [&] {
      for (size_t i = 0; i < users.size(); ++i) part.emplace_back(users[i], more[i]);
      if (!part.empty()) listener->Profiles(id_, part);
      users.clear();
      more.clear();
      part.clear();
      part_bytes = 0;
    };
    for (size_t sh = 0; sh < kShards; ++sh) {
      std::lock_guard<std::mutex> lock(shards_[sh].mu);
      for (const auto& [user, entry] : shards_[sh].users) {
        if (entry->dirty) continue;
        users.push_back(user);
        more.emplace_back();
        EncodeProfile(entry->profile, ctx_, &more.back());
        part_bytes += more.back().size() + user.size();
        if (part_bytes >= kCheckpointChunkBytes || users.size() >= 4096) publish();
      }
    }
    publish();
  }
  // Every operator's state at the same seq, committed in the same write as the meta. An operator
  // with nothing to save still writes an empty value, replacing an older state.
  // Each state is prefixed with the seq it reflects, so that recovery can tell a state left behind
  // by a run whose pipeline lacked the operator.
  breakdown.profiles_seconds = lap();
  std::vector<std::string> states(operators_.size());
  std::vector<std::pair<std::string_view, std::string_view>> named;
  for (size_t i = 0; i < operators_.size(); ++i) {
    AppendVarint64(&states[i], seq);
    if (foreign_) {
      states[i] += own_states_[i];
    } else {
      operators_[i]->SaveState(id_, &states[i]);
    }
    named.emplace_back(operators_[i]->name(), states[i]);
    breakdown.operators.push_back({std::string(operators_[i]->name()), states[i].size(), lap()});
  }
  // Retention is decided before the meta is encoded, so that the committed segment list is the
  // retained one; the records go after the commit (a crash in between leaves records below the
  // first segment, which the next trim's range covers).
  const uint64_t trim_below = PlanRetention(seq);
  const std::string meta = EncodeMeta();
  breakdown.meta_bytes = meta.size();
  breakdown.meta_seconds = lap();
  if (auto s = store_->CommitCheckpoint(id_, seq, meta, named, replace); !s.ok()) return s;
  breakdown.commit_seconds = lap();
  if (listener != nullptr) {
    std::vector<std::pair<std::string_view, std::string_view>> bare;
    for (const auto& [name, state] : named) {
      std::string_view blob = state;
      uint64_t ignored;
      ReadVarint64(&blob, &ignored);  // the seq prefix this function wrote
      bare.emplace_back(name, blob);
    }
    listener->Commit(id_, seq, source_next_.load(std::memory_order_acquire), meta, bare);
  }
  // The versions the new generation replaced are garbage now (a crash before these deletes leaves
  // them shadowed; recovery deletes them).
  std::vector<std::pair<std::string_view, uint64_t>> replaced;
  replaced.reserve(dirty_.size());
  for (Entry* e : dirty_) {
    if (e->label_seq != 0 && e->label_seq != seq) replaced.emplace_back(e->user_id, e->label_seq);
  }
  if (auto s = store_->DeleteProfiles(id_, replaced); !s.ok()) return s;
  for (Entry* e : dirty_) {
    e->dirty = false;
    e->label_seq = seq;
  }
  dirty_.clear();
  checkpoint_seq_.store(seq);
  events_since_checkpoint_ = 0;
  last_checkpoint_wall_ms_ = WallClockMs();
  absl::Status trimmed = trim_below == 0 ? absl::OkStatus() : store_->TrimLog(id_, trim_below);
  breakdown.cleanup_seconds = lap();
  {
    std::lock_guard<std::mutex> lock(breakdown_mu_);
    last_breakdown_ = std::move(breakdown);
  }
  return trimmed;
}

void Partition::NoteAppend(uint64_t seq, uint64_t bytes, int64_t wall_ms) {
  if (segments_.empty() || segments_.back().bytes >= config_.log_segment_bytes ||
      wall_ms - segments_.back().first_append_ms >= kSegmentMs) {
    segments_.push_back(LogSegment{seq, seq, 0, wall_ms, wall_ms});
    log_segments_.store(segments_.size(), std::memory_order_relaxed);
    if (segments_.size() == 1) log_first_seq_.store(seq, std::memory_order_relaxed);
  }
  LogSegment& g = segments_.back();
  g.last_seq = seq;
  g.bytes += bytes;
  g.last_append_ms = wall_ms;
  log_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

uint64_t Partition::PlanRetention(uint64_t covered) {
  if (config_.log_retention_ms <= 0 && config_.log_retention_bytes == 0) return 0;
  uint64_t total = 0;
  for (const LogSegment& g : segments_) total += g.bytes;
  const int64_t cutoff = WallClockMs() - config_.log_retention_ms;
  uint64_t trim_below = 0;
  // The newest segment is the one being appended to: it always stays.
  while (segments_.size() > 1 && segments_.front().last_seq <= covered) {
    const LogSegment& g = segments_.front();
    const bool too_old = config_.log_retention_ms > 0 && g.last_append_ms < cutoff;
    const bool too_big = config_.log_retention_bytes > 0 && total > config_.log_retention_bytes;
    if (!too_old && !too_big) break;
    total -= g.bytes;
    trim_below = g.last_seq + 1;
    segments_.pop_front();
    log_trimmed_.fetch_add(1, std::memory_order_relaxed);
  }
  log_bytes_.store(total, std::memory_order_relaxed);
  log_segments_.store(segments_.size(), std::memory_order_relaxed);
  if (trim_below != 0) {
    log_first_seq_.store(segments_.empty() ? trim_below : segments_.front().first_seq,
                         std::memory_order_relaxed);
  }
  return trim_below;
}

absl::Status Partition::Recover(uint64_t* replayed_events, std::string* phases) {
  *replayed_events = 0;
  // Seconds per phase, for the start-up log line (start-up must not grow with history).
  auto lap = [phases, t = std::chrono::steady_clock::now()](std::string_view what) mutable {
    const auto now = std::chrono::steady_clock::now();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%.*s %.2f s", phases->empty() ? "" : ", ",
                  static_cast<int>(what.size()), what.data(),
                  std::chrono::duration<double>(now - t).count());
    phases->append(buf);
    t = now;
  };
  phases->clear();
  const std::string where = "partition " + std::to_string(id_);
  auto meta = store_->LoadCheckpointMeta(id_);
  if (!meta.ok()) return meta.status();
  if (meta->seq > 0 || !meta->blob.empty()) {
    if (auto s = DecodeMeta(meta->blob); !s.ok()) return s;
  }
  lap("checkpoint meta (" + std::to_string(meta->blob.size() >> 10) + " KiB)");
  checkpoint_seq_.store(meta->seq);
  {
    auto source = store_->SourceOffset(id_);
    if (!source.ok()) return source.status();
    source_next_.store(source->value_or(-1));
  }
  {
    uint64_t bytes = 0;
    for (const LogSegment& g : segments_) bytes += g.bytes;
    log_bytes_.store(bytes);
    log_segments_.store(segments_.size());
    log_first_seq_.store(segments_.empty() ? 0 : segments_.front().first_seq);
  }
  for (StreamOperator* op : operators_) {
    auto state = store_->LoadOperatorState(id_, op->name());
    if (!state.ok()) return state.status();
    if (!state->has_value()) continue;  // an operator new to this pipeline starts empty
    std::string_view blob = **state;
    uint64_t state_seq;
    if (!ReadVarint64(&blob, &state_seq)) {
      return absl::DataLossError(where + ", operator " + std::string(op->name()) +
                                 ": corrupt state header");
    }
    if (state_seq != meta->seq) {
      return absl::FailedPreconditionError(
          where + ": the state of operator '" + std::string(op->name()) + "' reflects log seq " +
          std::to_string(state_seq) + " but the checkpoint seq " + std::to_string(meta->seq) +
          ": the data directory was written by a pipeline without it, so its state cannot be "
          "made exact; re-import the events into a new data directory");
    }
    if (blob.empty()) continue;
    if (absl::Status s = op->LoadState(id_, blob); !s.ok()) {
      return absl::Status(s.code(), where + ", operator " + std::string(op->name()) + ": " +
                                        std::string(s.message()));
    }
    lap(std::string(op->name()) + " state (" + std::to_string(blob.size() >> 10) + " KiB)");
  }
  // Profile versions of a checkpoint that was never committed are not part of the state.
  if (absl::Status s = store_->DeleteProfilesAbove(id_, meta->seq); !s.ok()) return s;
  absl::Status load = store_->ForEachProfile(
      id_, meta->seq,
      [&](std::string_view user, uint64_t generation, std::string_view blob) -> absl::Status {
        size_t shard;
        Entry* entry = FindOrCreate(user, &shard);
        if (entry->label_seq != 0) {
          // An older version a crash kept from being deleted: the newer one wins.
          if (absl::Status s = store_->DeleteProfile(id_, user, entry->label_seq); !s.ok()) {
            return s;
          }
          entry->profile = Profile();
        }
        if (absl::Status s = DecodeProfile(blob, ctx_, &entry->profile); !s.ok()) {
          return absl::DataLossError(where + ", user '" + std::string(user) +
                                     "': " + std::string(s.message()));
        }
        entry->label_seq = generation;
        return absl::OkStatus();
      });
  if (!load.ok()) return load;
  lap(std::to_string(profiles_.load()) + " profiles");
  absl::Status attrs =
      store_->ForEachAttributes(id_, [&](std::string_view user, std::string_view json) {
        size_t shard;
        Entry* entry = FindOrCreate(user, &shard);
        return entry->profile.SetAttributes(json, /*merge=*/false);
      });
  if (!attrs.ok()) return attrs;
  for (size_t s = 0; s < kShards; ++s) {
    for (const auto& [user, entry] : shards_[s].users) {
      population_.Add(entry->profile);
      for (StreamOperator* op : operators_) op->OnProfileLoaded(id_, user, entry->profile, ctx_);
    }
  }
  lap("attributes and profile scan");

  // The log tail through the pipeline, one record at a time as the live writer applied it.
  int64_t wm = watermark_.load();
  uint64_t last = meta->seq;
  std::vector<RecordedEvent> events;
  auto it = store_->ReadLog(id_, meta->seq + 1);
  for (; it->Valid(); it->Next()) {
    const uint64_t seq = it->seq();
    if (!DecodeBatchRecord(it->record(), &events)) {
      return absl::DataLossError(where + ": corrupt log record " + std::to_string(seq));
    }
    accepted_scratch_.clear();
    for (uint32_t i = 0; i < events.size(); ++i) {
      const Event& e = events[i].event;
      if (IsRedacted(e)) continue;  // an erased user's event
      dedup_.Insert(e.id_hash, e.ts_ms, wm);
      wm = std::max(wm, e.ts_ms);
      size_t shard;
      Entry* entry = FindOrCreate(e.user_id, &shard);
      accepted_scratch_.push_back({&e, entry, static_cast<uint32_t>(shard), i});
    }
    watermark_.store(wm);
    if (!accepted_scratch_.empty()) RunPipeline(seq, NowMs(), /*replay=*/true);
    NoteAppend(seq, it->record().size(), WallClockMs());
    accepted_.fetch_add(accepted_scratch_.size(), std::memory_order_relaxed);
    *replayed_events += accepted_scratch_.size();
    last = seq;
  }
  if (auto st = it->status(); !st.ok()) return st;
  lap("log tail of " + std::to_string(*replayed_events) + " events");
  accepted_scratch_.clear();
  recovered_ = true;
  dedup_entries_.store(dedup_.size());
  next_seq_ = last + 1;
  last_seq_.store(last);
  events_since_checkpoint_ = *replayed_events;
  return absl::OkStatus();
}

absl::Status Partition::Timeline(
    std::string_view user_id, size_t limit,
    const std::function<void(const Event&, uint64_t position)>& fn) const {
  uint64_t pos = 0;
  {
    const Shard& shard = shards_[ShardOf(user_id)];
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.users.find(user_id);
    if (it == shard.users.end()) return absl::NotFoundError("unknown user");
    pos = it->second->profile.timeline_head;
  }
  std::string record;
  uint64_t record_seq = 0;
  std::vector<RecordedEvent> events;
  for (size_t n = 0; pos != 0 && n < limit; ++n) {
    const uint64_t seq = PositionSeq(pos);
    if (seq != record_seq) {
      auto r = store_->GetLogRecord(id_, seq);
      if (absl::IsNotFound(r.status())) break;  // trimmed by log retention
      if (!r.ok()) return r.status();
      record = std::move(*r);
      if (!DecodeBatchRecord(record, &events)) {
        return absl::DataLossError("corrupt log record " + std::to_string(seq));
      }
      record_seq = seq;
    }
    const uint32_t idx = PositionIndex(pos);
    if (idx >= events.size()) return absl::DataLossError("dangling timeline position");
    fn(events[idx].event, pos);
    pos = events[idx].prev_position;
  }
  return absl::OkStatus();
}

PartitionStats Partition::Stats() const {
  PartitionStats s;
  s.partition = id_;
  s.profiles = profiles_.load(std::memory_order_relaxed);
  s.last_seq = last_seq_.load(std::memory_order_relaxed);
  s.checkpoint_seq = checkpoint_seq_.load(std::memory_order_relaxed);
  s.watermark_ms = watermark_.load(std::memory_order_relaxed);
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.duplicates = duplicates_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  for (int i = 0; i < kEventTypeCount; ++i) {
    s.events_by_type[i] = by_type_[i].load(std::memory_order_relaxed);
    s.duplicates_by_type[i] = duplicates_by_type_[i].load(std::memory_order_relaxed);
    s.rejected_by_type[i] = rejected_by_type_[i].load(std::memory_order_relaxed);
  }
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    s.queued_events = queued_events_;
    if (!queue_.empty()) {
      s.lag_seconds = static_cast<double>(SteadyNs() - queue_.front().enqueued_ns) * 1e-9;
    }
  }
  s.checkpoints = checkpoints_.load(std::memory_order_relaxed);
  s.checkpoint_seconds_total = checkpoint_seconds_total_.load(std::memory_order_relaxed);
  s.last_checkpoint_seconds = last_checkpoint_seconds_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(breakdown_mu_);
    s.last_checkpoint = last_breakdown_;
  }
  s.dedup_entries = dedup_entries_.load(std::memory_order_relaxed);
  s.log_first_seq = log_first_seq_.load(std::memory_order_relaxed);
  s.log_bytes = log_bytes_.load(std::memory_order_relaxed);
  s.log_segments = log_segments_.load(std::memory_order_relaxed);
  s.log_trimmed_segments = log_trimmed_.load(std::memory_order_relaxed);
  return s;
}

Partition::Memory Partition::MemoryUsage() const {
  Memory m;
  for (size_t s = 0; s < kShards; ++s) {
    std::lock_guard<std::mutex> lock(shards_[s].mu);
    const auto& users = shards_[s].users;
    m.map_bytes += users.capacity() * (sizeof(std::string_view) + sizeof(void*) + 1);
    for (const auto& [user, entry] : users) {
      ++m.profiles;
      m.profile_bytes += entry->profile.MemoryBytes() + sizeof(Entry) - sizeof(Profile) +
                         (entry->user_id.size() > 15 ? entry->user_id.capacity() + 1 : 0);
    }
  }
  m.pool_bytes = ctx_.pool.MemoryBytes();
  m.dedup_bytes = dedup_entries_.load() * DedupWindow::EntryBytes();
  return m;
}

}  // namespace persona
