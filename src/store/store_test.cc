// The log half of the Store: append, read back, LastSeq, reopen, concurrency, trim, rewrite; the
// users' attributes kept beside the log; and the small named values.
#include "store/store.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/scoped_temp_dir.h"
#include "store/store_format.h"

namespace persona {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Store> OpenOrDie(const std::string& dir, uint32_t partitions) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir, partitions);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::string Record(uint32_t partition, uint64_t seq) {
  return "p" + std::to_string(partition) + "s" + std::to_string(seq) +
         std::string(seq % 7 * 100, static_cast<char>('a' + seq % 26));
}

// All (seq, record) of a partition's log from `from_seq`, failing the test on a read error.
std::vector<std::pair<uint64_t, std::string>> ReadAll(Store& store, uint32_t partition,
                                                      uint64_t from_seq = 0) {
  std::vector<std::pair<uint64_t, std::string>> out;
  auto it = store.ReadLog(partition, from_seq);
  for (; it->Valid(); it->Next()) out.emplace_back(it->seq(), std::string(it->record()));
  EXPECT_TRUE(it->status().ok()) << it->status();
  return out;
}

TEST(StoreLogTest, AppendedRecordsReadBackInSeqOrderPerPartition) {
  ScopedTempDir dir("log_order");
  auto store = OpenOrDie(dir.path(), 3);
  ASSERT_NE(store, nullptr);
  // Interleave partitions, and append out of order within one: the log is ordered by seq.
  for (uint64_t seq : {1, 2, 3, 5, 4, 6, 300, 256}) {
    for (uint32_t p = 0; p < 3; ++p) {
      ASSERT_TRUE(store->Append(p, seq, Record(p, seq), {}, /*sync=*/false).ok());
    }
  }
  for (uint32_t p = 0; p < 3; ++p) {
    const auto records = ReadAll(*store, p);
    const std::vector<uint64_t> want = {1, 2, 3, 4, 5, 6, 256, 300};
    ASSERT_EQ(records.size(), want.size()) << "partition " << p;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(records[i].first, want[i]);
      EXPECT_EQ(records[i].second, Record(p, want[i]));
    }
    const auto tail = ReadAll(*store, p, 6);
    ASSERT_EQ(tail.size(), 3u);
    EXPECT_EQ(tail.front().first, 6u);
  }
  EXPECT_TRUE(ReadAll(*store, 0, 301).empty());
}

TEST(StoreLogTest, LastSeqIsHighestSeqOrZeroWhenEmpty) {
  ScopedTempDir dir("last_seq");
  auto store = OpenOrDie(dir.path(), 4);
  ASSERT_NE(store, nullptr);
  for (uint32_t p = 0; p < 4; ++p) EXPECT_EQ(*store->LastSeq(p), 0u);
  ASSERT_TRUE(store->Append(1, 9, "x", {}, false).ok());
  ASSERT_TRUE(store->Append(1, 3, "x", {}, false).ok());
  ASSERT_TRUE(store->Append(2, 1ULL << 40, "x", {}, false).ok());
  EXPECT_EQ(*store->LastSeq(0), 0u) << "a neighbour's records must not leak into partition 0";
  EXPECT_EQ(*store->LastSeq(1), 9u);
  EXPECT_EQ(*store->LastSeq(2), 1ULL << 40);
  EXPECT_EQ(*store->LastSeq(3), 0u);
}

TEST(StoreLogTest, LastPartitionOfTheLargestStoreWorks) {
  ScopedTempDir dir("max_partitions");
  auto store = OpenOrDie(dir.path(), kMaxPartitions);
  ASSERT_NE(store, nullptr);
  const uint32_t last = kMaxPartitions - 1;
  ASSERT_TRUE(store->Append(last, 7, "end", {}, false).ok());
  EXPECT_EQ(*store->LastSeq(last), 7u);
  EXPECT_EQ(ReadAll(*store, last).size(), 1u);
}

TEST(StoreLogTest, ReopenKeepsRecordsAndPartitionCount) {
  ScopedTempDir dir("reopen");
  {
    auto store = OpenOrDie(dir.path(), 5);
    ASSERT_NE(store, nullptr);
    for (uint64_t seq = 1; seq <= 50; ++seq) {
      ASSERT_TRUE(store->Append(seq % 5, seq, Record(seq % 5, seq), {}, false).ok());
    }
    ASSERT_TRUE(store->PutMeta("engine.version", "1.2.3").ok());
  }
  // A different requested count must not change the layout of an existing store.
  auto store = OpenOrDie(dir.path(), 8);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->partitions(), 5u);
  EXPECT_EQ(**store->GetMeta("config.partitions"), "5");
  EXPECT_EQ(**store->GetMeta("config.format"), "2") << "a new store records its format";
  EXPECT_EQ(**store->GetMeta("engine.version"), "1.2.3");
  for (uint32_t p = 0; p < 5; ++p) {
    const auto records = ReadAll(*store, p);
    EXPECT_EQ(records.size(), 10u);
    for (const auto& [seq, record] : records) EXPECT_EQ(record, Record(p, seq));
  }
  EXPECT_EQ(*store->LastSeq(0), 50u);
  // And the stored count sticks across further opens, even with 0 ("whatever it has").
  store.reset();
  store = OpenOrDie(dir.path(), 0);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->partitions(), 5u);
}

TEST(StoreLogTest, ReopenAfterFlushReadsFromSstFiles) {
  ScopedTempDir dir("flush");
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    for (uint64_t seq = 1; seq <= 20; ++seq) {
      ASSERT_TRUE(store->Append(0, seq, std::string(64 * 1024, 'a' + seq % 26), {}, false).ok());
    }
    ASSERT_TRUE(store->Flush().ok());
    EXPECT_NE(store->Property("log:rocksdb.num-files-at-level0"), "0");
  }
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(ReadAll(*store, 0).size(), 20u);
  EXPECT_EQ(*store->GetLogRecord(0, 20), std::string(64 * 1024, 'a' + 20 % 26));
}

TEST(StoreLogTest, ConcurrentAppendsFromFourThreadsAreAllReadable) {
  ScopedTempDir dir("concurrent");
  auto store = OpenOrDie(dir.path(), 4);
  ASSERT_NE(store, nullptr);
  constexpr uint64_t kPerThread = 300;
  std::vector<std::thread> threads;
  std::vector<absl::Status> failures(4);
  for (uint32_t p = 0; p < 4; ++p) {
    threads.emplace_back([&, p] {
      for (uint64_t seq = 1; seq <= kPerThread; ++seq) {
        // Every tenth append syncs, so synced and unsynced writers share group commits.
        DeadLetter letter{static_cast<int64_t>(seq), "partition", seq, "u", "f", "r", "raw"};
        absl::Status s =
            store->Append(p, seq, Record(p, seq), std::span(&letter, seq % 3 == 0), seq % 10 == 0);
        if (!s.ok()) {
          failures[p] = s;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (uint32_t p = 0; p < 4; ++p) {
    ASSERT_TRUE(failures[p].ok()) << failures[p];
    const auto records = ReadAll(*store, p);
    ASSERT_EQ(records.size(), kPerThread);
    for (uint64_t i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(records[i].first, i + 1);
      EXPECT_EQ(records[i].second, Record(p, i + 1));
    }
  }
  EXPECT_EQ(*store->CountDeadLetters(), 4 * (kPerThread / 3));
}

TEST(StoreLogTest, TrimLogDeletesOnlyRecordsBelowTheSeqOfThatPartition) {
  ScopedTempDir dir("trim");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    ASSERT_TRUE(store->Append(0, seq, Record(0, seq), {}, false).ok());
    ASSERT_TRUE(store->Append(1, seq, Record(1, seq), {}, false).ok());
  }
  ASSERT_TRUE(store->TrimLog(0, 7).ok());
  const auto records = ReadAll(*store, 0);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records.front().first, 7u);
  EXPECT_EQ(absl::StatusCode::kNotFound, store->GetLogRecord(0, 6).status().code());
  EXPECT_TRUE(store->GetLogRecord(0, 7).ok());
  EXPECT_EQ(ReadAll(*store, 1).size(), 10u) << "trimming partition 0 must not touch partition 1";
  EXPECT_EQ(*store->LastSeq(0), 10u);

  ASSERT_TRUE(store->TrimLog(0, 11).ok());
  EXPECT_EQ(*store->LastSeq(0), 0u);
  EXPECT_TRUE(ReadAll(*store, 0).empty());
  // Appending continues after a full trim, and a trim survives reopen.
  ASSERT_TRUE(store->Append(0, 11, Record(0, 11), {}, false).ok());
  store.reset();
  store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  const auto after = ReadAll(*store, 0);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].first, 11u);
}

TEST(StoreLogTest, PutLogRecordRewritesInPlaceAndSurvivesReopen) {
  ScopedTempDir dir("rewrite");
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      ASSERT_TRUE(store->Append(0, seq, "user-a,user-b", {}, false).ok());
    }
    ASSERT_TRUE(store->PutLogRecord(0, 2, "user-b").ok());
    EXPECT_EQ(*store->GetLogRecord(0, 2), "user-b");
    ASSERT_TRUE(store->SyncWal().ok());
  }
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const auto records = ReadAll(*store, 0);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].second, "user-a,user-b");
  EXPECT_EQ(records[1].second, "user-b");
  EXPECT_EQ(records[2].second, "user-a,user-b");
}

TEST(StoreLogTest, GetLogRecordOfMissingSeqIsNotFound) {
  ScopedTempDir dir("missing_seq");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Append(0, 1, "", {}, false).ok());
  EXPECT_EQ(*store->GetLogRecord(0, 1), "") << "an empty record is still a record";
  absl::StatusOr<std::string> missing = store->GetLogRecord(0, 2);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("2"));
}

TEST(StoreLogTest, OutOfRangePartitionAndSeqZeroAreInvalidArguments) {
  ScopedTempDir dir("invalid");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Append(2, 1, "x", {}, false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Append(0, 0, "x", {}, false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->LastSeq(7).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GetLogRecord(2, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->TrimLog(9, 1).code(), absl::StatusCode::kInvalidArgument);
  auto it = store->ReadLog(2, 0);
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().code(), absl::StatusCode::kInvalidArgument);
  it->Next();  // harmless on an invalid iterator
  EXPECT_FALSE(it->Valid());
}

TEST(StoreLogTest, NewStoreNeedsAPartitionCountInRange) {
  ScopedTempDir dir("bad_count");
  EXPECT_EQ(Store::Open(dir.path() + "/a", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Store::Open(dir.path() + "/b", kMaxPartitions + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing was created by the refused opens: a valid open afterwards starts empty.
  auto store = OpenOrDie(dir.path() + "/a", 3);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->partitions(), 3u);
}

TEST(StoreLogTest, SecondOpenOfTheSameDirectoryFailsWhileTheFirstIsOpen) {
  ScopedTempDir dir("locked");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(dir.path(), 1);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("LOCK"));
}

TEST(StoreMetaTest, PutGetAndReservedKeysAreRefused) {
  ScopedTempDir dir("meta");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->GetMeta("engine.version"), std::nullopt);
  ASSERT_TRUE(store->PutMeta("engine.version", "2").ok());
  ASSERT_TRUE(store->PutMeta("engine.version", "3").ok());
  EXPECT_EQ(**store->GetMeta("engine.version"), "3");
  // The store's own keys change only through its own calls: PutMeta could otherwise forge a
  // format, a checkpoint, an operator's committed state or a user's attributes.
  const std::string attributes_key = EncodeAttributesKey(0, "ann");
  for (std::string_view key :
       {std::string_view("config.partitions"), std::string_view("config.format"),
        std::string_view("ckpt/0"), std::string_view("op/0/tags"), std::string_view("op/"),
        std::string_view("attr/"), std::string_view(attributes_key)}) {
    absl::Status s = store->PutMeta(key, "9");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(std::string(s.message()), HasSubstr("store's own")) << key;
  }
  EXPECT_EQ(**store->GetMeta("config.partitions"), "2");
  EXPECT_EQ(**store->GetMeta("config.format"), "2");
  EXPECT_EQ(*store->GetMeta("op/0/tags"), std::nullopt);
  EXPECT_EQ(*store->GetMeta(attributes_key), std::nullopt);
  // Keys that merely resemble them are the caller's.
  EXPECT_TRUE(store->PutMeta("config.formatting", "x").ok());
  EXPECT_TRUE(store->PutMeta("options/1", "x").ok());
}

TEST(StoreMetaTest, PropertyAggregatesFamiliesOrAsksOne) {
  ScopedTempDir dir("property");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(store->Append(0, seq, "r", {}, false).ok());
  EXPECT_EQ(store->Property("log:rocksdb.estimate-num-keys"), "10");
  // 10 log records + the partition count and the format in meta.
  EXPECT_EQ(store->Property("rocksdb.estimate-num-keys"), "12");
  EXPECT_FALSE(store->Property("rocksdb.stats").empty());
  EXPECT_EQ(store->Property("rocksdb.no-such-property"), "");
  EXPECT_EQ(store->Property("nofamily:rocksdb.estimate-num-keys"), "");
}

// The attributes of a user (JSON text) as PutAttributes left them, per partition.
using Attributes = std::map<std::string, std::string>;
Attributes AllAttributes(Store& store, uint32_t partition) {
  Attributes out;
  absl::Status s =
      store.ForEachAttributes(partition, [&](std::string_view user, std::string_view json) {
        EXPECT_TRUE(out.emplace(user, json).second) << "user '" << user << "' listed twice";
        return absl::OkStatus();
      });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST(StoreAttributesTest, PutReplacesDeleteRemovesAndBothSurviveReopen) {
  ScopedTempDir dir("attributes");
  const std::string binary_user("b\0\xff", 3);
  {
    auto store = OpenOrDie(dir.path(), 2);
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(AllAttributes(*store, 1).empty());
    ASSERT_TRUE(store->PutAttributes(1, "ann", R"({"plan":"free"})", /*sync=*/false).ok());
    ASSERT_TRUE(store->PutAttributes(1, "ann", R"({"plan":"pro"})", /*sync=*/true).ok());
    ASSERT_TRUE(store->PutAttributes(1, "bob", R"({"age":40})", false).ok());
    ASSERT_TRUE(store->PutAttributes(1, binary_user, "{}", true).ok());
    ASSERT_TRUE(store->DeleteAttributes(1, "bob").ok());
    ASSERT_TRUE(store->DeleteAttributes(1, "never-had-any").ok()) << "not an error";
    EXPECT_EQ(AllAttributes(*store, 1),
              (Attributes{{"ann", R"({"plan":"pro"})"}, {binary_user, "{}"}}));
  }
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllAttributes(*store, 1),
            (Attributes{{"ann", R"({"plan":"pro"})"}, {binary_user, "{}"}}));
  EXPECT_TRUE(AllAttributes(*store, 0).empty());
  EXPECT_TRUE(store
                  ->ForEachProfile(1, UINT64_MAX,
                                   [](std::string_view, uint64_t, std::string_view) {
                                     return absl::InternalError(
                                         "attributes are not profile versions");
                                   })
                  .ok());
  EXPECT_EQ(store->PutAttributes(2, "ann", "{}", false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->DeleteAttributes(2, "ann").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store
                ->ForEachAttributes(
                    2, [](std::string_view, std::string_view) { return absl::OkStatus(); })
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StoreAttributesTest, ForEachAttributesReturnsOnlyThatPartitionsUsers) {
  ScopedTempDir dir("attributes_partitions");
  // Adjacent partitions, including 255/256 where both prefix bytes change, and 1/10 and 25/255
  // whose decimal spellings are prefixes of each other. Every partition holds the same user ids,
  // one of them spelled like the next partition's prefix.
  const std::vector<uint32_t> partitions = {0, 1, 10, 25, 255, 256};
  const std::vector<std::string> users = {"shared", std::string("\x01\x00", 2), "\xff\xff"};
  auto store = OpenOrDie(dir.path(), 257);
  ASSERT_NE(store, nullptr);
  for (uint32_t p : partitions) {
    for (const std::string& user : users) {
      ASSERT_TRUE(store->PutAttributes(p, user, "{\"p\":" + std::to_string(p) + "}", false).ok());
    }
    ASSERT_TRUE(store->PutAttributes(p, "only-" + std::to_string(p), "{}", false).ok());
  }
  for (uint32_t p : partitions) {
    Attributes want;
    for (const std::string& user : users) want[user] = "{\"p\":" + std::to_string(p) + "}";
    want["only-" + std::to_string(p)] = "{}";
    EXPECT_EQ(AllAttributes(*store, p), want) << "partition " << p;
  }
  EXPECT_TRUE(AllAttributes(*store, 2).empty());
  EXPECT_TRUE(AllAttributes(*store, 254).empty());

  int calls = 0;
  absl::Status s = store->ForEachAttributes(255, [&](std::string_view, std::string_view) {
    ++calls;
    return absl::CancelledError("stop here");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace persona

namespace persona {
namespace {

TEST(StoreReadOnlyTest, AReaderOpensAStoreAWriterHoldsAndSeesItsLog) {
  ScopedTempDir dir("read_only");
  EXPECT_EQ(Store::OpenReadOnly(dir.path()).status().code(), absl::StatusCode::kNotFound);
  auto writer = Store::Open(dir.path(), 2);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(1, 1, "first", {}, /*sync=*/true).ok());
  ASSERT_TRUE((*writer)->Append(1, 2, "second", {}, /*sync=*/true).ok());
  auto reader = Store::OpenReadOnly(dir.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->partitions(), 2u);
  std::vector<std::string> seen;
  for (auto it = (*reader)->ReadLog(1, 1); it->Valid(); it->Next()) {
    seen.emplace_back(it->record());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"first", "second"}));
  EXPECT_FALSE((*reader)->Append(1, 3, "third", {}, true).ok());
  // The writer is unaffected.
  EXPECT_TRUE((*writer)->Append(1, 3, "third", {}, true).ok());
}

}  // namespace
}  // namespace persona
