// The profile as seen by rule expressions (tag rules, audience conditions): a VariableCatalog of
// feature names and a VariableSource answering them for one profile at one `now`. Every name is
// documented in docs/profile.md. Numbers that are undefined for a user (an average or a rate
// with a zero denominator, a price index without priced events) are NaN, which makes every
// comparison false, so a rule never fires on missing data by accident.
//
//   counts        events views clicks searches carts remove_carts favs purchases reviews refunds
//                 (all time) and each with _1d _7d _30d (UTC-day windows ending at now)
//   money         monetary net_monetary monetary_1d monetary_7d monetary_30d orders aov
//                 refund_amount
//   time (days)   recency_days (since the last purchase; 1e6 when none), days_since_last_seen,
//                 days_since_first_seen
//   sessions      sessions avg_session_minutes avg_session_events
//   funnel        cart_rate purchase_rate conversion_rate
//   scores        rfm_r rfm_f rfm_m (1..5, 0 without a purchase) price_index avg_rating ratings
//   strings       lifecycle price_tier top_category top_brand top_item top_keyword
//   booleans      buyer
//   calls         interest.category("x") interest.brand("x") interest.item("x")
//                 interest.keyword("x"): the share in [0, 1] of x's decayed score in its table
//                 (a category's score includes its subcategories), 0 when absent
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "profile/daily_activity.h"
#include "profile/profile.h"
#include "profile/profile_context.h"
#include "rules/variables.h"

namespace persona {

// The catalog of profile feature names; a process-wide immutable singleton (call arguments are
// registered internally, thread-safely, as rules are compiled).
const VariableCatalog& ProfileFeatureCatalog();

// Answers the catalog's ids for one profile. Construct it per evaluation; it computes window sums
// lazily, once. Holds references: the profile and context must outlive it. Call variables read
// the pool only through Get, so this is usable on reader threads.
class ProfileFeatures : public VariableSource {
 public:
  ProfileFeatures(const Profile& profile, const ProfileContext& ctx, int64_t now_ms);

  double Number(uint32_t id) const override;
  std::string_view String(uint32_t id) const override;
  bool Bool(uint32_t id) const override;

 private:
  const ActivityTotals& WindowTotals(int window_index) const;

  const Profile& profile_;
  const ProfileContext& ctx_;
  int64_t now_ms_;
  mutable std::optional<std::array<ActivityTotals, 3>> windows_;  // 1d, 7d, 30d
};

}  // namespace persona
