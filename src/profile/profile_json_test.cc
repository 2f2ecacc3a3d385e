// The JSON schema of a profile: valid JSON, stable field names, sections on request.
#include "profile/profile_json.h"

#include <string>

#include "common/time_util.h"
#include "gtest/gtest.h"
#include "profile/testing/profile_test_events.h"
#include "simdjson.h"

namespace persona {
namespace {

using testing::OwnedEvent;

constexpr int64_t kT0 = 1511740800000;  // 2017-11-27T00:00:00Z

TEST(ParseSectionsTest, NamesCommaListsAllAndUnknown) {
  EXPECT_EQ(ParseSections("stats,interests"), kStats | kInterests);
  EXPECT_EQ(ParseSections(" identity , tags "), kIdentity | kTags);
  EXPECT_EQ(ParseSections("all"), kAll);
  EXPECT_EQ(ParseSections(""), kAll);
  EXPECT_EQ(ParseSections("stats,bogus"), std::nullopt);
  EXPECT_EQ(ParseSections("stats,"), std::nullopt);
}

class ProfileJsonTest : public ::testing::Test {
 protected:
  ProfileJsonTest() {
    ctx_.config = &config_;
    ctx_.population = &population_;
  }
  void Apply(EventType type, int64_t ts, std::string item, std::string category,
             double price = std::nan("")) {
    OwnedEvent e;
    e.user = "u1";
    e.type = type;
    e.ts_ms = ts;
    e.item = std::move(item);
    e.category = std::move(category);
    e.price = price;
    p_.Apply(e.view(), ctx_);
  }
  std::string Write(uint32_t sections, int64_t now) {
    const std::string tags[] = {"vip", "bargain_hunter", "unused"};
    JsonWriter w;
    WriteProfileJson(w, "u1", p_, ctx_, now, sections, tags);
    return w.Take();
  }

  ProfileConfig config_;
  Population population_;
  ProfileContext ctx_;
  Profile p_;
};

TEST_F(ProfileJsonTest, SmallProfileMatchesTheDocumentedSchemaExactly) {
  Apply(EventType::kView, kT0 + kHourMs, "i1", "shoes");
  Apply(EventType::kCart, kT0 + 2 * kHourMs, "i1", "shoes");
  ASSERT_TRUE(p_.SetAttributes(R"({"city":"Hangzhou"})", false).ok());
  p_.tag_bits = 0b10;
  const int64_t now = kT0 + 3 * kHourMs;
  EXPECT_EQ(Write(kIdentity | kStats | kFunnel | kLifecycle | kTags, now),
            R"({"user_id":"u1","as_of":"2017-11-27T03:00:00.000Z","as_of_ms":1511751600000,)"
            R"("identity":{"first_seen":"2017-11-27T01:00:00.000Z","first_seen_ms":1511744400000,)"
            R"("last_seen":"2017-11-27T02:00:00.000Z","last_seen_ms":1511748000000,)"
            R"("attributes":{"city":"Hangzhou"}},)"
            R"("stats":{"events":2,"counts":{"view":1,"click":0,"search":0,"cart":1,)"
            R"("remove_cart":0,"fav":0,"purchase":0,"review":0,"refund":0},)"
            R"("windows":{"1d":{"events":2,"view":1,"click":0,"search":0,"cart":1,)"
            R"("remove_cart":0,"fav":0,"purchase":0,"review":0,"refund":0},)"
            R"("7d":{"events":2,"view":1,"click":0,"search":0,"cart":1,)"
            R"("remove_cart":0,"fav":0,"purchase":0,"review":0,"refund":0},)"
            R"("30d":{"events":2,"view":1,"click":0,"search":0,"cart":1,)"
            R"("remove_cart":0,"fav":0,"purchase":0,"review":0,"refund":0}},)"
            R"("window_resolution":"utc_day"},)"
            R"("funnel":{"views":1,"carts":1,"purchases":0,"cart_rate":1,"purchase_rate":0,)"
            R"("conversion_rate":0},)"
            R"("lifecycle":{"stage":"new","days_since_first_seen":0.08333333333333333,)"
            R"("days_since_last_seen":0.041666666666666664},)"
            R"("tags":["bargain_hunter"]})");
}

TEST_F(ProfileJsonTest, AllSectionsAreValidJsonWithInterestsSortedAndNullsForUnknowns) {
  for (int i = 0; i < 5; ++i) {
    Apply(EventType::kView, kT0 + i * kMinuteMs, "i" + std::to_string(i), "a.b");
  }
  Apply(EventType::kView, kT0 + 5 * kMinuteMs, "i5", "c");
  Apply(EventType::kPurchase, kT0 + 10 * kMinuteMs, "i9", "");
  const std::string json = Write(kAll, kT0 + kDayMs);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  // Interests: categories sorted by score (ties by key), "a" (ancestor of a.b) first with a
  // share of about 5/6 (the six views are minutes apart: decay differs by ~1e-4).
  simdjson::dom::array top = doc["interests"]["categories"]["top"];
  std::vector<std::string_view> keys;
  double previous = 1e300;
  for (simdjson::dom::element e : top) {
    keys.push_back(std::string_view(e["key"]));
    const double score = e["score"];
    EXPECT_LE(score, previous);
    previous = score;
  }
  EXPECT_EQ(keys, (std::vector<std::string_view>{"a", "a.b", "c"}));
  EXPECT_NEAR(double(top.at(0)["share"]), 5.0 / 6.0, 1e-3);
  EXPECT_TRUE(bool(doc["interests"]["categories"]["exact"]));
  // No prices seen: price index and tier are null; a buyer has a last purchase and RFM scores.
  EXPECT_TRUE(doc["consumption"]["price_index"].is_null());
  EXPECT_TRUE(doc["consumption"]["price_tier"].is_null());
  EXPECT_TRUE(doc["consumption"]["avg_rating"].is_null());
  EXPECT_EQ(std::string_view(doc["consumption"]["last_purchase"]), "2017-11-27T00:10:00.000Z");
  EXPECT_EQ(int64_t(doc["consumption"]["rfm"]["recency"]), 3);
  // Sequence oldest first, with ISO time and ms.
  simdjson::dom::array seq = doc["sequence"];
  EXPECT_EQ(seq.size(), 7u);
  EXPECT_EQ(std::string_view(seq.at(0)["item"]), "i0");
  EXPECT_EQ(std::string_view(seq.at(6)["type"]), "purchase");
  EXPECT_EQ(int64_t(seq.at(6)["time_ms"]), kT0 + 10 * kMinuteMs);
  EXPECT_EQ(simdjson::dom::array(doc["sessions"]["hour_of_day"]).size(), 24u);
  EXPECT_EQ(uint64_t(doc["sessions"]["day_of_week"]["mon"]), 7u);
}

TEST_F(ProfileJsonTest, OnlyRequestedSectionsAreWritten) {
  Apply(EventType::kView, kT0, "i1", "c");
  const std::string json = Write(kFunnel, kT0);
  EXPECT_EQ(json.find("\"identity\""), std::string::npos);
  EXPECT_EQ(json.find("\"interests\""), std::string::npos);
  EXPECT_NE(json.find("\"funnel\""), std::string::npos);
  EXPECT_NE(json.find("\"user_id\""), std::string::npos);
}

}  // namespace
}  // namespace persona
