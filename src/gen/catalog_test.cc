#include "gen/catalog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gen/shape.h"

namespace persona::gen {
namespace {

TEST(CatalogTest, LeavesAreThreeLevelDottedPathsUnderTheirTopCategory) {
  const SyntheticCatalog catalog(20000, 12, 0.8, 1);
  EXPECT_EQ(catalog.top_count(), 12u);
  std::set<std::string> paths;
  std::set<uint32_t> tops;
  for (uint32_t l = 0; l < catalog.leaf_count(); ++l) {
    const CatalogLeaf& leaf = catalog.leaf(l);
    // c<t>.c<t>_<m>.c<t>_<m>_<k>: each level's name extends its parent's.
    const size_t dot1 = leaf.path.find('.');
    const size_t dot2 = leaf.path.find('.', dot1 + 1);
    ASSERT_NE(dot2, std::string::npos) << leaf.path;
    ASSERT_EQ(leaf.path.find('.', dot2 + 1), std::string::npos) << leaf.path;
    const std::string top = leaf.path.substr(0, dot1);
    const std::string mid = leaf.path.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string name = leaf.path.substr(dot2 + 1);
    EXPECT_EQ(top, "c" + std::to_string(leaf.top + 1));
    EXPECT_EQ(mid.rfind(top + "_", 0), 0u) << leaf.path;
    EXPECT_EQ(name.rfind(mid + "_", 0), 0u) << leaf.path;
    EXPECT_EQ(mid.find('_', top.size() + 1), std::string::npos) << leaf.path;
    EXPECT_EQ(name.find('_', mid.size() + 1), std::string::npos) << leaf.path;
    EXPECT_TRUE(paths.insert(leaf.path).second) << "duplicate " << leaf.path;
    tops.insert(leaf.top);
    EXPECT_GE(leaf.brands.size(), 2u);
    EXPECT_GE(leaf.words.size(), 6u);
  }
  EXPECT_EQ(tops.size(), 12u);
  // 12 tops x 3..8 mids x 2..10 leaves.
  EXPECT_GE(catalog.leaf_count(), 12u * 3 * 2);
  EXPECT_LE(catalog.leaf_count(), 12u * 8 * 10);
}

TEST(CatalogTest, LeafRangesPartitionTheItemsAndItemIdsAreABijection) {
  const SyntheticCatalog catalog(5000, 6, 0.8, 2);
  ASSERT_EQ(catalog.item_count(), 5000u);
  uint32_t expected_begin = 0;
  for (uint32_t l = 0; l < catalog.leaf_count(); ++l) {
    const CatalogLeaf& leaf = catalog.leaf(l);
    EXPECT_EQ(leaf.item_begin, expected_begin);
    for (uint32_t i = leaf.item_begin; i < leaf.item_end; ++i) ASSERT_EQ(catalog.item_leaf(i), l);
    expected_begin = leaf.item_end;
  }
  EXPECT_EQ(expected_begin, 5000u);
  std::vector<bool> seen(5001, false);
  std::vector<bool> rank_seen(5000, false);
  for (uint32_t i = 0; i < catalog.item_count(); ++i) {
    const uint32_t number = catalog.item_number(i);
    ASSERT_GE(number, 1u);
    ASSERT_LE(number, 5000u);
    ASSERT_FALSE(seen[number]) << "item number " << number << " used twice";
    seen[number] = true;
    ASSERT_FALSE(rank_seen[catalog.item_popularity_rank(i)]);
    rank_seen[catalog.item_popularity_rank(i)] = true;
  }
}

TEST(CatalogTest, EveryTopCategoryHasItemsEvenInATinyCatalog) {
  const SyntheticCatalog catalog(12, 12, 0.8, 3);
  std::vector<int> per_top(12, 0);
  for (uint32_t i = 0; i < catalog.item_count(); ++i) {
    ++per_top[catalog.leaf(catalog.item_leaf(i)).top];
  }
  for (int t = 0; t < 12; ++t) EXPECT_GE(per_top[t], 1) << "top " << t;
  Rng rng(1);
  for (int k = 0; k < 1000; ++k) {
    const uint32_t l = catalog.SampleLeaf(rng);
    ASSERT_TRUE(catalog.LeafHasItems(l));
    const uint32_t item = catalog.SampleItemInLeaf(l, rng);
    ASSERT_EQ(catalog.item_leaf(item), l);
  }
}

TEST(CatalogTest, PricesAreLogNormalPerLeafAndPremiumIsTheTopFifth) {
  const SyntheticCatalog catalog(200000, 12, 0.8, 4);
  int leaves_checked = 0;
  for (uint32_t l = 0; l < catalog.leaf_count(); ++l) {
    const CatalogLeaf& leaf = catalog.leaf(l);
    const uint32_t n = leaf.item_end - leaf.item_begin;
    if (n < 400) continue;
    std::vector<double> logs;
    int premium = 0;
    for (uint32_t i = leaf.item_begin; i < leaf.item_end; ++i) {
      logs.push_back(std::log(catalog.item_price_cents(i) / 100.0));
      premium += catalog.item_price_cents(i) >= leaf.premium_cents;
    }
    double mean = 0, var = 0;
    for (double x : logs) mean += x;
    mean /= n;
    for (double x : logs) var += (x - mean) * (x - mean);
    const double sigma = std::sqrt(var / n);
    EXPECT_NEAR(mean, leaf.log_price_mu, 4 * leaf.log_price_sigma / std::sqrt(n)) << leaf.path;
    EXPECT_NEAR(sigma, leaf.log_price_sigma, 0.15 * leaf.log_price_sigma) << leaf.path;
    EXPECT_NEAR(static_cast<double>(premium) / n, 0.2, 0.06) << leaf.path;
    ++leaves_checked;
  }
  EXPECT_GE(leaves_checked, 20);
}

TEST(CatalogTest, LeafThenItemSamplingGivesZipfPopularityByRank) {
  constexpr double kExponent = 0.8;
  const SyntheticCatalog catalog(50000, 12, kExponent, 5);
  std::vector<uint32_t> rank_count(50000, 0);
  Rng rng(6);
  constexpr int kN = 2000000;
  for (int k = 0; k < kN; ++k) {
    const uint32_t item = catalog.SampleItemInLeaf(catalog.SampleLeaf(rng), rng);
    ++rank_count[catalog.item_popularity_rank(item)];
  }
  // count(rank r) / count(rank 1) = r^-s exactly in expectation; check ranks with large counts.
  for (uint32_t r : {2u, 5u, 10u, 50u, 100u}) {
    const double expected = std::pow(static_cast<double>(r), -kExponent);
    const double got = static_cast<double>(rank_count[r - 1]) / rank_count[0];
    EXPECT_NEAR(got, expected, 0.08 * expected) << "rank " << r;
  }
}

TEST(CatalogTest, SameSeedBuildsTheSameCatalog) {
  const SyntheticCatalog a(3000, 5, 0.8, 9), b(3000, 5, 0.8, 9), c(3000, 5, 0.8, 10);
  ASSERT_EQ(a.leaf_count(), b.leaf_count());
  for (uint32_t l = 0; l < a.leaf_count(); ++l) EXPECT_EQ(a.leaf(l).path, b.leaf(l).path);
  bool differs = a.leaf_count() != c.leaf_count();
  for (uint32_t i = 0; i < 3000; ++i) {
    ASSERT_EQ(a.item_number(i), b.item_number(i));
    ASSERT_EQ(a.item_price_cents(i), b.item_price_cents(i));
    differs |= a.item_price_cents(i) != c.item_price_cents(i);
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace persona::gen
