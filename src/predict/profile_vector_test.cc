#include "predict/profile_vector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/time_util.h"
#include "profile/population.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

// 2017-12-01T12:00:00Z: noon, so that "now - 1h" is the same UTC day.
constexpr int64_t kNow = 1512129600000;

class ProfileVectorTest : public ::testing::Test {
 protected:
  ProfileVectorTest() {
    ctx_.config = &config_;
    ctx_.population = population_.get();
  }

  void Apply(Profile& p, EventType type, std::string category, int64_t ts_ms) {
    OwnedEvent e;
    e.user = "u";
    e.item = "i-" + category;
    e.category = std::move(category);
    e.type = type;
    e.ts_ms = ts_ms;
    p.Apply(e.view(), ctx_);
  }

  std::vector<float> Extract(const Profile& p, int64_t now_ms) {
    std::vector<float> v(ProfileVectorNames().size());
    ExtractProfileVector(p, ctx_, now_ms, v);
    return v;
  }

  static float Get(const std::vector<float>& v, const std::string& name) {
    const auto& names = ProfileVectorNames();
    const auto it = std::find(names.begin(), names.end(), name);
    EXPECT_NE(it, names.end()) << name;
    return it == names.end() ? std::nanf("") : v[it - names.begin()];
  }

  ProfileConfig config_;
  std::unique_ptr<Population> population_ = std::make_unique<Population>();
  ProfileContext ctx_;
};

TEST(ProfileVectorNamesTest, AreUniqueAndIncludeWhatTheBaselineReads) {
  const auto& names = ProfileVectorNames();
  EXPECT_GE(names.size(), 30u);
  EXPECT_LE(names.size(), 45u);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  for (const char* required : {"days_since_last_seen", "events_30d", "recency_days", "rfm_r",
                               "price_index", "category_entropy", "hour_entropy"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
  }
}

TEST_F(ProfileVectorTest, HandBuiltProfileGivesHandComputedFeatures) {
  Profile p;
  Apply(p, EventType::kView, "c1", kNow - 20 * kDayMs);
  Apply(p, EventType::kView, "c1", kNow - 3 * kDayMs);
  Apply(p, EventType::kCart, "c1", kNow - 3 * kDayMs + kMinuteMs);
  Apply(p, EventType::kPurchase, "c2", kNow - 2 * kDayMs);
  Apply(p, EventType::kView, "c2", kNow - kHourMs);
  const std::vector<float> v = Extract(p, kNow);

  EXPECT_EQ(Get(v, "events"), 5);
  EXPECT_EQ(Get(v, "events_7d"), 4);  // all but the one 20 days ago
  EXPECT_EQ(Get(v, "events_30d"), 5);
  EXPECT_EQ(Get(v, "views"), 3);
  EXPECT_EQ(Get(v, "carts_7d"), 1);
  EXPECT_EQ(Get(v, "purchases"), 1);
  EXPECT_FLOAT_EQ(Get(v, "days_since_last_seen"), 1.0f / 24);
  EXPECT_FLOAT_EQ(Get(v, "days_since_first_seen"), 20);
  EXPECT_FLOAT_EQ(Get(v, "recency_days"), 2);
  EXPECT_FLOAT_EQ(Get(v, "cart_rate"), 1.0f / 3);  // 1 cart / 3 views
  EXPECT_FLOAT_EQ(Get(v, "conversion_rate"), 1.0f / 3);
  // Sessions (30 min gap): {-20d}, {-3d, -3d+1m}, {-2d}, {-1h}: 4 sessions of 5 events.
  EXPECT_EQ(Get(v, "sessions"), 4);
  EXPECT_FLOAT_EQ(Get(v, "avg_session_events"), 5.0f / 4);
  // Active UTC days: now-20d, now-3d, now-2d, now (the last three within 7 days).
  EXPECT_EQ(Get(v, "active_days_30d"), 4);
  EXPECT_EQ(Get(v, "active_days_7d"), 3);
  EXPECT_FLOAT_EQ(Get(v, "last_day_share"), 1.0f / 5);
  EXPECT_EQ(Get(v, "distinct_categories"), 2);
  EXPECT_GT(Get(v, "top_category_share"), 0.5f);  // c2: a purchase (weight 5) and a recent view
  EXPECT_LE(Get(v, "top_category_share"), 1.0f);
  EXPECT_GT(Get(v, "category_entropy"), 0);
  EXPECT_EQ(Get(v, "active_hours"), 2);            // 11:xx and 12:xx UTC
  EXPECT_GT(Get(v, "rfm_r"), 0);                   // a buyer is ranked
  EXPECT_TRUE(std::isnan(Get(v, "price_index")));  // no prices
  EXPECT_EQ(Get(v, "orders"), 1);  // a purchase without order id is an order of its own
  EXPECT_EQ(Get(v, "aov"), 0);     // ... worth nothing without a price
}

TEST_F(ProfileVectorTest, UndefinedValuesAreNaNAndNonBuyersHaveNoRecencyOrRfm) {
  Profile p;
  Apply(p, EventType::kFav, "c1", kNow - kDayMs);
  const std::vector<float> v = Extract(p, kNow);
  EXPECT_TRUE(std::isnan(Get(v, "recency_days")));
  EXPECT_TRUE(std::isnan(Get(v, "cart_rate")));  // no views
  EXPECT_EQ(Get(v, "rfm_r"), 0);
  EXPECT_EQ(Get(v, "rfm_f"), 0);
  EXPECT_FLOAT_EQ(Get(v, "category_entropy"), 0);  // a single category
  EXPECT_FLOAT_EQ(Get(v, "top_category_share"), 1);
  EXPECT_FLOAT_EQ(Get(v, "hour_entropy"), 0);  // a single hour
}

TEST_F(ProfileVectorTest, FeaturesAreAFunctionOfNowAndWindowsForgetOldDays) {
  Profile p;
  Apply(p, EventType::kView, "c1", kNow);
  const std::vector<float> today = Extract(p, kNow);
  const std::vector<float> later = Extract(p, kNow + 10 * kDayMs);
  EXPECT_FLOAT_EQ(Get(later, "days_since_last_seen") - Get(today, "days_since_last_seen"), 10);
  EXPECT_EQ(Get(today, "events_7d"), 1);
  EXPECT_EQ(Get(later, "events_7d"), 0);
  EXPECT_EQ(Get(later, "events_30d"), 1);
  EXPECT_EQ(Get(later, "active_days_7d"), 0);
  // Deterministic, bit for bit (NaN included).
  const std::vector<float> again = Extract(p, kNow);
  ASSERT_EQ(again.size(), today.size());
  EXPECT_EQ(std::memcmp(again.data(), today.data(), today.size() * sizeof(float)), 0);
}

TEST_F(ProfileVectorTest, ShortOutputSpanIsFilledWithoutOverrun) {
  Profile p;
  Apply(p, EventType::kView, "c1", kNow);
  std::vector<float> three(3, -1);
  ExtractProfileVector(p, ctx_, kNow, three);
  EXPECT_EQ(three[0], 1);  // events
}

}  // namespace
}  // namespace persona
