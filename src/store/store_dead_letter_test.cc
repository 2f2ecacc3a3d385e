// Dead letters in the Store: order, paging, count, erasure by user, purge, and unique ids.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/scoped_temp_dir.h"
#include "store/store.h"

namespace persona {
namespace {

std::unique_ptr<Store> OpenOrDie(const std::string& dir, uint32_t partitions) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir, partitions);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

DeadLetter Letter(int64_t received_ms, std::string user_id, uint64_t position) {
  return DeadLetter{received_ms, "http", position, std::move(user_id), "ts", "too old", "{...}"};
}

std::vector<StoredDeadLetter> ListAll(Store& store) {
  absl::StatusOr<std::vector<StoredDeadLetter>> all = store.ListDeadLetters("", 1000000);
  EXPECT_TRUE(all.ok()) << all.status();
  return all.ok() ? *all : std::vector<StoredDeadLetter>{};
}

std::vector<uint64_t> Positions(const std::vector<StoredDeadLetter>& letters) {
  std::vector<uint64_t> out;
  for (const auto& l : letters) out.push_back(l.letter.position);
  return out;
}

TEST(StoreDeadLetterTest, ListedOldestFirstByReceivedTimeThenArrival) {
  ScopedTempDir dir("dl_order");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  const std::vector<DeadLetter> batch = {Letter(300, "a", 1), Letter(100, "b", 2),
                                         Letter(300, "c", 3)};
  ASSERT_TRUE(store->AddDeadLetters(batch, false).ok());
  const DeadLetter with_record = Letter(200, "d", 4);
  ASSERT_TRUE(store->Append(1, 1, "record", std::span(&with_record, 1), true).ok());

  const auto all = ListAll(*store);
  EXPECT_EQ(Positions(all), (std::vector<uint64_t>{2, 4, 1, 3}));
  EXPECT_EQ(all[1].letter.user_id, "d");
  EXPECT_EQ(all[1].letter.rule, "too old");
  EXPECT_EQ(all[1].letter.raw, "{...}");
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].id, all[i].id) << "ids sort";
  EXPECT_EQ(*store->CountDeadLetters(), 4u);
}

TEST(StoreDeadLetterTest, PagingWithAfterIdVisitsEachLetterOnce) {
  ScopedTempDir dir("dl_paging");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  std::vector<DeadLetter> letters;
  for (uint64_t i = 0; i < 10; ++i) letters.push_back(Letter(1000 + i / 3, "u", i));
  ASSERT_TRUE(store->AddDeadLetters(letters, false).ok());

  std::vector<uint64_t> seen;
  std::string after;
  int pages = 0;
  while (true) {
    auto page = store->ListDeadLetters(after, 3);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    ++pages;
    for (const auto& l : *page) seen.push_back(l.letter.position);
    after = page->back().id;
  }
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(store->ListDeadLetters("", 0)->empty());
}

TEST(StoreDeadLetterTest, AfterIdOfAnErasedLetterStillPages) {
  ScopedTempDir dir("dl_paging_erased");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const std::vector<DeadLetter> letters = {Letter(1, "keep", 0), Letter(2, "gone", 1),
                                           Letter(3, "keep", 2)};
  ASSERT_TRUE(store->AddDeadLetters(letters, false).ok());
  const std::string middle = ListAll(*store)[1].id;
  ASSERT_EQ(*store->EraseDeadLettersOfUser("gone"), 1u);
  auto page = store->ListDeadLetters(middle, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(Positions(*page), std::vector<uint64_t>{2});
}

TEST(StoreDeadLetterTest, MalformedAfterIdIsInvalidArgument) {
  ScopedTempDir dir("dl_bad_id");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  for (std::string_view bad : {"xyz", "00ff", "0123456789abcdef0123456789abcdeg"}) {
    EXPECT_EQ(store->ListDeadLetters(bad, 5).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(StoreDeadLetterTest, EraseByUserRemovesExactlyThatUsersLettersDurably) {
  ScopedTempDir dir("dl_erase");
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    std::vector<DeadLetter> letters;
    for (uint64_t i = 0; i < 30; ++i) {
      letters.push_back(Letter(5000 + i, i % 3 == 0 ? "victim" : (i % 3 == 1 ? "victim2" : ""), i));
    }
    ASSERT_TRUE(store->AddDeadLetters(letters, false).ok());
    EXPECT_EQ(*store->EraseDeadLettersOfUser("victim"), 10u);
    EXPECT_EQ(*store->EraseDeadLettersOfUser("victim"), 0u) << "idempotent";
    EXPECT_EQ(*store->EraseDeadLettersOfUser("vict"), 0u) << "exact match, not prefix";
    EXPECT_EQ(store->EraseDeadLettersOfUser("").status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const auto all = ListAll(*store);
  EXPECT_EQ(all.size(), 20u);
  for (const auto& l : all) EXPECT_NE(l.letter.user_id, "victim");
}

TEST(StoreDeadLetterTest, PurgeRemovesAllAndLaterLettersAreKept) {
  ScopedTempDir dir("dl_purge");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  std::vector<DeadLetter> letters(50, Letter(77, "u", 1));
  ASSERT_TRUE(store->AddDeadLetters(letters, false).ok());
  ASSERT_TRUE(store->PurgeDeadLetters().ok());
  EXPECT_EQ(*store->CountDeadLetters(), 0u);
  EXPECT_TRUE(ListAll(*store).empty());
  // A letter with an earlier time than the purged ones is still kept: the purge is a moment, not
  // a key range in time.
  ASSERT_TRUE(store->AddDeadLetters(std::vector<DeadLetter>{Letter(1, "u", 2)}, false).ok());
  EXPECT_EQ(Positions(ListAll(*store)), std::vector<uint64_t>{2});
}

TEST(StoreDeadLetterTest, IdsStayUniqueAndOrderedAcrossReopen) {
  ScopedTempDir dir("dl_reopen");
  std::string last_id_before;
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    std::vector<DeadLetter> letters(5, Letter(1000, "u", 1));
    ASSERT_TRUE(store->AddDeadLetters(letters, false).ok());
    last_id_before = ListAll(*store).back().id;
  }
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  // Same millisecond as before the restart: the counter must continue, not restart at 0.
  std::vector<DeadLetter> letters(5, Letter(1000, "u", 2));
  ASSERT_TRUE(store->AddDeadLetters(letters, false).ok());
  const auto all = ListAll(*store);
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(all[4].id, last_id_before);
  for (size_t i = 5; i < 10; ++i) {
    EXPECT_EQ(all[i].letter.position, 2u);
    EXPECT_GT(all[i].id, last_id_before);
  }
}

TEST(StoreDeadLetterTest, ConcurrentWritersNeverShareAnId) {
  ScopedTempDir dir("dl_concurrent");
  auto store = OpenOrDie(dir.path(), 4);
  ASSERT_NE(store, nullptr);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 100; ++i) {
        // All in the same millisecond: only the counter separates the keys.
        const DeadLetter letter = Letter(42, "u" + std::to_string(t), i);
        if (i % 2 == 0) {
          EXPECT_TRUE(store->AddDeadLetters(std::span(&letter, 1), false).ok());
        } else {
          EXPECT_TRUE(store->Append(t, i, "r", std::span(&letter, 1), false).ok());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto all = ListAll(*store);
  EXPECT_EQ(all.size(), 400u);
  std::set<std::string> ids;
  for (const auto& l : all) ids.insert(l.id);
  EXPECT_EQ(ids.size(), 400u);
  EXPECT_EQ(*store->CountDeadLetters(), 400u);
}

}  // namespace
}  // namespace persona
