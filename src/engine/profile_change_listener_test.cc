// The ProfileChangeListener hook: called once per changed profile per batch with its own bits,
// on attribute changes and on erasure; ScanProfiles visits every profile once, in parallel, and
// sees the bits the listener wrote.
#include "engine/profile_change_listener.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "gtest/gtest.h"

namespace persona {
namespace {

using testing_util::BatchFromJson;
using testing_util::TempDir;

// Counts calls per user and stores the user's event count in its membership bits.
class RecordingListener : public ProfileChangeListener {
 public:
  void OnProfileChanged(uint32_t, std::string_view user, const Profile& p, const ProfileContext&,
                        int64_t now_ms, uint64_t& membership) override {
    std::lock_guard<std::mutex> lock(mu);
    ++calls[std::string(user)];
    previous[std::string(user)] = membership;
    membership = p.events();
    last_now = now_ms;
  }
  void OnProfileErased(uint32_t, std::string_view user, uint64_t membership) override {
    std::lock_guard<std::mutex> lock(mu);
    erased[std::string(user)] = membership;
  }
  std::mutex mu;
  std::map<std::string, int> calls;
  std::map<std::string, uint64_t> previous, erased;
  int64_t last_now = 0;
};

std::string Event(int id, const char* user, int64_t ts) {
  return R"({"event_id":"e)" + std::to_string(id) + R"(","user_id":")" + user +
         R"(","type":"view","ts":)" + std::to_string(ts) + R"(,"item_id":"i1"})" + "\n";
}

EngineConfig Config(const TempDir& dir) {
  EngineConfig c;
  c.data_dir = dir.path();
  c.partitions = 2;
  c.sync = SyncPolicy::kNone;
  c.checkpoint_interval_ms = 0;
  c.checkpoint_every_events = 0;
  return c;
}

TEST(ProfileChangeListenerTest, OncePerChangedProfilePerBatchWithItsOwnBits) {
  TempDir dir("listener");
  auto engine = Engine::Open(Config(dir));
  ASSERT_TRUE(engine.ok()) << engine.status();
  RecordingListener listener;
  (*engine)->SetProfileChangeListener(&listener);
  // One batch, three events for alice and one for bob: alice is reported once.
  const int64_t t = 1700000000000;
  ASSERT_EQ((*engine)->Ingest(BatchFromJson(Event(1, "alice", t) + Event(2, "alice", t + 1000) +
                                            Event(3, "bob", t + 2000) +
                                            Event(4, "alice", t + 3000)))
                .accepted,
            4u);
  EXPECT_EQ(listener.calls["alice"], 1);
  EXPECT_EQ(listener.calls["bob"], 1);
  EXPECT_EQ(listener.previous["alice"], 0u);
  EXPECT_EQ(listener.last_now, t + 3000);  // event time, not wall time
  ASSERT_EQ((*engine)->Ingest(BatchFromJson(Event(5, "alice", t + 4000))).accepted, 1u);
  EXPECT_EQ(listener.calls["alice"], 2);
  EXPECT_EQ(listener.previous["alice"], 3u);  // the bits written by the previous call

  ASSERT_TRUE((*engine)->SetAttributes("bob", R"({"city":"Oslo"})", true).ok());
  EXPECT_EQ(listener.calls["bob"], 2);
  EXPECT_EQ(listener.previous["bob"], 1u);

  // A scan sees the bits, and may rewrite them.
  std::map<std::string, uint64_t> seen;
  std::mutex seen_mu;
  (*engine)->ScanProfiles(2, [&](uint32_t thread, const ProfileScanItem& item) {
    EXPECT_LT(thread, 2u);
    std::lock_guard<std::mutex> lock(seen_mu);
    EXPECT_TRUE(seen.emplace(std::string(item.user_id), item.membership).second);
    item.membership = 100;
  });
  EXPECT_EQ(seen, (std::map<std::string, uint64_t>{{"alice", 4}, {"bob", 1}}));

  ASSERT_TRUE((*engine)->EraseUser("alice").ok());
  EXPECT_EQ(listener.erased["alice"], 100u);
  EXPECT_EQ(listener.erased.count("bob"), 0u);
  ASSERT_TRUE((*engine)->Close().ok());
}

TEST(ProfileChangeListenerTest, ScanVisitsEveryProfileExactlyOnceOnAnyThreadCount) {
  TempDir dir("scan");
  auto engine = Engine::Open(Config(dir));
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::string batch;
  for (int u = 0; u < 500; ++u) {
    batch += Event(u, ("user" + std::to_string(u)).c_str(), 1700000000000 + u);
  }
  ASSERT_EQ((*engine)->Ingest(BatchFromJson(batch)).accepted, 500u);
  for (uint32_t threads : {1u, 2u, 3u, 0u}) {
    std::mutex mu;
    std::set<std::string> users;
    std::atomic<int> visits{0};
    (*engine)->ScanProfiles(threads, [&](uint32_t thread, const ProfileScanItem& item) {
      EXPECT_LT(thread, (*engine)->ScanThreads(threads));
      visits.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu);
      users.insert(std::string(item.user_id));
    });
    EXPECT_EQ(visits.load(), 500) << threads;
    EXPECT_EQ(users.size(), 500u) << threads;
  }
  ASSERT_TRUE((*engine)->Close().ok());
}

}  // namespace
}  // namespace persona
