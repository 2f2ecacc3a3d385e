#include "predict/profile_vector.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "common/time_util.h"
#include "profile/daily_activity.h"
#include "profile/interest_table.h"

namespace persona {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One enumerator per feature, in vector order; kNames below must list them in the same order.
enum Feature : int {
  kEvents,
  kEvents7d,
  kEvents30d,
  kViews,
  kViews7d,
  kViews30d,
  kCarts,
  kCarts7d,
  kCarts30d,
  kFavs,
  kFavs30d,
  kPurchases,
  kPurchases7d,
  kPurchases30d,
  kOrders,
  kMonetary,
  kMonetary30d,
  kAov,
  kDaysSinceFirstSeen,
  kDaysSinceLastSeen,
  kRecencyDays,
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
  kTopCategoryShare,
  kCategoryEntropy,
  kDistinctCategories,
  kActiveDays7d,
  kActiveDays30d,
  kLastDayShare,
  kActiveHours,
  kHourEntropy,
  kFeatureCount,
};

constexpr std::array<const char*, kFeatureCount> kNames = {
    "events",
    "events_7d",
    "events_30d",
    "views",
    "views_7d",
    "views_30d",
    "carts",
    "carts_7d",
    "carts_30d",
    "favs",
    "favs_30d",
    "purchases",
    "purchases_7d",
    "purchases_30d",
    "orders",
    "monetary",
    "monetary_30d",
    "aov",
    "days_since_first_seen",
    "days_since_last_seen",
    "recency_days",
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
    "top_category_share",
    "category_entropy",
    "distinct_categories",
    "active_days_7d",
    "active_days_30d",
    "last_day_share",
    "active_hours",
    "hour_entropy",
};

double Days(int64_t ms) { return static_cast<double>(ms) / static_cast<double>(kDayMs); }

double Count(const ActivityTotals& t, EventType type) {
  return static_cast<double>(t.counts[static_cast<int>(type)]);
}

// Shannon entropy (nats) of weights, divided by log(n) when `normalise_over` > 1 so that the
// value lies in [0, 1] whatever the number of possible outcomes.
template <typename Range>
double Entropy(const Range& weights, double total, double normalise_over) {
  if (!(total > 0)) return kNaN;
  double h = 0;
  for (double w : weights) {
    if (w > 0) {
      const double p = w / total;
      h -= p * std::log(p);
    }
  }
  return normalise_over > 1 ? h / std::log(normalise_over) : h;
}

}  // namespace

const std::vector<std::string>& ProfileVectorNames() {
  static const std::vector<std::string>* const names =
      new std::vector<std::string>(kNames.begin(), kNames.end());
  return *names;
}

void ExtractProfileVector(const Profile& p, const ProfileContext& ctx, int64_t now_ms,
                          std::span<float> out) {
  std::array<double, kFeatureCount> f;
  f.fill(kNaN);
  const ActivityTotals w7 = p.Window(now_ms, 7);
  const ActivityTotals w30 = p.Window(now_ms, 30);

  f[kEvents] = static_cast<double>(p.events());
  f[kEvents7d] = static_cast<double>(w7.events());
  f[kEvents30d] = static_cast<double>(w30.events());
  f[kViews] = p.count(EventType::kView);
  f[kViews7d] = Count(w7, EventType::kView);
  f[kViews30d] = Count(w30, EventType::kView);
  f[kCarts] = p.count(EventType::kCart);
  f[kCarts7d] = Count(w7, EventType::kCart);
  f[kCarts30d] = Count(w30, EventType::kCart);
  f[kFavs] = p.count(EventType::kFav);
  f[kFavs30d] = Count(w30, EventType::kFav);
  f[kPurchases] = p.purchases();
  f[kPurchases7d] = Count(w7, EventType::kPurchase);
  f[kPurchases30d] = Count(w30, EventType::kPurchase);
  f[kOrders] = p.orders();
  f[kMonetary] = p.monetary();
  f[kMonetary30d] = w30.purchase_amount;
  f[kAov] = p.aov();
  if (!p.empty()) {
    f[kDaysSinceFirstSeen] = Days(now_ms - p.first_seen_ms());
    f[kDaysSinceLastSeen] = Days(now_ms - p.last_seen_ms());
  }
  // NaN rather than a large sentinel: "never bought" is not "bought long ago", and the trees
  // learn a default branch for it.
  if (p.purchases() > 0) f[kRecencyDays] = Days(now_ms - p.last_purchase_ms());
  f[kSessions] = p.sessions().count();
  f[kAvgSessionMinutes] = p.avg_session_ms() / static_cast<double>(kMinuteMs);
  f[kAvgSessionEvents] = p.avg_session_events();
  f[kCartRate] = p.cart_rate();
  f[kPurchaseRate] = p.purchase_rate();
  f[kConversionRate] = p.conversion_rate();
  const RfmInputs rfm = p.rfm_inputs();
  const Population* pop = ctx.population;
  f[kRfmR] = pop ? pop->RecencyScore(rfm, now_ms) : 0;
  f[kRfmF] = pop ? pop->FrequencyScore(rfm) : 0;
  f[kRfmM] = pop ? pop->MonetaryScore(rfm) : 0;
  f[kPriceIndex] = p.price_index();

  // Interest concentration over the categories events named directly: with dotted paths the
  // ancestors are credited too, and counting them would make every rees46 user look focused on
  // "electronics". Shares use the stored (anchor-relative) scores, whose ratios do not depend on
  // `now`, so no decay factor and no pool access are needed.
  const InterestTable& categories = p.interests(InterestKind::kCategory);
  double direct_total = 0, top = 0;
  uint32_t distinct = 0;
  for (const InterestTable::Entry& e : categories.entries()) {
    if (!e.marked() || !(e.score > 0)) continue;
    direct_total += e.score;
    top = std::max(top, e.score);
    ++distinct;
  }
  f[kDistinctCategories] = distinct;
  if (direct_total > 0 && categories.total() > 0) {
    f[kTopCategoryShare] = std::min(1.0, top / categories.total());
    std::vector<double> scores;
    scores.reserve(distinct);
    for (const InterestTable::Entry& e : categories.entries()) {
      if (e.marked() && e.score > 0) scores.push_back(e.score);
    }
    f[kCategoryEntropy] = Entropy(scores, direct_total, 0);
  }

  // Active days and the weight of the latest active day, from the per-day buckets (at most 30).
  // Days after `now` (possible only when `now` lags the profile) are ignored.
  const int32_t now_day = static_cast<int32_t>(FloorDiv(now_ms, kDayMs));
  int active7 = 0, active30 = 0;
  uint64_t latest_day_events = 0;
  p.daily().ForEach([&](const DayBucket& b) {
    if (b.day > now_day || b.day <= now_day - 30) return;
    const uint64_t n = std::accumulate(b.counts.begin(), b.counts.end(), uint64_t{0});
    if (n == 0) return;
    ++active30;
    if (b.day > now_day - 7) ++active7;
    latest_day_events = n;  // buckets come oldest first
  });
  f[kActiveDays7d] = active7;
  f[kActiveDays30d] = active30;
  if (w30.events() > 0) {
    f[kLastDayShare] = static_cast<double>(latest_day_events) / static_cast<double>(w30.events());
  }

  const auto& hours = p.active_hours().hours();
  double hour_total = 0;
  int active_hours = 0;
  for (uint16_t h : hours) {
    hour_total += h;
    active_hours += h > 0;
  }
  f[kActiveHours] = active_hours;
  std::array<double, 24> hour_weights;
  for (size_t i = 0; i < hours.size(); ++i) hour_weights[i] = hours[i];
  f[kHourEntropy] = Entropy(hour_weights, hour_total, 24);

  const size_t n = std::min(out.size(), f.size());
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(f[i]);
  for (size_t i = n; i < out.size(); ++i) out[i] = std::numeric_limits<float>::quiet_NaN();
}

}  // namespace persona
