// Each product requirement of the profile, through Apply, against hand-computed expectations.
#include "profile/profile.h"

#include <cmath>
#include <string>
#include <vector>

#include "common/time_util.h"
#include "gtest/gtest.h"
#include "profile/profile_context.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

constexpr int64_t kT0 = 1511740800000;  // 2017-11-27T00:00:00Z, a Monday

class ProfileTest : public ::testing::Test {
 protected:
  ProfileTest() {
    ctx_.config = &config_;
    ctx_.population = &population_;
  }

  OwnedEvent Make(EventType type, int64_t ts_ms, std::string item = "", std::string category = "") {
    OwnedEvent e;
    e.user = "u1";
    e.type = type;
    e.ts_ms = ts_ms;
    e.item = std::move(item);
    e.category = std::move(category);
    return e;
  }
  void Apply(const OwnedEvent& e) { p_.Apply(e.view(), ctx_); }
  void Apply(Profile& p, const OwnedEvent& e) { p.Apply(e.view(), ctx_); }

  double Score(InterestKind kind, std::string_view key, int64_t now) {
    for (const ScoredInterest& s : p_.TopInterests(kind, ctx_, now, 100)) {
      if (s.key == key) return s.score;
    }
    return -1;
  }

  ProfileConfig config_;
  Population population_;
  ProfileContext ctx_;
  Profile p_;
};

TEST_F(ProfileTest, IdentityTracksFirstAndLastSeenInEventTimeWhateverTheOrder) {
  EXPECT_TRUE(p_.empty());
  Apply(Make(EventType::kView, kT0 + 5000, "i1"));
  Apply(Make(EventType::kView, kT0 + 1000, "i2"));  // late
  Apply(Make(EventType::kView, kT0 + 9000, "i3"));
  EXPECT_FALSE(p_.empty());
  EXPECT_EQ(p_.first_seen_ms(), kT0 + 1000);
  EXPECT_EQ(p_.last_seen_ms(), kT0 + 9000);
}

TEST_F(ProfileTest, AttributesReplaceMergeAndDeleteWithNull) {
  EXPECT_EQ(p_.attributes_json(), "{}");
  ASSERT_TRUE(p_.SetAttributes(R"({"age": 31, "city": "Hangzhou", "vip": null})", false).ok());
  EXPECT_EQ(p_.attributes_json(), R"({"age":31,"city":"Hangzhou"})");
  ASSERT_TRUE(
      p_.SetAttributes(R"({"city": null, "gender": "f", "age": 32, "tags": [1, 2]})", true).ok());
  EXPECT_EQ(p_.attributes_json(), R"({"age":32,"gender":"f","tags":[1,2]})");
  ASSERT_TRUE(p_.SetAttributes(R"({"x": {"y": "z"}})", false).ok());
  EXPECT_EQ(p_.attributes_json(), R"({"x":{"y":"z"}})");
}

TEST_F(ProfileTest, BadAttributesJsonIsRejectedAndLeavesAttributesUnchanged) {
  ASSERT_TRUE(p_.SetAttributes(R"({"age": 31})", false).ok());
  EXPECT_FALSE(p_.SetAttributes(R"({"age": )", true).ok());
  EXPECT_FALSE(p_.SetAttributes(R"([1, 2])", false).ok());
  EXPECT_FALSE(p_.SetAttributes("", false).ok());
  const std::string huge = R"({"k": ")" + std::string(70000, 'x') + R"("})";
  EXPECT_FALSE(p_.SetAttributes(huge, false).ok());
  EXPECT_EQ(p_.attributes_json(), R"({"age":31})");
}

TEST_F(ProfileTest, CountsPerTypeAllTimeAndOverUtcDayWindows) {
  // Day -40: 2 views; day -20: 1 cart; day -3: 3 views; today: 1 view, 1 fav.
  for (int i = 0; i < 2; ++i) Apply(Make(EventType::kView, kT0 - 40 * kDayMs));
  Apply(Make(EventType::kCart, kT0 - 20 * kDayMs));
  for (int i = 0; i < 3; ++i) Apply(Make(EventType::kView, kT0 - 3 * kDayMs));
  Apply(Make(EventType::kView, kT0 + kHourMs));
  Apply(Make(EventType::kFav, kT0 + 2 * kHourMs));
  EXPECT_EQ(p_.count(EventType::kView), 6u);
  EXPECT_EQ(p_.count(EventType::kCart), 1u);
  EXPECT_EQ(p_.count(EventType::kFav), 1u);
  EXPECT_EQ(p_.events(), 8u);
  const int64_t now = kT0 + 12 * kHourMs;
  const int view = static_cast<int>(EventType::kView);
  EXPECT_EQ(p_.Window(now, 1).counts[view], 1u);
  EXPECT_EQ(p_.Window(now, 1).events(), 2u);
  EXPECT_EQ(p_.Window(now, 7).counts[view], 4u);
  EXPECT_EQ(p_.Window(now, 30).events(), 6u);  // day -40 is outside 30 days
  // A week later the 7-day window is empty, the 30-day one still holds days -20 and -3.
  EXPECT_EQ(p_.Window(now + 7 * kDayMs, 7).events(), 0u);
  EXPECT_EQ(p_.Window(now + 7 * kDayMs, 30).events(), 6u);
}

TEST_F(ProfileTest, SessionsBySessionIdOrInactivityGap) {
  // Session A (id): 3 events over 10 minutes. Then no ids: 2 events 5 minutes apart, a 40-minute
  // pause (> 30-minute gap), 1 event.
  for (int i = 0; i < 3; ++i) {
    OwnedEvent e = Make(EventType::kView, kT0 + i * 5 * kMinuteMs, "i");
    e.session = "A";
    Apply(e);
  }
  Apply(Make(EventType::kView, kT0 + 12 * kMinuteMs));  // no id, within gap: joins A
  Apply(Make(EventType::kView, kT0 + 60 * kMinuteMs));  // 48 min later: new session
  Apply(Make(EventType::kView, kT0 + 65 * kMinuteMs));
  Apply(Make(EventType::kView, kT0 + 105 * kMinuteMs));  // 40 min later: new session
  EXPECT_EQ(p_.sessions().count(), 3u);
  // Durations 12 + 5 + 0 minutes over 3 sessions; 7 events over 3 sessions.
  EXPECT_DOUBLE_EQ(p_.avg_session_ms(), 17.0 * kMinuteMs / 3);
  EXPECT_DOUBLE_EQ(p_.avg_session_events(), 7.0 / 3);
  // Hour of day and day of week (kT0 is Monday 00:00 UTC).
  EXPECT_EQ(p_.active_hours().hours()[0], 4);
  EXPECT_EQ(p_.active_hours().hours()[1], 3);
  EXPECT_EQ(p_.active_hours().weekdays()[0], 7);
}

TEST_F(ProfileTest, InterestsDecayWithHalfLifeAndWeighByEventType) {
  const int64_t hl = config_.half_life_ms;
  Apply(Make(EventType::kView, kT0, "i1", "shoes"));            // weight 1
  Apply(Make(EventType::kCart, kT0 + hl, "i2", "hats"));        // weight 3
  Apply(Make(EventType::kRemoveCart, kT0 + hl, "i3", "bags"));  // weight 0: no credit
  const int64_t now = kT0 + 2 * hl;
  EXPECT_NEAR(Score(InterestKind::kCategory, "shoes", now), 0.25, 1e-12);
  EXPECT_NEAR(Score(InterestKind::kCategory, "hats", now), 1.5, 1e-12);
  EXPECT_EQ(Score(InterestKind::kCategory, "bags", now), -1);
  EXPECT_NEAR(Score(InterestKind::kItem, "i2", now), 1.5, 1e-12);
  const std::vector<ScoredInterest> top = p_.TopInterests(InterestKind::kCategory, ctx_, now, 10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, "hats");
  // Shares do not depend on now: hats has 3*2 of (1 + 3*2) anchor-relative weight.
  EXPECT_NEAR(top[0].share, 6.0 / 7.0, 1e-12);
  EXPECT_NEAR(top[1].share, 1.0 / 7.0, 1e-12);
  EXPECT_TRUE(p_.interests(InterestKind::kCategory).exact());
}

TEST_F(ProfileTest, DottedCategoryPathCreditsEveryAncestor) {
  Apply(Make(EventType::kView, kT0, "i1", "electronics.audio.headphones"));
  Apply(Make(EventType::kView, kT0, "i2", "electronics.phones"));
  const std::vector<ScoredInterest> top = p_.TopInterests(InterestKind::kCategory, ctx_, kT0, 10);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].key, "electronics");
  EXPECT_DOUBLE_EQ(top[0].score, 2.0);
  EXPECT_DOUBLE_EQ(top[0].share, 1.0);  // every event was in electronics
  EXPECT_FALSE(top[0].direct);
  EXPECT_DOUBLE_EQ(p_.InterestShare(InterestKind::kCategory, "electronics.audio", ctx_), 0.5);
  EXPECT_DOUBLE_EQ(p_.InterestShare(InterestKind::kCategory, "electronics.audio.headphones", ctx_),
                   0.5);
  EXPECT_EQ(p_.InterestShare(InterestKind::kCategory, "audio", ctx_), 0.0);
}

TEST_F(ProfileTest, BrandsAndSearchKeywordsAreInterests) {
  OwnedEvent a = Make(EventType::kView, kT0, "i1");
  a.brand = "Sony";
  Apply(a);
  OwnedEvent s = Make(EventType::kSearch, kT0);
  s.query = "Sony noise-cancelling headphones";
  Apply(s);
  OwnedEvent t = Make(EventType::kSearch, kT0);
  t.query = "headphones for running";
  Apply(t);
  EXPECT_DOUBLE_EQ(Score(InterestKind::kBrand, "Sony", kT0), 1.0);
  EXPECT_DOUBLE_EQ(Score(InterestKind::kKeyword, "headphones", kT0), 2.0);
  EXPECT_DOUBLE_EQ(Score(InterestKind::kKeyword, "noise", kT0), 1.0);
  EXPECT_EQ(Score(InterestKind::kKeyword, "for", kT0), -1);  // stop word
  // Share: fraction of the (weighted) searches that contained the keyword.
  EXPECT_DOUBLE_EQ(p_.InterestShare(InterestKind::kKeyword, "headphones", ctx_), 1.0);
  EXPECT_DOUBLE_EQ(p_.InterestShare(InterestKind::kKeyword, "running", ctx_), 0.5);
}

TEST_F(ProfileTest, LateEventAddsWithNegativeExponentAndRebaseIsExact) {
  const int64_t hl = config_.half_life_ms;
  // Events 100 half-lives apart force a rebase; then a late event from the start.
  Profile forward, backward;
  std::vector<OwnedEvent> events;
  for (int i = 0; i <= 100; i += 10)
    events.push_back(Make(EventType::kView, kT0 + i * hl, "x", "c"));
  events.push_back(Make(EventType::kCart, kT0 + 3 * hl / 2, "y", "c"));
  for (const OwnedEvent& e : events) Apply(forward, e);
  for (auto it = events.rbegin(); it != events.rend(); ++it) Apply(backward, *it);
  EXPECT_GT(forward.interest_anchor_ms(), kT0 + 64 * hl);  // the anchor moved
  const int64_t now = kT0 + 100 * hl;
  double expected = 0;
  for (int i = 0; i <= 100; i += 10) expected += std::exp2(i - 100.0);
  const double cart = 3 * std::exp2(1.5 - 100.0);
  auto score = [&](const Profile& p, std::string_view key) {
    for (const ScoredInterest& s : p.TopInterests(InterestKind::kItem, ctx_, now, 10)) {
      if (s.key == key) return s.score;
    }
    return -1.0;
  };
  EXPECT_NEAR(score(forward, "x"), expected, 1e-12 * expected);
  EXPECT_NEAR(score(backward, "x"), expected, 1e-12 * expected);
  EXPECT_NEAR(score(forward, "y"), cart, 1e-12 * cart);
  EXPECT_NEAR(score(backward, "y"), cart, 1e-12 * cart);
}

TEST_F(ProfileTest, SpaceSavingEvictionIsFlaggedWithErrorBound) {
  config_.item_capacity = 2;
  Apply(Make(EventType::kView, kT0, "a"));
  Apply(Make(EventType::kView, kT0, "a"));
  Apply(Make(EventType::kView, kT0, "b"));
  EXPECT_TRUE(p_.interests(InterestKind::kItem).exact());
  Apply(Make(EventType::kView, kT0, "c"));  // evicts b (1.0): c = 2.0 with error 1.0
  const InterestTable& items = p_.interests(InterestKind::kItem);
  EXPECT_FALSE(items.exact());
  EXPECT_EQ(items.evictions(), 1u);
  const std::vector<ScoredInterest> top = p_.TopInterests(InterestKind::kItem, ctx_, kT0, 10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[1].key, "c");
  EXPECT_DOUBLE_EQ(top[1].score, 2.0);
  // The error bound is kept as a float rounded up: never below the true 1.0.
  EXPECT_GE(top[1].error, 1.0 - 1e-12);
  EXPECT_NEAR(top[1].error, 1.0, 1e-6);
}

TEST_F(ProfileTest, ConsumptionCountsOrdersMonetaryRefundsAndLastPurchase) {
  auto buy = [&](int64_t ts, double price, int qty, std::string order) {
    OwnedEvent e = Make(EventType::kPurchase, ts, "i" + order, "c");
    e.price = price;
    e.quantity = qty;
    e.order = std::move(order);
    Apply(e);
  };
  buy(kT0 - 40 * kDayMs, 100.0, 1, "o1");
  buy(kT0, 10.0, 2, "o2");        // order o2 has two lines
  buy(kT0, 5.0, 0, "o2");         // quantity absent = 1
  buy(kT0 - kDayMs, 1.5, 1, "");  // no order id: its own order
  OwnedEvent refund = Make(EventType::kRefund, kT0 + kHourMs, "i1");
  refund.price = 30.0;
  Apply(refund);
  EXPECT_EQ(p_.purchases(), 4u);
  EXPECT_EQ(p_.orders(), 3u);
  EXPECT_DOUBLE_EQ(p_.monetary(), 126.5);
  EXPECT_DOUBLE_EQ(p_.aov(), 126.5 / 3);
  EXPECT_EQ(p_.count(EventType::kRefund), 1u);
  EXPECT_DOUBLE_EQ(p_.refund_amount(), 30.0);
  EXPECT_DOUBLE_EQ(p_.net_monetary(), 96.5);
  EXPECT_EQ(p_.last_purchase_ms(), kT0);
  const ActivityTotals month = p_.Window(kT0, 30);
  EXPECT_EQ(month.counts[static_cast<int>(EventType::kPurchase)], 3u);
  EXPECT_DOUBLE_EQ(month.purchase_amount, 26.5);
}

TEST_F(ProfileTest, PurchasesKeepPopulationInSyncForRfmScores) {
  Profile other;
  OwnedEvent e = Make(EventType::kPurchase, kT0 - 10 * kDayMs, "i");
  e.price = 5;
  Apply(other, e);
  EXPECT_EQ(population_.buyers(), 1u);
  Apply(Make(EventType::kView, kT0, "i"));
  EXPECT_EQ(population_.buyers(), 1u);  // a view does not make a buyer
  OwnedEvent big = Make(EventType::kPurchase, kT0, "j");
  big.price = 500;
  Apply(big);
  Apply(big);
  EXPECT_EQ(population_.buyers(), 2u);  // the second purchase moved, not added
  const RfmInputs in = p_.rfm_inputs();
  EXPECT_EQ(population_.RecencyScore(in, kT0), 4);  // (1 + 0.5) / 2 = 75%
  EXPECT_EQ(population_.FrequencyScore(in), 4);
  EXPECT_EQ(population_.MonetaryScore(in), 4);
  EXPECT_EQ(population_.FrequencyScore(other.rfm_inputs()), 2);  // 25%
}

TEST_F(ProfileTest, PriceTierFromPercentileWithinCategory) {
  // Other users establish the category's prices: 1..100.
  Profile others;
  for (int i = 1; i <= 100; ++i) {
    OwnedEvent e = Make(EventType::kView, kT0, "x", "phones");
    e.price = i;
    Apply(others, e);
  }
  EXPECT_TRUE(std::isnan(p_.price_index()));
  EXPECT_EQ(p_.price_tier(), "");
  OwnedEvent cheap = Make(EventType::kView, kT0, "c", "phones");
  cheap.price = 3;
  Apply(cheap);
  EXPECT_LT(p_.price_index(), 0.1);
  EXPECT_EQ(p_.price_tier(), "budget");
  // A purchase weighs 5, a view 1: one expensive purchase outweighs the cheap view.
  OwnedEvent dear = Make(EventType::kPurchase, kT0, "d", "phones");
  dear.price = 99;
  Apply(dear);
  EXPECT_GT(p_.price_index(), 0.67);
  EXPECT_EQ(p_.price_tier(), "premium");
  // A category with fewer than 20 prices contributes nothing.
  const double before = p_.price_index();
  OwnedEvent rare = Make(EventType::kView, kT0, "r", "yachts");
  rare.price = 1;
  Apply(rare);
  EXPECT_EQ(p_.price_index(), before);
}

TEST_F(ProfileTest, FunnelRatesAndNanWithoutDenominator) {
  EXPECT_TRUE(std::isnan(p_.cart_rate()));
  for (int i = 0; i < 10; ++i) Apply(Make(EventType::kView, kT0));
  for (int i = 0; i < 4; ++i) Apply(Make(EventType::kCart, kT0));
  Apply(Make(EventType::kPurchase, kT0));
  EXPECT_DOUBLE_EQ(p_.cart_rate(), 0.4);
  EXPECT_DOUBLE_EQ(p_.purchase_rate(), 0.25);
  EXPECT_DOUBLE_EQ(p_.conversion_rate(), 0.1);
}

TEST_F(ProfileTest, LifecycleStagesFromFirstAndLastSeen) {
  Apply(Make(EventType::kView, kT0));
  Apply(Make(EventType::kView, kT0 + 10 * kDayMs));
  const int64_t last = kT0 + 10 * kDayMs;
  EXPECT_EQ(p_.Lifecycle(config_, kT0 + 6 * kDayMs), LifecycleStage::kNew);
  EXPECT_EQ(p_.Lifecycle(config_, last + 14 * kDayMs), LifecycleStage::kActive);
  EXPECT_EQ(p_.Lifecycle(config_, last + 15 * kDayMs), LifecycleStage::kDormant);
  EXPECT_EQ(p_.Lifecycle(config_, last + 60 * kDayMs), LifecycleStage::kDormant);
  EXPECT_EQ(p_.Lifecycle(config_, last + 61 * kDayMs), LifecycleStage::kChurned);
  EXPECT_EQ(LifecycleStageName(LifecycleStage::kChurned), "churned");
}

TEST_F(ProfileTest, SequenceKeepsLastNItemEventsInTimeOrder) {
  config_.sequence_length = 3;
  Apply(Make(EventType::kView, kT0 + 1000, "a"));
  Apply(Make(EventType::kSearch, kT0 + 1500));  // no item: not in the sequence
  Apply(Make(EventType::kCart, kT0 + 2000, "b"));
  Apply(Make(EventType::kView, kT0 + 4000, "c"));
  Apply(Make(EventType::kPurchase, kT0 + 3000, "d"));  // late: goes between b and c
  std::vector<std::string> items;
  std::vector<EventType> types;
  p_.sequence().ForEach([&](const ItemSequence::Item& i) {
    items.emplace_back(ctx_.pool.Get(i.code));
    types.push_back(i.type);
  });
  EXPECT_EQ(items, (std::vector<std::string>{"b", "d", "c"}));
  EXPECT_EQ(types,
            (std::vector<EventType>{EventType::kCart, EventType::kPurchase, EventType::kView}));
}

TEST_F(ProfileTest, ReviewRatingsAverage) {
  EXPECT_TRUE(std::isnan(p_.avg_rating()));
  for (int8_t r : {5, 4, 1}) {
    OwnedEvent e = Make(EventType::kReview, kT0, "i");
    e.rating = r;
    Apply(e);
  }
  EXPECT_EQ(p_.rating_count(), 3u);
  EXPECT_DOUBLE_EQ(p_.avg_rating(), 10.0 / 3);
  EXPECT_EQ(p_.count(EventType::kReview), 3u);
}

TEST_F(ProfileTest, PlantedInterestShiftFromAToBIsFollowed) {
  // A synthetic user views 9 of 10 items in category A for 3 weeks, then 9 of 10 in B for 3
  // weeks (one event per 2 hours). Before the shift A leads; after it B does.
  const int64_t shift = kT0 + 21 * kDayMs;
  int64_t ts = kT0;
  int i = 0;
  for (; ts < shift; ts += 2 * kHourMs, ++i) {
    Apply(Make(EventType::kView, ts, "i" + std::to_string(i % 50), i % 10 == 0 ? "B" : "A"));
  }
  auto top = [&](int64_t now) {
    return std::string(p_.TopInterests(InterestKind::kCategory, ctx_, now, 1)[0].key);
  };
  EXPECT_EQ(top(shift), "A");
  for (; ts < shift + 21 * kDayMs; ts += 2 * kHourMs, ++i) {
    Apply(Make(EventType::kView, ts, "i" + std::to_string(i % 50), i % 10 == 0 ? "A" : "B"));
  }
  EXPECT_EQ(top(shift + 21 * kDayMs), "B");
  // With a 7-day half-life, one half-life after the shift B already dominates.
  EXPECT_GT(Score(InterestKind::kCategory, "B", shift + 7 * kDayMs),
            Score(InterestKind::kCategory, "A", shift + 7 * kDayMs));
}

TEST_F(ProfileTest, CopyIsDeepAndMemoryAccountsForHeapBlocks) {
  const size_t empty = p_.MemoryBytes();
  EXPECT_EQ(empty, sizeof(Profile));
  for (int i = 0; i < 50; ++i)
    Apply(Make(EventType::kView, kT0 + i * 60000, "i" + std::to_string(i), "c"));
  ASSERT_TRUE(p_.SetAttributes(R"({"city":"a long enough city name to leave SSO"})", false).ok());
  EXPECT_GT(p_.MemoryBytes(), empty + 50 * 4);
  Profile copy = p_;
  Apply(Make(EventType::kView, kT0 + 51 * 60000, "new", "d"));
  EXPECT_EQ(copy.count(EventType::kView), 50u);
  EXPECT_EQ(copy.sequence().size(), 50u);
  EXPECT_EQ(copy.attributes_json(), p_.attributes_json());
  EXPECT_EQ(p_.count(EventType::kView), 51u);
}

}  // namespace
}  // namespace persona
