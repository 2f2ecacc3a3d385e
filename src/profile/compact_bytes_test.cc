#include "profile/compact_bytes.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

TEST(VarintTest, RoundTripsBoundaryValues) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{16383},
                     uint64_t{16384}, uint64_t{1} << 35, UINT64_MAX}) {
    uint8_t buf[kMaxVarintBytes];
    const size_t n = PutVarint(buf, v);
    EXPECT_EQ(n, VarintLength(v));
    uint64_t back = 0;
    EXPECT_EQ(GetVarint(buf, buf + n, &back), buf + n);
    EXPECT_EQ(back, v);
  }
}

TEST(VarintTest, TruncatedOrOverlongInputIsRejectedWithoutReadingPastEnd) {
  uint8_t buf[kMaxVarintBytes];
  const size_t n = PutVarint(buf, uint64_t{1} << 40);
  uint64_t v;
  EXPECT_EQ(GetVarint(buf, buf + n - 1, &v), nullptr);
  uint8_t overlong[11];
  std::fill(std::begin(overlong), std::end(overlong), 0x80);
  EXPECT_EQ(GetVarint(overlong, overlong + 11, &v), nullptr);
}

TEST(ZigZagTest, SmallNegativeNumbersStaySmall) {
  EXPECT_EQ(ZigZag(0), 0u);
  EXPECT_EQ(ZigZag(-1), 1u);
  EXPECT_EQ(ZigZag(1), 2u);
  for (int64_t v : {int64_t{-5}, int64_t{123456789}, INT64_MIN, INT64_MAX}) {
    EXPECT_EQ(UnZigZag(ZigZag(v)), v);
  }
}

std::string Str(const CompactBytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
const uint8_t* U(const char* s) { return reinterpret_cast<const uint8_t*>(s); }

TEST(CompactBytesTest, ReplaceInsertsErasesAndOverwrites) {
  CompactBytes b;
  EXPECT_EQ(b.HeapBytes(), 0u);
  b.Append(U("hello world"), 11);
  b.Insert(5, U(","), 1);
  EXPECT_EQ(Str(b), "hello, world");
  b.Replace(7, 5, U("there"), 5);
  EXPECT_EQ(Str(b), "hello, there");
  b.Erase(0, 7);
  EXPECT_EQ(Str(b), "there");
  b.Replace(0, 5, U("a"), 1);
  EXPECT_EQ(Str(b), "a");
  b.Truncate(0);
  EXPECT_TRUE(b.empty());
}

TEST(CompactBytesTest, GrowthIsAmortisedAndCapacityFillsMallocChunks) {
  CompactBytes b;
  size_t reallocations = 0;
  size_t capacity = 0;
  const uint8_t byte = 7;
  for (int i = 0; i < 10000; ++i) {
    b.Append(&byte, 1);
    if (b.capacity() != capacity) ++reallocations;
    capacity = b.capacity();
    EXPECT_EQ((capacity + 8) % 16, 0u);
  }
  EXPECT_LT(reallocations, 40u);  // ~25% growth: logarithmic, not linear
  EXPECT_EQ(b.HeapBytes(), MallocChunkBytes(b.capacity()));
}

TEST(CompactBytesTest, CopyIsDeepAndShrinkToFitKeepsContents) {
  CompactBytes a;
  a.Append(U("abcdefghijklmnopqrstuvwxyz0123456789"), 36);
  CompactBytes b = a;
  b.Erase(0, 10);
  EXPECT_EQ(Str(a).size(), 36u);
  EXPECT_EQ(Str(b), "klmnopqrstuvwxyz0123456789");
  b.ShrinkToFit();
  EXPECT_EQ(Str(b), "klmnopqrstuvwxyz0123456789");
  EXPECT_EQ(b.capacity(), 40u);
}

}  // namespace
}  // namespace persona
