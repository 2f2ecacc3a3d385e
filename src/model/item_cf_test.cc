#include "model/item_cf.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

// Feeds a user's items in order, each with the user's earlier items most recent first.
void AddSequence(ItemCf& cf, const std::vector<uint32_t>& sequence, uint32_t window = 5) {
  std::vector<uint32_t> previous;
  for (uint32_t item : sequence) {
    cf.Add(item, previous);
    previous.insert(previous.begin(), item);
    if (previous.size() > window) previous.pop_back();
  }
}

// Users who each browse a few random pairs (2k, 2k+1), the two items of a pair back to back in
// random order: a pair always co-occurs, other items only by chance.
void AddPlantedPairs(ItemCf& cf, uint32_t pairs, uint32_t users) {
  std::mt19937 rng(42);
  for (uint32_t u = 0; u < users; ++u) {
    std::vector<uint32_t> sequence;
    for (int p = 0; p < 4; ++p) {
      const uint32_t pair = rng() % pairs;
      const uint32_t first = 2 * pair + rng() % 2;
      sequence.push_back(first);
      sequence.push_back(first ^ 1);
    }
    AddSequence(cf, sequence);
  }
}

std::vector<uint32_t> Items(const std::vector<ItemCf::Neighbour>& neighbours) {
  std::vector<uint32_t> items;
  for (const ItemCf::Neighbour& n : neighbours) items.push_back(n.item);
  return items;
}

TEST(ItemCfTest, SimilarityIsCosineWithShrinkage) {
  ItemCfConfig config;
  config.shrink = 2;
  ItemCf cf(config);
  cf.Add(0, std::vector<uint32_t>{1});
  // c = 1, n(0) = n(1) = 1: 1 / sqrt(1 * 1) * 1 / (1 + 2).
  ASSERT_EQ(cf.Similar(0, 10).size(), 1u);
  EXPECT_FLOAT_EQ(cf.Similar(0, 10)[0].similarity, 1.0f / 3);
  EXPECT_EQ(cf.Similar(1, 10)[0].item, 0u);  // symmetric
  cf.Add(0, std::vector<uint32_t>{2});
  // Now n(0) = 2: sim(0, 1) = 1 / sqrt(2) / 3.
  EXPECT_FLOAT_EQ(cf.Similar(1, 10)[0].similarity, 1.0f / std::sqrt(2.0f) / 3);
  EXPECT_TRUE(cf.Similar(7, 10).empty());
  EXPECT_TRUE(cf.Similar(7000000, 10).empty());  // beyond any allocated storage
}

TEST(ItemCfTest, AddUsesTheWindowAndSkipsTheItemAndRepeats) {
  ItemCfConfig config;
  config.window = 5;
  ItemCf cf(config);
  cf.Add(0, std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(cf.pairs(), 5u);
  EXPECT_EQ(cf.items(), 6u);
  const std::vector<uint32_t> neighbours = Items(cf.Similar(0, 10));
  EXPECT_EQ(neighbours, (std::vector<uint32_t>{1, 2, 3, 4, 5}));  // nearer = heavier
  ItemCf repeats(config);
  repeats.Add(0, std::vector<uint32_t>{0, 1, 1, 2, 0});
  EXPECT_EQ(repeats.pairs(), 2u);
  repeats.Add(0, std::vector<uint32_t>{});
  repeats.Add(0, std::vector<uint32_t>{1}, 0.0f);  // zero weight records nothing
  EXPECT_EQ(repeats.pairs(), 2u);
}

TEST(ItemCfTest, PlantedCoOccurringPairsAreEachOthersNearestNeighbour) {
  ItemCf cf;
  AddPlantedPairs(cf, /*pairs=*/100, /*users=*/2000);
  for (uint32_t item = 0; item < 200; ++item) {
    const auto similar = cf.Similar(item, 5);
    ASSERT_FALSE(similar.empty()) << item;
    EXPECT_EQ(similar[0].item, item ^ 1) << "item " << item;
    for (size_t i = 1; i < similar.size(); ++i) {
      EXPECT_GE(similar[i - 1].similarity, similar[i].similarity);
    }
  }
}

TEST(ItemCfTest, BrandNewItemHasNeighboursAfterOneCoInteraction) {
  ItemCfConfig config;
  config.max_neighbours = 4;
  ItemCf cf(config);
  AddPlantedPairs(cf, 10, 500);  // item 0's counters are all taken
  ASSERT_EQ(cf.Similar(0, 100).size(), 4u);
  cf.Add(1000, std::vector<uint32_t>{0});
  EXPECT_EQ(Items(cf.Similar(1000, 10)), (std::vector<uint32_t>{0}));
  EXPECT_EQ(Items(cf.Similar(0, 100)).size(), 4u);
  const std::vector<uint32_t> of_zero = Items(cf.Similar(0, 100));
  EXPECT_NE(std::find(of_zero.begin(), of_zero.end(), 1000u), of_zero.end());
  EXPECT_EQ(of_zero[0], 1u);  // the planted partner survives the newcomer
}

TEST(ItemCfTest, BoundedNeighboursKeepHeavyPairsThroughChurnOfLightPairs) {
  ItemCfConfig config;
  config.max_neighbours = 10;
  ItemCf cf(config);
  // Item 0 meets 1, 2, 3 often and 4000 one-off items once each. Space-Saving keeps every
  // neighbour heavier than total / max_neighbours (here 667 > 6000 / 10).
  for (uint32_t step = 0; step < 4000; ++step) {
    cf.Add(0, std::vector<uint32_t>{1000 + step});
    if (step % 2 == 0) cf.Add(0, std::vector<uint32_t>{1 + (step / 2) % 3});
  }
  const auto similar = cf.Similar(0, 1000);
  EXPECT_LE(similar.size(), 10u);
  ASSERT_GE(similar.size(), 3u);
  std::vector<uint32_t> top3 = {similar[0].item, similar[1].item, similar[2].item};
  std::sort(top3.begin(), top3.end());
  EXPECT_EQ(top3, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_GT(similar[2].similarity, 10 * similar.back().similarity);
  // Each light item still points back at 0.
  EXPECT_EQ(Items(cf.Similar(1000 + 3999, 5)), (std::vector<uint32_t>{0}));
  EXPECT_EQ(cf.pairs(), 6000u);
}

TEST(ItemCfTest, RecommendSkipsHistoryAndExcludedItemsAndNamesTheSource) {
  ItemCf cf;
  AddPlantedPairs(cf, 100, 2000);
  const std::vector<uint32_t> history = {2, 10};  // 2 is the most recent
  auto recs = cf.Recommend(history, 5);
  ASSERT_GE(recs.size(), 2u);
  EXPECT_EQ(recs[0].item, 3u);
  EXPECT_EQ(recs[0].because, 2u);
  EXPECT_EQ(recs[1].item, 11u);
  EXPECT_EQ(recs[1].because, 10u);
  EXPECT_GT(recs[0].score, recs[1].score);
  for (const ItemCf::Scored& r : recs) {
    EXPECT_NE(r.item, 2u);
    EXPECT_NE(r.item, 10u);
  }

  const std::vector<uint32_t> exclude = {3, 50};
  recs = cf.Recommend(history, 5, exclude);
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs[0].item, 11u);
  for (const ItemCf::Scored& r : recs) EXPECT_NE(r.item, 3u);

  // Both halves of a pair in the history: neither is proposed back.
  const std::vector<uint32_t> both = {4, 5};
  for (const ItemCf::Scored& r : cf.Recommend(both, 20)) {
    EXPECT_NE(r.item, 4u);
    EXPECT_NE(r.item, 5u);
  }
  // depth 1: only the most recent item's neighbours.
  for (const ItemCf::Scored& r : cf.Recommend(history, 100, {}, /*depth=*/1)) {
    EXPECT_EQ(r.because, 2u);
  }
  EXPECT_TRUE(cf.Recommend(std::vector<uint32_t>{}, 5).empty());
  EXPECT_EQ(cf.Recommend(history, 1).size(), 1u);
}

TEST(ItemCfTest, ConcurrentAddsFromFourThreadsEqualTheSameAddsOnOneThread) {
  ItemCfConfig config;
  config.max_neighbours = 1000;  // no eviction: every count is exact
  config.distance_decay = 0.5f;  // dyadic weights sum exactly in any order
  std::mt19937 rng(5);
  std::vector<std::vector<uint32_t>> users(400);
  for (auto& sequence : users) {
    for (int i = 0; i < 30; ++i) sequence.push_back(rng() % 500);
  }
  ItemCf single(config);
  for (const auto& sequence : users) AddSequence(single, sequence);

  // A user's events stay in order on one thread, as with partition writers.
  ItemCf shared(config);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t u = t; u < users.size(); u += 4) {
        AddSequence(shared, users[u]);
        if (u % 20 == 0) shared.Recommend(users[u], 10);  // readers meanwhile
      }
    });
  }
  for (std::thread& th : threads) th.join();

  EXPECT_EQ(shared.pairs(), single.pairs());
  EXPECT_EQ(shared.items(), single.items());
  for (uint32_t item = 0; item < 500; ++item) {
    const auto a = single.Similar(item, 1000);
    const auto b = shared.Similar(item, 1000);
    ASSERT_EQ(a.size(), b.size()) << item;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].item, b[i].item) << item;
      ASSERT_EQ(a[i].similarity, b[i].similarity) << item;
    }
  }
}

TEST(ItemCfTest, MemoryIsBoundedByMaxNeighbours) {
  ItemCfConfig config;
  config.max_neighbours = 8;
  ItemCf cf(config);
  for (uint32_t step = 0; step < 2000; ++step) cf.Add(0, std::vector<uint32_t>{1 + step % 50});
  const size_t after_churn = cf.MemoryBytes();
  for (uint32_t step = 0; step < 20000; ++step) cf.Add(0, std::vector<uint32_t>{1 + step % 50});
  EXPECT_EQ(cf.MemoryBytes(), after_churn);
  EXPECT_LE(cf.Similar(0, 100).size(), 8u);
}

}  // namespace
}  // namespace persona
