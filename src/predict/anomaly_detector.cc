#include "predict/anomaly_detector.h"

#include <algorithm>
#include <bit>
#include <utility>
#include <vector>

#include "common/varint.h"
#include "profile/profile.h"

namespace persona {

namespace {

// Histogram unit per rate: counts are integers, the CV and the churn live near [0, 1].
constexpr double kUnit[kAnomalyRateCount] = {1.0, 0.01, 1.0, 0.01};
constexpr double kLogOffset = 0.01;  // log(CV + 0.01): a CV of 0 stays finite

int Bucket(AnomalyRate rate, double x) {
  if (!(x > 0)) return 0;
  const double b =
      AnomalyDetector::kBucketsPerDoubling * std::log2(1 + x / kUnit[static_cast<int>(rate)]);
  return static_cast<int>(std::min<double>(b, AnomalyDetector::kBuckets - 1));
}

// Value at the lower edge of bucket b.
double Edge(AnomalyRate rate, double b) {
  return kUnit[static_cast<int>(rate)] * (std::exp2(b / AnomalyDetector::kBucketsPerDoubling) - 1);
}

// The value a bucket stands for: 0 for bucket 0 (it holds the zeros), else its log-space middle.
double Representative(AnomalyRate rate, int b) { return b == 0 ? 0 : Edge(rate, b + 0.5); }

// The scale the z is taken on.
double Scale(AnomalyRate rate, double x) {
  return rate == AnomalyRate::kGapVariation ? std::log(x + kLogOffset) : x;
}

// The value of a rate for the population, or NaN when the profile is not in that population.
double Value(const RateSnapshot& s, AnomalyRate rate, const AnomalyConfig& c) {
  if (!s.counted) return std::nan("");
  switch (rate) {
    case AnomalyRate::kMinuteEvents:
      return s.max_minute_events;
    case AnomalyRate::kViewStreak:
      return s.max_view_streak;
    case AnomalyRate::kGapVariation:
      return s.gaps >= c.population_min_gaps ? s.gap_variation : std::nan("");
    case AnomalyRate::kCartChurn:
      return s.carts >= c.population_min_carts ? s.cart_churn : std::nan("");
  }
  return std::nan("");
}

bool SameDouble(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

}  // namespace

bool RateSnapshot::operator==(const RateSnapshot& o) const {
  return counted == o.counted && max_minute_events == o.max_minute_events &&
         max_view_streak == o.max_view_streak && gaps == o.gaps &&
         SameDouble(gap_variation, o.gap_variation) && carts == o.carts &&
         SameDouble(cart_churn, o.cart_churn);
}

struct AnomalyDetector::Histogram {
  std::atomic<int64_t> counts[kBuckets] = {};
  std::atomic<int64_t> users{0};
};

AnomalyDetector::AnomalyDetector(const AnomalyConfig& config)
    : config_(config), histograms_(std::make_unique<Histogram[]>(kAnomalyRateCount)) {}

AnomalyDetector::~AnomalyDetector() = default;

RateSnapshot AnomalyDetector::Snapshot(const Profile& p) {
  RateSnapshot s;
  uint64_t events = 0;
  for (int t = 0; t < kEventTypeCount; ++t) events += p.count(static_cast<EventType>(t));
  s.counted = events > 0;
  const ActivityRhythm& r = p.rhythm();
  s.max_minute_events = std::max(r.max_minute_events, r.minute_events);
  s.max_view_streak = std::max(r.max_view_streak, r.view_streak);
  s.gaps = r.gaps;
  s.gap_variation = r.GapVariation();
  s.carts = p.count(EventType::kCart);
  if (s.carts > 0) {
    s.cart_churn = std::min(1.0, double(p.count(EventType::kRemoveCart)) / s.carts);
  }
  return s;
}

void AnomalyDetector::Change(const RateSnapshot& s, int delta, bool count) {
  for (int i = 0; i < kAnomalyRateCount; ++i) {
    const AnomalyRate rate = static_cast<AnomalyRate>(i);
    const double x = Value(s, rate, config_);
    if (std::isnan(x)) continue;
    histograms_[i].counts[Bucket(rate, x)].fetch_add(delta, std::memory_order_relaxed);
    histograms_[i].users.fetch_add(delta, std::memory_order_relaxed);
  }
  if (count) changes_.fetch_add(1, std::memory_order_relaxed);
}

void AnomalyDetector::Restore(const RateSnapshot& s) { Change(s, +1, /*count=*/false); }

namespace {
constexpr char kRefreshStateFormat = 1;
}  // namespace

void AnomalyDetector::SaveRefreshState(std::string* out) const {
  out->push_back(kRefreshStateFormat);
  AppendVarint64(out, changes_.load(std::memory_order_relaxed));
  AppendVarint64(out, refreshed_at_.load(std::memory_order_relaxed));
  out->push_back(ever_refreshed_.load(std::memory_order_relaxed) ? 1 : 0);
  for (const CachedStats& c : cached_) {
    AppendVarint64(out, c.users.load(std::memory_order_relaxed));
    AppendFixed64(out, std::bit_cast<uint64_t>(c.median.load(std::memory_order_relaxed)));
    AppendFixed64(out, std::bit_cast<uint64_t>(c.mad.load(std::memory_order_relaxed)));
  }
}

absl::Status AnomalyDetector::LoadRefreshState(std::string_view in) {
  const auto corrupt = [] { return absl::DataLossError("corrupt anomaly detector state"); };
  if (in.empty() || in[0] != kRefreshStateFormat) return corrupt();
  in.remove_prefix(1);
  uint64_t changes, refreshed_at;
  if (!ReadVarint64(&in, &changes) || !ReadVarint64(&in, &refreshed_at) || in.empty()) {
    return corrupt();
  }
  const bool ever = in[0] != 0;
  in.remove_prefix(1);
  uint64_t users[kAnomalyRateCount], median[kAnomalyRateCount], mad[kAnomalyRateCount];
  for (int i = 0; i < kAnomalyRateCount; ++i) {
    if (!ReadVarint64(&in, &users[i]) || !ReadFixed64(&in, &median[i]) ||
        !ReadFixed64(&in, &mad[i])) {
      return corrupt();
    }
  }
  if (!in.empty()) return corrupt();
  changes_.store(changes, std::memory_order_relaxed);
  refreshed_at_.store(refreshed_at, std::memory_order_relaxed);
  for (int i = 0; i < kAnomalyRateCount; ++i) {
    cached_[i].users.store(users[i], std::memory_order_relaxed);
    cached_[i].median.store(std::bit_cast<double>(median[i]), std::memory_order_relaxed);
    cached_[i].mad.store(std::bit_cast<double>(mad[i]), std::memory_order_relaxed);
  }
  ever_refreshed_.store(ever, std::memory_order_release);
  return absl::OkStatus();
}

void AnomalyDetector::Add(const RateSnapshot& s) { Change(s, +1); }
void AnomalyDetector::Remove(const RateSnapshot& s) { Change(s, -1); }

void AnomalyDetector::Update(const RateSnapshot& before, const RateSnapshot& after) {
  if (before == after) return;
  Change(before, -1);
  Change(after, +1);
}

void AnomalyDetector::Update(const Profile* before_or_null, const Profile& after) {
  Update(before_or_null ? Snapshot(*before_or_null) : RateSnapshot(), Snapshot(after));
}

void AnomalyDetector::MaybeRefresh() const {
  const uint64_t now = changes_.load(std::memory_order_relaxed);
  const uint64_t users = histograms_[0].users.load(std::memory_order_relaxed);
  // Small populations are cheap to rescan and move a lot per change: refresh on every change.
  const uint64_t due = users < 1024 ? 1 : users / 32;
  if (ever_refreshed_.load(std::memory_order_acquire) &&
      now - refreshed_at_.load(std::memory_order_relaxed) < due) {
    return;
  }
  // One thread recomputes; the others go on with the previous values (unless there are none).
  std::unique_lock lock(refresh_mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    if (ever_refreshed_.load(std::memory_order_acquire)) return;
    lock.lock();
  }
  std::vector<std::pair<double, int64_t>> deviations;
  for (int i = 0; i < kAnomalyRateCount; ++i) {
    const AnomalyRate rate = static_cast<AnomalyRate>(i);
    int64_t counts[kBuckets];
    int64_t total = 0;
    for (int b = 0; b < kBuckets; ++b) {
      counts[b] = std::max<int64_t>(0, histograms_[i].counts[b].load(std::memory_order_relaxed));
      total += counts[b];
    }
    double median = 0, mad = 0;
    if (total > 0) {
      int64_t seen = 0;
      int median_bucket = 0;
      for (int b = 0; b < kBuckets; ++b) {
        seen += counts[b];
        if (2 * seen >= total) {
          median_bucket = b;
          break;
        }
      }
      median = Scale(rate, Representative(rate, median_bucket));
      deviations.clear();
      for (int b = 0; b < kBuckets; ++b) {
        if (counts[b] > 0) {
          deviations.emplace_back(std::abs(Scale(rate, Representative(rate, b)) - median),
                                  counts[b]);
        }
      }
      std::sort(deviations.begin(), deviations.end());
      seen = 0;
      for (const auto& [d, n] : deviations) {
        seen += n;
        if (2 * seen >= total) {
          mad = d;
          break;
        }
      }
      // A MAD below the histogram's resolution at the median is that resolution: the z of a
      // population that all sits in one bucket is then large but finite, and the floors decide.
      const double resolution = std::abs(Scale(rate, Edge(rate, median_bucket + 1)) -
                                         Scale(rate, Edge(rate, median_bucket))) /
                                2;
      mad = std::max(mad, resolution);
    }
    cached_[i].users.store(static_cast<uint64_t>(total), std::memory_order_relaxed);
    cached_[i].median.store(median, std::memory_order_relaxed);
    cached_[i].mad.store(mad, std::memory_order_relaxed);
  }
  refreshed_at_.store(now, std::memory_order_relaxed);
  ever_refreshed_.store(true, std::memory_order_release);
}

RateStats AnomalyDetector::Stats(AnomalyRate rate) const {
  MaybeRefresh();
  const CachedStats& c = cached_[static_cast<int>(rate)];
  return RateStats{c.users.load(std::memory_order_relaxed),
                   c.median.load(std::memory_order_relaxed), c.mad.load(std::memory_order_relaxed)};
}

double AnomalyDetector::RobustZ(AnomalyRate rate, double x) const {
  const RateStats s = Stats(rate);
  if (s.users < config_.min_population || s.mad <= 0) return 0;
  const double z = (Scale(rate, x) - s.median) / (1.4826 * s.mad);
  return rate == AnomalyRate::kGapVariation ? -z : z;
}

bool AnomalyDetector::Abnormal(AnomalyRate rate, double x) const {
  const RateStats s = Stats(rate);
  if (s.users < config_.min_population) return true;  // floors alone
  return RobustZ(rate, x) > config_.z_threshold;
}

uint8_t AnomalyDetector::Evaluate(const RateSnapshot& s) const {
  if (!s.counted) return 0;
  const AnomalyConfig& c = config_;
  uint8_t flags = 0;
  // Floors first: they are cheap and almost always fail, so the statistics are rarely needed.
  if (s.max_minute_events >= c.min_minute_events &&
      Abnormal(AnomalyRate::kMinuteEvents, s.max_minute_events)) {
    flags |= kAnomalyHighRate;
  }
  if (s.gaps >= c.min_gaps && s.gap_variation < c.max_gap_variation &&
      Abnormal(AnomalyRate::kGapVariation, s.gap_variation)) {
    flags |= kAnomalyRegularTiming;
  }
  if (s.max_view_streak >= c.min_view_streak &&
      Abnormal(AnomalyRate::kViewStreak, s.max_view_streak)) {
    flags |= kAnomalyViewBurst;
  }
  if (s.carts >= c.min_carts && s.cart_churn >= c.min_cart_churn &&
      Abnormal(AnomalyRate::kCartChurn, s.cart_churn)) {
    flags |= kAnomalyCartChurn;
  }
  return flags;
}

}  // namespace persona
