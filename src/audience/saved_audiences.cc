#include "audience/saved_audiences.h"

#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/json_writer.h"
#include "common/time_util.h"

namespace persona {

// One saved audience. Shared by the definitions list and the snapshots, so a writer holding an
// old snapshot can still update an audience that was deleted meanwhile (harmlessly).
struct SavedAudiences::Audience {
  std::string id;
  std::string name;
  std::string description;
  std::string text;  // the condition as given
  int64_t created_ms = 0;
  std::optional<AudienceCondition> condition;  // nullopt: inactive (see error)
  std::string error;
  int bit = -1;  // membership bit while active

  std::atomic<uint64_t> size{0};
  std::atomic<uint64_t> entered{0};
  std::atomic<uint64_t> exited{0};

  // The change ring and the long-poll waiters. Taken only when a membership changes.
  mutable std::mutex mu;
  std::deque<MembershipChange> ring;
  uint64_t next_seq = 1;
  std::vector<std::shared_ptr<Waiter>> waiters;
  bool deleted = false;
};

struct SavedAudiences::Waiter {
  uint64_t after = 0;
  std::function<void()> ready;
  std::atomic<bool> fired{false};
  std::weak_ptr<Audience> audience;
};

// What the writers evaluate: immutable once published.
struct SavedAudiences::Snapshot {
  std::vector<std::shared_ptr<Audience>> audiences;  // ascending bit
  std::vector<const AudienceCondition*> conditions;  // conditions[i] of audiences[i]
  std::array<uint8_t, 64> bit_of{};                  // bit of conditions[i]
  std::array<Audience*, 64> by_bit{};
  uint64_t mask = 0;        // the bits evaluated
  uint64_t emitting = 0;    // the bits whose flips are emitted as changes
  bool dense = true;        // bit_of[i] == i for every i: MatchAll's result is the membership
  bool reads_tags = false;  // some condition may call tag(): follow tag-rule reloads
  AudienceEnv env;
};

namespace {

std::string Hex(uint64_t v, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kDigits[v & 15];
  return out;
}

// Lowercase ASCII letters and digits, every other run of bytes one '-', at most 40 bytes.
std::string Slug(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() >= 40) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "audience" : out;
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

uint64_t Evaluate(const std::vector<const AudienceCondition*>& conditions,
                  const std::array<uint8_t, 64>& bit_of, bool dense, const AudienceEnv& env,
                  const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                  AudienceEvalCache* cache) {
  const uint64_t matched = MatchAll(conditions, profile, ctx, now_ms, env, cache);
  if (dense) return matched;
  uint64_t out = 0;
  for (uint64_t m = matched; m != 0; m &= m - 1) {
    out |= uint64_t{1} << bit_of[static_cast<size_t>(std::countr_zero(m))];
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SavedAudiences>> SavedAudiences::Open(
    const Predictor* predictor, std::string path, SavedAudiencesOptions options) {
  std::unique_ptr<SavedAudiences> saved(new SavedAudiences(predictor, std::move(path), options));
  if (absl::Status s = saved->Load(); !s.ok()) return s;
  return saved;
}

SavedAudiences::SavedAudiences(const Predictor* predictor, std::string path,
                               SavedAudiencesOptions options)
    : predictor_(predictor), path_(std::move(path)), options_(options) {
  std::random_device rd;
  rng_.seed((uint64_t{rd()} << 32) ^ rd());
  epoch_ = Hex(rng_(), 16);
  OpenPartitions(1);  // replaced by the engine's count when it opens
  timer_ = std::jthread([this](std::stop_token stop) { TimerLoop(stop); });
}

void SavedAudiences::OpenPartitions(uint32_t partitions) {
  partitions_.resize(partitions);
  for (auto& p : partitions_) p = std::make_unique<PartitionState>();
}

SavedAudiences::~SavedAudiences() {
  Detach();
  timer_.request_stop();
  if (timer_.joinable()) timer_.join();
  ReleaseWaiters();
}

void SavedAudiences::ReleaseWaiters() {
  std::multimap<Clock::time_point, std::shared_ptr<Waiter>> left;
  {
    std::lock_guard<std::mutex> lock(timer_mu_);
    left.swap(timers_);
  }
  for (auto& [deadline, w] : left) Fire(w);
  // Waiters whose registration with the timer raced with this call.
  std::vector<std::shared_ptr<Audience>> audiences;
  {
    std::lock_guard<std::mutex> lock(list_mu_);
    audiences = audiences_;
  }
  std::vector<std::shared_ptr<Waiter>> stray;
  for (auto& a : audiences) {
    std::lock_guard<std::mutex> lock(a->mu);
    for (auto& w : a->waiters) stray.push_back(std::move(w));
    a->waiters.clear();
  }
  for (auto& w : stray) Fire(w);
}

absl::Status SavedAudiences::Load() {
  if (path_.empty()) return absl::OkStatus();
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return absl::OkStatus();
  std::ifstream in(path_, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path_));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  auto bad = [this](std::string_view what) {
    return absl::DataLossError(absl::StrCat(path_, ": ", std::string(what)));
  };
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text).get(root)) return bad("not valid JSON");
  simdjson::dom::array list;
  if (root["audiences"].get_array().get(list)) return bad("no \"audiences\" array");
  std::lock_guard<std::mutex> lock(list_mu_);
  for (simdjson::dom::element item : list) {
    auto a = std::make_shared<Audience>();
    std::string_view id, name, description, text_view;
    int64_t created = 0;
    if (item["id"].get_string().get(id) || item["name"].get_string().get(name) ||
        item["condition"].get_string().get(text_view)) {
      return bad("an audience lacks id, name or condition");
    }
    if (item["description"].get_string().get(description)) description = {};
    if (item["created_ms"].get_int64().get(created)) created = 0;
    if (FindLocked(id) != nullptr)
      return bad(absl::StrCat("duplicate audience id ", std::string(id)));
    a->id = std::string(id);
    a->name = std::string(name);
    a->description = std::string(description);
    a->text = std::string(text_view);
    a->created_ms = created;
    if (audiences_.size() >= kMaxAudiences) {
      a->error = "more than 64 saved audiences";
    } else if (auto c = AudienceCondition::Compile(a->text); c.ok()) {
      a->condition = std::move(*c);
      a->bit = std::countr_one(used_bits_);
      used_bits_ |= uint64_t{1} << a->bit;
    } else {
      a->error = std::string(c.status().message());
    }
    audiences_.push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status SavedAudiences::Persist(const std::vector<const Audience*>& defs) const {
  if (path_.empty()) return absl::OkStatus();
  JsonWriter w;
  w.BeginObject();
  w.Key("version").Int(1);
  w.Key("audiences").BeginArray();
  for (const Audience* a : defs) {
    w.BeginObject();
    w.Key("id").String(a->id);
    w.Key("name").String(a->name);
    w.Key("description").String(a->description);
    w.Key("condition").String(a->text);
    w.Key("created_ms").Int(a->created_ms);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::string bytes = w.Take();
  bytes.push_back('\n');
  return WriteFileAtomically(path_, {bytes});
}

std::shared_ptr<const SavedAudiences::Snapshot> SavedAudiences::BuildSnapshot(
    uint64_t include, uint64_t initialising, std::shared_ptr<const TagRules> tags) const {
  auto snap = std::make_shared<Snapshot>();
  for (const auto& a : audiences_) {
    if (a->bit < 0 || !a->condition || !((include >> a->bit) & 1)) continue;
    snap->audiences.push_back(a);
  }
  std::sort(snap->audiences.begin(), snap->audiences.end(),
            [](const auto& x, const auto& y) { return x->bit < y->bit; });
  for (size_t i = 0; i < snap->audiences.size(); ++i) {
    Audience& a = *snap->audiences[i];
    snap->conditions.push_back(&*a.condition);
    snap->bit_of[i] = static_cast<uint8_t>(a.bit);
    snap->by_bit[static_cast<size_t>(a.bit)] = &a;
    snap->mask |= uint64_t{1} << a.bit;
    snap->dense = snap->dense && a.bit == static_cast<int>(i);
    // A cheap over-approximation: only conditions mentioning "tag" need the current rules.
    snap->reads_tags = snap->reads_tags || a.text.find("tag") != std::string::npos;
  }
  snap->emitting = snap->mask & ~initialising;
  snap->env.predictor = predictor_;
  snap->env.tags = std::move(tags);
  return snap;
}

void SavedAudiences::Publish(uint64_t initialising) {
  std::lock_guard<std::mutex> lock(refresh_mu_);
  std::shared_ptr<const Snapshot> snap;
  if (attached_.load()) {
    std::lock_guard<std::mutex> list_lock(list_mu_);
    snap = BuildSnapshot(~uint64_t{0}, initialising, engine_->tag_rules());
  }
  const bool live = snap != nullptr && snap->mask != 0;
  snapshot_.store(live ? std::move(snap) : nullptr);
  version_.fetch_add(1, std::memory_order_acq_rel);
  live_.store(live, std::memory_order_release);
}

void SavedAudiences::RefreshTagRules(std::shared_ptr<const TagRules> current) {
  std::lock_guard<std::mutex> lock(refresh_mu_);
  std::shared_ptr<const Snapshot> snap = snapshot_.load();
  if (snap == nullptr || snap->env.tags == current) return;
  auto copy = std::make_shared<Snapshot>(*snap);
  copy->env.tags = std::move(current);
  snapshot_.store(std::move(copy));
  version_.fetch_add(1, std::memory_order_acq_rel);
}

void SavedAudiences::Attach(Engine* engine) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  if (attached_.load()) return;
  engine_ = engine;
  // Bits left by an earlier attachment (ours or another listener's) would be taken for members.
  ScanClear(~uint64_t{0});
  for (auto& a : audiences_) a->size.store(0);
  attached_.store(true);
  // Writers evaluate every audience from now on but stay silent until the scan has set every
  // profile's bits (see the header).
  Publish(/*initialising=*/~uint64_t{0});
  if (std::shared_ptr<const Snapshot> snap = snapshot_.load()) {
    ScanEvaluate(*snap, nullptr, nullptr, nullptr);
  }
  Publish(/*initialising=*/0);
}

void SavedAudiences::Detach() {
  std::lock_guard<std::mutex> admin(admin_mu_);
  if (!attached_.load()) return;
  attached_.store(false);
  Publish(0);
}

absl::StatusOr<SavedAudienceInfo> SavedAudiences::Create(std::string_view name,
                                                         std::string_view condition,
                                                         std::string_view description,
                                                         std::string_view id) {
  if (!id.empty()) {
    const bool valid = id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                       });
    if (!valid) {
      return absl::InvalidArgumentError(
          "id must be 1..64 characters of lowercase letters, digits and '-'");
    }
  }
  while (!name.empty() && absl::ascii_isspace(static_cast<unsigned char>(name.front()))) {
    name.remove_prefix(1);
  }
  while (!name.empty() && absl::ascii_isspace(static_cast<unsigned char>(name.back()))) {
    name.remove_suffix(1);
  }
  if (name.empty()) return absl::InvalidArgumentError("name must not be empty");
  if (Utf8Length(name) > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("name is longer than ", kMaxNameBytes, " characters"));
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("name must not contain control characters");
    }
  }
  if (description.size() > kMaxDescriptionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("description is longer than ", kMaxDescriptionBytes, " bytes"));
  }
  if (condition.size() > kMaxConditionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("condition is longer than ", kMaxConditionBytes, " bytes"));
  }
  auto compiled = AudienceCondition::Compile(condition);
  if (!compiled.ok()) return compiled.status();

  std::lock_guard<std::mutex> admin(admin_mu_);
  const std::string lower = absl::AsciiStrToLower(std::string(name));
  for (const auto& a : audiences_) {
    if (absl::AsciiStrToLower(a->name) == lower) {
      return absl::AlreadyExistsError(
          absl::StrCat("an audience named '", a->name, "' exists (id ", a->id, ")"));
    }
  }
  if (!id.empty() && FindLocked(id) != nullptr) {
    return absl::AlreadyExistsError("an audience with id '" + std::string(id) + "' exists");
  }
  if (audiences_.size() >= kMaxAudiences || used_bits_ == ~uint64_t{0}) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "at most ", kMaxAudiences, " saved audiences (one membership bit each); delete one first"));
  }
  auto a = std::make_shared<Audience>();
  a->id = id.empty() ? NewIdLocked(name) : std::string(id);
  a->name = std::string(name);
  a->description = std::string(description);
  a->text = std::string(condition);
  a->created_ms = WallClockMs();
  a->condition = std::move(*compiled);
  a->bit = std::countr_one(used_bits_);

  std::vector<const Audience*> defs;
  for (const auto& x : audiences_) defs.push_back(x.get());
  defs.push_back(a.get());
  if (absl::Status s = Persist(defs); !s.ok()) return s;

  const uint64_t bit = uint64_t{1} << a->bit;
  used_bits_ |= bit;
  {
    std::lock_guard<std::mutex> lock(list_mu_);
    audiences_.push_back(a);
  }
  if (attached_.load()) {
    // Writers start evaluating the new bit silently; the scan then initialises every profile's
    // bit; only then does the audience emit changes (see the header for why this is race-free).
    Publish(/*initialising=*/bit);
    std::shared_ptr<const Snapshot> scan;
    {
      std::lock_guard<std::mutex> lock(list_mu_);
      scan = BuildSnapshot(bit, bit, engine_->tag_rules());
    }
    ScanEvaluate(*scan, nullptr, nullptr, nullptr);
    Publish(/*initialising=*/0);
  }
  return InfoOf(*a);
}

absl::Status SavedAudiences::Delete(std::string_view id) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  std::shared_ptr<Audience> a;
  {
    std::lock_guard<std::mutex> lock(list_mu_);
    a = FindLocked(id);
  }
  if (a == nullptr)
    return absl::NotFoundError(absl::StrCat("no saved audience with id ", std::string(id)));
  std::vector<const Audience*> defs;
  for (const auto& x : audiences_) {
    if (x != a) defs.push_back(x.get());
  }
  if (absl::Status s = Persist(defs); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(list_mu_);
    audiences_.erase(std::find(audiences_.begin(), audiences_.end(), a));
  }
  if (a->bit >= 0) {
    const uint64_t bit = uint64_t{1} << a->bit;
    if (attached_.load()) {
      // Unpublish first: a writer still evaluating the old snapshot holds its profile's shard
      // lock, so the clearing scan reaches that profile only after the writer is done.
      Publish(0);
      ScanClear(bit);
    }
    used_bits_ &= ~bit;
  }
  std::vector<std::shared_ptr<Waiter>> ready;
  {
    std::lock_guard<std::mutex> lock(a->mu);
    a->deleted = true;
    ready.swap(a->waiters);
  }
  for (auto& w : ready) Fire(w);
  return absl::OkStatus();
}

std::vector<SavedAudienceInfo> SavedAudiences::List() const {
  std::lock_guard<std::mutex> lock(list_mu_);
  std::vector<SavedAudienceInfo> out;
  out.reserve(audiences_.size());
  for (const auto& a : audiences_) out.push_back(InfoOf(*a));
  return out;
}

std::optional<SavedAudienceInfo> SavedAudiences::Get(std::string_view id) const {
  std::lock_guard<std::mutex> lock(list_mu_);
  std::shared_ptr<Audience> a = FindLocked(id);
  if (a == nullptr) return std::nullopt;
  return InfoOf(*a);
}

std::optional<int> SavedAudiences::BitOf(std::string_view id) const {
  std::lock_guard<std::mutex> lock(list_mu_);
  std::shared_ptr<Audience> a = FindLocked(id);
  if (a == nullptr || !a->condition || a->bit < 0) return std::nullopt;
  return a->bit;
}

std::shared_ptr<SavedAudiences::Audience> SavedAudiences::FindLocked(std::string_view id) const {
  for (const auto& a : audiences_) {
    if (a->id == id) return a;
  }
  return nullptr;
}

std::string SavedAudiences::NewIdLocked(std::string_view name) {
  const std::string slug = Slug(name);
  while (true) {
    std::string id = absl::StrCat(slug, "-", Hex(rng_(), 6));
    if (FindLocked(id) == nullptr) return id;
  }
}

SavedAudienceInfo SavedAudiences::InfoOf(const Audience& a) const {
  SavedAudienceInfo info;
  info.id = a.id;
  info.name = a.name;
  info.description = a.description;
  info.condition = a.text;
  info.created_ms = a.created_ms;
  info.size = attached_.load() ? a.size.load(std::memory_order_relaxed) : 0;
  info.entered = a.entered.load(std::memory_order_relaxed);
  info.exited = a.exited.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(a.mu);
    info.last_seq = a.next_seq - 1;
  }
  info.active = a.condition.has_value();
  info.error = a.error;
  return info;
}

uint64_t SavedAudiences::evaluations() const {
  uint64_t n = 0;
  for (const auto& p : partitions_) n += p->evaluations.load(std::memory_order_relaxed);
  return n;
}

// --- The ingest path -------------------------------------------------------------------------

void SavedAudiences::OnProfileChanged(const ChangedProfile& changed) {
  if (!live_.load(std::memory_order_acquire)) return;
  const uint32_t partition = changed.partition;
  const std::string_view user_id = changed.user_id;
  const Profile& profile = changed.profile;
  const ProfileContext& ctx = changed.ctx;
  const int64_t now_ms = changed.now_ms;
  uint64_t& membership = changed.membership;
  if (partition >= partitions_.size()) {  // not expected: the engine's partitions are fixed
    std::shared_ptr<const Snapshot> snap = snapshot_.load();
    if (snap == nullptr) return;
    ApplyBits(*snap, user_id, now_ms, membership,
              Evaluate(snap->conditions, snap->bit_of, snap->dense, snap->env, profile, ctx, now_ms,
                       nullptr),
              nullptr, nullptr);
    return;
  }
  PartitionState& state = *partitions_[partition];
  // Acquire pairs with the bump after a store to snapshot_: a writer that takes the shard lock
  // after a scan released it sees the snapshot published before that scan (see the header).
  uint64_t version = version_.load(std::memory_order_acquire);
  if (state.version != version) {
    state.snapshot = snapshot_.load();
    state.version = version;
  }
  if (state.snapshot == nullptr) return;
  if (state.snapshot->reads_tags &&
      (now_ms != state.tags_checked_now_ms || ++state.calls_since_tag_check >= kTagCheckEvery)) {
    // tag("x") resolves x against the rules that evaluated profile.tag_bits: follow reloads.
    state.tags_checked_now_ms = now_ms;
    state.calls_since_tag_check = 0;
    std::shared_ptr<const TagRules> current = engine_->tag_rules();
    if (current != state.snapshot->env.tags) {
      RefreshTagRules(std::move(current));
      state.version = version_.load(std::memory_order_acquire);
      state.snapshot = snapshot_.load();
      if (state.snapshot == nullptr) return;
    }
  }
  state.evaluations.store(state.evaluations.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  const Snapshot& snap = *state.snapshot;
  const uint64_t next = Evaluate(snap.conditions, snap.bit_of, snap.dense, snap.env, profile, ctx,
                                 now_ms, &state.cache);
  ApplyBits(snap, user_id, now_ms, membership, next, nullptr, nullptr);
}

void SavedAudiences::OnProfileErased(uint32_t /*partition*/, std::string_view user_id,
                                     const Profile& /*profile*/, uint64_t membership) {
  if (!live_.load(std::memory_order_acquire)) return;
  std::shared_ptr<const Snapshot> snap = snapshot_.load();
  if (snap == nullptr || (membership & snap->mask) == 0) return;
  ApplyBits(*snap, user_id, engine_->NowMs(), membership, 0, nullptr, nullptr);
}

void SavedAudiences::ApplyBits(const Snapshot& snap, std::string_view user_id, int64_t now_ms,
                               uint64_t& membership, uint64_t next, uint64_t* entered,
                               uint64_t* exited) {
  next &= snap.mask;
  uint64_t flipped = (membership ^ next) & snap.mask;
  if (flipped == 0) return;
  membership = (membership & ~snap.mask) | next;
  std::vector<std::shared_ptr<Waiter>> ready;
  for (; flipped != 0; flipped &= flipped - 1) {
    const int bit = std::countr_zero(flipped);
    Audience& a = *snap.by_bit[static_cast<size_t>(bit)];
    const bool in = (next >> bit) & 1;
    // The size moves with the bit, under the same shard lock: size == set bits, always.
    if (in) {
      a.size.fetch_add(1, std::memory_order_relaxed);
    } else {
      a.size.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!((snap.emitting >> bit) & 1)) continue;
    (in ? a.entered : a.exited).fetch_add(1, std::memory_order_relaxed);
    if (in && entered != nullptr) ++*entered;
    if (!in && exited != nullptr) ++*exited;
    AppendChange(a, user_id, in, now_ms, ready);
  }
  for (auto& w : ready) Fire(w);
}

void SavedAudiences::AppendChange(Audience& a, std::string_view user_id, bool entered,
                                  int64_t now_ms, std::vector<std::shared_ptr<Waiter>>& ready) {
  std::lock_guard<std::mutex> lock(a.mu);
  const uint64_t seq = a.next_seq++;
  a.ring.push_back(MembershipChange{seq, std::string(user_id), entered, now_ms});
  if (a.ring.size() > std::max<size_t>(options_.retain, 1)) a.ring.pop_front();
  if (a.waiters.empty()) return;
  auto keep = a.waiters.begin();
  for (auto& w : a.waiters) {
    if (w->fired.load(std::memory_order_relaxed)) continue;  // timed out: drop
    if (w->after < seq) {
      ready.push_back(std::move(w));
    } else {
      *keep++ = std::move(w);
    }
  }
  a.waiters.erase(keep, a.waiters.end());
}

// --- Scans -----------------------------------------------------------------------------------

void SavedAudiences::ScanEvaluate(const Snapshot& snap, uint64_t* entered, uint64_t* exited,
                                  uint64_t* scanned) {
  struct alignas(64) PerThread {
    AudienceEvalCache cache;
    uint64_t entered = 0, exited = 0, scanned = 0;
  };
  const uint32_t threads = engine_->ScanThreads(options_.scan_threads);
  std::vector<std::unique_ptr<PerThread>> per(threads);
  for (auto& p : per) p = std::make_unique<PerThread>();
  const int64_t now = engine_->NowMs();
  engine_->ScanProfiles(options_.scan_threads, [&](uint32_t t, const ProfileScanItem& item) {
    PerThread& p = *per[t];
    ++p.scanned;
    const uint64_t next = Evaluate(snap.conditions, snap.bit_of, snap.dense, snap.env, item.profile,
                                   item.ctx, now, &p.cache);
    ApplyBits(snap, item.user_id, now, item.membership, next, &p.entered, &p.exited);
  });
  for (const auto& p : per) {
    if (entered != nullptr) *entered += p->entered;
    if (exited != nullptr) *exited += p->exited;
    if (scanned != nullptr) *scanned += p->scanned;
  }
}

void SavedAudiences::ScanClear(uint64_t bits) {
  engine_->ScanProfiles(options_.scan_threads, [bits](uint32_t, const ProfileScanItem& item) {
    item.membership &= ~bits;
  });
}

SavedAudiences::ReconcileStats SavedAudiences::Reconcile() {
  const auto start = Clock::now();
  ReconcileStats stats;
  std::lock_guard<std::mutex> admin(admin_mu_);
  if (!attached_.load()) return stats;
  // Evaluate with the current tag rules even when no profile changed since they were reloaded.
  RefreshTagRules(engine_->tag_rules());
  if (std::shared_ptr<const Snapshot> snap = snapshot_.load()) {
    ScanEvaluate(*snap, &stats.entered, &stats.exited, &stats.scanned);
  }
  stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return stats;
}

// --- Reading changes and waiting for them ----------------------------------------------------

absl::StatusOr<SavedAudiences::ChangesPage> SavedAudiences::Changes(std::string_view id,
                                                                    uint64_t after,
                                                                    size_t limit) const {
  std::shared_ptr<Audience> a;
  {
    std::lock_guard<std::mutex> lock(list_mu_);
    a = FindLocked(id);
  }
  if (a == nullptr)
    return absl::NotFoundError(absl::StrCat("no saved audience with id ", std::string(id)));
  if (limit == 0) limit = 1000;
  ChangesPage page;
  page.epoch = epoch_;
  page.next_after = after;
  std::lock_guard<std::mutex> lock(a->mu);
  const uint64_t last = a->next_seq - 1;
  if (after >= last) return page;  // caught up (or ahead: a consumer of an earlier epoch)
  const uint64_t oldest = a->ring.empty() ? a->next_seq : a->ring.front().seq;
  page.truncated = after + 1 < oldest;
  const uint64_t first = std::max(after + 1, oldest);
  for (uint64_t i = first - oldest; i < a->ring.size() && page.changes.size() < limit; ++i) {
    page.changes.push_back(a->ring[i]);
  }
  if (!page.changes.empty()) page.next_after = page.changes.back().seq;
  return page;
}

void SavedAudiences::WaitForChanges(std::string_view id, uint64_t after,
                                    std::chrono::milliseconds timeout,
                                    std::function<void()> ready) {
  std::shared_ptr<Audience> a;
  {
    std::lock_guard<std::mutex> lock(list_mu_);
    a = FindLocked(id);
  }
  if (a == nullptr) {
    ready();
    return;
  }
  auto w = std::make_shared<Waiter>();
  w->after = after;
  w->ready = std::move(ready);
  w->audience = a;
  const Clock::time_point deadline = Clock::now() + timeout;
  bool waiting = false;
  {
    std::lock_guard<std::mutex> lock(a->mu);
    // Checked and registered under the ring's lock: a change cannot slip in between.
    if (!a->deleted && a->next_seq - 1 <= after && timeout.count() > 0) {
      a->waiters.push_back(w);
      waiting = true;
    }
  }
  if (!waiting) {
    Fire(w);
    return;
  }
  std::lock_guard<std::mutex> lock(timer_mu_);
  const bool earliest = timers_.empty() || deadline < timers_.begin()->first;
  timers_.emplace(deadline, std::move(w));
  if (earliest) timer_cv_.notify_one();
}

void SavedAudiences::Fire(const std::shared_ptr<Waiter>& w) {
  if (w == nullptr || w->fired.exchange(true)) return;
  std::function<void()> ready = std::move(w->ready);
  if (ready) ready();
}

void SavedAudiences::TimerLoop(std::stop_token stop) {
  std::unique_lock<std::mutex> lock(timer_mu_);
  while (!stop.stop_requested()) {
    if (timers_.empty()) {
      timer_cv_.wait(lock, stop, [this] { return !timers_.empty(); });
      continue;
    }
    const Clock::time_point deadline = timers_.begin()->first;
    if (Clock::now() < deadline) {
      // Wakes early when a waiter with an earlier deadline arrives.
      timer_cv_.wait_until(lock, stop, deadline,
                           [this, deadline] { return timers_.begin()->first < deadline; });
      continue;
    }
    std::vector<std::shared_ptr<Waiter>> expired;
    const Clock::time_point now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      expired.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
    lock.unlock();
    for (auto& w : expired) {
      if (w->fired.load()) continue;  // a change came first
      if (std::shared_ptr<Audience> a = w->audience.lock()) {
        std::lock_guard<std::mutex> alock(a->mu);
        std::erase(a->waiters, w);
      }
      Fire(w);
    }
    lock.lock();
  }
}

}  // namespace persona
