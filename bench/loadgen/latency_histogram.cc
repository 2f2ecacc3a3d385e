#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace persona::loadgen {
namespace {

// Bucket layout: [0, 2048) one bucket per value; then for each exponent e >= 1 the range
// [1024 << e, 2048 << e) in 1024 buckets of width 1 << e.
constexpr uint64_t kExact = 2048;
constexpr uint64_t kSubBuckets = 1024;
constexpr int kMaxExponent = 22;  // up to 2^33 us
constexpr size_t kBuckets = kExact + kMaxExponent * kSubBuckets;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

size_t LatencyHistogram::BucketOf(uint64_t micros) {
  if (micros < kExact) return static_cast<size_t>(micros);
  // e such that micros >> e lies in [1024, 2048).
  const int e = (63 - std::countl_zero(micros)) - 10;
  if (e > kMaxExponent) return kBuckets - 1;
  return static_cast<size_t>(kExact + (e - 1) * kSubBuckets + ((micros >> e) - kSubBuckets));
}

uint64_t LatencyHistogram::BucketLow(size_t i) {
  if (i < kExact) return i;
  const size_t e = (i - kExact) / kSubBuckets + 1;
  const uint64_t sub = (i - kExact) % kSubBuckets;
  return (kSubBuckets + sub) << e;
}

uint64_t LatencyHistogram::BucketWidth(size_t i) {
  if (i < kExact) return 1;
  return uint64_t{1} << ((i - kExact) / kSubBuckets + 1);
}

void LatencyHistogram::Record(uint64_t micros) {
  ++counts_[BucketOf(micros)];
  ++count_;
  sum_ += micros;
  min_ = std::min(min_, micros);
  max_ = std::max(max_, micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  // The rank of the p-th value, 1-based: p=50 of 4 values is the 2nd, p=100 the last.
  const double clamped = std::clamp(p, 0.0, 100.0);
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(clamped / 100.0 * count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t mid = BucketLow(i) + BucketWidth(i) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

}  // namespace persona::loadgen
