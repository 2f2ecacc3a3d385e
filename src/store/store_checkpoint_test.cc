// The checkpoint protocol: versioned profiles, the committed meta with the operators' states, and
// recovery from a crash between writing a generation and committing it (docs/checkpoint_format.md
// argues why it is safe; this test replays the argument with a toy engine).
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "store/scoped_temp_dir.h"
#include "store/store.h"

namespace persona {
namespace {

constexpr uint64_t kAllGenerations = UINT64_MAX;
using Blobs = std::vector<std::pair<std::string_view, std::string_view>>;

std::unique_ptr<Store> OpenOrDie(const std::string& dir, uint32_t partitions) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir, partitions);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// Every stored version (user, generation, blob) with a generation <= max_generation, in the order
// ForEachProfile visits them.
using Version = std::tuple<std::string, uint64_t, std::string>;
std::vector<Version> AllVersions(Store& store, uint32_t partition,
                                 uint64_t max_generation = kAllGenerations) {
  std::vector<Version> out;
  absl::Status s =
      store.ForEachProfile(partition, max_generation,
                           [&](std::string_view user, uint64_t generation, std::string_view blob) {
                             out.emplace_back(std::string(user), generation, std::string(blob));
                             return absl::OkStatus();
                           });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// What recovery loads: each user's newest version with a generation <= max_generation. Keeping
// the last one visited is the newest-version rule, since ForEachProfile goes in generation order.
using Profiles = std::map<std::string, std::pair<uint64_t, std::string>>;  // user -> gen, blob
Profiles NewestProfiles(Store& store, uint32_t partition, uint64_t max_generation) {
  Profiles out;
  for (auto& [user, generation, blob] : AllVersions(store, partition, max_generation)) {
    auto [it, inserted] = out.try_emplace(user, generation, blob);
    if (!inserted) {
      EXPECT_GT(generation, it->second.first) << "versions of '" << user << "' out of order";
      it->second = {generation, blob};
    }
  }
  return out;
}

// The newest version of one user with a generation <= max_generation (GetProfile's successor).
std::optional<std::pair<uint64_t, std::string>> NewestProfile(Store& store, uint32_t partition,
                                                              uint64_t max_generation,
                                                              std::string_view user) {
  const Profiles all = NewestProfiles(store, partition, max_generation);
  auto it = all.find(std::string(user));
  if (it == all.end()) return std::nullopt;
  return it->second;
}

std::pair<uint64_t, std::string> At(uint64_t generation, std::string blob) {
  return {generation, std::move(blob)};
}

TEST(StoreCheckpointTest, NoCheckpointYetIsSeqZeroEmptyBlobAndNoOperatorState) {
  ScopedTempDir dir("ckpt_none");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<Store::CheckpointMeta> meta = store->LoadCheckpointMeta(1);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->seq, 0u);
  EXPECT_EQ(meta->blob, "");
  EXPECT_TRUE(AllVersions(*store, 1).empty());
  EXPECT_EQ(NewestProfile(*store, 1, kAllGenerations, "nobody"), std::nullopt);
  absl::StatusOr<std::optional<std::string>> state = store->LoadOperatorState(1, "tags");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, std::nullopt);
  EXPECT_EQ(store->LoadOperatorState(2, "tags").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StoreCheckpointTest, CommittedCheckpointAndVersionedProfilesSurviveReopen) {
  ScopedTempDir dir("ckpt_roundtrip");
  const std::string binary_user("u\0\xff", 3);
  {
    auto store = OpenOrDie(dir.path(), 2);
    ASSERT_NE(store, nullptr);
    const Blobs first = {{"alice", "A1"}, {"bob", ""}};
    const Blobs second = {{binary_user, std::string_view("\0blob", 5)}};
    const Blobs other = {{"alice", "P1"}};
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

  const Profiles p0 = NewestProfiles(*store, 0, meta->seq);
  ASSERT_EQ(p0.size(), 3u);
  EXPECT_EQ(p0.at("alice"), At(40, "A1"));
  EXPECT_EQ(p0.at("bob"), At(40, ""));
  EXPECT_EQ(p0.at(binary_user), At(40, std::string("\0blob", 5)));
  EXPECT_TRUE(NewestProfiles(*store, 0, 39).empty()) << "generation 40 is above 39";

  const Profiles p1 = NewestProfiles(*store, 1, kAllGenerations);
  ASSERT_EQ(p1.size(), 1u) << "profiles of partition 0 must not appear in partition 1";
  EXPECT_EQ(p1.at("alice"), At(7, "P1"));
  EXPECT_TRUE(NewestProfiles(*store, 1, 0).empty())
      << "partition 1's generation 7 was never committed: not part of its state at seq 0";
  EXPECT_EQ(NewestProfile(*store, 1, kAllGenerations, "bob"), std::nullopt);
}

TEST(StoreCheckpointTest, OlderCommitIsRefusedSameSeqIsAllowed) {
  ScopedTempDir dir("ckpt_order");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const Blobs state_a = {{"tags", "a"}};
  const Blobs state_b = {{"tags", "b"}};
  const Blobs state_c = {{"tags", "c"}};
  ASSERT_TRUE(store->CommitCheckpoint(0, 0, "empty engine").ok());
  ASSERT_TRUE(store->CommitCheckpoint(0, 10, "a", state_a).ok());
  ASSERT_TRUE(store->CommitCheckpoint(0, 10, "b", state_b).ok());
  EXPECT_EQ(store->CommitCheckpoint(0, 9, "c", state_c).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->LoadCheckpointMeta(0)->blob, "b");
  EXPECT_EQ(**store->LoadOperatorState(0, "tags"), "b")
      << "a refused commit writes neither the meta nor the operators' states";
}

TEST(StoreCheckpointTest, ForEachProfileVisitsVersionsInGenerationOrderUpToMaxGeneration) {
  ScopedTempDir dir("ckpt_generations");
  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  // Written out of generation order on purpose: the order comes from the keys.
  const Blobs g9 = {{"a", "a9"}};
  const Blobs g5 = {{"c", "c5"}, {"b", "b5"}};
  const Blobs g3 = {{"b", "b3"}, {"a", "a3"}};
  const Blobs neighbour = {{"a", "other partition"}};
  ASSERT_TRUE(store->PutProfiles(0, 9, g9).ok());
  ASSERT_TRUE(store->PutProfiles(0, 5, g5).ok());
  ASSERT_TRUE(store->PutProfiles(0, 3, g3).ok());
  ASSERT_TRUE(store->PutProfiles(1, 4, neighbour).ok());

  EXPECT_EQ(AllVersions(*store, 0, 5),
            (std::vector<Version>{{"a", 3, "a3"}, {"b", 3, "b3"}, {"b", 5, "b5"}, {"c", 5, "c5"}}));
  EXPECT_EQ(AllVersions(*store, 0, 4), (std::vector<Version>{{"a", 3, "a3"}, {"b", 3, "b3"}}));
  EXPECT_TRUE(AllVersions(*store, 0, 2).empty());
  EXPECT_EQ(AllVersions(*store, 0).size(), 5u);
  EXPECT_EQ(NewestProfiles(*store, 0, kAllGenerations),
            (Profiles{{"a", At(9, "a9")}, {"b", At(5, "b5")}, {"c", At(5, "c5")}}));
  EXPECT_EQ(NewestProfiles(*store, 0, 8),
            (Profiles{{"a", At(3, "a3")}, {"b", At(5, "b5")}, {"c", At(5, "c5")}}));
  EXPECT_EQ(AllVersions(*store, 1), (std::vector<Version>{{"a", 4, "other partition"}}));
}

TEST(StoreCheckpointTest, DeleteProfileRemovesOnlyThatVersionAndForEachStopsAtTheFirstError) {
  ScopedTempDir dir("ckpt_delete");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const Blobs g5 = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  const Blobs g8 = {{"b", "2'"}};
  ASSERT_TRUE(store->PutProfiles(0, 5, g5).ok());
  ASSERT_TRUE(store->PutProfiles(0, 8, g8).ok());
  ASSERT_TRUE(store->DeleteProfile(0, "b", 5).ok());
  ASSERT_TRUE(store->DeleteProfile(0, "never-existed", 5).ok());
  ASSERT_TRUE(store->DeleteProfile(0, "a", 6).ok()) << "no version 6 of a: not an error";
  EXPECT_EQ(NewestProfile(*store, 0, 7, "b"), std::nullopt) << "b's version 5 is gone";
  EXPECT_EQ(NewestProfile(*store, 0, 8, "b"), At(8, "2'")) << "its version 8 is not";
  EXPECT_EQ(NewestProfile(*store, 0, 8, "a"), At(5, "1"));
  EXPECT_EQ(store->DeleteProfile(1, "a", 5).code(), absl::StatusCode::kInvalidArgument);

  int calls = 0;
  absl::Status s =
      store->ForEachProfile(0, kAllGenerations, [&](std::string_view, uint64_t, std::string_view) {
        ++calls;
        return absl::CancelledError("stop here");
      });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(AllVersions(*store, 0).size(), 3u);
}

TEST(StoreCheckpointTest, DeleteProfilesAboveRemovesOnlyLaterGenerationsOfThatPartition) {
  ScopedTempDir dir("ckpt_delete_above");
  auto store = OpenOrDie(dir.path(), 3);
  ASSERT_NE(store, nullptr);
  for (uint64_t generation : {0, 2, 5, 6, 1000}) {
    const std::string blob = "v" + std::to_string(generation);
    const Blobs blobs = {{"u", blob}, {std::string_view("\xff\xff\xff", 3), blob}};
    ASSERT_TRUE(store->PutProfiles(0, generation, blobs).ok());
    ASSERT_TRUE(store->PutProfiles(1, generation, blobs).ok());
  }
  const std::vector<Version> before_1 = AllVersions(*store, 1);
  ASSERT_EQ(before_1.size(), 10u);

  ASSERT_TRUE(store->DeleteProfilesAbove(0, 5).ok());
  std::set<uint64_t> left;
  for (const auto& [user, generation, blob] : AllVersions(*store, 0)) left.insert(generation);
  EXPECT_EQ(left, (std::set<uint64_t>{0, 2, 5}));
  EXPECT_EQ(AllVersions(*store, 0).size(), 6u);
  EXPECT_EQ(AllVersions(*store, 1), before_1) << "partition 1 is not touched";

  ASSERT_TRUE(store->DeleteProfilesAbove(0, kAllGenerations).ok()) << "nothing is above it";
  EXPECT_EQ(AllVersions(*store, 0).size(), 6u);
  ASSERT_TRUE(store->DeleteProfilesAbove(0, 0).ok());
  EXPECT_EQ(NewestProfiles(*store, 0, kAllGenerations).at("u"), At(0, "v0"));
  EXPECT_EQ(AllVersions(*store, 0).size(), 2u);
  ASSERT_TRUE(store->DeleteProfilesAbove(2, 0).ok()) << "an empty partition";
  EXPECT_EQ(store->DeleteProfilesAbove(3, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST(StoreCheckpointTest, EmptyUserIdIsRefused) {
  ScopedTempDir dir("ckpt_empty_user");
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  const Blobs blobs = {{"ok", "1"}, {"", "2"}};
  EXPECT_EQ(store->PutProfiles(0, 1, blobs).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(AllVersions(*store, 0).empty()) << "a refused call writes nothing";
}

// The crash the versioned layout exists for: a checkpoint wrote part of its generation, then died
// before CommitCheckpoint. The committed state must be untouched and the leftovers removable.
TEST(StoreCheckpointTest, CrashBeforeCommitLeavesExactlyTheCommittedStateAndRemovableLeftovers) {
  ScopedTempDir dir("ckpt_uncommitted");
  const Profiles committed = {{"alice", At(4, "A4")}, {"bob", At(2, "B2")}, {"carol", At(4, "C4")}};
  {
    auto store = OpenOrDie(dir.path(), 2);
    ASSERT_NE(store, nullptr);
    const Blobs g2 = {{"alice", "A2"}, {"bob", "B2"}};
    ASSERT_TRUE(store->PutProfiles(0, 2, g2).ok());
    ASSERT_TRUE(store->CommitCheckpoint(0, 2, "m2").ok());
    const Blobs g4 = {{"alice", "A4"}, {"carol", "C4"}};
    ASSERT_TRUE(store->PutProfiles(0, 4, g4).ok());
    ASSERT_TRUE(store->CommitCheckpoint(0, 4, "m4").ok());
    ASSERT_TRUE(store->DeleteProfile(0, "alice", 2).ok());
    // Generation 7 begins: it overwrites nothing of the committed state, in two calls...
    const Blobs g7a = {{"alice", "A7"}, {"bob", "B7"}};
    const Blobs g7b = {{"dave", "D7"}};
    ASSERT_TRUE(store->PutProfiles(0, 7, g7a).ok());
    ASSERT_TRUE(store->PutProfiles(0, 7, g7b).ok());
    // ... and meanwhile the committed state reads the same as before it began.
    EXPECT_EQ(NewestProfiles(*store, 0, 4), committed);
  }  // ... and the process dies here: CommitCheckpoint(0, 7) never happens.

  auto store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<Store::CheckpointMeta> meta = store->LoadCheckpointMeta(0);
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_EQ(meta->seq, 4u) << "the interrupted commit must not show";
  EXPECT_EQ(meta->blob, "m4");
  EXPECT_EQ(NewestProfiles(*store, 0, meta->seq), committed)
      << "newest version <= the committed seq is exactly the state committed at seq 4";
  EXPECT_EQ(NewestProfiles(*store, 0, kAllGenerations).at("alice"), At(7, "A7"))
      << "the leftovers are on disk until recovery removes them";

  ASSERT_TRUE(store->DeleteProfilesAbove(0, meta->seq).ok());
  for (const auto& [user, generation, blob] : AllVersions(*store, 0)) {
    EXPECT_LE(generation, meta->seq) << "uncommitted version of " << user << " survived";
  }
  EXPECT_EQ(NewestProfiles(*store, 0, kAllGenerations), committed);

  // Why the leftovers must go: the retried checkpoint at 7 writes only what it changes this time
  // (not dave, whose events may not have been logged durably at all), and must not resurrect
  // what the dead attempt wrote.
  const Blobs retry = {{"bob", "B7'"}};
  ASSERT_TRUE(store->PutProfiles(0, 7, retry).ok());
  ASSERT_TRUE(store->CommitCheckpoint(0, 7, "m7").ok());
  ASSERT_TRUE(store->DeleteProfile(0, "bob", 2).ok());
  store.reset();
  store = OpenOrDie(dir.path(), 2);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(NewestProfiles(*store, 0, 7),
            (Profiles{{"alice", At(4, "A4")}, {"bob", At(7, "B7'")}, {"carol", At(4, "C4")}}));
}

TEST(StoreCheckpointTest, CrashAfterCommitBeforeDeletingReplacedVersionsKeepsTheNewest) {
  ScopedTempDir dir("ckpt_shadowed");
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    const Blobs g3 = {{"a", "old"}, {"b", "b3"}};
    ASSERT_TRUE(store->PutProfiles(0, 3, g3).ok());
    ASSERT_TRUE(store->CommitCheckpoint(0, 3, "").ok());
    const Blobs g8 = {{"a", "new"}};
    ASSERT_TRUE(store->PutProfiles(0, 8, g8).ok());
    ASSERT_TRUE(store->CommitCheckpoint(0, 8, "").ok());
  }  // dies before DeleteProfile(0, "a", 3)
  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllVersions(*store, 0, 8),
            (std::vector<Version>{{"a", 3, "old"}, {"b", 3, "b3"}, {"a", 8, "new"}}))
      << "the replaced version is visited first, so keeping the last one seen keeps the newest";
  EXPECT_EQ(NewestProfiles(*store, 0, 8), (Profiles{{"a", At(8, "new")}, {"b", At(3, "b3")}}));
}

TEST(StoreCheckpointTest, OperatorStatesAreCommittedAtomicallyWithTheMetaAndReplacedByTheNext) {
  ScopedTempDir dir("ckpt_operator_states");
  // 11 partitions: "op/1/..." and "op/10/..." must not be confused.
  {
    auto store = OpenOrDie(dir.path(), 11);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(*store->LoadOperatorState(1, "tags"), std::nullopt) << "before any commit";
    const Blobs first = {{"tags", std::string_view("t\0"
                                                   "10",
                                                   4)},
                         {"recommend", "r10"}};
    ASSERT_TRUE(store->CommitCheckpoint(1, 10, "m10", first).ok());
    const Blobs neighbour = {{"tags", "p10"}};
    ASSERT_TRUE(store->CommitCheckpoint(10, 3, "n3", neighbour).ok());
  }
  auto store = OpenOrDie(dir.path(), 11);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(**store->LoadOperatorState(1, "tags"), std::string("t\0"
                                                               "10",
                                                               4));
  EXPECT_EQ(**store->LoadOperatorState(1, "recommend"), "r10");
  EXPECT_EQ(*store->LoadOperatorState(1, "unknown"), std::nullopt);
  EXPECT_EQ(*store->LoadOperatorState(0, "tags"), std::nullopt) << "states are per partition";
  EXPECT_EQ(**store->LoadOperatorState(10, "tags"), "p10");

  // The next commit replaces the states it names and leaves the others: a state it omits stays
  // as it was at seq 10 (the engine tells it is stale by the seq it prefixes to every state).
  const Blobs second = {{"tags", "t20"}, {"audience", ""}};
  ASSERT_TRUE(store->CommitCheckpoint(1, 20, "m20", second).ok());
  EXPECT_EQ(store->LoadCheckpointMeta(1)->blob, "m20");
  EXPECT_EQ(**store->LoadOperatorState(1, "tags"), "t20");
  EXPECT_EQ(**store->LoadOperatorState(1, "audience"), "") << "an empty state is a state";
  EXPECT_EQ(**store->LoadOperatorState(1, "recommend"), "r10") << "left as it was";
  EXPECT_EQ(**store->LoadOperatorState(10, "tags"), "p10") << "partition 10 is not partition 1";

  ASSERT_TRUE(store->CommitCheckpoint(1, 30, "m30").ok());
  EXPECT_EQ(**store->LoadOperatorState(1, "tags"), "t20") << "a commit with no operators";
  EXPECT_EQ(**store->LoadOperatorState(10, "tags"), "p10");
  EXPECT_EQ(store->PutMeta("op/1/tags", "forged").code(), absl::StatusCode::kInvalidArgument);
}

// A toy engine for the crash test: a log record is "user:amount,user:amount,..."; a profile is the
// decimal sum of a user's amounts; the meta blob is the number of events applied and the one
// operator ("total") keeps the sum over all users.
class ToyPartition {
 public:
  explicit ToyPartition(Store* store) : store_(store) {}

  void Append(uint64_t seq, const std::string& record) {
    ASSERT_TRUE(store_->Append(0, seq, record, {}, false).ok());
    Apply(record);
  }

  // The first half of a checkpoint at `seq`: writes the profiles of `users` under generation seq.
  void PutProfiles(uint64_t seq, const std::vector<std::string>& users) {
    std::vector<std::string> blobs;
    for (const std::string& user : users) blobs.push_back(std::to_string(sums_[user]));
    Blobs pairs;
    for (size_t i = 0; i < users.size(); ++i) pairs.emplace_back(users[i], blobs[i]);
    ASSERT_TRUE(store_->PutProfiles(0, seq, pairs).ok());
  }

  // A whole checkpoint as the engine does it: the changed profiles, the commit with the
  // operator's state, then the replaced versions are deleted.
  void Checkpoint(uint64_t seq) {
    const std::vector<std::string> dirty(dirty_.begin(), dirty_.end());
    PutProfiles(seq, dirty);
    const std::string total = std::to_string(total_);
    const Blobs states = {{"total", total}};
    ASSERT_TRUE(store_->CommitCheckpoint(0, seq, std::to_string(events_), states).ok());
    for (const std::string& user : dirty) {
      if (generations_[user] != 0 && generations_[user] != seq) {
        ASSERT_TRUE(store_->DeleteProfile(0, user, generations_[user]).ok());
      }
      generations_[user] = seq;
    }
    dirty_.clear();
  }

  // Recovery as the engine does it: the committed meta and operator state, every profile at its
  // newest generation <= the committed seq (later ones deleted), then a replay of the log tail
  // after the committed seq, applied to every user.
  void Recover() {
    absl::StatusOr<Store::CheckpointMeta> meta = store_->LoadCheckpointMeta(0);
    ASSERT_TRUE(meta.ok()) << meta.status();
    ASSERT_TRUE(absl::SimpleAtoi(meta->blob.empty() ? "0" : meta->blob, &events_));
    absl::StatusOr<std::optional<std::string>> total = store_->LoadOperatorState(0, "total");
    ASSERT_TRUE(total.ok()) << total.status();
    ASSERT_TRUE(absl::SimpleAtoi(total->value_or("0"), &total_));
    ASSERT_TRUE(store_->DeleteProfilesAbove(0, meta->seq).ok());
    for (const auto& [user, version] : NewestProfiles(*store_, 0, meta->seq)) {
      int64_t sum = 0;
      EXPECT_TRUE(absl::SimpleAtoi(version.second, &sum));
      sums_[user] = sum;
      generations_[user] = version.first;
    }
    auto it = store_->ReadLog(0, meta->seq + 1);
    for (; it->Valid(); it->Next()) Apply(std::string(it->record()));
    ASSERT_TRUE(it->status().ok()) << it->status();
  }

  const std::map<std::string, int64_t>& sums() const { return sums_; }
  int64_t events() const { return events_; }
  int64_t total() const { return total_; }

 private:
  void Apply(const std::string& record) {
    for (absl::string_view event : absl::StrSplit(record, ',')) {
      std::vector<std::string> parts = absl::StrSplit(event, ':');
      ASSERT_EQ(parts.size(), 2u);
      int64_t amount = 0;
      ASSERT_TRUE(absl::SimpleAtoi(parts[1], &amount));
      ++events_;
      total_ += amount;
      sums_[parts[0]] += amount;
      dirty_.insert(parts[0]);
    }
  }

  Store* store_;
  std::map<std::string, int64_t> sums_;
  std::map<std::string, uint64_t> generations_;  // stored version per user (0 = none)
  std::set<std::string> dirty_;
  int64_t events_ = 0;
  int64_t total_ = 0;
};

TEST(StoreCheckpointTest, CrashBetweenPutProfilesAndCommitRecoversExactState) {
  ScopedTempDir dir("ckpt_crash");
  std::map<std::string, int64_t> truth;
  int64_t truth_events = 0;
  int64_t truth_total = 0;
  {
    auto store = OpenOrDie(dir.path(), 1);
    ASSERT_NE(store, nullptr);
    ToyPartition live(store.get());
    live.Append(1, "alice:1,bob:10");
    live.Append(2, "carol:100,alice:2");
    live.Checkpoint(2);
    live.Append(3, "alice:4,carol:200");
    live.Append(4, "bob:20,dave:1000");
    live.Append(5, "erin:5000,alice:8");
    // Second checkpoint at 5 begins: alice and dave (new) get written, then the process dies
    // before bob, carol, erin and before the commit.
    live.PutProfiles(5, {"alice", "dave"});
    truth = live.sums();
    truth_events = live.events();
    truth_total = live.total();
  }  // "crash": the store is gone, the commit never happened

  auto store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LoadCheckpointMeta(0)->seq, 2u) << "the interrupted commit must not show";
  const Profiles on_disk = NewestProfiles(*store, 0, kAllGenerations);
  EXPECT_EQ(on_disk.at("alice").first, 5u) << "newer than the committed checkpoint";
  EXPECT_EQ(on_disk.at("dave").first, 5u);
  EXPECT_EQ(on_disk.count("erin"), 0u);

  ToyPartition recovered(store.get());
  recovered.Recover();
  EXPECT_EQ(recovered.sums(), truth)
      << "loading only generations <= 2 must keep alice's and dave's records 3..5 from being "
         "applied twice, and still replay bob's, carol's and erin's";
  EXPECT_EQ(recovered.events(), truth_events);
  EXPECT_EQ(recovered.total(), truth_total);
  // Had the generation-5 versions been loaded, the replay would have counted alice's 4 and 8
  // twice.
  EXPECT_EQ(recovered.sums().at("alice"), 1 + 2 + 4 + 8);
  for (const auto& [user, generation, blob] : AllVersions(*store, 0)) {
    EXPECT_LE(generation, 2u) << "recovery deletes the uncommitted generation (" << user << ")";
  }

  // The recovered partition goes on: a checkpoint, a clean close and a second recovery give the
  // same state again.
  recovered.Append(6, "bob:40,frank:1");
  recovered.Checkpoint(6);
  truth = recovered.sums();
  truth_events = recovered.events();
  store.reset();
  store = OpenOrDie(dir.path(), 1);
  ASSERT_NE(store, nullptr);
  ToyPartition again(store.get());
  again.Recover();
  EXPECT_EQ(again.sums(), truth);
  EXPECT_EQ(again.events(), truth_events);
  for (const auto& [user, version] : NewestProfiles(*store, 0, 6)) {
    EXPECT_EQ(std::to_string(truth.at(user)), version.second) << user;
  }
  EXPECT_EQ(AllVersions(*store, 0).size(), truth.size())
      << "every replaced version was deleted after its commit";
}

}  // namespace
}  // namespace persona
