// Online demand counters per category, fed at update time and forecast on request: how many events
// (and how many purchases) each category receives per hour over the last 14 days and per day over
// the last 120 days, by EVENT time, so a replay of old traffic gives the same series as the live
// stream did. A category path credits the node and every ancestor ("a.b.c" counts for "a.b.c",
// "a.b" and "a"); an event without a category counts nowhere.
//
// Concurrency: Add is called from several partition writer threads. Categories are spread over 64
// shards by hash, each behind its own mutex held for a few counter increments, so writers only
// meet when they touch the same shard at the same instant. Reads take the shard lock of the one
// category they copy out.
//
// Rings: each category keeps its own newest bucket; a newer event advances the ring (clearing the
// buckets it skips), an event older than the ring's span is dropped and counted in
// dropped_late(). Series are aligned on the newest event time seen by the whole instance (the
// watermark), so a category that went quiet reads as zeros up to now.
//
// Memory bound: (hour_buckets + day_buckets) x 2 metrics x 4 bytes plus ~100 bytes of key and
// bookkeeping per category: 3.7 KB with the defaults, so the default cap of 20,000 categories
// bounds the instance at ~75 MB. Categories beyond the cap are not tracked (dropped_categories()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "event/event.h"
#include "model/holt_winters.h"

namespace persona {

enum class DemandPeriod : uint8_t { kHour, kDay };
enum class DemandMetric : uint8_t { kEvents, kPurchases };
// "hour"/"day" and "events"/"purchases"; the parsers return false on an unknown name.
std::string_view DemandPeriodName(DemandPeriod p);
std::string_view DemandMetricName(DemandMetric m);
bool ParseDemandPeriod(std::string_view name, DemandPeriod* out);
bool ParseDemandMetric(std::string_view name, DemandMetric* out);

struct CategoryDemandConfig {
  // Width of an "hour" bucket. Offline evaluation on a slice of a few hours uses 5 minutes.
  int64_t hour_bucket_ms = 3'600'000;
  int hour_buckets = 14 * 24;
  int64_t day_bucket_ms = 86'400'000;
  int day_buckets = 120;
  // Season lengths used for forecasting, in buckets (a day of hours, a week of days).
  int hour_season = 24;
  int day_season = 7;
  size_t max_categories = 20'000;
  // Also count every event (with or without a category) under kAllCategories (""), so that
  // Forecast("") forecasts the whole shop. It is not listed by Categories().
  bool count_all = false;
};

inline constexpr std::string_view kAllCategories = "";

struct DemandPoint {
  int64_t start_ms = 0;  // start of the bucket (UTC, aligned on the bucket width)
  double mean = 0;
  double lo = 0;
  double hi = 0;
};

struct DemandForecast {
  std::string category;
  DemandPeriod period = DemandPeriod::kHour;
  DemandMetric metric = DemandMetric::kEvents;
  int64_t bucket_ms = 0;
  int history_buckets = 0;  // length of the series the model was fitted on
  SmoothingForecast model;  // method, parameters, sigma (model.points == points below, unaligned)
  std::vector<DemandPoint> points;  // the buckets after the watermark's bucket
};

struct CategoryActivity {
  std::string category;
  uint64_t events = 0;  // in the retained day buckets
  uint64_t purchases = 0;
};

class CategoryDemand {
 public:
  explicit CategoryDemand(const CategoryDemandConfig& config = CategoryDemandConfig());
  ~CategoryDemand();
  CategoryDemand(const CategoryDemand&) = delete;
  CategoryDemand& operator=(const CategoryDemand&) = delete;

  // Counts one event for its category and the category's ancestors. Thread-safe and O(depth).
  void Add(const Event& e);

  // The series of `category` at `period`: one count per bucket from the category's first bucket
  // still in the ring up to the watermark's bucket (inclusive), oldest first. *first_bucket_ms
  // (optional) receives the start of the first bucket. NotFound for an unknown category.
  absl::StatusOr<std::vector<double>> Series(std::string_view category, DemandPeriod period,
                                             DemandMetric metric,
                                             int64_t* first_bucket_ms = nullptr) const;

  // Forecasts the next `horizon` buckets after the watermark's bucket with holt_winters, seasonal
  // (period hour_season / day_season) when the series holds two seasons. NotFound for an unknown
  // category, InvalidArgument for a horizon outside 1..1000.
  absl::StatusOr<DemandForecast> Forecast(std::string_view category, DemandPeriod period,
                                          int horizon, DemandMetric metric) const;

  // Up to `limit` categories, most events in the retained day buckets first (ties by name).
  std::vector<CategoryActivity> Categories(size_t limit) const;

  // The newest event time seen (epoch ms), 0 before any event.
  int64_t watermark_ms() const { return watermark_ms_.load(std::memory_order_relaxed); }
  size_t category_count() const;
  uint64_t dropped_late() const { return dropped_late_.load(std::memory_order_relaxed); }
  uint64_t dropped_categories() const {
    return dropped_categories_.load(std::memory_order_relaxed);
  }
  const CategoryDemandConfig& config() const { return config_; }

 private:
  struct Counters;
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, std::unique_ptr<Counters>> categories;
  };
  static constexpr size_t kShards = 64;

  void Credit(std::string_view category, int64_t hour, int64_t day, bool purchase);
  Shard& ShardOf(std::string_view category) const;

  const CategoryDemandConfig config_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<int64_t> watermark_ms_{0};
  std::atomic<size_t> categories_{0};
  std::atomic<uint64_t> dropped_late_{0};
  std::atomic<uint64_t> dropped_categories_{0};
};

}  // namespace persona
