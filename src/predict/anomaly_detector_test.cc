#include "predict/anomaly_detector.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "event/event_reader.h"
#include "profile/profile.h"
#include "profile/profile_config.h"
#include "profile/profile_context.h"

namespace persona {
namespace {

// A human-looking user: a few events a minute, irregular gaps, short view streaks, few removals.
RateSnapshot Human(std::mt19937& rng) {
  std::lognormal_distribution<double> minute(1.0, 0.6), cv(0.2, 0.35), streak(2.3, 0.8);
  std::uniform_int_distribution<uint32_t> carts(0, 12), gaps(0, 300);
  RateSnapshot s;
  s.counted = true;
  s.max_minute_events = 1 + static_cast<uint32_t>(std::min(minute(rng), 25.0));
  s.gaps = gaps(rng);
  s.gap_variation = s.gaps >= 2 ? std::max(0.16, cv(rng)) : std::nan("");
  s.max_view_streak = 1 + static_cast<uint32_t>(std::min(streak(rng), 150.0));
  s.carts = carts(rng);
  if (s.carts > 0) {
    // People remove a cart now and then (about one in eight), not nearly all of them.
    s.cart_churn = std::binomial_distribution<uint32_t>(s.carts, 0.12)(rng) / double(s.carts);
  }
  return s;
}

// Planted bots, one anomaly each; `kind` is the flag they should get.
RateSnapshot Bot(std::mt19937& rng, uint8_t kind) {
  RateSnapshot s = Human(rng);
  switch (kind) {
    case kAnomalyHighRate:
      s.max_minute_events = 40 + rng() % 60;
      break;
    case kAnomalyRegularTiming:
      s.gaps = 50 + rng() % 500;
      s.gap_variation = 0.01 + (rng() % 5) / 100.0;
      break;
    case kAnomalyViewBurst:
      s.max_view_streak = 250 + rng() % 2000;
      break;
    case kAnomalyCartChurn:
      s.carts = 20 + rng() % 30;
      s.cart_churn = 1.0;
      break;
  }
  return s;
}

TEST(AnomalyDetectorTest, PlantedBotsAreFlaggedAndHumansAreNot) {
  AnomalyDetector detector;
  std::mt19937 rng(11);
  std::vector<RateSnapshot> humans, bots;
  std::vector<uint8_t> kinds;
  for (int i = 0; i < 3000; ++i) humans.push_back(Human(rng));
  for (int i = 0; i < 40; ++i) {
    kinds.push_back(static_cast<uint8_t>(1 << (i % 4)));
    bots.push_back(Bot(rng, kinds.back()));
  }
  for (const RateSnapshot& s : humans) detector.Add(s);
  for (const RateSnapshot& s : bots) detector.Add(s);

  int true_positive = 0, false_positive = 0, right_flag = 0;
  for (size_t i = 0; i < bots.size(); ++i) {
    const uint8_t flags = detector.Evaluate(bots[i]);
    true_positive += flags != 0;
    right_flag += (flags & kinds[i]) != 0;
    EXPECT_NE(flags & kinds[i], 0) << "bot " << i << " planted as " << AnomalyFlagName(kinds[i]);
  }
  for (const RateSnapshot& s : humans) false_positive += detector.Evaluate(s) != 0;
  const double precision = true_positive / double(std::max(1, true_positive + false_positive));
  const double recall = true_positive / double(bots.size());
  std::printf("synthetic population: %zu humans, %zu bots: precision %.3f recall %.3f\n",
              humans.size(), bots.size(), precision, recall);
  EXPECT_EQ(right_flag, static_cast<int>(bots.size()));
  EXPECT_EQ(false_positive, 0);
  EXPECT_GT(detector.Stats(AnomalyRate::kGapVariation).users, 2000u);
}

TEST(AnomalyDetectorTest, FloorsAloneDecideBelowTheMinimumPopulation) {
  AnomalyDetector detector;
  RateSnapshot quiet;
  quiet.counted = true;
  quiet.max_minute_events = 2;
  for (int i = 0; i < 10; ++i) detector.Add(quiet);
  RateSnapshot fast = quiet;
  fast.max_minute_events = 30;
  EXPECT_EQ(detector.Evaluate(fast), kAnomalyHighRate);
  fast.max_minute_events = 29;  // far above the population, but under the floor
  EXPECT_EQ(detector.Evaluate(fast), 0);
  EXPECT_EQ(detector.RobustZ(AnomalyRate::kMinuteEvents, 1000), 0);  // z not trusted yet
}

TEST(AnomalyDetectorTest, PopulationOfFastUsersIsNotFlaggedAsAWhole) {
  // Every user acts at 40-60 events a minute (a wholesale buyers' portal): all pass the floor,
  // none stands out from the others, so nobody is flagged; a user at 2,000 still is.
  AnomalyDetector detector;
  std::mt19937 rng(5);
  std::vector<RateSnapshot> users;
  for (int i = 0; i < 500; ++i) {
    RateSnapshot s;
    s.counted = true;
    s.max_minute_events = 40 + rng() % 21;
    users.push_back(s);
    detector.Add(s);
  }
  for (const RateSnapshot& s : users) EXPECT_EQ(detector.Evaluate(s), 0) << s.max_minute_events;
  RateSnapshot extreme = users[0];
  extreme.max_minute_events = 2000;
  EXPECT_EQ(detector.Evaluate(extreme), kAnomalyHighRate);
  const RateStats stats = detector.Stats(AnomalyRate::kMinuteEvents);
  EXPECT_NEAR(stats.median, 50, 3);
  EXPECT_GT(stats.mad, 2);
}

TEST(AnomalyDetectorTest, UpdateMovesOneContributionAndRemoveTakesItOut) {
  AnomalyDetector detector;
  RateSnapshot before;
  before.counted = true;
  before.max_minute_events = 3;
  detector.Update(RateSnapshot(), before);  // first sight of a user
  EXPECT_EQ(detector.Stats(AnomalyRate::kMinuteEvents).users, 1u);
  EXPECT_EQ(detector.Stats(AnomalyRate::kGapVariation).users, 0u);
  RateSnapshot after = before;
  after.max_minute_events = 7;
  after.gaps = 10;
  after.gap_variation = 0.8;
  detector.Update(before, after);
  for (int i = 0; i < 40; ++i) detector.Update(after, after);  // no-ops
  EXPECT_EQ(detector.Stats(AnomalyRate::kMinuteEvents).users, 1u);
  EXPECT_EQ(detector.Stats(AnomalyRate::kGapVariation).users, 1u);
  EXPECT_NEAR(detector.Stats(AnomalyRate::kMinuteEvents).median, 7, 0.3);
  detector.Remove(after);
  EXPECT_EQ(detector.Stats(AnomalyRate::kMinuteEvents).users, 0u);
}

Event View(std::string_view user, int64_t ts_ms, EventType type = EventType::kView) {
  Event e;
  e.user_id = user;
  e.item_id = "i";
  e.category_id = "c";
  e.type = type;
  e.ts_ms = ts_ms;
  return e;
}

TEST(AnomalyDetectorTest, ProfilesFedThroughApplyFlagAScriptedUser) {
  ProfileConfig config;
  ProfileContext ctx;
  ctx.config = &config;
  AnomalyDetector detector;
  std::mt19937 rng(3);
  const int64_t t0 = 1'700'000'000'000;
  std::vector<Profile> humans(150);
  for (size_t u = 0; u < humans.size(); ++u) {
    int64_t t = t0 + static_cast<int64_t>(u) * 1000;
    for (int k = 0; k < 40; ++k) {
      t += 2000 + static_cast<int64_t>(std::exponential_distribution<double>(1 / 20000.0)(rng));
      const Profile* before = k == 0 ? nullptr : &humans[u];
      const RateSnapshot snapshot = before ? AnomalyDetector::Snapshot(*before) : RateSnapshot();
      humans[u].Apply(View("h", t, k % 7 == 6 ? EventType::kCart : EventType::kView), ctx);
      detector.Update(snapshot, AnomalyDetector::Snapshot(humans[u]));
    }
  }
  Profile bot;
  for (int k = 0; k < 400; ++k) {
    const RateSnapshot snapshot = AnomalyDetector::Snapshot(bot);
    bot.Apply(View("b", t0 + k * 1000), ctx);  // a view every second, on the dot
    detector.Update(snapshot, AnomalyDetector::Snapshot(bot));
  }
  const uint8_t flags = detector.Evaluate(bot);
  EXPECT_EQ(flags, kAnomalyHighRate | kAnomalyRegularTiming | kAnomalyViewBurst);
  int flagged_humans = 0;
  for (const Profile& p : humans) flagged_humans += detector.Evaluate(p) != 0;
  EXPECT_EQ(flagged_humans, 0);
}

#if defined(PERSONA_BINARY)
// Ground truth from `persona gen`: does the detector find the bots the generator plants?
TEST(AnomalyDetectorTest, GeneratedStreamBotsAreFoundWithHighPrecision) {
  if (!std::filesystem::exists(PERSONA_BINARY)) GTEST_SKIP() << "persona binary not built";
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("anomaly_gen_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string events = (dir / "events.jsonl").string(),
                    truth = (dir / "truth.jsonl").string();
  const std::string cmd = std::string(PERSONA_BINARY) +
                          " gen --events 300000 --users 3000 --bot-fraction 0.01 --seed 4"
                          " --format jsonl --out " +
                          events + " --truth " + truth + " -q";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  absl::flat_hash_set<std::string> bots;
  {
    std::ifstream in(truth);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("\"kind\":\"bot\"") == std::string::npos) continue;
      const size_t start = line.find("\"user_id\":\"") + 11;
      bots.insert(line.substr(start, line.find('"', start) - start));
    }
  }
  ASSERT_GT(bots.size(), 10u);

  ProfileConfig config;
  ProfileContext ctx;
  ctx.config = &config;
  AnomalyDetector detector;
  absl::flat_hash_map<std::string, Profile> profiles;
  auto reader = EventReader::Open(events, InputFormat::kJsonl, ValidationLimits());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EventBatch batch;
  std::vector<EventIssue> issues;
  while ((*reader)->Next(4096, &batch, &issues)) {
    for (const Event& e : batch.events) {
      auto [it, fresh] = profiles.try_emplace(std::string(e.user_id.data(), e.user_id.size()));
      const RateSnapshot before = fresh ? RateSnapshot() : AnomalyDetector::Snapshot(it->second);
      it->second.Apply(e, ctx);
      detector.Update(before, AnomalyDetector::Snapshot(it->second));
    }
  }
  int tp = 0, fp = 0, fn = 0;
  int by_flag[kAnomalyFlagCount] = {};
  for (const auto& [user, profile] : profiles) {
    const uint8_t flags = detector.Evaluate(profile);
    const bool bot = bots.contains(user);
    tp += flags && bot;
    fp += flags && !bot;
    fn += !flags && bot;
    for (int f = 0; f < kAnomalyFlagCount; ++f) by_flag[f] += (flags >> f) & 1;
  }
  const double precision = tp / double(std::max(1, tp + fp)), recall = tp / double(tp + fn);
  std::printf(
      "generated stream: %zu users, %zu bots: precision %.3f recall %.3f "
      "(flags: high_rate %d, regular_timing %d, view_burst %d, cart_churn %d)\n",
      profiles.size(), bots.size(), precision, recall, by_flag[0], by_flag[1], by_flag[2],
      by_flag[3]);
  std::filesystem::remove_all(dir);
  EXPECT_GE(precision, 0.95);
  EXPECT_GE(recall, 0.8);
}
#endif

}  // namespace
}  // namespace persona
