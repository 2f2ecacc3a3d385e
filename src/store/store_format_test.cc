#include "store/store_format.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace persona {
namespace {

std::string_view View(const auto& array) { return {array.data(), array.size()}; }

TEST(StoreFormatTest, LogKeyIsPartitionThenSeqBigEndian) {
  const LogKey key = EncodeLogKey(0x0102, 0x030405060708090aULL);
  EXPECT_EQ(View(key), std::string_view("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a", 10));
  const auto parts = DecodeLogKey(View(key));
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->partition, 0x0102u);
  EXPECT_EQ(parts->seq, 0x030405060708090aULL);
}

TEST(StoreFormatTest, LogKeysSortLikePartitionThenSeq) {
  // RocksDB compares keys bytewise; big-endian makes that the numeric order, which the log's range
  // scans and LastSeq depend on.
  const uint64_t seqs[] = {0, 1, 255, 256, 65535, 65536, 1ULL << 32, ~0ULL};
  for (uint32_t p : {0u, 1u, 255u, 256u, kMaxPartitions - 1}) {
    for (size_t i = 0; i + 1 < std::size(seqs); ++i) {
      EXPECT_LT(View(EncodeLogKey(p, seqs[i])), View(EncodeLogKey(p, seqs[i + 1])))
          << "partition " << p << " seq " << seqs[i];
    }
    EXPECT_LT(View(EncodeLogKey(p, ~0ULL)), View(EncodePartitionPrefix(p + 1)))
        << "the next partition's prefix must bound partition " << p;
    EXPECT_LT(View(EncodePartitionPrefix(p)), View(EncodeLogKey(p, 0)));
  }
}

TEST(StoreFormatTest, DecodeLogKeyRejectsWrongLength) {
  EXPECT_FALSE(DecodeLogKey("").has_value());
  EXPECT_FALSE(DecodeLogKey(std::string(9, 'a')).has_value());
  EXPECT_FALSE(DecodeLogKey(std::string(11, 'a')).has_value());
}

TEST(StoreFormatTest, ProfileKeyAndValueRoundTripAnyBytes) {
  const std::string user("u\0\xff:1", 5);
  const std::string key = EncodeProfileKey(7, user);
  EXPECT_EQ(key.substr(0, 2), std::string("\x00\x07", 2));
  EXPECT_EQ(DecodeProfileKeyUser(key), user);

  const std::string value = EncodeProfileValue(42, "blob");
  EXPECT_EQ(value, std::string("\0\0\0\0\0\0\0\x2a", 8) + "blob");
  const auto parts = DecodeProfileValue(value);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->label_seq, 42u);
  EXPECT_EQ(parts->blob, "blob");
  EXPECT_FALSE(DecodeProfileValue("short").has_value());
  EXPECT_TRUE(DecodeProfileValue(EncodeProfileValue(1, "")).has_value());
}

TEST(StoreFormatTest, CheckpointKeyIsAsciiAndValueCarriesSeq) {
  EXPECT_EQ(EncodeCheckpointKey(12), "ckpt/12");
  const std::string value = EncodeCheckpointValue(99, "meta");
  const auto parts = DecodeCheckpointValue(value);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->seq, 99u);
  EXPECT_EQ(parts->meta_blob, "meta");
  EXPECT_FALSE(DecodeCheckpointValue("1234567").has_value());
}

TEST(StoreFormatTest, DeadLetterKeysSortByTimeThenCounter) {
  EXPECT_LT(View(EncodeDeadLetterKey(1000, 5)), View(EncodeDeadLetterKey(1001, 0)));
  EXPECT_LT(View(EncodeDeadLetterKey(1000, 5)), View(EncodeDeadLetterKey(1000, 6)));
  // A clock before 1970 must not make a letter sort after every real one.
  EXPECT_LT(View(EncodeDeadLetterKey(-5, 0)), View(EncodeDeadLetterKey(1, 0)));
  const auto parts = DecodeDeadLetterKey(View(EncodeDeadLetterKey(1572566400000, 77)));
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->received_ms, 1572566400000u);
  EXPECT_EQ(parts->counter, 77u);
  EXPECT_FALSE(DecodeDeadLetterKey("too short").has_value());
}

TEST(StoreFormatTest, HexRoundTripsAndRejectsNonHex) {
  const std::string bytes("\x00\x01\xab\xff", 4);
  EXPECT_EQ(HexEncode(bytes), "0001abff");
  EXPECT_EQ(HexDecode("0001abff"), bytes);
  EXPECT_EQ(HexDecode("0001ABFF"), bytes);
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
  EXPECT_EQ(HexDecode(""), std::string());
}

}  // namespace
}  // namespace persona
