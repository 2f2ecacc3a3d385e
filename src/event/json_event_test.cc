#include "event/json_event.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/hash.h"
#include "event/testing/event_testing.h"

namespace persona {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kOct2019 = 1569888000000;  // 2019-10-01T00:00:00Z

// Parses one object with a fresh batch; returns the rejection (or nullopt) and keeps the batch
// alive in the fixture so that views stay valid.
class JsonEventTest : public ::testing::Test {
 protected:
  std::optional<Rejection> Parse(std::string_view json, bool strict = false) {
    JsonEventParser parser(ValidationLimits(), strict);
    return parser.ParseEvent(json, &batch_, &event_);
  }
  void ExpectRejected(std::string_view json, std::string_view field, std::string_view rule,
                      bool strict = false) {
    const auto r = Parse(json, strict);
    ASSERT_TRUE(r.has_value()) << json;
    EXPECT_EQ(r->field, field) << json;
    EXPECT_EQ(r->rule, rule) << json;
  }

  EventBatch batch_;
  Event event_;
};

TEST_F(JsonEventTest, ReadsEveryNativeField) {
  ASSERT_EQ(Parse(R"({"event_id":"e1","user_id":"u1","type":"purchase","ts":1569888000000,
      "item_id":"i1","category_id":"c1","category_path":"electronics.audio","brand":"acme",
      "price":19.99,"quantity":3,"order_id":"o1","query":"q","rating":4,"text":"nice",
      "session_id":"s1","device":"ios","rec_id":"r1","attrs":{"color":"red","n":[1,2]}})"),
            std::nullopt);
  const Event& e = event_;
  EXPECT_EQ(e.event_id, "e1");
  EXPECT_EQ(e.id_hash, Hash64("e1"));
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.type, EventType::kPurchase);
  EXPECT_EQ(e.ts_ms, kOct2019);
  EXPECT_EQ(e.item_id, "i1");
  EXPECT_EQ(e.category_id, "c1");
  EXPECT_EQ(e.category_path, "electronics.audio");
  EXPECT_EQ(e.brand, "acme");
  EXPECT_DOUBLE_EQ(e.price, 19.99);
  EXPECT_EQ(e.quantity, 3);
  EXPECT_EQ(e.order_id, "o1");
  EXPECT_EQ(e.query, "q");
  EXPECT_EQ(e.rating, 4);
  EXPECT_EQ(e.text, "nice");
  EXPECT_EQ(e.session_id, "s1");
  EXPECT_EQ(e.device, "ios");
  EXPECT_EQ(e.rec_id, "r1");
  EXPECT_EQ(e.attrs_json, R"({"color":"red","n":[1,2]})");
}

TEST_F(JsonEventTest, MissingEventIdDerivesTheHashAndQuantityDefaultsToOne) {
  ASSERT_EQ(Parse(R"({"user_id":"u1","type":"view","ts":1569888000000,"item_id":"i1"})"),
            std::nullopt);
  EXPECT_EQ(event_.quantity, 1);
  EXPECT_TRUE(event_.event_id.empty());
  EXPECT_EQ(event_.id_hash, DeriveEventHash(event_));
  EXPECT_FALSE(event_.has_price());
}

TEST_F(JsonEventTest, TimestampAcceptsMillisIntegerValuedDoublesIsoAndDigitStrings) {
  const char* kCases[] = {
      R"({"user_id":"u","type":"view","item_id":"i","ts":1569888000000})",
      R"({"user_id":"u","type":"view","item_id":"i","ts":1.569888e12})",
      R"({"user_id":"u","type":"view","item_id":"i","ts":1569888000000.0})",
      R"({"user_id":"u","type":"view","item_id":"i","ts":"2019-10-01T00:00:00Z"})",
      R"({"user_id":"u","type":"view","item_id":"i","ts":"2019-10-01T08:00:00+08:00"})",
      R"({"user_id":"u","type":"view","item_id":"i","ts":"2019-10-01 00:00:00 UTC"})",
      R"({"user_id":"u","type":"view","item_id":"i","ts":"1569888000000"})",
  };
  for (const char* json : kCases) {
    ASSERT_EQ(Parse(json), std::nullopt) << json;
    EXPECT_EQ(event_.ts_ms, kOct2019) << json;
  }
  ASSERT_EQ(Parse(R"({"user_id":"u","type":"view","item_id":"i","ts":"2019-10-01T00:00:00.250Z"})"),
            std::nullopt);
  EXPECT_EQ(event_.ts_ms, kOct2019 + 250);
}

TEST_F(JsonEventTest, BadTimestampsAreRejected) {
  const std::string rule = "must be epoch milliseconds (an integer) or an ISO-8601 string";
  ExpectRejected(R"({"user_id":"u","type":"view","item_id":"i","ts":1569888000000.5})", "ts", rule);
  ExpectRejected(R"({"user_id":"u","type":"view","item_id":"i","ts":"yesterday"})", "ts", rule);
  ExpectRejected(R"({"user_id":"u","type":"view","item_id":"i","ts":true})", "ts", rule);
  ExpectRejected(R"({"user_id":"u","type":"view","item_id":"i","ts":1e300})", "ts", rule);
  ExpectRejected(R"({"user_id":"u","type":"view","item_id":"i","ts":18446744073709551615})", "ts",
                 rule);
  ExpectRejected(R"({"user_id":"u","type":"view","item_id":"i"})", "ts", "is required");
  ExpectRejected(R"({"user_id":"u","type":"view","item_id":"i","ts":946684799999})", "ts",
                 "must be at or after 2000-01-01T00:00:00Z");
}

TEST_F(JsonEventTest, NumericIdsAreRenderedAsDecimalText) {
  ASSERT_EQ(Parse(R"({"user_id":123,"type":"view","ts":1569888000000,"item_id":1e3,
                      "category_id":2053013552326770905,"session_id":18446744073709551615,
                      "order_id":-7,"rec_id":12.5,"event_id":42})"),
            std::nullopt);
  EXPECT_EQ(event_.user_id, "123");
  EXPECT_EQ(event_.item_id, "1000");
  EXPECT_EQ(event_.category_id, "2053013552326770905");
  EXPECT_EQ(event_.session_id, "18446744073709551615");
  EXPECT_EQ(event_.order_id, "-7");
  EXPECT_EQ(event_.rec_id, "12.5");
  EXPECT_EQ(event_.event_id, "42");
  EXPECT_EQ(event_.id_hash, Hash64("42"));
}

TEST_F(JsonEventTest, EscapesAreResolvedAndStringsLiveInTheArena) {
  std::string json =
      R"({"user_id":"u\"1\\","type":"search","ts":1569888000000,"query":"caf\u00e9 \n\ttab",
          "brand":"\ud83d\ude00"})";
  ASSERT_EQ(Parse(json), std::nullopt);
  json.assign(json.size(), 'X');  // the event must not point into the input
  EXPECT_EQ(event_.user_id, "u\"1\\");
  EXPECT_EQ(event_.query, "caf\xC3\xA9 \n\ttab");
  EXPECT_EQ(event_.brand, "\xF0\x9F\x98\x80");
}

TEST_F(JsonEventTest, AttrsMustBeAnObjectAndAreKeptCompact) {
  ASSERT_EQ(Parse(R"({"user_id":"u","type":"view","ts":1569888000000,"item_id":"i",
                      "attrs": { "size" : "M", "tags" : [ "a" , "b" ], "x": {"y": null} }})"),
            std::nullopt);
  EXPECT_EQ(event_.attrs_json, R"({"size":"M","tags":["a","b"],"x":{"y":null}})");
  ExpectRejected(R"({"user_id":"u","type":"view","ts":1569888000000,"item_id":"i","attrs":"{}"})",
                 "attrs", "must be an object");
  ExpectRejected(R"({"user_id":"u","type":"view","ts":1569888000000,"item_id":"i","attrs":[1]})",
                 "attrs", "must be an object");
}

TEST_F(JsonEventTest, WrongJsonTypesNameTheField) {
  const std::string head = R"({"type":"view","ts":1569888000000,"item_id":"i",)";
  ExpectRejected(head + R"("user_id":true})", "user_id", "must be a string or a number");
  ExpectRejected(head + R"("user_id":{"id":1}})", "user_id", "must be a string or a number");
  ExpectRejected(head + R"("user_id":"u","brand":5})", "brand", "must be a string");
  ExpectRejected(head + R"("user_id":"u","query":["a"]})", "query", "must be a string");
  ExpectRejected(head + R"("user_id":"u","price":"12.5"})", "price", "must be a number");
  ExpectRejected(head + R"("user_id":"u","quantity":1.5})", "quantity", "must be an integer >= 1");
  ExpectRejected(head + R"("user_id":"u","quantity":0})", "quantity", "must be an integer >= 1");
  ExpectRejected(head + R"("user_id":"u","quantity":3000000000})", "quantity",
                 "must be an integer <= 2147483647");
  ExpectRejected(head + R"("user_id":"u","rating":"5"})", "rating", "must be an integer 1..5");
  ExpectRejected(head + R"("user_id":"u","rating":0})", "rating", "must be an integer 1..5");
  ExpectRejected(head + R"("user_id":"u","rating":300})", "rating", "must be an integer 1..5");
  ExpectRejected(R"({"type":7,"user_id":"u","ts":1569888000000,"item_id":"i"})", "type",
                 "must be a string");
}

TEST_F(JsonEventTest, TypeIsRequiredAndMustBeKnown) {
  ExpectRejected(R"({"user_id":"u","ts":1569888000000,"item_id":"i"})", "type", "is required");
  ExpectRejected(R"({"user_id":"u","type":"buy","ts":1569888000000,"item_id":"i"})", "type",
                 "must be one of view, click, search, cart, remove_cart, fav, purchase, review, "
                 "refund");
}

TEST_F(JsonEventTest, NullMeansAbsent) {
  ASSERT_EQ(Parse(R"({"user_id":"u","type":"view","ts":1569888000000,"item_id":"i",
                      "price":null,"brand":null,"attrs":null})"),
            std::nullopt);
  EXPECT_FALSE(event_.has_price());
  EXPECT_TRUE(event_.brand.empty());
  ExpectRejected(R"({"user_id":null,"type":"view","ts":1569888000000,"item_id":"i"})", "user_id",
                 "is required");
}

TEST_F(JsonEventTest, UnknownFieldsAreIgnoredUnlessStrict) {
  const std::string json =
      R"({"user_id":"u","type":"view","ts":1569888000000,"item_id":"i","colour":"red"})";
  EXPECT_EQ(Parse(json, /*strict=*/false), std::nullopt);
  ExpectRejected(json, "colour", "unknown field", /*strict=*/true);
}

TEST_F(JsonEventTest, ValidationRulesApplyToParsedEvents) {
  ExpectRejected(R"({"user_id":"u","type":"purchase","ts":1569888000000,"item_id":"i"})", "price",
                 "must be a number >= 0 for purchase");
  batch_.price_optional = true;
  EXPECT_EQ(Parse(R"({"user_id":"u","type":"purchase","ts":1569888000000,"item_id":"i"})"),
            std::nullopt);
  ExpectRejected(R"({"user_id":"","type":"view","ts":1569888000000,"item_id":"i"})", "user_id",
                 "is required");
}

TEST_F(JsonEventTest, MalformedJsonIsARecordLevelRejection) {
  for (const char* bad : {"", "{", R"({"user_id":"u",})", R"({"user_id" "u"})", "[1,2]", "\"text\"",
                          R"({"a":1}{"b":2})", "{\"a\":\"\xff\xfe\"}"}) {
    const auto r = Parse(bad);
    ASSERT_TRUE(r.has_value()) << bad;
    EXPECT_EQ(r->field, "") << bad;
  }
  const auto r = Parse("[1]");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rule, "must be a JSON object");
}

TEST_F(JsonEventTest, DeeplyNestedAttrsFailCleanly) {
  std::string json = R"({"user_id":"u","type":"view","ts":1569888000000,"item_id":"i","attrs":)";
  for (int i = 0; i < 5000; ++i) json += "{\"a\":";
  json += "1";
  for (int i = 0; i < 5000; ++i) json += "}";
  json += "}";
  const auto r = Parse(json);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->field, "");
}

TEST_F(JsonEventTest, EveryTruncationOfAValidObjectIsRejectedWithoutCrashing) {
  const std::string json =
      R"({"event_id":"e1","user_id":"u1","type":"purchase","ts":"2019-10-01T00:00:00Z",)"
      R"("item_id":"i1","price":19.99,"quantity":3,"attrs":{"k":[1,{"z":"w"}]}})";
  ASSERT_EQ(Parse(json), std::nullopt);
  for (size_t n = 0; n < json.size(); ++n) {
    EXPECT_TRUE(Parse(json.substr(0, n)).has_value()) << n;
  }
}

class JsonBodyTest : public ::testing::Test {
 protected:
  absl::Status ParseBody(std::string_view body, bool strict = false) {
    return ParseJsonBody(body, ValidationLimits(), strict, &batch_, &issues_);
  }
  EventBatch batch_;
  std::vector<EventIssue> issues_;
};

constexpr char kView1[] = R"({"user_id":"u1","type":"view","ts":1569888000000,"item_id":"i1"})";
constexpr char kView2[] = R"({"user_id":"u2","type":"view","ts":1569888000001,"item_id":"i2"})";
constexpr char kBadPurchase[] =
    R"({"user_id":"u3","type":"purchase","ts":1569888000002,"item_id":"i3","price":-1})";

TEST_F(JsonBodyTest, OneObject) {
  ASSERT_TRUE(ParseBody(std::string("  ") + kView1 + "\n").ok());
  ASSERT_EQ(batch_.events.size(), 1u);
  EXPECT_EQ(batch_.events[0].user_id, "u1");
  EXPECT_THAT(batch_.source_index, ElementsAre(0u));
  EXPECT_TRUE(issues_.empty());
}

TEST_F(JsonBodyTest, PrettyPrintedObjectIsOneRecordNotNdjson) {
  ASSERT_TRUE(ParseBody("{\n  \"user_id\": \"u1\",\n  \"type\": \"view\",\n"
                        "  \"ts\": 1569888000000,\n  \"item_id\": \"i1\"\n}\n")
                  .ok());
  ASSERT_EQ(batch_.events.size(), 1u);
  EXPECT_TRUE(issues_.empty());
}

TEST_F(JsonBodyTest, ArrayReportsBadElementsByIndexAndKeepsTheRest) {
  ASSERT_TRUE(
      ParseBody(std::string("[") + kView1 + "," + kBadPurchase + ",7," + kView2 + "]").ok());
  ASSERT_EQ(batch_.events.size(), 2u);
  EXPECT_EQ(batch_.events[0].user_id, "u1");
  EXPECT_EQ(batch_.events[1].user_id, "u2");
  EXPECT_THAT(batch_.source_index, ElementsAre(0u, 3u));
  ASSERT_EQ(issues_.size(), 2u);
  EXPECT_EQ(issues_[0].index_or_line, 1u);
  EXPECT_EQ(issues_[0].field, "price");
  EXPECT_EQ(issues_[0].rule, "must be a number >= 0 for purchase");
  EXPECT_EQ(issues_[0].raw, kBadPurchase);
  EXPECT_EQ(issues_[1].index_or_line, 2u);
  EXPECT_EQ(issues_[1].rule, "must be a JSON object");
  EXPECT_EQ(issues_[1].raw, "7");
}

TEST_F(JsonBodyTest, NdjsonWithCrlfBlankLinesAndABadLineContinues) {
  const std::string body = std::string("\xEF\xBB\xBF") + kView1 +
                           "\r\n\r\n{\"user_id\": oops}\r\n" + kBadPurchase + "\n" + kView2;
  ASSERT_TRUE(ParseBody(body).ok());
  ASSERT_EQ(batch_.events.size(), 2u);
  EXPECT_THAT(batch_.source_index, ElementsAre(0u, 3u));
  ASSERT_EQ(issues_.size(), 2u);
  EXPECT_EQ(issues_[0].index_or_line, 1u);
  EXPECT_EQ(issues_[0].field, "");
  EXPECT_THAT(issues_[0].rule, ::testing::StartsWith("malformed JSON"));
  EXPECT_EQ(issues_[0].raw, "{\"user_id\": oops}");
  EXPECT_EQ(issues_[1].index_or_line, 2u);
  EXPECT_EQ(issues_[1].field, "price");
}

TEST_F(JsonBodyTest, UnknownFieldsInBodiesFollowStrictness) {
  const std::string body =
      R"({"user_id":"u","type":"view","ts":1569888000000,"item_id":"i","x":1})";
  ASSERT_TRUE(ParseBody(body, /*strict=*/false).ok());
  EXPECT_EQ(batch_.events.size(), 1u);
  ASSERT_TRUE(ParseBody(body, /*strict=*/true).ok());
  EXPECT_EQ(batch_.events.size(), 1u);
  ASSERT_EQ(issues_.size(), 1u);
  EXPECT_EQ(issues_[0].field, "x");
  EXPECT_EQ(issues_[0].rule, "unknown field");
}

TEST_F(JsonBodyTest, UnusableBodiesAreErrorsAndAppendNothing) {
  for (const char* bad :
       {"", "  \n ", "42", "\"x\"", "[{\"user_id\":1", "{\"user_id\":", "[1,2,]", "null"}) {
    const absl::Status s = ParseBody(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(batch_.events.empty());
  EXPECT_TRUE(issues_.empty());
  EXPECT_TRUE(ParseBody("[]").ok());
  EXPECT_TRUE(batch_.events.empty());
}

TEST_F(JsonBodyTest, EveryTruncationOfABodyFailsCleanly) {
  const std::string array = std::string("[") + kView1 + "," + kView2 + "]";
  for (size_t n = 0; n < array.size(); ++n) {
    EventBatch batch;
    std::vector<EventIssue> issues;
    // An array is all or nothing: any cut is an unusable body.
    EXPECT_FALSE(ParseJsonBody(array.substr(0, n), ValidationLimits(), false, &batch, &issues).ok())
        << n;
    EXPECT_TRUE(batch.events.empty() && issues.empty()) << n;
  }
  const std::string ndjson = std::string(kView1) + "\n" + kView2 + "\n";
  const size_t first_end = std::string_view(kView1).size();
  const size_t second_end = first_end + 1 + std::string_view(kView2).size();
  for (size_t n = 0; n < ndjson.size(); ++n) {
    EventBatch batch;
    std::vector<EventIssue> issues;
    const absl::Status s =
        ParseJsonBody(ndjson.substr(0, n), ValidationLimits(), false, &batch, &issues);
    // Complete lines survive a cut; the cut line is an issue or (one line only) a body error.
    const size_t complete = (n >= first_end) + (n >= second_end);
    EXPECT_EQ(batch.events.size(), complete) << n;
    if (n > 0 && n != first_end && n != first_end + 1 && n < second_end) {
      EXPECT_TRUE(!s.ok() || issues.size() == 1) << n;
    }
  }
}

TEST(MakeEventIssueTest, TruncatesRawTextOnACharacterBoundary) {
  std::string raw(kMaxIssueRawBytes - 1, 'a');
  raw += "\xC3\xA9";  // 'é' straddles the 4 KiB limit
  raw += std::string(100, 'b');
  const EventIssue issue = MakeEventIssue(7, Rejection{"f", "r"}, raw);
  EXPECT_EQ(issue.index_or_line, 7u);
  EXPECT_EQ(issue.raw.size(), kMaxIssueRawBytes - 1);
  EXPECT_EQ(issue.raw, std::string(kMaxIssueRawBytes - 1, 'a'));
  EXPECT_EQ(MakeEventIssue(1, Rejection{}, "short").raw, "short");
}

TEST(WriteEventJsonTest, WritesOnlyPresentFields) {
  Event e;
  e.user_id = "u1";
  e.type = EventType::kView;
  e.ts_ms = kOct2019;
  e.item_id = "i\"1";
  JsonWriter w;
  WriteEventJson(w, e);
  EXPECT_EQ(w.str(), R"({"user_id":"u1","type":"view","ts":1569888000000,"item_id":"i\"1"})");
}

TEST(WriteEventJsonTest, RoundTripsThroughTheParser) {
  const std::string json =
      R"({"event_id":"e1","user_id":"u1","type":"review","ts":1569888000123,"item_id":"i1",)"
      R"("category_id":"c1","category_path":"a.b","brand":"acme","price":0.1,"quantity":2,)"
      R"("order_id":"o1","query":"q","rating":5,"text":"line1\nline2","session_id":"s1",)"
      R"("device":"web","rec_id":"r1","attrs":{"k":"v"}})";
  JsonEventParser parser;
  EventBatch batch;
  Event first;
  ASSERT_EQ(parser.ParseEvent(json, &batch, &first), std::nullopt);
  JsonWriter w;
  WriteEventJson(w, first);
  EXPECT_EQ(w.str(), json);
  Event second;
  ASSERT_EQ(parser.ParseEvent(w.str(), &batch, &second), std::nullopt);
  ExpectSameEvent(second, first);
}

}  // namespace
}  // namespace persona
