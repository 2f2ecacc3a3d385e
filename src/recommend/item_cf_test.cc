#include "recommend/item_cf.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "common/hash.h"
#include "common/varint.h"
#include "gtest/gtest.h"
#include "recommend/item_catalog.h"

namespace persona {
namespace {

// Feeds a user's items in order, each with the user's earlier items most recent first.
void AddSequence(ItemCf& cf, const std::vector<uint32_t>& sequence, uint32_t window = 5) {
  std::vector<uint32_t> previous;
  for (uint32_t item : sequence) {
    cf.Add(item, previous);
    previous.insert(previous.begin(), item);
    if (previous.size() > window) previous.pop_back();
  }
}

// Users who each browse a few random pairs (2k, 2k+1), the two items of a pair back to back in
// random order: a pair always co-occurs, other items only by chance.
void AddPlantedPairs(ItemCf& cf, uint32_t pairs, uint32_t users) {
  std::mt19937 rng(42);
  for (uint32_t u = 0; u < users; ++u) {
    std::vector<uint32_t> sequence;
    for (int p = 0; p < 4; ++p) {
      const uint32_t pair = rng() % pairs;
      const uint32_t first = 2 * pair + rng() % 2;
      sequence.push_back(first);
      sequence.push_back(first ^ 1);
    }
    AddSequence(cf, sequence);
  }
}

std::vector<uint32_t> Items(const std::vector<ItemCf::Neighbour>& neighbours) {
  std::vector<uint32_t> items;
  for (const ItemCf::Neighbour& n : neighbours) items.push_back(n.item);
  return items;
}

TEST(ItemCfTest, SimilarityIsCosineWithShrinkage) {
  ItemCfConfig config;
  config.shrink = 2;
  ItemCf cf(config);
  cf.Add(0, std::vector<uint32_t>{1});
  // c = 1, n(0) = n(1) = 1: 1 / sqrt(1 * 1) * 1 / (1 + 2).
  ASSERT_EQ(cf.Similar(0, 10).size(), 1u);
  EXPECT_FLOAT_EQ(cf.Similar(0, 10)[0].similarity, 1.0f / 3);
  EXPECT_EQ(cf.Similar(1, 10)[0].item, 0u);  // symmetric
  cf.Add(0, std::vector<uint32_t>{2});
  // Now n(0) = 2: sim(0, 1) = 1 / sqrt(2) / 3.
  EXPECT_FLOAT_EQ(cf.Similar(1, 10)[0].similarity, 1.0f / std::sqrt(2.0f) / 3);
  EXPECT_TRUE(cf.Similar(7, 10).empty());
  EXPECT_TRUE(cf.Similar(7000000, 10).empty());  // beyond any allocated storage
}

TEST(ItemCfTest, AddUsesTheWindowAndSkipsTheItemAndRepeats) {
  ItemCfConfig config;
  config.window = 5;
  ItemCf cf(config);
  cf.Add(0, std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(cf.pairs(), 5u);
  EXPECT_EQ(cf.items(), 6u);
  const std::vector<uint32_t> neighbours = Items(cf.Similar(0, 10));
  EXPECT_EQ(neighbours, (std::vector<uint32_t>{1, 2, 3, 4, 5}));  // nearer = heavier
  ItemCf repeats(config);
  repeats.Add(0, std::vector<uint32_t>{0, 1, 1, 2, 0});
  EXPECT_EQ(repeats.pairs(), 2u);
  repeats.Add(0, std::vector<uint32_t>{});
  repeats.Add(0, std::vector<uint32_t>{1}, 0.0f);  // zero weight records nothing
  EXPECT_EQ(repeats.pairs(), 2u);
}

TEST(ItemCfTest, PlantedCoOccurringPairsAreEachOthersNearestNeighbour) {
  ItemCf cf;
  AddPlantedPairs(cf, /*pairs=*/100, /*users=*/2000);
  for (uint32_t item = 0; item < 200; ++item) {
    const auto similar = cf.Similar(item, 5);
    ASSERT_FALSE(similar.empty()) << item;
    EXPECT_EQ(similar[0].item, item ^ 1) << "item " << item;
    for (size_t i = 1; i < similar.size(); ++i) {
      EXPECT_GE(similar[i - 1].similarity, similar[i].similarity);
    }
  }
}

TEST(ItemCfTest, BrandNewItemHasNeighboursAfterOneCoInteraction) {
  ItemCfConfig config;
  config.max_neighbours = 4;
  ItemCf cf(config);
  AddPlantedPairs(cf, 10, 500);  // item 0's counters are all taken
  ASSERT_EQ(cf.Similar(0, 100).size(), 4u);
  cf.Add(1000, std::vector<uint32_t>{0});
  EXPECT_EQ(Items(cf.Similar(1000, 10)), (std::vector<uint32_t>{0}));
  EXPECT_EQ(Items(cf.Similar(0, 100)).size(), 4u);
  const std::vector<uint32_t> of_zero = Items(cf.Similar(0, 100));
  EXPECT_NE(std::find(of_zero.begin(), of_zero.end(), 1000u), of_zero.end());
  EXPECT_EQ(of_zero[0], 1u);  // the planted partner survives the newcomer
}

TEST(ItemCfTest, BoundedNeighboursKeepHeavyPairsThroughChurnOfLightPairs) {
  ItemCfConfig config;
  config.max_neighbours = 10;
  ItemCf cf(config);
  // Item 0 meets 1, 2, 3 often and 4000 one-off items once each. Space-Saving keeps every
  // neighbour heavier than total / max_neighbours (here 667 > 6000 / 10).
  for (uint32_t step = 0; step < 4000; ++step) {
    cf.Add(0, std::vector<uint32_t>{1000 + step});
    if (step % 2 == 0) cf.Add(0, std::vector<uint32_t>{1 + (step / 2) % 3});
  }
  const auto similar = cf.Similar(0, 1000);
  EXPECT_LE(similar.size(), 10u);
  ASSERT_GE(similar.size(), 3u);
  std::vector<uint32_t> top3 = {similar[0].item, similar[1].item, similar[2].item};
  std::sort(top3.begin(), top3.end());
  EXPECT_EQ(top3, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_GT(similar[2].similarity, 10 * similar.back().similarity);
  // Each light item still points back at 0.
  EXPECT_EQ(Items(cf.Similar(1000 + 3999, 5)), (std::vector<uint32_t>{0}));
  EXPECT_EQ(cf.pairs(), 6000u);
}

TEST(ItemCfTest, RecommendSkipsHistoryAndExcludedItemsAndNamesTheSource) {
  ItemCf cf;
  AddPlantedPairs(cf, 100, 2000);
  const std::vector<uint32_t> history = {2, 10};  // 2 is the most recent
  auto recs = cf.Recommend(history, 5);
  ASSERT_GE(recs.size(), 2u);
  EXPECT_EQ(recs[0].item, 3u);
  EXPECT_EQ(recs[0].because, 2u);
  EXPECT_EQ(recs[1].item, 11u);
  EXPECT_EQ(recs[1].because, 10u);
  EXPECT_GT(recs[0].score, recs[1].score);
  for (const ItemCf::Scored& r : recs) {
    EXPECT_NE(r.item, 2u);
    EXPECT_NE(r.item, 10u);
  }

  const std::vector<uint32_t> exclude = {3, 50};
  recs = cf.Recommend(history, 5, exclude);
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs[0].item, 11u);
  for (const ItemCf::Scored& r : recs) EXPECT_NE(r.item, 3u);

  // Both halves of a pair in the history: neither is proposed back.
  const std::vector<uint32_t> both = {4, 5};
  for (const ItemCf::Scored& r : cf.Recommend(both, 20)) {
    EXPECT_NE(r.item, 4u);
    EXPECT_NE(r.item, 5u);
  }
  // depth 1: only the most recent item's neighbours.
  for (const ItemCf::Scored& r : cf.Recommend(history, 100, {}, /*depth=*/1)) {
    EXPECT_EQ(r.because, 2u);
  }
  EXPECT_TRUE(cf.Recommend(std::vector<uint32_t>{}, 5).empty());
  EXPECT_EQ(cf.Recommend(history, 1).size(), 1u);
}

TEST(ItemCfTest, ConcurrentAddsFromFourThreadsEqualTheSameAddsOnOneThread) {
  ItemCfConfig config;
  config.max_neighbours = 1000;  // no eviction: every count is exact
  config.distance_decay = 0.5f;  // dyadic weights sum exactly in any order
  std::mt19937 rng(5);
  std::vector<std::vector<uint32_t>> users(400);
  for (auto& sequence : users) {
    for (int i = 0; i < 30; ++i) sequence.push_back(rng() % 500);
  }
  ItemCf single(config);
  for (const auto& sequence : users) AddSequence(single, sequence);

  // A user's events stay in order on one thread, as with partition writers.
  ItemCf shared(config);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t u = t; u < users.size(); u += 4) {
        AddSequence(shared, users[u]);
        if (u % 20 == 0) shared.Recommend(users[u], 10);  // readers meanwhile
      }
    });
  }
  for (std::thread& th : threads) th.join();

  EXPECT_EQ(shared.pairs(), single.pairs());
  EXPECT_EQ(shared.items(), single.items());
  for (uint32_t item = 0; item < 500; ++item) {
    const auto a = single.Similar(item, 1000);
    const auto b = shared.Similar(item, 1000);
    ASSERT_EQ(a.size(), b.size()) << item;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].item, b[i].item) << item;
      ASSERT_EQ(a[i].similarity, b[i].similarity) << item;
    }
  }
}

TEST(ItemCfTest, MemoryIsBoundedByMaxNeighbours) {
  ItemCfConfig config;
  config.max_neighbours = 8;
  ItemCf cf(config);
  for (uint32_t step = 0; step < 2000; ++step) cf.Add(0, std::vector<uint32_t>{1 + step % 50});
  const size_t after_churn = cf.MemoryBytes();
  for (uint32_t step = 0; step < 20000; ++step) cf.Add(0, std::vector<uint32_t>{1 + step % 50});
  EXPECT_EQ(cf.MemoryBytes(), after_churn);
  EXPECT_LE(cf.Similar(0, 100).size(), 8u);
}

// --- Parts: one per partition, combined at read time, saved and restored on their own. ---

// Users' item sequences (strings "i<n>"), each user owned by one of `parts` parts.
struct User {
  uint32_t part;
  std::vector<std::string> items;
};

std::vector<User> Users(uint32_t parts, uint32_t users, uint32_t items, int length, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<User> out(users);
  for (uint32_t u = 0; u < users; ++u) {
    out[u].part = u % parts;
    for (int i = 0; i < length; ++i) {
      // Skewed: low ids are popular, so heavy pairs exist next to a long tail.
      const uint32_t item = std::min(rng() % items, rng() % items);
      out[u].items.push_back("i" + std::to_string(item));
    }
  }
  return out;
}

// An ItemCf with its own catalog, fed and read by item string.
struct NamedCf {
  NamedCf(ItemCfConfig config, uint32_t parts) : cf(config, parts, &catalog) {}

  // Feeds one user's next event: `previous` holds the user's earlier ids, most recent first.
  void Add(uint32_t part, const std::string& item, std::vector<uint32_t>& previous) {
    const uint32_t id = catalog.Intern(item, {});
    cf.Add(part, id, previous);
    previous.insert(previous.begin(), id);
    if (previous.size() > 5) previous.pop_back();
  }
  void AddUser(const User& user) {
    std::vector<uint32_t> previous;
    for (const std::string& item : user.items) Add(user.part, item, previous);
  }

  // Similar as (item string, similarity bits).
  std::vector<std::pair<std::string, uint32_t>> Similar(const std::string& item) const {
    std::vector<std::pair<std::string, uint32_t>> out;
    const uint32_t id = catalog.Find(item);
    if (id == ItemCatalog::kNone) return out;
    for (const ItemCf::Neighbour& n : cf.Similar(id, 1000)) {
      out.emplace_back(std::string(catalog.Item(n.item)), std::bit_cast<uint32_t>(n.similarity));
    }
    return out;
  }
  // Recommend as (item string, score bits, because string).
  std::vector<std::tuple<std::string, uint32_t, std::string>> Recommend(
      const std::vector<std::string>& history, size_t k) const {
    std::vector<uint32_t> ids;
    for (const std::string& item : history) ids.push_back(catalog.Find(item));
    std::vector<std::tuple<std::string, uint32_t, std::string>> out;
    for (const ItemCf::Scored& s : cf.Recommend(ids, k)) {
      out.emplace_back(std::string(catalog.Item(s.item)), std::bit_cast<uint32_t>(s.score),
                       std::string(catalog.Item(s.because)));
    }
    return out;
  }

  ItemCatalog catalog;
  ItemCf cf;
};

// Exact equality, by item string, of every item's neighbours and of a few recommendations.
void ExpectSameModel(const NamedCf& a, const NamedCf& b, uint32_t items) {
  for (uint32_t i = 0; i < items; ++i) {
    const std::string item = "i" + std::to_string(i);
    ASSERT_EQ(a.Similar(item), b.Similar(item)) << item;
  }
  for (uint32_t i = 0; i + 3 < items; i += 7) {
    const std::vector<std::string> history = {"i" + std::to_string(i), "i" + std::to_string(i + 3),
                                              "i" + std::to_string(i + 1)};
    ASSERT_EQ(a.Recommend(history, 20), b.Recommend(history, 20)) << i;
  }
}

TEST(ItemCfPartsTest, UsersSplitOverPartsEqualAllUsersInOnePartWithoutEviction) {
  ItemCfConfig config;
  config.max_neighbours = 1000;  // no eviction: every count is exact
  config.distance_decay = 0.5f;  // dyadic weights: sums are exact in any grouping
  const std::vector<User> users = Users(3, 300, 200, 25, 17);
  NamedCf whole(config, 1);
  NamedCf split(config, 3);
  for (const User& user : users) {
    whole.AddUser({0, user.items});
    split.AddUser(user);
  }
  EXPECT_EQ(split.cf.pairs(), whole.cf.pairs());
  EXPECT_GT(split.cf.items(), whole.cf.items());  // items with counters in several parts
  ExpectSameModel(whole, split, 200);
  EXPECT_FALSE(split.Similar("i0").empty());
  EXPECT_FALSE(split.Recommend({"i0", "i5"}, 10).empty());
}

TEST(ItemCfPartsTest, OnePartOfSeveralReadsAsASingleTable) {
  ItemCfConfig config;
  config.max_neighbours = 6;  // with eviction: the part's own errors carry over unchanged
  ItemCf one(config);
  ItemCf three(config, 3);
  std::mt19937 rng(2);
  for (int i = 0; i < 20000; ++i) {
    const std::vector<uint32_t> previous = {static_cast<uint32_t>(rng() % 300),
                                            static_cast<uint32_t>(rng() % 300)};
    const uint32_t item = rng() % 300;
    one.Add(item, previous, 2.0f);
    three.Add(2, item, previous, 2.0f);
  }
  three.Add(3, 1, std::vector<uint32_t>{2});  // no such part: ignored
  EXPECT_EQ(three.pairs(), one.pairs());
  EXPECT_EQ(three.items(), one.items());
  for (uint32_t item = 0; item < 300; ++item) {
    const auto a = one.Similar(item, 100);
    const auto b = three.Similar(item, 100);
    ASSERT_EQ(Items(a), Items(b)) << item;
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i].similarity, b[i].similarity) << item;
  }
}

TEST(ItemCfPartsTest, EqualSimilaritiesRankByItemStringNotByCatalogId) {
  ItemCatalog catalog;
  const uint32_t pear = catalog.Intern("pear", {});    // id 0
  const uint32_t apple = catalog.Intern("apple", {});  // id 1
  const uint32_t basket = catalog.Intern("basket", {});
  for (ItemCatalog* names : {&catalog, static_cast<ItemCatalog*>(nullptr)}) {
    ItemCf cf({}, 2, names);
    cf.Add(0, basket, std::vector<uint32_t>{pear});
    cf.Add(1, basket, std::vector<uint32_t>{apple});
    const std::vector<uint32_t> want =
        names != nullptr ? std::vector<uint32_t>{apple, pear} : std::vector<uint32_t>{pear, apple};
    EXPECT_EQ(Items(cf.Similar(basket, 10)), want);
    const auto recs = cf.Recommend(std::vector<uint32_t>{basket}, 10);
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].item, want[0]);
    EXPECT_EQ(recs[1].item, want[1]);
  }
}

TEST(ItemCfPartsTest, PartsInterleavedInAnyOrderGiveBitwiseIdenticalResults) {
  ItemCfConfig config;
  config.max_neighbours = 5;  // heavy eviction: counter order and errors matter
  std::vector<User> users = Users(3, 240, 150, 20, 23);
  // Planted ties: ten users, spread over the parts, each pairs "hub" with a leaf of its own, so
  // every leaf is exactly as similar to the hub as the others (no eviction: 4 leaves per part).
  for (uint32_t k = 0; k < 10; ++k) users.push_back({k % 3, {"hub", "leaf-" + std::to_string(k)}});

  // Part after part (last part first), catalog ids assigned in reverse string order beforehand.
  NamedCf sequential(config, 3);
  for (int i = 149; i >= 0; --i) sequential.catalog.Intern("i" + std::to_string(i), {});
  for (int p = 2; p >= 0; --p) {
    for (const User& user : users) {
      if (user.part == static_cast<uint32_t>(p)) sequential.AddUser(user);
    }
  }
  // The parts' streams (each: its users one after the other) interleaved event by event, at
  // random: every part sees its own events in the same order, the parts mix differently.
  NamedCf interleaved(config, 3);
  {
    struct Cursor {
      size_t user, step;
    };
    std::vector<std::vector<Cursor>> stream_of(3);  // per part: its users' events in user order
    size_t left = 0;
    for (size_t u = 0; u < users.size(); ++u) {
      for (size_t step = 0; step < users[u].items.size(); ++step, ++left) {
        stream_of[users[u].part].push_back({u, step});
      }
    }
    std::vector<std::vector<uint32_t>> previous(users.size());
    std::vector<size_t> next(3, 0);  // per part: events fed so far
    std::mt19937 rng(3);
    while (left > 0) {
      const uint32_t p = rng() % 3;
      if (next[p] == stream_of[p].size()) continue;
      const Cursor c = stream_of[p][next[p]++];
      interleaved.Add(p, users[c.user].items[c.step], previous[c.user]);
      --left;
    }
  }
  // One writer thread per part, readers meanwhile.
  NamedCf threaded(config, 3);
  {
    std::vector<std::thread> writers;
    for (uint32_t p = 0; p < 3; ++p) {
      writers.emplace_back([&, p] {
        for (size_t u = p; u < users.size(); u += 3) {
          threaded.AddUser(users[u]);
          if (u % 30 == 0) threaded.cf.Recommend(std::vector<uint32_t>{0, 1, 2}, 10);
        }
      });
    }
    for (std::thread& t : writers) t.join();
  }
  EXPECT_EQ(sequential.cf.pairs(), interleaved.cf.pairs());
  EXPECT_EQ(threaded.cf.pairs(), interleaved.cf.pairs());
  ExpectSameModel(sequential, interleaved, 150);
  ExpectSameModel(threaded, interleaved, 150);
  const auto hub = interleaved.Similar("hub");
  ASSERT_EQ(hub.size(), 10u);
  EXPECT_EQ(hub.front().second, hub.back().second);  // all tied
  for (const NamedCf* other : {&sequential, &threaded}) {
    EXPECT_EQ(other->Similar("hub"), hub);
    EXPECT_EQ(other->Recommend({"leaf-3", "leaf-7"}, 5),
              interleaved.Recommend({"leaf-3", "leaf-7"}, 5));
  }
}

TEST(ItemCfPartsTest, SavedPartsLoadIntoAFreshCatalogAndContinueExactly) {
  ItemCfConfig config;
  config.max_neighbours = 8;  // with eviction: errors and counter order must survive
  const std::vector<User> users = Users(3, 300, 160, 20, 31);
  const std::vector<User> later = Users(3, 200, 180, 10, 32);
  NamedCf original(config, 3);
  for (const User& user : users) original.AddUser(user);

  // A fresh process: other items first and the known ones in reverse order, so ids all differ.
  NamedCf restored(config, 3);
  for (int i = 0; i < 50; ++i) restored.catalog.Intern("unrelated-" + std::to_string(i), {});
  for (int i = 179; i >= 0; --i) restored.catalog.Intern("i" + std::to_string(i), {});
  restored.AddUser({1, {"i1", "i2", "i3"}});  // stale content the load replaces
  for (uint32_t p = 0; p < 3; ++p) {
    std::string blob = "prefix";  // SavePart appends
    original.cf.SavePart(p, &blob);
    ASSERT_TRUE(restored.cf.LoadPart(p, std::string_view(blob).substr(6)).ok()) << p;
  }
  EXPECT_EQ(restored.cf.pairs(), original.cf.pairs());
  EXPECT_EQ(restored.cf.items(), original.cf.items());
  EXPECT_EQ(restored.cf.MemoryBytes(), original.cf.MemoryBytes());
  ExpectSameModel(restored, original, 180);

  // Both go on with the same users: evictions pick the same counters, results stay identical.
  for (const User& user : later) {
    original.AddUser(user);
    restored.AddUser(user);
  }
  EXPECT_EQ(restored.cf.pairs(), original.cf.pairs());
  ExpectSameModel(restored, original, 180);

  // An empty part round-trips to an empty part.
  NamedCf empty(config, 1);
  std::string blob;
  empty.cf.SavePart(0, &blob);
  ASSERT_TRUE(restored.cf.LoadPart(2, blob).ok());
  EXPECT_LT(restored.cf.pairs(), original.cf.pairs());
}

TEST(ItemCfPartsTest, LoadingPartsWhileReadersRunIsSafe) {
  ItemCfConfig config;
  config.max_neighbours = 6;
  NamedCf source(config, 2);
  for (const User& user : Users(2, 100, 60, 10, 51)) source.AddUser(user);
  std::string blobs[2];
  for (uint32_t p = 0; p < 2; ++p) source.cf.SavePart(p, &blobs[p]);
  NamedCf target(config, 2);
  for (int i = 59; i >= 0; --i) target.catalog.Intern("i" + std::to_string(i), {});
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      target.cf.Similar(3, 10);
      target.cf.Recommend(std::vector<uint32_t>{1, 2, 3}, 10);
      std::string saved;
      target.cf.SavePart(0, &saved);
      (void)target.cf.MemoryBytes();
    }
  });
  for (int round = 0; round < 30; ++round) {
    for (uint32_t p = 0; p < 2; ++p) ASSERT_TRUE(target.cf.LoadPart(p, blobs[p]).ok());
    target.AddUser({static_cast<uint32_t>(round % 2), {"i1", "i2", "i50"}});
  }
  for (uint32_t p = 0; p < 2; ++p) ASSERT_TRUE(target.cf.LoadPart(p, blobs[p]).ok());
  done.store(true);
  reader.join();
  ExpectSameModel(target, source, 60);
  EXPECT_EQ(target.cf.pairs(), source.cf.pairs());
}

// Replaces the trailing checksum so that a corrupted body reaches the parser.
std::string Reseal(std::string body) {
  AppendFixed64(&body, Hash64(body));
  return body;
}

TEST(ItemCfPartsTest, CorruptOrTruncatedPartsAreRejectedAndLeaveThePartUnchanged) {
  ItemCfConfig config;
  config.max_neighbours = 6;
  NamedCf source(config, 2);
  for (const User& user : Users(2, 30, 25, 8, 41)) source.AddUser(user);
  std::string blob;
  source.cf.SavePart(1, &blob);
  const std::string body = blob.substr(0, blob.size() - 8);

  NamedCf reference(config, 2);  // holds part 1 only
  ASSERT_TRUE(reference.cf.LoadPart(1, blob).ok());
  NamedCf target(config, 2);
  ASSERT_TRUE(target.cf.LoadPart(1, blob).ok());
  const auto unchanged = [&] {
    ExpectSameModel(target, reference, 25);
    EXPECT_EQ(target.cf.pairs(), reference.cf.pairs());
  };
  for (size_t n = 0; n < blob.size(); ++n) {
    const absl::Status status = target.cf.LoadPart(1, std::string_view(blob).substr(0, n));
    ASSERT_EQ(status.code(), absl::StatusCode::kDataLoss) << n;
    if (n < body.size()) {
      ASSERT_FALSE(target.cf.LoadPart(1, Reseal(body.substr(0, n))).ok()) << n;
    }
  }
  unchanged();
  for (size_t i = 0; i < blob.size(); ++i) {
    for (const int flip : {0x01, 0x80, 0xff}) {
      std::string bad = blob;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      ASSERT_EQ(target.cf.LoadPart(1, bad).code(), absl::StatusCode::kDataLoss) << i;
    }
  }
  unchanged();
  // Garbage behind a valid checksum: an error or some valid content, never a crash.
  for (size_t i = 0; i < body.size(); ++i) {
    for (const int flip : {0x01, 0x40, 0x80, 0xff}) {
      std::string bad = body;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      (void)target.cf.LoadPart(1, Reseal(bad));
    }
  }
  EXPECT_EQ(target.cf.LoadPart(1, Reseal(body + "x")).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(target.cf.LoadPart(1, Reseal(std::string(64, '\xff'))).code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(target.cf.LoadPart(1, blob).ok());
  unchanged();

  // A node with more counters than this instance keeps is refused, not truncated.
  ItemCfConfig smaller = config;
  smaller.max_neighbours = 2;
  NamedCf narrow(smaller, 2);
  EXPECT_EQ(narrow.cf.LoadPart(1, blob).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(target.cf.LoadPart(2, blob).code(), absl::StatusCode::kInvalidArgument);
  ItemCf no_catalog(config, 2);
  EXPECT_EQ(no_catalog.LoadPart(1, blob).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace persona
