#include "predict/keyword_categories.h"

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/varint.h"
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

// A search-and-browse stream with planted meanings: each keyword leads mostly to its own category.
// Users search, browse a few categories (some sessions lapse, some searches have no keyword, some
// events have no category), in global time order; one user's events are in time order.
struct Planted {
  std::vector<std::string> keywords = {"lamp",  "desk",   "chair", "kettle", "tent",
                                       "boots", "jacket", "phone", "case",   "apple"};
  std::vector<std::string> categories = {
      "home.lighting",     "office.desks",   "office.chairs",   "kitchen",
      "outdoor.tents",     "shoes.boots",    "clothes.jackets", "electronics.phones",
      "electronics.cases", "groceries.fruit"};
};

std::vector<Event> KeywordStream(Stream* s, uint32_t seed, int64_t start, int users, int steps) {
  const Planted planted;
  std::mt19937 rng(seed);
  std::vector<Event> events;
  std::vector<int64_t> clock(static_cast<size_t>(users), start);
  std::vector<size_t> searched(static_cast<size_t>(users), 0);  // the last query's first keyword
  for (int step = 0; step < steps; ++step) {
    const size_t u = rng() % static_cast<uint32_t>(users);
    const std::string user = "user" + std::to_string(u);
    int64_t& ts = clock[u];
    // Mostly a few minutes after the user's previous event, sometimes after a lapsed session.
    ts += rng() % 10 == 0 ? 45 * kMinute : static_cast<int64_t>(rng() % (5 * kMinute));
    const uint32_t dice = rng() % 10;
    if (dice < 3) {
      const size_t a = rng() % planted.keywords.size(), b = rng() % planted.keywords.size();
      std::string query = planted.keywords[a] + (rng() % 2 ? " " + planted.keywords[b] : "");
      if (rng() % 20 == 0) query = "!!";
      searched[u] = a;
      events.push_back(s->Search(user, ts, query));
    } else if (dice < 9) {
      // Mostly the category the searched keyword means, else any.
      const size_t c = rng() % 10 < 7 ? searched[u] : rng() % planted.categories.size();
      events.push_back(s->Act(user, ts, planted.categories[c],
                              dice == 8 ? EventType::kPurchase : EventType::kView));
    } else {
      events.push_back(s->Act(user, ts, ""));
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.ts_ms < b.ts_ms; });
  return events;
}

void Feed(const std::vector<Event>& events, KeywordCategories* kc) {
  for (const Event& e : events) kc->Observe(PartitionOf(e.user_id, kc->parts()), e);
}

// Every read for every planted keyword and some queries, as text: equal text, equal reads.
std::string AllReads(const KeywordCategories& kc) {
  const Planted planted;
  std::string out = absl::StrCat("open ", kc.open_searches(), "\n");
  for (const std::string& keyword : planted.keywords) {
    absl::StrAppend(&out, keyword, " ", kc.Support(keyword), ":");
    for (const auto& [category, p] : kc.Categories(keyword, 100)) {
      absl::StrAppend(&out, " ", category, "=", absl::StrFormat("%.17g", p));
    }
    absl::StrAppend(&out, "\n");
  }
  for (const char* query : {"desk lamp", "phone case apple", "tent boots jacket", "none"}) {
    absl::StrAppend(&out, query, ":");
    for (const auto& [category, p] : kc.CategoriesForQuery(query, 100)) {
      absl::StrAppend(&out, " ", category, "=", absl::StrFormat("%.17g", p));
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string SaveAll(const KeywordCategories& kc) {
  std::string out;
  for (uint32_t p = 0; p < kc.parts(); ++p) {
    std::string part;
    kc.SavePart(p, &part);
    absl::StrAppend(&out, part.size(), ":", part);
  }
  return out;
}

TEST(KeywordCategoriesPartsTest, StreamSplitByUserReadsLikeOnePart) {
  KeywordCategoryOptions o;
  o.min_support = 3;
  Stream s;
  const std::vector<Event> events = KeywordStream(&s, 1, 0, 300, 20'000);
  KeywordCategories one(o);
  Feed(events, &one);
  const std::string expected = AllReads(one);
  ASSERT_GT(one.Support("lamp"), 100u);
  ASSERT_EQ(one.Categories("lamp", 1).at(0).first, "home.lighting");
  ASSERT_GT(one.open_searches(), 0u);
  for (uint32_t parts : {2u, 3u}) {
    KeywordCategories split(o, parts);
    Feed(events, &split);
    EXPECT_EQ(AllReads(split), expected) << parts << " parts";
  }
}

TEST(KeywordCategoriesPartsTest, OneWriterThreadPerPartWithLiveReadersMatchesASequentialFeed) {
  KeywordCategoryOptions o;
  o.min_support = 2;
  o.max_users_per_shard = 4;
  Stream s;
  const std::vector<Event> events = KeywordStream(&s, 8, 0, 200, 10'000);
  KeywordCategories sequential(o, 3), threaded(o, 3);
  Feed(events, &sequential);
  std::atomic<int> writing{3};
  std::vector<std::thread> threads;
  for (uint32_t part = 0; part < 3; ++part) {
    threads.emplace_back([&, part] {
      for (const Event& e : events) {
        if (PartitionOf(e.user_id, 3) == part) threaded.Observe(part, e);
      }
      writing.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {
    while (writing.load() > 0) {
      (void)threaded.CategoriesForQuery("desk lamp", 3);
      (void)threaded.open_searches();
      std::string part;
      threaded.SavePart(2, &part);
    }
  });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(SaveAll(threaded), SaveAll(sequential));
  EXPECT_EQ(AllReads(threaded), AllReads(sequential));
}

TEST(KeywordCategoriesPartsTest, ForgetDropsTheOpenSearchOnly) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  KeywordCategories kc(o, 2);
  Stream s;
  kc.Observe(1, s.Search("u", 0, "lamp"));
  kc.Observe(1, s.Act("u", 1, "home.lighting"));
  EXPECT_EQ(kc.open_searches(), 1u);
  kc.Forget(0, "u");  // another part: nothing there
  EXPECT_EQ(kc.open_searches(), 1u);
  kc.Forget(1, "u");
  kc.Forget(1, "nobody");
  EXPECT_EQ(kc.open_searches(), 0u);
  kc.Observe(1, s.Act("u", 2, "home.garden"));  // no open search left to credit
  EXPECT_EQ(kc.Support("lamp"), 1u);
  EXPECT_EQ(kc.Categories("lamp", 5).size(), 1u);
}

// Eviction picks the longest-idle half by (last event time, user id): with every user searching
// at the same instant it keeps the half with the greatest ids, not nobody.
TEST(KeywordCategoriesPartsTest, EvictionDropsExactlyTheOldestHalfWithTiesByUserId) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  o.max_users_per_shard = 4;
  KeywordCategories kc(o);
  std::vector<std::string> users;  // five users of shard 0, in id order
  for (int i = 0; users.size() < 5; ++i) {
    std::string user = "user" + std::to_string(1000 + i);
    if (Hash64(user) % KeywordCategories::kShards == 0) users.push_back(std::move(user));
  }
  const std::vector<std::string> queries = {"alpha", "bravo", "charlie", "delta", "echo"};
  Stream s;
  for (size_t i = 0; i < 5; ++i) kc.Observe(s.Search(users[i], 0, queries[i]));
  // The fifth search found 4 users: 2 (the smallest ids) made room.
  EXPECT_EQ(kc.open_searches(), 3u);
  for (size_t i = 0; i < 5; ++i) kc.Observe(s.Act(users[i], 1, "cat"));
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(kc.Support(queries[i]), i < 2 ? 0u : 1u) << i;
}

TEST(KeywordCategoriesPartsTest, RestoredPartsReadAndEvolveLikeTheOriginal) {
  KeywordCategoryOptions o;
  o.min_support = 2;
  o.max_users_per_shard = 6;  // evictions before and after the restore
  o.max_keywords_per_shard = 3;
  o.max_categories_per_keyword = 4;
  Stream s;
  const std::vector<Event> before = KeywordStream(&s, 2, 0, 400, 8'000);
  const std::vector<Event> after = KeywordStream(&s, 3, before.back().ts_ms + kMinute, 400, 8'000);
  KeywordCategories original(o, 3);
  Feed(before, &original);
  // The restored instance starts with other content, which LoadPart must replace.
  KeywordCategories restored(o, 3);
  restored.Observe(2, s.Search("stale", 0, "stale"));
  restored.Observe(2, s.Act("stale", 1, "stale"));
  for (uint32_t p = 0; p < 3; ++p) {
    std::string part;
    original.SavePart(p, &part);
    ASSERT_TRUE(restored.LoadPart(p, part).ok()) << p;
  }
  EXPECT_EQ(SaveAll(restored), SaveAll(original));
  EXPECT_EQ(AllReads(restored), AllReads(original));
  EXPECT_EQ(restored.Support("stale"), 0u);

  Feed(after, &original);
  Feed(after, &restored);
  EXPECT_EQ(SaveAll(restored), SaveAll(original));
  EXPECT_EQ(AllReads(restored), AllReads(original));
}

TEST(KeywordCategoriesPartsTest, EqualStatesEncodeToEqualBytes) {
  // Two instances reaching the same state through different hash-map histories (one filled and
  // emptied, then both fed the same events) encode identically.
  Stream s;
  const std::vector<Event> events = KeywordStream(&s, 4, 0, 50, 2'000);
  KeywordCategories a, b;
  for (int i = 0; i < 3000; ++i)
    b.Observe(s.Search("tmp" + std::to_string(i), 0, "x" + std::to_string(i)));
  for (int i = 0; i < 3000; ++i) b.Forget(0, "tmp" + std::to_string(i));
  std::string empty_a, empty_b;
  KeywordCategories().SavePart(0, &empty_a);
  b.SavePart(0, &empty_b);
  // The searches were at time 0, the shard clocks' start value: b is empty again.
  EXPECT_EQ(empty_a, empty_b);
  Feed(events, &a);
  Feed(events, &b);
  EXPECT_EQ(SaveAll(a), SaveAll(b));
}

// A blob whose body is `body` with a correct checksum: the decoder's own checks are all that
// stands between it and the part.
std::string WithChecksum(std::string_view body) {
  std::string out(body);
  AppendFixed64(&out, Hash64(body));
  return out;
}

TEST(KeywordCategoriesPartsTest, TruncatedOrCorruptPartIsDataLossAndChangesNothing) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  Stream s;
  KeywordCategories source(o);
  Feed(KeywordStream(&s, 5, 0, 20, 300), &source);
  source.Observe(s.Search("open", 1'000'000'000, "lamp"));
  std::string blob;
  source.SavePart(0, &blob);
  ASSERT_GT(blob.size(), 200u);

  KeywordCategories target(o);
  target.Observe(s.Search("u", 0, "kept"));
  target.Observe(s.Act("u", 1, "kept"));
  std::string before;
  target.SavePart(0, &before);
  auto expect_rejected = [&](std::string_view in, const std::string& what) {
    const absl::Status status = target.LoadPart(0, in);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << what << ": " << status;
  };
  for (size_t n = 0; n < blob.size(); ++n) {
    expect_rejected(blob.substr(0, n), "prefix " + std::to_string(n));
  }
  for (size_t i = 0; i < blob.size(); ++i) {
    for (int bit : {0, 7}) {
      std::string flipped = blob;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      expect_rejected(flipped, "flip at " + std::to_string(i));
    }
  }
  expect_rejected(blob + "x", "trailing byte");
  const std::string_view body = std::string_view(blob).substr(0, blob.size() - 8);
  for (size_t n = 0; n < body.size(); ++n) {
    expect_rejected(WithChecksum(body.substr(0, n)), "checksummed prefix " + std::to_string(n));
  }
  // Written with another shard count (the byte after the magic).
  std::string other_shards(body);
  other_shards[4] = 8;
  expect_rejected(WithChecksum(other_shards), "8 shards");
  std::string after;
  target.SavePart(0, &after);
  EXPECT_EQ(after, before);
  EXPECT_TRUE(target.LoadPart(0, blob).ok());
  EXPECT_EQ(target.LoadPart(1, blob).code(), absl::StatusCode::kInvalidArgument);
}

// Random damage behind a valid checksum: any outcome but a crash or an out-of-bounds read (run
// under ASan) is fine, and a part that loads keeps working.
TEST(KeywordCategoriesPartsTest, CorruptBodyWithValidChecksumNeverCrashes) {
  KeywordCategoryOptions o;
  o.min_support = 1;
  o.max_users_per_shard = 2;
  Stream s;
  KeywordCategories source(o);
  Feed(KeywordStream(&s, 6, 0, 30, 400), &source);
  std::string blob;
  source.SavePart(0, &blob);
  const std::string body = blob.substr(0, blob.size() - 8);
  const std::vector<Event> more = KeywordStream(&s, 7, 1'000'000'000, 30, 100);
  std::mt19937 rng(11);
  int loaded = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = body;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) damaged[rng() % damaged.size()] = static_cast<char>(rng());
    KeywordCategories target(o);
    const absl::Status status = target.LoadPart(0, WithChecksum(damaged));
    if (status.ok()) {
      ++loaded;
      Feed(more, &target);
      (void)AllReads(target);
      std::string again;
      target.SavePart(0, &again);
      KeywordCategories check(o);
      EXPECT_TRUE(check.LoadPart(0, again).ok());
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    }
  }
  RecordProperty("loaded", loaded);
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
