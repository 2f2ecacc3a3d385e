// The ProfileEnricher hook: what it writes is visible to readers and to the EventObserver at
// once, and survives a checkpoint and a restart like any other profile feature.
#include "engine/profile_enricher.h"

#include <atomic>

#include "engine/engine.h"
#include "engine/testing/engine_test_util.h"
#include "gtest/gtest.h"
#include "profile/profile_json.h"

namespace persona {
namespace {

using testing_util::BatchFromJson;
using testing_util::TempDir;

// Marks every profile with its event count as the "segment" and flags users with a purchase.
class CountingEnricher : public ProfileEnricher {
 public:
  void Enrich(uint32_t, const Event& e, Profile& p, ProfileContext& ctx) override {
    p.set_segment(static_cast<int16_t>(p.events()));
    if (e.type == EventType::kPurchase) p.set_anomaly_flags(kAnomalyCartChurn);
    if (e.type == EventType::kReview) p.AddReviewSentiment(0.75, e.category_key(), ctx);
    calls.fetch_add(1);
  }
  std::atomic<int> calls{0};
};

class SegmentSeenByObserver : public EventObserver {
 public:
  void OnEvent(uint32_t, const Event&, const Profile& p, const ProfileContext&) override {
    last_segment.store(p.segment());
  }
  std::atomic<int> last_segment{-2};
};

constexpr const char* kEvents =
    R"({"event_id":"e1","user_id":"alice","type":"view","ts":1700000000000,"item_id":"i1","category_path":"audio"})"
    "\n"
    R"({"event_id":"e2","user_id":"alice","type":"purchase","ts":1700000060000,"item_id":"i1","category_path":"audio","price":10})"
    "\n"
    R"({"event_id":"e3","user_id":"alice","type":"review","ts":1700000120000,"item_id":"i1","category_path":"audio","rating":4,"text":"good"})"
    "\n";

TEST(ProfileEnricherTest, EnrichedFeaturesAreReadableObservedAndSurviveRestart) {
  TempDir dir("enricher");
  EngineConfig c;
  c.data_dir = dir.path();
  c.partitions = 2;
  c.sync = SyncPolicy::kNone;
  c.checkpoint_interval_ms = 0;
  c.checkpoint_every_events = 0;
  CountingEnricher enricher;
  SegmentSeenByObserver observer;
  {
    auto engine = Engine::Open(c);
    ASSERT_TRUE(engine.ok()) << engine.status();
    (*engine)->SetProfileEnricher(&enricher);
    (*engine)->SetEventObserver(&observer);
    EXPECT_EQ((*engine)->Ingest(BatchFromJson(kEvents)).accepted, 3u);
    EXPECT_EQ(enricher.calls.load(), 3);
    EXPECT_EQ(observer.last_segment.load(), 3);  // the observer runs after the enricher
    ASSERT_TRUE((*engine)->Checkpoint().ok());
    ASSERT_TRUE((*engine)->Close().ok());
  }
  auto engine = Engine::Open(c);
  ASSERT_TRUE(engine.ok()) << engine.status();
  bool found = (*engine)->ReadProfile("alice", [](const Profile& p, const ProfileContext& ctx) {
    EXPECT_EQ(p.segment(), 3);
    EXPECT_EQ(p.anomaly_flags(), kAnomalyCartChurn);
    EXPECT_DOUBLE_EQ(p.satisfaction(), 0.75);
    ASSERT_EQ(p.category_sentiment().size(), 1u);
    EXPECT_EQ(ctx.pool.Get(p.category_sentiment()[0].category), "audio");
  });
  EXPECT_TRUE(found);
  auto json = (*engine)->ProfileJson("alice", kSignals);
  ASSERT_TRUE(json.has_value());
  EXPECT_NE(json->find(R"("segment":3)"), std::string::npos) << *json;
  EXPECT_NE(json->find(R"("cart_churn")"), std::string::npos) << *json;
}

}  // namespace
}  // namespace persona
