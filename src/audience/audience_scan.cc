#include "audience/audience_scan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "common/hash.h"
#include "common/time_util.h"
#include "engine/engine.h"
#include "predict/predictor.h"

namespace persona {
namespace {

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// ---- stable order and cursors

// A position in the stable order: (Hash64(user_id), user_id).
struct OrderKey {
  uint64_t hash = 0;
  std::string_view id;
  bool operator<(const OrderKey& o) const { return hash != o.hash ? hash < o.hash : id < o.id; }
};

constexpr char kHexDigits[] = "0123456789abcdef";

// The cursor is the hex of the last user id: printable, URL- and JSON-safe, and enough to
// recompute the key, so a page boundary survives the user's erasure.
std::string EncodeCursor(std::string_view user_id) {
  std::string out;
  out.reserve(user_id.size() * 2);
  for (unsigned char c : user_id) {
    out.push_back(kHexDigits[c >> 4]);
    out.push_back(kHexDigits[c & 15]);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The user id of a cursor; "" for no cursor; nullopt when malformed.
std::optional<std::string> DecodeCursor(std::string_view cursor) {
  std::string out;
  if (cursor.size() % 2 != 0) return std::nullopt;
  for (size_t i = 0; i < cursor.size(); i += 2) {
    const int high = HexValue(cursor[i]);
    const int low = HexValue(cursor[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

// The `capacity` smallest keys after a cursor, as a max-heap (the largest kept key on top) so
// that a key is tested against the worst kept one in O(1).
template <typename Payload>
class BoundedPage {
 public:
  struct Entry {
    uint64_t hash;
    std::string id;
    Payload payload;
    OrderKey key() const { return {hash, id}; }
  };

  BoundedPage(size_t capacity, const std::optional<OrderKey>& after)
      : capacity_(capacity), after_(after) {}

  // Whether (hash, id) belongs among the kept keys; cheap, so callers test before building.
  bool Wants(uint64_t hash, std::string_view id) const {
    const OrderKey key{hash, id};
    if (capacity_ == 0) return false;
    if (after_ && !(*after_ < key)) return false;
    return entries_.size() < capacity_ || key < entries_.front().key();
  }
  void Insert(Entry entry) {
    auto less = [](const Entry& a, const Entry& b) { return a.key() < b.key(); };
    if (entries_.size() == capacity_) {
      std::pop_heap(entries_.begin(), entries_.end(), less);
      entries_.pop_back();
    }
    entries_.push_back(std::move(entry));
    std::push_heap(entries_.begin(), entries_.end(), less);
  }
  std::vector<Entry>& entries() { return entries_; }

 private:
  size_t capacity_;
  std::optional<OrderKey> after_;  // copied by value; its id views the caller's cursor string
  std::vector<Entry> entries_;
};

// Per-thread state every scan has.
struct ScanThreadBase {
  uint64_t scanned = 0;
  AudienceEvalCache cache;
};

// One parallel pass calling on_match(state, item, source) for every member. States are
// allocated one per scan thread (separately, so their counters do not share cache lines).
template <typename State, typename OnMatch>
void ScanMembers(Engine* engine, uint32_t threads, const AudienceSelector& selector,
                 const AudienceEnv& env, int64_t now_ms,
                 std::vector<std::unique_ptr<State>>& states, const OnMatch& on_match) {
  const uint32_t n = engine->ScanThreads(threads);
  while (states.size() < n) states.push_back(std::make_unique<State>());
  const int bit = selector.saved_bit;
  const AudienceCondition* condition = selector.condition;
  engine->ScanProfiles(threads, [&](uint32_t t, const ProfileScanItem& item) {
    State& s = *states[t];
    ++s.scanned;
    if (bit >= 0 && ((item.membership >> bit) & 1) == 0) return;
    AudienceSource source(item.profile, item.ctx, now_ms, env, &s.cache);
    if (bit < 0 && !condition->Evaluate(source)) return;
    on_match(s, item, source);
  });
}

absl::Status CheckSelector(const AudienceSelector& selector) {
  if (selector.saved_bit >= 64) return absl::InvalidArgumentError("saved audience bit >= 64");
  if (selector.saved_bit < 0 && selector.condition == nullptr) {
    return absl::InvalidArgumentError("no condition");
  }
  return absl::OkStatus();
}

std::vector<AudienceValue> FieldValues(const std::vector<AudienceField>& fields,
                                       const VariableSource& source) {
  std::vector<AudienceValue> values;
  values.reserve(fields.size());
  for (const AudienceField& f : fields) values.push_back(f.Value(source));
  return values;
}

uint64_t SeedOrRandom(uint64_t seed) {
  if (seed != 0) return seed;
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

// A member's place in the random sample: its id hash mixed with the query's seed (the
// splitmix64 finaliser), so that for a random seed every member is equally likely to be among
// the k smallest.
uint64_t SamplePriority(uint64_t id_hash, uint64_t seed) {
  uint64_t z = id_hash ^ (seed * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct QueryThread : ScanThreadBase {
  uint64_t count = 0;
  // The sample: the members with the smallest priorities (a bounded page ordered by priority
  // instead of id hash), with their field values.
  std::optional<BoundedPage<std::vector<AudienceValue>>> sample;
  std::optional<BoundedPage<int>> page;
};

struct ExportThread : ScanThreadBase {
  std::optional<BoundedPage<std::vector<AudienceValue>>> page;      // limit > 0
  std::vector<BoundedPage<std::vector<AudienceValue>>::Entry> all;  // limit == 0
};

struct ReportThread : ScanThreadBase {
  AudienceAggregates aggregates;
  // Top categories by (partition, pool code): strings are looked up once per distinct key at
  // the end instead of once per member.
  absl::flat_hash_map<uint64_t, AudienceAggregates::CategorySums> categories;
  std::vector<const ProfileContext*> contexts;  // by partition
};

}  // namespace

std::string AudienceCursor(std::string_view user_id) { return EncodeCursor(user_id); }

bool AudienceOrderLess(std::string_view a, std::string_view b) {
  return OrderKey{Hash64(a), a} < OrderKey{Hash64(b), b};
}

uint64_t AudienceSamplePriority(std::string_view user_id, uint64_t seed) {
  return SamplePriority(Hash64(user_id), seed);
}

uint64_t AudienceRandomSeed() {
  uint64_t seed = 0;
  while (seed == 0) seed = SeedOrRandom(0);
  return seed;
}

void AudienceQueryResult::WriteMembers(JsonWriter& w) const {
  WriteSummary(w);
  w.Key("sample").BeginArray();
  for (const AudienceRow& row : sample) WriteRow(w, row);
  w.EndArray();
}

void AudienceQueryResult::WriteSummary(JsonWriter& w) const {
  w.Key("count").Uint(count);
  w.Key("scanned").Uint(scanned);
  w.Key("took_ms").Double(took_ms);
  w.Key("as_of").String(FormatIsoTime(as_of_ms));
  w.Key("as_of_ms").Int(as_of_ms);
  w.Key("ids").BeginArray();
  for (const std::string& id : ids) w.String(id);
  w.EndArray();
  w.Key("next_cursor");
  if (next_cursor.empty()) {
    w.Null();
  } else {
    w.String(next_cursor);
  }
}

void AudienceQueryResult::WriteRow(JsonWriter& w, const AudienceRow& row) const {
  w.BeginObject();
  w.Key("user_id").String(row.user_id);
  for (size_t i = 0; i < fields.size() && i < row.values.size(); ++i) {
    w.Key(fields[i]);
    AudienceField::Write(w, row.values[i]);
  }
  w.EndObject();
}

AudienceScanner::AudienceScanner(Engine* engine, const Predictor* predictor)
    : engine_(engine), predictor_(predictor) {}

absl::StatusOr<AudienceQueryResult> AudienceScanner::Query(
    const AudienceSelector& selector, const AudienceQueryOptions& options) const {
  if (absl::Status s = CheckSelector(selector); !s.ok()) return s;
  if (options.sample > kMaxSample) {
    return absl::InvalidArgumentError("sample must be at most " + std::to_string(kMaxSample));
  }
  if (options.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError("page_size must be at most " + std::to_string(kMaxPageSize));
  }
  absl::StatusOr<std::vector<AudienceField>> fields = AudienceField::ParseAll(options.fields);
  if (!fields.ok()) return fields.status();
  const std::optional<std::string> cursor_id = DecodeCursor(options.cursor);
  if (!cursor_id) return absl::InvalidArgumentError("invalid cursor");
  std::optional<OrderKey> after;
  if (!cursor_id->empty()) after = OrderKey{Hash64(*cursor_id), *cursor_id};

  const Clock::time_point start = Clock::now();
  const AudienceEnv env{predictor_, engine_->tag_rules()};
  const int64_t now_ms = engine_->NowMs();
  const uint64_t seed = SeedOrRandom(options.seed);
  const size_t k = options.sample;
  // One more than a page: whether a next page exists.
  const size_t page_capacity = options.page_size == 0 ? 0 : options.page_size + 1;

  std::vector<std::unique_ptr<QueryThread>> states;
  for (uint32_t t = 0; t < engine_->ScanThreads(options.threads); ++t) {
    auto s = std::make_unique<QueryThread>();
    s->sample.emplace(k, std::nullopt);
    s->page.emplace(page_capacity, after);
    states.push_back(std::move(s));
  }
  ScanMembers(
      engine_, options.threads, selector, env, now_ms, states,
      [&](QueryThread& s, const ProfileScanItem& item, const AudienceSource& source) {
        ++s.count;
        if (k == 0 && page_capacity == 0) return;
        const uint64_t hash = Hash64(item.user_id);
        // Bottom-k sampling: each thread keeps the k smallest priorities it saw, and the k
        // smallest of their union are the k smallest overall whichever thread saw which
        // member, so the merged sample is uniform and a seed reproduces it exactly.
        if (const uint64_t priority = SamplePriority(hash, seed);
            s.sample->Wants(priority, item.user_id)) {
          s.sample->Insert({priority, std::string(item.user_id), FieldValues(*fields, source)});
        }
        if (s.page->Wants(hash, item.user_id)) {
          s.page->Insert({hash, std::string(item.user_id), 0});
        }
      });

  AudienceQueryResult result;
  result.as_of_ms = now_ms;
  result.fields = options.fields;
  std::vector<BoundedPage<std::vector<AudienceValue>>::Entry> sample;
  for (const auto& s : states) {
    result.count += s->count;
    result.scanned += s->scanned;
    for (auto& e : s->sample->entries()) sample.push_back(std::move(e));
  }
  std::sort(sample.begin(), sample.end(),
            [](const auto& a, const auto& b) { return a.key() < b.key(); });
  if (sample.size() > k) sample.resize(k);
  // Rows in id order, like the ids.
  std::sort(sample.begin(), sample.end(), [](const auto& a, const auto& b) {
    return OrderKey{Hash64(a.id), a.id} < OrderKey{Hash64(b.id), b.id};
  });
  for (auto& e : sample) result.sample.push_back({std::move(e.id), std::move(e.payload)});

  if (page_capacity > 0) {
    std::vector<BoundedPage<int>::Entry> page;
    for (auto& s : states) {
      for (auto& e : s->page->entries()) page.push_back(std::move(e));
    }
    std::sort(page.begin(), page.end(),
              [](const auto& a, const auto& b) { return a.key() < b.key(); });
    const bool more = page.size() > options.page_size;
    if (more) page.resize(options.page_size);
    for (auto& e : page) result.ids.push_back(std::move(e.id));
    if (more) result.next_cursor = EncodeCursor(result.ids.back());
  }
  result.took_ms = MillisSince(start);
  return result;
}

absl::StatusOr<std::string> AudienceScanner::Export(const AudienceSelector& selector,
                                                    std::span<const std::string> field_names,
                                                    std::string_view format, size_t limit,
                                                    std::string_view cursor,
                                                    std::string* next_cursor,
                                                    uint32_t threads) const {
  if (absl::Status s = CheckSelector(selector); !s.ok()) return s;
  const bool csv = format == "csv";
  if (!csv && format != "ndjson") {
    return absl::InvalidArgumentError("unknown format '" + std::string(format) +
                                      "' (expected csv or ndjson)");
  }
  absl::StatusOr<std::vector<AudienceField>> fields = AudienceField::ParseAll(field_names);
  if (!fields.ok()) return fields.status();
  const std::optional<std::string> cursor_id = DecodeCursor(cursor);
  if (!cursor_id) return absl::InvalidArgumentError("invalid cursor");
  std::optional<OrderKey> after;
  if (!cursor_id->empty()) after = OrderKey{Hash64(*cursor_id), *cursor_id};

  const AudienceEnv env{predictor_, engine_->tag_rules()};
  const int64_t now_ms = engine_->NowMs();
  std::vector<std::unique_ptr<ExportThread>> states;
  for (uint32_t t = 0; t < engine_->ScanThreads(threads); ++t) {
    auto s = std::make_unique<ExportThread>();
    if (limit > 0) s->page.emplace(limit + 1, after);
    states.push_back(std::move(s));
  }
  ScanMembers(engine_, threads, selector, env, now_ms, states,
              [&](ExportThread& s, const ProfileScanItem& item, const AudienceSource& source) {
                const uint64_t hash = Hash64(item.user_id);
                if (s.page) {
                  if (s.page->Wants(hash, item.user_id)) {
                    s.page->Insert({hash, std::string(item.user_id), FieldValues(*fields, source)});
                  }
                } else if (!after || *after < OrderKey{hash, item.user_id}) {
                  s.all.push_back({hash, std::string(item.user_id), FieldValues(*fields, source)});
                }
              });

  std::vector<BoundedPage<std::vector<AudienceValue>>::Entry> rows;
  for (auto& s : states) {
    auto& source = s->page ? s->page->entries() : s->all;
    for (auto& e : source) rows.push_back(std::move(e));
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.key() < b.key(); });
  if (next_cursor != nullptr) next_cursor->clear();
  if (limit > 0 && rows.size() > limit) {
    rows.resize(limit);
    if (next_cursor != nullptr) *next_cursor = EncodeCursor(rows.back().id);
  }

  std::string out;
  if (csv) {
    out.append("user_id");
    for (const std::string& name : field_names) {
      out.push_back(',');
      AppendCsvCell(out, name);
    }
    out.push_back('\n');
    for (const auto& row : rows) {
      AppendCsvCell(out, row.id);
      for (const AudienceValue& v : row.payload) {
        out.push_back(',');
        AudienceField::AppendCsv(out, v);
      }
      out.push_back('\n');
    }
  } else {
    JsonWriter w;
    for (const auto& row : rows) {
      w.Clear();
      w.BeginObject();
      w.Key("user_id").String(row.id);
      for (size_t i = 0; i < row.payload.size(); ++i) {
        w.Key(field_names[i]);
        AudienceField::Write(w, row.payload[i]);
      }
      w.EndObject();
      out.append(w.str());
      out.push_back('\n');
    }
  }
  return out;
}

absl::StatusOr<AudienceReport> AudienceScanner::Report(const AudienceSelector& selector,
                                                       const ReportOptions& options) const {
  absl::StatusOr<Aggregated> all = Aggregate(selector, options);
  if (!all.ok()) return all.status();
  AudienceReport report = MakeAudienceReport(all->aggregates, options);
  report.scanned = all->scanned;
  report.as_of_ms = all->as_of_ms;
  report.took_ms = all->took_ms;
  return report;
}

absl::StatusOr<AudienceScanner::Aggregated> AudienceScanner::Aggregate(
    const AudienceSelector& selector, const ReportOptions& options) const {
  if (absl::Status s = CheckSelector(selector); !s.ok()) return s;
  if (options.epsilon && !(*options.epsilon > 0 && std::isfinite(*options.epsilon))) {
    return absl::InvalidArgumentError("epsilon must be a positive number");
  }
  if (!(options.spend_clip > 0) || !(options.orders_clip > 0)) {
    return absl::InvalidArgumentError("clip bounds must be positive");
  }
  const Clock::time_point start = Clock::now();
  const AudienceEnv env{predictor_, engine_->tag_rules()};
  const int64_t now_ms = engine_->NowMs();
  std::vector<std::unique_ptr<ReportThread>> states;
  ScanMembers(engine_, options.threads, selector, env, now_ms, states,
              [&](ReportThread& s, const ProfileScanItem& item, const AudienceSource&) {
                s.aggregates.Add(item.profile, *item.ctx.config, now_ms, "", 0, options,
                                 CurrentSegment(item.profile, item.ctx, now_ms, predictor_));
                // The top category as ProfileFeatures' top_category defines it (the highest
                // score among keys events named directly; ties by key), with its share.
                const InterestTable& table = item.profile.interests(InterestKind::kCategory);
                const InterestTable::Entry* best = nullptr;
                for (const InterestTable::Entry& e : table.entries()) {
                  if (!e.marked()) continue;
                  if (best == nullptr || e.score > best->score ||
                      (e.score == best->score &&
                       item.ctx.pool.Get(e.code()) < item.ctx.pool.Get(best->code()))) {
                    best = &e;
                  }
                }
                if (best == nullptr) return;
                if (s.contexts.size() <= item.partition) s.contexts.resize(item.partition + 1);
                s.contexts[item.partition] = &item.ctx;
                const double total = table.total();
                auto& sums = s.categories[(uint64_t{item.partition} << 32) | best->code()];
                ++sums.users;
                sums.share_sum += total > 0 ? std::clamp(best->score / total, 0.0, 1.0) : 0.0;
              });
  Aggregated out;
  AudienceAggregates& all = out.aggregates;
  uint64_t& scanned = out.scanned;
  for (auto& s : states) {
    scanned += s->scanned;
    for (const auto& [key, sums] : s->categories) {
      const ProfileContext* ctx = s->contexts[key >> 32];
      AudienceAggregates::CategorySums& c =
          s->aggregates.categories[std::string(ctx->pool.Get(static_cast<uint32_t>(key)))];
      c.users += sums.users;
      c.share_sum += sums.share_sum;
    }
    all.Merge(s->aggregates);
  }
  out.as_of_ms = now_ms;
  out.took_ms = MillisSince(start);
  return out;
}

}  // namespace persona
