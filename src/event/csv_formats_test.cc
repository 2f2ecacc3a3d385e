#include "event/csv_formats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/time_util.h"
#include "event/event_reader.h"

namespace persona {
namespace {

using ::testing::ElementsAre;

// Everything a reader produced from one input, with the batches kept alive for the views.
struct ReadResult {
  std::vector<EventBatch> batches;
  std::vector<Event> events;
  std::vector<uint32_t> lines;
  std::vector<EventIssue> issues;
};

ReadResult ReadAll(std::string text, InputFormat format) {
  ReadResult result;
  auto reader = EventReader::OpenText(std::move(text), format, ValidationLimits());
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return result;
  EventBatch batch;
  while ((*reader)->Next(1000, &batch, &result.issues)) {
    result.events.insert(result.events.end(), batch.events.begin(), batch.events.end());
    result.lines.insert(result.lines.end(), batch.source_index.begin(), batch.source_index.end());
    result.batches.push_back(std::move(batch));
  }
  return result;
}

absl::Status OpenError(std::string text, InputFormat format) {
  return EventReader::OpenText(std::move(text), format, ValidationLimits()).status();
}

void ExpectIssue(const EventIssue& issue, uint64_t line, std::string_view field,
                 std::string_view rule, std::string_view raw) {
  EXPECT_EQ(issue.index_or_line, line);
  EXPECT_EQ(issue.field, field);
  EXPECT_EQ(issue.rule, rule);
  EXPECT_EQ(issue.raw, raw);
}

TEST(InputFormatTest, NamesRoundTripAndUnknownNamesFail) {
  for (auto f : {InputFormat::kJsonl, InputFormat::kCsv, InputFormat::kTaobao, InputFormat::kRees46,
                 InputFormat::kRetailRocket, InputFormat::kSequence}) {
    EXPECT_EQ(ParseInputFormat(InputFormatName(f)), f);
  }
  EXPECT_EQ(ParseInputFormat("json"), std::nullopt);
  EXPECT_EQ(ParseInputFormat("TAOBAO"), std::nullopt);
}

TEST(SplitCsvRecordTest, HandlesQuotesEscapesCommasAndEmptyFields) {
  StringArena arena;
  std::vector<std::string_view> f;
  ASSERT_TRUE(SplitCsvRecord(R"(a,"b,c","say ""hi""",,"")", &arena, &f));
  EXPECT_THAT(f, ElementsAre("a", "b,c", "say \"hi\"", "", ""));
  ASSERT_TRUE(SplitCsvRecord("", &arena, &f));
  EXPECT_THAT(f, ElementsAre(""));
  ASSERT_TRUE(SplitCsvRecord("x,", &arena, &f));
  EXPECT_THAT(f, ElementsAre("x", ""));
  ASSERT_TRUE(SplitCsvRecord(R"("""")", &arena, &f));
  EXPECT_THAT(f, ElementsAre("\""));
  EXPECT_FALSE(SplitCsvRecord(R"(a,"unterminated)", &arena, &f));
  EXPECT_FALSE(SplitCsvRecord(R"("a"b,c)", &arena, &f));
  EXPECT_FALSE(SplitCsvRecord(R"(a,"b"")", &arena, &f));
}

TEST(TaobaoFormatTest, TimestampsThatWouldOverflowMillisecondsAreRejectedNotWrapped) {
  // Found by fuzz/event_parser_fuzz.cc: seconds * 1000 overflowed int64 (undefined behaviour).
  const ReadResult r = ReadAll("u1,i1,c1,pv,99999999999999999\n", InputFormat::kTaobao);
  EXPECT_TRUE(r.events.empty());
  ASSERT_EQ(r.issues.size(), 1u);
  ExpectIssue(r.issues[0], 1, "timestamp", "must be an integer number of seconds",
              "u1,i1,c1,pv,99999999999999999");
}

TEST(TaobaoFormatTest, MapsBehavioursAndReportsBadLinesByLineNumber) {
  const ReadResult r = ReadAll(
      "1,2268318,2520377,pv,1511544070\n"
      "1,2333346,2520771,cart,1511561733\n"
      "2,100,5,fav,1511572885\n"
      "2,101,5,buy,1511572886\n"
      "3,102,5,clk,1511572887\n"
      "3,103,5,pv\n"
      "3,104,5,pv,15115x\n"
      ",105,5,pv,1511572888\n"
      "4,106,5,pv,900000000\n"
      "4,107,5,pv,1511572889,extra\n",
      InputFormat::kTaobao);
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_THAT(r.lines, ElementsAre(1u, 2u, 3u, 4u));
  const Event& e = r.events[0];
  EXPECT_EQ(e.user_id, "1");
  EXPECT_EQ(e.item_id, "2268318");
  EXPECT_EQ(e.category_id, "2520377");
  EXPECT_EQ(e.type, EventType::kView);
  EXPECT_EQ(e.ts_ms, 1511544070000);
  EXPECT_EQ(e.quantity, 1);
  EXPECT_EQ(e.id_hash, DeriveEventHash(e));
  EXPECT_EQ(r.events[1].type, EventType::kCart);
  EXPECT_EQ(r.events[2].type, EventType::kFav);
  EXPECT_EQ(r.events[3].type, EventType::kPurchase);  // no price column: accepted without one
  EXPECT_FALSE(r.events[3].has_price());
  EXPECT_TRUE(r.batches[0].price_optional);

  ASSERT_EQ(r.issues.size(), 6u);
  ExpectIssue(r.issues[0], 5, "behavior", "must be pv, cart, fav or buy", "3,102,5,clk,1511572887");
  ExpectIssue(r.issues[1], 6, "", "expected 5 columns, found 4", "3,103,5,pv");
  ExpectIssue(r.issues[2], 7, "timestamp", "must be an integer number of seconds",
              "3,104,5,pv,15115x");
  ExpectIssue(r.issues[3], 8, "user_id", "is required", ",105,5,pv,1511572888");
  ExpectIssue(r.issues[4], 9, "ts", "must be at or after 2000-01-01T00:00:00Z",
              "4,106,5,pv,900000000");
  ExpectIssue(r.issues[5], 10, "", "expected 5 columns, found 6", "4,107,5,pv,1511572889,extra");
}

constexpr char kRees46Header[] =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

TEST(Rees46FormatTest, MapsColumnsWithCrlfAndReportsBadLines) {
  const std::string text =
      std::string(kRees46Header) +
      "\r\n"
      "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,"
      "72d76fde\r\n"
      "2019-10-01 00:00:05 UTC,purchase,3900821,2053013552326770905,"
      "appliances.environment.water_heater,aqua,33.20,554748717,9333dfbd\r\n"
      "2019-10-01 00:00:06 UTC,remove_from_cart,1,2,,,,5,s\r\n"
      "2019-10-01 00:00:07 UTC,purchase,1,2,,,,5,s\r\n"
      "yesterday,view,1,2,,,1.0,5,s\r\n"
      "2019-10-01 00:00:08 UTC,like,1,2,,,1.0,5,s\r\n"
      "2019-10-01 00:00:09 UTC,view,1,2,,,abc,5,s\r\n"
      "2019-10-01 00:00:10 UTC,view,1,2\r\n"
      "2019-10-01 00:00:11 UTC,cart,1,2,,,-5,5,s";  // no newline at the end
  const ReadResult r = ReadAll(text, InputFormat::kRees46);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_THAT(r.lines, ElementsAre(2u, 3u, 4u));
  const Event& view = r.events[0];
  EXPECT_EQ(view.type, EventType::kView);
  EXPECT_EQ(view.ts_ms, *ParseIsoTime("2019-10-01T00:00:00Z"));
  EXPECT_EQ(view.item_id, "44600062");
  EXPECT_EQ(view.category_id, "2103807459595387724");
  EXPECT_TRUE(view.category_path.empty());
  EXPECT_EQ(view.brand, "shiseido");
  EXPECT_DOUBLE_EQ(view.price, 35.79);
  EXPECT_EQ(view.user_id, "541312140");
  EXPECT_EQ(view.session_id, "72d76fde");
  const Event& purchase = r.events[1];
  EXPECT_EQ(purchase.type, EventType::kPurchase);
  EXPECT_EQ(purchase.category_path, "appliances.environment.water_heater");
  EXPECT_EQ(purchase.quantity, 1);
  EXPECT_DOUBLE_EQ(purchase.price, 33.20);
  EXPECT_EQ(r.events[2].type, EventType::kRemoveCart);
  EXPECT_FALSE(r.batches[0].price_optional);

  ASSERT_EQ(r.issues.size(), 6u);
  ExpectIssue(r.issues[0], 5, "price", "must be a number >= 0 for purchase",
              "2019-10-01 00:00:07 UTC,purchase,1,2,,,,5,s");
  ExpectIssue(r.issues[1], 6, "event_time", "must be a time like 2019-10-01 00:00:00 UTC",
              "yesterday,view,1,2,,,1.0,5,s");
  ExpectIssue(r.issues[2], 7, "event_type", "must be view, cart, remove_from_cart or purchase",
              "2019-10-01 00:00:08 UTC,like,1,2,,,1.0,5,s");
  ExpectIssue(r.issues[3], 8, "price", "must be a number",
              "2019-10-01 00:00:09 UTC,view,1,2,,,abc,5,s");
  ExpectIssue(r.issues[4], 9, "", "expected 9 columns, found 4",
              "2019-10-01 00:00:10 UTC,view,1,2");
  ExpectIssue(r.issues[5], 10, "price", "must be a number >= 0",
              "2019-10-01 00:00:11 UTC,cart,1,2,,,-5,5,s");
}

TEST(Rees46FormatTest, WrongHeaderFailsOpen) {
  const absl::Status s = OpenError("event_time,event_type,product_id\n", InputFormat::kRees46);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("rees46 header must be"));
  EXPECT_FALSE(OpenError("", InputFormat::kRees46).ok());
}

TEST(RetailRocketFormatTest, MapsEventsAndTransactionIds) {
  const ReadResult r = ReadAll(
      "timestamp,visitorid,event,itemid,transactionid\n"
      "1433221332117,257597,view,355908,\n"
      "1433224214164,992329,addtocart,248676,\n"
      "1433221999827,111016,transaction,171878,7543\n"
      "1433221999828,111016,click,171878,\n"
      "14332x,111016,view,171878,\n",
      InputFormat::kRetailRocket);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_THAT(r.lines, ElementsAre(2u, 3u, 4u));
  EXPECT_EQ(r.events[0].type, EventType::kView);
  EXPECT_EQ(r.events[0].ts_ms, 1433221332117);
  EXPECT_EQ(r.events[0].user_id, "257597");
  EXPECT_EQ(r.events[0].item_id, "355908");
  EXPECT_TRUE(r.events[0].order_id.empty());
  EXPECT_EQ(r.events[1].type, EventType::kCart);
  EXPECT_EQ(r.events[2].type, EventType::kPurchase);
  EXPECT_EQ(r.events[2].order_id, "7543");
  EXPECT_FALSE(r.events[2].has_price());
  ASSERT_EQ(r.issues.size(), 2u);
  ExpectIssue(r.issues[0], 5, "event", "must be view, addtocart or transaction",
              "1433221999828,111016,click,171878,");
  ExpectIssue(r.issues[1], 6, "timestamp", "must be an integer number of milliseconds",
              "14332x,111016,view,171878,");
  EXPECT_FALSE(OpenError("ts,visitor,event,item,tx\n", InputFormat::kRetailRocket).ok());
}

TEST(SequenceFormatTest, PairsAndWholeSequencesShareOnePerUserClock) {
  const ReadResult r = ReadAll(
      "1 10\n"
      "1 11\n"
      "2 20 21\t22\n"
      "1 12\n"
      "3\n"
      "\n"
      "2 23\n",
      InputFormat::kSequence);
  const int64_t base = *ParseIsoTime("2020-01-01T00:00:00Z");
  ASSERT_EQ(r.events.size(), 7u);
  EXPECT_THAT(r.lines, ElementsAre(1u, 2u, 3u, 3u, 3u, 4u, 7u));
  struct Expected {
    std::string_view user, item;
    int64_t hour;
  };
  const Expected expected[] = {{"1", "10", 0}, {"1", "11", 1}, {"2", "20", 0}, {"2", "21", 1},
                               {"2", "22", 2}, {"1", "12", 2}, {"2", "23", 3}};
  for (size_t i = 0; i < r.events.size(); ++i) {
    EXPECT_EQ(r.events[i].user_id, expected[i].user) << i;
    EXPECT_EQ(r.events[i].item_id, expected[i].item) << i;
    EXPECT_EQ(r.events[i].ts_ms, base + expected[i].hour * kHourMs) << i;
    EXPECT_EQ(r.events[i].type, EventType::kView);
  }
  ASSERT_EQ(r.issues.size(), 1u);
  ExpectIssue(r.issues[0], 5, "", "expected 'user item' or 'user item1 item2 ...'", "3");
}

TEST(CsvFormatTest, HeaderInAnyOrderWithQuotesIsoTimesAndAttrs) {
  const ReadResult r = ReadAll(
      "ts,type,user_id,item_id,price,attrs,text,rating,query,quantity\n"
      "1569888000000,purchase,u1,i1,9.5,,,,,2\n"
      "2019-10-01T00:00:01Z,review,u2,\"item, with comma\",,\"{\"\"size\"\": \"\"M\"\"}\","
      "\"said \"\"great\"\"\",5,,\n"
      "1569888000002,search,u3,,,,,,\"red shoes\",\n",
      InputFormat::kCsv);
  ASSERT_EQ(r.events.size(), 3u) << (r.issues.empty() ? "" : r.issues[0].rule);
  EXPECT_THAT(r.lines, ElementsAre(2u, 3u, 4u));
  EXPECT_EQ(r.events[0].type, EventType::kPurchase);
  EXPECT_DOUBLE_EQ(r.events[0].price, 9.5);
  EXPECT_EQ(r.events[0].quantity, 2);
  const Event& review = r.events[1];
  EXPECT_EQ(review.ts_ms, 1569888001000);
  EXPECT_EQ(review.item_id, "item, with comma");
  EXPECT_EQ(review.attrs_json, R"({"size":"M"})");
  EXPECT_EQ(review.text, "said \"great\"");
  EXPECT_EQ(review.rating, 5);
  EXPECT_EQ(review.quantity, 1);
  EXPECT_EQ(r.events[2].query, "red shoes");
  EXPECT_TRUE(r.issues.empty());
}

TEST(CsvFormatTest, BadRowsBecomeIssues) {
  const ReadResult r = ReadAll(
      "user_id,type,ts,item_id,rating,attrs,price\n"
      "u1,view,1569888000000,i1,,,\n"
      "u1,view,1569888000000,i1,7,,\n"
      "u1,like,1569888000000,i1,,,\n"
      "u1,view,soon,i1,,,\n"
      "u1,view,1569888000000,i1,,[1],\n"
      "u1,view,1569888000000\n"
      "u1,view,1569888000000,\"i1,,,\n"
      "u1,,1569888000000,i1,,,\n"
      "u1,view,1569888000000,i1,,,nan\n",
      InputFormat::kCsv);
  ASSERT_EQ(r.events.size(), 1u);
  ASSERT_EQ(r.issues.size(), 8u);
  EXPECT_EQ(r.issues[0].index_or_line, 3u);
  EXPECT_EQ(r.issues[0].field, "rating");
  EXPECT_EQ(r.issues[0].rule, "must be an integer 1..5");
  EXPECT_EQ(r.issues[1].field, "type");
  EXPECT_EQ(r.issues[2].field, "ts");
  EXPECT_EQ(r.issues[3].field, "attrs");
  EXPECT_EQ(r.issues[3].rule, "must be a JSON object");
  EXPECT_EQ(r.issues[4].rule, "expected 7 columns, found 3");
  EXPECT_EQ(r.issues[5].rule, "unterminated quote");
  EXPECT_EQ(r.issues[6].field, "type");
  EXPECT_EQ(r.issues[6].rule, "is required");
  EXPECT_EQ(r.issues[7].field, "price");
  EXPECT_EQ(r.issues[7].index_or_line, 10u);
}

TEST(CsvFormatTest, HeaderProblemsFailOpenWithTheColumnName) {
  EXPECT_EQ(OpenError("user_id,type,ts,foo\n", InputFormat::kCsv).message(),
            "unknown column 'foo' in header");
  EXPECT_EQ(OpenError("user_id,type,ts,ts\n", InputFormat::kCsv).message(),
            "duplicate column 'ts' in header");
  EXPECT_EQ(OpenError("user_id,type,item_id\n", InputFormat::kCsv).message(),
            "missing column 'ts' in header");
  EXPECT_TRUE(OpenError("\xEF\xBB\xBF ts , type,user_id\r\n", InputFormat::kCsv).ok());
}

TEST(JsonlFormatTest, ReadsObjectsPerLineAndReportsBadLines) {
  const ReadResult r = ReadAll(
      "{\"user_id\":\"u1\",\"type\":\"view\",\"ts\":1569888000000,\"item_id\":\"i1\"}\n"
      "{\"user_id\":\"u1\",\"type\":\"view\",\"ts\":1569888000000\n"
      "\n"
      "{\"user_id\":\"u2\",\"type\":\"search\",\"ts\":\"2019-10-01T00:00:00Z\",\"query\":\"q\"}\n",
      InputFormat::kJsonl);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_THAT(r.lines, ElementsAre(1u, 4u));
  ASSERT_EQ(r.issues.size(), 1u);
  EXPECT_EQ(r.issues[0].index_or_line, 2u);
  EXPECT_THAT(r.issues[0].rule, ::testing::StartsWith("malformed JSON"));
}

}  // namespace
}  // namespace persona
