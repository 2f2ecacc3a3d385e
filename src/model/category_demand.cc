#include "model/category_demand.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

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

}  // namespace

struct CategoryDemand::Counters {
  explicit Counters(const CategoryDemandConfig& c) : hours(c.hour_buckets), days(c.day_buckets) {}
  Ring hours, days;
};

CategoryDemand::CategoryDemand(const CategoryDemandConfig& config)
    : config_(config), shards_(std::make_unique<Shard[]>(kShards)) {}

CategoryDemand::~CategoryDemand() = default;

CategoryDemand::Shard& CategoryDemand::ShardOf(std::string_view category) const {
  return shards_[absl::HashOf(AbslView(category)) % kShards];
}

void CategoryDemand::Add(const Event& e) {
  const std::string_view key = e.category_key();
  if (key.empty() && !config_.count_all) return;
  int64_t seen = watermark_ms_.load(std::memory_order_relaxed);
  while (e.ts_ms > seen &&
         !watermark_ms_.compare_exchange_weak(seen, e.ts_ms, std::memory_order_relaxed)) {
  }
  const int64_t hour = FloorDiv(e.ts_ms, config_.hour_bucket_ms);
  const int64_t day = FloorDiv(e.ts_ms, config_.day_bucket_ms);
  const bool purchase = e.type == EventType::kPurchase;
  if (config_.count_all) Credit(kAllCategories, hour, day, purchase);
  if (key.empty()) return;
  // The node itself, then each ancestor prefix ("a.b.c" -> "a.b" -> "a").
  std::string_view node = key;
  while (true) {
    Credit(node, hour, day, purchase);
    const size_t dot = node.rfind('.');
    if (dot == std::string_view::npos || dot == 0) break;
    node = node.substr(0, dot);
  }
}

void CategoryDemand::Credit(std::string_view category, int64_t hour, int64_t day, bool purchase) {
  Shard& shard = ShardOf(category);
  std::lock_guard lock(shard.mu);
  auto it = shard.categories.find(AbslView(category));
  if (it == shard.categories.end()) {
    // The count is a soft cap: two shards may both pass it at the same instant.
    if (categories_.load(std::memory_order_relaxed) >= config_.max_categories) {
      dropped_categories_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    categories_.fetch_add(1, std::memory_order_relaxed);
    it = shard.categories.emplace(std::string(category), std::make_unique<Counters>(config_)).first;
  }
  const bool kept_hour = it->second->hours.Add(hour, purchase);
  const bool kept_day = it->second->days.Add(day, purchase);
  if (!kept_hour || !kept_day) dropped_late_.fetch_add(1, std::memory_order_relaxed);
}

size_t CategoryDemand::category_count() const {
  return categories_.load(std::memory_order_relaxed);
}

absl::StatusOr<std::vector<double>> CategoryDemand::Series(std::string_view category,
                                                           DemandPeriod period, DemandMetric metric,
                                                           int64_t* first_bucket_ms) const {
  const int64_t width =
      period == DemandPeriod::kHour ? config_.hour_bucket_ms : config_.day_bucket_ms;
  const int64_t now = FloorDiv(watermark_ms(), width);
  std::vector<double> series;
  Shard& shard = ShardOf(category);
  std::lock_guard lock(shard.mu);
  auto it = shard.categories.find(AbslView(category));
  if (it == shard.categories.end()) {
    return absl::NotFoundError(absl::StrCat("unknown category '", AbslView(category), "'"));
  }
  const Ring& ring = period == DemandPeriod::kHour ? it->second->hours : it->second->days;
  // A category whose events all fell out of the window reads as one zero bucket ending now.
  const int64_t from = std::max({ring.first, now - ring.size() + 1, int64_t{0}});
  const int64_t start = std::min(from, now);
  series.reserve(static_cast<size_t>(now - start + 1));
  for (int64_t b = start; b <= now; ++b) series.push_back(ring.At(b, metric));
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
  for (size_t s = 0; s < kShards; ++s) {
    std::lock_guard lock(shards_[s].mu);
    for (const auto& [name, counters] : shards_[s].categories) {
      if (name.empty()) continue;  // the all-events series is not a category
      const Ring& ring = counters->days;
      CategoryActivity a{name, 0, 0};
      for (int64_t b = now - ring.size() + 1; b <= now; ++b) {
        a.events += ring.At(b, DemandMetric::kEvents);
        a.purchases += ring.At(b, DemandMetric::kPurchases);
      }
      all.push_back(std::move(a));
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

}  // namespace persona
