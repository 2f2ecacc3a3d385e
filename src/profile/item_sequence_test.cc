#include "profile/item_sequence.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int64_t kT0 = 1511500000;  // seconds

struct Seen {
  int64_t ts_s;
  EventType type;
  uint32_t code;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> All(const ItemSequence& s) {
  std::vector<Seen> out;
  s.ForEach([&](const ItemSequence::Item& i) { out.push_back({i.ts_s, i.type, i.code}); });
  return out;
}

TEST(ItemSequenceTest, AppendsInTimeOrderAtSecondResolution) {
  ItemSequence s;
  s.Add(kT0 * 1000 + 999, EventType::kView, 5, 10);
  s.Add((kT0 + 60) * 1000, EventType::kCart, 6, 10);
  s.Add((kT0 + 60) * 1000, EventType::kPurchase, 6, 10);
  EXPECT_EQ(All(s), (std::vector<Seen>{{kT0, EventType::kView, 5},
                                       {kT0 + 60, EventType::kCart, 6},
                                       {kT0 + 60, EventType::kPurchase, 6}}));
}

TEST(ItemSequenceTest, KeepsLatestNAndDropsOldestFirst) {
  ItemSequence s;
  for (uint32_t i = 0; i < 100; ++i) s.Add((kT0 + i) * 1000, EventType::kView, i, 20);
  EXPECT_EQ(s.size(), 20u);
  const std::vector<Seen> kept = All(s);
  EXPECT_EQ(kept.front().code, 80u);
  EXPECT_EQ(kept.back().code, 99u);
  EXPECT_EQ(kept.front().ts_s, kT0 + 80);
}

TEST(ItemSequenceTest, LateEventIsInsertedAtItsTimePosition) {
  ItemSequence s;
  s.Add((kT0 + 10) * 1000, EventType::kView, 1, 5);
  s.Add((kT0 + 30) * 1000, EventType::kView, 3, 5);
  s.Add((kT0 + 20) * 1000, EventType::kCart, 2, 5);  // between
  s.Add((kT0 + 5) * 1000, EventType::kFav, 0, 5);    // before all
  s.Add((kT0 + 30) * 1000, EventType::kView, 4, 5);  // equal time: after the earlier arrival
  EXPECT_EQ(All(s), (std::vector<Seen>{{kT0 + 5, EventType::kFav, 0},
                                       {kT0 + 10, EventType::kView, 1},
                                       {kT0 + 20, EventType::kCart, 2},
                                       {kT0 + 30, EventType::kView, 3},
                                       {kT0 + 30, EventType::kView, 4}}));
}

TEST(ItemSequenceTest, LateEventOlderThanAllKeptIsDroppedWhenFull) {
  ItemSequence s;
  for (uint32_t i = 0; i < 3; ++i) s.Add((kT0 + 10 * i) * 1000, EventType::kView, i, 3);
  s.Add((kT0 - 100) * 1000, EventType::kView, 99, 3);  // older than all 3: dropped
  EXPECT_EQ(All(s).front().code, 0u);
  s.Add((kT0 + 15) * 1000, EventType::kView, 42, 3);  // newer than the oldest: evicts it
  EXPECT_EQ(All(s), (std::vector<Seen>{{kT0 + 10, EventType::kView, 1},
                                       {kT0 + 15, EventType::kView, 42},
                                       {kT0 + 20, EventType::kView, 2}}));
}

TEST(ItemSequenceTest, EntriesCostAboutFiveBytes) {
  ItemSequence s;
  // A taobao-like user: item codes in the tens of thousands, a few minutes apart.
  for (uint32_t i = 0; i < 100; ++i) s.Add((kT0 + 90 * i) * 1000, EventType::kView, 40000 + i, 200);
  // 2 bytes of (delta << 4 | type) + 3 of code, plus at most a quarter of growth slack.
  EXPECT_LE(s.HeapBytes(), 100u * 5 * 5 / 4 + 16);
  EXPECT_EQ(s.size(), 100u);
}

TEST(ItemSequenceTest, RandomArrivalOrderKeepsTheLatestNInTimeOrder) {
  // 500 events at distinct seconds, added in a scrambled order, limit 50: the result is the 50
  // latest in time order no matter what (late ones older than the kept 50 are dropped).
  ItemSequence s;
  for (uint32_t i = 0; i < 500; ++i) {
    const uint32_t t = (i * 7919) % 500;
    s.Add((kT0 + t) * 1000, EventType::kView, t, 50);
  }
  const std::vector<Seen> kept = All(s);
  ASSERT_EQ(kept.size(), 50u);
  for (uint32_t i = 0; i < 50; ++i) EXPECT_EQ(kept[i].code, 450 + i);
}

// The backward reader must agree with the forward one whatever the sequence went through:
// appends, late inserts (which rewrite a head), lazy drops of the oldest entries, and codes and
// time gaps of every varint length.
TEST(ItemSequenceTest, NewestFirstCodesAreTheForwardCodesReversed) {
  std::mt19937 rng(11);
  for (uint32_t limit : {1u, 3u, 16u, 200u}) {
    ItemSequence s;
    int64_t t = kT0;
    for (int i = 0; i < 3000; ++i) {
      const bool late = rng() % 5 == 0;
      t += static_cast<int64_t>(rng() % 3 == 0 ? rng() % 5000000 : rng() % 100);
      const int64_t ts = late ? t - static_cast<int64_t>(rng() % 100000) : t;
      const uint32_t code = rng() % 4 == 0 ? rng() : rng() % 300;
      s.Add(ts * 1000, static_cast<EventType>(rng() % 3), code, limit);
      std::vector<uint32_t> forward;
      for (const Seen& e : All(s)) forward.push_back(e.code);
      std::vector<uint32_t> backward;
      s.ForEachCodeNewestFirst([&](uint32_t c) {
        backward.push_back(c);
        return true;
      });
      ASSERT_EQ(backward, std::vector<uint32_t>(forward.rbegin(), forward.rend()))
          << "limit " << limit << " after " << i + 1 << " adds";
      // Stopping early visits exactly the newest entries.
      size_t visited = 0;
      s.ForEachCodeNewestFirst([&](uint32_t) { return ++visited < 2; });
      ASSERT_EQ(visited, std::min<size_t>(2, forward.size()));
    }
  }
}

}  // namespace
}  // namespace persona
