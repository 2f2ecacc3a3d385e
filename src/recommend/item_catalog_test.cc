#include "recommend/item_catalog.h"

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

using ::testing::ElementsAre;

std::vector<std::string_view> LineageNames(const ItemCatalog& catalog, uint32_t category) {
  std::vector<std::string_view> names;
  for (uint32_t node : catalog.CategoryLineage(category)) {
    names.push_back(catalog.CategoryName(node));
  }
  return names;
}

TEST(ItemCatalogTest, IdsAreDenseInFirstSightOrderAndRoundTrip) {
  ItemCatalog catalog;
  EXPECT_EQ(catalog.Intern("sku-b", {}), 0u);
  EXPECT_EQ(catalog.Intern("sku-a", {}), 1u);
  EXPECT_EQ(catalog.Intern("sku-b", {}), 0u);
  EXPECT_EQ(catalog.Intern("", {}), 2u);  // the empty string is an item like any other
  EXPECT_EQ(catalog.size(), 3u);
  EXPECT_EQ(catalog.Find("sku-a"), 1u);
  EXPECT_EQ(catalog.Find("sku-c"), ItemCatalog::kNone);
  EXPECT_EQ(catalog.Item(0), "sku-b");
  EXPECT_EQ(catalog.Item(1), "sku-a");
  EXPECT_EQ(catalog.Item(2), "");
  EXPECT_EQ(catalog.CategoryOf(0), ItemCatalog::kNone);
}

TEST(ItemCatalogTest, EveryDottedPrefixIsANodeWithItsLineage) {
  ItemCatalog catalog;
  const uint32_t phone = catalog.Intern("phone", "electronics.audio.headphones");
  const uint32_t node = catalog.CategoryOf(phone);
  ASSERT_NE(node, ItemCatalog::kNone);
  EXPECT_EQ(catalog.CategoryName(node), "electronics.audio.headphones");
  EXPECT_THAT(LineageNames(catalog, node),
              ElementsAre("electronics.audio.headphones", "electronics.audio", "electronics"));
  EXPECT_EQ(catalog.category_count(), 3u);

  // A sibling shares the ancestors instead of duplicating them.
  const uint32_t tv = catalog.Intern("tv", "electronics.video");
  EXPECT_EQ(catalog.category_count(), 4u);
  EXPECT_THAT(LineageNames(catalog, catalog.CategoryOf(tv)),
              ElementsAre("electronics.video", "electronics"));
  EXPECT_EQ(catalog.CategoryLineage(catalog.CategoryOf(tv))[1],
            catalog.FindCategory("electronics"));

  // A flat category id is a single root node; empty segments add no node.
  const uint32_t book = catalog.Intern("book", "1234");
  EXPECT_THAT(LineageNames(catalog, catalog.CategoryOf(book)), ElementsAre("1234"));
  const uint32_t odd = catalog.Intern("odd", "a..b");
  EXPECT_THAT(LineageNames(catalog, catalog.CategoryOf(odd)), ElementsAre("a..b", "a"));

  EXPECT_EQ(catalog.FindCategory("electronics.audio"), catalog.CategoryLineage(node)[1]);
  EXPECT_EQ(catalog.FindCategory("electronics.aud"), ItemCatalog::kNone);
  EXPECT_TRUE(catalog.CategoryLineage(ItemCatalog::kNone).empty());
  EXPECT_EQ(catalog.CategoryName(ItemCatalog::kNone), "");
}

TEST(ItemCatalogTest, LatestNonEmptyCategoryWins) {
  ItemCatalog catalog;
  const uint32_t id = catalog.Intern("x", "a.b");
  EXPECT_EQ(catalog.Intern("x", {}), id);
  EXPECT_EQ(catalog.CategoryName(catalog.CategoryOf(id)), "a.b");
  EXPECT_EQ(catalog.Intern("x", "c"), id);
  EXPECT_EQ(catalog.CategoryName(catalog.CategoryOf(id)), "c");
  // An item first seen without a category gets one later.
  const uint32_t late = catalog.Intern("y", {});
  EXPECT_EQ(catalog.CategoryOf(late), ItemCatalog::kNone);
  catalog.Intern("y", "a.b");
  EXPECT_EQ(catalog.CategoryOf(late), catalog.FindCategory("a.b"));
}

TEST(ItemCatalogTest, ConcurrentInternFromFourThreadsGivesEachStringOneId) {
  constexpr int kThreads = 4;
  constexpr int kItems = 20000;
  std::vector<std::string> names;
  for (int i = 0; i < kItems; ++i) names.push_back("item-" + std::to_string(i));

  ItemCatalog catalog;
  std::vector<std::vector<uint32_t>> seen(kThreads, std::vector<uint32_t>(kItems));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int> order(kItems);
      for (int i = 0; i < kItems; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), std::mt19937(t));
      for (int i : order) {
        seen[t][i] = catalog.Intern(names[i], "cat." + std::to_string(i % 7));
      }
    });
  }
  for (std::thread& th : threads) th.join();

  ASSERT_EQ(catalog.size(), static_cast<size_t>(kItems));
  std::vector<bool> used(kItems, false);
  for (int i = 0; i < kItems; ++i) {
    const uint32_t id = seen[0][i];
    for (int t = 1; t < kThreads; ++t) ASSERT_EQ(seen[t][i], id) << names[i];
    ASSERT_LT(id, static_cast<uint32_t>(kItems));
    ASSERT_FALSE(used[id]) << "id " << id << " given twice";
    used[id] = true;
    ASSERT_EQ(catalog.Item(id), names[i]);
    ASSERT_EQ(catalog.Find(names[i]), id);
    ASSERT_EQ(catalog.CategoryName(catalog.CategoryOf(id)), "cat." + std::to_string(i % 7));
  }
  EXPECT_EQ(catalog.category_count(), 8u);  // "cat" and its 7 children
}

}  // namespace
}  // namespace persona
