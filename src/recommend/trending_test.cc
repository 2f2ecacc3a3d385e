#include "recommend/trending.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <functional>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/hash.h"
#include "common/varint.h"
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

// --- Parts: one per partition, combined at read time, saved and restored on their own. ---

struct PartEvent {
  uint32_t part;
  std::string item;
  EventType type;
  int64_t ts;
};

// Events on `items` items ("item-0" ...) over `span` half-lives, assigned to `parts` parts (as
// users hashed to partitions). Some land on whole half-lives with the same types, so that equal
// sums (ties) occur.
std::vector<PartEvent> PartEvents(uint32_t parts, uint32_t items, int64_t span, int count,
                                  uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<PartEvent> events;
  for (int i = 0; i < count; ++i) {
    const bool tie_prone = rng() % 4 == 0;
    const int64_t ts = tie_prone ? kT0 + static_cast<int64_t>(rng() % span) * kHour
                                 : kT0 + static_cast<int64_t>(rng() % (span * kHour));
    events.push_back({static_cast<uint32_t>(rng() % parts), "item-" + std::to_string(rng() % items),
                      tie_prone ? EventType::kView : static_cast<EventType>(rng() % 9), ts});
  }
  return events;
}

// Items "tie-0" ... "tie-19" that end with exactly equal sums, each from two parts (two events on
// whole half-lives: the parts' sums are powers of two and add exactly).
void AddTies(uint32_t parts, std::vector<PartEvent>* events) {
  for (uint32_t k = 0; k < 20; ++k) {
    const std::string item = "tie-" + std::to_string(k);
    events->push_back({k % parts, item, EventType::kView, kT0 + 10 * kHour});
    events->push_back({(k + 1) % parts, item, EventType::kView, kT0 + 50 * kHour});
  }
}

// An item string's category: a two-level tree, so that category lists are exercised too.
std::string CategoryOf(std::string_view item) {
  const size_t n = std::hash<std::string_view>{}(item);
  return "c" + std::to_string(n % 3) + ".s" + std::to_string(n % 5);
}

// A Trending with its own catalog, fed by item string.
struct Named {
  explicit Named(uint32_t parts, TrendingConfig config = HalfLife(kHour))
      : trending(&catalog, config, parts) {}
  void Add(const PartEvent& e) {
    trending.Add(e.part, catalog.Intern(e.item, CategoryOf(e.item)), e.type, e.ts);
  }
  // Top as (item string, exact score).
  std::vector<std::pair<std::string, double>> Top(std::string_view category, int64_t now) {
    trending.Invalidate();
    const uint32_t node = category.empty() ? ItemCatalog::kNone : catalog.FindCategory(category);
    std::vector<std::pair<std::string, double>> out;
    if (!category.empty() && node == ItemCatalog::kNone) return out;
    for (const Trending::Scored& s : trending.Top(1000, node, now)) {
      out.emplace_back(std::string(catalog.Item(s.item)), s.score);
    }
    return out;
  }
  double Score(std::string_view item, int64_t now) const {
    const uint32_t id = catalog.Find(item);
    return id == ItemCatalog::kNone ? 0 : trending.Score(id, now);
  }

  ItemCatalog catalog;
  Trending trending;
};

TrendingConfig Deep(TrendingConfig config) {
  config.snapshot_depth = 1000;
  return config;
}

// Exact equality of two Tops (items and score bits) over every category list.
void ExpectSameTops(Named& a, Named& b, int64_t now) {
  for (std::string_view category : {"", "c0", "c1", "c2", "c1.s3", "c0.s4"}) {
    ASSERT_EQ(a.Top(category, now), b.Top(category, now)) << "category '" << category << "'";
  }
}

void ExpectSameScores(const Named& a, const Named& b, uint32_t items, int64_t now) {
  for (uint32_t i = 0; i < items; ++i) {
    const std::string item = "item-" + std::to_string(i);
    ASSERT_EQ(std::bit_cast<uint64_t>(a.Score(item, now)),
              std::bit_cast<uint64_t>(b.Score(item, now)))
        << item;
  }
}

TEST(TrendingPartsTest, StreamSplitOverPartsSumsToTheWholeStreamInOnePart) {
  // 300 half-lives: every part rebases on its own, so the parts' anchors differ when combined.
  const int64_t span = 300;
  std::vector<PartEvent> events = PartEvents(3, 200, span, 20000, 21);
  // Part 2 sees only the last third: its anchor starts far later than the others'.
  for (PartEvent& e : events) {
    if (e.part == 2) e.ts = std::max(e.ts, kT0 + 2 * span / 3 * kHour);
  }
  Named whole(1, Deep(HalfLife(kHour)));
  Named split(3, Deep(HalfLife(kHour)));
  for (const PartEvent& e : events) {
    whole.Add({0, e.item, e.type, e.ts});
    split.Add(e);
  }
  EXPECT_EQ(split.trending.events(), whole.trending.events());
  const int64_t now = kT0 + span * kHour;
  for (uint32_t i = 0; i < 200; ++i) {
    const std::string item = "item-" + std::to_string(i);
    const double a = whole.Score(item, now);
    EXPECT_NEAR(split.Score(item, now), a, 1e-12 * a) << item;
  }
  for (std::string_view category : {"", "c0", "c1.s3"}) {
    const auto a = whole.Top(category, now);
    const auto b = split.Top(category, now);
    ASSERT_EQ(a.size(), b.size()) << category;
    ASSERT_GT(a.size(), 5u) << category;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(b[i].second, a[i].second, 1e-12 * a[i].second) << category << " " << i;
      // The same item where the ranking is not decided by rounding.
      const auto apart = [&](size_t j) {
        return j >= a.size() || std::abs(a[i].second - a[j].second) > 1e-9 * a[i].second;
      };
      if ((i == 0 || apart(i - 1)) && apart(i + 1)) {
        EXPECT_EQ(b[i].first, a[i].first) << category << " " << i;
      }
    }
  }
}

TEST(TrendingPartsTest, OnePartOfSeveralReadsAsASingleSum) {
  // Only part 1 is fed: the combination must be that part's sums exactly.
  Trending one(nullptr, HalfLife(kHour));
  Trending three(nullptr, HalfLife(kHour), 3);
  std::mt19937 rng(4);
  for (int i = 0; i < 5000; ++i) {
    const uint32_t item = rng() % 100;
    const int64_t ts = kT0 + static_cast<int64_t>(rng() % (150 * kHour));
    one.Add(item, EventType::kCart, ts);
    three.Add(1, item, EventType::kCart, ts);
  }
  three.Add(7, 1, EventType::kView, kT0);  // no such part: ignored
  EXPECT_EQ(three.events(), one.events());
  const int64_t now = kT0 + 150 * kHour;
  for (uint32_t item = 0; item < 100; ++item)
    ASSERT_EQ(three.Score(item, now), one.Score(item, now));
  const auto a = one.Top(50, ItemCatalog::kNone, now);
  const auto b = three.Top(50, ItemCatalog::kNone, now);
  ASSERT_EQ(Items(a), Items(b));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].score, b[i].score);
}

TEST(TrendingPartsTest, EqualScoresRankByItemStringNotByCatalogId) {
  ItemCatalog catalog;
  const uint32_t pear = catalog.Intern("pear", {});    // id 0
  const uint32_t apple = catalog.Intern("apple", {});  // id 1
  const uint32_t fig = catalog.Intern("fig", {});      // id 2
  Trending named(&catalog, HalfLife(kHour), 2);
  Trending anonymous(nullptr, HalfLife(kHour), 2);
  for (uint32_t item : {pear, apple, fig}) {
    named.Add(item % 2, item, EventType::kView, kT0);
    anonymous.Add(item % 2, item, EventType::kView, kT0);
  }
  EXPECT_EQ(Items(named.Top(10, ItemCatalog::kNone, kT0)),
            (std::vector<uint32_t>{apple, fig, pear}));
  EXPECT_EQ(Items(anonymous.Top(10, ItemCatalog::kNone, kT0)), (std::vector<uint32_t>{0, 1, 2}));
}

TEST(TrendingPartsTest, PartsInterleavedInAnyOrderGiveBitwiseIdenticalResults) {
  std::vector<PartEvent> events = PartEvents(3, 150, 200, 15000, 8);
  AddTies(3, &events);
  std::shuffle(events.begin(), events.end(), std::mt19937(5));
  std::vector<std::vector<PartEvent>> by_part(3);
  for (const PartEvent& e : events) by_part[e.part].push_back(e);

  // Part after part, with the catalog's ids assigned in reverse string order beforehand.
  Named sequential(3, Deep(HalfLife(kHour)));
  for (int i = 149; i >= 0; --i) {
    const std::string item = "item-" + std::to_string(i);
    sequential.catalog.Intern(item, CategoryOf(item));
  }
  for (int p = 2; p >= 0; --p) {
    for (const PartEvent& e : by_part[p]) sequential.Add(e);
  }
  // The stream's own interleaving.
  Named interleaved(3, Deep(HalfLife(kHour)));
  for (const PartEvent& e : events) interleaved.Add(e);
  // One writer thread per part, as partitions run, with a reader meanwhile.
  Named threaded(3, Deep(HalfLife(kHour)));
  {
    std::vector<std::thread> writers;
    for (uint32_t p = 0; p < 3; ++p) {
      writers.emplace_back([&, p] {
        for (size_t i = 0; i < by_part[p].size(); ++i) {
          threaded.Add(by_part[p][i]);
          if (i % 500 == 0) threaded.trending.Top(5, ItemCatalog::kNone, kT0);
        }
      });
    }
    for (std::thread& t : writers) t.join();
  }
  const int64_t now = kT0 + 200 * kHour;
  EXPECT_EQ(sequential.trending.events(), interleaved.trending.events());
  EXPECT_EQ(threaded.trending.events(), interleaved.trending.events());
  const auto top = interleaved.Top("", now);
  ASSERT_GT(top.size(), 150u);
  EXPECT_EQ(
      std::count_if(top.begin(), top.end(),
                    [&](const auto& e) { return e.second == interleaved.Score("tie-0", now); }),
      20);
  ExpectSameScores(sequential, interleaved, 150, now);
  ExpectSameScores(threaded, interleaved, 150, now);
  ExpectSameTops(sequential, interleaved, now);
  ExpectSameTops(threaded, interleaved, now);
}

TEST(TrendingPartsTest, SavedPartsLoadIntoAFreshCatalogAndContinueExactly) {
  std::vector<PartEvent> events = PartEvents(3, 120, 400, 12000, 9);
  AddTies(3, &events);
  const std::vector<PartEvent> later = PartEvents(3, 140, 50, 3000, 10);
  Named original(3, Deep(HalfLife(kHour)));
  for (const PartEvent& e : events) original.Add(e);

  // A fresh process: the catalog is restored first (items with their categories) in another
  // order, so every id differs; then each part is loaded from its own blob.
  Named restored(3, Deep(HalfLife(kHour)));
  for (int i = 200; i >= 0; --i) restored.catalog.Intern("unrelated-" + std::to_string(i), {});
  for (int i = 119; i >= 0; --i) {
    for (const std::string& item : {"item-" + std::to_string(i), "tie-" + std::to_string(i)}) {
      restored.catalog.Intern(item, CategoryOf(item));
    }
  }
  restored.Add({1, "item-3", EventType::kPurchase, kT0});  // stale content the load replaces
  for (uint32_t p = 0; p < 3; ++p) {
    std::string blob = "prefix";  // SavePart appends
    original.trending.SavePart(p, &blob);
    ASSERT_GT(blob.size(), 6u);
    ASSERT_TRUE(restored.trending.LoadPart(p, std::string_view(blob).substr(6)).ok()) << p;
  }
  EXPECT_EQ(restored.trending.events(), original.trending.events());
  const int64_t now = kT0 + 400 * kHour;
  ExpectSameScores(restored, original, 120, now);
  ExpectSameTops(restored, original, now);
  ExpectSameTops(restored, original, now + 1234567);

  // Both go on with the same events (beyond 128 half-lives: the parts rebase): still identical.
  for (PartEvent e : later) {
    e.ts += 450 * kHour;
    original.Add(e);
    restored.Add(e);
  }
  ExpectSameScores(restored, original, 140, now + 500 * kHour);
  ExpectSameTops(restored, original, now + 500 * kHour);

  // An empty part round-trips to an empty part.
  Named empty(2);
  std::string blob;
  empty.trending.SavePart(1, &blob);
  ASSERT_TRUE(restored.trending.LoadPart(0, blob).ok());
  EXPECT_LT(restored.trending.events(), original.trending.events());
}

TEST(TrendingPartsTest, LoadingPartsWhileReadersRunIsSafe) {
  Named source(2, HalfLife(kHour));
  for (const PartEvent& e : PartEvents(2, 50, 300, 3000, 14)) source.Add(e);
  std::string blobs[2];
  for (uint32_t p = 0; p < 2; ++p) source.trending.SavePart(p, &blobs[p]);
  Named target(2, HalfLife(kHour));
  for (int i = 49; i >= 0; --i) {
    const std::string item = "item-" + std::to_string(i);
    target.catalog.Intern(item, CategoryOf(item));
  }
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      target.trending.Invalidate();
      target.trending.Top(10, ItemCatalog::kNone, kT0);
      target.Score("item-7", kT0);
      std::string saved;
      target.trending.SavePart(1, &saved);
    }
  });
  for (int round = 0; round < 50; ++round) {
    for (uint32_t p = 0; p < 2; ++p) ASSERT_TRUE(target.trending.LoadPart(p, blobs[p]).ok());
    target.Add({static_cast<uint32_t>(round % 2), "item-1", EventType::kView, kT0});
  }
  for (uint32_t p = 0; p < 2; ++p) ASSERT_TRUE(target.trending.LoadPart(p, blobs[p]).ok());
  done.store(true);
  reader.join();
  ExpectSameScores(target, source, 50, kT0 + 300 * kHour);
  ExpectSameTops(target, source, kT0 + 300 * kHour);
}

// Replaces the trailing checksum so that a corrupted body reaches the parser.
std::string Reseal(std::string body) {
  AppendFixed64(&body, Hash64(body));
  return body;
}

TEST(TrendingPartsTest, CorruptOrTruncatedPartsAreRejectedAndLeaveThePartUnchanged) {
  Named source(2, HalfLife(kHour));
  for (const PartEvent& e : PartEvents(2, 30, 20, 400, 12)) source.Add(e);
  std::string blob;
  source.trending.SavePart(1, &blob);
  const std::string body = blob.substr(0, blob.size() - 8);

  Named reference(2, HalfLife(kHour));  // holds part 1 only
  ASSERT_TRUE(reference.trending.LoadPart(1, blob).ok());
  Named target(2, HalfLife(kHour));
  ASSERT_TRUE(target.trending.LoadPart(1, blob).ok());
  const auto unchanged = [&] {
    ExpectSameScores(target, reference, 30, kT0 + 20 * kHour);
    ExpectSameTops(target, reference, kT0 + 20 * kHour);
    EXPECT_EQ(target.trending.events(), reference.trending.events());
  };
  for (size_t n = 0; n < blob.size(); ++n) {
    const absl::Status status = target.trending.LoadPart(1, std::string_view(blob).substr(0, n));
    ASSERT_EQ(status.code(), absl::StatusCode::kDataLoss) << n;
    // Truncated behind a valid checksum: the parser itself must notice.
    if (n < body.size()) {
      ASSERT_FALSE(target.trending.LoadPart(1, Reseal(body.substr(0, n))).ok()) << n;
    }
  }
  unchanged();
  for (size_t i = 0; i < blob.size(); ++i) {
    for (const int flip : {0x01, 0x80, 0xff}) {
      std::string bad = blob;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      ASSERT_EQ(target.trending.LoadPart(1, bad).code(), absl::StatusCode::kDataLoss) << i;
    }
  }
  unchanged();
  // Garbage behind a valid checksum: an error or some valid content, never a crash.
  for (size_t i = 0; i < body.size(); ++i) {
    for (const int flip : {0x01, 0x40, 0x80, 0xff}) {
      std::string bad = body;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      (void)target.trending.LoadPart(1, Reseal(bad));
    }
  }
  EXPECT_EQ(target.trending.LoadPart(1, Reseal(body + "x")).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(target.trending.LoadPart(1, Reseal(std::string(64, '\xff'))).code(),
            absl::StatusCode::kDataLoss);

  ASSERT_TRUE(target.trending.LoadPart(1, blob).ok());
  unchanged();
  EXPECT_EQ(target.trending.LoadPart(2, blob).code(), absl::StatusCode::kInvalidArgument);
  Named other_half_life(2, HalfLife(2 * kHour));
  EXPECT_EQ(other_half_life.trending.LoadPart(1, blob).code(),
            absl::StatusCode::kFailedPrecondition);
  Trending no_catalog(nullptr, HalfLife(kHour), 2);
  EXPECT_EQ(no_catalog.LoadPart(1, blob).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace persona
