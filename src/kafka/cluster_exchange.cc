#include "kafka/cluster_exchange.h"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "common/json_writer.h"
#include "common/time_util.h"
#include "common/varint.h"

namespace persona {
namespace {

constexpr char kMemberPrefix[] = "member/";
constexpr char kStatePrefix[] = "state/";
constexpr char kChunkFormat = 'P';
constexpr size_t kChunkBytes = 512 << 10;

// The whole shared state of a partition: seq, then (name, bytes) per operator.
std::string EncodePayload(const SharedStates& shared) {
  std::string out;
  AppendVarint64(&out, shared.seq);
  AppendVarint64(&out, ZigZagEncode64(shared.source_next));
  AppendVarint64(&out, ZigZagEncode64(shared.watermark_ms));
  AppendVarint64(&out, shared.states.size());
  for (const auto& [name, blob] : shared.states) {
    AppendVarint64(&out, name.size());
    out += name;
    AppendVarint64(&out, blob.size());
    out += blob;
  }
  return out;
}

bool DecodePayload(std::string_view in, int64_t* watermark_ms,
                   std::vector<std::pair<std::string, std::string>>* states) {
  uint64_t seq, source, watermark, n;
  if (!ReadVarint64(&in, &seq) || !ReadVarint64(&in, &source) || !ReadVarint64(&in, &watermark) ||
      !ReadVarint64(&in, &n) || n > in.size()) {
    return false;
  }
  *watermark_ms = ZigZagDecode64(watermark);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len;
    std::string name, blob;
    if (!ReadVarint64(&in, &len) || len > in.size()) return false;
    name.assign(in.substr(0, len));
    in.remove_prefix(len);
    if (!ReadVarint64(&in, &len) || len > in.size()) return false;
    blob.assign(in.substr(0, len));
    in.remove_prefix(len);
    states->emplace_back(std::move(name), std::move(blob));
  }
  return in.empty();
}

}  // namespace

std::string ClusterStatusJson(const ClusterStatus& s) {
  JsonWriter w;
  w.BeginObject();
  w.Key("topic").String(s.topic);
  w.Key("self").String(s.self_url);
  w.Key("shares_published").Uint(s.shares_published);
  w.Key("share_bytes_published").Uint(s.share_bytes_published);
  w.Key("shares_received").Uint(s.shares_received);
  w.Key("shares_applied").Uint(s.shares_applied);
  w.Key("errors").Uint(s.errors);
  w.Key("last_error").String(s.last_error);
  w.Key("members").BeginArray();
  for (const ClusterMember& m : s.members) {
    w.BeginObject();
    w.Key("url").String(m.url);
    w.Key("at_ms").Int(m.at_ms);
    w.Key("partitions").BeginArray();
    for (int32_t p : m.partitions) w.Int(p);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("partitions").BeginArray();
  for (const ClusterPartitionStatus& p : s.partitions) {
    w.BeginObject();
    w.Key("partition").Int(p.partition);
    w.Key("foreign").Bool(p.foreign);
    w.Key("owner").String(p.owner);
    w.Key("shared_seq").Uint(p.shared_seq);
    w.Key("shared_age_ms").Int(p.shared_age_ms);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.str();
}

ClusterExchange::ClusterExchange(Engine* engine, const KafkaConfig& config,
                                 std::function<void(std::string_view)> log)
    : engine_(engine), config_(config), topic_(config.cluster_topic_name()), log_(std::move(log)) {
  const uint32_t n = engine->partitions();
  owned_.assign(n, false);
  foreign_.assign(n, false);
  latest_.resize(n);
  applied_seq_.assign(n, 0);
  applied_at_ms_.assign(n, -1);
  published_seq_.assign(n, ~uint64_t{0});
  assembling_.resize(n);
}

absl::StatusOr<std::unique_ptr<ClusterExchange>> ClusterExchange::Start(
    Engine* engine, const KafkaConfig& config, std::function<void(std::string_view)> log) {
  std::unique_ptr<ClusterExchange> x(new ClusterExchange(engine, config, std::move(log)));
  KafkaProperties producer_props = config.client;
  auto producer = KafkaProducer::Create(config.brokers, producer_props, /*poll_thread=*/true);
  if (!producer.ok()) return producer.status();
  x->producer_ = std::move(*producer);
  const auto fail = [&](const absl::Status& s) {
    return absl::Status(s.code(), "cluster topic '" + x->topic_ + "': " + std::string(s.message()) +
                                      " (create it compacted, or set [kafka] cluster = false "
                                      "to run without forwarding and shared state)");
  };
  absl::StatusOr<int32_t> count =
      KafkaTopicPartitionCount(config.brokers, config.client, x->topic_, std::chrono::seconds(10));
  if (absl::IsNotFound(count.status())) {
    // Brokers that allow it create the topic on a first write (compaction is then the broker's
    // default policy: docs/cluster.md says how to create it compacted).
    if (absl::Status s = x->producer_->Produce(x->topic_, "hello/" + config.group, "{}"); !s.ok()) {
      return fail(s);
    }
    if (absl::Status s = x->producer_->Flush(std::chrono::seconds(15)); !s.ok()) return fail(s);
    count = KafkaTopicPartitionCount(config.brokers, config.client, x->topic_,
                                     std::chrono::seconds(10));
  }
  if (!count.ok()) return fail(count.status());

  KafkaProperties props = {
      {"bootstrap.servers", config.brokers}, {"group.id", config.group + "-cluster-reader"},
      {"client.id", "persona-cluster"},      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"}, {"allow.auto.create.topics", "false"}};
  props.insert(props.end(), config.client.begin(), config.client.end());
  absl::StatusOr<RdKafkaConf> conf = MakeRdKafkaConf(props);
  if (!conf.ok()) return conf.status();
  absl::StatusOr<RdKafkaHandle> rk = MakeRdKafkaHandle(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  x->consumer_ = std::move(*rk);
  rd_kafka_poll_set_consumer(x->consumer_.get());
  RdKafkaPartitionList all(rd_kafka_topic_partition_list_new(*count));
  for (int32_t p = 0; p < *count; ++p) {
    rd_kafka_topic_partition_list_add(all.get(), x->topic_.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_resp_err_t err = rd_kafka_assign(x->consumer_.get(), all.get()); err) {
    return fail(absl::UnavailableError(std::string("assign: ") + rd_kafka_err2str(err)));
  }
  x->Log("cluster: on '" + x->topic_ + "' (" + std::to_string(*count) +
         " partitions), sharing state every " + std::to_string(config.share_interval.count()) +
         " ms");
  x->thread_ = std::thread([p = x.get()] { p->Run(); });
  return x;
}

ClusterExchange::~ClusterExchange() { Stop(); }

void ClusterExchange::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (producer_ && !self_url().empty()) {
    (void)PublishMember(std::vector<bool>(owned_.size(), false));
    (void)producer_->Flush(std::chrono::seconds(5));
  }
  if (consumer_) {
    rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
  }
}

void ClusterExchange::Log(std::string_view line) const {
  if (log_) log_(line);
}

void ClusterExchange::NoteError(std::string message) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  Log("cluster: " + message);
  std::lock_guard lock(error_mu_);
  last_error_ = std::move(message);
}

std::string ClusterExchange::self_url() const {
  std::lock_guard lock(mu_);
  return self_url_;
}

void ClusterExchange::SetSelfUrl(std::string url) {
  std::vector<bool> owned;
  {
    std::lock_guard lock(mu_);
    self_url_ = std::move(url);
    owned = owned_;
  }
  Log("cluster: this instance is " + self_url());
  if (absl::Status s = PublishMember(owned); !s.ok()) {
    NoteError("member record: " + std::string(s.message()));
  }
}

absl::Status ClusterExchange::PublishMember(const std::vector<bool>& owned) {
  const std::string self = self_url();
  if (self.empty()) return absl::OkStatus();  // published by SetSelfUrl
  JsonWriter w;
  w.BeginObject();
  w.Key("url").String(self);
  w.Key("at_ms").Int(WallClockMs());
  w.Key("partitions").BeginArray();
  for (size_t p = 0; p < owned.size(); ++p) {
    if (owned[p]) w.Int(static_cast<int64_t>(p));
  }
  w.EndArray();
  w.EndObject();
  return producer_->Produce(topic_, kMemberPrefix + self, w.str(), -1,
                            [this](const absl::Status& s, int32_t, int64_t) {
                              if (!s.ok()) NoteError("member record: " + std::string(s.message()));
                            });
}

void ClusterExchange::OnAssignment(const std::vector<bool>& owned) {
  {
    std::lock_guard lock(mu_);
    for (size_t p = 0; p < owned.size() && p < owned_.size(); ++p) {
      const auto partition = static_cast<uint32_t>(p);
      if (owned[p] && foreign_[p]) {
        // Ordered before any of the partition's events: its own state is back first.
        engine_->SetForeign(partition, false, [this, p](absl::Status s) {
          if (!s.ok())
            NoteError("partition " + std::to_string(p) + ": " + std::string(s.message()));
        });
        foreign_[p] = false;
        applied_seq_[p] = 0;
        applied_at_ms_[p] = -1;
      } else if (!owned[p] && !foreign_[p]) {
        engine_->SetForeign(partition, true, [this, p](absl::Status s) {
          if (!s.ok())
            NoteError("partition " + std::to_string(p) + ": " + std::string(s.message()));
        });
        foreign_[p] = true;
        if (latest_[p]) ApplyShared(partition, *latest_[p]);
      }
    }
    owned_ = owned;
  }
  if (absl::Status s = PublishMember(owned); !s.ok()) {
    NoteError("member record: " + std::string(s.message()));
  }
}

// Called with mu_ held.
void ClusterExchange::ApplyShared(uint32_t partition, const Shared& shared) {
  applied_seq_[partition] = shared.seq;
  applied_at_ms_[partition] = shared.at_ms;
  engine_->LoadForeignStates(
      partition, shared.states, shared.watermark_ms, [this, partition](absl::Status s) {
        if (s.ok()) {
          shares_applied_.fetch_add(1, std::memory_order_relaxed);
        } else if (!absl::IsFailedPrecondition(s)) {  // owned again meanwhile: nothing to lay over
          NoteError("partition " + std::to_string(partition) + ": " + std::string(s.message()));
        }
      });
}

std::optional<std::string> ClusterExchange::OwnerUrl(uint32_t partition) const {
  std::lock_guard lock(mu_);
  const ClusterMember* best = nullptr;
  for (const auto& [url, m] : members_) {
    if (std::find(m.partitions.begin(), m.partitions.end(), static_cast<int32_t>(partition)) ==
        m.partitions.end()) {
      continue;
    }
    if (best == nullptr || m.at_ms > best->at_ms) best = &m;
  }
  if (best == nullptr || best->url == self_url_) return std::nullopt;
  return best->url;
}

ClusterStatus ClusterExchange::Status() const {
  ClusterStatus s;
  s.topic = topic_;
  s.self_url = self_url();
  s.shares_published = shares_published_.load();
  s.share_bytes_published = share_bytes_published_.load();
  s.shares_received = shares_received_.load();
  s.shares_applied = shares_applied_.load();
  s.errors = errors_.load();
  std::vector<std::optional<std::string>> owners;
  for (uint32_t p = 0; p < owned_.size(); ++p) owners.push_back(OwnerUrl(p));
  const int64_t now = WallClockMs();
  {
    std::lock_guard lock(error_mu_);
    s.last_error = last_error_;
  }
  std::lock_guard lock(mu_);
  for (const auto& [url, m] : members_) s.members.push_back(m);
  for (uint32_t p = 0; p < owned_.size(); ++p) {
    ClusterPartitionStatus ps;
    ps.partition = static_cast<int32_t>(p);
    ps.foreign = foreign_[p];
    ps.owner = owners[p].value_or("");
    ps.shared_seq = foreign_[p] ? applied_seq_[p] : 0;
    ps.shared_age_ms = foreign_[p] && applied_at_ms_[p] >= 0 ? now - applied_at_ms_[p] : -1;
    s.partitions.push_back(std::move(ps));
  }
  return s;
}

void ClusterExchange::Run() {
  auto next_share = std::chrono::steady_clock::now() + config_.share_interval;
  while (!stop_.load(std::memory_order_relaxed)) {
    RdKafkaMessage m(rd_kafka_consumer_poll(consumer_.get(), 50));
    if (m) {
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        HandleRecord(std::string_view(static_cast<const char*>(m->key), m->key_len),
                     std::string_view(static_cast<const char*>(m->payload), m->len));
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        NoteError(rd_kafka_message_errstr(m.get()));
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_share) {
      ShareOwned();
      // Sharing snapshots operator state on the partitions' writers: it may take at most a tenth
      // of the time (a large state is shared less often than share_interval).
      const auto spent = std::chrono::steady_clock::now() - now;
      next_share = std::chrono::steady_clock::now() +
                   std::max<std::chrono::steady_clock::duration>(config_.share_interval, 9 * spent);
    }
  }
}

void ClusterExchange::HandleRecord(std::string_view key, std::string_view value) {
  if (key.starts_with(kMemberPrefix)) {
    HandleMember(value);
    return;
  }
  if (!key.starts_with(kStatePrefix)) return;  // another kind of record (a later version's)
  key.remove_prefix(sizeof(kStatePrefix) - 1);
  uint32_t partition = 0;
  const size_t slash = key.find('/');
  const std::string_view digits = key.substr(0, slash);
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return;
  }
  for (char c : digits) partition = partition * 10 + static_cast<uint32_t>(c - '0');
  if (partition >= assembling_.size()) return;
  HandleChunk(partition, value);
}

void ClusterExchange::HandleMember(std::string_view value) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(value.data(), value.size()).get(doc)) return;
  ClusterMember m;
  std::string_view url;
  int64_t at_ms;
  simdjson::dom::array parts;
  if (doc["url"].get(url) || doc["at_ms"].get(at_ms) || doc["partitions"].get(parts)) return;
  m.url = std::string(url);
  m.at_ms = at_ms;
  for (simdjson::dom::element e : parts) {
    int64_t p;
    if (!e.get(p) && p >= 0) m.partitions.push_back(static_cast<int32_t>(p));
  }
  std::lock_guard lock(mu_);
  const bool joined = m.url != self_url_ && !m.partitions.empty() &&
                      (!members_.contains(m.url) || members_[m.url].partitions.empty());
  auto [it, inserted] = members_.try_emplace(m.url, m);
  if (!inserted && it->second.at_ms <= m.at_ms) it->second = std::move(m);
  // A member that has partitions now needs the state of this instance's: share all of it again.
  if (joined) published_seq_.assign(published_seq_.size(), ~uint64_t{0});
}

void ClusterExchange::HandleChunk(uint32_t partition, std::string_view in) {
  if (in.empty() || in[0] != kChunkFormat) return;
  in.remove_prefix(1);
  uint64_t at_ms, seq, index, count, url_len;
  if (!ReadVarint64(&in, &at_ms) || !ReadVarint64(&in, &seq) || !ReadVarint64(&in, &index) ||
      !ReadVarint64(&in, &count) || count == 0 || count > (1u << 20) || index >= count ||
      !ReadVarint64(&in, &url_len) || url_len > in.size()) {
    NoteError("a malformed shared-state chunk of partition " + std::to_string(partition));
    return;
  }
  const std::string_view url = in.substr(0, url_len);
  in.remove_prefix(url_len);
  {
    std::lock_guard lock(mu_);
    if (latest_[partition] && static_cast<int64_t>(at_ms) <= latest_[partition]->at_ms) return;
  }
  Assembly& a = assembling_[partition];
  const bool same = a.at_ms == static_cast<int64_t>(at_ms) && a.url == url && a.seq == seq &&
                    a.chunks.size() == count;
  if (!same) {
    if (static_cast<int64_t>(at_ms) < a.at_ms) return;  // older than the one being assembled
    a = Assembly{std::string(url), static_cast<int64_t>(at_ms), seq,
                 std::vector<std::string>(count), 0};
  }
  if (!a.chunks[index].empty()) return;
  a.chunks[index] = std::string(in);  // never empty: the payload fills every chunk
  if (++a.received < count) return;
  std::string payload;
  for (const std::string& c : a.chunks) payload += c;
  Shared shared;
  shared.url = a.url;
  shared.at_ms = a.at_ms;
  shared.seq = a.seq;
  a = Assembly{};
  if (!DecodePayload(payload, &shared.watermark_ms, &shared.states)) {
    NoteError("a malformed shared state of partition " + std::to_string(partition));
    return;
  }
  shares_received_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (foreign_[partition] && shared.url != self_url_) ApplyShared(partition, shared);
  latest_[partition] = std::move(shared);
}

void ClusterExchange::ShareOwned() {
  std::vector<bool> owned;
  {
    std::lock_guard lock(mu_);
    if (self_url_.empty()) return;
    // Alone in the group: nobody to share with (a member that joins triggers a full share).
    const bool others = std::any_of(members_.begin(), members_.end(), [&](const auto& entry) {
      return entry.first != self_url_ && !entry.second.partitions.empty();
    });
    if (!others) return;
    owned = owned_;
  }
  for (uint32_t p = 0; p < owned.size() && !stop_.load(); ++p) {
    // Unchanged since the last share: no snapshot on the partition's writer.
    if (!owned[p] || engine_->foreign(p) || engine_->LastSeq(p) == published_seq_[p]) continue;
    std::promise<std::optional<SharedStates>> promise;
    std::future<std::optional<SharedStates>> future = promise.get_future();
    engine_->ShareStates(
        p, [&promise](std::optional<SharedStates> s) { promise.set_value(std::move(s)); });
    std::optional<SharedStates> shared = future.get();
    if (!shared || shared->seq == published_seq_[p]) continue;
    const std::string payload = EncodePayload(*shared);
    const uint64_t count = std::max<uint64_t>(1, (payload.size() + kChunkBytes - 1) / kChunkBytes);
    const int64_t at_ms = WallClockMs();
    bool ok = true;
    const std::string self = self_url();
    for (uint64_t i = 0; i < count && ok; ++i) {
      std::string value(1, kChunkFormat);
      AppendVarint64(&value, static_cast<uint64_t>(at_ms));
      AppendVarint64(&value, shared->seq);
      AppendVarint64(&value, i);
      AppendVarint64(&value, count);
      AppendVarint64(&value, self.size());
      value += self;
      value.append(payload, i * kChunkBytes, kChunkBytes);
      absl::Status s = producer_->Produce(
          topic_, std::string(kStatePrefix) + std::to_string(p) + "/" + std::to_string(i), value,
          -1, [this](const absl::Status& st, int32_t, int64_t) {
            if (!st.ok()) NoteError("shared state: " + std::string(st.message()));
          });
      if (!s.ok()) {
        NoteError("shared state of partition " + std::to_string(p) + ": " +
                  std::string(s.message()));
        ok = false;
      }
    }
    if (!ok) continue;
    published_seq_[p] = shared->seq;
    shares_published_.fetch_add(1, std::memory_order_relaxed);
    share_bytes_published_.fetch_add(payload.size(), std::memory_order_relaxed);
  }
}

}  // namespace persona
