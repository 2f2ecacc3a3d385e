#include "model/trending.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kT0 = 472222 * kHour;  // Nov 2023, on a whole hour

struct TestEvent {
  uint32_t item;
  EventType type;
  int64_t ts;
};

std::vector<uint32_t> Items(const std::vector<Trending::Scored>& top) {
  std::vector<uint32_t> items;
  for (const Trending::Scored& s : top) items.push_back(s.item);
  return items;
}

TrendingConfig HalfLife(int64_t ms) {
  TrendingConfig config;
  config.half_life_ms = ms;
  config.refresh_ms = 0;  // every Top sees the latest sums
  return config;
}

TEST(TrendingTest, SameEventsInAnyOrderGiveTheSameScores) {
  std::mt19937 rng(7);
  std::vector<TestEvent> events;
  for (int i = 0; i < 20000; ++i) {
    events.push_back({static_cast<uint32_t>(rng() % 300), static_cast<EventType>(rng() % 9),
                      kT0 + static_cast<int64_t>(rng() % (200 * kHour))});
  }
  Trending in_order(nullptr, HalfLife(kHour));  // spans 200 half-lives: rebases on the way
  Trending shuffled(nullptr, HalfLife(kHour));
  std::sort(events.begin(), events.end(),
            [](const TestEvent& a, const TestEvent& b) { return a.ts < b.ts; });
  for (const TestEvent& e : events) in_order.Add(e.item, e.type, e.ts);
  std::shuffle(events.begin(), events.end(), rng);
  for (const TestEvent& e : events) shuffled.Add(e.item, e.type, e.ts);

  const int64_t now = kT0 + 200 * kHour;
  int positive = 0;
  for (uint32_t item = 0; item < 300; ++item) {
    const double a = in_order.Score(item, now);
    const double b = shuffled.Score(item, now);
    EXPECT_NEAR(a, b, 1e-12 * std::max(1.0, std::abs(a))) << "item " << item;
    positive += a > 0;
  }
  EXPECT_GT(positive, 250);
  EXPECT_EQ(Items(in_order.Top(50, ItemCatalog::kNone, now)),
            Items(shuffled.Top(50, ItemCatalog::kNone, now)));
  EXPECT_EQ(in_order.events(), shuffled.events());
}

TEST(TrendingTest, ScoreHalvesAfterEachHalfLife) {
  Trending trending(nullptr, HalfLife(kHour));
  trending.Add(3, EventType::kPurchase, kT0);  // weight 5
  const double at_event = trending.Score(3, kT0);
  // One event counts as weight * ln 2 "events per half-life" at its own time (the decayed sum
  // of a steady rate r is r * half_life / ln 2).
  EXPECT_NEAR(at_event, 5 * std::numbers::ln2, 1e-12);
  EXPECT_NEAR(trending.Score(3, kT0 + kHour), at_event / 2, 1e-12);
  EXPECT_NEAR(trending.Score(3, kT0 + 3 * kHour), at_event / 8, 1e-12);
  EXPECT_NEAR(trending.Score(3, kT0 + kHour / 2), at_event / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(trending.Score(4, kT0), 0.0);
  EXPECT_EQ(trending.Score(1000000, kT0), 0.0);  // never seen, no storage
}

TEST(TrendingTest, RemovalsAndSearchesDoNotCount) {
  Trending trending(nullptr, HalfLife(kHour));
  trending.Add(1, EventType::kRemoveCart, kT0);
  trending.Add(1, EventType::kRefund, kT0);
  trending.Add(1, EventType::kSearch, kT0);
  EXPECT_EQ(trending.Score(1, kT0), 0.0);
  EXPECT_TRUE(trending.Top(10, ItemCatalog::kNone, kT0).empty());
}

TEST(TrendingTest, RecentEventsOutrankOlderOnesAndTopIsBestFirst) {
  Trending trending(nullptr, HalfLife(kHour));
  for (int i = 0; i < 3; ++i) trending.Add(1, EventType::kView, kT0);              // 3 views, old
  for (int i = 0; i < 2; ++i) trending.Add(2, EventType::kView, kT0 + 4 * kHour);  // 2, recent
  trending.Add(3, EventType::kView, kT0 + 4 * kHour);
  const auto top = trending.Top(10, ItemCatalog::kNone, kT0 + 4 * kHour);
  EXPECT_EQ(Items(top), (std::vector<uint32_t>{2, 3, 1}));
  EXPECT_NEAR(top[0].score, 2 * std::numbers::ln2, 1e-12);
  EXPECT_NEAR(top[2].score, 3 * std::numbers::ln2 / 16, 1e-12);
  EXPECT_EQ(Items(trending.Top(1, ItemCatalog::kNone, kT0)), (std::vector<uint32_t>{2}));
}

TEST(TrendingTest, CategoryTopListsHoldTheNodeAndItsDescendantsOnly) {
  ItemCatalog catalog;
  const uint32_t headphones = catalog.Intern("headphones", "electronics.audio");
  const uint32_t speaker = catalog.Intern("speaker", "electronics.audio");
  const uint32_t tv = catalog.Intern("tv", "electronics.video");
  const uint32_t novel = catalog.Intern("novel", "books");
  const uint32_t loose = catalog.Intern("loose", {});
  Trending trending(&catalog, HalfLife(kHour));
  for (uint32_t item : {headphones, speaker, speaker, tv, tv, tv, novel, novel, novel, novel, loose,
                        loose, loose, loose, loose}) {
    trending.Add(item, EventType::kView, kT0);
  }
  const auto top = [&](std::string_view category) {
    return Items(trending.Top(10, catalog.FindCategory(category), kT0));
  };
  EXPECT_EQ(top("electronics"), (std::vector<uint32_t>{tv, speaker, headphones}));
  EXPECT_EQ(top("electronics.audio"), (std::vector<uint32_t>{speaker, headphones}));
  EXPECT_EQ(top("electronics.video"), (std::vector<uint32_t>{tv}));
  EXPECT_EQ(top("books"), (std::vector<uint32_t>{novel}));
  EXPECT_EQ(Items(trending.Top(10, ItemCatalog::kNone, kT0)),
            (std::vector<uint32_t>{loose, novel, tv, speaker, headphones}));
  EXPECT_TRUE(trending.Top(10, 999, kT0).empty());  // no such node
}

TEST(TrendingTest, TopServesTheSnapshotUntilRefreshOrInvalidate) {
  TrendingConfig config = HalfLife(kHour);
  config.refresh_ms = 60 * 1000;  // far longer than the test
  Trending trending(nullptr, config);
  trending.Add(1, EventType::kView, kT0);
  EXPECT_EQ(Items(trending.Top(10, ItemCatalog::kNone, kT0)), (std::vector<uint32_t>{1}));
  trending.Add(2, EventType::kPurchase, kT0);
  EXPECT_EQ(Items(trending.Top(10, ItemCatalog::kNone, kT0)), (std::vector<uint32_t>{1}));
  EXPECT_GT(trending.Score(2, kT0), 0);  // Score reads the live sums
  trending.Invalidate();
  EXPECT_EQ(Items(trending.Top(10, ItemCatalog::kNone, kT0)), (std::vector<uint32_t>{2, 1}));

  config.refresh_ms = 20;
  Trending quick(nullptr, config);
  quick.Add(1, EventType::kView, kT0);
  EXPECT_EQ(Items(quick.Top(10, ItemCatalog::kNone, kT0)), (std::vector<uint32_t>{1}));
  quick.Add(2, EventType::kPurchase, kT0);
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_EQ(Items(quick.Top(10, ItemCatalog::kNone, kT0)), (std::vector<uint32_t>{2, 1}));
}

TEST(TrendingTest, TopIsCappedBySnapshotDepth) {
  TrendingConfig config = HalfLife(kHour);
  config.snapshot_depth = 5;
  Trending trending(nullptr, config);
  for (uint32_t item = 0; item < 20; ++item) {
    for (uint32_t n = 0; n <= item; ++n) trending.Add(item, EventType::kView, kT0);
  }
  EXPECT_EQ(Items(trending.Top(100, ItemCatalog::kNone, kT0)),
            (std::vector<uint32_t>{19, 18, 17, 16, 15}));
}

TEST(TrendingTest, RebaseKeepsScoresAndRankings) {
  // Events over 1000 half-lives force several rebases (one every 128 half-lives); every score
  // must still match the closed form sum of w * 2^((t - now) / half_life) * ln 2.
  const int64_t half_life = 1000;
  Trending trending(nullptr, HalfLife(half_life));
  std::mt19937 rng(3);
  std::vector<double> expected(50, 0.0);
  const int64_t now = kT0 + 1000 * half_life;
  for (int64_t step = 0; step < 1000; ++step) {
    const int64_t ts = kT0 + step * half_life + static_cast<int64_t>(rng() % half_life);
    for (int j = 0; j < 3; ++j) {
      const uint32_t item = rng() % 50;
      trending.Add(item, EventType::kView, ts);
      expected[item] += std::exp2(static_cast<double>(ts - now) / half_life) * std::numbers::ln2;
    }
  }
  std::vector<uint32_t> want(50);
  for (uint32_t i = 0; i < 50; ++i) want[i] = i;
  std::sort(want.begin(), want.end(), [&](uint32_t a, uint32_t b) {
    return expected[a] != expected[b] ? expected[a] > expected[b] : a < b;
  });
  for (uint32_t item = 0; item < 50; ++item) {
    EXPECT_NEAR(trending.Score(item, now), expected[item], 1e-9 * expected[item] + 1e-300);
  }
  const auto top = trending.Top(10, ItemCatalog::kNone, now);
  ASSERT_EQ(top.size(), 10u);
  EXPECT_EQ(Items(top), std::vector<uint32_t>(want.begin(), want.begin() + 10));
  EXPECT_NEAR(top[0].score, expected[want[0]], 1e-9 * expected[want[0]]);
}

TEST(TrendingTest, ConcurrentAddsEqualTheSameAddsOnOneThread) {
  constexpr int kThreads = 4;
  std::mt19937 rng(11);
  std::vector<TestEvent> events;
  for (int i = 0; i < 40000; ++i) {
    // Integer weights at whole half-lives sum exactly in any order.
    events.push_back({static_cast<uint32_t>(rng() % 1000), EventType::kView,
                      kT0 + static_cast<int64_t>(rng() % 4) * kHour});
  }
  Trending single(nullptr, HalfLife(kHour));
  for (const TestEvent& e : events) single.Add(e.item, e.type, e.ts);
  Trending shared(nullptr, HalfLife(kHour));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < events.size(); i += kThreads) {
        shared.Add(events[i].item, events[i].type, events[i].ts);
        if (i % 1000 == 0) shared.Top(5, ItemCatalog::kNone, kT0);  // readers meanwhile
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(shared.events(), single.events());
  for (uint32_t item = 0; item < 1000; ++item) {
    ASSERT_EQ(shared.Score(item, kT0 + 4 * kHour), single.Score(item, kT0 + 4 * kHour));
  }
}

}  // namespace
}  // namespace persona
