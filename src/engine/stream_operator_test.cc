// The stream pipeline's contract (engine/stream_operator.h), proved with an operator that records
// its callbacks: the order of the callbacks within a batch, operator state that survives a restart
// exactly (checkpoint + the log tail replayed through the operator), refusal of a state left
// behind by a pipeline without the operator, unique names, erasure, and a state that cannot be
// loaded.
#include "engine/stream_operator.h"

#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "common/varint.h"
#include "engine/checkpoint_listener.h"
#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

using testing_util::BatchFromJson;
using testing_util::TempDir;

// Callbacks of every operator of a pipeline, in the order they ran.
struct CallLog {
  std::mutex mu;
  std::vector<std::string> calls;
  void Add(std::string call) {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back(std::move(call));
  }
};

// Counts the events it sees per partition and checkpoints the count (varint); when given a log,
// records each callback as "<name>:<callback>:<user>:<what the profile looked like>".
class RecordingOperator : public StreamOperator {
 public:
  explicit RecordingOperator(std::string name, CallLog* log = nullptr)
      : name_(std::move(name)), log_(log) {}

  std::string_view name() const override { return name_; }
  void OpenPartitions(uint32_t partitions) override {
    events_.assign(partitions, 0);
    replayed_.assign(partitions, 0);
  }
  void BeforeApply(uint32_t, const Event& event, const Profile& before) override {
    Record("before", event.user_id, "events=" + std::to_string(before.events()));
  }
  void OnEvent(const AppliedEvent& applied) override {
    ++events_[applied.partition];
    if (applied.replay) ++replayed_[applied.partition];
    Record("event", applied.user_id,
           "events=" + std::to_string(applied.profile.events()) +
               ":tags=" + std::to_string(applied.profile.tag_bits));
  }
  void OnProfileChanged(const ChangedProfile& changed) override {
    changed.membership |= membership_to_set;
    Record("changed", changed.user_id, "tags=" + std::to_string(changed.profile.tag_bits));
  }
  void OnProfileErased(uint32_t, std::string_view user_id, const Profile& profile,
                       uint64_t membership) override {
    erased.push_back({std::string(user_id), profile.events(), membership});
  }
  void SaveState(uint32_t partition, std::string* out) override {
    AppendVarint64(out, events_[partition]);
  }
  absl::Status LoadState(uint32_t partition, std::string_view blob) override {
    ++loads;
    if (!load_error.ok()) return load_error;
    uint64_t count;
    if (!ReadVarint64(&blob, &count) || !blob.empty()) {
      return absl::DataLossError("bad count");
    }
    events_[partition] = count;
    return absl::OkStatus();
  }

  uint64_t events() const { return std::accumulate(events_.begin(), events_.end(), uint64_t{0}); }
  uint64_t events(uint32_t partition) const { return events_[partition]; }
  uint64_t replayed() const {
    return std::accumulate(replayed_.begin(), replayed_.end(), uint64_t{0});
  }

  struct Erased {
    std::string user;
    uint64_t events;
    uint64_t membership;
  };
  std::vector<Erased> erased;      // writer threads; read after the call returned
  uint64_t membership_to_set = 0;  // OR-ed into every changed profile's membership
  absl::Status load_error;         // what LoadState returns instead of loading
  int loads = 0;

 private:
  void Record(std::string_view callback, std::string_view user, const std::string& what) {
    if (log_ != nullptr) {
      log_->Add(name_ + ":" + std::string(callback) + ":" + std::string(user) + ":" + what);
    }
  }

  std::string name_;
  CallLog* log_;
  std::vector<uint64_t> events_;    // per partition, touched only by its writer
  std::vector<uint64_t> replayed_;  // per partition: events seen with `replay` set
};

EngineConfig TestConfig(const std::string& dir, uint32_t partitions) {
  EngineConfig c;
  c.data_dir = dir + "/data";
  c.partitions = partitions;
  c.sync = SyncPolicy::kNone;
  c.checkpoint_interval_ms = 0;
  c.checkpoint_every_events = 0;
  return c;
}

std::unique_ptr<Engine> Open(const EngineConfig& c, std::vector<StreamOperator*> operators) {
  auto e = Engine::Open(c, {}, std::move(operators));
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

// `n` views spread over `users` users, with event times from `t0` on (distinct event ids).
std::string Views(int n, int users, int64_t t0) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += R"({"event_id":"v)" + std::to_string(t0) + "-" + std::to_string(i) +
           R"(","user_id":"user)" + std::to_string(i % users) + R"(","type":"view","ts":)" +
           std::to_string(t0 + i * 1000) + R"(,"item_id":"item)" + std::to_string(i % 7) +
           R"(","category_path":"books"})" + "\n";
  }
  return out;
}

constexpr int64_t kT0 = 1700000000000;

TEST(StreamOperatorTest, CallbacksRunInListOrderEventByEventThenChangedProfilesAfterTags) {
  TempDir dir("operator_order");
  EngineConfig config = TestConfig(dir.path(), 1);
  config.tag_rules_file = dir.path() + "/tags.rules";
  std::ofstream(config.tag_rules_file) << "viewer: views >= 1\n";
  CallLog log;
  RecordingOperator a("a", &log), b("b", &log);
  auto engine = Open(config, {&a, &b});
  ASSERT_NE(engine, nullptr);
  // One batch, one partition: u1, u2, u1.
  const std::string batch =
      R"({"event_id":"1","user_id":"u1","type":"view","ts":1700000000000,"item_id":"x"})"
      "\n"
      R"({"event_id":"2","user_id":"u2","type":"view","ts":1700000001000,"item_id":"y"})"
      "\n"
      R"({"event_id":"3","user_id":"u1","type":"view","ts":1700000002000,"item_id":"z"})"
      "\n";
  ASSERT_EQ(engine->Ingest(BatchFromJson(batch)).accepted, 3u);
  // BeforeApply sees the profile without the event and OnEvent with it (Profile::Apply ran in
  // between); tags are evaluated by the built-in stage before the operators' OnProfileChanged,
  // never in the per-event stage.
  const std::vector<std::string> expected = {
      "a:before:u1:events=0",       "b:before:u1:events=0",       "a:event:u1:events=1:tags=0",
      "b:event:u1:events=1:tags=0", "a:before:u2:events=0",       "b:before:u2:events=0",
      "a:event:u2:events=1:tags=0", "b:event:u2:events=1:tags=0", "a:before:u1:events=1",
      "b:before:u1:events=1",       "a:event:u1:events=2:tags=0", "b:event:u1:events=2:tags=0",
      "a:changed:u1:tags=1",        "b:changed:u1:tags=1",        "a:changed:u2:tags=1",
      "b:changed:u2:tags=1",
  };
  {
    std::lock_guard<std::mutex> lock(log.mu);
    EXPECT_EQ(log.calls, expected);
    log.calls.clear();
  }
  // An attribute change is a profile change without an event.
  ASSERT_TRUE(engine->SetAttributes("u2", R"({"tier":"gold"})", true).ok());
  {
    std::lock_guard<std::mutex> lock(log.mu);
    EXPECT_EQ(log.calls, (std::vector<std::string>{"a:changed:u2:tags=1", "b:changed:u2:tags=1"}));
  }
  ASSERT_TRUE(engine->Close().ok());
}

TEST(StreamOperatorTest, CheckpointedStatePlusReplayedTailEqualsTheStateOfARunThatNeverStopped) {
  TempDir dir("operator_recovery");
  EngineConfig config = TestConfig(dir.path(), 2);
  config.checkpoint_on_close = false;  // the events after the checkpoint exist only in the log
  constexpr uint64_t kBefore = 60, kAfter = 25;
  std::vector<uint64_t> live_counts;
  {
    RecordingOperator counter("counter");
    auto engine = Open(config, {&counter});
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(static_cast<int>(kBefore), 20, kT0))).accepted,
              kBefore);
    ASSERT_TRUE(engine->Checkpoint().ok());
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(static_cast<int>(kAfter), 20, kT0 + 100'000'000)))
                  .accepted,
              kAfter);
    ASSERT_TRUE(engine->Close().ok());
    EXPECT_EQ(counter.events(), kBefore + kAfter);
    EXPECT_EQ(counter.replayed(), 0u);
    for (uint32_t p = 0; p < engine->partitions(); ++p) live_counts.push_back(counter.events(p));
  }
  RecordingOperator fresh("counter");
  auto engine = Open(config, {&fresh});
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->recovered_events(), kAfter);
  EXPECT_EQ(fresh.loads, 2);  // one committed state per partition
  EXPECT_EQ(fresh.replayed(), kAfter);
  EXPECT_EQ(fresh.events(), kBefore + kAfter);
  for (uint32_t p = 0; p < engine->partitions(); ++p) {
    EXPECT_EQ(fresh.events(p), live_counts[p]) << "partition " << p;
  }
  // Live events after the open are not flagged as replay.
  ASSERT_EQ(engine->Ingest(BatchFromJson(Views(5, 5, kT0 + 200'000'000))).accepted, 5u);
  EXPECT_EQ(fresh.events(), kBefore + kAfter + 5);
  EXPECT_EQ(fresh.replayed(), kAfter);
  ASSERT_TRUE(engine->Close().ok());
}

TEST(StreamOperatorTest, StateLeftBehindByAPipelineWithoutTheOperatorIsFailedPrecondition) {
  TempDir dir("operator_stale");
  const EngineConfig config = TestConfig(dir.path(), 2);
  {
    RecordingOperator counter("counter");
    auto engine = Open(config, {&counter});
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(40, 20, kT0))).accepted, 40u);
    ASSERT_TRUE(engine->Close().ok());  // checkpoints the counter's state
  }
  std::string profile_before;
  {
    // The counter does not see these events, and its stored state stays at the older seq.
    auto engine = Open(config, {});
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(40, 20, kT0 + 100'000'000))).accepted, 40u);
    profile_before = *engine->ProfileJson("user3", kAll);
    ASSERT_TRUE(engine->Close().ok());
  }
  {
    RecordingOperator counter("counter");
    auto engine = Engine::Open(config, {}, {&counter});
    // Opening would leave the counter with only what the log tail shows it (nothing here: the
    // run without it checkpointed on close), not the 80 events of the stream.
    ASSERT_FALSE(engine.ok()) << "opened; the counter restarted from " << counter.events()
                              << " events of 80 without an error";
    EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition) << engine.status();
    EXPECT_NE(engine.status().message().find("counter"), std::string_view::npos) << engine.status();
  }
  // The refused open changed nothing: the directory still opens without the operator, as before.
  auto engine = Open(config, {});
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(*engine->ProfileJson("user3", kAll), profile_before);
  ASSERT_TRUE(engine->Close().ok());
}

TEST(StreamOperatorTest, TwoOperatorsWithTheSameNameAreRejected) {
  TempDir dir("operator_names");
  const EngineConfig config = TestConfig(dir.path(), 1);
  RecordingOperator first("same"), second("same");
  auto engine = Engine::Open(config, {}, {&first, &second});
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument) << engine.status();
  // The built-in tag stage's name is taken too.
  RecordingOperator tags("tags");
  engine = Engine::Open(config, {}, {&tags});
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument) << engine.status();
  // Nothing was left locked or half-open.
  auto fine = Open(config, {&first});
  ASSERT_NE(fine, nullptr);
  ASSERT_TRUE(fine->Close().ok());
}

TEST(StreamOperatorTest, EraseUserHandsEveryOperatorTheProfileAndItsMembership) {
  TempDir dir("operator_erase");
  const EngineConfig config = TestConfig(dir.path(), 2);
  RecordingOperator a("a"), b("b");
  a.membership_to_set = 0b001;
  b.membership_to_set = 0b100;
  auto engine = Open(config, {&a, &b});
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(engine->Ingest(BatchFromJson(Views(9, 3, kT0))).accepted, 9u);
  auto erased = engine->EraseUser("user1");
  ASSERT_TRUE(erased.ok()) << erased.status();
  for (const RecordingOperator* op : {&a, &b}) {
    ASSERT_EQ(op->erased.size(), 1u) << op->name();
    EXPECT_EQ(op->erased[0].user, "user1");
    EXPECT_EQ(op->erased[0].events, 3u) << "the profile as it was before the erasure";
    EXPECT_EQ(op->erased[0].membership, 0b101u);
  }
  // An unknown user erases nothing and calls nobody.
  (void)engine->EraseUser("nobody");
  EXPECT_EQ(a.erased.size(), 1u);
  ASSERT_TRUE(engine->Close().ok());
}

TEST(StreamOperatorTest, LoadStateErrorFailsOpenWithThatError) {
  TempDir dir("operator_load_error");
  const EngineConfig config = TestConfig(dir.path(), 2);
  {
    RecordingOperator counter("counter");
    auto engine = Open(config, {&counter});
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(30, 10, kT0))).accepted, 30u);
    ASSERT_TRUE(engine->Close().ok());
  }
  {
    RecordingOperator broken("counter");
    broken.load_error = absl::DataLossError("state from the future");
    auto engine = Engine::Open(config, {}, {&broken});
    ASSERT_FALSE(engine.ok());
    EXPECT_EQ(engine.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(engine.status().message().find("state from the future"), std::string_view::npos)
        << engine.status();
  }
  // The failed open wrote nothing over the checkpoint: a working operator gets its state back.
  RecordingOperator counter("counter");
  auto engine = Open(config, {&counter});
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(counter.events(), 30u);
  EXPECT_EQ(counter.replayed(), 0u);
  ASSERT_TRUE(engine->Close().ok());
}

// Cluster support (Engine::SetForeign): a foreign partition shows the state another instance
// shared, never checkpoints it, and gets its own state back when it is owned again.
absl::Status Wait(const std::function<void(std::function<void(absl::Status)>)>& call) {
  std::promise<absl::Status> promise;
  auto future = promise.get_future();
  call([&promise](absl::Status s) { promise.set_value(std::move(s)); });
  return future.get();
}

std::string Count(uint64_t n) {
  std::string out;
  AppendVarint64(&out, n);
  return out;
}

TEST(StreamOperatorTest, AForeignPartitionShowsSharedStateButKeepsAndCheckpointsItsOwn) {
  TempDir dir("operator_foreign");
  EngineConfig config = TestConfig(dir.path(), 2);
  std::vector<uint64_t> own;
  {
    RecordingOperator counter("counter");
    auto engine = Open(config, {&counter});
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(60, 20, kT0))).accepted, 60u);
    own = {counter.events(0), counter.events(1)};
    ASSERT_GT(own[0], 0u);
    ASSERT_GT(own[1], 0u);

    // What an owner shares: every operator's SaveState bytes at its log position.
    std::promise<std::optional<SharedStates>> shared_promise;
    auto shared_future = shared_promise.get_future();
    engine->ShareStates(0, [&](std::optional<SharedStates> s) { shared_promise.set_value(s); });
    std::optional<SharedStates> shared = shared_future.get();
    ASSERT_TRUE(shared.has_value());
    ASSERT_EQ(shared->states.size(), 1u);
    EXPECT_EQ(shared->states[0].first, "counter");
    EXPECT_EQ(shared->states[0].second, Count(own[0]));
    EXPECT_GT(shared->seq, 0u);

    ASSERT_TRUE(Wait([&](auto done) { engine->SetForeign(1, true, done); }).ok());
    EXPECT_TRUE(engine->foreign(1));
    ASSERT_TRUE(
        Wait([&](auto done) {
          engine->LoadForeignStates(1, {{"counter", Count(1000)}, {"absent", "x"}}, kT0 + 5, done);
        }).ok());
    EXPECT_EQ(counter.events(1), 1000u);  // the owner's view
    EXPECT_EQ(engine->Stats()[1].watermark_ms, kT0 + 5);
    // An owned partition takes no shared state; a foreign one shares none.
    EXPECT_TRUE(absl::IsFailedPrecondition(Wait([&](auto done) {
      engine->LoadForeignStates(0, {{"counter", Count(7)}}, -1, done);
    })));
    EXPECT_EQ(counter.events(0), own[0]);
    std::promise<bool> none;
    engine->ShareStates(1, [&](std::optional<SharedStates> s) { none.set_value(s.has_value()); });
    EXPECT_FALSE(none.get_future().get());
    // Checkpoints while foreign (and the one at close) keep this instance's own state.
    ASSERT_TRUE(engine->Checkpoint().ok());
    ASSERT_TRUE(engine->Close().ok());
  }
  RecordingOperator reopened("counter");
  auto engine = Open(config, {&reopened});
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(reopened.events(0), own[0]);
  EXPECT_EQ(reopened.events(1), own[1]);
  EXPECT_FALSE(engine->foreign(1));
  const int64_t watermark = engine->Stats()[1].watermark_ms;
  EXPECT_LT(watermark, kT0 + 60'000);

  // Owned again: the own state comes back before the partition's next event.
  ASSERT_TRUE(Wait([&](auto done) { engine->SetForeign(1, true, done); }).ok());
  ASSERT_TRUE(Wait([&](auto done) {
                engine->LoadForeignStates(1, {{"counter", Count(1000)}}, kT0 + 99'000'000, done);
              }).ok());
  EXPECT_EQ(reopened.events(1), 1000u);
  ASSERT_TRUE(Wait([&](auto done) { engine->SetForeign(1, false, done); }).ok());
  EXPECT_EQ(reopened.events(1), own[1]);
  EXPECT_EQ(engine->Stats()[1].watermark_ms, watermark);
  ASSERT_EQ(engine->Ingest(BatchFromJson(Views(60, 20, kT0 + 100'000'000))).accepted, 60u);
  EXPECT_EQ(reopened.events(), own[0] + own[1] + 60);
  ASSERT_TRUE(engine->Close().ok());
}

// What a checkpoint hands a listener (the Kafka changelog), captured as a restorable image.
struct Capture : CheckpointListener {
  bool full = true;
  PartitionImage image;
  std::vector<std::string> erased;
  bool NeedsFull(uint32_t) override { return full; }
  void Begin(uint32_t, bool) override {
    image.profiles.clear();
    image.states.clear();
  }
  void Erased(uint32_t, std::span<const std::string> users) override {
    erased.assign(users.begin(), users.end());
  }
  void Profiles(uint32_t, NamedBlobs blobs) override {
    for (const auto& [user, blob] : blobs) image.profiles.emplace_back(user, blob);
  }
  void Commit(uint32_t, uint64_t seq, int64_t source_next, std::string_view meta,
              NamedBlobs states) override {
    image.seq = seq;
    image.source_next = source_next;
    image.meta = meta;
    for (const auto& [name, state] : states) image.states.emplace_back(name, state);
  }
};

TEST(StreamOperatorTest, ARestoredPartitionEqualsItsImageAcrossARestartAndReplacesTheOldState) {
  TempDir dir("operator_restore");
  EngineConfig source_config = TestConfig(dir.path() + "/source", 1);
  EngineConfig target_config = TestConfig(dir.path() + "/target", 1);
  Capture capture;
  PartitionImage full;
  std::map<std::string, std::string> expected;
  uint64_t expected_count = 0;
  {
    RecordingOperator counter("counter");
    auto engine = Open(source_config, {&counter});
    ASSERT_NE(engine, nullptr);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(90, 30, kT0))).accepted, 90u);
    ASSERT_TRUE(engine->SetAttributes("user3", R"({"tier":"gold"})", true).ok());
    engine->SetCheckpointListener(&capture);
    ASSERT_TRUE(engine->Checkpoint().ok());
    full = capture.image;
    // Later checkpoints publish only what changed, and erasures as such.
    capture.full = false;
    ASSERT_TRUE(engine->EraseUser("user4").ok());
    EXPECT_EQ(capture.erased, std::vector<std::string>{"user4"});
    EXPECT_TRUE(capture.image.profiles.empty());  // nothing else changed
    engine->SetCheckpointListener(nullptr);
    for (int u = 0; u < 30; ++u) {
      const std::string id = "user" + std::to_string(u);
      if (u != 4) expected[id] = *engine->ProfileJson(id, kAll);
    }
    expected_count = counter.events(0);
    ASSERT_TRUE(engine->Close().ok());
  }
  ASSERT_EQ(full.profiles.size(), 30u);  // the full image, before the erasure
  full.source_next = 1234;
  {
    RecordingOperator counter("counter");
    auto engine = Open(target_config, {&counter});
    ASSERT_NE(engine, nullptr);
    // An older state of its own (another user set) that the restore replaces whole.
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views(10, 40, kT0 - 1'000'000))).accepted, 10u);
    ASSERT_TRUE(engine->SetAttributes("user35", R"({"tier":"old"})", true).ok());
    ASSERT_TRUE(engine->Checkpoint().ok());  // stored, so the restore must drop it from the store
    auto image = std::make_shared<PartitionImage>(full);
    ASSERT_TRUE(Wait([&](auto done) { engine->RestorePartition(0, image, done); }).ok());
    EXPECT_EQ(counter.events(0), expected_count);
    EXPECT_EQ(engine->SourceOffset(0), 1234);
    EXPECT_FALSE(engine->ProfileJson("user35", kAll).has_value());
    for (const auto& [id, json] : expected) {
      EXPECT_EQ(engine->ProfileJson(id, kAll), json) << id;
    }
    ASSERT_TRUE(engine->Close().ok());
  }
  RecordingOperator counter("counter");
  auto engine = Open(target_config, {&counter});
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(counter.events(0), expected_count);
  EXPECT_EQ(engine->SourceOffset(0), 1234);
  EXPECT_FALSE(engine->ProfileJson("user35", kAll).has_value()) << "an old profile came back";
  for (const auto& [id, json] : expected) {
    EXPECT_EQ(engine->ProfileJson(id, kAll), json) << id << " after reopening";
  }
  // The restored partition goes on from there.
  ASSERT_EQ(engine->Ingest(BatchFromJson(Views(30, 30, kT0 + 100'000'000))).accepted, 30u);
  EXPECT_EQ(counter.events(0), expected_count + 30);
  ASSERT_TRUE(engine->Close().ok());
}

}  // namespace
}  // namespace persona
