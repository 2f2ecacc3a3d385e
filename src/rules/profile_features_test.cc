// The rule-facing view of a profile: every documented name resolves and answers as specified.
#include "rules/profile_features.h"

#include <cmath>
#include <string>

#include "common/time_util.h"
#include "gtest/gtest.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

constexpr int64_t kT0 = 1511740800000;  // 2017-11-27T00:00:00Z

class ProfileFeaturesTest : public ::testing::Test {
 protected:
  ProfileFeaturesTest() {
    ctx_.config = &config_;
    ctx_.population = &population_;
  }
  void Apply(EventType type, int64_t ts, std::string category = "", std::string brand = "",
             double price = std::nan("")) {
    OwnedEvent e;
    e.user = "u1";
    e.type = type;
    e.ts_ms = ts;
    e.item = "item";
    e.category = std::move(category);
    e.brand = std::move(brand);
    e.price = price;
    if (type == EventType::kSearch) e.query = "wireless earbuds";
    p_.Apply(e.view(), ctx_);
  }
  double Number(std::string_view name) {
    const auto info = ProfileFeatureCatalog().Lookup(name);
    EXPECT_TRUE(info.has_value()) << name;
    if (!info) return -12345;
    EXPECT_EQ(info->type, VarType::kNumber) << name;
    return ProfileFeatures(p_, ctx_, now_).Number(info->id);
  }
  std::string String(std::string_view name) {
    const auto info = ProfileFeatureCatalog().Lookup(name);
    EXPECT_TRUE(info.has_value()) << name;
    if (!info) return "?";
    EXPECT_EQ(info->type, VarType::kString) << name;
    return std::string(ProfileFeatures(p_, ctx_, now_).String(info->id));
  }
  double Call(std::string_view function, std::string_view arg) {
    const auto info = ProfileFeatureCatalog().LookupCall(function, arg);
    EXPECT_TRUE(info.has_value()) << function;
    if (!info) return -12345;
    return ProfileFeatures(p_, ctx_, now_).Number(info->id);
  }

  ProfileConfig config_;
  Population population_;
  ProfileContext ctx_;
  Profile p_;
  int64_t now_ = kT0 + 12 * kHourMs;
};

TEST_F(ProfileFeaturesTest, EveryDocumentedNameResolves) {
  const VariableCatalog& c = ProfileFeatureCatalog();
  for (std::string type : {"events", "views", "clicks", "searches", "carts", "remove_carts", "favs",
                           "purchases", "reviews", "refunds"}) {
    for (std::string suffix : {"", "_1d", "_7d", "_30d"}) {
      EXPECT_TRUE(c.Lookup(type + suffix).has_value()) << type + suffix;
    }
  }
  for (const char* name : {"monetary",
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
                           "ratings"}) {
    EXPECT_EQ(c.Lookup(name)->type, VarType::kNumber) << name;
  }
  for (const char* name :
       {"lifecycle", "price_tier", "top_category", "top_brand", "top_item", "top_keyword"}) {
    EXPECT_EQ(c.Lookup(name)->type, VarType::kString) << name;
  }
  EXPECT_EQ(c.Lookup("buyer")->type, VarType::kBool);
  EXPECT_FALSE(c.Lookup("monetery_30d").has_value());
  EXPECT_FALSE(c.LookupCall("interest.colour", "red").has_value());
  // Same call, same id; different argument, different id.
  EXPECT_EQ(c.LookupCall("interest.brand", "x")->id, c.LookupCall("interest.brand", "x")->id);
  EXPECT_NE(c.LookupCall("interest.brand", "x")->id, c.LookupCall("interest.brand", "y")->id);
  const std::vector<std::string> names = c.Names();
  EXPECT_NE(std::find(names.begin(), names.end(), "monetary_30d"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "interest.category"), names.end());
}

TEST_F(ProfileFeaturesTest, CountsWindowsAndMoney) {
  Apply(EventType::kView, kT0 - 10 * kDayMs);
  Apply(EventType::kView, kT0 - 2 * kDayMs);
  Apply(EventType::kView, kT0);
  Apply(EventType::kCart, kT0);
  Apply(EventType::kPurchase, kT0 - 3 * kDayMs, "", "", 40.0);
  Apply(EventType::kPurchase, kT0 + kHourMs, "", "", 10.0);
  EXPECT_EQ(Number("views"), 3);
  EXPECT_EQ(Number("views_1d"), 1);
  EXPECT_EQ(Number("views_7d"), 2);
  EXPECT_EQ(Number("views_30d"), 3);
  EXPECT_EQ(Number("events"), 6);
  EXPECT_EQ(Number("events_1d"), 3);
  EXPECT_EQ(Number("purchases_7d"), 2);
  EXPECT_EQ(Number("monetary"), 50);
  EXPECT_EQ(Number("monetary_1d"), 10);
  EXPECT_EQ(Number("monetary_30d"), 50);
  EXPECT_EQ(Number("orders"), 2);
  EXPECT_EQ(Number("aov"), 25);
  EXPECT_DOUBLE_EQ(Number("recency_days"), 11.0 / 24);
  EXPECT_DOUBLE_EQ(Number("days_since_first_seen"), 10.5);
  EXPECT_DOUBLE_EQ(Number("cart_rate"), 1.0 / 3);
  EXPECT_EQ(Number("rfm_f"), 3);  // the only buyer: the median
  EXPECT_TRUE(ProfileFeatures(p_, ctx_, now_).Bool(ProfileFeatureCatalog().Lookup("buyer")->id));
}

TEST_F(ProfileFeaturesTest, UndefinedFeaturesAreNanSoRulesDoNotFire) {
  Apply(EventType::kSearch, kT0);
  EXPECT_TRUE(std::isnan(Number("aov")));
  EXPECT_TRUE(std::isnan(Number("cart_rate")));
  EXPECT_TRUE(std::isnan(Number("price_index")));
  EXPECT_TRUE(std::isnan(Number("avg_rating")));
  EXPECT_EQ(Number("recency_days"), 1e6);  // never purchased: larger than any recency
  EXPECT_EQ(Number("rfm_r"), 0);
  EXPECT_EQ(String("price_tier"), "");
}

TEST_F(ProfileFeaturesTest, StringsAndInterestCalls) {
  Apply(EventType::kView, kT0, "electronics.audio.earbuds", "Sony");
  Apply(EventType::kView, kT0, "electronics.audio.earbuds", "Sony");
  Apply(EventType::kView, kT0, "electronics.phones", "Apple");
  Apply(EventType::kSearch, kT0);
  EXPECT_EQ(String("lifecycle"), "new");
  // The top category is the leading key events named, not its ancestor "electronics".
  EXPECT_EQ(String("top_category"), "electronics.audio.earbuds");
  EXPECT_EQ(String("top_brand"), "Sony");
  EXPECT_EQ(String("top_keyword"), "earbuds");
  EXPECT_DOUBLE_EQ(Call("interest.category", "electronics"), 1.0);
  EXPECT_NEAR(Call("interest.category", "electronics.audio"), 2.0 / 3, 1e-12);
  EXPECT_NEAR(Call("interest.brand", "Apple"), 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(Call("interest.keyword", "wireless"), 1.0);
  EXPECT_EQ(Call("interest.category", "garden"), 0.0);
  EXPECT_EQ(Call("interest.item", "item"), 1.0);
}

}  // namespace
}  // namespace persona
