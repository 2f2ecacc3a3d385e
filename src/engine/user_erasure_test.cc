// Erasure and attribute updates go through the partition writer, not the log of events. These
// tests prove what a privacy request and a CRM sync rely on: an erased user is gone from memory,
// the checkpoint store, the log bytes and the dead letters, also after restarts, while the users
// sharing log records with them keep every event; attributes are durable without a checkpoint and
// combine correctly with events replayed after a crash.
#include <gtest/gtest.h>

#include <string>

#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

using testing_util::BatchFromJson;
using testing_util::TempDir;

EngineConfig ErasureConfig(const std::string& dir) {
  EngineConfig c;
  c.data_dir = dir;
  c.partitions = 2;
  c.sync = SyncPolicy::kNone;
  c.checkpoint_interval_ms = 0;
  c.checkpoint_every_events = 0;
  return c;
}

std::unique_ptr<Engine> Open(const EngineConfig& c) {
  auto e = Engine::Open(c);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

// `n` events alternating between the secret user and a bystander, so they share log records.
std::string Interleaved(int n, int64_t t0) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    const char* user = i % 2 ? "bystander" : "secret-user-7731";
    out += R"({"event_id":"x)" + std::to_string(t0) + "-" + std::to_string(i) +
           R"(","user_id":")" + user + R"(","type":"view","ts":)" +
           std::to_string(t0 + i * 1000) + R"(,"item_id":"item-secret-)" + std::to_string(i) +
           R"(","category_path":"toys"})" + "\n";
  }
  return out;
}

size_t TimelineLength(Engine& e, std::string_view user) {
  auto t = e.TimelineJson(user, 1000);
  if (!t.ok()) return 0;
  size_t n = 0;
  for (size_t p = t->find("\"user_id\""); p != std::string::npos; p = t->find("\"user_id\"", p + 1))
    ++n;
  return n;
}

// True when any log record of any partition contains `needle`.
bool LogContains(Engine& e, std::string_view needle) {
  for (uint32_t p = 0; p < e.partitions(); ++p) {
    auto it = e.store().ReadLog(p, 1);
    for (; it->Valid(); it->Next()) {
      if (it->record().find(needle) != std::string_view::npos) return true;
    }
  }
  return false;
}

TEST(UserErasureTest, ErasedUserIsGoneFromMemoryLogAndDeadLettersAndOthersKeepTheirEvents) {
  TempDir dir("erase");
  const EngineConfig config = ErasureConfig(dir.path());
  std::string bystander_before;
  {
    auto engine = Open(config);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Interleaved(40, 1700000000000))).accepted, 40u);
    ASSERT_TRUE(engine->Checkpoint().ok());  // part of the history is checkpointed ...
    ASSERT_EQ(engine->Ingest(BatchFromJson(Interleaved(20, 1700001000000))).accepted, 20u);
    DeadLetter letter{1, "http", 0, "secret-user-7731", "price", "must be a number", "{}"};
    ASSERT_TRUE(engine->AddDeadLetters({&letter, 1}).ok());
    bystander_before = *engine->ProfileJson("bystander", kAll);
    ASSERT_EQ(TimelineLength(*engine, "bystander"), 30u);
    ASSERT_TRUE(LogContains(*engine, "secret-user-7731"));

    auto erased = engine->EraseUser("secret-user-7731");
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_TRUE(erased->profile);
    EXPECT_EQ(erased->log_events, 30u);
    EXPECT_EQ(erased->dead_letters, 1u);

    EXPECT_FALSE(engine->ProfileJson("secret-user-7731", kAll).has_value());
    EXPECT_TRUE(absl::IsNotFound(engine->TimelineJson("secret-user-7731", 10).status()));
    EXPECT_FALSE(LogContains(*engine, "secret-user-7731"));
    EXPECT_FALSE(LogContains(*engine, "item-secret-0\""));  // the user's items went too
    EXPECT_EQ(TimelineLength(*engine, "bystander"), 30u);
    EXPECT_EQ(*engine->ProfileJson("bystander", kAll), bystander_before);
    // ... and the rest only in the log, so the next open replays a tail with redacted slots.
    ASSERT_TRUE(engine->Close().ok());
  }
  for (bool checkpoint_on_close : {false, true}) {
    EngineConfig c = config;
    c.checkpoint_on_close = checkpoint_on_close;
    auto engine = Open(c);
    EXPECT_FALSE(engine->ProfileJson("secret-user-7731", kAll).has_value());
    EXPECT_EQ(*engine->ProfileJson("bystander", kAll), bystander_before);
    EXPECT_EQ(TimelineLength(*engine, "bystander"), 30u);
    auto again = engine->EraseUser("secret-user-7731");
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->profile);
    EXPECT_EQ(again->log_events, 0u);
    EXPECT_EQ(again->dead_letters, 0u);
    ASSERT_TRUE(engine->Close().ok());
  }
}

TEST(UserErasureTest, ErasedUserWhoComesBackStartsFromNothing) {
  TempDir dir("erase-return");
  auto engine = Open(ErasureConfig(dir.path()));
  ASSERT_EQ(engine->Ingest(BatchFromJson(Interleaved(10, 1700000000000))).accepted, 10u);
  ASSERT_TRUE(engine->EraseUser("secret-user-7731").ok());
  ASSERT_EQ(engine->Ingest(BatchFromJson(Interleaved(2, 1700002000000))).accepted, 2u);
  EXPECT_EQ(TimelineLength(*engine, "secret-user-7731"), 1u);
  auto json = engine->ProfileJson("secret-user-7731", kStats);
  ASSERT_TRUE(json.has_value());
  EXPECT_NE(json->find("\"events\":1"), std::string::npos) << *json;
}

TEST(UserErasureTest, AttributesAreDurableWithoutCheckpointAndEventsAreNotCountedTwice) {
  TempDir dir("attrs");
  EngineConfig config = ErasureConfig(dir.path());
  config.checkpoint_on_close = false;  // every reopen is a crash: only the log and the put remain
  std::string before;
  {
    auto engine = Open(config);
    ASSERT_EQ(engine->Ingest(BatchFromJson(Interleaved(10, 1700000000000))).accepted, 10u);
    auto attrs = engine->SetAttributes("bystander", R"({"city":"Lyon","age":41})", true);
    ASSERT_TRUE(attrs.ok()) << attrs.status();
    EXPECT_EQ(*attrs, R"({"city":"Lyon","age":41})");
    attrs = engine->SetAttributes("bystander", R"({"age":42,"city":null,"vip":true})", true);
    ASSERT_TRUE(attrs.ok());
    EXPECT_EQ(*attrs, R"({"age":42,"vip":true})");
    ASSERT_EQ(engine->Ingest(BatchFromJson(Interleaved(10, 1700001000000))).accepted, 10u);
    // A user known only from a CRM sync.
    ASSERT_TRUE(engine->SetAttributes("crm-only", R"({"tier":"gold"})", true).ok());
    EXPECT_TRUE(absl::IsInvalidArgument(
        engine->SetAttributes("never-created", "[1,2]", true).status()));
    EXPECT_FALSE(engine->ProfileJson("never-created", kAll).has_value());
    before = *engine->ProfileJson("bystander", kAll);
    ASSERT_TRUE(engine->Close().ok());
  }
  auto engine = Open(config);
  EXPECT_EQ(*engine->ProfileJson("bystander", kAll), before);
  auto crm = engine->ProfileJson("crm-only", kIdentity);
  ASSERT_TRUE(crm.has_value());
  EXPECT_NE(crm->find("gold"), std::string::npos) << *crm;
  auto replaced = engine->SetAttributes("bystander", R"({"tier":"silver"})", false);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(*replaced, R"({"tier":"silver"})");
}

}  // namespace
}  // namespace persona
