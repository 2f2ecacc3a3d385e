#include "predict/event_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "engine/batch_record.h"
#include "store/scoped_temp_dir.h"
#include "store/store.h"

namespace persona {
namespace {

std::string WriteFile(const ScopedTempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> Items(const EventLog& log) {
  std::vector<std::string> items;
  for (const Event* e : log.events()) items.emplace_back(e->item_id);
  return items;
}

TEST(EventLogTest, FileEventsAreSortedByTimeKeepingInputOrderOnTiesAndBadLinesAreCounted) {
  ScopedTempDir dir("event_log");
  // Taobao: user,item,category,behavior,epoch seconds. i2 and i3 share a second and must stay in
  // input order; the "jump" line has an unknown behaviour and is skipped.
  const std::string path = WriteFile(dir, "t.csv",
                                     "u1,i1,c1,pv,1511600000\n"
                                     "u2,i2,c1,pv,1511500000\n"
                                     "u1,i3,c2,cart,1511500000\n"
                                     "u2,i4,c1,jump,1511400000\n"
                                     "u3,i5,c3,buy,1511400000\n");
  uint64_t last_progress = 0;
  auto log = EventLog::FromFile(path, InputFormat::kTaobao,
                                [&](uint64_t done, uint64_t) { last_progress = done; });
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(Items(*log), (std::vector<std::string>{"i5", "i2", "i3", "i1"}));
  EXPECT_EQ(log->skipped(), 1u);
  EXPECT_EQ(log->min_ts_ms(), 1511400000000);
  EXPECT_EQ(log->max_ts_ms(), 1511600000000);
  EXPECT_GT(last_progress, 0u);
  // The events outlive the reader: their strings live in the batches the log owns.
  EXPECT_EQ(log->events()[0]->user_id, "u3");
  EXPECT_EQ(log->events()[0]->type, EventType::kPurchase);
}

TEST(EventLogTest, MissingFileIsAnErrorNamingThePath) {
  auto log = EventLog::FromFile("/nonexistent/persona.csv", InputFormat::kTaobao);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("/nonexistent/persona.csv"), std::string::npos)
      << log.status();
}

TEST(EventLogTest, EmptyFileGivesAnEmptyLog) {
  ScopedTempDir dir("event_log");
  auto log = EventLog::FromFile(WriteFile(dir, "empty.csv", ""), InputFormat::kTaobao);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE(log->events().empty());
  EXPECT_EQ(log->min_ts_ms(), 0);
}

Event MakeEvent(std::string_view user, std::string_view item, int64_t ts_ms) {
  Event e;
  e.user_id = user;
  e.item_id = item;
  e.category_id = "c";
  e.ts_ms = ts_ms;
  return e;
}

TEST(EventLogTest, DataDirMergesPartitionsInTimeOrderAndSkipsRedactedEvents) {
  ScopedTempDir dir("event_log_store");
  {
    auto store = Store::Open(dir.path(), 2);
    ASSERT_TRUE(store.ok()) << store.status();
    BatchRecordWriter w;
    w.Add(MakeEvent("a", "p0-30", 30), 0);
    w.Add(MakeEvent("secret", "p0-redacted", 5), 0);
    w.Add(MakeEvent("a", "p0-40", 40), 0);
    std::string redacted;
    ASSERT_TRUE(RedactBatchRecord(w.Finish(), {1}, &redacted));
    ASSERT_TRUE((*store)->Append(0, 1, redacted, {}, false).ok());
    w.Clear();
    w.Add(MakeEvent("b", "p1-10", 10), 0);
    ASSERT_TRUE((*store)->Append(1, 1, w.Finish(), {}, false).ok());
    w.Clear();
    w.Add(MakeEvent("b", "p1-35", 35), 0);
    ASSERT_TRUE((*store)->Append(1, 2, w.Finish(), {}, false).ok());
  }
  auto log = EventLog::FromDataDir(dir.path());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(Items(*log), (std::vector<std::string>{"p1-10", "p0-30", "p1-35", "p0-40"}));
  EXPECT_EQ(log->events()[1]->user_id, "a");
}

TEST(EventLogTest, DataDirWithoutStoreIsAnError) {
  ScopedTempDir dir("event_log_nostore");
  EXPECT_FALSE(EventLog::FromDataDir(dir.path()).ok());
}

}  // namespace
}  // namespace persona
