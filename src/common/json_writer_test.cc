#include "common/json_writer.h"

#include <gtest/gtest.h>

#include "common/time_util.h"

namespace persona {
namespace {

TEST(JsonWriterTest, EscapesQuotesBackslashesAndControlsAndCopiesPlainRuns) {
  JsonWriter w;
  w.BeginObject();
  w.Key("a\"b").String("x\\y\nz\t\x01 end");
  w.Key("plain").String("no escapes here, 中文 too");
  w.Key("n").Int(-42);
  w.Key("d").Double(0.1);
  w.Key("inf").Double(1.0 / 0.0);
  w.EndObject();
  EXPECT_EQ(w.str(),
            "{\"a\\\"b\":\"x\\\\y\\nz\\t\\u0001 end\",\"plain\":\"no escapes here, 中文 too\","
            "\"n\":-42,\"d\":0.1,\"inf\":null}");
}

TEST(JsonWriterTest, IsoTimesFormatWithMillisecondsAcrossTheSupportedRange) {
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(1763800001234), "2025-11-22T08:26:41.234Z");
  EXPECT_EQ(FormatIsoTime(951782400000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(*ParseIsoTime(FormatIsoTime(1511568000685)), 1511568000685);
}

}  // namespace
}  // namespace persona
