// LatencyHistogram: an HdrHistogram-style log-linear histogram of microsecond values. Values below
// 2048 us are counted exactly; above, each power-of-two range is split into 1024 equal buckets, so
// a reported percentile is within 0.1% of the true value, at ~190 KB per histogram. Recording is a
// few instructions, so each load-generator thread keeps its own and they are merged at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace persona::loadgen {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Counts one value (microseconds). Values past ~2^32 us (71 minutes) land in the last bucket.
  void Record(uint64_t micros);
  // Adds every count of `other` to this one.
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The value at percentile `p` (0..100): the midpoint of the bucket holding the p-th value,
  // clamped to the exact max. 0 for an empty histogram.
  uint64_t Percentile(double p) const;

 private:
  static size_t BucketOf(uint64_t micros);
  // Lowest value and width of bucket `i`.
  static uint64_t BucketLow(size_t i);
  static uint64_t BucketWidth(size_t i);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace persona::loadgen
