#include "predict/category_demand.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/varint.h"

namespace persona {

std::string_view DemandPeriodName(DemandPeriod p) {
  return p == DemandPeriod::kHour ? "hour" : "day";
}
std::string_view DemandMetricName(DemandMetric m) {
  return m == DemandMetric::kEvents ? "events" : "purchases";
}
bool ParseDemandPeriod(std::string_view name, DemandPeriod* out) {
  if (name == "hour") {
    *out = DemandPeriod::kHour;
  } else if (name == "day") {
    *out = DemandPeriod::kDay;
  } else {
    return false;
  }
  return true;
}
bool ParseDemandMetric(std::string_view name, DemandMetric* out) {
  if (name == "events") {
    *out = DemandMetric::kEvents;
  } else if (name == "purchases") {
    *out = DemandMetric::kPurchases;
  } else {
    return false;
  }
  return true;
}

namespace {

// Debian's abseil has its own string_view type; heterogeneous lookup needs that one.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// A ring of per-bucket counts ending at the newest bucket this category has seen.
struct Ring {
  int64_t head = -1;   // newest bucket index, -1 before any
  int64_t first = -1;  // oldest bucket with an event still inside the ring
  std::vector<uint32_t> events, purchases;

  explicit Ring(int size) : events(size), purchases(size) {}
  int64_t size() const { return static_cast<int64_t>(events.size()); }
  size_t Slot(int64_t bucket) const {
    const int64_t n = size();
    return static_cast<size_t>(((bucket % n) + n) % n);
  }
  bool Holds(int64_t bucket) const { return head >= 0 && bucket <= head && bucket > head - size(); }

  // Returns false when the bucket is older than the ring's span.
  bool Add(int64_t bucket, bool purchase) {
    if (head < 0) {
      head = first = bucket;
    } else if (bucket > head) {
      // Clear the buckets skipped over: they now stand for newer times.
      const int64_t clear = std::min(bucket - head, size());
      for (int64_t b = bucket - clear + 1; b <= bucket; ++b) {
        events[Slot(b)] = 0;
        purchases[Slot(b)] = 0;
      }
      head = bucket;
      first = std::max(first, head - size() + 1);
    } else if (bucket <= head - size()) {
      return false;
    } else {
      first = std::min(first, bucket);
    }
    const size_t slot = Slot(bucket);
    ++events[slot];
    if (purchase) ++purchases[slot];
    return true;
  }

  uint32_t At(int64_t bucket, DemandMetric metric) const {
    if (!Holds(bucket)) return 0;
    const size_t slot = Slot(bucket);
    return metric == DemandMetric::kEvents ? events[slot] : purchases[slot];
  }
};

// Magic and format version of a part's encoding (see the header).
constexpr std::string_view kPartMagic("PCD\x01", 4);
constexpr size_t kChecksumSize = 8;

void AppendSigned(std::string* out, int64_t v) { AppendVarint64(out, ZigZagEncode64(v)); }
void AppendString(std::string* out, std::string_view s) {
  AppendVarint64(out, s.size());
  out->append(s);
}

// Bounds-checked reads from the front of a view; every method returns false at the first
// malformed or missing byte, and the decoder stops there.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t* v) { return ReadVarint64(&in_, v); }
  bool Signed(int64_t* v) {
    uint64_t x;
    if (!Varint(&x)) return false;
    *v = ZigZagDecode64(x);
    return true;
  }
  bool String(std::string_view* v) {
    uint64_t n;
    if (!Varint(&n) || n > in_.size()) return false;
    *v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  // A count of elements that take at least one byte each: more than the bytes left is corrupt.
  bool Count(uint64_t* n) { return Varint(n) && *n <= in_.size(); }
  bool Prefix(std::string_view p) {
    if (in_.substr(0, p.size()) != p) return false;
    in_.remove_prefix(p.size());
    return true;
  }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

// The non-zero slots only: most rings of a sparse category are mostly zeros.
void AppendCounts(std::string* out, const std::vector<uint32_t>& counts) {
  AppendVarint64(out, static_cast<uint64_t>(std::count_if(counts.begin(), counts.end(),
                                                          [](uint32_t c) { return c; })));
  size_t next = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    AppendVarint64(out, i - next);
    AppendVarint64(out, counts[i]);
    next = i + 1;
  }
}

// Fills `counts` (already sized and zeroed) from AppendCounts' encoding.
bool ReadCounts(Reader* r, std::vector<uint32_t>* counts) {
  const uint64_t size = counts->size();
  uint64_t nonzero;
  if (!r->Varint(&nonzero) || nonzero > size) return false;
  uint64_t next = 0;
  for (uint64_t k = 0; k < nonzero; ++k) {
    uint64_t gap, count;
    if (!r->Varint(&gap) || !r->Varint(&count)) return false;
    if (gap >= size - next || count == 0 || count > std::numeric_limits<uint32_t>::max()) {
      return false;
    }
    next += gap;
    (*counts)[next] = static_cast<uint32_t>(count);
    ++next;
  }
  return true;
}

void AppendRing(std::string* out, const Ring& ring) {
  AppendSigned(out, ring.head);
  AppendSigned(out, ring.first);
  AppendVarint64(out, static_cast<uint64_t>(ring.size()));
  AppendCounts(out, ring.events);
  AppendCounts(out, ring.purchases);
}

// Reads a ring into `ring`, which has the configured size; false on a malformed ring or one of
// another size.
bool ReadRing(Reader* r, Ring* ring) {
  int64_t head, first;
  uint64_t size;
  if (!r->Signed(&head) || !r->Signed(&first) || !r->Varint(&size)) return false;
  if (size != static_cast<uint64_t>(ring->size())) return false;
  // What Ring::Add maintains: an unset (or negative) head equals first; otherwise first lies in
  // the ring's span behind head.
  if (head < 0 ? first != head : (first > head || first < head - ring->size() + 1)) return false;
  if (!ReadCounts(r, &ring->events) || !ReadCounts(r, &ring->purchases)) return false;
  for (size_t i = 0; i < ring->events.size(); ++i) {
    if (ring->purchases[i] > ring->events[i]) return false;
  }
  ring->head = head;
  ring->first = first;
  return true;
}

[[noreturn]] void PartOutOfRange(uint32_t part, size_t parts) {
  std::fprintf(stderr, "CategoryDemand: part %u of %zu parts\n", part, parts);
  std::abort();
}

}  // namespace

struct CategoryDemand::Counters {
  explicit Counters(const CategoryDemandConfig& c) : hours(c.hour_buckets), days(c.day_buckets) {}
  Ring hours, days;
};

CategoryDemand::Part::Part() : shards(std::make_unique<Shard[]>(kShards)) {}

CategoryDemand::CategoryDemand(const CategoryDemandConfig& config, uint32_t parts)
    : config_(config) {
  parts_.resize(std::max<uint32_t>(parts, 1));
  for (auto& p : parts_) p = std::make_unique<Part>();
}

CategoryDemand::~CategoryDemand() = default;

size_t CategoryDemand::ShardIndex(std::string_view category) {
  return absl::HashOf(AbslView(category)) % kShards;
}

const CategoryDemand::Part& CategoryDemand::PartAt(uint32_t part) const {
  if (part >= parts_.size()) PartOutOfRange(part, parts_.size());
  return *parts_[part];
}

void CategoryDemand::Add(uint32_t part, const Event& e) {
  if (part >= parts_.size()) PartOutOfRange(part, parts_.size());
  Part& p = *parts_[part];
  const std::string_view key = e.category_key();
  if (key.empty() && !config_.count_all) return;
  int64_t seen = p.watermark_ms.load(std::memory_order_relaxed);
  while (e.ts_ms > seen &&
         !p.watermark_ms.compare_exchange_weak(seen, e.ts_ms, std::memory_order_relaxed)) {
  }
  const int64_t hour = FloorDiv(e.ts_ms, config_.hour_bucket_ms);
  const int64_t day = FloorDiv(e.ts_ms, config_.day_bucket_ms);
  const bool purchase = e.type == EventType::kPurchase;
  if (config_.count_all) Credit(p, kAllCategories, hour, day, purchase);
  if (key.empty()) return;
  // The node itself, then each ancestor prefix ("a.b.c" -> "a.b" -> "a").
  std::string_view node = key;
  while (true) {
    Credit(p, node, hour, day, purchase);
    const size_t dot = node.rfind('.');
    if (dot == std::string_view::npos || dot == 0) break;
    node = node.substr(0, dot);
  }
}

void CategoryDemand::Credit(Part& p, std::string_view category, int64_t hour, int64_t day,
                            bool purchase) {
  Shard& shard = p.shards[ShardIndex(category)];
  std::lock_guard lock(shard.mu);
  auto it = shard.categories.find(AbslView(category));
  if (it == shard.categories.end()) {
    // The count is a soft cap: two writers of one part may both pass it at the same instant.
    if (p.categories.load(std::memory_order_relaxed) >= config_.max_categories) {
      p.dropped_categories.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    p.categories.fetch_add(1, std::memory_order_relaxed);
    it = shard.categories.emplace(std::string(category), std::make_unique<Counters>(config_)).first;
  }
  const bool kept_hour = it->second->hours.Add(hour, purchase);
  const bool kept_day = it->second->days.Add(day, purchase);
  if (!kept_hour || !kept_day) p.dropped_late.fetch_add(1, std::memory_order_relaxed);
}

int64_t CategoryDemand::watermark_ms() const {
  int64_t newest = 0;
  for (const auto& p : parts_) {
    newest = std::max(newest, p->watermark_ms.load(std::memory_order_relaxed));
  }
  return newest;
}

size_t CategoryDemand::category_count() const {
  if (parts_.size() == 1) return parts_[0]->categories.load(std::memory_order_relaxed);
  // A category lands in the same shard index in every part, so distinct names can be counted
  // one shard index at a time.
  size_t n = 0;
  absl::flat_hash_set<std::string> names;
  for (size_t s = 0; s < kShards; ++s) {
    names.clear();
    for (const auto& p : parts_) {
      const Shard& shard = p->shards[s];
      std::lock_guard lock(shard.mu);
      for (const auto& [name, counters] : shard.categories) names.insert(name);
    }
    n += names.size();
  }
  return n;
}

uint64_t CategoryDemand::dropped_late() const {
  uint64_t n = 0;
  for (const auto& p : parts_) n += p->dropped_late.load(std::memory_order_relaxed);
  return n;
}

uint64_t CategoryDemand::dropped_categories() const {
  uint64_t n = 0;
  for (const auto& p : parts_) n += p->dropped_categories.load(std::memory_order_relaxed);
  return n;
}

absl::StatusOr<std::vector<double>> CategoryDemand::Series(std::string_view category,
                                                           DemandPeriod period, DemandMetric metric,
                                                           int64_t* first_bucket_ms) const {
  const bool hours = period == DemandPeriod::kHour;
  const int64_t width = hours ? config_.hour_bucket_ms : config_.day_bucket_ms;
  const int64_t ring_size = hours ? config_.hour_buckets : config_.day_buckets;
  // The watermark never goes below 0, so now >= 0 and the window [lo, now] is non-empty.
  const int64_t now = FloorDiv(watermark_ms(), width);
  const int64_t lo = std::max(now - ring_size + 1, int64_t{0});
  std::vector<uint64_t> sum(static_cast<size_t>(now - lo + 1));
  int64_t start = now;
  bool known = false;
  const size_t shard_index = ShardIndex(category);
  for (const auto& p : parts_) {
    const Shard& shard = p->shards[shard_index];
    std::lock_guard lock(shard.mu);
    auto it = shard.categories.find(AbslView(category));
    if (it == shard.categories.end()) continue;
    known = true;
    const Ring& ring = hours ? it->second->hours : it->second->days;
    // A category whose events all fell out of the window reads as zeros ending now.
    start = std::min(start, std::max(ring.first, lo));
    for (int64_t b = lo; b <= now; ++b) sum[static_cast<size_t>(b - lo)] += ring.At(b, metric);
  }
  if (!known) {
    return absl::NotFoundError(absl::StrCat("unknown category '", AbslView(category), "'"));
  }
  std::vector<double> series;
  series.reserve(static_cast<size_t>(now - start + 1));
  for (int64_t b = start; b <= now; ++b) {
    series.push_back(static_cast<double>(sum[static_cast<size_t>(b - lo)]));
  }
  if (first_bucket_ms != nullptr) *first_bucket_ms = start * width;
  return series;
}

absl::StatusOr<DemandForecast> CategoryDemand::Forecast(std::string_view category,
                                                        DemandPeriod period, int horizon,
                                                        DemandMetric metric) const {
  if (horizon < 1 || horizon > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("horizon ", horizon, " is outside 1..1000"));
  }
  int64_t first_ms = 0;
  absl::StatusOr<std::vector<double>> series = Series(category, period, metric, &first_ms);
  if (!series.ok()) return series.status();
  DemandForecast out;
  out.category = std::string(category);
  out.period = period;
  out.metric = metric;
  out.bucket_ms = period == DemandPeriod::kHour ? config_.hour_bucket_ms : config_.day_bucket_ms;
  out.history_buckets = static_cast<int>(series->size());
  const int season = period == DemandPeriod::kHour ? config_.hour_season : config_.day_season;
  out.model = ::persona::Forecast(*series, horizon, season);
  const int64_t next_ms = first_ms + static_cast<int64_t>(series->size()) * out.bucket_ms;
  out.points.reserve(out.model.points.size());
  for (size_t h = 0; h < out.model.points.size(); ++h) {
    const ForecastPoint& p = out.model.points[h];
    out.points.push_back(
        DemandPoint{next_ms + static_cast<int64_t>(h) * out.bucket_ms, p.mean, p.lo, p.hi});
  }
  return out;
}

std::vector<CategoryActivity> CategoryDemand::Categories(size_t limit) const {
  const int64_t now = FloorDiv(watermark_ms(), config_.day_bucket_ms);
  std::vector<CategoryActivity> all;
  absl::flat_hash_map<std::string, size_t> index;  // name -> position in `all`, with parts > 1
  for (const auto& p : parts_) {
    for (size_t s = 0; s < kShards; ++s) {
      const Shard& shard = p->shards[s];
      std::lock_guard lock(shard.mu);
      for (const auto& [name, counters] : shard.categories) {
        if (name.empty()) continue;  // the all-events series is not a category
        const Ring& ring = counters->days;
        CategoryActivity* a;
        if (parts_.size() == 1) {
          a = &all.emplace_back(CategoryActivity{name, 0, 0});
        } else {
          auto [it, added] = index.try_emplace(name, all.size());
          if (added) all.push_back(CategoryActivity{name, 0, 0});
          a = &all[it->second];
        }
        for (int64_t b = now - ring.size() + 1; b <= now; ++b) {
          a->events += ring.At(b, DemandMetric::kEvents);
          a->purchases += ring.At(b, DemandMetric::kPurchases);
        }
      }
    }
  }
  const size_t keep = std::min(limit, all.size());
  std::partial_sort(all.begin(), all.begin() + keep, all.end(),
                    [](const CategoryActivity& a, const CategoryActivity& b) {
                      return a.events != b.events ? a.events > b.events : a.category < b.category;
                    });
  all.resize(keep);
  return all;
}

void CategoryDemand::SavePart(uint32_t part, std::string* out) const {
  const Part& p = PartAt(part);
  const size_t begin = out->size();
  out->append(kPartMagic);
  AppendSigned(out, config_.hour_bucket_ms);
  AppendVarint64(out, static_cast<uint64_t>(config_.hour_buckets));
  AppendSigned(out, config_.day_bucket_ms);
  AppendVarint64(out, static_cast<uint64_t>(config_.day_buckets));
  AppendSigned(out, p.watermark_ms.load(std::memory_order_relaxed));
  AppendVarint64(out, p.dropped_late.load(std::memory_order_relaxed));
  AppendVarint64(out, p.dropped_categories.load(std::memory_order_relaxed));
  // Encoded one shard at a time (each under its lock only while it is read), then put in name
  // order: shard placement follows a per-process hash and must not leak into the bytes.
  std::vector<std::pair<std::string, std::string>> entries;  // name, encoding
  for (size_t s = 0; s < kShards; ++s) {
    const Shard& shard = p.shards[s];
    std::lock_guard lock(shard.mu);
    for (const auto& [name, counters] : shard.categories) {
      std::string encoded;
      AppendString(&encoded, name);
      AppendRing(&encoded, counters->hours);
      AppendRing(&encoded, counters->days);
      entries.emplace_back(name, std::move(encoded));
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  AppendVarint64(out, entries.size());
  for (const auto& [name, encoded] : entries) out->append(encoded);
  AppendFixed64(out, Hash64(std::string_view(*out).substr(begin)));
}

absl::Status CategoryDemand::LoadPart(uint32_t part, std::string_view in) {
  if (part >= parts_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("category demand part ", part, " of ", parts_.size(), " parts"));
  }
  auto corrupt = [](std::string_view what) {
    return absl::DataLossError(absl::StrCat("category demand part: ", AbslView(what)));
  };
  if (in.size() < kPartMagic.size() + kChecksumSize) return corrupt("truncated");
  const std::string_view body = in.substr(0, in.size() - kChecksumSize);
  std::string_view tail = in.substr(body.size());
  uint64_t checksum = 0;
  if (!ReadFixed64(&tail, &checksum) || checksum != Hash64(body)) {
    return corrupt("checksum mismatch");
  }
  Reader r(body);
  if (!r.Prefix(kPartMagic)) return corrupt("bad magic or unknown version");
  int64_t hour_ms, day_ms, watermark;
  uint64_t hour_buckets, day_buckets, dropped_late, dropped_categories, n;
  if (!r.Signed(&hour_ms) || !r.Varint(&hour_buckets) || !r.Signed(&day_ms) ||
      !r.Varint(&day_buckets)) {
    return corrupt("truncated header");
  }
  if (hour_ms != config_.hour_bucket_ms || day_ms != config_.day_bucket_ms ||
      hour_buckets != static_cast<uint64_t>(config_.hour_buckets) ||
      day_buckets != static_cast<uint64_t>(config_.day_buckets)) {
    return corrupt(absl::StrCat("written with rings of ", hour_buckets, " x ", hour_ms, " ms and ",
                                day_buckets, " x ", day_ms, " ms, configured ",
                                config_.hour_buckets, " x ", config_.hour_bucket_ms, " ms and ",
                                config_.day_buckets, " x ", config_.day_bucket_ms, " ms"));
  }
  if (!r.Signed(&watermark) || watermark < 0 || !r.Varint(&dropped_late) ||
      !r.Varint(&dropped_categories) || !r.Count(&n)) {
    return corrupt("bad header");
  }
  std::vector<CategoryMap> decoded(kShards);
  std::string_view previous;
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view name;
    if (!r.String(&name)) return corrupt("truncated category name");
    if (i > 0 && !(previous < name)) return corrupt("categories out of order");
    previous = name;
    auto counters = std::make_unique<Counters>(config_);
    if (!ReadRing(&r, &counters->hours) || !ReadRing(&r, &counters->days)) {
      return corrupt(absl::StrCat("bad ring for category '", AbslView(name), "'"));
    }
    decoded[ShardIndex(name)].emplace(std::string(name), std::move(counters));
  }
  if (r.remaining() != 0) return corrupt("trailing bytes");

  Part& p = *parts_[part];
  // All of the part's shard locks at once, in index order: nobody else holds two of them.
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(kShards);
  for (size_t s = 0; s < kShards; ++s) locks.emplace_back(p.shards[s].mu);
  for (size_t s = 0; s < kShards; ++s) p.shards[s].categories.swap(decoded[s]);
  p.watermark_ms.store(watermark, std::memory_order_relaxed);
  p.categories.store(static_cast<size_t>(n), std::memory_order_relaxed);
  p.dropped_late.store(dropped_late, std::memory_order_relaxed);
  p.dropped_categories.store(dropped_categories, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace persona
