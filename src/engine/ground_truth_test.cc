// Profiles follow reality: streams with a known truth go through the whole engine (routing, log,
// apply) and the resulting profiles must show it.
//  - synthetic users whose interest shifts from category A to B at a known time end with B ahead;
//  - planted high spenders score top monetary quintiles;
//  - on the real REES46 slice, purchases and spend per user equal sums computed from the CSV here.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "event/event_reader.h"
#include "gen/generator.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

using testing_util::TempDir;

std::unique_ptr<Engine> OpenTestEngine(const std::string& dir, int64_t half_life_ms = 7 * kDayMs) {
  EngineConfig c;
  c.data_dir = dir;
  c.profile.half_life_ms = half_life_ms;
  c.partitions = 2;
  c.sync = SyncPolicy::kNone;
  auto e = Engine::Open(c);
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

// Share of `key` in the profile's category interest table (0 when absent).
double CategoryShare(simdjson::dom::element profile, std::string_view key) {
  for (auto entry : profile["interests"]["categories"]["top"].get_array()) {
    if (std::string_view(entry["key"]) == key) return double(entry["share"]);
  }
  return 0;
}

std::string_view TopLevel(std::string_view path) { return path.substr(0, path.find('.')); }

TEST(GroundTruthTest, ShiftedUsersEndWithTheNewCategoryAheadAndHighSpendersScoreHigh) {
  GenOptions o;
  o.events = 400000;
  o.users = 4000;
  o.items = 20000;
  o.shift_fraction = 0.10;
  o.high_spender_fraction = 0.03;
  o.seed = 11;
  EventGenerator gen(o);
  TempDir dir("truth");
  // A 1-day half-life: two days after a shift the new category must dominate (with the default
  // 7 days, a week of old interest legitimately still outweighs two days of new interest).
  auto engine = OpenTestEngine(dir.path(), kDayMs);
  while (true) {
    auto batch = std::make_shared<EventBatch>();
    const bool more = gen.Next(8192, batch.get());
    if (!batch->events.empty()) {
      IngestOutcome out = engine->Ingest(batch);
      ASSERT_TRUE(out.rejected.empty()) << out.rejected[0].field << " " << out.rejected[0].rule;
    }
    if (!more) break;
  }
  std::string truth;
  gen.WriteGroundTruth(&truth);
  const int64_t now = engine->NowMs();

  simdjson::dom::parser parser;
  int shifted = 0, shifted_ok = 0, spenders = 0, spenders_ok = 0;
  std::istringstream lines(truth);
  std::string line;
  while (std::getline(lines, line)) {
    simdjson::dom::element t = parser.parse(line);
    const std::string user{std::string_view(t["user_id"])};
    const std::string kind{std::string_view(t["kind"])};
    auto json = engine->ProfileJson(user, kInterests | kConsumption);
    ASSERT_TRUE(json.has_value()) << user;
    simdjson::dom::parser pp;
    simdjson::dom::element p = pp.parse(*json);
    if (kind == "shift") {
      // Judge only shifts with at least two days of post-shift behaviour before "now".
      if (int64_t(t["at_ms"]) > now - 2 * kDayMs) continue;
      ++shifted;
      const std::string from{TopLevel(std::string_view(t["from"]))};
      const std::string to{TopLevel(std::string_view(t["to"]))};
      if (CategoryShare(p, to) > CategoryShare(p, from)) ++shifted_ok;
    } else if (kind == "high_spender") {
      ++spenders;
      if (int64_t(p["consumption"]["rfm"]["monetary"]) >= 4) ++spenders_ok;
    }
  }
  ASSERT_GT(shifted, 50);
  ASSERT_GT(spenders, 30);
  EXPECT_GE(shifted_ok, shifted * 95 / 100) << shifted_ok << " of " << shifted;
  EXPECT_GE(spenders_ok, spenders * 90 / 100) << spenders_ok << " of " << spenders;
}

TEST(GroundTruthTest, Rees46PurchasesAndSpendEqualSumsFromTheCsv) {
  const std::string file = std::string(PERSONA_DATASETS) + "/rees46/2019-Oct-head.csv";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << "dataset absent: " << file;
  // Independent reference: parse the CSV here with plain string splitting.
  std::map<std::string, std::pair<int, double>> expected;  // user -> (purchases, spend)
  std::map<std::string, int> events;
  {
    std::ifstream in(file);
    std::string row;
    std::getline(in, row);  // header
    while (std::getline(in, row)) {
      std::vector<std::string> f;
      std::stringstream ss(row);
      std::string cell;
      while (std::getline(ss, cell, ',')) f.push_back(cell);
      if (f.size() < 8) continue;
      events[f[7]]++;
      if (f[1] == "purchase") {
        expected[f[7]].first++;
        expected[f[7]].second += std::stod(f[6]);
      }
    }
  }
  ASSERT_GT(expected.size(), 10u);
  TempDir dir("rees46");
  auto engine = OpenTestEngine(dir.path());
  auto reader = EventReader::Open(file, InputFormat::kRees46, ValidationLimits{});
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<EventIssue> issues;
  while (true) {
    auto batch = std::make_shared<EventBatch>();
    const bool more = (*reader)->Next(4096, batch.get(), &issues);
    engine->Ingest(batch);
    if (!more) break;
  }
  EXPECT_TRUE(issues.empty()) << issues[0].rule;
  simdjson::dom::parser parser;
  for (const auto& [user, want] : expected) {
    auto json = engine->ProfileJson(user, kConsumption | kStats);
    ASSERT_TRUE(json.has_value()) << user;
    simdjson::dom::element p = parser.parse(*json);
    EXPECT_EQ(int64_t(p["consumption"]["purchases"]), want.first) << user;
    EXPECT_NEAR(double(p["consumption"]["monetary"]), want.second, 1e-6 * (1 + want.second))
        << user;
  }
  for (const auto& [user, n] : events) {
    auto json = engine->ProfileJson(user, kStats);
    ASSERT_TRUE(json.has_value()) << user;
    simdjson::dom::element p = parser.parse(*json);
    // Exact content duplicates in the file are dropped by design (same user, type, time, item).
    EXPECT_LE(int64_t(p["stats"]["events"]), n) << user;
  }
}

}  // namespace
}  // namespace persona
