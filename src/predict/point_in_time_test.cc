#include "predict/point_in_time.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/time_util.h"
#include "predict/profile_vector.h"
#include "store/scoped_temp_dir.h"

namespace persona {
namespace {

// 2017-12-01T00:00:00Z, in taobao's epoch seconds and in ms.
constexpr int64_t kT = 1512086400;
constexpr int64_t kTMs = kT * 1000;
constexpr int64_t kHour = 3600;

struct Line {
  std::string user;
  std::string item;
  std::string behavior;  // pv cart fav buy
  int64_t ts_s;
};

class PointInTimeTest : public ::testing::Test {
 protected:
  // Writes `lines` as a taobao file and reads it back as a log.
  EventLog Log(const std::vector<Line>& lines) {
    const std::string path = dir_.path() + "/log" + std::to_string(files_++) + ".csv";
    std::ofstream out(path);
    for (const Line& l : lines) {
      out << l.user << "," << l.item << ",cat" << l.item.back() << "," << l.behavior << ","
          << l.ts_s << "\n";
    }
    out.close();
    auto log = EventLog::FromFile(path, InputFormat::kTaobao);
    EXPECT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(log->skipped(), 0u);
    return std::move(*log);
  }

  static PointInTimeOptions Options(std::vector<int64_t> cutoffs_ms, int64_t horizon_ms) {
    PointInTimeOptions o;
    o.cutoffs_ms = std::move(cutoffs_ms);
    o.horizon_ms = horizon_ms;
    return o;
  }

  static const LabeledRow* Row(const PointInTimeSet& set, std::string_view user, int64_t cutoff) {
    for (const LabeledRow& r : set.rows) {
      if (r.user == user && r.cutoff_ms == cutoff) return &r;
    }
    return nullptr;
  }

  ScopedTempDir dir_{"point_in_time"};
  int files_ = 0;
};

// Bitwise, so that NaN == NaN and -0 != +0: "identical" means identical.
bool SameFeatures(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  }
  return true;
}

TEST_F(PointInTimeTest, NoFeatureSeesAnEventAfterItsCutoff) {
  // 40 users over 6 days before the cutoff and 3 days after, all behaviours, several events per
  // hour, some exactly at the cutoff second.
  std::mt19937 rng(7);
  const char* behaviors[] = {"pv", "pv", "pv", "cart", "fav", "buy"};
  std::vector<Line> before, after;
  for (int u = 0; u < 40; ++u) {
    const std::string user = "u" + std::to_string(u);
    const int n = 5 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      const int64_t ts = kT - 6 * 24 * kHour + static_cast<int64_t>(rng() % (9 * 24 * kHour));
      Line l{user, "i" + std::to_string(rng() % 50), behaviors[rng() % 6], ts};
      (ts <= kT ? before : after).push_back(l);
    }
    if (u % 5 == 0) before.push_back({user, "i7", "cart", kT});  // exactly at the cutoff
  }
  // The same past with a different future: every later event of half the users changes type and
  // item, a third of the rest is removed, and new events (and new users) are added.
  std::vector<Line> changed_after;
  for (size_t i = 0; i < after.size(); ++i) {
    Line l = after[i];
    if (i % 2 == 0) {
      l.behavior = l.behavior == "buy" ? "pv" : "buy";
      l.item = "z" + l.item;
    } else if (i % 3 == 0) {
      continue;
    }
    changed_after.push_back(l);
  }
  for (int i = 0; i < 200; ++i) {
    changed_after.push_back({"u" + std::to_string(rng() % 60), "n" + std::to_string(i % 9),
                             behaviors[rng() % 6], kT + 1 + static_cast<int64_t>(rng() % 86400)});
  }
  // Both files list the shared past first in the same order (so same-second ties, which
  // order-dependent features such as sessions see, resolve alike), then their own future; the
  // lines are unsorted, and the log sorts them.
  std::vector<Line> a = before, b = before;
  a.insert(a.end(), after.begin(), after.end());
  b.insert(b.end(), changed_after.begin(), changed_after.end());

  // Two cutoffs: the earlier one's label window is all before-cutoff data in both logs.
  const int64_t early = kTMs - 2 * kDayMs;
  auto set_a = BuildPointInTime(Log(a), Options({kTMs, early}, 2 * kDayMs));
  auto set_b = BuildPointInTime(Log(b), Options({kTMs, early}, 2 * kDayMs));
  ASSERT_TRUE(set_a.ok()) << set_a.status();
  ASSERT_TRUE(set_b.ok()) << set_b.status();
  ASSERT_EQ(set_a->rows.size(), set_b->rows.size());
  ASSERT_GT(set_a->rows.size(), 40u);
  int labels_differ = 0;
  for (size_t i = 0; i < set_a->rows.size(); ++i) {
    const LabeledRow& ra = set_a->rows[i];
    const LabeledRow& rb = set_b->rows[i];
    ASSERT_EQ(ra.user, rb.user);
    ASSERT_EQ(ra.cutoff_ms, rb.cutoff_ms);
    EXPECT_TRUE(SameFeatures(ra.features, rb.features)) << ra.user << " at " << ra.cutoff_ms;
    if (ra.cutoff_ms == kTMs) {
      labels_differ += ra.purchased != rb.purchased || ra.events_after != rb.events_after;
    } else {
      // Both windows end at kT, inside the shared past: the labels must agree too.
      EXPECT_EQ(ra.purchased, rb.purchased);
      EXPECT_EQ(ra.events_after, rb.events_after);
    }
  }
  // The future did change: otherwise this test would prove nothing.
  EXPECT_GT(labels_differ, 10);
}

TEST_F(PointInTimeTest, EventAtCutoffIsAFeatureAtCutoffPlusHorizonALabelAndLaterNothing) {
  const int64_t h = 2 * 24 * kHour;
  EventLog log = Log({
      {"at_cutoff", "i1", "pv", kT - 100},
      {"at_cutoff", "i2", "buy", kT},  // feature: ts == T
      {"at_horizon", "i1", "pv", kT - 100},
      {"at_horizon", "i3", "buy", kT + h},  // label: ts == T + H
      {"after_horizon", "i1", "pv", kT - 100},
      {"after_horizon", "i4", "buy", kT + h + 1},  // outside the window
      {"viewer", "i1", "pv", kT - 100},
      {"viewer", "i5", "pv", kT + 1},      // active but no purchase
      {"newcomer", "i6", "buy", kT + 10},  // first seen after T: no row
  });
  auto set = BuildPointInTime(log, Options({kTMs}, h * 1000));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->rows.size(), 4u);
  const std::vector<std::string>& names = set->feature_names;
  const size_t purchases = std::find(names.begin(), names.end(), "purchases") - names.begin();
  const size_t events = std::find(names.begin(), names.end(), "events") - names.begin();

  const LabeledRow* at_cutoff = Row(*set, "at_cutoff", kTMs);
  ASSERT_NE(at_cutoff, nullptr);
  EXPECT_EQ(at_cutoff->features[purchases], 1);
  EXPECT_EQ(at_cutoff->features[events], 2);
  EXPECT_FALSE(at_cutoff->purchased);
  EXPECT_TRUE(at_cutoff->churned);

  const LabeledRow* at_horizon = Row(*set, "at_horizon", kTMs);
  ASSERT_NE(at_horizon, nullptr);
  EXPECT_EQ(at_horizon->features[purchases], 0);
  EXPECT_TRUE(at_horizon->purchased);
  EXPECT_FALSE(at_horizon->churned);
  EXPECT_EQ(at_horizon->events_after, 1);

  const LabeledRow* after_horizon = Row(*set, "after_horizon", kTMs);
  ASSERT_NE(after_horizon, nullptr);
  EXPECT_FALSE(after_horizon->purchased);
  EXPECT_TRUE(after_horizon->churned);
  EXPECT_EQ(after_horizon->events_after, 0);

  const LabeledRow* viewer = Row(*set, "viewer", kTMs);
  ASSERT_NE(viewer, nullptr);
  EXPECT_FALSE(viewer->purchased);
  EXPECT_FALSE(viewer->churned);
  EXPECT_EQ(Row(*set, "newcomer", kTMs), nullptr);
}

TEST_F(PointInTimeTest, RowsAreByCutoffThenUserAndOverlappingWindowsBothCountAnEvent) {
  const int64_t day = 24 * kHour;
  EventLog log = Log({
      {"b", "i1", "pv", kT - 3 * day},
      {"a", "i1", "pv", kT - 2 * day},
      {"c", "i1", "pv", kT - day / 2},
      {"a", "i2", "buy", kT - day / 2},  // inside both windows (T-1d, T+1d] and (T-2d..]
      {"b", "i2", "pv", kT + day},
  });
  // Given out of order and with a duplicate: both are normalised.
  auto set = BuildPointInTime(log, Options({kTMs, kTMs - day * 1000, kTMs}, 2 * day * 1000));
  ASSERT_TRUE(set.ok()) << set.status();
  std::vector<std::pair<int64_t, std::string>> keys;
  for (const LabeledRow& r : set->rows) keys.emplace_back(r.cutoff_ms, r.user);
  const int64_t early = kTMs - day * 1000;
  EXPECT_EQ(keys, (std::vector<std::pair<int64_t, std::string>>{
                      {early, "a"}, {early, "b"}, {kTMs, "a"}, {kTMs, "b"}, {kTMs, "c"}}));
  EXPECT_TRUE(Row(*set, "a", early)->purchased);
  EXPECT_FALSE(Row(*set, "a", kTMs)->purchased);      // the purchase is before T: a feature there
  EXPECT_EQ(Row(*set, "b", early)->events_after, 1);  // kT + 1d is inside (T-1d, T+1d]
  EXPECT_EQ(Row(*set, "b", kTMs)->events_after, 1);
}

TEST_F(PointInTimeTest, InactiveAndExcludedUsersAreLeftOutAndVisitSeesEachKeptRow) {
  const int64_t day = 24 * kHour;
  EventLog log = Log({
      {"gone", "i1", "pv", kT - 10 * day},
      {"bot", "i1", "pv", kT - day},
      {"bot", "i1", "pv", kT - day + 1},
      {"kept", "i1", "pv", kT - day},
      {"kept", "i1", "pv", kT + 1},
  });
  PointInTimeOptions o = Options({kTMs}, kDayMs);
  o.active_within_ms = 7 * kDayMs;
  o.exclude = [](const Profile& p, const ProfileContext&, int64_t now_ms) {
    EXPECT_LE(p.last_seen_ms(), now_ms);
    return p.events() == 2;
  };
  std::vector<std::string> visited;
  auto set = BuildPointInTime(
      log, o, [&](const Profile& p, const ProfileContext&, std::string_view user, int64_t cutoff) {
        EXPECT_EQ(cutoff, kTMs);
        EXPECT_EQ(p.events(), 1u);
        visited.emplace_back(user);
      });
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->rows.size(), 1u);
  EXPECT_EQ(set->rows[0].user, "kept");
  EXPECT_EQ(set->excluded, 1u);
  EXPECT_EQ(visited, std::vector<std::string>{"kept"});
}

TEST_F(PointInTimeTest, BadOptionsAreInvalidArgument) {
  EventLog log = Log({{"a", "i1", "pv", kT - 100}, {"a", "i1", "pv", kT + 100}});
  EXPECT_TRUE(absl::IsInvalidArgument(BuildPointInTime(log, Options({}, kDayMs)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(BuildPointInTime(log, Options({kTMs}, 0)).status()));
  const auto outside = BuildPointInTime(log, Options({kTMs + kDayMs}, kDayMs)).status();
  EXPECT_TRUE(absl::IsInvalidArgument(outside));
  EXPECT_NE(outside.message().find("outside the log's time range"), std::string::npos) << outside;
  // The range is inclusive at both ends: the first and the last event time are valid cutoffs.
  EXPECT_TRUE(BuildPointInTime(log, Options({(kT - 100) * 1000, (kT + 100) * 1000}, kDayMs)).ok());
}

TEST_F(PointInTimeTest, CsvHasHeaderOneLinePerRowAndEmptyCellsForMissingValues) {
  EventLog log = Log({{"a", "i1", "pv", kT - 100}, {"c", "i1", "buy", kT + 100}});
  auto set = BuildPointInTime(log, Options({kTMs}, kDayMs));
  ASSERT_TRUE(set.ok()) << set.status();
  const std::string csv = PointInTimeCsv(*set);
  const std::string header = csv.substr(0, csv.find('\n'));
  EXPECT_EQ(header.rfind("user,cutoff_ms,events,", 0), 0u) << header;
  EXPECT_EQ(header.substr(header.size() - 17), "purchased,churned");
  const std::string row = csv.substr(header.size() + 1);
  EXPECT_EQ(row.rfind("a," + std::to_string(kTMs) + ",1,", 0), 0u) << row;
  EXPECT_NE(row.find(",,"), std::string::npos) << "recency_days of a non-buyer is missing";
  EXPECT_EQ(row.substr(row.size() - 5), ",0,1\n");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2);
  EXPECT_EQ(std::count(header.begin(), header.end(), ','),
            static_cast<long>(ProfileVectorNames().size()) + 3);
}

}  // namespace
}  // namespace persona

namespace persona {
namespace {

// A script viewing 100 items in under a minute is left out of the training rows (it would teach
// the models what a bot does); a person browsing the same items at human intervals is kept.
TEST_F(PointInTimeTest, AnomalyFlaggedUsersAreLeftOutOfTrainingRows) {
  std::vector<Line> lines;
  const int human_gaps[] = {3, 40, 7, 120, 15, 2, 66, 9, 31, 200};  // seconds, irregular
  int64_t human_ts = kT - 3 * kHour;
  for (int i = 0; i < 100; ++i) {
    lines.push_back({"bot", "i" + std::to_string(i % 10), "pv", kT - kHour + i / 2});
    lines.push_back({"human", "i" + std::to_string(i % 10), "pv", human_ts});
    human_ts += human_gaps[i % 10];
  }
  lines.push_back({"human", "i1", "buy", kT + kHour});
  const EventLog log = Log(lines);
  const PointInTimeSet kept_out = *BuildPointInTime(log, Options({kTMs}, 2 * kHour * 1000));
  EXPECT_EQ(Row(kept_out, "bot", kTMs), nullptr);
  ASSERT_NE(Row(kept_out, "human", kTMs), nullptr);
  EXPECT_EQ(kept_out.anomalous, 1u);
  PointInTimeOptions all = Options({kTMs}, 2 * kHour * 1000);
  all.exclude_anomalous = false;
  const PointInTimeSet everyone = *BuildPointInTime(log, all);
  EXPECT_NE(Row(everyone, "bot", kTMs), nullptr);
  EXPECT_EQ(everyone.anomalous, 0u);
}

}  // namespace
}  // namespace persona
