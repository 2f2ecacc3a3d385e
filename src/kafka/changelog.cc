#include "kafka/changelog.h"

#include <chrono>
#include <future>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "common/json_writer.h"
#include "common/varint.h"

namespace persona {
namespace {

constexpr char kHeaderFormat = 1;
constexpr size_t kChunkBytes = 512 << 10;
constexpr int kTxnTimeoutMs = 60000;
constexpr char kInstanceKey[] = "changelog.instance";

std::string TxnError(rd_kafka_error_t* e) {
  std::string out = rd_kafka_error_string(e);
  rd_kafka_error_destroy(e);
  return out;
}

uint64_t NewEpoch() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd() ^
         static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

bool ReadString(std::string_view* in, std::string* out) {
  uint64_t n;
  if (!ReadVarint64(in, &n) || n > in->size()) return false;
  out->assign(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}

void AppendString(std::string* out, std::string_view s) {
  AppendVarint64(out, s.size());
  out->append(s);
}

}  // namespace

std::string ChangelogStatusJson(const ChangelogStatus& s) {
  JsonWriter w;
  w.BeginObject();
  w.Key("topic").String(s.topic);
  w.Key("transactions").Uint(s.transactions);
  w.Key("full_transactions").Uint(s.full_transactions);
  w.Key("records").Uint(s.records);
  w.Key("bytes").Uint(s.bytes);
  w.Key("failures").Uint(s.failures);
  w.Key("restores").Uint(s.restores);
  w.Key("restored_profiles").Uint(s.restored_profiles);
  w.Key("last_restore_seconds").Double(s.last_restore_seconds);
  w.Key("restore_seconds_total").Double(s.restore_seconds_total);
  w.Key("assign_seconds_total").Double(s.assign_seconds_total);
  w.Key("restored_partitions").BeginArray();
  for (uint32_t p : s.restored) w.Uint(p);
  w.EndArray();
  w.Key("last_error").String(s.last_error);
  w.EndObject();
  return w.Take();
}

Changelog::Changelog(Engine* engine, const KafkaConfig& config,
                     std::function<void(std::string_view)> log)
    : engine_(engine),
      config_(config),
      topic_(config.changelog_topic_name()),
      log_(std::move(log)) {
  for (uint32_t p = 0; p < engine->partitions(); ++p) parts_.push_back(std::make_unique<Part>());
}

Changelog::~Changelog() = default;

absl::StatusOr<std::unique_ptr<Changelog>> Changelog::Start(
    Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log) {
  std::unique_ptr<Changelog> c(new Changelog(engine, config, std::move(log)));
  absl::StatusOr<int32_t> count =
      KafkaTopicPartitionCount(config.brokers, config.client, c->topic_, std::chrono::seconds(10));
  if (!count.ok()) return count.status();
  if (static_cast<uint32_t>(*count) != engine->partitions()) {
    return absl::FailedPreconditionError(
        "changelog topic '" + c->topic_ + "' has " + std::to_string(*count) +
        " partitions but the events topic has " + std::to_string(engine->partitions()) +
        ": create it with the same count (cleanup.policy=compact)");
  }
  // The writer's identity in the headers: fixed for the data directory.
  auto stored = engine->store().GetMeta(kInstanceKey);
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) {
    c->instance_ = **stored;
  } else {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(NewEpoch()));
    c->instance_ = buf;
    if (absl::Status s = engine->store().PutMeta(kInstanceKey, c->instance_); !s.ok()) return s;
  }
  c->Log("changelog: on '" + c->topic_ + "' (" + std::to_string(*count) +
         " partitions, one transaction per checkpoint)");
  return c;
}

void Changelog::NoteError(std::string message) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  Log("changelog: " + message);
  std::lock_guard lock(error_mu_);
  last_error_ = std::move(message);
}

void Changelog::Log(std::string_view line) const {
  if (log_) log_(line);
}

ChangelogStatus Changelog::Status() const {
  ChangelogStatus s;
  s.topic = topic_;
  s.transactions = transactions_.load();
  s.full_transactions = full_transactions_.load();
  s.records = records_.load();
  s.bytes = bytes_.load();
  s.failures = failures_.load();
  s.restores = restores_.load();
  s.restored_profiles = restored_profiles_.load();
  s.last_restore_seconds = last_restore_seconds_.load();
  s.restore_seconds_total = restore_seconds_total_.load();
  s.assign_seconds_total = assign_seconds_total_.load();
  std::lock_guard lock(error_mu_);
  s.last_error = last_error_;
  s.restored = restored_;
  return s;
}

absl::StatusOr<RdKafkaHandle> Changelog::MakeProducer(uint32_t partition) {
  KafkaProperties props = {{"bootstrap.servers", config_.brokers},
                           {"transactional.id", topic_ + "-" + std::to_string(partition)},
                           {"transaction.timeout.ms", std::to_string(kTxnTimeoutMs)},
                           {"enable.idempotence", "true"},
                           {"linger.ms", "5"},
                           {"client.id", "persona-changelog"}};
  props.insert(props.end(), config_.client.begin(), config_.client.end());
  absl::StatusOr<RdKafkaConf> conf = MakeRdKafkaConf(props);
  if (!conf.ok()) return conf.status();
  absl::StatusOr<RdKafkaHandle> rk = MakeRdKafkaHandle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  // Fences every earlier producer of this transactional.id (the previous owner of the partition)
  // and completes or aborts a transaction it left open.
  if (rd_kafka_error_t* e = rd_kafka_init_transactions(rk->get(), 30000)) {
    return absl::UnavailableError("init_transactions: " + TxnError(e));
  }
  return rk;
}

absl::StatusOr<RdKafkaHandle> Changelog::MakeReader(uint32_t partition, int64_t from) {
  KafkaProperties props = {
      {"bootstrap.servers", config_.brokers}, {"group.id", config_.group + "-changelog-reader"},
      {"client.id", "persona-changelog"},     {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},  {"enable.partition.eof", "true"},
      {"isolation.level", "read_committed"},  {"allow.auto.create.topics", "false"}};
  props.insert(props.end(), config_.client.begin(), config_.client.end());
  absl::StatusOr<RdKafkaConf> conf = MakeRdKafkaConf(props);
  if (!conf.ok()) return conf.status();
  absl::StatusOr<RdKafkaHandle> rk = MakeRdKafkaHandle(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  rd_kafka_poll_set_consumer(rk->get());
  RdKafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), static_cast<int32_t>(partition))
      ->offset = from;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk->get(), list.get()); err) {
    return absl::UnavailableError(std::string("assign: ") + rd_kafka_err2str(err));
  }
  return rk;
}

absl::Status Changelog::ReadTo(
    uint32_t partition, int64_t from,
    const std::function<void(std::string_view, std::string_view, bool)>& fn) {
  absl::StatusOr<RdKafkaHandle> rk = MakeReader(partition, from);
  if (!rk.ok()) return rk.status();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  absl::Status status;
  for (;;) {
    if (std::chrono::steady_clock::now() > deadline) {
      status = absl::DeadlineExceededError("reading partition " + std::to_string(partition) +
                                           " took over 5 minutes");
      break;
    }
    RdKafkaMessage m(rd_kafka_consumer_poll(rk->get(), 200));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) break;
    if (m->err) {
      status = absl::UnavailableError(std::string("reading partition ") +
                                      std::to_string(partition) + ": " + rd_kafka_err2str(m->err));
      break;
    }
    std::string_view key(static_cast<const char*>(m->key), m->key_len);
    std::string_view value(static_cast<const char*>(m->payload), m->len);
    fn(key, value, m->payload != nullptr);
  }
  rd_kafka_consumer_close(rk->get());
  return status;
}

std::string Changelog::EncodeHeader(const Header& h) {
  std::string out;
  out.push_back(kHeaderFormat);
  AppendFixed64(&out, h.epoch);
  AppendString(&out, h.instance);
  AppendVarint64(&out, h.seq);
  AppendVarint64(&out, ZigZagEncode64(h.source_next));
  AppendVarint64(&out, h.meta_chunks);
  AppendVarint64(&out, h.state_chunks.size());
  for (const auto& [name, chunks] : h.state_chunks) {
    AppendString(&out, name);
    AppendVarint64(&out, chunks);
  }
  return out;
}

bool Changelog::DecodeHeader(std::string_view in, Header* h) {
  if (in.empty() || in[0] != kHeaderFormat) return false;
  in.remove_prefix(1);
  uint64_t source, meta_chunks, n;
  if (!ReadFixed64(&in, &h->epoch) || !ReadString(&in, &h->instance) ||
      !ReadVarint64(&in, &h->seq) || !ReadVarint64(&in, &source) ||
      !ReadVarint64(&in, &meta_chunks) || !ReadVarint64(&in, &n) || n > in.size()) {
    return false;
  }
  h->source_next = ZigZagDecode64(source);
  h->meta_chunks = static_cast<uint32_t>(meta_chunks);
  h->state_chunks.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string name;
    uint64_t chunks;
    if (!ReadString(&in, &name) || !ReadVarint64(&in, &chunks)) return false;
    h->state_chunks.emplace_back(std::move(name), static_cast<uint32_t>(chunks));
  }
  return in.empty();
}

absl::Status Changelog::OnAssigned(uint32_t partition) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = Assigned(partition);
  assign_seconds_total_.fetch_add(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return s;
}

absl::Status Changelog::Assigned(uint32_t partition) {
  if (partition >= parts_.size()) return absl::InvalidArgumentError("no such partition");
  Part& part = *parts_[partition];
  const std::string where = "partition " + std::to_string(partition) + ": ";
  {
    std::lock_guard lock(part.mu);
    part.producer.reset();
    part.in_txn = false;
    part.needs_full = true;
    absl::StatusOr<RdKafkaHandle> producer = MakeProducer(partition);
    if (!producer.ok()) {
      NoteError(where + std::string(producer.status().message()));
      return producer.status();
    }
    part.producer = std::move(*producer);
  }
  // Fenced: what the changelog holds now is final until this instance writes.
  rd_kafka_t* probe = parts_[partition]->producer.get();
  int64_t lo = -1, hi = -1;
  if (rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          probe, topic_.c_str(), static_cast<int32_t>(partition), &lo, &hi, 10000);
      err) {
    NoteError(where + "watermarks: " + rd_kafka_err2str(err));
    return absl::UnavailableError(rd_kafka_err2str(err));
  }
  if (hi <= lo) return absl::OkStatus();  // empty: the first checkpoint publishes everything
  const int64_t local_seq = static_cast<int64_t>(engine_->CheckpointSeq(partition));
  const int64_t local_offset = engine_->SourceOffset(partition);
  // A local state the events topic can still bring up to date is kept (its timelines stay
  // whole); the changelog serves a partition this instance has no state of, or one whose missing
  // events the topic's retention has deleted.
  int64_t events_lo = -1, events_hi = -1;
  const bool local_usable = local_offset >= 0 &&
                            rd_kafka_query_watermark_offsets(
                                probe, config_.topic.c_str(), static_cast<int32_t>(partition),
                                &events_lo, &events_hi, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                            events_lo <= local_offset;
  // The header is the last record of the last committed transaction: a look at the tail usually
  // finds it.
  Header header;
  bool found = false;
  absl::Status tail = ReadTo(partition, std::max(lo, hi - 8),
                             [&](std::string_view key, std::string_view value, bool has_value) {
                               if (key == "m" && has_value) found |= DecodeHeader(value, &header);
                             });
  if (!tail.ok()) {
    NoteError(where + std::string(tail.message()));
    return tail;
  }
  auto keep_local = [&](bool same) {
    std::lock_guard lock(part.mu);
    part.needs_full = !same;
    if (same) part.epoch = header.epoch;
    return absl::OkStatus();
  };
  if (found) {
    if (header.instance == instance_ && static_cast<int64_t>(header.seq) == local_seq) {
      return keep_local(true);
    }
    if (header.source_next <= local_offset) return keep_local(false);
  }
  if (local_usable) return keep_local(false);
  // The changelog may be ahead of the local state: read it all. Compaction never moves a
  // partition's start offset; retention does, and then records the state needs may be gone.
  if (lo > 0) {
    NoteError(where + "the changelog starts at offset " + std::to_string(lo) +
              ", not 0: records were deleted by retention (the topic must have "
              "cleanup.policy=compact without delete), so it cannot be restored from");
    return keep_local(false);
  }
  const auto t0 = std::chrono::steady_clock::now();
  absl::flat_hash_map<std::string, std::string> latest;
  found = false;
  absl::Status read =
      ReadTo(partition, lo, [&](std::string_view key, std::string_view value, bool has_value) {
        if (!has_value) {
          latest.erase(std::string(key));
          return;
        }
        latest.insert_or_assign(std::string(key), std::string(value));
      });
  if (!read.ok()) {
    NoteError(where + std::string(read.message()));
    return read;
  }
  auto h = latest.find("m");
  if (h == latest.end() || !DecodeHeader(h->second, &header)) return keep_local(false);
  if (header.source_next <= local_offset) return keep_local(false);
  auto image = std::make_shared<PartitionImage>();
  image->seq = header.seq;
  image->source_next = header.source_next;
  auto chunked = [&](const std::string& prefix, uint32_t chunks, std::string* out) {
    for (uint32_t i = 0; i < chunks; ++i) {
      auto it = latest.find(prefix + std::to_string(i));
      if (it == latest.end()) return false;
      out->append(it->second);
    }
    return true;
  };
  bool complete = chunked("b/", header.meta_chunks, &image->meta);
  for (const auto& [name, chunks] : header.state_chunks) {
    image->states.emplace_back(name, std::string());
    complete = complete && chunked("s" + name + "/", chunks, &image->states.back().second);
  }
  if (!complete) {
    NoteError(where + "the last committed checkpoint is incomplete (a chunk is missing)");
    return keep_local(false);
  }
  for (auto& [key, value] : latest) {
    if (key.empty() || key[0] != 'u') continue;
    std::string_view v = value;
    uint64_t epoch;
    if (!ReadFixed64(&v, &epoch) || epoch != header.epoch) continue;  // before the last full one
    image->profiles.emplace_back(key.substr(1), std::string(v));
    value.clear();
    value.shrink_to_fit();
  }
  latest.clear();
  const size_t profiles = image->profiles.size();
  std::promise<absl::Status> restored;
  engine_->RestorePartition(partition, std::move(image),
                            [&](absl::Status s) { restored.set_value(std::move(s)); });
  absl::Status s = restored.get_future().get();
  if (!s.ok()) {
    NoteError(where + "restore: " + std::string(s.message()));
    return keep_local(false);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  restores_.fetch_add(1);
  {
    std::lock_guard lock(error_mu_);
    restored_.push_back(partition);
  }
  restored_profiles_.fetch_add(profiles);
  last_restore_seconds_.store(seconds);
  restore_seconds_total_.fetch_add(seconds);
  char line[160];
  std::snprintf(line, sizeof line,
                "changelog: restored partition %u (%zu profiles, offset %lld) in %.2f s", partition,
                profiles, static_cast<long long>(header.source_next), seconds);
  Log(line);
  std::lock_guard lock(part.mu);
  part.needs_full = false;
  part.epoch = header.epoch;
  return absl::OkStatus();
}

bool Changelog::NeedsFull(uint32_t partition) {
  Part& part = *parts_[partition];
  std::lock_guard lock(part.mu);
  return part.needs_full;
}

void Changelog::Begin(uint32_t partition, bool full) {
  Part& part = *parts_[partition];
  std::lock_guard lock(part.mu);
  part.in_txn = false;
  if (!part.producer) return;
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(part.producer.get())) {
    NoteError("partition " + std::to_string(partition) + ": begin: " + TxnError(e));
    part.needs_full = true;
    return;
  }
  part.in_txn = true;
  part.txn_failed = false;
  part.full = full;
  part.records = part.bytes = 0;
  if (full) part.epoch = NewEpoch();
  std::string key;
  for (const std::string& user : part.pending_tombstones) {
    key = "u" + user;
    Produce(part, partition, key, nullptr);
  }
}

void Changelog::Produce(Part& part, uint32_t partition, std::string_view key,
                        const std::string* value) {
  if (!part.in_txn || part.txn_failed) return;
  for (;;) {
    rd_kafka_resp_err_t err =
        rd_kafka_producev(part.producer.get(), RD_KAFKA_V_TOPIC(topic_.c_str()),
                          RD_KAFKA_V_PARTITION(static_cast<int32_t>(partition)),
                          RD_KAFKA_V_KEY(key.data(), key.size()),
                          RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                                           value ? value->size() : 0),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(part.producer.get(), 10);
      continue;
    }
    if (err) {
      part.txn_failed = true;
      NoteError("partition " + std::to_string(partition) + ": produce: " + rd_kafka_err2str(err));
      return;
    }
    ++part.records;
    part.bytes += key.size() + (value ? value->size() : 0);
    return;
  }
}

void Changelog::Erased(uint32_t partition, std::span<const std::string> users) {
  Part& part = *parts_[partition];
  std::lock_guard lock(part.mu);
  std::string key;
  for (const std::string& user : users) {
    key = "u" + user;
    Produce(part, partition, key, nullptr);
    part.pending_tombstones.push_back(user);
  }
}

void Changelog::Profiles(uint32_t partition, NamedBlobs user_blobs) {
  Part& part = *parts_[partition];
  std::lock_guard lock(part.mu);
  if (!part.in_txn) return;
  std::string key, value;
  for (const auto& [user, blob] : user_blobs) {
    key.assign("u").append(user);
    value.clear();
    AppendFixed64(&value, part.epoch);
    value.append(blob);
    Produce(part, partition, key, &value);
  }
}

void Changelog::Abort(Part& part, uint32_t partition, std::string why) {
  NoteError("partition " + std::to_string(partition) + ": " + why);
  part.needs_full = true;
  part.in_txn = false;
  if (rd_kafka_error_t* e = rd_kafka_abort_transaction(part.producer.get(), kTxnTimeoutMs)) {
    const bool fatal = rd_kafka_error_is_fatal(e);
    NoteError("partition " + std::to_string(partition) + ": abort: " + TxnError(e));
    // Fenced (another instance owns the partition now) or otherwise unusable: stop publishing
    // until the partition is assigned here again.
    if (fatal) part.producer.reset();
  }
}

void Changelog::Commit(uint32_t partition, uint64_t seq, int64_t source_next, std::string_view meta,
                       NamedBlobs states) {
  Part& part = *parts_[partition];
  std::lock_guard lock(part.mu);
  if (!part.in_txn) return;
  Header header;
  header.epoch = part.epoch;
  header.instance = instance_;
  header.seq = seq;
  header.source_next = source_next;
  std::string chunk;
  auto put_chunks = [&](const std::string& prefix, std::string_view bytes) {
    uint32_t n = 0;
    for (size_t at = 0; at < bytes.size() || n == 0; at += kChunkBytes) {
      chunk.assign(bytes.substr(std::min(at, bytes.size()), kChunkBytes));
      Produce(part, partition, prefix + std::to_string(n), &chunk);
      ++n;
    }
    return n;
  };
  header.meta_chunks = put_chunks("b/", meta);
  for (const auto& [name, state] : states) {
    header.state_chunks.emplace_back(std::string(name),
                                     put_chunks("s" + std::string(name) + "/", state));
  }
  const std::string encoded = EncodeHeader(header);
  Produce(part, partition, "m", &encoded);
  if (part.txn_failed) {
    Abort(part, partition, "a record of checkpoint " + std::to_string(seq) + " was refused");
    return;
  }
  if (rd_kafka_error_t* e = rd_kafka_commit_transaction(part.producer.get(), kTxnTimeoutMs)) {
    const bool abortable = rd_kafka_error_txn_requires_abort(e);
    const bool fatal = rd_kafka_error_is_fatal(e);
    const std::string why = "commit of checkpoint " + std::to_string(seq) + ": " + TxnError(e);
    if (abortable) {
      Abort(part, partition, why);
    } else {
      NoteError("partition " + std::to_string(partition) + ": " + why);
      part.needs_full = true;
      part.in_txn = false;
      if (fatal) part.producer.reset();
    }
    return;
  }
  part.in_txn = false;
  part.needs_full = false;
  part.pending_tombstones.clear();
  transactions_.fetch_add(1, std::memory_order_relaxed);
  if (part.full) full_transactions_.fetch_add(1, std::memory_order_relaxed);
  records_.fetch_add(part.records, std::memory_order_relaxed);
  bytes_.fetch_add(part.bytes, std::memory_order_relaxed);
}

}  // namespace persona
