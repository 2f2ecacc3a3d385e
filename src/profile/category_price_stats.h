// The distribution of prices seen per category, kept by one partition, so that a price can be
// placed as a percentile within its category ("is 49.90 cheap for headphones?"). Each category has
// a log-spaced histogram: 4 buckets per doubling of price from 2^-7 (<1 cent) to 2^25 (33.5M),
// 128 uint32 counters (halved together if one would overflow). Percentile resolution is therefore
// one bucket (prices within ~19% of each other are not told apart): the percentile of a price is
// (prices in lower buckets + half the prices in its bucket) / all prices.
//
// Partition-local and writer-thread only (no lock); it is derived from the events but not cheap to
// rebuild, so the engine persists it in checkpoints with Encode/Decode. Keys are the category
// strings themselves (not pool codes), so the encoding is self-contained.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace persona {

class CategoryPriceStats {
 public:
  static constexpr int kBuckets = 128;
  // Below this many prices a category's percentiles are too noisy to use.
  static constexpr uint64_t kMinSamples = 20;

  CategoryPriceStats() = default;
  CategoryPriceStats(const CategoryPriceStats&) = delete;
  CategoryPriceStats& operator=(const CategoryPriceStats&) = delete;

  // Records one price (>= 0; negative and NaN prices are ignored) for `category`.
  void Add(std::string_view category, double price);
  // The percentile in [0, 1] of `price` among the prices recorded for `category`, or nullopt
  // when the category has fewer than kMinSamples prices (or the price is not a number >= 0).
  std::optional<double> Percentile(std::string_view category, double price) const;
  // Prices recorded for `category` (after halvings, if any).
  uint64_t count(std::string_view category) const;
  size_t categories() const { return histograms_.size(); }

  // Appends a self-contained, deterministic encoding (categories sorted) to `out`.
  void Encode(std::string* out) const;
  // Replaces the contents with a decoded encoding. On error (truncated or corrupt input) returns
  // DataLoss and leaves the contents unchanged.
  absl::Status Decode(std::string_view in);

  size_t MemoryBytes() const;

  // The bucket of a price: 0 for prices below 2^-7, 127 for 2^25 and above.
  static int BucketOf(double price);

 private:
  struct Histogram {
    std::array<uint32_t, kBuckets> counts{};
    uint64_t total = 0;
  };
  absl::flat_hash_map<std::string, std::unique_ptr<Histogram>> histograms_;
};

}  // namespace persona
