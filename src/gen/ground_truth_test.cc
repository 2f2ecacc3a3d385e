// The planted ground truth holds in the generated stream: what the side file says about a user is
// what the user's events show.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "gen/generator.h"
#include "gen/testing/parsed_stream.h"

namespace persona::gen {
namespace {

using gen_testing::ParsedEvent;

struct Truth {
  std::string user_id, kind, from, to;
  int64_t at_ms = 0;
};

struct PlantedStream {
  std::vector<ParsedEvent> events;
  absl::flat_hash_map<std::string, double> premium_price;  // leaf path -> 80th percentile
  std::vector<Truth> truth;
  absl::flat_hash_map<std::string, std::vector<const ParsedEvent*>> by_user;
};

GenOptions PlantedOptions() {
  GenOptions o;
  o.events = 300000;
  o.users = 10000;
  o.items = 20000;
  o.seed = 11;
  o.shift_fraction = 0.10;
  o.high_spender_fraction = 0.05;
  o.bot_fraction = 0.01;
  o.late_fraction = 0.01;  // ground truth is about event time, so it must survive reordering
  return o;
}

const PlantedStream& Stream() {
  static const PlantedStream* stream = [] {
    auto* s = new PlantedStream;
    const GenOptions o = PlantedOptions();
    EventGenerator gen(o);
    for (uint32_t l = 0; l < gen.catalog().leaf_count(); ++l) {
      s->premium_price[gen.catalog().leaf(l).path] = gen.catalog().leaf(l).premium_cents / 100.0;
    }
    std::string text;
    while (gen.WriteLines(1 << 16, &text) > 0) {
    }
    std::string error;
    EXPECT_TRUE(gen_testing::ParseJsonLines(text, &s->events, &error)) << error;
    std::string truth_text;
    gen.WriteGroundTruth(&truth_text);
    simdjson::dom::parser parser;
    size_t pos = 0;
    while (pos < truth_text.size()) {
      const size_t eol = truth_text.find('\n', pos);
      const std::string line = truth_text.substr(pos, eol - pos);
      pos = eol + 1;
      simdjson::dom::object obj;
      EXPECT_EQ(parser.parse(line).get(obj), simdjson::SUCCESS) << line;
      Truth t;
      std::string_view v;
      if (obj["user_id"].get(v) == simdjson::SUCCESS) t.user_id = v;
      if (obj["kind"].get(v) == simdjson::SUCCESS) t.kind = v;
      if (obj["from"].get(v) == simdjson::SUCCESS) t.from = v;
      if (obj["to"].get(v) == simdjson::SUCCESS) t.to = v;
      int64_t at = 0;
      if (obj["at_ms"].get(at) == simdjson::SUCCESS) t.at_ms = at;
      s->truth.push_back(t);
    }
    for (const ParsedEvent& e : s->events) s->by_user[e.user_id].push_back(&e);
    return s;
  }();
  return *stream;
}

bool InCategory(const std::string& path, const std::string& category) {
  return path == category || path.rfind(category + ".", 0) == 0;
}

TEST(GroundTruthTest, ShiftedUsersStayWithAAtLeast80PercentBeforeTheShiftAndBAfter) {
  const PlantedStream& s = Stream();
  int checked = 0;
  for (const Truth& t : s.truth) {
    if (t.kind != "shift") continue;
    ASSERT_FALSE(t.from.empty());
    ASSERT_FALSE(t.to.empty());
    // Different top-level branches.
    ASSERT_NE(t.from.substr(0, t.from.find('.')), t.to.substr(0, t.to.find('.')));
    int before = 0, before_a = 0, after = 0, after_b = 0;
    for (const ParsedEvent* e : s.by_user.at(t.user_id)) {
      if (e->category_path.empty()) continue;  // searches carry no category
      if (e->ts < t.at_ms) {
        ++before;
        before_a += InCategory(e->category_path, t.from);
      } else {
        ++after;
        after_b += InCategory(e->category_path, t.to);
      }
    }
    if (before > 0) {
      EXPECT_GE(before_a, 0.8 * before) << "user " << t.user_id << " before " << t.at_ms;
    }
    if (after > 0) {
      EXPECT_GE(after_b, 0.8 * after) << "user " << t.user_id << " after " << t.at_ms;
    }
    checked += before >= 5 && after >= 5;
  }
  EXPECT_GE(checked, 200) << "too few shifted users with events on both sides";
}

TEST(GroundTruthTest, TruthListsEachPlantedKindAndOnlyUsersInTheStream) {
  const PlantedStream& s = Stream();
  absl::flat_hash_map<std::string, int> kinds;
  absl::flat_hash_set<std::string> users;
  for (const Truth& t : s.truth) {
    ++kinds[t.kind];
    EXPECT_TRUE(s.by_user.contains(t.user_id)) << t.user_id << " has no events";
    EXPECT_TRUE(users.insert(t.user_id).second) << t.user_id << " listed twice";
  }
  EXPECT_EQ(kinds.size(), 3u);
  const double active = static_cast<double>(s.by_user.size());
  // Planted users are more active than average, so they are over-represented among active users.
  EXPECT_GT(kinds["shift"], 0.08 * active);
  EXPECT_GT(kinds["high_spender"], 0.04 * active);
  EXPECT_GT(kinds["bot"], 0.005 * active);
}

TEST(GroundTruthTest, HighSpendersBuyMoreAndDearerThanOrdinaryUsers) {
  const PlantedStream& s = Stream();
  absl::flat_hash_set<std::string> planted, high_spenders;
  for (const Truth& t : s.truth) {
    planted.insert(t.user_id);
    if (t.kind == "high_spender") high_spenders.insert(t.user_id);
  }
  double hs_spend = 0, other_spend = 0;
  int hs_buys = 0, other_buys = 0, hs_events = 0, other_events = 0, hs_premium = 0,
      other_premium = 0;
  for (const auto& [user, events] : s.by_user) {
    const bool hs = high_spenders.contains(user);
    if (!hs && planted.contains(user)) continue;
    for (const ParsedEvent* e : events) {
      (hs ? hs_events : other_events) += 1;
      if (e->type != "purchase") continue;
      (hs ? hs_spend : other_spend) += e->price * e->quantity;
      (hs ? hs_buys : other_buys) += 1;
      // Cents: the threshold and the price are the same rounded number for the boundary item.
      (hs ? hs_premium : other_premium) +=
          std::llround(e->price * 100) >= std::llround(s.premium_price.at(e->category_path) * 100);
    }
  }
  ASSERT_GT(hs_buys, 100);
  ASSERT_GT(other_buys, 100);
  // Purchase rate ~6x; mostly premium items (the top fifth of their category's prices) where
  // everyone else buys them at about their share of the catalog.
  EXPECT_GT(static_cast<double>(hs_buys) / hs_events,
            4.0 * static_cast<double>(other_buys) / other_events);
  EXPECT_GT(static_cast<double>(hs_premium) / hs_buys, 0.6);
  EXPECT_LT(static_cast<double>(other_premium) / other_buys, 0.35);
  EXPECT_GT(hs_spend / high_spenders.size(), 6 * other_spend / (s.by_user.size() - planted.size()));
}

TEST(GroundTruthTest, BotsOnlyViewAtMachineRegularIntervals) {
  const PlantedStream& s = Stream();
  int bots = 0;
  double browser_cv_sum = 0;
  int browsers = 0;
  absl::flat_hash_set<std::string> planted;
  for (const Truth& t : s.truth) planted.insert(t.user_id);
  // Coefficient of variation of the gaps inside sessions (late events excluded by sorting).
  auto gap_cv = [](std::vector<const ParsedEvent*> events) {
    std::sort(events.begin(), events.end(),
              [](const ParsedEvent* a, const ParsedEvent* b) { return a->ts < b->ts; });
    std::vector<double> gaps;
    for (size_t i = 1; i < events.size(); ++i) {
      if (events[i]->session_id == events[i - 1]->session_id) {
        gaps.push_back(static_cast<double>(events[i]->ts - events[i - 1]->ts));
      }
    }
    if (gaps.size() < 10) return -1.0;
    double mean = 0, var = 0;
    for (double g : gaps) mean += g / gaps.size();
    for (double g : gaps) var += (g - mean) * (g - mean) / gaps.size();
    return std::sqrt(var) / mean;
  };
  for (const Truth& t : s.truth) {
    if (t.kind != "bot") continue;
    const auto& events = s.by_user.at(t.user_id);
    for (const ParsedEvent* e : events) ASSERT_EQ(e->type, "view") << "bot " << t.user_id;
    const double cv = gap_cv(events);
    if (cv < 0) continue;
    EXPECT_LT(cv, 0.05) << "bot " << t.user_id << " is not regular";
    ++bots;
  }
  EXPECT_GT(bots, 20);
  for (const auto& [user, events] : s.by_user) {
    if (planted.contains(user)) continue;
    const double cv = gap_cv(events);
    if (cv < 0) continue;
    browser_cv_sum += cv;
    ++browsers;
  }
  ASSERT_GT(browsers, 100);
  EXPECT_GT(browser_cv_sum / browsers, 0.8);  // people are bursty
}

}  // namespace
}  // namespace persona::gen
