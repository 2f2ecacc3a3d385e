#include "common/hash.h"

#include <gtest/gtest.h>

namespace persona {
namespace {

// Vectors from Apache Kafka's UtilsTest.testMurmur2: external producers compute these.
TEST(KafkaMurmur2Test, MatchesKafkasJavaClient) {
  EXPECT_EQ(KafkaMurmur2("21"), -973932308);
  EXPECT_EQ(KafkaMurmur2("foobar"), -790332482);
  EXPECT_EQ(KafkaMurmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(KafkaMurmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(KafkaMurmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(KafkaMurmur2("abc"), 479470107);
}

TEST(KafkaMurmur2Test, PartitionIsPositiveModulo) {
  // murmur2("21") is negative: the sign bit is masked before the modulo, as Java's toPositive.
  EXPECT_EQ(KafkaPartitionOf("21", 12), (static_cast<uint32_t>(-973932308) & 0x7fffffffu) % 12);
  EXPECT_EQ(KafkaPartitionOf("anything", 1), 0u);
  EXPECT_EQ(KafkaPartitionOf("anything", 0), 0u);
}

}  // namespace
// librdkafka's consistent partitioner: CRC-32 (IEEE, as zlib) of the key, modulo the count.
TEST(KafkaCrc32Test, IsTheStandardCrc32ModuloPartitions) {
  // The CRC-32 check value: crc32("123456789") = 0xCBF43926.
  EXPECT_EQ(KafkaCrc32PartitionOf("123456789", 1u << 31), 0xCBF43926u % (1u << 31));
  EXPECT_EQ(KafkaCrc32PartitionOf("123456789", 12), 0xCBF43926u % 12);
  EXPECT_EQ(KafkaCrc32PartitionOf("", 7), 0u);
  EXPECT_EQ(KafkaCrc32PartitionOf("anything", 0), 0u);
}

}  // namespace persona
