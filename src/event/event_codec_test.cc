#include "event/event_codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <deque>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/varint.h"
#include "event/testing/event_testing.h"

namespace persona {
namespace {

// --- varint (common/varint.h; tested here because the codec is its first user) ---

TEST(VarintTest, RoundTripsBoundaryValuesWithTheExpectedLength) {
  const struct {
    uint64_t value;
    size_t bytes;
  } cases[] = {{0, 1},           {127, 1},
               {128, 2},         {16383, 2},
               {16384, 3},       {(1ull << 35) - 1, 5},
               {1ull << 63, 10}, {std::numeric_limits<uint64_t>::max(), 10}};
  for (const auto& c : cases) {
    std::string buf;
    AppendVarint64(&buf, c.value);
    EXPECT_EQ(buf.size(), c.bytes) << c.value;
    buf += "tail";
    std::string_view in = buf;
    uint64_t v = 0;
    ASSERT_TRUE(ReadVarint64(&in, &v));
    EXPECT_EQ(v, c.value);
    EXPECT_EQ(in, "tail");
  }
}

TEST(VarintTest, TruncatedOverlongAndOverflowingEncodingsAreRejected) {
  std::string buf;
  AppendVarint64(&buf, std::numeric_limits<uint64_t>::max());
  for (size_t n = 0; n < buf.size(); ++n) {
    std::string_view in(buf.data(), n);
    uint64_t v = 0;
    EXPECT_FALSE(ReadVarint64(&in, &v)) << n;
    EXPECT_EQ(in.size(), n) << "must not consume on failure";
  }
  const std::string overlong(11, '\x80');
  std::string_view in = overlong;
  uint64_t v = 0;
  EXPECT_FALSE(ReadVarint64(&in, &v));
  // Ten bytes whose last carries more than the one remaining bit overflow 64 bits.
  const std::string overflow = std::string(9, '\xff') + '\x02';
  in = overflow;
  EXPECT_FALSE(ReadVarint64(&in, &v));
}

TEST(VarintTest, ZigZagKeepsSmallMagnitudesSmall) {
  EXPECT_EQ(ZigZagEncode64(0), 0u);
  EXPECT_EQ(ZigZagEncode64(-1), 1u);
  EXPECT_EQ(ZigZagEncode64(1), 2u);
  EXPECT_EQ(ZigZagEncode64(-2), 3u);
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max(), int64_t{1569888000000}}) {
    EXPECT_EQ(ZigZagDecode64(ZigZagEncode64(v)), v);
  }
}

TEST(Fixed64Test, IsLittleEndianAndRejectsShortInput) {
  std::string buf;
  AppendFixed64(&buf, 0x0102030405060708ull);
  EXPECT_EQ(buf, std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  std::string_view in(buf.data(), 7);
  uint64_t v = 0;
  EXPECT_FALSE(ReadFixed64(&in, &v));
  in = buf;
  ASSERT_TRUE(ReadFixed64(&in, &v));
  EXPECT_EQ(v, 0x0102030405060708ull);
}

// --- event records ---

// Random events over every field, with strings that include NUL, 0xFF and long runs.
class RandomEvents {
 public:
  explicit RandomEvents(uint64_t seed) : rng_(seed) {}

  Event Next() {
    Event e;
    e.type = static_cast<EventType>(Uniform(0, kEventTypeCount - 1));
    e.ts_ms = Coin(4) ? static_cast<int64_t>(rng_()) : Uniform(946684800000, 2000000000000);
    e.id_hash = rng_();
    e.user_id = Coin(20) ? std::string_view() : String();
    for (auto member :
         {&Event::event_id, &Event::item_id, &Event::category_id, &Event::category_path,
          &Event::brand, &Event::order_id, &Event::query, &Event::text, &Event::session_id,
          &Event::device, &Event::rec_id, &Event::attrs_json}) {
      if (Coin(2)) e.*member = String();
    }
    if (Coin(2)) {
      const double specials[] = {0.0,    -0.0, 1e308,
                                 5e-324, -3.5, std::numeric_limits<double>::infinity()};
      e.price = Coin(3) ? specials[Uniform(0, 5)]
                        : std::uniform_real_distribution<double>(0, 10000)(rng_);
    }
    if (Coin(2)) {
      e.quantity = static_cast<int32_t>(Coin(5) ? static_cast<int32_t>(rng_()) : Uniform(1, 10));
    }
    if (Coin(2)) e.rating = static_cast<int8_t>(Uniform(-128, 127));
    return e;
  }

 private:
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Coin(int one_in) { return Uniform(0, one_in - 1) == 0; }
  std::string_view String() {
    const size_t n = Coin(50) ? Uniform(128, 3000) : Uniform(1, 24);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(Uniform(0, 255));
    storage_.push_back(std::move(s));
    return storage_.back();
  }

  std::mt19937_64 rng_;
  std::deque<std::string> storage_;  // a deque never moves its elements, so views stay valid
};

Event FullEvent() {
  Event e;
  e.event_id = "e-1";
  e.id_hash = 0xfeedfacecafebeefull;
  e.user_id = "user-42";
  e.type = EventType::kPurchase;
  e.ts_ms = 1569888000123;
  e.item_id = "item-7";
  e.category_id = "2053013552326770905";
  e.category_path = "electronics.audio.headphones";
  e.brand = "acme";
  e.order_id = "o-9";
  e.query = "wireless headphones";
  e.text = "great";
  e.session_id = "s-1";
  e.device = "ios";
  e.rec_id = "rec-3";
  e.attrs_json = R"({"color":"red"})";
  e.price = 99.95;
  e.quantity = 2;
  e.rating = 5;
  return e;
}

TEST(EventCodecTest, FullAndMinimalEventsRoundTrip) {
  for (const Event& original : {FullEvent(), Event()}) {
    std::string buf;
    AppendEventRecord(original, &buf);
    std::string_view in = buf;
    Event decoded;
    ASSERT_TRUE(ReadEventRecord(&in, &decoded));
    EXPECT_TRUE(in.empty());
    ExpectSameEvent(decoded, original);
  }
}

TEST(EventCodecTest, DecodedStringsPointIntoTheInputBuffer) {
  std::string buf;
  AppendEventRecord(FullEvent(), &buf);
  std::string_view in = buf;
  Event decoded;
  ASSERT_TRUE(ReadEventRecord(&in, &decoded));
  EXPECT_GE(decoded.user_id.data(), buf.data());
  EXPECT_LE(decoded.attrs_json.data() + decoded.attrs_json.size(), buf.data() + buf.size());
}

TEST(EventCodecTest, TypicalViewIsCompact) {
  Event e;
  e.user_id = "1000169";
  e.item_id = "1328010";
  e.category_id = "959452";
  e.ts_ms = 1511544070000;
  e.id_hash = 0x1234567890abcdefull;
  e.quantity = 1;
  std::string buf;
  AppendEventRecord(e, &buf);
  // mask 1 + type 1 + ts 6 + hash 8 + three 1-byte lengths + 20 bytes of ids + quantity 1.
  EXPECT_EQ(buf.size(), 40u);
}

TEST(EventCodecTest, MatchesTheDocumentedExampleByteForByte) {
  // docs/log_format.md, "Event record": if this fails, the log format changed.
  Event e;
  e.user_id = "u1";
  e.item_id = "i9";
  e.type = EventType::kView;
  e.ts_ms = 1569888000000;
  e.quantity = 1;
  e.id_hash = 0x0123456789abcdefull;
  std::string buf;
  AppendEventRecord(e, &buf);
  const unsigned char expected[] = {0x03, 0x00, 0x80, 0xe0, 0xee, 0xc9, 0xb0, 0x5b,
                                    0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
                                    0x02, 0x75, 0x31, 0x02, 0x02, 0x69, 0x39};
  EXPECT_EQ(buf, std::string(reinterpret_cast<const char*>(expected), sizeof expected));
}

TEST(EventCodecTest, TenThousandRandomEventsRoundTripBackToBack) {
  RandomEvents gen(20191001);
  std::vector<Event> originals;
  std::string log;
  for (int i = 0; i < 10000; ++i) {
    originals.push_back(gen.Next());
    AppendEventRecord(originals.back(), &log);
  }
  std::string_view in = log;
  for (const Event& original : originals) {
    Event decoded;
    ASSERT_TRUE(ReadEventRecord(&in, &decoded));
    ExpectSameEvent(decoded, original);
    if (::testing::Test::HasFailure()) return;  // one diff is enough
  }
  EXPECT_TRUE(in.empty());
}

TEST(EventCodecTest, EveryTruncationIsRejectedAndConsumesNothing) {
  RandomEvents gen(7);
  std::vector<Event> events = {FullEvent()};
  for (int i = 0; i < 50; ++i) events.push_back(gen.Next());
  for (const Event& e : events) {
    std::string buf;
    AppendEventRecord(e, &buf);
    for (size_t n = 0; n < buf.size(); ++n) {
      // A fresh heap copy of exactly n bytes lets ASan catch any read past the end.
      const auto copy = std::make_unique<char[]>(n == 0 ? 1 : n);
      std::memcpy(copy.get(), buf.data(), n);
      std::string_view in(copy.get(), n);
      Event decoded;
      EXPECT_FALSE(ReadEventRecord(&in, &decoded)) << n << " of " << buf.size();
      EXPECT_EQ(in.size(), n);
    }
  }
}

TEST(EventCodecTest, CorruptFieldsAreRejected) {
  std::string good;
  AppendEventRecord(FullEvent(), &good);
  Event decoded;
  auto decodes = [&](const std::string& bytes) {
    std::string_view in = bytes;
    return ReadEventRecord(&in, &decoded);
  };
  ASSERT_TRUE(decodes(good));

  std::string unknown_bit;
  AppendVarint64(&unknown_bit, 1u << 15);
  unknown_bit += good.substr(3);  // the full event's 15-bit mask takes 3 bytes
  EXPECT_FALSE(decodes(unknown_bit));

  Event e;
  e.user_id = "u";
  std::string bad_type;
  AppendEventRecord(e, &bad_type);
  bad_type[1] = static_cast<char>(kEventTypeCount);
  EXPECT_FALSE(decodes(bad_type));

  // A present price whose bits are NaN cannot come from the encoder.
  e.price = 1.0;
  std::string nan_price;
  AppendEventRecord(e, &nan_price);
  const uint64_t nan_bits = std::bit_cast<uint64_t>(std::numeric_limits<double>::quiet_NaN());
  for (int i = 0; i < 8; ++i) {
    nan_price[nan_price.size() - 8 + i] = static_cast<char>(nan_bits >> (8 * i));
  }
  EXPECT_FALSE(decodes(nan_price));

  // A present quantity of zero, or a present string of length zero, is not canonical.
  std::string zero_quantity;
  AppendVarint64(&zero_quantity, 1u << 0);
  zero_quantity += std::string("\0\0", 2) + std::string(8, '\0') + std::string("\0\0", 2);
  EXPECT_FALSE(decodes(zero_quantity));
  std::string empty_item;
  AppendVarint64(&empty_item, 1u << 1);
  empty_item += std::string("\0\0", 2) + std::string(8, '\0') + std::string("\0\0", 2);
  EXPECT_FALSE(decodes(empty_item));
}

TEST(EventCodecTest, RandomGarbageNeverCrashesAndViewsStayInBounds) {
  std::mt19937_64 rng(99);
  std::string valid;
  AppendEventRecord(FullEvent(), &valid);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 64);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = valid;  // flip a few bytes of a valid record
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    const auto copy = std::make_unique<char[]>(bytes.size() + 1);
    std::memcpy(copy.get(), bytes.data(), bytes.size());
    std::string_view in(copy.get(), bytes.size());
    Event e;
    while (ReadEventRecord(&in, &e)) {
      for (std::string_view s : {e.user_id, e.item_id, e.attrs_json, e.text}) {
        if (s.empty()) continue;
        EXPECT_GE(s.data(), copy.get());
        EXPECT_LE(s.data() + s.size(), copy.get() + bytes.size());
      }
    }
  }
}

}  // namespace
}  // namespace persona
