#include "gen/population.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <string>
#include <vector>

namespace persona::gen {
namespace {

GenOptions Options() {
  GenOptions o;
  o.users = 40000;
  o.items = 20000;
  o.events = 400000;
  o.shift_fraction = 0.05;
  o.high_spender_fraction = 0.02;
  o.bot_fraction = 0.01;
  return o;
}

TEST(PopulationTest, RolesFollowTheConfiguredFractions) {
  const GenOptions o = Options();
  const SyntheticCatalog catalog(o.items, o.top_categories, o.item_zipf, 1);
  const SyntheticPopulation population(o, catalog);
  ASSERT_EQ(population.size(), o.users);
  int counts[4] = {};
  for (uint32_t u = 0; u < population.size(); ++u) {
    ++counts[static_cast<int>(population.user(u).role)];
  }
  const double n = static_cast<double>(o.users);
  EXPECT_NEAR(counts[static_cast<int>(UserRole::kShift)] / n, 0.05, 0.005);
  EXPECT_NEAR(counts[static_cast<int>(UserRole::kHighSpender)] / n, 0.02, 0.003);
  EXPECT_NEAR(counts[static_cast<int>(UserRole::kBot)] / n, 0.01, 0.002);
}

TEST(PopulationTest, ShiftedUsersMoveBetweenTopLevelBranchesInsideTheSpan) {
  const GenOptions o = Options();
  const SyntheticCatalog catalog(o.items, o.top_categories, o.item_zipf, 1);
  const SyntheticPopulation population(o, catalog);
  int shifted = 0;
  for (uint32_t u = 0; u < population.size(); ++u) {
    const PlannedUser& p = population.user(u);
    if (p.role != UserRole::kShift) continue;
    ++shifted;
    EXPECT_NE(catalog.leaf(p.shift_from_leaf).top, catalog.leaf(p.shift_to_leaf).top);
    EXPECT_TRUE(catalog.LeafHasItems(p.shift_from_leaf));
    EXPECT_TRUE(catalog.LeafHasItems(p.shift_to_leaf));
    EXPECT_GE(p.shift_at_ms, o.start_ms + static_cast<int64_t>(0.3 * o.span_ms));
    EXPECT_LE(p.shift_at_ms, o.start_ms + static_cast<int64_t>(0.7 * o.span_ms));
    // Active enough to show the shift on both sides of it.
    EXPECT_GE(p.expected_events, 1.5 * o.events / o.users);
  }
  EXPECT_GT(shifted, 0);
}

TEST(PopulationTest, ExpectedEventsAddUpToTheRequestedCountWithAHeavyTail) {
  const GenOptions o = Options();
  const SyntheticCatalog catalog(o.items, o.top_categories, o.item_zipf, 1);
  const SyntheticPopulation population(o, catalog);
  double total = 0;
  std::vector<double> browsers;
  for (uint32_t u = 0; u < population.size(); ++u) {
    total += population.user(u).expected_events;
    if (population.user(u).role == UserRole::kBrowser) {
      browsers.push_back(population.user(u).expected_events);
    }
  }
  EXPECT_NEAR(total, static_cast<double>(o.events), 1e-3 * o.events);
  std::sort(browsers.begin(), browsers.end());
  const double median = browsers[browsers.size() / 2];
  const double p90 = browsers[browsers.size() * 9 / 10];
  const double p10 = browsers[browsers.size() / 10];
  // Log-normal, sigma 1: p90/p10 = exp(2.56) ~ 13 (taobao: 226/19 = 12).
  EXPECT_NEAR(p90 / p10, 13.0, 2.0);
  EXPECT_GT(browsers.back(), 20 * median);
}

TEST(PopulationTest, GroundTruthRecordsAreJsonWithTheContractFields) {
  GenOptions o = Options();
  o.users = 2000;
  o.shift_fraction = 0.3;
  o.high_spender_fraction = 0.3;
  o.bot_fraction = 0.3;
  const SyntheticCatalog catalog(o.items, o.top_categories, o.item_zipf, 1);
  const SyntheticPopulation population(o, catalog);
  simdjson::dom::parser parser;
  int kinds[4] = {};
  for (uint32_t u = 0; u < population.size(); ++u) {
    std::string line;
    population.AppendGroundTruth(u, catalog, &line);
    const PlannedUser& p = population.user(u);
    if (p.role == UserRole::kBrowser) {
      EXPECT_TRUE(line.empty());
      continue;
    }
    ASSERT_FALSE(line.empty());
    ASSERT_EQ(line.back(), '\n');
    simdjson::dom::object obj;
    ASSERT_EQ(parser.parse(line).get(obj), simdjson::SUCCESS) << line;
    std::string_view user_id, kind;
    ASSERT_EQ(obj["user_id"].get(user_id), simdjson::SUCCESS) << line;
    EXPECT_EQ(user_id, std::to_string(SyntheticPopulation::UserNumber(u)));
    ASSERT_EQ(obj["kind"].get(kind), simdjson::SUCCESS) << line;
    EXPECT_EQ(kind, UserRoleName(p.role));
    ++kinds[static_cast<int>(p.role)];
    if (p.role == UserRole::kShift) {
      std::string_view from, to;
      int64_t at_ms = 0;
      ASSERT_EQ(obj["from"].get(from), simdjson::SUCCESS) << line;
      ASSERT_EQ(obj["to"].get(to), simdjson::SUCCESS) << line;
      ASSERT_EQ(obj["at_ms"].get(at_ms), simdjson::SUCCESS) << line;
      EXPECT_EQ(from, catalog.leaf(p.shift_from_leaf).path);
      EXPECT_EQ(to, catalog.leaf(p.shift_to_leaf).path);
      EXPECT_EQ(at_ms, p.shift_at_ms);
    }
  }
  EXPECT_GT(kinds[1], 0);
  EXPECT_GT(kinds[2], 0);
  EXPECT_GT(kinds[3], 0);
}

}  // namespace
}  // namespace persona::gen
