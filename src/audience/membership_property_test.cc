// The property saved audiences promise: however events, attribute changes and erasures arrive,
// the incrementally maintained membership bits and sizes equal a full re-evaluation of every
// condition. Random streams (several seeds) go through a real engine with two partitions while
// audiences are created before, during and after ingest, and one is deleted and re-created.
//
// Conditions that read time (lifecycle, recency, windows) legitimately drift between a profile's
// last change and the end of the stream, so the property is checked in two steps: without
// reconciliation only the time-independent audiences must agree; after Reconcile() all must.
// The change stream of an audience that started empty must replay to its final members.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "audience/audience_condition.h"
#include "audience/saved_audiences.h"
#include "event/json_event.h"
#include "store/scoped_temp_dir.h"

namespace persona {
namespace {

constexpr int64_t kT0 = 1700000000000;

struct Spec {
  const char* name;
  const char* condition;
  bool reads_time;
};
// Created before any event (their streams replay from an empty start).
const Spec kFromStart[] = {
    {"repeat buyers", "purchases >= 2", false},
    {"spenders", "monetary > 150 and refunds = 0", false},
    {"book lovers", "interest.category(\"books\") > 0.4", false},
    {"gold", "attribute(\"tier\") = \"gold\"", false},
    {"recent", "days_since_last_seen < 2 and events >= 3", true},
};
// Created after a third of the stream.
const Spec kMidStream[] = {
    {"window shoppers", "views >= 4 and purchases = 0", false},
    {"big", "tag(\"big\") and not (attribute(\"tier\") = \"silver\")", false},
    {"active", "lifecycle = \"active\" or purchases_7d >= 1", true},
};
// Deleted after two thirds and re-created under another name (its bit is reused).
const Spec kRecreated = {"cart fans", "carts > purchases + 1", false};

// A random stream: users, types, categories, prices and mostly increasing times.
class RandomStream {
 public:
  explicit RandomStream(uint32_t seed) : rng_(seed) {}

  std::string User() { return "user" + std::to_string(Uniform(0, kUsers - 1)); }

  std::string Events(int n) {
    static const char* kTypes[] = {"view", "view", "view",     "view",     "view",        "cart",
                                   "cart", "fav",  "purchase", "purchase", "remove_cart", "refund"};
    static const char* kCategories[] = {"books.fiction", "books.comics", "electronics.audio",
                                        "toys", "home.kitchen"};
    std::string out;
    for (int i = 0; i < n; ++i) {
      now_ += Uniform(0, 40) * 60'000;  // up to 40 minutes between events
      const std::string type = kTypes[Uniform(0, std::size(kTypes) - 1)];
      out += R"({"event_id":"s)" + std::to_string(next_id_++) + R"(","user_id":")" + User() +
             R"(","type":")" + type + R"(","ts":)" +
             std::to_string(now_ - Uniform(0, 10) * 60'000) + R"(,"item_id":"sku-)" +
             std::to_string(Uniform(0, 30)) + R"(","category_path":")" +
             kCategories[Uniform(0, std::size(kCategories) - 1)] + "\"";
      if (type == "purchase" || type == "refund") {
        out += R"(,"price":)" + std::to_string(Uniform(5, 150));
      }
      out += "}\n";
    }
    return out;
  }

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  static constexpr int kUsers = 120;
  std::mt19937 rng_;
  int64_t now_ = kT0;
  uint64_t next_id_ = 0;
};

std::shared_ptr<EventBatch> Batch(const std::string& ndjson) {
  auto batch = std::make_shared<EventBatch>();
  std::vector<EventIssue> issues;
  EXPECT_TRUE(ParseJsonBody(ndjson, ValidationLimits{}, false, batch.get(), &issues).ok());
  EXPECT_TRUE(issues.empty());
  return batch;
}

struct Tracked {
  std::string id;
  std::string condition;
  bool reads_time;
  bool from_start;
};

class MembershipPropertyTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MembershipPropertyTest, IncrementalBitsAndSizesEqualAFullRescan) {
  ScopedTempDir dir{"membership"};
  {
    std::ofstream rules(dir.path() + "/tags.rules");
    rules << "big: monetary > 200\n";
  }
  EngineConfig config;
  config.data_dir = dir.path() + "/data";
  config.partitions = 2;
  config.sync = SyncPolicy::kNone;
  config.checkpoint_interval_ms = 0;
  config.checkpoint_every_events = 0;
  config.tag_rules_file = dir.path() + "/tags.rules";
  // The saved audiences are the engine's operator: opened before it, destroyed after it.
  auto saved_or = SavedAudiences::Open(nullptr, dir.path() + "/audiences.json");
  ASSERT_TRUE(saved_or.ok()) << saved_or.status();
  SavedAudiences& saved = **saved_or;
  auto opened = Engine::Open(config, {}, {&saved});
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Engine> engine = std::move(*opened);

  std::vector<Tracked> tracked;
  auto create = [&](const Spec& spec, bool from_start) {
    auto info = saved.Create(spec.name, spec.condition, "");
    ASSERT_TRUE(info.ok()) << spec.condition << ": " << info.status();
    tracked.push_back({info->id, spec.condition, spec.reads_time, from_start});
  };
  for (const Spec& s : kFromStart) create(s, true);
  create(kRecreated, true);
  saved.Attach(engine.get());

  RandomStream stream(GetParam());
  auto ingest_third = [&] {
    for (int b = 0; b < 25; ++b) {
      (void)engine->Ingest(Batch(stream.Events(stream.Uniform(1, 120))));
      const int roll = stream.Uniform(0, 99);
      if (roll < 15) {
        const char* tier = stream.Uniform(0, 2) == 0 ? "silver" : "gold";
        ASSERT_TRUE(
            engine->SetAttributes(stream.User(), std::string(R"({"tier":")") + tier + "\"}", true)
                .ok());
      } else if (roll < 22) {
        (void)engine->EraseUser(stream.User());  // NotFound for a user not seen yet is fine
      }
    }
  };
  ingest_third();
  for (const Spec& s : kMidStream) create(s, false);
  ingest_third();
  ASSERT_TRUE(saved.Delete(tracked[std::size(kFromStart)].id).ok());
  tracked.erase(tracked.begin() + std::size(kFromStart));
  create({"cart fans again", kRecreated.condition, kRecreated.reads_time}, false);
  ingest_third();

  // Evaluate every tracked audience over every profile and compare with the stored bits.
  std::vector<AudienceCondition> conditions;
  std::vector<int> bits;
  for (const Tracked& t : tracked) {
    auto c = AudienceCondition::Compile(t.condition);
    ASSERT_TRUE(c.ok());
    conditions.push_back(std::move(*c));
    bits.push_back(*saved.BitOf(t.id));
  }
  struct Outcome {
    std::vector<uint64_t> wrong, matching, set;
    std::vector<std::set<std::string>> members;
  };
  auto evaluate = [&] {
    Outcome o;
    o.wrong.assign(tracked.size(), 0);
    o.matching.assign(tracked.size(), 0);
    o.set.assign(tracked.size(), 0);
    o.members.resize(tracked.size());
    const int64_t now = engine->NowMs();
    AudienceEnv env;
    env.tags = engine->tag_rules();
    std::mutex mu;
    engine->ScanProfiles(0, [&](uint32_t, const ProfileScanItem& item) {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t i = 0; i < tracked.size(); ++i) {
        const bool match = conditions[i].Matches(item.profile, item.ctx, now, env);
        const bool stored = (item.membership >> bits[i]) & 1;
        o.wrong[i] += match != stored;
        o.matching[i] += match;
        o.set[i] += stored;
        if (stored) o.members[i].insert(std::string(item.user_id));
      }
    });
    return o;
  };

  const Outcome before = evaluate();
  uint64_t nonempty = 0;
  for (size_t i = 0; i < tracked.size(); ++i) {
    const auto info = saved.Get(tracked[i].id);
    EXPECT_EQ(info->size, before.set[i]) << tracked[i].condition;
    if (!tracked[i].reads_time) {
      EXPECT_EQ(before.wrong[i], 0u) << tracked[i].condition;
      EXPECT_EQ(info->size, before.matching[i]) << tracked[i].condition;
    }
    nonempty += before.matching[i] > 0;
  }
  EXPECT_GE(nonempty, tracked.size() - 1) << "the stream should populate the audiences";

  saved.Reconcile();
  const Outcome after = evaluate();
  for (size_t i = 0; i < tracked.size(); ++i) {
    const auto info = saved.Get(tracked[i].id);
    EXPECT_EQ(after.wrong[i], 0u) << tracked[i].condition;
    EXPECT_EQ(info->size, after.matching[i]) << tracked[i].condition;
    EXPECT_EQ(info->size, after.set[i]) << tracked[i].condition;

    // The stream alternates per user; replayed from an empty start it gives the members.
    auto page = saved.Changes(tracked[i].id, 0, 1'000'000);
    ASSERT_TRUE(page.ok());
    ASSERT_FALSE(page->truncated);
    std::map<std::string, bool> last;
    std::set<std::string> replayed;
    uint64_t expected_seq = 1;
    for (const MembershipChange& c : page->changes) {
      EXPECT_EQ(c.seq, expected_seq++);
      auto [it, fresh] = last.try_emplace(c.user_id, c.entered);
      if (!fresh) {
        EXPECT_NE(it->second, c.entered)
            << "two " << (c.entered ? "enters" : "exits") << " in a row for " << c.user_id << " in "
            << tracked[i].condition;
        it->second = c.entered;
      }
      if (c.entered) {
        replayed.insert(c.user_id);
      } else {
        replayed.erase(c.user_id);
      }
    }
    if (tracked[i].from_start) {
      EXPECT_EQ(replayed, after.members[i]) << tracked[i].condition;
      EXPECT_EQ(info->entered - info->exited, info->size) << tracked[i].condition;
    }
  }
  saved.Detach();
  ASSERT_TRUE(engine->Close().ok());
  engine.reset();
  saved_or->reset();
}

INSTANTIATE_TEST_SUITE_P(Seeds, MembershipPropertyTest, ::testing::Values(1u, 2u, 3u, 4u));

}  // namespace
}  // namespace persona
