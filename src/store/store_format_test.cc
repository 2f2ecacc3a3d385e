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

TEST(StoreFormatTest, ProfileKeyIsPartitionThenGenerationThenUserAndRoundTripsAnyBytes) {
  const std::string user("u\0\xff:1", 5);
  const std::string key = EncodeProfileKey(7, 0x0102030405060708ULL, user);
  EXPECT_EQ(key, std::string("\x00\x07\x01\x02\x03\x04\x05\x06\x07\x08", 10) + user);
  EXPECT_EQ(key.substr(0, kProfileKeyPrefixSize),
            EncodeProfileGenerationPrefix(7, 0x0102030405060708ULL));
  const auto parts = DecodeProfileKey(key);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->generation, 0x0102030405060708ULL);
  EXPECT_EQ(parts->user_id, user);
  // The extremes survive too.
  for (uint64_t generation : {uint64_t{0}, ~uint64_t{0}}) {
    const std::string edge_key = EncodeProfileKey(kMaxPartitions - 1, generation, "x");
    const auto edge = DecodeProfileKey(edge_key);  // views into edge_key
    ASSERT_TRUE(edge.has_value());
    EXPECT_EQ(edge->generation, generation);
    EXPECT_EQ(edge->user_id, "x");
  }
}

TEST(StoreFormatTest, DecodeProfileKeyRejectsKeysShorterThanPartitionAndGeneration) {
  // A key this short cannot have come from EncodeProfileKey (e.g. a format-1 key, which had no
  // generation): it must not be read as a generation made of user id bytes.
  EXPECT_FALSE(DecodeProfileKey("").has_value());
  EXPECT_FALSE(DecodeProfileKey(std::string_view("\x00\x01", 2)).has_value());
  EXPECT_FALSE(DecodeProfileKey(std::string(kProfileKeyPrefixSize - 1, '\0')).has_value());
  // Exactly the header is a (degenerate) key with an empty user id; the store never writes one.
  const std::string header = EncodeProfileGenerationPrefix(3, 9);
  const auto empty_user = DecodeProfileKey(header);
  ASSERT_TRUE(empty_user.has_value());
  EXPECT_EQ(empty_user->generation, 9u);
  EXPECT_EQ(empty_user->user_id, "");
}

TEST(StoreFormatTest, ProfileKeysSortByGenerationThenUserWithinTheirPartition) {
  // ForEachProfile relies on this order (generation order, the newest version of a user last) and
  // on generation prefixes as range bounds (ForEachProfile's max_generation, DeleteProfilesAbove).
  const uint64_t generations[] = {0, 1, 255, 256, 1ULL << 32, ~0ULL - 1};
  for (uint32_t p : {0u, 1u, 255u, 256u, kMaxPartitions - 1}) {
    for (size_t i = 0; i + 1 < std::size(generations); ++i) {
      const uint64_t g = generations[i];
      const uint64_t next = generations[i + 1];
      EXPECT_LT(EncodeProfileKey(p, g, "a"), EncodeProfileKey(p, g, "b"));
      EXPECT_LT(EncodeProfileKey(p, g, std::string(100, '\xff')), EncodeProfileKey(p, next, ""))
          << "every user of generation " << g << " sorts before generation " << next;
      EXPECT_LE(EncodeProfileGenerationPrefix(p, g), EncodeProfileKey(p, g, ""));
      EXPECT_LT(EncodeProfileKey(p, g, "\xff\xff"), EncodeProfileGenerationPrefix(p, g + 1))
          << "generation g + 1's prefix bounds generation " << g;
    }
    EXPECT_LT(EncodeProfileKey(p, ~0ULL, "\xff\xff"), View(EncodePartitionPrefix(p + 1)))
        << "the next partition's prefix bounds every generation of partition " << p;
  }
}

TEST(StoreFormatTest, ProfileValueIsLabelThenBlob) {
  const std::string value = EncodeProfileValue(42, "blob");
  EXPECT_EQ(value, std::string("\0\0\0\0\0\0\0\x2a", 8) + "blob");
  const auto parts = DecodeProfileValue(value);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->label_seq, 42u);
  EXPECT_EQ(parts->blob, "blob");
  EXPECT_FALSE(DecodeProfileValue("short").has_value());
  EXPECT_TRUE(DecodeProfileValue(EncodeProfileValue(1, "")).has_value());
}

TEST(StoreFormatTest, AttributesKeyIsPrefixThenBinaryPartitionThenUser) {
  EXPECT_EQ(EncodeAttributesKey(0x0102, "ann"), std::string("attr/\x01\x02"
                                                            "ann",
                                                            10));
  // Partitions 255 and 256 differ in both prefix bytes; each one's keys stay inside
  // [attr/P, attr/P+1), the range ForEachAttributes scans, whatever bytes the user id has.
  for (uint32_t p : {0u, 1u, 255u, 256u, kMaxPartitions - 1}) {
    EXPECT_LT(EncodeAttributesKey(p, std::string(50, '\xff')), EncodeAttributesKey(p + 1, ""))
        << "partition " << p;
    EXPECT_LE(EncodeAttributesKey(p, ""), EncodeAttributesKey(p, std::string(1, '\0')));
  }
}

TEST(StoreFormatTest, OperatorStateKeyIsAsciiPartitionThenName) {
  EXPECT_EQ(EncodeOperatorStateKey(0, "tags"), "op/0/tags");
  EXPECT_EQ(EncodeOperatorStateKey(12, "recommend"), "op/12/recommend");
  // Partition 1's keys and partition 10's are distinct (the '/' ends the number).
  EXPECT_FALSE(EncodeOperatorStateKey(10, "x").starts_with(EncodeOperatorStateKey(1, "")));
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
