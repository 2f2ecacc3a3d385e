// Log retention: once a checkpoint covers them, whole log segments are deleted by size (or age), so
// the log stays bounded under a long stream; the profiles keep every event (they come from the
// checkpoint), recovery replays only the retained tail, the timeline reads what is retained, and
// nothing the last checkpoint does not cover is ever trimmed.
#include <gtest/gtest.h>

#include <string>

#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

using testing_util::BatchFromJson;
using testing_util::TempDir;

EngineConfig RetentionConfig(const std::string& dir) {
  EngineConfig c;
  c.data_dir = dir;
  c.partitions = 1;
  c.sync = SyncPolicy::kNone;
  c.checkpoint_interval_ms = 0;
  c.checkpoint_every_events = 0;
  c.log_retention_ms = 0;            // size only
  c.log_retention_bytes = 64 << 10;  // 64 KiB
  c.log_segment_bytes = 16 << 10;    // 16 KiB segments
  return c;
}

std::unique_ptr<Engine> Open(const EngineConfig& c) {
  auto e = Engine::Open(c);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

// One batch of `n` views by `user` starting at event number `first`.
std::string Views(const std::string& user, int first, int n) {
  std::string out;
  for (int i = first; i < first + n; ++i) {
    out += R"({"event_id":"e)" + std::to_string(i) + R"(","user_id":")" + user +
           R"(","type":"view","ts":)" + std::to_string(1700000000000LL + i * 1000LL) +
           R"(,"item_id":"item-)" + std::to_string(i % 97) + R"(","category_path":"toys.cars"})" +
           "\n";
  }
  return out;
}

uint64_t FirstRecord(Engine& e) {
  auto it = e.store().ReadLog(0, 1);
  return it->Valid() ? it->seq() : 0;
}

TEST(LogRetentionTest, SegmentsACheckpointCoversAreDeletedAndTheLogStaysBounded) {
  TempDir dir("retention");
  const EngineConfig config = RetentionConfig(dir.path());
  auto engine = Open(config);
  ASSERT_NE(engine, nullptr);
  int next = 0;
  uint64_t max_bytes = 0;
  for (int round = 0; round < 40; ++round) {
    for (int b = 0; b < 10; ++b, next += 20) {
      ASSERT_EQ(
          engine->Ingest(BatchFromJson(Views("u" + std::to_string(b % 3), next, 20))).accepted,
          20u);
    }
    ASSERT_TRUE(engine->Checkpoint().ok());
    const PartitionStats s = engine->Stats()[0];
    max_bytes = std::max(max_bytes, s.log_bytes);
    // Never more than the cap plus the segment being appended to.
    EXPECT_LE(s.log_bytes, config.log_retention_bytes + config.log_segment_bytes + 8192)
        << "round " << round;
  }
  const PartitionStats s = engine->Stats()[0];
  EXPECT_GT(s.log_first_seq, 1u) << "nothing was trimmed";
  EXPECT_GT(s.log_trimmed_segments, 0u);
  EXPECT_EQ(FirstRecord(*engine), s.log_first_seq) << "the store holds exactly the retained log";
  EXPECT_TRUE(absl::IsNotFound(engine->store().GetLogRecord(0, 1).status()));

  // Every event still counts in the profiles; the timeline ends where the log was trimmed.
  const std::string before = *engine->ProfileJson("u0", kAll);
  auto timeline = engine->TimelineJson("u0", 100000);
  ASSERT_TRUE(timeline.ok());
  size_t shown = 0;
  for (size_t p = timeline->find("\"user_id\""); p != std::string::npos;
       p = timeline->find("\"user_id\"", p + 1)) {
    ++shown;
  }
  EXPECT_GT(shown, 0u);
  EXPECT_LT(shown, static_cast<size_t>(next / 3)) << "the timeline reads only retained records";

  // A restart recovers from the checkpoint (no trimmed record is needed) to the same profile, and
  // the segment list survives it.
  ASSERT_TRUE(engine->Close().ok());
  engine.reset();
  engine = Open(config);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(*engine->ProfileJson("u0", kAll), before);
  EXPECT_EQ(engine->Stats()[0].log_first_seq, s.log_first_seq);
  EXPECT_EQ(engine->Stats()[0].log_bytes, s.log_bytes);
}

TEST(LogRetentionTest, NothingTheCheckpointDoesNotCoverIsTrimmed) {
  TempDir dir("retention_tail");
  EngineConfig config = RetentionConfig(dir.path());
  config.checkpoint_on_close = false;  // the tail after the last checkpoint must be replayed
  int next = 0;
  std::string before;
  {
    auto engine = Open(config);
    ASSERT_NE(engine, nullptr);
    for (int b = 0; b < 60; ++b, next += 20) {
      ASSERT_EQ(engine->Ingest(BatchFromJson(Views("u", next, 20))).accepted, 20u);
    }
    ASSERT_TRUE(engine->Checkpoint().ok());
    // A tail far larger than the retention cap, never checkpointed.
    for (int b = 0; b < 120; ++b, next += 20) {
      ASSERT_EQ(engine->Ingest(BatchFromJson(Views("u", next, 20))).accepted, 20u);
    }
    before = *engine->ProfileJson("u", kAll);
    ASSERT_TRUE(engine->Close().ok());
  }
  auto engine = Open(config);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->recovered_events(), 120u * 20u) << "the whole tail was still in the log";
  EXPECT_EQ(*engine->ProfileJson("u", kAll), before);
}

TEST(LogRetentionTest, AgeRetentionKeepsRecentSegments) {
  TempDir dir("retention_age");
  EngineConfig config = RetentionConfig(dir.path());
  config.log_retention_bytes = 0;
  config.log_retention_ms = 24 * kHourMs;  // wall time of the append: nothing here is that old
  auto engine = Open(config);
  ASSERT_NE(engine, nullptr);
  for (int b = 0, next = 0; b < 100; ++b, next += 20) {
    ASSERT_EQ(engine->Ingest(BatchFromJson(Views("u", next, 20))).accepted, 20u);
  }
  ASSERT_TRUE(engine->Checkpoint().ok());
  EXPECT_EQ(engine->Stats()[0].log_trimmed_segments, 0u);
  EXPECT_EQ(FirstRecord(*engine), 1u);
}

}  // namespace
}  // namespace persona
