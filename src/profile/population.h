// Population distributions behind the RFM quintile scores: across all buyers of all partitions,
// how recent their last purchase is, how many orders they placed, how much they spent. Shared by
// every partition and updated without a lock: fixed-size histograms of relaxed atomic counters, so
// writers on different partitions never wait for each other and readers on any thread may score at
// any time (a score read during an update may be off by that one update, never torn).
//
// Derived state: never persisted. The engine rebuilds it after recovery by calling Add() for every
// loaded profile; from then on Profile::Apply keeps it in sync through Update().
//
// Histograms: recency by UTC day of the last purchase since 2000-01-01 (65,536 days, with a
// coarse level of 256-day sums so a rank costs ~500 loads); orders exact below 32, then 8 buckets
// per doubling; monetary log-spaced, 8 buckets per doubling from 2^-10. A score is the quintile
// of the value's mid-rank among buyers: 1 + floor(5 * (below + same/2) / buyers), capped at 5,
// where 5 is best (most recent, most frequent, highest spend).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace persona {

class Profile;

// What the population needs to know about one profile.
struct RfmInputs {
  bool buyer = false;  // at least one purchase event
  int64_t last_purchase_ms = 0;
  uint32_t orders = 0;
  double monetary = 0;  // gross purchase amount
  bool operator==(const RfmInputs&) const = default;
};

class Population {
 public:
  Population();
  Population(const Population&) = delete;
  Population& operator=(const Population&) = delete;

  // Adds / removes a profile's contribution; profiles without a purchase contribute nothing.
  void Add(const Profile& p);
  void Remove(const Profile& p);
  void Add(const RfmInputs& in);
  void Remove(const RfmInputs& in);
  // Moves a profile's contribution from `before` to `after` (a no-op when equal).
  void Update(const RfmInputs& before, const RfmInputs& after);

  // Quintile 1..5 of a value among buyers, 5 best. 0 for a user without a purchase
  // (last_purchase_ms <= 0, orders == 0). With no buyers at all every buyer scores 3.
  // `now_ms` is accepted for symmetry: ranking last-purchase times is ranking recencies.
  int RecencyScore(int64_t last_purchase_ms, int64_t now_ms) const;
  int FrequencyScore(uint32_t orders) const;
  int MonetaryScore(double monetary) const;
  // Scores of a profile's inputs: all 0 for a non-buyer.
  int RecencyScore(const RfmInputs& in, int64_t now_ms) const {
    return in.buyer ? RecencyScore(in.last_purchase_ms, now_ms) : 0;
  }
  int FrequencyScore(const RfmInputs& in) const { return in.buyer ? FrequencyScore(in.orders) : 0; }
  int MonetaryScore(const RfmInputs& in) const { return in.buyer ? MonetaryScore(in.monetary) : 0; }

  uint64_t buyers() const { return buyers_.load(std::memory_order_relaxed); }

  static constexpr int kDays = 65536;
  static constexpr int kDaysPerCoarse = 256;
  static constexpr int kOrderBuckets = 256;
  static constexpr int kMoneyBuckets = 512;
  static int DayBucket(int64_t ms);
  static int OrderBucket(uint32_t orders);
  static int MoneyBucket(double monetary);

 private:
  void Change(const RfmInputs& in, int delta);
  int Score(uint64_t below, uint64_t same) const;

  std::unique_ptr<std::atomic<uint32_t>[]> days_;    // kDays
  std::unique_ptr<std::atomic<uint32_t>[]> coarse_;  // kDays / kDaysPerCoarse
  std::unique_ptr<std::atomic<uint32_t>[]> orders_;  // kOrderBuckets
  std::unique_ptr<std::atomic<uint32_t>[]> money_;   // kMoneyBuckets
  std::atomic<uint64_t> buyers_{0};
};

}  // namespace persona
