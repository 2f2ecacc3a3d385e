// Online demand counters per category, fed at update time and forecast on request: how many events
// (and how many purchases) each category receives per hour over the last 14 days and per day over
// the last 120 days, by EVENT time, so a replay of old traffic gives the same series as the live
// stream did. A category path credits the node and every ancestor ("a.b.c" counts for "a.b.c",
// "a.b" and "a"); an event without a category counts nowhere.
//
// Parts: the counters are kept as `parts` independent parts, one per engine partition, combined
// at read time. A part's content depends only on the events added to it and their order, so a
// partition's writer that replays its own log after a crash rebuilds exactly its part, and each
// part is checkpointed and restored on its own (SavePart / LoadPart). Reads sum the parts: a
// category's count in a bucket is the sum over parts, and a category is known if any part knows
// it. When one stream is split over parts by user, reads equal those of a single part fed the
// whole stream, except for events that arrive more than a ring's span behind the newest event of
// ANOTHER part: one part would have dropped them (and counted them in dropped_late()), the split
// keeps them; they lie before the combined window, so all they change is that the category's
// series may start earlier, with zeros.
//
// Concurrency: each part expects one writer thread (Add(part, ...)); several writers on one part
// are safe but make the part depend on their interleaving. Within a part, categories are spread
// over 64 shards by hash, each behind its own mutex held for a few counter increments, so a writer
// and the readers only meet when they touch the same shard at the same instant. Reads take one
// shard lock at a time.
//
// Rings: each category keeps its own newest bucket per part; a newer event advances the ring
// (clearing the buckets it skips), an event older than the ring's span (behind that part's newest
// bucket of the category) is dropped and counted in dropped_late(). Series are aligned on the
// newest event time seen by any part (the watermark), so a category that went quiet reads as
// zeros up to now.
//
// Memory bound: (hour_buckets + day_buckets) x 2 metrics x 4 bytes plus ~100 bytes of key and
// bookkeeping per category and part: 3.7 KB with the defaults, so the default cap of 20,000
// categories bounds a part at ~75 MB. The cap applies per part (a part tracks at most
// max_categories categories; the instance at most parts x max_categories); categories beyond it
// are not tracked in that part (dropped_categories()).
//
// Part encoding (SavePart), version 1. Integers are varints, signed ones ZigZag-encoded first;
// a string is its length and its bytes:
//   "PCD" 0x01                                 magic and format version
//   hour_bucket_ms (signed), hour_buckets, day_bucket_ms (signed), day_buckets
//                                              the ring geometry the part was written with
//   watermark_ms (signed), dropped_late, dropped_categories
//   n, then n categories in byte order of their names:
//     name, hour ring, day ring
//     ring = head (signed), first (signed), size,
//            event counts, purchase counts     each as: k, then k x (gap, count) for the
//                                              non-zero slots in slot order; gap = slot minus
//                                              (previous non-zero slot + 1), or the slot itself
//                                              for the first
//   fixed64 checksum                           xxHash64 (common/hash.h) of everything before it
// The encoding is deterministic: equal parts encode to equal bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eval/holt_winters.h"
#include "event/event.h"

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
  // An instance of `parts` parts (0 is taken as 1), all empty.
  explicit CategoryDemand(const CategoryDemandConfig& config = CategoryDemandConfig(),
                          uint32_t parts = 1);
  ~CategoryDemand();
  CategoryDemand(const CategoryDemand&) = delete;
  CategoryDemand& operator=(const CategoryDemand&) = delete;

  // Counts one event in `part` for its category and the category's ancestors, and raises the
  // part's watermark to the event's time. Thread-safe and O(depth). REQUIRES: part < parts()
  // (the process aborts otherwise). Add(e) is Add(0, e).
  void Add(uint32_t part, const Event& e);
  void Add(const Event& e) { Add(0, e); }

  // The series of `category` at `period`, summed over the parts: one count per bucket from the
  // category's first bucket still in a ring up to the watermark's bucket (inclusive), oldest
  // first. *first_bucket_ms (optional) receives the start of the first bucket. NotFound for a
  // category no part knows.
  absl::StatusOr<std::vector<double>> Series(std::string_view category, DemandPeriod period,
                                             DemandMetric metric,
                                             int64_t* first_bucket_ms = nullptr) const;

  // Forecasts the next `horizon` buckets after the watermark's bucket with holt_winters, seasonal
  // (period hour_season / day_season) when the series holds two seasons. NotFound for an unknown
  // category, InvalidArgument for a horizon outside 1..1000.
  absl::StatusOr<DemandForecast> Forecast(std::string_view category, DemandPeriod period,
                                          int horizon, DemandMetric metric) const;

  // Up to `limit` categories, most events in the retained day buckets first (ties by name), with
  // their counts summed over the parts.
  std::vector<CategoryActivity> Categories(size_t limit) const;

  // The newest event time seen by any part (epoch ms), 0 before any event.
  int64_t watermark_ms() const;
  // Distinct categories known to any part.
  size_t category_count() const;
  // Sums over the parts.
  uint64_t dropped_late() const;
  uint64_t dropped_categories() const;
  uint32_t parts() const { return static_cast<uint32_t>(parts_.size()); }
  const CategoryDemandConfig& config() const { return config_; }

  // Appends the encoding of `part` (format above) to *out. Readers and the other parts' writers
  // may run concurrently; the snapshot is consistent when the part's own writer is not adding at
  // the same time (call it from that writer, between events). REQUIRES: part < parts().
  void SavePart(uint32_t part, std::string* out) const;

  // Replaces the content of `part` with the one encoded in `in` (a whole SavePart output).
  // DataLoss when `in` is truncated, corrupt, has trailing bytes, or was written with another
  // ring geometry (bucket widths or counts) than this instance's config; the part is then left
  // unchanged. Never reads outside `in`. InvalidArgument when part >= parts(). The part must have
  // no writer while it loads; readers may run and see the old or the new content of each shard.
  absl::Status LoadPart(uint32_t part, std::string_view in);

 private:
  struct Counters;
  using CategoryMap = absl::flat_hash_map<std::string, std::unique_ptr<Counters>>;
  struct Shard {
    mutable std::mutex mu;
    CategoryMap categories ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 64;
  // One partition's counters. The atomics are written by the part's writer and read by anyone.
  struct Part {
    Part();
    std::unique_ptr<Shard[]> shards;  // kShards
    std::atomic<int64_t> watermark_ms{0};
    std::atomic<size_t> categories{0};  // entries over all shards, for the cap
    std::atomic<uint64_t> dropped_late{0};
    std::atomic<uint64_t> dropped_categories{0};
  };

  const Part& PartAt(uint32_t part) const;
  void Credit(Part& p, std::string_view category, int64_t hour, int64_t day, bool purchase);
  static size_t ShardIndex(std::string_view category);

  const CategoryDemandConfig config_;
  std::vector<std::unique_ptr<Part>> parts_;
};

}  // namespace persona
