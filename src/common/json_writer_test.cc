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

TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacterAndValidUtf8IsKept) {
  std::string out;
  JsonWriter::AppendEscaped(out, "a\xff b\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf \xe4\xb8");
  EXPECT_EQ(out,
            "a\xef\xbf\xbd b\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 "
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
            "\xef\xbf\xbd\xef\xbf\xbd");
}

// The 8-bytes-at-a-time skip must find a special byte at every offset of every word.
TEST(JsonWriterTest, WordAtATimeSkipFindsSpecialsAtEveryOffset) {
  const std::string specials[] = {"\"", "\\", "\n", "\x01", "\x1f", "\xc3\xa9", "\xff"};
  const std::string expected[] = {"\\\"", "\\\\", "\\n", "\\u0001", "\\u001f", "\xc3\xa9",
                                  "\xef\xbf\xbd"};
  for (size_t k = 0; k < std::size(specials); ++k) {
    for (size_t len = 0; len < 40; ++len) {
      for (size_t at = 0; at <= len; ++at) {
        const std::string plain(len, 'x');
        std::string in = plain.substr(0, at) + specials[k] + plain.substr(at);
        std::string out;
        JsonWriter::AppendEscaped(out, in);
        ASSERT_EQ(out, plain.substr(0, at) + expected[k] + plain.substr(at))
            << "special " << k << " len " << len << " at " << at;
      }
    }
  }
  std::string out;
  JsonWriter::AppendEscaped(out, "0123456789abcdef ~}| 0123456789");  // all plain, > 8 bytes
  EXPECT_EQ(out, "0123456789abcdef ~}| 0123456789");
}

TEST(JsonWriterTest, HugeDoublesUseScientificNotationOthersShortestForm) {
  JsonWriter w;
  w.BeginArray();
  w.Double(18446744073709551616.0);
  w.Double(1e20);
  w.Double(123.25);
  w.Double(-2.5e-7);
  w.EndArray();
  EXPECT_EQ(w.str(), "[1.8446744073709552e+19,1e+20,123.25,-2.5e-07]");
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
