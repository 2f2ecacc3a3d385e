// Bot and abuse flags from robust statistics: each user's rates (from Profile::rhythm() and the
// profile's counts) are compared with the live population's median and MAD, and a rate is abnormal
// when its robust z = (x - median) / (1.4826 MAD) exceeds a threshold AND it passes an absolute
// floor. The floor keeps a quiet population (everyone at 1-2 events a minute, MAD near 0) from
// flagging a user at 5; the z keeps a population of heavy users from flagging all of them.
//
//   rate                 flag                    floor (defaults)                 z side
//   max events / minute  kAnomalyHighRate        >= 30                            high
//   gap variation (CV)   kAnomalyRegularTiming   >= 20 gaps and CV < 0.15         low, on log(CV)
//   longest view streak  kAnomalyViewBurst       >= 200                           high
//   cart churn           kAnomalyCartChurn       >= 10 carts, >= 90% removed      high
//
// The gap CV is bounded below by 0, so on a linear scale even a CV of 0 sits only ~2.5 MADs under a
// typical median of ~1.5: its z is taken on log(CV + 0.01) instead, where machine-regular timing
// (CV ~0.02) stands far out. Until a rate's population holds min_population users its z is not
// trusted and the floor alone decides.
//
// Population: per rate, a histogram of relaxed atomic counters over log-spaced buckets (16 per
// doubling of 1 + x / unit, ~4% resolution), shared by all partition writers without a lock like
// profile/population.h. Median and MAD are recomputed from the histograms when the population has
// changed by 1/32 since the last computation (at every change below 1,024 users), by one thread
// at a time; the others keep using the previous values. Evaluate only needs them when a floor is
// passed, so the common case costs a few comparisons. The histograms are derived state: rebuild
// them with Restore() for every loaded profile, then keep them in sync with Update() at every
// profile change. When the statistics were last recomputed (and their values) is not a function of
// the profiles, so a checkpoint keeps it (SaveRefreshState/LoadRefreshState): a detector restored
// that way flags exactly what one that never stopped would. One detector per partition, fed by
// its writer alone, is deterministic; Evaluate from other threads would move the refresh point, so
// readers must not call it.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "profile/activity_rhythm.h"

namespace persona {

class Profile;

struct AnomalyConfig {
  double z_threshold = 6;
  uint64_t min_population = 100;  // users in a rate's population before its z is trusted
  uint32_t min_minute_events = 30;
  uint32_t min_gaps = 20;
  double max_gap_variation = 0.15;
  uint32_t min_view_streak = 200;
  uint32_t min_carts = 10;
  double min_cart_churn = 0.9;
  // Users enter the gap-CV and cart-churn populations only with this many gaps / carts: a CV of
  // two gaps or the churn of one cart says little about the population.
  uint32_t population_min_gaps = 5;
  uint32_t population_min_carts = 3;
};

// The rates of one profile: all the population keeps of it. Cheap to take before Profile::Apply.
struct RateSnapshot {
  bool counted = false;  // the profile has at least one event
  uint32_t max_minute_events = 0;
  uint32_t max_view_streak = 0;
  uint32_t gaps = 0;
  double gap_variation = std::nan("");  // NaN with fewer than 2 gaps
  uint32_t carts = 0;
  double cart_churn = std::nan("");  // remove_carts / carts, NaN without carts
  bool operator==(const RateSnapshot& o) const;
};

enum class AnomalyRate : uint8_t { kMinuteEvents, kGapVariation, kViewStreak, kCartChurn };
inline constexpr int kAnomalyRateCount = 4;

struct RateStats {
  uint64_t users = 0;  // in this rate's population
  double median = 0;
  double mad = 0;  // on the scale the z uses (log(CV + 0.01) for the gap variation)
};

class AnomalyDetector {
 public:
  explicit AnomalyDetector(const AnomalyConfig& config = AnomalyConfig());
  ~AnomalyDetector();
  AnomalyDetector(const AnomalyDetector&) = delete;
  AnomalyDetector& operator=(const AnomalyDetector&) = delete;

  static RateSnapshot Snapshot(const Profile& p);

  // Population maintenance; thread-safe and lock-free. Update moves one profile's contribution
  // from `before` to `after` (a snapshot taken before Apply, or a default one for a new user).
  void Add(const RateSnapshot& s);
  void Remove(const RateSnapshot& s);
  void Update(const RateSnapshot& before, const RateSnapshot& after);
  // Same, from profiles; `before_or_null` is null for a profile seen for the first time.
  void Update(const Profile* before_or_null, const Profile& after);
  // Adds a loaded profile's contribution without counting it as a change (the refresh schedule
  // comes from LoadRefreshState).
  void Restore(const RateSnapshot& s);

  // The refresh schedule and cached statistics, for checkpoints. LoadRefreshState returns
  // DataLoss for bytes SaveRefreshState did not write.
  void SaveRefreshState(std::string* out) const;
  absl::Status LoadRefreshState(std::string_view in);

  // AnomalyFlag bits (profile/activity_rhythm.h) for the profile's current rates. Thread-safe.
  uint8_t Evaluate(const Profile& p) const { return Evaluate(Snapshot(p)); }
  uint8_t Evaluate(const RateSnapshot& s) const;

  // The population statistics the z scores use (refreshed if stale), and one value's robust z
  // (positive = the abnormal side); 0 while the population is below min_population.
  RateStats Stats(AnomalyRate rate) const;
  double RobustZ(AnomalyRate rate, double x) const;

  const AnomalyConfig& config() const { return config_; }

  static constexpr int kBucketsPerDoubling = 16;
  static constexpr int kBuckets = 17 * kBucketsPerDoubling;  // up to 2^17 units

 private:
  struct Histogram;
  struct CachedStats {
    std::atomic<uint64_t> users{0};
    std::atomic<double> median{0};
    std::atomic<double> mad{0};
  };

  void Change(const RateSnapshot& s, int delta, bool count = true);
  // Recomputes the cached statistics when the population moved enough since the last time.
  void MaybeRefresh() const;
  bool Abnormal(AnomalyRate rate, double x) const;

  const AnomalyConfig config_;
  std::unique_ptr<Histogram[]> histograms_;  // kAnomalyRateCount
  std::atomic<uint64_t> changes_{0};
  mutable std::atomic<uint64_t> refreshed_at_{0};
  mutable std::atomic<bool> ever_refreshed_{false};
  mutable std::mutex refresh_mu_;
  mutable CachedStats cached_[kAnomalyRateCount];
};

}  // namespace persona
