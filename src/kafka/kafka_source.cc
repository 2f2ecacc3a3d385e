#include "kafka/kafka_source.h"

#include <algorithm>
#include <cstring>

#include "common/json_writer.h"
#include "common/time_util.h"
#include "event/json_event.h"

namespace persona {

// One Kafka partition = one engine partition. Fields without atomics belong to the consumer thread.
struct KafkaSource::Slot {
  int32_t partition = 0;
  bool assigned = false;
  std::shared_ptr<EventBatch> batch;            // polled, not yet handed over
  std::vector<DeadLetter> rejects;              // bad messages of the pending batch
  int64_t base = -1;                            // offset of the pending batch's first message
  int64_t next = -1;                            // offset after the last polled message
  std::chrono::steady_clock::time_point first;  // when the pending batch got its first message
  int64_t target = -1;     // end offset when assigned: caught up at durable >= target
  int64_t committed = -1;  // last offset committed to the group
  // Revoked by the rebalance in progress: assigned back in the same round, nobody else owned it
  // in between (before_resume is then not needed).
  bool revoked_this_round = false;

  std::atomic<bool> is_assigned{false};
  std::atomic<int64_t> durable{-1};  // next offset durable and applied
  std::atomic<int64_t> end{-1};      // high watermark as last seen
  std::atomic<uint64_t> messages{0}, dead_letters{0};
  int in_flight = 0;  // guarded by inflight_mu_
  struct Waiter {
    int64_t offset;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(bool)> done;
  };
  std::vector<Waiter> waiters;  // guarded by inflight_mu_
};

namespace {

std::string Truncated(std::string_view raw) {
  return std::string(raw.substr(0, kMaxIssueRawBytes));
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::Start(
    Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log,
    AssignmentFn on_assignment, ResumeFn before_resume) {
  if (!engine->kafka_routing()) {
    return absl::FailedPreconditionError(
        "the data directory routes users with Persona's own hash; a Kafka source needs one created "
        "with Kafka's partitioner (start with a new --data directory)");
  }
  absl::StatusOr<int32_t> count = KafkaTopicPartitionCount(config.brokers, config.client,
                                                           config.topic, std::chrono::seconds(10));
  if (!count.ok()) return count.status();
  if (static_cast<uint32_t>(*count) != engine->partitions()) {
    return absl::FailedPreconditionError(
        "Kafka topic '" + config.topic + "' has " + std::to_string(*count) +
        " partitions but the data directory has " + std::to_string(engine->partitions()) +
        ": engine partition k consumes Kafka partition k, so the counts must match");
  }
  std::unique_ptr<KafkaSource> source(new KafkaSource(engine, config, std::move(log)));
  source->on_assignment_ = std::move(on_assignment);
  source->before_resume_ = std::move(before_resume);
  KafkaProperties props = {{"bootstrap.servers", config.brokers},
                           {"group.id", config.group},
                           {"client.id", "persona"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"auto.offset.reset", "earliest"},
                           {"allow.auto.create.topics", "false"}};
  props.insert(props.end(), config.client.begin(), config.client.end());
  absl::StatusOr<RdKafkaConf> conf = MakeRdKafkaConf(props);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_rebalance_cb(conf->get(), &KafkaSource::OnRebalance);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaSource::OnError);
  rd_kafka_conf_set_opaque(conf->get(), source.get());
  absl::StatusOr<RdKafkaHandle> rk = MakeRdKafkaHandle(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  source->rk_ = std::move(*rk);
  rd_kafka_poll_set_consumer(source->rk_.get());
  RdKafkaPartitionList topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), config.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(source->rk_.get(), topics.get()); err) {
    return absl::UnavailableError("subscribing to Kafka topic '" + config.topic +
                                  "': " + rd_kafka_err2str(err));
  }
  source->Log("kafka: consuming '" + config.topic + "' from " + config.brokers + " as group '" +
              config.group + "' (" + std::to_string(*count) + " partitions)");
  source->thread_ = std::thread([s = source.get()] { s->Run(); });
  return source;
}

KafkaSource::KafkaSource(Engine* engine, const KafkaConfig& config,
                         std::function<void(std::string_view)> log)
    : engine_(engine),
      config_(config),
      log_(std::move(log)),
      source_name_("kafka:" + config.topic + "/"),
      parser_(std::make_unique<JsonEventParser>(engine->config().limits)) {
  for (uint32_t p = 0; p < engine->partitions(); ++p) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->partition = static_cast<int32_t>(p);
    slots_.back()->durable.store(engine->SourceOffset(p));
  }
}

KafkaSource::~KafkaSource() { Stop(); }

void KafkaSource::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void KafkaSource::Log(std::string_view line) const {
  if (log_) log_(line);
}

void KafkaSource::NoteError(std::string message) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  Log("kafka: " + message);
  std::lock_guard lock(error_mu_);
  last_error_ = std::move(message);
}

void KafkaSource::OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaSource*>(opaque);
  self->NoteError(std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) + ": " +
                  reason);
}

void KafkaSource::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<KafkaSource*>(opaque);
  self->rebalances_.fetch_add(1, std::memory_order_relaxed);
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->Assign(partitions);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, partitions)) {
        self->NoteError(std::string("incremental assign: ") + rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, partitions);
    }
  } else {
    self->Revoke(partitions);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, partitions)) {
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
}

void KafkaSource::Assign(rd_kafka_topic_partition_list_t* partitions) {
  assigned_once_ = true;
  std::string names;
  for (int i = 0; i < partitions->cnt; ++i) {
    rd_kafka_topic_partition_t& tp = partitions->elems[i];
    if (config_.topic != tp.topic || tp.partition < 0 ||
        static_cast<size_t>(tp.partition) >= slots_.size()) {
      NoteError("assigned " + std::string(tp.topic) + "/" + std::to_string(tp.partition) +
                ", which this data directory has no partition for");
      continue;
    }
    Slot& slot = *slots_[tp.partition];
    if (before_resume_ && !slot.assigned && !slot.revoked_this_round) {
      before_resume_(static_cast<uint32_t>(tp.partition));
    }
    const int64_t stored = engine_->SourceOffset(static_cast<uint32_t>(tp.partition));
    slot.durable.store(stored);
    slot.next = stored;
    slot.committed = -1;
    tp.offset = stored >= 0 ? stored : RD_KAFKA_OFFSET_BEGINNING;
    int64_t lo = -1, hi = -1;
    slot.target = -1;
    if (rd_kafka_query_watermark_offsets(rk_.get(), tp.topic, tp.partition, &lo, &hi, 5000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      slot.target = hi;
      slot.end.store(hi);
    }
    slot.assigned = true;
    slot.is_assigned.store(true);
    names += (names.empty() ? "" : ", ") + std::to_string(tp.partition) + "@" +
             (stored >= 0 ? std::to_string(stored) : std::string("beginning"));
  }
  for (auto& s : slots_) s->revoked_this_round = false;
  Log("kafka: assigned partitions " + (names.empty() ? std::string("(none)") : names));
  NotifyAssignment();
  UpdateCaughtUp();
}

void KafkaSource::NotifyAssignment() {
  if (!on_assignment_) return;
  std::vector<bool> owned(slots_.size());
  for (size_t p = 0; p < slots_.size(); ++p) owned[p] = slots_[p]->assigned;
  on_assignment_(owned);
}

void KafkaSource::Revoke(rd_kafka_topic_partition_list_t* partitions) {
  const bool lost = rd_kafka_assignment_lost(rk_.get()) != 0;
  std::string names;
  for (int i = 0; i < partitions->cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = partitions->elems[i];
    if (tp.partition < 0 || static_cast<size_t>(tp.partition) >= slots_.size()) continue;
    Slot& slot = *slots_[tp.partition];
    if (!slot.assigned) continue;
    Flush(slot);
    WaitInFlight(slot);
    names += (names.empty() ? "" : ", ") + std::to_string(tp.partition);
  }
  CommitOffsets(/*async=*/false);
  for (int i = 0; i < partitions->cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = partitions->elems[i];
    if (tp.partition < 0 || static_cast<size_t>(tp.partition) >= slots_.size()) continue;
    slots_[tp.partition]->assigned = false;
    slots_[tp.partition]->is_assigned.store(false);
    // A lost assignment (this member was dropped from the group) may have been owned elsewhere.
    slots_[tp.partition]->revoked_this_round = !lost;
  }
  Log("kafka: revoked partitions " + (names.empty() ? std::string("(none)") : names));
  NotifyAssignment();
}

void KafkaSource::Run() {
  const size_t limit = std::max<size_t>(1, config_.max_batch_events);
  auto last_commit = std::chrono::steady_clock::now();
  while (!stop_.load(std::memory_order_relaxed)) {
    bool pending = false;
    for (const auto& s : slots_) pending |= s->batch != nullptr;
    RdKafkaMessage m(rd_kafka_consumer_poll(rk_.get(), pending ? 1 : 100));
    if (m) HandleMessage(*m);
    const auto now = std::chrono::steady_clock::now();
    for (auto& s : slots_) {
      if (s->batch == nullptr) continue;
      if (s->batch->events.size() >= limit || now - s->first >= config_.linger || !m) Flush(*s);
    }
    if (now - last_commit >= config_.commit_interval) {
      RefreshEnds();
      CommitOffsets(/*async=*/true);
      last_commit = now;
    }
    if (!caught_up_.load(std::memory_order_relaxed)) UpdateCaughtUp();
    if (waiters_.load(std::memory_order_relaxed) > 0) {
      for (auto& s : slots_) FireWaiters(*s, now, false);
    }
  }
  FlushAll();
  for (auto& s : slots_) WaitInFlight(*s);
  CommitOffsets(/*async=*/false);
  rd_kafka_consumer_close(rk_.get());  // revokes (callback above) and leaves the group
  rk_.reset();
  for (auto& s : slots_) FireWaiters(*s, std::chrono::steady_clock::now(), true);
}

void KafkaSource::WhenApplied(int32_t partition, int64_t offset, std::chrono::milliseconds timeout,
                              std::function<void(bool)> done) {
  if (partition < 0 || static_cast<size_t>(partition) >= slots_.size() ||
      !slots_[partition]->is_assigned.load() || stop_.load()) {
    done(false);
    return;
  }
  Slot& slot = *slots_[partition];
  {
    std::lock_guard lock(inflight_mu_);
    if (slot.durable.load() <= offset) {
      slot.waiters.push_back({offset, std::chrono::steady_clock::now() + timeout, std::move(done)});
      waiters_.fetch_add(1);
      return;
    }
  }
  done(true);
}

void KafkaSource::FireWaiters(Slot& slot, std::chrono::steady_clock::time_point now, bool all) {
  std::vector<std::pair<std::function<void(bool)>, bool>> ready;
  {
    std::lock_guard lock(inflight_mu_);
    const int64_t durable = slot.durable.load();
    auto keep = slot.waiters.begin();
    for (auto it = slot.waiters.begin(); it != slot.waiters.end(); ++it) {
      const bool applied = durable > it->offset;
      if (applied || all || it->deadline <= now) {
        ready.emplace_back(std::move(it->done), applied);
      } else {
        if (keep != it) *keep = std::move(*it);
        ++keep;
      }
    }
    slot.waiters.erase(keep, slot.waiters.end());
    waiters_.fetch_sub(static_cast<int>(ready.size()));
  }
  for (auto& [done, applied] : ready) done(applied);
}

void KafkaSource::HandleMessage(const rd_kafka_message_t& m) {
  if (m.err) {
    if (m.err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      NoteError(std::string("consume: ") + rd_kafka_message_errstr(&m));
    }
    return;
  }
  if (m.partition < 0 || static_cast<size_t>(m.partition) >= slots_.size()) return;
  Slot& slot = *slots_[m.partition];
  if (!slot.assigned || m.offset < slot.next) return;  // not ours any more, or a re-delivery
  // A data directory that never consumed the partition expects its first offset, 0.
  const int64_t expected = std::max<int64_t>(slot.next, 0);
  if (m.offset > expected) {
    // Offsets we never saw: the topic's retention deleted them before they were consumed (with
    // auto.offset.reset the consumer restarts at the log start), or compaction removed them.
    const int64_t gap = m.offset - expected;
    skipped_.fetch_add(static_cast<uint64_t>(gap), std::memory_order_relaxed);
    NoteError("partition " + std::to_string(m.partition) + ": offsets " + std::to_string(expected) +
              ".." + std::to_string(m.offset - 1) +
              " were deleted from the topic before they were consumed (" + std::to_string(gap) +
              " messages lost: raise the topic's retention or consume faster)");
  }
  messages_.fetch_add(1, std::memory_order_relaxed);
  slot.messages.fetch_add(1, std::memory_order_relaxed);
  if (slot.batch == nullptr) {
    slot.batch = std::make_shared<EventBatch>();
    slot.base = m.offset;
    slot.first = std::chrono::steady_clock::now();
  }
  const std::string_view value(static_cast<const char*>(m.payload), m.payload ? m.len : 0);
  const int64_t wall = WallClockMs();
  auto reject = [&](std::string user, std::string field, std::string rule, std::string_view raw) {
    DeadLetter d;
    d.received_ms = wall;
    d.source = source_name_ + std::to_string(m.partition);
    d.position = static_cast<uint64_t>(m.offset);
    d.user_id = std::move(user);
    d.field = std::move(field);
    d.rule = std::move(rule);
    d.raw = Truncated(raw);
    slot.rejects.push_back(std::move(d));
    slot.dead_letters.fetch_add(1, std::memory_order_relaxed);
    dead_letters_.fetch_add(1, std::memory_order_relaxed);
  };
  EventBatch& batch = *slot.batch;
  const size_t before = batch.events.size();
  if (value.empty()) {
    reject("", "", "message has no value (a tombstone or an empty message)", "");
  } else {
    std::vector<EventIssue> issues;
    absl::Status parsed = parser_->ParseBody(value, &batch, &issues);
    if (!parsed.ok()) {
      reject(UserIdOfJsonRecord(value), "", std::string(parsed.message()), value);
    }
    for (EventIssue& issue : issues) {
      reject(UserIdOfJsonRecord(issue.raw), std::move(issue.field), std::move(issue.rule),
             issue.raw);
    }
  }
  // Keep the events whose user this partition owns; the others would split a profile in two.
  size_t kept = before;
  for (size_t i = before; i < batch.events.size(); ++i) {
    const uint32_t owner = engine_->RouteOf(batch.events[i].user_id);
    if (owner != static_cast<uint32_t>(m.partition)) {
      reject(std::string(batch.events[i].user_id), "user_id",
             "belongs to partition " + std::to_string(owner) + " by the " +
                 engine_->config().kafka_partitioner + " partitioner but arrived in partition " +
                 std::to_string(m.partition) + ": key messages by user_id",
             value);
      continue;
    }
    batch.events[kept] = batch.events[i];
    batch.source_index.resize(std::max(batch.source_index.size(), kept + 1));
    batch.source_index[kept] = static_cast<uint32_t>(m.offset - slot.base);
    ++kept;
  }
  batch.events.resize(kept);
  batch.source_index.resize(kept);
  slot.next = m.offset + 1;
}

void KafkaSource::Flush(Slot& slot) {
  if (slot.batch == nullptr) return;
  std::shared_ptr<const EventBatch> batch = std::move(slot.batch);
  slot.batch = nullptr;
  std::vector<DeadLetter> rejects = std::move(slot.rejects);
  slot.rejects.clear();
  const int64_t next = slot.next;
  batches_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(inflight_mu_);
    ++slot.in_flight;
  }
  Slot* s = &slot;
  absl::Status st = engine_->SubmitSourced(
      static_cast<uint32_t>(slot.partition), std::move(batch), std::move(rejects), next,
      [this, s, next](IngestOutcome outcome) {
        events_.fetch_add(outcome.accepted, std::memory_order_relaxed);
        {
          std::lock_guard lock(inflight_mu_);
          int64_t cur = s->durable.load(std::memory_order_relaxed);
          while (next > cur && !s->durable.compare_exchange_weak(cur, next)) {
          }
          --s->in_flight;
        }
        inflight_cv_.notify_all();
        if (waiters_.load(std::memory_order_relaxed) > 0) {
          FireWaiters(*s, std::chrono::steady_clock::time_point::min(), false);
        }
      },
      /*block=*/true);
  if (!st.ok()) {
    // Nothing of the batch is durable and its offsets are not stored: a restart consumes it again.
    NoteError("partition " + std::to_string(slot.partition) + ": " + std::string(st.message()));
    {
      std::lock_guard lock(inflight_mu_);
      --slot.in_flight;
    }
    inflight_cv_.notify_all();
  }
}

void KafkaSource::FlushAll() {
  for (auto& s : slots_) Flush(*s);
}

void KafkaSource::WaitInFlight(Slot& slot) {
  std::unique_lock lock(inflight_mu_);
  inflight_cv_.wait(lock, [&] { return slot.in_flight == 0; });
}

void KafkaSource::CommitOffsets(bool async) {
  if (!rk_) return;
  RdKafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(slots_.size())));
  std::vector<Slot*> advanced;
  for (auto& s : slots_) {
    const int64_t durable = s->durable.load(std::memory_order_acquire);
    if (!s->assigned || durable < 0 || durable <= s->committed) continue;
    rd_kafka_topic_partition_list_add(list.get(), config_.topic.c_str(), s->partition)->offset =
        durable;
    s->committed = durable;
    advanced.push_back(s.get());
  }
  if (list->cnt == 0) return;
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), async ? 1 : 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    for (Slot* s : advanced) s->committed = -1;  // try again next time
    NoteError(std::string("offset commit: ") + rd_kafka_err2str(err));
  }
}

void KafkaSource::RefreshEnds() {
  for (auto& s : slots_) {
    if (!s->assigned) continue;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(rk_.get(), config_.topic.c_str(), s->partition, &lo, &hi) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi >= 0) {
      s->end.store(hi);
      if (s->target < 0) s->target = hi;
    }
  }
}

void KafkaSource::UpdateCaughtUp() {
  if (!assigned_once_) return;
  for (const auto& s : slots_) {
    if (!s->assigned) continue;
    if (s->target < 0) return;  // end offset not known yet
    if (s->target > 0 && s->durable.load(std::memory_order_acquire) < s->target) return;
  }
  if (!caught_up_.exchange(true)) Log("kafka: caught up with the topic's backlog");
}

KafkaSourceStatus KafkaSource::Status() const {
  KafkaSourceStatus st;
  st.brokers = config_.brokers;
  st.topic = config_.topic;
  st.group = config_.group;
  st.caught_up = caught_up();
  st.messages = messages_.load();
  st.events = events_.load();
  st.dead_letters = dead_letters_.load();
  st.batches = batches_.load();
  st.rebalances = rebalances_.load();
  st.skipped = skipped_.load();
  st.errors = errors_.load();
  {
    std::lock_guard lock(error_mu_);
    st.last_error = last_error_;
  }
  for (const auto& s : slots_) {
    KafkaPartitionStatus p;
    p.partition = s->partition;
    p.assigned = s->is_assigned.load();
    p.next_offset = s->durable.load();
    p.end_offset = s->end.load();
    p.lag = p.end_offset >= 0
                ? std::max<int64_t>(0, p.end_offset - std::max<int64_t>(0, p.next_offset))
                : 0;
    p.messages = s->messages.load();
    p.dead_letters = s->dead_letters.load();
    st.partitions.push_back(p);
  }
  return st;
}

std::string KafkaSourceStatusJson(const KafkaSourceStatus& st) {
  JsonWriter w;
  w.BeginObject();
  w.Key("brokers").String(st.brokers);
  w.Key("topic").String(st.topic);
  w.Key("group").String(st.group);
  w.Key("caught_up").Bool(st.caught_up);
  w.Key("messages").Uint(st.messages);
  w.Key("events").Uint(st.events);
  w.Key("dead_letters").Uint(st.dead_letters);
  w.Key("batches").Uint(st.batches);
  w.Key("rebalances").Uint(st.rebalances);
  w.Key("errors").Uint(st.errors);
  w.Key("skipped").Uint(st.skipped);
  w.Key("last_error").String(st.last_error);
  int64_t lag = 0;
  for (const KafkaPartitionStatus& p : st.partitions) lag += p.assigned ? p.lag : 0;
  w.Key("lag").Int(lag);
  w.Key("partitions").BeginArray();
  for (const KafkaPartitionStatus& p : st.partitions) {
    w.BeginObject();
    w.Key("partition").Int(p.partition);
    w.Key("assigned").Bool(p.assigned);
    w.Key("next_offset").Int(p.next_offset);
    w.Key("end_offset").Int(p.end_offset);
    w.Key("lag").Int(p.lag);
    w.Key("messages").Uint(p.messages);
    w.Key("dead_letters").Uint(p.dead_letters);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.str();
}

}  // namespace persona
