#include "recommend/online_eval.h"

#include <gtest/gtest.h>

#include <cmath>

namespace persona {
namespace {

Event Ev(EventType type, std::string_view item, std::string_view rec_id, double price = NAN) {
  Event e;
  e.user_id = "u";
  e.type = type;
  e.item_id = item;
  e.rec_id = rec_id;
  e.price = price;
  e.quantity = 1;
  return e;
}

TEST(OnlineEvalTest, WilsonAndZTestMatchHandComputedValues) {
  auto [low, high] = WilsonInterval(10, 100);
  EXPECT_NEAR(low, 0.0552, 1e-4);
  EXPECT_NEAR(high, 0.1744, 1e-4);
  auto [z, p] = TwoProportionZTest(20, 100, 10, 100);
  EXPECT_NEAR(z, 1.9803, 1e-4);
  EXPECT_NEAR(p, 0.0477, 1e-4);
  EXPECT_EQ(WilsonInterval(0, 0), std::make_pair(0.0, 0.0));
}

TEST(OnlineEvalTest, ResponsesCountOnceAndOnlyShownItemsAttribute) {
  OnlineEvaluator eval;
  ASSERT_TRUE(
      eval.AddImpression(R"({"ts":1,"rec_id":"a.1","variant":"a","items":["x","y"]})").ok());
  ASSERT_TRUE(eval.AddImpression(R"({"ts":2,"rec_id":"a.2","variant":"a","items":["x"]})").ok());
  ASSERT_TRUE(eval.AddImpression(R"({"ts":3,"rec_id":"b.1","variant":"b","items":["z"]})").ok());
  ASSERT_TRUE(eval.AddImpression(R"({"ts":4,"rec_id":"b.2","variant":"b","items":["z"]})").ok());
  eval.AddEvent(Ev(EventType::kClick, "x", "a.1"));
  eval.AddEvent(Ev(EventType::kView, "y", "a.1"));  // a second click on the same response
  eval.AddEvent(Ev(EventType::kPurchase, "y", "a.1", 12.5));
  eval.AddEvent(Ev(EventType::kClick, "q", "a.2"));   // not an item it showed
  eval.AddEvent(Ev(EventType::kClick, "z", "c.9"));   // no such response
  eval.AddEvent(Ev(EventType::kClick, "z", ""));      // no rec_id
  eval.AddEvent(Ev(EventType::kSearch, "z", "b.1"));  // not a click, cart or purchase
  eval.AddEvent(Ev(EventType::kClick, "z", "b.1"));
  eval.AddEvent(Ev(EventType::kClick, "z", "b.2"));
  auto report = eval.Report();
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report[0].name, "a");
  EXPECT_EQ(report[0].responses, 2u);
  EXPECT_EQ(report[0].items_shown, 3u);
  EXPECT_EQ(report[0].clicked, 1u);
  EXPECT_EQ(report[0].click_events, 2u);
  EXPECT_EQ(report[0].converted, 1u);
  EXPECT_DOUBLE_EQ(report[0].revenue, 12.5);
  EXPECT_DOUBLE_EQ(report[0].ctr, 0.5);
  EXPECT_DOUBLE_EQ(report[0].conversion, 0.5);
  EXPECT_TRUE(std::isnan(report[0].ctr_p));
  EXPECT_EQ(report[1].clicked, 2u);
  EXPECT_DOUBLE_EQ(report[1].ctr, 1.0);
  EXPECT_FALSE(std::isnan(report[1].ctr_p));
  EXPECT_EQ(eval.unmatched_events(), 1u);
  EXPECT_EQ(eval.other_item_events(), 1u);
}

TEST(OnlineEvalTest, BadImpressionLinesAreRefusedWithAReason) {
  OnlineEvaluator eval;
  EXPECT_EQ(eval.AddImpression("{").message(), "not JSON");
  EXPECT_EQ(eval.AddImpression(R"({"variant":"a","items":[]})").message(), "no rec_id");
  EXPECT_EQ(eval.AddImpression(R"({"rec_id":"a.1","items":[]})").message(), "no variant");
  EXPECT_EQ(eval.AddImpression(R"({"rec_id":"a.1","variant":"a"})").message(), "no items array");
  EXPECT_EQ(eval.AddImpression(R"({"rec_id":"a.1","variant":"a","items":[1]})").message(),
            "items must be strings");
}

}  // namespace
}  // namespace persona
