#include "store/dead_letter_codec.h"

#include <simdjson.h>

#include <string>

#include "gtest/gtest.h"

namespace persona {
namespace {

DeadLetter SampleLetter() {
  DeadLetter letter;
  letter.received_ms = 1572566400123;
  letter.source = "import:/data/2019-Oct.csv";
  letter.position = 18446744073709551615ULL;  // max u64 survives
  letter.user_id = "u-42";
  letter.field = "price";
  letter.rule = "must be a number >= 0";
  letter.raw = "2019-10-01 00:00:00 UTC,view,1,\"quoted\",-3.5\n\ttab \xc3\xa9";
  return letter;
}

void ExpectSameLetter(const DeadLetter& a, const DeadLetter& b) {
  EXPECT_EQ(a.received_ms, b.received_ms);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.field, b.field);
  EXPECT_EQ(a.rule, b.rule);
  EXPECT_EQ(a.raw, b.raw);
}

TEST(DeadLetterCodecTest, RoundTripsEveryField) {
  const DeadLetter letter = SampleLetter();
  absl::StatusOr<DeadLetter> decoded = DecodeDeadLetter(EncodeDeadLetter(letter));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameLetter(*decoded, letter);
}

TEST(DeadLetterCodecTest, NegativeTimeAndEmptyFieldsRoundTrip) {
  DeadLetter letter;
  letter.received_ms = -1;
  absl::StatusOr<DeadLetter> decoded = DecodeDeadLetter(EncodeDeadLetter(letter));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameLetter(*decoded, letter);
}

TEST(DeadLetterCodecTest, InvalidUtf8IsKeptExactlyAsBase64) {
  DeadLetter letter = SampleLetter();
  letter.raw = std::string("\xff\xfe\x00binary\x80", 10);
  letter.user_id = "\xc3";  // truncated two-byte sequence
  const std::string value = EncodeDeadLetter(letter);
  EXPECT_NE(value.find("\"raw_base64\":"), std::string::npos) << value;
  EXPECT_NE(value.find("\"user_id_base64\":"), std::string::npos) << value;
  EXPECT_TRUE(simdjson::validate_utf8(value.data(), value.size())) << "stored JSON must be UTF-8";
  absl::StatusOr<DeadLetter> decoded = DecodeDeadLetter(value);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameLetter(*decoded, letter);
}

TEST(DeadLetterCodecTest, RawIsTruncatedTo4KiBAtACharacterBoundary) {
  DeadLetter letter = SampleLetter();
  // 4095 ASCII bytes then a 2-byte character: cutting at 4096 would split it.
  letter.raw = std::string(kMaxDeadLetterRawBytes - 1, 'a') + "\xc3\xa9" + std::string(100, 'b');
  absl::StatusOr<DeadLetter> decoded = DecodeDeadLetter(EncodeDeadLetter(letter));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->raw, std::string(kMaxDeadLetterRawBytes - 1, 'a'));

  letter.raw = std::string(10000, 'x');
  decoded = DecodeDeadLetter(EncodeDeadLetter(letter));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->raw.size(), kMaxDeadLetterRawBytes);
}

TEST(DeadLetterCodecTest, TruncateUtf8KeepsShortStringsAndCutsInvalidBytesAnywhere) {
  EXPECT_EQ(TruncateUtf8("abc", 10), "abc");
  EXPECT_EQ(TruncateUtf8("abc", 2), "ab");
  EXPECT_EQ(TruncateUtf8("\xe2\x82\xac\xe2\x82\xac", 4), "\xe2\x82\xac");  // euro signs
  // Not UTF-8 (a run of continuation bytes): cut exactly at the limit.
  EXPECT_EQ(TruncateUtf8(std::string(8, '\x80'), 5).size(), 5u);
}

TEST(DeadLetterCodecTest, DecodeRejectsGarbageWithDataLoss) {
  for (std::string_view bad :
       {"", "not json", "[1,2]", "{\"received_ms\":\"soon\"}", "{\"position\":-1}", "{\"raw\":7}",
        "{\"raw_base64\":\"***\"}", "{\"source\":\"unterminated"}) {
    absl::StatusOr<DeadLetter> decoded = DecodeDeadLetter(bad);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << "input: " << bad;
  }
}

TEST(DeadLetterCodecTest, DecodeIgnoresUnknownKeysFromNewerWriters) {
  absl::StatusOr<DeadLetter> decoded =
      DecodeDeadLetter("{\"received_ms\":5,\"severity\":{\"a\":[1]},\"rule\":\"r\"}");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->received_ms, 5);
  EXPECT_EQ(decoded->rule, "r");
}

TEST(DeadLetterCodecTest, JsonExportIsValidJsonWithIdAndIsoTime) {
  JsonWriter out;
  out.BeginArray();
  WriteDeadLetterJson(out, StoredDeadLetter{"00ab", SampleLetter()});
  out.EndArray();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(out.str()).get(root), simdjson::SUCCESS) << out.str();
  simdjson::dom::element first = root.at(0);
  EXPECT_EQ(std::string_view(first["id"]), "00ab");
  EXPECT_EQ(std::string_view(first["received_at"]), "2019-11-01T00:00:00.123Z");
  EXPECT_EQ(int64_t(first["received_ms"]), 1572566400123);
  EXPECT_EQ(uint64_t(first["position"]), 18446744073709551615ULL);
  EXPECT_EQ(std::string_view(first["raw"]), SampleLetter().raw);
}

TEST(DeadLetterCodecTest, CsvLineQuotesOnlyWhereNeeded) {
  DeadLetter letter;
  letter.received_ms = 0;
  letter.source = "http";
  letter.position = 3;
  letter.user_id = "u1";
  letter.field = "price";
  letter.rule = "must be a number, >= 0";
  letter.raw = "a,\"b\"\nc";
  std::string line;
  AppendDeadLetterCsvLine(StoredDeadLetter{"ff", letter}, &line);
  EXPECT_EQ(line,
            "ff,0,1970-01-01T00:00:00.000Z,http,3,u1,price,\"must be a number, >= 0\","
            "\"a,\"\"b\"\"\nc\"\n");
  EXPECT_EQ(std::count(kDeadLetterCsvHeader.begin(), kDeadLetterCsvHeader.end(), ','), 8);
}

}  // namespace
}  // namespace persona
