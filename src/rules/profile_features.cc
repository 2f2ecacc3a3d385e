#include "rules/profile_features.h"

#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/time_util.h"

namespace persona {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// recency_days of a user who never purchased: larger than any real recency.
constexpr double kNeverDays = 1e6;

// Count family: id = metric * 4 + window; metric 0..8 is the EventType, 9 is all events;
// window 0 is all time, 1..3 are 1d, 7d, 30d.
constexpr uint32_t kEventsMetric = kEventTypeCount;
constexpr uint32_t kCountIds = (kEventTypeCount + 1) * 4;
constexpr int kWindowDays[3] = {1, 7, 30};
constexpr std::string_view kMetricNames[kEventTypeCount + 1] = {
    "views", "clicks",    "searches", "carts",   "remove_carts",
    "favs",  "purchases", "reviews",  "refunds", "events"};
constexpr std::string_view kWindowSuffixes[4] = {"", "_1d", "_7d", "_30d"};

enum NumberId : uint32_t {
  kMonetary = kCountIds,
  kNetMonetary,
  kMonetary1d,
  kMonetary7d,
  kMonetary30d,
  kOrders,
  kAov,
  kRefundAmount,
  kRecencyDays,
  kDaysSinceLastSeen,
  kDaysSinceFirstSeen,
  kSessions,
  kAvgSessionMinutes,
  kAvgSessionEvents,
  kCartRate,
  kPurchaseRate,
  kConversionRate,
  kRfmR,
  kRfmF,
  kRfmM,
  kPriceIndex,
  kAvgRating,
  kRatings,
  kNumberEnd,
};
constexpr std::string_view kNumberNames[] = {"monetary",
                                             "net_monetary",
                                             "monetary_1d",
                                             "monetary_7d",
                                             "monetary_30d",
                                             "orders",
                                             "aov",
                                             "refund_amount",
                                             "recency_days",
                                             "days_since_last_seen",
                                             "days_since_first_seen",
                                             "sessions",
                                             "avg_session_minutes",
                                             "avg_session_events",
                                             "cart_rate",
                                             "purchase_rate",
                                             "conversion_rate",
                                             "rfm_r",
                                             "rfm_f",
                                             "rfm_m",
                                             "price_index",
                                             "avg_rating",
                                             "ratings"};
static_assert(std::size(kNumberNames) == kNumberEnd - kMonetary);

enum StringId : uint32_t {
  kLifecycle = 100,
  kPriceTier,
  kTopCategory,
  kTopBrand,
  kTopItem,
  kTopKeyword,
  kStringEnd,
};
constexpr std::string_view kStringNames[] = {"lifecycle", "price_tier", "top_category",
                                             "top_brand", "top_item",   "top_keyword"};
static_assert(std::size(kStringNames) == kStringEnd - kLifecycle);

enum BoolId : uint32_t { kBuyer = 120 };

constexpr uint32_t kCallBase = 1u << 20;
constexpr std::string_view kCallFunctions[kInterestKindCount] = {
    "interest.category", "interest.brand", "interest.item", "interest.keyword"};

struct Call {
  InterestKind kind;
  std::string arg;
};

class FeatureCatalog : public VariableCatalog {
 public:
  FeatureCatalog() {
    for (uint32_t metric = 0; metric <= kEventsMetric; ++metric) {
      for (uint32_t window = 0; window < 4; ++window) {
        Add(std::string(kMetricNames[metric]) + std::string(kWindowSuffixes[window]),
            metric * 4 + window, VarType::kNumber);
      }
    }
    for (uint32_t id = kMonetary; id < kNumberEnd; ++id) {
      Add(std::string(kNumberNames[id - kMonetary]), id, VarType::kNumber);
    }
    for (uint32_t id = kLifecycle; id < kStringEnd; ++id) {
      Add(std::string(kStringNames[id - kLifecycle]), id, VarType::kString);
    }
    Add("buyer", kBuyer, VarType::kBool);
  }

  std::optional<VarInfo> Lookup(std::string_view name) const override {
    auto it = names_.find(std::string(name));
    if (it == names_.end()) return std::nullopt;
    return it->second;
  }

  // Call ids are registered once per distinct (function, argument) and never removed, so an id
  // held by a compiled rule stays valid for the life of the process.
  std::optional<VarInfo> LookupCall(std::string_view function,
                                    std::string_view arg) const override {
    int kind = -1;
    for (int k = 0; k < kInterestKindCount; ++k) {
      if (function == kCallFunctions[k]) kind = k;
    }
    if (kind < 0) return std::nullopt;
    std::string key = std::string(function) + '\n' + std::string(arg);
    std::unique_lock lock(calls_mutex_);
    auto it = call_ids_.find(key);
    if (it == call_ids_.end()) {
      const auto id = kCallBase + static_cast<uint32_t>(calls_.size());
      calls_.push_back(
          std::make_unique<Call>(Call{static_cast<InterestKind>(kind), std::string(arg)}));
      it = call_ids_.emplace(std::move(key), id).first;
    }
    return VarInfo{it->second, VarType::kNumber};
  }

  std::vector<std::string> Names() const override {
    std::vector<std::string> names = ordered_names_;
    for (std::string_view f : kCallFunctions) names.emplace_back(f);
    return names;
  }

  // The registered call behind `id`, or nullptr. The Call object never moves.
  const Call* GetCall(uint32_t id) const {
    std::shared_lock lock(calls_mutex_);
    const uint32_t index = id - kCallBase;
    return id >= kCallBase && index < calls_.size() ? calls_[index].get() : nullptr;
  }

 private:
  void Add(std::string name, uint32_t id, VarType type) {
    ordered_names_.push_back(name);
    names_.emplace(std::move(name), VarInfo{id, type});
  }

  absl::flat_hash_map<std::string, VarInfo> names_;
  std::vector<std::string> ordered_names_;
  mutable std::shared_mutex calls_mutex_;
  mutable std::vector<std::unique_ptr<Call>> calls_;
  mutable absl::flat_hash_map<std::string, uint32_t> call_ids_;
};

const FeatureCatalog& Catalog() {
  static const FeatureCatalog catalog;
  return catalog;
}

double Days(int64_t ms) { return static_cast<double>(ms) / static_cast<double>(kDayMs); }

// The highest-scoring key of a table (categories: among keys named directly by events, so that
// a deep path is not hidden behind its own ancestors), "" when empty.
std::string_view TopKey(const Profile& p, InterestKind kind, const ProfileContext& ctx) {
  const InterestTable::Entry* best = nullptr;
  std::string_view best_key;
  for (const InterestTable::Entry& e : p.interests(kind).entries()) {
    if (kind == InterestKind::kCategory && !e.marked()) continue;
    const std::string_view key = ctx.pool.Get(e.code());
    if (best == nullptr || e.score > best->score || (e.score == best->score && key < best_key)) {
      best = &e;
      best_key = key;
    }
  }
  return best_key;
}

}  // namespace

const VariableCatalog& ProfileFeatureCatalog() { return Catalog(); }

ProfileFeatures::ProfileFeatures(const Profile& profile, const ProfileContext& ctx, int64_t now_ms)
    : profile_(profile), ctx_(ctx), now_ms_(now_ms) {}

const ActivityTotals& ProfileFeatures::WindowTotals(int window_index) const {
  if (!windows_) {
    // One pass over the day buckets fills all three windows.
    std::array<ActivityTotals, 3> w;
    const int64_t now_day = FloorDiv(now_ms_, kDayMs);
    profile_.daily().ForEach([&](const DayBucket& b) {
      for (int i = 0; i < 3; ++i) {
        if (b.day > now_day || b.day <= now_day - kWindowDays[i]) continue;
        for (int t = 0; t < kEventTypeCount; ++t) w[i].counts[t] += b.counts[t];
        w[i].purchase_amount += b.purchase_amount;
      }
    });
    windows_ = w;
  }
  return (*windows_)[window_index];
}

double ProfileFeatures::Number(uint32_t id) const {
  const Profile& p = profile_;
  if (id < kCountIds) {
    const uint32_t metric = id / 4;
    const uint32_t window = id % 4;
    if (window == 0) {
      return metric == kEventsMetric ? static_cast<double>(p.events())
                                     : p.count(static_cast<EventType>(metric));
    }
    const ActivityTotals& t = WindowTotals(static_cast<int>(window) - 1);
    return metric == kEventsMetric ? static_cast<double>(t.events())
                                   : static_cast<double>(t.counts[metric]);
  }
  if (id >= kCallBase) {
    const Call* call = Catalog().GetCall(id);
    return call ? p.InterestShare(call->kind, call->arg, ctx_) : kNaN;
  }
  const Population* pop = ctx_.population;
  switch (id) {
    case kMonetary:
      return p.monetary();
    case kNetMonetary:
      return p.net_monetary();
    case kMonetary1d:
      return WindowTotals(0).purchase_amount;
    case kMonetary7d:
      return WindowTotals(1).purchase_amount;
    case kMonetary30d:
      return WindowTotals(2).purchase_amount;
    case kOrders:
      return p.orders();
    case kAov:
      return p.aov();
    case kRefundAmount:
      return p.refund_amount();
    case kRecencyDays:
      return p.purchases() > 0 ? Days(now_ms_ - p.last_purchase_ms()) : kNeverDays;
    case kDaysSinceLastSeen:
      return p.empty() ? kNaN : Days(now_ms_ - p.last_seen_ms());
    case kDaysSinceFirstSeen:
      return p.empty() ? kNaN : Days(now_ms_ - p.first_seen_ms());
    case kSessions:
      return p.sessions().count();
    case kAvgSessionMinutes:
      return p.avg_session_ms() / static_cast<double>(kMinuteMs);
    case kAvgSessionEvents:
      return p.avg_session_events();
    case kCartRate:
      return p.cart_rate();
    case kPurchaseRate:
      return p.purchase_rate();
    case kConversionRate:
      return p.conversion_rate();
    case kRfmR:
      return pop ? pop->RecencyScore(p.rfm_inputs(), now_ms_) : 0;
    case kRfmF:
      return pop ? pop->FrequencyScore(p.rfm_inputs()) : 0;
    case kRfmM:
      return pop ? pop->MonetaryScore(p.rfm_inputs()) : 0;
    case kPriceIndex:
      return p.price_index();
    case kAvgRating:
      return p.avg_rating();
    case kRatings:
      return p.rating_count();
    default:
      return kNaN;
  }
}

std::string_view ProfileFeatures::String(uint32_t id) const {
  switch (id) {
    case kLifecycle:
      return LifecycleStageName(profile_.Lifecycle(*ctx_.config, now_ms_));
    case kPriceTier:
      return profile_.price_tier();
    case kTopCategory:
      return TopKey(profile_, InterestKind::kCategory, ctx_);
    case kTopBrand:
      return TopKey(profile_, InterestKind::kBrand, ctx_);
    case kTopItem:
      return TopKey(profile_, InterestKind::kItem, ctx_);
    case kTopKeyword:
      return TopKey(profile_, InterestKind::kKeyword, ctx_);
    default:
      return {};
  }
}

bool ProfileFeatures::Bool(uint32_t id) const { return id == kBuyer && profile_.purchases() > 0; }

}  // namespace persona
