// Saved audiences over a real engine: definitions (validation, ids, limits, persistence), the
// enter/exit stream as events move users across conditions, paging and truncation of the stream,
// long-poll wake-ups, reconciliation of drift caused by time alone, and the initialisation of a
// new audience while events keep arriving.
#include "audience/saved_audiences.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "event/json_event.h"
#include "store/scoped_temp_dir.h"

namespace persona {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kT0 = 1700000000000;  // event time of the first test event
constexpr int64_t kDayMs = 86'400'000;

std::shared_ptr<EventBatch> Batch(const std::string& ndjson) {
  auto batch = std::make_shared<EventBatch>();
  std::vector<EventIssue> issues;
  const absl::Status st = ParseJsonBody(ndjson, ValidationLimits{}, false, batch.get(), &issues);
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_TRUE(issues.empty()) << issues.size() << " issues, first: " << issues[0].field << " "
                              << issues[0].rule;
  return batch;
}

std::string Event(const std::string& user, const std::string& type, int64_t ts, double price = 0) {
  static std::atomic<int> next_id{0};
  std::string e = R"({"event_id":"e)" + std::to_string(next_id++) + R"(","user_id":")" + user +
                  R"(","type":")" + type + R"(","ts":)" + std::to_string(ts) +
                  R"(,"item_id":"sku-1","category_path":"books.fiction")";
  if (type == "purchase" || type == "refund") e += R"(,"price":)" + std::to_string(price);
  return e + "}\n";
}

class SavedAudiencesTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenSaved(); }
  void TearDown() override { Close(); }

  // (Re)starts the pipeline: closes the current engine and destroys its saved audiences, then
  // opens saved audiences from path() and the engine over the data directory with them as its
  // operator (not attached: the tests attach). Profiles survive the restart (the engine
  // checkpoints on close).
  SavedAudiences* OpenSaved(SavedAudiencesOptions options = {},
                            const std::string& tag_rules_file = "") {
    Close();
    auto s = SavedAudiences::Open(nullptr, path(), options);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return nullptr;
    saved_ = std::move(*s);
    EngineConfig c;
    c.tag_rules_file = tag_rules_file;
    c.data_dir = dir_.path() + "/data";
    c.partitions = 2;
    c.sync = SyncPolicy::kNone;
    c.checkpoint_interval_ms = 0;
    c.checkpoint_every_events = 0;
    auto e = Engine::Open(c, {}, {saved_.get()});
    EXPECT_TRUE(e.ok()) << e.status();
    if (!e.ok()) return nullptr;
    engine_ = std::move(*e);
    return saved_.get();
  }

  // Closes the engine, then destroys the saved audiences (an operator outlives its engine).
  void Close() {
    if (engine_) {
      EXPECT_TRUE(engine_->Close().ok());
    }
    engine_.reset();
    saved_.reset();
  }

  void Ingest(const std::string& ndjson) {
    const IngestOutcome o = engine_->Ingest(Batch(ndjson));
    ASSERT_TRUE(o.rejected.empty());
  }

  std::string path() const { return dir_.path() + "/audiences.json"; }

  std::vector<MembershipChange> AllChanges(SavedAudiences& s, const std::string& id) {
    auto page = s.Changes(id, 0, 100000);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->changes : std::vector<MembershipChange>{};
  }

  ScopedTempDir dir_{"saved"};
  std::unique_ptr<SavedAudiences> saved_;  // the engine's operator: destroyed after it
  std::unique_ptr<Engine> engine_;
};

TEST_F(SavedAudiencesTest, CreateListGetDeleteAndIdsAreSlugsWithSuffix) {
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto a = saved->Create("Big Spenders!", "monetary > 100", "spent over 100");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(std::string_view(a->id).starts_with("big-spenders-")) << a->id;
  EXPECT_EQ(a->id.size(), std::string("big-spenders-").size() + 6);
  EXPECT_EQ(a->name, "Big Spenders!");
  EXPECT_EQ(a->description, "spent over 100");
  EXPECT_EQ(a->condition, "monetary > 100");
  EXPECT_TRUE(a->active);
  EXPECT_GT(a->created_ms, 0);
  auto b = saved->Create("  readers ", "interest.category(\"books\") > 0.5", "");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->name, "readers");

  const auto list = saved->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, a->id);
  EXPECT_EQ(list[1].id, b->id);
  ASSERT_TRUE(saved->Get(b->id).has_value());
  EXPECT_EQ(saved->Get(b->id)->condition, "interest.category(\"books\") > 0.5");
  EXPECT_EQ(saved->BitOf(a->id), 0);
  EXPECT_EQ(saved->BitOf(b->id), 1);

  ASSERT_TRUE(saved->Delete(a->id).ok());
  EXPECT_FALSE(saved->Get(a->id).has_value());
  EXPECT_FALSE(saved->BitOf(a->id).has_value());
  EXPECT_EQ(saved->Delete(a->id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(saved->Changes(a->id, 0, 10).status().code(), absl::StatusCode::kNotFound);
  // The freed bit is reused.
  auto c = saved->Create("again", "purchases >= 1", "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(saved->BitOf(c->id), 0);
}

TEST_F(SavedAudiencesTest, DuplicateNameIsAlreadyExistsIgnoringCase) {
  auto saved = OpenSaved();
  ASSERT_TRUE(saved->Create("Loyal", "orders >= 3", "").ok());
  auto dup = saved->Create("lOYAL", "orders >= 4", "");
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(saved->List().size(), 1u);
}

TEST_F(SavedAudiencesTest, The65thAudienceIsResourceExhausted) {
  auto saved = OpenSaved();
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(saved->Create("a" + std::to_string(i), "views > " + std::to_string(i), "").ok());
  }
  auto extra = saved->Create("one too many", "views > 100", "");
  EXPECT_EQ(extra.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(extra.status().message().find("64"), std::string_view::npos);
  // Deleting one makes room again.
  ASSERT_TRUE(saved->Delete(saved->List()[10].id).ok());
  EXPECT_TRUE(saved->Create("one too many", "views > 100", "").ok());
}

TEST_F(SavedAudiencesTest, BadConditionAndNameAreInvalidArgumentWithPosition) {
  auto saved = OpenSaved();
  auto bad = saved->Create("x", "purchases >= and views > 1", "");
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "column 14: expected")) << bad.status();
  auto typo = saved->Create("x", "monetery > 1", "");
  ASSERT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(typo.status().message().find("did you mean 'monetary'"), std::string_view::npos)
      << typo.status();
  EXPECT_EQ(saved->Create("", "views > 1", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(saved->Create(std::string(101, 'n'), "views > 1", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(saved->Create(std::string(100, 'n'), "views > 1", "").ok());
  const std::string long_condition = "views > 1" + std::string(4096, ' ');
  EXPECT_EQ(saved->Create("long", long_condition, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(saved->List().size(), 1u);
}

TEST_F(SavedAudiencesTest, DefinitionsSurviveReopenAndMembershipsAreRecomputedAtAttach) {
  std::string id_a, id_b, epoch;
  Ingest(Event("u1", "purchase", kT0, 80) + Event("u1", "purchase", kT0 + 1000, 90) +
         Event("u2", "purchase", kT0 + 2000, 10));
  {
    auto saved = OpenSaved();
    saved->Attach(engine_.get());
    auto a = saved->Create("spenders", "monetary > 100", "over 100");
    auto b = saved->Create("buyers", "purchases >= 1", "");
    ASSERT_TRUE(a.ok() && b.ok());
    id_a = a->id;
    id_b = b->id;
    epoch = saved->epoch();
    EXPECT_EQ(a->size, 1u);
    EXPECT_EQ(b->size, 2u);
  }
  ASSERT_TRUE(std::filesystem::exists(path()));
  auto saved = OpenSaved();
  EXPECT_NE(saved->epoch(), epoch);
  const auto list = saved->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, id_a);
  EXPECT_EQ(list[0].name, "spenders");
  EXPECT_EQ(list[0].description, "over 100");
  EXPECT_EQ(list[0].condition, "monetary > 100");
  EXPECT_EQ(list[1].id, id_b);
  EXPECT_TRUE(list[1].active);
  EXPECT_EQ(list[0].size, 0u);  // not attached yet
  saved->Attach(engine_.get());
  EXPECT_EQ(saved->Get(id_a)->size, 1u);
  EXPECT_EQ(saved->Get(id_b)->size, 2u);
  // The initial state emits nothing; a later crossing does.
  EXPECT_TRUE(AllChanges(*saved, id_a).empty());
  Ingest(Event("u2", "purchase", kT0 + 3000, 200));
  ASSERT_EQ(AllChanges(*saved, id_a).size(), 1u);
  EXPECT_EQ(AllChanges(*saved, id_a)[0].seq, 1u);
}

TEST_F(SavedAudiencesTest, StoredConditionThatNoLongerCompilesIsKeptInactiveWithItsError) {
  {
    std::ofstream out(path());
    out << R"({"version":1,"audiences":[)"
        << R"({"id":"ok-000001","name":"ok","description":"","condition":"views > 1","created_ms":5},)"
        << R"({"id":"gone-000002","name":"gone","description":"d","condition":"no_such_field > 1","created_ms":6}]})";
  }
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  const auto list = saved->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_TRUE(list[0].active);
  EXPECT_FALSE(list[1].active);
  EXPECT_NE(list[1].error.find("column 1: unknown field 'no_such_field'"), std::string::npos)
      << list[1].error;
  EXPECT_FALSE(saved->BitOf("gone-000002").has_value());
  EXPECT_EQ(saved->BitOf("ok-000001"), 0);
  Ingest(Event("u1", "view", kT0) + Event("u1", "view", kT0 + 1));
  EXPECT_EQ(saved->Get("ok-000001")->size, 1u);
  // It can still be deleted, and the file keeps the other definitions.
  ASSERT_TRUE(saved->Delete("gone-000002").ok());
  saved = OpenSaved();
  ASSERT_EQ(saved->List().size(), 1u);
  EXPECT_EQ(saved->List()[0].id, "ok-000001");
}

TEST_F(SavedAudiencesTest, CorruptFileFailsOpen) {
  {
    std::ofstream out(path());
    out << "{not json";
  }
  auto s = SavedAudiences::Open(nullptr, path());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(SavedAudiencesTest, UnwritableFileFailsCreateAndKeepsNothing) {
  auto s = SavedAudiences::Open(nullptr, dir_.path() + "/no/such/dir/a.json");
  ASSERT_TRUE(s.ok());
  auto a = (*s)->Create("x", "views > 1", "");
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE((*s)->List().empty());
}

TEST_F(SavedAudiencesTest, TagConditionsFollowATagRuleReloadAtOnce) {
  const std::string rules = dir_.path() + "/tags.rules";
  std::ofstream(rules) << "vip: monetary > 100\n";
  auto saved = OpenSaved({}, rules);
  saved->Attach(engine_.get());
  auto vips = saved->Create("vips", "tag(\"vip\")", "");
  auto browsers = saved->Create("browsers", "tag(\"browser\")", "");  // no such rule yet
  ASSERT_TRUE(vips.ok() && browsers.ok());
  Ingest(Event("a", "purchase", kT0, 150) + Event("b", "view", kT0 + 1));
  EXPECT_EQ(saved->Get(vips->id)->size, 1u);
  EXPECT_EQ(saved->Get(browsers->id)->size, 0u);
  // Rules are appended (bits of existing rules keep their meaning); the next change of b is
  // evaluated with the new rules by the engine, so the audience must resolve "browser" too.
  std::ofstream(rules) << "vip: monetary > 100\nbrowser: views >= 1\n";
  ASSERT_TRUE(engine_->ReloadTagRules().ok());
  Ingest(Event("b", "view", kT0 + 2));
  EXPECT_EQ(saved->Get(browsers->id)->size, 1u);
  ASSERT_EQ(AllChanges(*saved, browsers->id).size(), 1u);
  EXPECT_EQ(AllChanges(*saved, browsers->id)[0].user_id, "b");
  EXPECT_EQ(saved->Get(vips->id)->size, 1u);
}

TEST_F(SavedAudiencesTest, CrossingAThresholdEmitsEnterThenExitWithIncreasingSeqs) {
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto a = saved->Create("browsers", "views >= 2 and purchases = 0", "");
  ASSERT_TRUE(a.ok());
  Ingest(Event("u1", "view", kT0));
  EXPECT_EQ(saved->Get(a->id)->size, 0u);
  EXPECT_TRUE(AllChanges(*saved, a->id).empty());
  Ingest(Event("u1", "view", kT0 + 1000) + Event("u2", "view", kT0 + 1000));
  Ingest(Event("u2", "view", kT0 + 2000));
  EXPECT_EQ(saved->Get(a->id)->size, 2u);
  Ingest(Event("u1", "purchase", kT0 + 3000, 5));
  const auto changes = AllChanges(*saved, a->id);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].seq, 1u);
  EXPECT_EQ(changes[0].user_id, "u1");
  EXPECT_TRUE(changes[0].entered);
  EXPECT_EQ(changes[0].at_ms, kT0 + 1000);
  EXPECT_EQ(changes[1].seq, 2u);
  EXPECT_EQ(changes[1].user_id, "u2");
  EXPECT_TRUE(changes[1].entered);
  EXPECT_EQ(changes[2].seq, 3u);
  EXPECT_EQ(changes[2].user_id, "u1");
  EXPECT_FALSE(changes[2].entered);
  const auto info = saved->Get(a->id);
  EXPECT_EQ(info->size, 1u);
  EXPECT_EQ(info->entered, 2u);
  EXPECT_EQ(info->exited, 1u);
  EXPECT_EQ(info->last_seq, 3u);
}

TEST_F(SavedAudiencesTest, AttributeChangesMoveMembership) {
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto gold = saved->Create("gold", "attribute(\"tier\") = \"gold\"", "");
  ASSERT_TRUE(gold.ok()) << gold.status();
  ASSERT_TRUE(engine_->SetAttributes("u1", R"({"tier":"gold"})", true).ok());
  EXPECT_EQ(saved->Get(gold->id)->size, 1u);
  ASSERT_TRUE(engine_->SetAttributes("u1", R"({"tier":"silver"})", true).ok());
  EXPECT_EQ(saved->Get(gold->id)->size, 0u);
  const auto changes = AllChanges(*saved, gold->id);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_TRUE(changes[0].entered);
  EXPECT_FALSE(changes[1].entered);
}

TEST_F(SavedAudiencesTest, ErasingAMemberEmitsExitFromEveryAudience) {
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto viewers = saved->Create("viewers", "views >= 1", "");
  auto buyers = saved->Create("buyers", "purchases >= 1", "");
  ASSERT_TRUE(viewers.ok() && buyers.ok());
  Ingest(Event("u1", "view", kT0) + Event("u2", "view", kT0 + 1));
  EXPECT_EQ(saved->Get(viewers->id)->size, 2u);
  EXPECT_EQ(saved->Get(buyers->id)->size, 0u);
  ASSERT_TRUE(engine_->EraseUser("u1").ok());
  EXPECT_EQ(saved->Get(viewers->id)->size, 1u);
  const auto changes = AllChanges(*saved, viewers->id);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[2].user_id, "u1");
  EXPECT_FALSE(changes[2].entered);
  EXPECT_TRUE(AllChanges(*saved, buyers->id).empty());  // u1 was never a buyer
}

TEST_F(SavedAudiencesTest, ChangesPageAndReportTruncationPastTheRetainedRing) {
  auto saved = OpenSaved({.retain = 5});
  saved->Attach(engine_.get());
  auto a = saved->Create("viewers", "views >= 1", "");
  ASSERT_TRUE(a.ok());
  std::string events;
  for (int i = 0; i < 8; ++i) events += Event("u" + std::to_string(i), "view", kT0 + i);
  Ingest(events);  // 8 enters, seqs 1..8; the ring keeps 4..8

  auto page = saved->Changes(a->id, 0, 2);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->truncated);
  ASSERT_EQ(page->changes.size(), 2u);
  EXPECT_EQ(page->changes[0].seq, 4u);
  EXPECT_EQ(page->changes[1].seq, 5u);
  EXPECT_EQ(page->next_after, 5u);
  EXPECT_EQ(page->epoch, saved->epoch());

  page = saved->Changes(a->id, 3, 2);  // exactly at the edge: nothing lost
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(page->changes[0].seq, 4u);

  page = saved->Changes(a->id, 5, 100);
  EXPECT_FALSE(page->truncated);
  ASSERT_EQ(page->changes.size(), 3u);
  EXPECT_EQ(page->changes.back().seq, 8u);
  EXPECT_EQ(page->next_after, 8u);

  page = saved->Changes(a->id, 8, 100);  // caught up
  EXPECT_TRUE(page->changes.empty());
  EXPECT_FALSE(page->truncated);
  EXPECT_EQ(page->next_after, 8u);
}

TEST_F(SavedAudiencesTest, WaitForChangesFiresOnAChangeOnTimeoutAndAtOnceWhenBehind) {
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto a = saved->Create("viewers", "views >= 1", "");
  ASSERT_TRUE(a.ok());

  // Unknown audience: at once.
  std::promise<void> unknown;
  saved->WaitForChanges("nope", 0, milliseconds(60000), [&] { unknown.set_value(); });
  EXPECT_EQ(unknown.get_future().wait_for(milliseconds(0)), std::future_status::ready);

  // Nothing yet: fires when the change arrives, exactly once.
  std::atomic<int> calls{0};
  std::promise<void> changed;
  saved->WaitForChanges(a->id, 0, milliseconds(60000), [&] {
    if (calls++ == 0) changed.set_value();
  });
  auto changed_future = changed.get_future();
  EXPECT_EQ(changed_future.wait_for(milliseconds(50)), std::future_status::timeout);
  Ingest(Event("u1", "view", kT0));
  EXPECT_EQ(changed_future.wait_for(milliseconds(5000)), std::future_status::ready);
  Ingest(Event("u2", "view", kT0 + 1));
  EXPECT_EQ(calls.load(), 1);

  // Behind the latest seq: at once.
  std::promise<void> behind;
  saved->WaitForChanges(a->id, 1, milliseconds(60000), [&] { behind.set_value(); });
  EXPECT_EQ(behind.get_future().wait_for(milliseconds(0)), std::future_status::ready);

  // Caught up and nothing happens: fires on the timeout.
  std::promise<void> timed_out;
  const auto start = std::chrono::steady_clock::now();
  saved->WaitForChanges(a->id, 2, milliseconds(150), [&] { timed_out.set_value(); });
  ASSERT_EQ(timed_out.get_future().wait_for(milliseconds(5000)), std::future_status::ready);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(150));

  // Deleting the audience releases its waiters.
  std::promise<void> deleted;
  saved->WaitForChanges(a->id, 2, milliseconds(60000), [&] { deleted.set_value(); });
  ASSERT_TRUE(saved->Delete(a->id).ok());
  EXPECT_EQ(deleted.get_future().wait_for(milliseconds(0)), std::future_status::ready);
}

TEST_F(SavedAudiencesTest, DestructionReleasesPendingWaiters) {
  std::atomic<int> calls{0};
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto a = saved->Create("viewers", "views >= 1", "");
  ASSERT_TRUE(a.ok());
  for (int i = 0; i < 3; ++i) {
    saved->WaitForChanges(a->id, 0, milliseconds(60000), [&] { calls++; });
  }
  EXPECT_EQ(calls.load(), 0);
  ASSERT_TRUE(engine_->Close().ok());  // closing the engine releases nobody ...
  EXPECT_EQ(calls.load(), 0);
  Close();  // ... destroying the saved audiences (after their engine) does
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(SavedAudiencesTest, ReconcileCatchesDriftFromTimeAlone) {
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto idle = saved->Create("idle", "days_since_last_seen > 1", "");
  ASSERT_TRUE(idle.ok());
  Ingest(Event("u1", "view", kT0));
  EXPECT_EQ(saved->Get(idle->id)->size, 0u);
  // Another user's events move the watermark three days on; u1 is not touched, so only a
  // reconciliation can notice that u1 went idle.
  Ingest(Event("u2", "view", kT0 + 3 * kDayMs));
  EXPECT_EQ(saved->Get(idle->id)->size, 0u);
  const auto stats = saved->Reconcile();
  EXPECT_EQ(stats.scanned, 2u);
  EXPECT_EQ(stats.entered, 1u);
  EXPECT_EQ(stats.exited, 0u);
  EXPECT_EQ(saved->Get(idle->id)->size, 1u);
  const auto changes = AllChanges(*saved, idle->id);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user_id, "u1");
  EXPECT_TRUE(changes[0].entered);
  EXPECT_EQ(changes[0].at_ms, kT0 + 3 * kDayMs);
  // Nothing more drifted.
  EXPECT_EQ(saved->Reconcile().entered, 0u);
}

TEST_F(SavedAudiencesTest, DetachedListenerCostsNothingAndReattachRecomputes) {
  auto saved = OpenSaved();
  saved->Attach(engine_.get());
  auto a = saved->Create("viewers", "views >= 1", "");
  ASSERT_TRUE(a.ok());
  Ingest(Event("u1", "view", kT0));
  saved->Detach();
  EXPECT_EQ(saved->Get(a->id)->size, 0u);
  Ingest(Event("u2", "view", kT0 + 1));
  EXPECT_EQ(AllChanges(*saved, a->id).size(), 1u);  // u2's entry happened while detached
  saved->Attach(engine_.get());
  EXPECT_EQ(saved->Get(a->id)->size, 2u);
  Ingest(Event("u3", "view", kT0 + 2));
  EXPECT_EQ(saved->Get(a->id)->size, 3u);
  EXPECT_EQ(AllChanges(*saved, a->id).size(), 2u);
}

// Create initialises the new bit with a scan while writers keep changing profiles. Users that
// matched before Create and keep matching must never appear in the stream (they are part of the
// initial state, not entries), and at the end bits and size equal a fresh evaluation.
TEST_F(SavedAudiencesTest, CreateDuringIngestEmitsNoSpuriousEntersAndEndsConsistent) {
  // Enough users that the initialising scan takes a while, and small batches so that writers
  // touch profiles on both sides of the scan's position while it runs.
  constexpr int kUsers = 20000;
  for (int start = 0; start < kUsers; start += 5000) {
    std::string setup;
    for (int u = start; u < start + 5000; ++u) {
      const std::string user = "u" + std::to_string(u);
      // Even users have two purchases (members from the start); odd users one.
      setup += Event(user, "purchase", kT0 + u, 10);
      if (u % 2 == 0) setup += Event(user, "purchase", kT0 + u + 1, 10);
    }
    Ingest(setup);
  }
  auto saved = OpenSaved();
  saved->Attach(engine_.get());

  std::atomic<bool> stop{false};
  std::atomic<int> round{0};
  std::thread writer([&] {
    // Views keep touching users (membership unchanged); a few odd users buy a second time (they
    // enter, either silently before the scan reaches them or as a change after it).
    for (int r = 0; !stop.load() || r < 3; ++r) {
      std::string events;
      for (int k = 0; k < 300; ++k) {
        const int u = (r * 7919 + k * 67) % kUsers;
        events += Event("u" + std::to_string(u), "view", kT0 + kUsers + r);
      }
      const int buyer = (2 * r + 1) % kUsers;
      events += Event("u" + std::to_string(buyer), "purchase", kT0 + kUsers + r, 10);
      (void)engine_->Ingest(Batch(events));
      round = r + 1;
    }
  });
  while (round.load() < 1) std::this_thread::sleep_for(milliseconds(1));
  // Three creations: three initialisations racing with the writers.
  const std::vector<std::string> conditions = {"purchases >= 2", "purchases > 1",
                                               "not (purchases < 2)"};
  std::vector<std::string> ids;
  for (const std::string& condition : conditions) {
    auto a = saved->Create("repeat buyers " + std::to_string(ids.size()), condition, "");
    ASSERT_TRUE(a.ok());
    ids.push_back(a->id);
  }
  stop = true;
  writer.join();

  const int64_t now = engine_->NowMs();
  for (size_t i = 0; i < ids.size(); ++i) {
    // No user of the initial state (even ids) was reported entering.
    for (const auto& c : AllChanges(*saved, ids[i])) {
      const int u = std::stoi(c.user_id.substr(1));
      EXPECT_EQ(u % 2, 1) << "spurious change for initial member " << c.user_id;
      EXPECT_TRUE(c.entered);
    }
    // Bits and size equal a fresh evaluation.
    auto condition = AudienceCondition::Compile(conditions[i]);
    ASSERT_TRUE(condition.ok());
    const int bit = *saved->BitOf(ids[i]);
    uint64_t matching = 0;
    uint64_t wrong = 0;
    std::mutex mu;
    engine_->ScanProfiles(0, [&](uint32_t, const ProfileScanItem& item) {
      const bool match = condition->Matches(item.profile, item.ctx, now, AudienceEnv{});
      std::lock_guard<std::mutex> lock(mu);
      wrong += match != (((item.membership >> bit) & 1) != 0);
      matching += match;
    });
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(saved->Get(ids[i])->size, matching);
    EXPECT_GE(matching, static_cast<uint64_t>(kUsers / 2));
  }
}

}  // namespace
}  // namespace persona
