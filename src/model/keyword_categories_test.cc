#include "model/keyword_categories.h"

#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "event/event_reader.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

constexpr int64_t kMinute = 60 * 1000;

// Events that own their strings (Event holds views).
class Stream {
 public:
  Event Search(std::string user, int64_t ts, std::string query) {
    Event e = Base(std::move(user), ts, EventType::kSearch);
    e.query = Keep(std::move(query));
    return e;
  }
  Event Act(std::string user, int64_t ts, std::string category, EventType type = EventType::kView) {
    Event e = Base(std::move(user), ts, type);
    e.item_id = Keep("item");
    e.category_path = Keep(std::move(category));
    return e;
  }

 private:
  Event Base(std::string user, int64_t ts, EventType type) {
    Event e;
    e.user_id = Keep(std::move(user));
    e.ts_ms = ts;
    e.type = type;
    return e;
  }
  std::string_view Keep(std::string s) {
    strings_.push_back(std::make_unique<std::string>(std::move(s)));
    return *strings_.back();
  }
  std::vector<std::unique_ptr<std::string>> strings_;
};

TEST(KeywordCategoriesTest, RecoversPlantedMappingWithItsProbability) {
  // Each search of "running shoes" leads to sport.shoes 80% of the time, otherwise to a random
  // one of four unrelated categories; "phone case" always to electronics.cases.
  KeywordCategories kc;
  Stream s;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  const std::vector<std::string> noise = {"home.kitchen", "books", "toys", "garden"};
  int64_t ts = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string user = "u" + std::to_string(i);
    kc.Observe(s.Search(user, ts, "Running Shoes"));
    kc.Observe(s.Act(user, ts + kMinute,
                     u(rng) < 0.8 ? "sport.shoes" : noise[static_cast<size_t>(i) % noise.size()]));
    kc.Observe(s.Search(user, ts + 2 * kMinute, "phone case"));
    kc.Observe(s.Act(user, ts + 3 * kMinute, "electronics.cases", EventType::kPurchase));
    ts += 10 * kMinute;
  }
  for (const char* kw : {"running", "shoes"}) {
    const auto top = kc.Categories(kw, 3);
    ASSERT_EQ(top.size(), 3u) << kw;
    EXPECT_EQ(top[0].first, "sport.shoes");
    EXPECT_NEAR(top[0].second, 0.8, 0.04);
    EXPECT_NEAR(top[1].second, 0.05, 0.03);
    EXPECT_EQ(kc.Support(kw), 1000u);
  }
  const auto phone = kc.Categories("phone", 5);
  ASSERT_EQ(phone.size(), 1u);
  EXPECT_EQ(phone[0].first, "electronics.cases");
  EXPECT_DOUBLE_EQ(phone[0].second, 1.0);
  // A query mixes its keywords by support.
  const auto query = kc.CategoriesForQuery("shoes for the phone", 1);
  ASSERT_EQ(query.size(), 1u);
  EXPECT_EQ(query[0].first, "electronics.cases");
  EXPECT_NEAR(query[0].second, 0.5, 0.01);
  EXPECT_TRUE(kc.Categories("unknown", 3).empty());
}

TEST(KeywordCategoriesTest, LapsedSessionCreditsNothing) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  KeywordCategories kc(o);
  Stream s;
  kc.Observe(s.Search("u", 0, "lamp"));
  kc.Observe(s.Act("u", o.session_gap_ms + 1, "home.lighting"));
  EXPECT_EQ(kc.Support("lamp"), 0u);
  EXPECT_EQ(kc.open_searches(), 0u);  // forgotten
  // Within the gap of the user's previous event (not of the search) the session goes on.
  kc.Observe(s.Search("v", 0, "lamp"));
  kc.Observe(s.Act("v", o.session_gap_ms - 1, "garden"));
  kc.Observe(s.Act("v", 2 * o.session_gap_ms - 2, "home.lighting"));
  const auto top = kc.Categories("lamp", 5);
  EXPECT_EQ(top.size(), 2u);
}

TEST(KeywordCategoriesTest, SearchCreditsEachCategoryOnceAndAtMostThree) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  KeywordCategories kc(o);
  Stream s;
  kc.Observe(s.Search("u", 0, "tent"));
  for (int i = 0; i < 10; ++i) kc.Observe(s.Act("u", i * 1000, "outdoor.tents"));
  EXPECT_EQ(kc.Support("tent"), 1u);
  for (const char* c : {"a", "b", "c", "d"}) kc.Observe(s.Act("u", 20000, c));
  EXPECT_EQ(kc.Support("tent"), 3u);  // outdoor.tents, a, b; then the cap
  // Events without a category, searches without keywords and removals credit nothing.
  kc.Observe(s.Search("w", 0, "chair"));
  kc.Observe(s.Act("w", 1, ""));
  kc.Observe(s.Act("w", 2, "home.chairs", EventType::kRemoveCart));
  EXPECT_EQ(kc.Support("chair"), 0u);
  kc.Observe(s.Search("w", 3, "!!"));  // no keyword: the open search is closed
  kc.Observe(s.Act("w", 4, "home.chairs"));
  EXPECT_EQ(kc.Support("chair"), 0u);
}

TEST(KeywordCategoriesTest, MinimumSupportHidesRareKeywords) {
  KeywordCategoryOptions o;
  o.min_support = 3;
  KeywordCategories kc(o);
  Stream s;
  for (int i = 0; i < 2; ++i) {
    kc.Observe(s.Search("u" + std::to_string(i), 0, "kettle"));
    kc.Observe(s.Act("u" + std::to_string(i), 1, "kitchen"));
  }
  EXPECT_TRUE(kc.Categories("kettle", 3).empty());
  EXPECT_TRUE(kc.CategoriesForQuery("kettle", 3).empty());
  kc.Observe(s.Search("u9", 0, "kettle"));
  kc.Observe(s.Act("u9", 1, "kitchen"));
  EXPECT_EQ(kc.Categories("kettle", 3).size(), 1u);
}

TEST(KeywordCategoriesTest, ChineseQueryCreditsItsBigrams) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  KeywordCategories kc(o);
  Stream s;
  kc.Observe(s.Search("u", 0, "无线蓝牙耳机"));
  kc.Observe(s.Act("u", 1, "electronics.audio.headphone"));
  const auto top = kc.Categories("耳机", 1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].first, "electronics.audio.headphone");
  EXPECT_EQ(kc.CategoriesForQuery("耳机", 1).size(), 1u);
}

TEST(KeywordCategoriesTest, OpenSearchesStayBoundedPerShard) {
  KeywordCategoryOptions o;
  o.max_users_per_shard = 8;
  KeywordCategories kc(o);
  Stream s;
  // All searches at the same time: nobody's session has lapsed, so eviction must drop by idleness.
  for (int i = 0; i < 5000; ++i) kc.Observe(s.Search("u" + std::to_string(i), i, "sofa"));
  EXPECT_LE(kc.open_searches(), KeywordCategories::kShards * o.max_users_per_shard);
  EXPECT_GT(kc.open_searches(), 0u);
}

TEST(KeywordCategoriesTest, ConcurrentObserversLoseNoCredit) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  KeywordCategories kc(o);
  constexpr int kThreads = 4, kUsers = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&kc, t] {
      Stream s;
      for (int i = 0; i < kUsers; ++i) {
        const std::string user = "t" + std::to_string(t) + "u" + std::to_string(i);
        kc.Observe(s.Search(user, i, "desk lamp"));
        kc.Observe(s.Act(user, i + 1, i % 2 ? "home.lighting" : "office"));
        (void)kc.Categories("desk", 2);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(kc.Support("desk"), uint64_t{kThreads * kUsers});
  const auto top = kc.Categories("lamp", 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_DOUBLE_EQ(top[0].second, 0.5);
}

// rees46 has no searches: before a user's first view of a category in a session, insert a search
// for that category's leaf name ("appliances.kitchen.washer" -> "washer"). Browsing after the
// search wanders to other categories, as real sessions do; the learner must still name the
// searched category first for most keywords.
TEST(KeywordCategoriesTest, Rees46SynthesizedSearchesMapLeafWordsToTheirCategories) {
  const std::string path = std::string(PERSONA_DATASETS) + "/rees46/2019-Oct-head.csv";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "dataset not present: " << path;
  auto reader = EventReader::Open(path, InputFormat::kRees46, ValidationLimits());
  ASSERT_TRUE(reader.ok()) << reader.status();
  KeywordCategories kc;
  absl::flat_hash_map<std::string, std::string> last_category;  // user -> category
  absl::flat_hash_map<std::string, int64_t> last_ts;
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> leaf_to_categories;
  Stream s;
  EventBatch batch;
  std::vector<EventIssue> issues;
  size_t searches = 0;
  while ((*reader)->Next(4096, &batch, &issues)) {
    for (const Event& e : batch.events) {
      const std::string user(e.user_id);
      const std::string category(e.category_path);
      const bool new_session = !last_ts.contains(user) || e.ts_ms - last_ts[user] > 30 * kMinute;
      if (e.type == EventType::kView && !category.empty() &&
          (new_session || last_category[user] != category)) {
        std::string leaf = category.substr(category.rfind('.') + 1);
        for (char& c : leaf) c = c == '_' ? ' ' : c;
        leaf_to_categories[leaf.substr(0, leaf.find(' '))].insert(category);
        kc.Observe(s.Search(user, e.ts_ms, leaf));
        ++searches;
      }
      kc.Observe(e);
      last_ts[user] = e.ts_ms;
      if (!category.empty()) last_category[user] = category;
    }
  }
  ASSERT_GT(searches, 500u);
  int supported = 0, right = 0;
  for (const auto& [keyword, categories] : leaf_to_categories) {
    const auto top = kc.Categories(keyword, 1);
    if (top.empty()) continue;
    ++supported;
    right += categories.contains(top[0].first);
  }
  RecordProperty("keywords_supported", supported);
  RecordProperty("keywords_right", right);
  ASSERT_GT(supported, 20);
  EXPECT_GE(right, supported * 9 / 10) << right << " of " << supported;
}

}  // namespace
}  // namespace persona
