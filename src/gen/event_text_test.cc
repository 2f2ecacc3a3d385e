#include "gen/event_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gen/testing/parsed_stream.h"

namespace persona::gen {
namespace {

Event Purchase() {
  Event e;
  e.event_id = "e-1";
  e.user_id = "u1";
  e.type = EventType::kPurchase;
  e.ts_ms = 1511568000123;
  e.item_id = "42";
  e.category_path = "c1.c1_2.c1_2_3";
  e.brand = "kavori";
  e.price = 12.5;
  e.quantity = 2;
  e.order_id = "o1-1";
  e.session_id = "1-1";
  e.device = "ios";
  return e;
}

TEST(EventTextTest, JsonLineRoundTripsThroughSimdjson) {
  std::string out;
  AppendJsonLine(Purchase(), &out);
  ASSERT_EQ(out.back(), '\n');
  std::vector<gen_testing::ParsedEvent> parsed;
  std::string error;
  ASSERT_TRUE(gen_testing::ParseJsonLines(out, &parsed, &error)) << error;
  ASSERT_EQ(parsed.size(), 1u);
  const auto& p = parsed[0];
  EXPECT_EQ(p.event_id, "e-1");
  EXPECT_EQ(p.user_id, "u1");
  EXPECT_EQ(p.type, "purchase");
  EXPECT_EQ(p.ts, 1511568000123);
  EXPECT_EQ(p.item_id, "42");
  EXPECT_EQ(p.category_path, "c1.c1_2.c1_2_3");
  EXPECT_EQ(p.brand, "kavori");
  EXPECT_TRUE(p.has_price);
  EXPECT_DOUBLE_EQ(p.price, 12.5);
  EXPECT_EQ(p.quantity, 2);
  EXPECT_EQ(p.order_id, "o1-1");
  EXPECT_EQ(p.session_id, "1-1");
  EXPECT_EQ(p.device, "ios");
}

TEST(EventTextTest, AbsentFieldsAreOmittedAndStringsEscaped) {
  Event e;
  e.user_id = "u\"2";
  e.type = EventType::kReview;
  e.ts_ms = 1511568000000;
  e.item_id = "7";
  e.rating = 4;
  e.text = "good,\nsolid \\ \"really\"";
  std::string out;
  AppendJsonLine(e, &out);
  EXPECT_EQ(out.find("price"), std::string::npos) << out;
  EXPECT_EQ(out.find("quantity"), std::string::npos) << out;
  EXPECT_EQ(out.find("event_id"), std::string::npos) << out;
  std::vector<gen_testing::ParsedEvent> parsed;
  std::string error;
  ASSERT_TRUE(gen_testing::ParseJsonLines(out, &parsed, &error)) << error;
  EXPECT_EQ(parsed[0].user_id, "u\"2");
  EXPECT_EQ(parsed[0].text, "good,\nsolid \\ \"really\"");
  EXPECT_EQ(parsed[0].rating, 4);
}

TEST(EventTextTest, CsvRowsHaveTheHeaderColumnsAndQuoteSpecialFields) {
  const std::string header(CsvHeader());
  EXPECT_EQ(header.back(), '\n');
  const auto columns = [](std::string_view row) {
    // Counts fields, honouring RFC 4180 quotes.
    int n = 1;
    bool quoted = false;
    for (char c : row) {
      if (c == '"')
        quoted = !quoted;
      else if (c == ',' && !quoted)
        ++n;
    }
    return n;
  };
  std::string row;
  AppendCsvLine(Purchase(), &row);
  EXPECT_EQ(columns(row), columns(header));
  EXPECT_EQ(row, "e-1,u1,purchase,1511568000123,42,c1.c1_2.c1_2_3,kavori,12.5,2,o1-1,,,,1-1,ios\n");

  Event review;
  review.user_id = "u3";
  review.type = EventType::kReview;
  review.ts_ms = 1511568000000;
  review.item_id = "9";
  review.rating = 5;
  review.text = "love it, \"perfect\"";
  row.clear();
  AppendCsvLine(review, &row);
  EXPECT_EQ(columns(row), columns(header));
  EXPECT_NE(row.find("\"love it, \"\"perfect\"\"\""), std::string::npos) << row;
}

}  // namespace
}  // namespace persona::gen
