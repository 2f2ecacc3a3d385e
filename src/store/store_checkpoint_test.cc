// The checkpoint protocol: labelled profiles, the committed meta, and recovery from a crash
// between writing profiles and committing (docs/checkpoint_format.md argues why it is safe; this
// test replays the argument with a toy engine).
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
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

using Profiles = std::map<std::string, std::pair<uint64_t, std::string>>;  // user -> label, blob

Profiles AllProfiles(Store& store, uint32_t partition) {
  Profiles out;
  absl::Status s = store.ForEachProfile(
      partition, [&](std::string_view user, uint64_t label, std::string_view blob) {
        out[std::string(user)] = {label, std::string(blob)};
        return absl::OkStatus();
      });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST(StoreCheckpointTest, NoCheckpointYetIsSeqZeroAndEmptyBlob) {
  ScopedTempDir dir("ckpt_none");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<Store::CheckpointMeta> meta = store->LoadCheckpointMeta(1);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->seq, 0u);
  EXPECT_EQ(meta->blob, "");
  EXPECT_TRUE(AllProfiles(*store, 1).empty());
  EXPECT_EQ(*store->GetProfile(1, "nobody"), std::nullopt);
}

TEST(StoreCheckpointTest, CommittedCheckpointAndLabelledProfilesSurviveReopen) {
  ScopedTempDir dir("ckpt_roundtrip");
  const std::string binary_user("u\0\xff", 3);
  {
    auto store = OpenOrDie(dir.path(), 2);
    ASSERT_NE(store, nullptr);
    const std::vector<std::pair<std::string_view, std::string_view>> first = {{"alice", "A1"},
                                                                              {"bob", ""}};
    const std::vector<std::pair<std::string_view, std::string_view>> second = {
        {binary_user, std::string_view("\0blob", 5)}};
    const std::vector<std::pair<std::string_view, std::string_view>> other = {{"alice", "P1"}};
    ASSERT_TRUE(store->PutProfiles(0, 40, first).ok());
    ASSERT_TRUE(store->PutProfiles(0, 40, second).ok());
    ASSERT_TRUE(store->PutProfiles(1, 7, other).ok());
    ASSERT_TRUE(store->CommitCheckpoint(0, 40, std::string_view("meta\0bytes", 10)).ok());
  }
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<Store::CheckpointMeta> meta = store->LoadCheckpointMeta(0);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->seq, 40u);
  EXPECT_EQ(meta->blob, std::string("meta\0bytes", 10));
  EXPECT_EQ(store->LoadCheckpointMeta(1)->seq, 0u) << "partition 1 never committed";

  const Profiles p0 = AllProfiles(*store, 0);
  ASSERT_EQ(p0.size(), 3u);
  EXPECT_EQ(p0.at("alice"), std::make_pair(uint64_t{40}, std::string("A1")));
  EXPECT_EQ(p0.at("bob"), std::make_pair(uint64_t{40}, std::string()));
  EXPECT_EQ(p0.at(binary_user), std::make_pair(uint64_t{40}, std::string("\0blob", 5)));
  const Profiles p1 = AllProfiles(*store, 1);
  ASSERT_EQ(p1.size(), 1u) << "profiles of partition 0 must not appear in partition 1";
  EXPECT_EQ(p1.at("alice").second, "P1");
  EXPECT_EQ(**store->GetProfile(0, "alice"), std::make_pair(uint64_t{40}, std::string("A1")));
  EXPECT_EQ(*store->GetProfile(1, "bob"), std::nullopt);
}

TEST(StoreCheckpointTest, OlderCommitIsRefusedSameSeqIsAllowed) {
  ScopedTempDir dir("ckpt_order");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CommitCheckpoint(0, 0, "empty engine").ok());
  ASSERT_TRUE(store->CommitCheckpoint(0, 10, "a").ok());
  ASSERT_TRUE(store->CommitCheckpoint(0, 10, "b").ok());
  EXPECT_EQ(store->CommitCheckpoint(0, 9, "c").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->LoadCheckpointMeta(0)->blob, "b");
}

TEST(StoreCheckpointTest, DeleteProfileRemovesItAndForEachStopsAtTheFirstError) {
  ScopedTempDir dir("ckpt_delete");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const std::vector<std::pair<std::string_view, std::string_view>> blobs = {
      {"a", "1"}, {"b", "2"}, {"c", "3"}};
  ASSERT_TRUE(store->PutProfiles(0, 5, blobs).ok());
  ASSERT_TRUE(store->DeleteProfile(0, "b").ok());
  ASSERT_TRUE(store->DeleteProfile(0, "never-existed").ok());
  EXPECT_EQ(*store->GetProfile(0, "b"), std::nullopt);
  int calls = 0;
  absl::Status s = store->ForEachProfile(0, [&](std::string_view, uint64_t, std::string_view) {
    ++calls;
    return absl::CancelledError("stop here");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(AllProfiles(*store, 0).size(), 2u);
}

TEST(StoreCheckpointTest, EmptyUserIdIsRefused) {
  ScopedTempDir dir("ckpt_empty_user");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const std::vector<std::pair<std::string_view, std::string_view>> blobs = {{"ok", "1"}, {"", "2"}};
  EXPECT_EQ(store->PutProfiles(0, 1, blobs).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(AllProfiles(*store, 0).empty()) << "a refused call writes nothing";
}

// A toy engine for the crash test: a log record is "user:amount,user:amount,..."; a profile is
// the decimal sum of a user's amounts; the meta blob is the number of events applied.
class ToyPartition {
 public:
  explicit ToyPartition(Store* store) : store_(store) {}

  void Append(uint64_t seq, const std::string& record) {
    ASSERT_TRUE(store_->Append(0, seq, record, {}, false).ok());
    Apply(seq, record, /*respect_labels=*/false);
  }

  // Writes the profiles of `users` labelled `seq` (the first half of a checkpoint).
  void PutProfiles(uint64_t seq, const std::vector<std::string>& users) {
    std::vector<std::string> blobs;
    for (const std::string& user : users) blobs.push_back(std::to_string(sums_[user]));
    std::vector<std::pair<std::string_view, std::string_view>> pairs;
    for (size_t i = 0; i < users.size(); ++i) pairs.emplace_back(users[i], blobs[i]);
    ASSERT_TRUE(store_->PutProfiles(0, seq, pairs).ok());
  }

  void Commit(uint64_t seq) {
    ASSERT_TRUE(store_->CommitCheckpoint(0, seq, std::to_string(events_)).ok());
  }

  // Recovery as the engine does it: checkpoint, labelled profiles, replay of the log tail that
  // skips, per profile, the events the profile already reflects.
  void Recover() {
    absl::StatusOr<Store::CheckpointMeta> meta = store_->LoadCheckpointMeta(0);
    ASSERT_TRUE(meta.ok()) << meta.status();
    ASSERT_TRUE(absl::SimpleAtoi(meta->blob.empty() ? "0" : meta->blob, &events_));
    ASSERT_TRUE(
        store_
            ->ForEachProfile(0,
                             [&](std::string_view user, uint64_t label, std::string_view blob) {
                               int64_t sum = 0;
                               EXPECT_TRUE(absl::SimpleAtoi(
                                   absl::string_view(blob.data(), blob.size()), &sum));
                               sums_[std::string(user)] = sum;
                               labels_[std::string(user)] = label;
                               return absl::OkStatus();
                             })
            .ok());
    auto it = store_->ReadLog(0, meta->seq + 1);
    for (; it->Valid(); it->Next()) Apply(it->seq(), std::string(it->record()), true);
    ASSERT_TRUE(it->status().ok()) << it->status();
  }

  const std::map<std::string, int64_t>& sums() const { return sums_; }
  int64_t events() const { return events_; }

 private:
  void Apply(uint64_t seq, const std::string& record, bool respect_labels) {
    for (absl::string_view event : absl::StrSplit(record, ',')) {
      std::vector<std::string> parts = absl::StrSplit(event, ':');
      ASSERT_EQ(parts.size(), 2u);
      ++events_;  // partition-level state is rebuilt from every replayed event
      if (respect_labels && seq <= labels_[parts[0]]) continue;
      int64_t amount = 0;
      ASSERT_TRUE(absl::SimpleAtoi(parts[1], &amount));
      sums_[parts[0]] += amount;
    }
  }

  Store* store_;
  std::map<std::string, int64_t> sums_;
  std::map<std::string, uint64_t> labels_;
  int64_t events_ = 0;
};

TEST(StoreCheckpointTest, CrashBetweenPutProfilesAndCommitRecoversExactState) {
  ScopedTempDir dir("ckpt_crash");
  std::map<std::string, int64_t> truth;
  int64_t truth_events = 0;
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    ToyPartition live(store.get());
    live.Append(1, "alice:1,bob:10");
    live.Append(2, "carol:100,alice:2");
    live.PutProfiles(2, {"alice", "bob", "carol"});
    live.Commit(2);
    live.Append(3, "alice:4,carol:200");
    live.Append(4, "bob:20,dave:1000");
    live.Append(5, "erin:5000,alice:8");
    // Second checkpoint at 5 begins: alice and dave (new) get written, then the process dies
    // before bob, carol, erin and before the commit.
    live.PutProfiles(5, {"alice", "dave"});
    truth = live.sums();
    truth_events = live.events();
  }  // "crash": the store is gone, the commit never happened

  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LoadCheckpointMeta(0)->seq, 2u) << "the interrupted commit must not show";
  const Profiles stored = AllProfiles(*store, 0);
  EXPECT_EQ(stored.at("alice").first, 5u) << "newer than the committed checkpoint";
  EXPECT_EQ(stored.at("dave").first, 5u);
  EXPECT_EQ(stored.at("bob").first, 2u);
  EXPECT_EQ(stored.at("carol").first, 2u);
  EXPECT_EQ(stored.count("erin"), 0u);

  ToyPartition recovered(store.get());
  recovered.Recover();
  EXPECT_EQ(recovered.sums(), truth) << "labels must prevent double-applying alice's and dave's "
                                        "events and still replay bob's, carol's and erin's";
  EXPECT_EQ(recovered.events(), truth_events);
  // Without the labels the replay would have counted alice's 4 and 8 twice.
  EXPECT_EQ(recovered.sums().at("alice"), 1 + 2 + 4 + 8);
}

}  // namespace
}  // namespace persona
