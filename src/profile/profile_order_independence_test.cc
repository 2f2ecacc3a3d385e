// Order independence: the first 20,000 taobao events applied in file order and in three shuffled
// orders give the same counts, windows, RFM inputs and interest tables. Tables that never evicted
// must match exactly (up to floating-point addition order); tables that evicted must satisfy the
// Space-Saving guarantee against an exact reference computed here.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "profile/profile.h"
#include "profile/profile_context.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

constexpr size_t kEvents = 20000;

// One run: a fresh partition context and the profiles it built.
struct PartitionRun {
  explicit PartitionRun(const ProfileConfig& config) {
    ctx.config = &config;
    ctx.population = &population;
  }
  Population population;
  ProfileContext ctx;
  absl::flat_hash_map<std::string, Profile> profiles;
};

void ApplyAll(const std::vector<const OwnedEvent*>& order, PartitionRun& run) {
  for (const OwnedEvent* e : order) run.profiles[e->user].Apply(e->view(), run.ctx);
}

bool RelativelyEqual(double a, double b, double tolerance) {
  return std::fabs(a - b) <= tolerance * std::max(std::fabs(a), std::fabs(b));
}

class OrderIndependenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::ReadTaobao(testing::TaobaoByUserPath(), kEvents, &events_)) {
      GTEST_SKIP() << "dataset not found: " << testing::TaobaoByUserPath();
    }
    ASSERT_EQ(events_.size(), kEvents);
    for (const OwnedEvent& e : events_) now_ = std::max(now_, e.ts_ms + kDayMs);
  }

  // Exact decayed score of every (user, key) of a table, and the sum of all increments.
  struct Truth {
    std::map<std::string, double> scores;
    double increments = 0;
  };
  std::map<std::string, Truth> ExactInterests(InterestKind kind) const {
    std::map<std::string, Truth> truth;
    for (const OwnedEvent& e : events_) {
      const double w = config_.type_weight[static_cast<int>(e.type)] *
                       std::exp2(static_cast<double>(e.ts_ms - now_) / config_.half_life_ms);
      const std::string& key = kind == InterestKind::kItem ? e.item : e.category;
      Truth& t = truth[e.user];
      t.scores[key] += w;
      t.increments += w;
    }
    return truth;
  }

  ProfileConfig config_;
  std::vector<OwnedEvent> events_;
  int64_t now_ = 0;
};

TEST_F(OrderIndependenceTest, ShuffledArrivalGivesSameCountsWindowsRfmAndInterests) {
  std::vector<const OwnedEvent*> file_order;
  for (const OwnedEvent& e : events_) file_order.push_back(&e);
  PartitionRun reference(config_);
  ApplyAll(file_order, reference);

  const std::map<std::string, Truth> truth[2] = {ExactInterests(InterestKind::kCategory),
                                                 ExactInterests(InterestKind::kItem)};
  const InterestKind kinds[2] = {InterestKind::kCategory, InterestKind::kItem};
  const uint32_t capacities[2] = {config_.category_capacity, config_.item_capacity};
  size_t exact_tables = 0, evicted_tables = 0;

  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<const OwnedEvent*> shuffled = file_order;
    std::mt19937 rng(seed);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    PartitionRun run(config_);
    ApplyAll(shuffled, run);
    ASSERT_EQ(run.profiles.size(), reference.profiles.size());
    EXPECT_EQ(run.population.buyers(), reference.population.buyers());

    for (const auto& [user, want] : reference.profiles) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " user " + user);
      const Profile& got = run.profiles.at(user);
      EXPECT_EQ(got.first_seen_ms(), want.first_seen_ms());
      EXPECT_EQ(got.last_seen_ms(), want.last_seen_ms());
      for (int t = 0; t < kEventTypeCount; ++t) {
        EXPECT_EQ(got.count(static_cast<EventType>(t)), want.count(static_cast<EventType>(t)));
      }
      EXPECT_EQ(got.daily().bytes(), want.daily().bytes());  // identical day buckets
      for (int days : {1, 7, 30}) {
        EXPECT_EQ(got.Window(now_, days).counts, want.Window(now_, days).counts);
      }
      EXPECT_EQ(got.rfm_inputs(), want.rfm_inputs());

      for (int k = 0; k < 2; ++k) {
        const InterestTable& gt = got.interests(kinds[k]);
        const InterestTable& wt = want.interests(kinds[k]);
        ASSERT_EQ(gt.exact(), wt.exact());
        const auto g = got.TopInterests(kinds[k], run.ctx, now_, 1000);
        const auto w = want.TopInterests(kinds[k], reference.ctx, now_, 1000);
        if (wt.exact()) {
          ++exact_tables;
          ASSERT_EQ(g.size(), w.size());
          std::map<std::string_view, double> want_scores;
          for (const ScoredInterest& s : w) want_scores[s.key] = s.score;
          for (const ScoredInterest& s : g) {
            ASSERT_TRUE(want_scores.count(s.key)) << s.key;
            EXPECT_TRUE(RelativelyEqual(s.score, want_scores[s.key], 1e-9))
                << s.key << ": " << s.score << " vs " << want_scores[s.key];
          }
          continue;
        }
        // Evicted: the Space-Saving guarantee, in this order and in file order alike.
        ++evicted_tables;
        const Truth& exact = truth[k].at(user);
        for (const auto* table : {&g, &w}) {
          std::map<std::string_view, const ScoredInterest*> present;
          for (const ScoredInterest& s : *table) present[s.key] = &s;
          for (const auto& [key, score] : exact.scores) {
            if (score > exact.increments / capacities[k]) {
              EXPECT_TRUE(present.count(key)) << "heavy key missing: " << key;
            }
          }
          for (const ScoredInterest& s : *table) {
            const double real = exact.scores.at(std::string(s.key));
            EXPECT_GE(s.score, real * (1 - 1e-9)) << s.key;
            EXPECT_LE(s.score, (real + s.error) * (1 + 1e-9)) << s.key;
          }
        }
      }
    }
  }
  // Both branches were exercised on this slice.
  EXPECT_GT(exact_tables, 100u);
  EXPECT_GT(evicted_tables, 100u);
}

}  // namespace
}  // namespace persona
