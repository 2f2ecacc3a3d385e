#include "engine/engine.h"

#include <chrono>
#include <future>
#include <thread>

#include "common/hash.h"
#include "common/json_writer.h"
#include "event/json_event.h"
#include "profile/profile_json.h"
#include "rules/profile_features.h"

namespace persona {

Engine::Engine(const EngineConfig& config) : config_(config) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineConfig& config,
                                                     std::function<void(std::string_view)> log,
                                                     std::vector<StreamOperator*> operators) {
  std::unique_ptr<Engine> engine(new Engine(config));
  EngineConfig& cfg = engine->config_;
  cfg.max_batch_events = std::clamp<uint32_t>(cfg.max_batch_events, 1, kMaxBatchEvents);
  const uint32_t wanted =
      cfg.partitions ? cfg.partitions : std::max(1u, std::thread::hardware_concurrency());
  auto store = Store::Open(cfg.data_dir, wanted);
  if (!store.ok()) return store.status();
  engine->store_ = std::move(*store);
  const uint32_t p = engine->store_->partitions();
  if (cfg.partitions && p != cfg.partitions && log) {
    log("data directory was created with " + std::to_string(p) + " partitions; using " +
        std::to_string(p) + " (requested " + std::to_string(cfg.partitions) + ")");
  }
  cfg.partitions = p;
  if (absl::Status s = engine->ChooseRouting(); !s.ok()) return s;

  std::shared_ptr<const TagRules> rules;
  if (!cfg.tag_rules_file.empty()) {
    auto loaded = TagRules::LoadFile(cfg.tag_rules_file, ProfileFeatureCatalog());
    if (!loaded.ok()) return loaded.status();
    rules = *loaded;
  }
  engine->tag_stage_.SetRules(rules);
  engine->operators_.push_back(&engine->tag_stage_);
  for (StreamOperator* op : operators) {
    for (StreamOperator* other : engine->operators_) {
      if (other->name() == op->name()) {
        return absl::InvalidArgumentError("two stream operators are named '" +
                                          std::string(op->name()) + "'");
      }
    }
    engine->operators_.push_back(op);
  }
  for (StreamOperator* op : engine->operators_) op->OpenPartitions(p);
  Engine* raw = engine.get();
  for (uint32_t i = 0; i < p; ++i) {
    engine->partitions_.push_back(
        std::make_unique<Partition>(i, engine->store_.get(), engine->config_, &engine->operators_,
                                    [raw] { return raw->watermark_ms(); }));
  }

  // Recover partitions in parallel: each replays its own log tail.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<absl::Status> results(p);
  std::vector<uint64_t> replayed(p, 0);
  std::vector<std::string> phases(p);
  {
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < p; ++i) {
      threads.emplace_back(
          [&, i] { results[i] = engine->partitions_[i]->Recover(&replayed[i], &phases[i]); });
    }
    for (auto& t : threads) t.join();
  }
  for (uint32_t i = 0; i < p; ++i) {
    if (!results[i].ok()) return results[i];
    engine->recovered_events_ += replayed[i];
    if (log) log("partition " + std::to_string(i) + " recovered: " + phases[i]);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  engine->recovery_seconds_ = secs;
  if (log && engine->recovered_events_ > 0) {
    log("recovered " + std::to_string(engine->recovered_events_) + " events from the log in " +
        std::to_string(secs) + " s");
  }
  for (StreamOperator* op : engine->operators_) op->OnRecovered();
  for (auto& part : engine->partitions_) part->Start();
  return engine;
}

Engine::~Engine() { (void)Close(); }

absl::Status Engine::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status first;
  for (auto& p : partitions_) {
    absl::Status s = p->Stop();
    if (first.ok() && !s.ok()) first = s;
  }
  if (store_) {
    absl::Status s = store_->Flush();
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

absl::Status Engine::Submit(std::shared_ptr<const EventBatch> batch,
                            std::function<void(IngestOutcome)> done, bool block) {
  const uint32_t p = partitions();
  std::vector<std::vector<uint32_t>> routed(p);
  for (uint32_t i = 0; i < batch->events.size(); ++i) {
    routed[RouteOf(batch->events[i].user_id)].push_back(i);
  }
  // Split per-partition lists so that one work item never exceeds a log record's capacity.
  const size_t max_work = config_.max_batch_events;
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> works;
  for (uint32_t i = 0; i < p; ++i) {
    if (routed[i].empty()) continue;
    if (!block && !partitions_[i]->HasSpace(routed[i].size())) {
      return absl::ResourceExhaustedError("ingest queue of partition " + std::to_string(i) +
                                          " is full");
    }
    for (size_t off = 0; off < routed[i].size(); off += max_work) {
      const size_t end = std::min(routed[i].size(), off + max_work);
      works.emplace_back(i,
                         std::vector<uint32_t>(routed[i].begin() + off, routed[i].begin() + end));
    }
  }
  if (works.empty()) {
    done(IngestOutcome{});
    return absl::OkStatus();
  }
  auto pending = std::make_shared<PendingIngest>();
  pending->done = std::move(done);
  pending->remaining.store(static_cast<int>(works.size()));
  for (auto& [part, indexes] : works) {
    partitions_[part]->Enqueue(
        PartitionWork{batch, std::move(indexes), pending, nullptr, 0, -1, {}},
        block ? Partition::EnqueueMode::kBlock : Partition::EnqueueMode::kForce);
  }
  return absl::OkStatus();
}

absl::Status Engine::ChooseRouting() {
  auto stored = store_->GetSetting("routing");
  if (!stored.ok()) return stored.status();
  constexpr std::string_view kMurmur2 = "kafka-murmur2", kCrc32 = "kafka-crc32";
  if (stored->has_value()) {
    if (**stored != kMurmur2 && **stored != kCrc32) {
      return absl::DataLossError("data directory '" + config_.data_dir + "': unknown routing '" +
                                 **stored + "'");
    }
    const std::string stored_partitioner = **stored == kCrc32 ? "crc32" : "murmur2";
    if (config_.kafka_routing && config_.kafka_partitioner != stored_partitioner) {
      return absl::FailedPreconditionError(
          "data directory '" + config_.data_dir + "' routes users with Kafka's " +
          stored_partitioner + " partitioner, not " + config_.kafka_partitioner +
          " (a directory keeps its routing for life: use a new one)");
    }
    kafka_routing_ = true;  // for life: the owner of every stored user depends on it
    kafka_crc32_ = **stored == kCrc32;
    config_.kafka_routing = true;
    config_.kafka_partitioner = stored_partitioner;
    return absl::OkStatus();
  }
  if (!config_.kafka_routing) return absl::OkStatus();
  if (config_.kafka_partitioner != "murmur2" && config_.kafka_partitioner != "crc32") {
    return absl::InvalidArgumentError("unknown Kafka partitioner '" + config_.kafka_partitioner +
                                      "' (murmur2 or crc32)");
  }
  // Only a data directory that holds nothing yet can switch to Kafka's partitioner.
  for (uint32_t i = 0; i < config_.partitions; ++i) {
    auto last = store_->LastSeq(i);
    if (!last.ok()) return last.status();
    auto meta = store_->LoadCheckpointMeta(i);
    if (!meta.ok()) return meta.status();
    if (*last != 0 || meta->seq != 0) {
      return absl::FailedPreconditionError(
          "data directory '" + config_.data_dir +
          "' already holds events routed by Persona's own hash; consuming Kafka needs Kafka's "
          "murmur2 routing (engine partition = Kafka partition): use a new data directory");
    }
  }
  const bool crc32 = config_.kafka_partitioner == "crc32";
  if (absl::Status s = store_->PutSetting("routing", crc32 ? kCrc32 : kMurmur2); !s.ok()) return s;
  kafka_routing_ = true;
  kafka_crc32_ = crc32;
  return absl::OkStatus();
}

uint32_t Engine::RouteOf(std::string_view user_id) const {
  const uint32_t p = static_cast<uint32_t>(partitions_.size());
  if (!kafka_routing_) return PartitionOf(user_id, p);
  return kafka_crc32_ ? KafkaCrc32PartitionOf(user_id, p) : KafkaPartitionOf(user_id, p);
}

absl::Status Engine::SubmitSourced(uint32_t partition, std::shared_ptr<const EventBatch> batch,
                                   std::vector<DeadLetter> rejects, int64_t source_next,
                                   std::function<void(IngestOutcome)> done, bool block) {
  if (partition >= partitions()) {
    return absl::InvalidArgumentError("no partition " + std::to_string(partition));
  }
  Partition& p = *partitions_[partition];
  if (!block && !p.HasSpace(batch->events.size())) {
    return absl::ResourceExhaustedError("ingest queue of partition " + std::to_string(partition) +
                                        " is full");
  }
  // Work items of at most max_batch_events (a log record's capacity); the last carries the source
  // offset and the dead letters, so the offset is stored only with the batch's last events. (A
  // crash between two items re-delivers the batch; its first items are then duplicates.)
  const size_t n = batch->events.size();
  const size_t max_work = config_.max_batch_events;
  const size_t items = std::max<size_t>(1, (n + max_work - 1) / max_work);
  auto pending = std::make_shared<PendingIngest>();
  pending->done = std::move(done);
  pending->remaining.store(static_cast<int>(items));
  for (size_t k = 0; k < items; ++k) {
    PartitionWork work;
    const size_t begin = k * max_work, end = std::min(n, begin + max_work);
    work.indexes.resize(end - begin);
    for (size_t i = begin; i < end; ++i) work.indexes[i - begin] = static_cast<uint32_t>(i);
    work.batch = batch;
    work.pending = pending;
    if (k + 1 == items) {
      work.source_next = source_next;
      work.source_rejects = std::move(rejects);
    }
    p.Enqueue(std::move(work),
              block ? Partition::EnqueueMode::kBlock : Partition::EnqueueMode::kForce);
  }
  return absl::OkStatus();
}

IngestOutcome Engine::Ingest(std::shared_ptr<const EventBatch> batch) {
  std::promise<IngestOutcome> promise;
  auto future = promise.get_future();
  absl::Status s = Submit(
      std::move(batch), [&promise](IngestOutcome o) { promise.set_value(std::move(o)); }, true);
  (void)s;  // blocking submission does not fail
  return future.get();
}

absl::Status Engine::AddDeadLetters(std::span<const DeadLetter> letters) {
  if (letters.empty()) return absl::OkStatus();
  return store_->AddDeadLetters(letters, config_.sync == SyncPolicy::kAlways);
}

void Engine::SetAttributes(std::string_view user_id, std::string_view json_object, bool merge,
                           std::function<void(absl::StatusOr<std::string>)> done) {
  auto control = std::make_shared<PartitionControl>();
  control->kind = PartitionControl::Kind::kSetAttributes;
  control->user_id = std::string(user_id);
  control->attributes_json = std::string(json_object);
  control->merge = merge;
  control->attributes_done = done;
  if (absl::Status s = EnqueueControl(std::move(control)); !s.ok()) done(s);
}

void Engine::EraseUser(std::string_view user_id,
                       std::function<void(absl::StatusOr<UserErasure>)> done) {
  auto control = std::make_shared<PartitionControl>();
  control->kind = PartitionControl::Kind::kEraseUser;
  control->user_id = std::string(user_id);
  control->erase_done = done;
  if (absl::Status s = EnqueueControl(std::move(control)); !s.ok()) done(s);
}

void Engine::SetForeign(uint32_t partition, bool foreign, std::function<void(absl::Status)> done) {
  auto control = std::make_shared<PartitionControl>();
  control->kind = PartitionControl::Kind::kSetForeign;
  control->foreign = foreign;
  control->status_done = std::move(done);
  EnqueueOnPartition(partition, std::move(control));
}

void Engine::ShareStates(uint32_t partition,
                         std::function<void(std::optional<SharedStates>)> done) {
  auto control = std::make_shared<PartitionControl>();
  control->kind = PartitionControl::Kind::kShareStates;
  control->share_done = std::move(done);
  EnqueueOnPartition(partition, std::move(control));
}

void Engine::LoadForeignStates(uint32_t partition,
                               std::vector<std::pair<std::string, std::string>> states,
                               int64_t watermark_ms, std::function<void(absl::Status)> done) {
  auto control = std::make_shared<PartitionControl>();
  control->kind = PartitionControl::Kind::kLoadForeign;
  control->states = std::move(states);
  control->watermark_ms = watermark_ms;
  control->status_done = std::move(done);
  EnqueueOnPartition(partition, std::move(control));
}

void Engine::RestorePartition(uint32_t partition, std::shared_ptr<PartitionImage> image,
                              std::function<void(absl::Status)> done) {
  auto control = std::make_shared<PartitionControl>();
  control->kind = PartitionControl::Kind::kRestore;
  control->image = std::move(image);
  control->status_done = std::move(done);
  EnqueueOnPartition(partition, std::move(control));
}

void Engine::EnqueueOnPartition(uint32_t partition, std::shared_ptr<PartitionControl> control) {
  const absl::Status s =
      partition < partitions_.size()
          ? partitions_[partition]->EnqueueControl(control)
          : absl::InvalidArgumentError("no partition " + std::to_string(partition));
  if (s.ok()) return;
  if (control->status_done) control->status_done(s);
  if (control->share_done) control->share_done(std::nullopt);
}

absl::Status Engine::EnqueueControl(std::shared_ptr<PartitionControl> control) {
  if (control->user_id.empty()) return absl::InvalidArgumentError("user_id is empty");
  Partition& p = *partitions_[RouteOf(control->user_id)];
  return p.EnqueueControl(std::move(control));
}

absl::StatusOr<std::string> Engine::SetAttributes(std::string_view user_id,
                                                  std::string_view json_object, bool merge) {
  std::promise<absl::StatusOr<std::string>> promise;
  auto future = promise.get_future();
  SetAttributes(user_id, json_object, merge,
                [&promise](absl::StatusOr<std::string> r) { promise.set_value(std::move(r)); });
  return future.get();
}

absl::StatusOr<UserErasure> Engine::EraseUser(std::string_view user_id) {
  std::promise<absl::StatusOr<UserErasure>> promise;
  auto future = promise.get_future();
  EraseUser(user_id,
            [&promise](absl::StatusOr<UserErasure> r) { promise.set_value(std::move(r)); });
  return future.get();
}

absl::Status Engine::health() const {
  for (const auto& p : partitions_) {
    if (absl::Status s = p->health(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool Engine::ReadProfile(
    std::string_view user_id,
    const std::function<void(const Profile&, const ProfileContext&)>& fn) const {
  return partitions_[RouteOf(user_id)]->Read(user_id, fn);
}

std::optional<std::string> Engine::ProfileJson(std::string_view user_id, uint32_t sections,
                                               const ProfileJsonExtra& extra) const {
  std::optional<std::string> out;
  const int64_t now = NowMs();
  // Holding the shared_ptr keeps the names alive even if a reload swaps the rules meanwhile.
  const auto rules = tag_rules();
  const std::span<const std::string> tag_names =
      rules ? rules->names() : std::span<const std::string>();
  ReadProfile(user_id, [&](const Profile& p, const ProfileContext& ctx) {
    JsonWriter w;
    w.Reserve(sections == kAll ? 8192 : 1024);  // a full profile is ~2-6 KiB
    if (extra) {
      WriteProfileJson(w, user_id, p, ctx, now, sections, tag_names,
                       [&](JsonWriter& jw) { extra(jw, p, ctx, now); });
    } else {
      WriteProfileJson(w, user_id, p, ctx, now, sections, tag_names);
    }
    out = w.Take();
  });
  return out;
}

absl::StatusOr<std::string> Engine::TimelineJson(std::string_view user_id, size_t limit) const {
  JsonWriter w;
  w.BeginArray();
  absl::Status s = partitions_[RouteOf(user_id)]->Timeline(
      user_id, limit, [&](const Event& e, uint64_t) { WriteEventJson(w, e); });
  if (!s.ok()) return s;
  w.EndArray();
  return w.Take();
}

absl::Status Engine::Checkpoint() {
  for (auto& p : partitions_) {
    if (auto s = p->Checkpoint(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Engine::ReloadTagRules() {
  if (config_.tag_rules_file.empty()) return absl::OkStatus();
  auto loaded = TagRules::LoadFile(config_.tag_rules_file, ProfileFeatureCatalog());
  if (!loaded.ok()) return loaded.status();
  tag_stage_.SetRules(*loaded);
  return absl::OkStatus();
}

std::shared_ptr<const TagRules> Engine::tag_rules() const { return tag_stage_.rules(); }

int64_t Engine::watermark_ms() const {
  int64_t wm = 0;
  for (const auto& p : partitions_) wm = std::max(wm, p->watermark_ms());
  return wm;
}

int64_t Engine::NowMs() const {
  if (config_.wall_clock) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  return watermark_ms();
}

uint32_t Engine::ScanThreads(uint32_t threads) const {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return std::min<uint32_t>(threads, 64);
}

void Engine::ScanProfiles(uint32_t threads,
                          const std::function<void(uint32_t, const ProfileScanItem&)>& fn) {
  const uint32_t n = ScanThreads(threads);
  // Work units of 8 shards: small enough to balance, large enough that taking one is cheap.
  constexpr size_t kShardsPerUnit = 8;
  constexpr size_t kUnitsPerPartition = Partition::kShards / kShardsPerUnit;
  const size_t units = partitions_.size() * kUnitsPerPartition;
  std::atomic<size_t> next{0};
  auto work = [&](uint32_t thread_index) {
    for (size_t u = next.fetch_add(1); u < units; u = next.fetch_add(1)) {
      Partition& p = *partitions_[u / kUnitsPerPartition];
      if (p.foreign()) continue;  // its users belong to the instance that owns it
      const size_t begin = (u % kUnitsPerPartition) * kShardsPerUnit;
      p.ScanShards(begin, begin + kShardsPerUnit,
                   [&](const ProfileScanItem& item) { fn(thread_index, item); });
    }
  };
  std::vector<std::thread> helpers;
  for (uint32_t t = 1; t < n; ++t) helpers.emplace_back(work, t);
  work(0);
  for (auto& t : helpers) t.join();
}

std::vector<PartitionStats> Engine::Stats() const {
  std::vector<PartitionStats> out;
  for (const auto& p : partitions_) out.push_back(p->Stats());
  return out;
}

std::vector<Partition::Memory> Engine::MemoryUsage() const {
  std::vector<Partition::Memory> out;
  for (const auto& p : partitions_) out.push_back(p->MemoryUsage());
  return out;
}

}  // namespace persona
