// What the Store does with damaged data: bytes it does not interpret come back as they are (the
// engine's decoder judges them); damage to what the Store itself interprets, or to the database,
// becomes a Status naming the problem, never a crash and never a silently empty store. A store
// of another format is refused at open, never misread.
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/scoped_temp_dir.h"
#include "store/store.h"
#include "store/store_format.h"

namespace persona {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::unique_ptr<Store> OpenOrDie(const std::string& dir, uint32_t partitions) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir, partitions);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

constexpr std::string_view kFamilies[] = {"default", "log", "profiles", "meta", "deadletter"};

// Runs `fn` on `family` of a closed store's database opened with plain RocksDB, bypassing the
// Store's encoders and checks: the way a bug in an older version or a bad restore would leave it.
// `create` makes a database (and the families) where there is none.
void WithRawFamily(
    const std::string& dir, std::string_view family,
    const std::function<rocksdb::Status(rocksdb::DB&, rocksdb::ColumnFamilyHandle*)>& fn,
    bool create = false) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (std::string_view name : kFamilies) {
    descriptors.emplace_back(std::string(name), rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DBOptions options;
  options.create_if_missing = create;
  options.create_missing_column_families = create;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir + "/db", descriptors, &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle->GetName() == family) {
      s = fn(*db, handle);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  EXPECT_TRUE(db->Close().ok());
}

rocksdb::Slice Raw(std::string_view s) { return {s.data(), s.size()}; }

void PutRaw(const std::string& dir, std::string_view family, std::string_view key,
            std::string_view value, bool create = false) {
  WithRawFamily(
      dir, family,
      [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* handle) {
        return db.Put(rocksdb::WriteOptions(), handle, Raw(key), Raw(value));
      },
      create);
}

void DeleteRaw(const std::string& dir, std::string_view family, std::string_view key) {
  WithRawFamily(dir, family, [&](rocksdb::DB& db, rocksdb::ColumnFamilyHandle* handle) {
    return db.Delete(rocksdb::WriteOptions(), handle, Raw(key));
  });
}

std::vector<fs::path> FilesWithExtension(const std::string& db_dir, std::string_view ext) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(db_dir)) {
    if (entry.path().extension() == ext) out.push_back(entry.path());
  }
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(StoreCorruptionTest, GarbledLogRecordIsReturnedAsBytesForTheDecoderToReject) {
  ScopedTempDir dir("garbled_record");
  const std::string garbage = RandomBytes(1000, 1) + std::string(3, '\0');
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Append(0, 1, garbage, {}, false).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->GetLogRecord(0, 1), garbage);
  auto it = store->ReadLog(0, 1);
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->record(), garbage);
}

TEST(StoreCorruptionTest, DataDirectoryThatIsAFileIsAClearError) {
  ScopedTempDir dir("dir_is_file");
  const std::string path = dir.path() + "/data";
  std::ofstream(path) << "not a directory";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path, 1);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST(StoreCorruptionTest, DatabaseWithoutCurrentIsRefusedNotRecreatedEmpty) {
  ScopedTempDir dir("no_current");
  {
    auto store = OpenOrDie(dir.path(), 2);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Append(0, 1, "precious", {}, true).ok());
  }
  fs::remove(dir.path() + "/db/CURRENT");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir.path(), 2);
  ASSERT_FALSE(store.ok()) << "an empty store over the old files would lose the log silently";
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("no CURRENT"));
}

TEST(StoreCorruptionTest, CurrentNamingAMissingManifestIsAnError) {
  ScopedTempDir dir("bad_current");
  { ASSERT_NE(OpenOrDie(dir.path(), 1), nullptr); }
  std::ofstream(dir.path() + "/db/CURRENT", std::ios::trunc) << "MANIFEST-999999\n";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir.path(), 1);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("MANIFEST-999999"));
}

TEST(StoreCorruptionTest, MissingSstFileIsAnErrorAtOpen) {
  ScopedTempDir dir("missing_sst");
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Append(0, 1, "record", {}, false).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  const auto tables = FilesWithExtension(dir.path() + "/db", ".sst");
  ASSERT_FALSE(tables.empty());
  for (const auto& table : tables) fs::remove(table);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir.path(), 1);
  ASSERT_FALSE(store.ok()) << "a store missing its tables must not open as if empty";
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("No such file"));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
}

TEST(StoreCorruptionTest, DamagedSstBlockIsDataLossOnReadNotACrash) {
  ScopedTempDir dir("damaged_sst");
  constexpr uint64_t kRecords = 16;
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    for (uint64_t seq = 1; seq <= kRecords; ++seq) {
      // Incompressible, so that the file is mostly data blocks and the damage lands in one.
      ASSERT_TRUE(store->Append(0, seq, RandomBytes(64 * 1024, seq), {}, false).ok());
    }
    ASSERT_TRUE(store->Flush().ok());
  }
  const auto tables = FilesWithExtension(dir.path() + "/db", ".sst");
  fs::path largest;
  for (const auto& t : tables) {
    if (largest.empty() || fs::file_size(t) > fs::file_size(largest)) largest = t;
  }
  ASSERT_FALSE(largest.empty());
  {
    std::fstream file(largest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(largest) / 3));
    file.write("CORRUPTCORRUPTCORRUPT", 21);
  }
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(dir.path(), 1);
  if (!opened.ok()) {
    // Also acceptable: the damage was found at open. It must say so, not crash.
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
    return;
  }
  Store& store = **opened;
  auto it = store.ReadLog(0, 1);
  uint64_t read = 0;
  for (; it->Valid(); it->Next()) ++read;
  EXPECT_LT(read, kRecords);
  EXPECT_EQ(it->status().code(), absl::StatusCode::kDataLoss) << it->status();
  bool saw_data_loss = false;
  for (uint64_t seq = 1; seq <= kRecords; ++seq) {
    absl::StatusOr<std::string> record = store.GetLogRecord(0, seq);
    if (!record.ok()) {
      EXPECT_EQ(record.status().code(), absl::StatusCode::kDataLoss) << record.status();
      saw_data_loss = true;
    }
  }
  EXPECT_TRUE(saw_data_loss);
}

TEST(StoreCorruptionTest, ProfileValueShorterThanItsLabelIsDataLoss) {
  ScopedTempDir dir("short_profile");
  { ASSERT_NE(OpenOrDie(dir.path(), 1), nullptr); }
  PutRaw(dir.path(), "profiles", EncodeProfileKey(0, 3, "mallory"), "abc");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  absl::Status s = store->ForEachProfile(
      0, 3, [](std::string_view, uint64_t, std::string_view) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("partition 0"));
  EXPECT_TRUE(
      store
          ->ForEachProfile(
              0, 2, [](std::string_view, uint64_t, std::string_view) { return absl::OkStatus(); })
          .ok())
      << "a damaged version above max_generation is not read";
}

TEST(StoreCorruptionTest, ProfileKeyShorterThanPartitionAndGenerationIsDataLoss) {
  ScopedTempDir dir("short_profile_key");
  { ASSERT_NE(OpenOrDie(dir.path(), 1), nullptr); }
  // A format-1 key ([partition][user], no generation) that slipped into a format-2 store.
  PutRaw(dir.path(), "profiles", std::string("\0\0", 2) + "mal", EncodeProfileValue(1, "x"));
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  int calls = 0;
  absl::Status s =
      store->ForEachProfile(0, UINT64_MAX, [&](std::string_view, uint64_t, std::string_view) {
        ++calls;
        return absl::OkStatus();
      });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_EQ(calls, 0) << "its bytes must not be read as a generation and a user";
}

TEST(StoreCorruptionTest, FormatOneStoreIsRefusedAtOpenWithAdviceToReimport) {
  ScopedTempDir dir("format_one");
  // (a) A store of this build whose format key was removed: what a format-1 store looks like.
  const std::string stripped = dir.path() + "/stripped";
  {
    auto store = OpenOrDie(stripped, 2);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(**store->GetMeta(kFormatKey), "2");
    ASSERT_TRUE(store->Append(1, 1, "precious", {}, true).ok());
  }
  DeleteRaw(stripped, "meta", kFormatKey);
  // (b) One written from scratch the way format 1 did: a partition count, unversioned profiles.
  const std::string old = dir.path() + "/old";
  fs::create_directories(old);
  PutRaw(old, "meta", kPartitionCountKey, "2", /*create=*/true);
  PutRaw(old, "profiles", std::string("\0\0", 2) + "alice", EncodeProfileValue(7, "blob"));

  for (const std::string& path : {stripped, old}) {
    for (bool read_only : {false, true}) {
      absl::StatusOr<std::unique_ptr<Store>> store =
          read_only ? Store::OpenReadOnly(path) : Store::Open(path, 2);
      ASSERT_FALSE(store.ok()) << path << ": a format-1 store must not be read as format 2";
      EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
      EXPECT_THAT(std::string(store.status().message()), HasSubstr("format 1"));
      EXPECT_THAT(std::string(store.status().message()), HasSubstr("Re-import"));
    }
  }
  // The refusal changed nothing: with the format key back, the log is all there.
  PutRaw(stripped, "meta", kFormatKey, "2");
  auto store = OpenOrDie(stripped, 2);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->GetLogRecord(1, 1), "precious");
}

TEST(StoreCorruptionTest, UnknownStoreFormatIsRefusedAtOpen) {
  ScopedTempDir dir("format_three");
  { ASSERT_NE(OpenOrDie(dir.path(), 1), nullptr); }
  PutRaw(dir.path(), "meta", kFormatKey, "3");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir.path(), 1);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("format 3"));
}

TEST(StoreCorruptionTest, CheckpointValueShorterThanItsSeqIsDataLoss) {
  ScopedTempDir dir("short_checkpoint");
  { ASSERT_NE(OpenOrDie(dir.path(), 2), nullptr); }
  PutRaw(dir.path(), "meta", "ckpt/1", "1234");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LoadCheckpointMeta(1).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store->CommitCheckpoint(1, 5, "x").code(), absl::StatusCode::kDataLoss)
      << "a commit must not paper over an unreadable previous checkpoint";
  EXPECT_TRUE(store->LoadCheckpointMeta(0).ok());
}

TEST(StoreCorruptionTest, GarbledPartitionCountFailsOpen) {
  ScopedTempDir dir("bad_count");
  { ASSERT_NE(OpenOrDie(dir.path(), 4), nullptr); }
  PutRaw(dir.path(), "meta", "config.partitions", "four");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir.path(), 4);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("four"));
}

TEST(StoreCorruptionTest, UndecodableDeadLetterIsListedAsSuchAndDoesNotHideOthers) {
  ScopedTempDir dir("bad_dead_letter");
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    const DeadLetter letter{10, "http", 1, "u", "f", "r", "raw"};
    ASSERT_TRUE(store->AddDeadLetters(std::span(&letter, 1), true).ok());
  }
  const DeadLetterKey key = EncodeDeadLetterKey(5, 999);
  PutRaw(dir.path(), "deadletter", std::string_view(key.data(), key.size()), "\x01garbage");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  auto all = store->ListDeadLetters("", 10);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  const DeadLetter& bad = (*all)[0].letter;
  EXPECT_EQ(bad.received_ms, 5);
  EXPECT_THAT(bad.rule, HasSubstr("undecodable"));
  EXPECT_EQ(bad.raw, "\x01garbage");
  EXPECT_EQ((*all)[1].letter.user_id, "u");
  EXPECT_EQ(*store->CountDeadLetters(), 2u);
  EXPECT_EQ(*store->EraseDeadLettersOfUser("u"), 1u);
  // A new letter in the undecodable one's millisecond gets a key of its own.
  const DeadLetter later{5, "http", 2, "", "", "", ""};
  ASSERT_TRUE(store->AddDeadLetters(std::span(&later, 1), false).ok());
  EXPECT_EQ(*store->CountDeadLetters(), 2u);
}

}  // namespace
}  // namespace persona
