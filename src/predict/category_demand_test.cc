#include "predict/category_demand.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/varint.h"

namespace persona {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kStart = 1'700'006'400'000;  // 2023-11-15 00:00 UTC, a day boundary

Event At(std::string_view category, int64_t ts_ms, EventType type = EventType::kView) {
  Event e;
  e.user_id = "u";
  e.category_path = category;
  e.ts_ms = ts_ms;
  e.type = type;
  return e;
}

TEST(CategoryDemandTest, PathCreditsTheNodeAndEveryAncestor) {
  CategoryDemand demand;
  demand.Add(At("electronics.audio.headphones", kStart));
  demand.Add(At("electronics.audio", kStart + 1));
  demand.Add(At("electronics.phones", kStart + 2, EventType::kPurchase));
  auto series = [&](std::string_view c, DemandMetric m) {
    absl::StatusOr<std::vector<double>> s = demand.Series(c, DemandPeriod::kHour, m);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::vector<double>{};
  };
  EXPECT_EQ(series("electronics", DemandMetric::kEvents), std::vector<double>{3});
  EXPECT_EQ(series("electronics", DemandMetric::kPurchases), std::vector<double>{1});
  EXPECT_EQ(series("electronics.audio", DemandMetric::kEvents), std::vector<double>{2});
  EXPECT_EQ(series("electronics.audio.headphones", DemandMetric::kEvents), std::vector<double>{1});
  EXPECT_EQ(demand.category_count(), 4u);
  EXPECT_EQ(
      demand.Series("electronics.tv", DemandPeriod::kHour, DemandMetric::kEvents).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(demand.Forecast("nope", DemandPeriod::kDay, 3, DemandMetric::kEvents).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CategoryDemandTest, BucketsFollowEventTimeNotArrivalOrder) {
  CategoryDemand in_order, shuffled;
  std::vector<Event> events;
  for (int h = 0; h < 30; ++h) {
    for (int k = 0; k <= h % 4; ++k) events.push_back(At("shoes", kStart + h * kHour + k * 1000));
  }
  for (const Event& e : events) in_order.Add(e);
  for (auto it = events.rbegin(); it != events.rend(); ++it) shuffled.Add(*it);
  for (DemandPeriod p : {DemandPeriod::kHour, DemandPeriod::kDay}) {
    int64_t first_a = 0, first_b = 0;
    auto a = in_order.Series("shoes", p, DemandMetric::kEvents, &first_a);
    auto b = shuffled.Series("shoes", p, DemandMetric::kEvents, &first_b);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(first_a, kStart);
    EXPECT_EQ(first_a, first_b);
  }
  auto hours = in_order.Series("shoes", DemandPeriod::kHour, DemandMetric::kEvents);
  ASSERT_EQ(hours->size(), 30u);
  for (int h = 0; h < 30; ++h) EXPECT_EQ((*hours)[h], h % 4 + 1) << h;
  auto days = in_order.Series("shoes", DemandPeriod::kDay, DemandMetric::kEvents);
  ASSERT_EQ(days->size(), 2u);
  EXPECT_EQ((*days)[0], 60);  // 6 cycles of 1+2+3+4
  EXPECT_EQ((*days)[1], 1 + 2 + 3 + 4 + 1 + 2);
}

TEST(CategoryDemandTest, RingKeepsFourteenDaysOfHoursAndDropsOlderEvents) {
  CategoryDemand demand;
  demand.Add(At("toys", kStart));
  demand.Add(At("toys", kStart + 20 * kDay));  // the hour ring moves on; day 0 is still kept
  auto hours = demand.Series("toys", DemandPeriod::kHour, DemandMetric::kEvents);
  ASSERT_TRUE(hours.ok());
  ASSERT_EQ(hours->size(), 14u * 24);
  EXPECT_EQ(hours->back(), 1);
  double total = 0;
  for (double v : *hours) total += v;
  EXPECT_EQ(total, 1);
  auto days = demand.Series("toys", DemandPeriod::kDay, DemandMetric::kEvents);
  ASSERT_EQ(days->size(), 21u);
  EXPECT_EQ(days->front(), 1);

  EXPECT_EQ(demand.dropped_late(), 0u);
  demand.Add(At("toys", kStart + kHour));  // older than the hour ring: dropped there
  EXPECT_EQ(demand.dropped_late(), 1u);
  demand.Add(At("toys", kStart + 19 * kDay));  // late but inside both rings: counted
  EXPECT_EQ(demand.dropped_late(), 1u);
  EXPECT_EQ(demand.Series("toys", DemandPeriod::kHour, DemandMetric::kEvents)->at(14 * 24 - 25), 1);
}

TEST(CategoryDemandTest, QuietCategoryReadsZerosUpToTheWatermark) {
  CategoryDemand demand;
  demand.Add(At("garden", kStart));
  demand.Add(At("books", kStart + 5 * kHour + 10));
  auto garden = demand.Series("garden", DemandPeriod::kHour, DemandMetric::kEvents);
  EXPECT_EQ(*garden, (std::vector<double>{1, 0, 0, 0, 0, 0}));
  auto f = demand.Forecast("garden", DemandPeriod::kHour, 3, DemandMetric::kEvents);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->points.size(), 3u);
  EXPECT_EQ(f->points[0].start_ms, kStart + 6 * kHour);
  EXPECT_EQ(f->points[2].start_ms, kStart + 8 * kHour);
  EXPECT_EQ(f->history_buckets, 6);
}

TEST(CategoryDemandTest, SeasonalHourlyDemandIsForecastWithItsDailyShape) {
  CategoryDemand demand;
  auto rate = [](int hour_of_day) { return hour_of_day >= 8 && hour_of_day < 22 ? 12 : 2; };
  for (int h = 0; h < 24 * 5; ++h) {
    for (int k = 0; k < rate(h % 24); ++k) demand.Add(At("food.fruit", kStart + h * kHour + k));
  }
  auto f = demand.Forecast("food.fruit", DemandPeriod::kHour, 24, DemandMetric::kEvents);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->model.period, 24);
  EXPECT_EQ(f->history_buckets, 120);
  ASSERT_EQ(f->points.size(), 24u);
  for (int h = 0; h < 24; ++h) {
    EXPECT_NEAR(f->points[h].mean, rate(h), 0.5) << "hour " << h;
    EXPECT_EQ(f->points[h].start_ms, kStart + (120 + h) * kHour);
  }
  auto purchases = demand.Forecast("food", DemandPeriod::kHour, 4, DemandMetric::kPurchases);
  ASSERT_TRUE(purchases.ok());
  for (const DemandPoint& p : purchases->points) EXPECT_EQ(p.mean, 0);
  EXPECT_EQ(demand.Forecast("food", DemandPeriod::kHour, 0, DemandMetric::kEvents).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CategoryDemandTest, CategoriesAreListedMostActiveFirst) {
  CategoryDemand demand;
  for (int i = 0; i < 5; ++i) demand.Add(At("b", kStart + i));
  for (int i = 0; i < 9; ++i) demand.Add(At("a.x", kStart + i));
  demand.Add(At("c", kStart, EventType::kPurchase));
  const std::vector<CategoryActivity> top = demand.Categories(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].category, "a");  // ties by name: "a" before "a.x"
  EXPECT_EQ(top[0].events, 9u);
  EXPECT_EQ(top[1].category, "a.x");
  EXPECT_EQ(top[2].category, "b");
  EXPECT_EQ(demand.Categories(100).size(), 4u);
  EXPECT_EQ(demand.Categories(100).back().purchases, 1u);
}

TEST(CategoryDemandTest, ConcurrentWritersLoseNoCount) {
  CategoryDemand demand;
  constexpr int kThreads = 4, kPerThread = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      static constexpr std::string_view kPaths[] = {"a.b.c", "a.b.d", "a.e", "f"};
      for (int i = 0; i < kPerThread; ++i) {
        demand.Add(At(kPaths[(i + t) % 4], kStart + (i % 48) * kHour,
                      i % 10 == 0 ? EventType::kPurchase : EventType::kView));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  auto sum = [&](std::string_view c, DemandMetric m) {
    const absl::StatusOr<std::vector<double>> series = demand.Series(c, DemandPeriod::kDay, m);
    EXPECT_TRUE(series.ok());
    double total = 0;
    for (double v : series.value_or(std::vector<double>{})) total += v;
    return total;
  };
  EXPECT_EQ(sum("a", DemandMetric::kEvents), kThreads * kPerThread * 3 / 4);
  EXPECT_EQ(sum("f", DemandMetric::kEvents), kThreads * kPerThread / 4);
  EXPECT_EQ(sum("a", DemandMetric::kPurchases) + sum("f", DemandMetric::kPurchases),
            kThreads * kPerThread / 10);
  EXPECT_EQ(demand.watermark_ms(), kStart + 47 * kHour);
}

TEST(CategoryDemandTest, CategoriesBeyondTheCapAreNotTracked) {
  CategoryDemandConfig config;
  config.max_categories = 2;
  CategoryDemand demand(config);
  demand.Add(At("a", kStart));
  demand.Add(At("b", kStart));
  demand.Add(At("c", kStart));
  EXPECT_EQ(demand.category_count(), 2u);
  EXPECT_EQ(demand.dropped_categories(), 1u);
  EXPECT_FALSE(demand.Series("c", DemandPeriod::kDay, DemandMetric::kEvents).ok());
}

// An event that owns its strings, for streams built up front.
struct OwnedEvent {
  std::string user, category;
  int64_t ts_ms = 0;
  EventType type = EventType::kView;
  Event view() const {
    Event e;
    e.user_id = user;
    e.category_path = category;
    e.ts_ms = ts_ms;
    e.type = type;
    return e;
  }
};

// 60 users over 20 days (past the 14-day hour ring), mostly in time order with up to 3 hours of
// jitter (well inside both rings), in nested categories with a daily cycle. One category is only
// visited in the first days, so it has gone quiet (and out of the hour ring) by the end.
std::vector<OwnedEvent> DemandStream(uint32_t seed, int64_t start, int days) {
  static const std::vector<std::string> kPaths = {"electronics.audio.headphones",
                                                  "electronics.audio.speakers",
                                                  "electronics.phones",
                                                  "home.kitchen",
                                                  "home.garden",
                                                  "books",
                                                  "toys.lego"};
  std::mt19937 rng(seed);
  std::vector<OwnedEvent> events;
  for (int h = 0; h < days * 24; ++h) {
    const int n = (h % 24 >= 8 && h % 24 < 22) ? 12 : 3;
    for (int k = 0; k < n; ++k) {
      OwnedEvent e;
      e.user = "user" + std::to_string(rng() % 60);
      e.category = kPaths[rng() % kPaths.size()];
      e.ts_ms = start + h * kHour + static_cast<int64_t>(rng() % (3 * kHour));
      e.type = rng() % 8 == 0 ? EventType::kPurchase : EventType::kView;
      events.push_back(std::move(e));
    }
    if (h < 48)
      events.push_back({"user" + std::to_string(h % 60), "vintage.radios", start + h * kHour});
  }
  return events;
}

void Feed(const std::vector<OwnedEvent>& events, CategoryDemand* demand) {
  for (const OwnedEvent& e : events) demand->Add(PartitionOf(e.user, demand->parts()), e.view());
}

// Every read the class offers, for every category it lists (plus the all-events series), as text:
// equal text means equal reads.
std::string AllReads(const CategoryDemand& demand) {
  std::string out =
      absl::StrCat("watermark ", demand.watermark_ms(), " categories ", demand.category_count(),
                   " late ", demand.dropped_late(), " capped ", demand.dropped_categories(), "\n");
  std::vector<std::string> names = {std::string(kAllCategories)};
  for (const CategoryActivity& a : demand.Categories(1000)) {
    absl::StrAppend(&out, a.category, " ", a.events, " ", a.purchases, "\n");
    names.push_back(a.category);
  }
  for (const std::string& name : names) {
    for (DemandPeriod period : {DemandPeriod::kHour, DemandPeriod::kDay}) {
      for (DemandMetric metric : {DemandMetric::kEvents, DemandMetric::kPurchases}) {
        int64_t first = 0;
        absl::StatusOr<std::vector<double>> series = demand.Series(name, period, metric, &first);
        absl::StrAppend(&out, name, "/", std::string(DemandPeriodName(period)), "/",
                        std::string(DemandMetricName(metric)), " ", series.status().ToString(),
                        " from ", first, ":");
        for (double v : series.value_or(std::vector<double>{})) absl::StrAppend(&out, " ", v);
        absl::StrAppend(&out, "\n");
        if (metric != DemandMetric::kEvents) continue;  // forecasts cost; one metric is enough
        absl::StatusOr<DemandForecast> f = demand.Forecast(name, period, 5, metric);
        absl::StrAppend(&out, "  forecast ", f.status().ToString());
        if (f.ok()) {
          absl::StrAppend(&out, " ", f->history_buckets, " ", f->model.period);
          for (const DemandPoint& p : f->points) {
            absl::StrAppend(&out, " [", p.start_ms, " ", p.mean, " ", p.lo, " ", p.hi, "]");
          }
        }
        absl::StrAppend(&out, "\n");
      }
    }
  }
  return out;
}

std::string SaveAll(const CategoryDemand& demand) {
  std::string out;
  for (uint32_t p = 0; p < demand.parts(); ++p) {
    std::string part;
    demand.SavePart(p, &part);
    absl::StrAppend(&out, part.size(), ":", part);
  }
  return out;
}

TEST(CategoryDemandPartsTest, StreamSplitByUserReadsLikeOnePart) {
  CategoryDemandConfig config;
  config.count_all = true;
  const std::vector<OwnedEvent> events = DemandStream(1, kStart, 20);
  CategoryDemand one(config);
  Feed(events, &one);
  ASSERT_EQ(one.dropped_late(), 0u);
  ASSERT_EQ(one.category_count(), 14u);  // 13 nodes and ancestors + the all-events series
  const std::string expected = AllReads(one);
  for (uint32_t parts : {2u, 3u}) {
    CategoryDemand split(config, parts);
    Feed(events, &split);
    EXPECT_EQ(AllReads(split), expected) << parts << " parts";
  }
}

TEST(CategoryDemandPartsTest, OneWriterThreadPerPartWithLiveReadersMatchesASequentialFeed) {
  const std::vector<OwnedEvent> events = DemandStream(6, kStart, 4);
  CategoryDemand sequential(CategoryDemandConfig(), 3), threaded(CategoryDemandConfig(), 3);
  Feed(events, &sequential);
  std::atomic<int> writing{3};
  std::vector<std::thread> threads;
  for (uint32_t part = 0; part < 3; ++part) {
    threads.emplace_back([&, part] {
      for (const OwnedEvent& e : events) {
        if (PartitionOf(e.user, 3) == part) threaded.Add(part, e.view());
      }
      writing.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {
    while (writing.load() > 0) {
      (void)threaded.Series("electronics", DemandPeriod::kHour, DemandMetric::kEvents);
      (void)threaded.Categories(5);
      (void)threaded.category_count();
      std::string part;
      threaded.SavePart(1, &part);
    }
  });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(SaveAll(threaded), SaveAll(sequential));
  EXPECT_EQ(AllReads(threaded), AllReads(sequential));
}

TEST(CategoryDemandPartsTest, EachPartKeepsItsOwnWatermarkAndDropRule) {
  CategoryDemand demand(CategoryDemandConfig(), 2);
  demand.Add(0, At("toys", kStart + 20 * kDay));
  // Older than the hour ring's span behind part 0, but part 1 has seen nothing newer: kept there.
  demand.Add(1, At("toys", kStart));
  EXPECT_EQ(demand.dropped_late(), 0u);
  EXPECT_EQ(demand.watermark_ms(), kStart + 20 * kDay);
  auto days = demand.Series("toys", DemandPeriod::kDay, DemandMetric::kEvents);
  ASSERT_TRUE(days.ok());
  EXPECT_EQ(*days,
            (std::vector<double>{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  demand.Add(1, At("toys", kStart + 15 * kDay));
  demand.Add(1, At("toys", kStart + kHour));  // now late in part 1's own hour ring
  EXPECT_EQ(demand.dropped_late(), 1u);
}

TEST(CategoryDemandPartsTest, CategoryCapHoldsPerPart) {
  CategoryDemandConfig config;
  config.max_categories = 2;
  CategoryDemand demand(config, 2);
  for (std::string_view c : {"a", "b", "c"}) demand.Add(0, At(c, kStart));
  for (std::string_view c : {"c", "d"}) demand.Add(1, At(c, kStart));
  EXPECT_EQ(demand.category_count(), 4u);  // a, b in part 0; c, d in part 1
  EXPECT_EQ(demand.dropped_categories(), 1u);
  EXPECT_EQ(*demand.Series("c", DemandPeriod::kDay, DemandMetric::kEvents), std::vector<double>{1});
}

TEST(CategoryDemandPartsTest, RestoredPartsReadAndEvolveLikeTheOriginal) {
  CategoryDemandConfig config;
  config.count_all = true;
  const std::vector<OwnedEvent> before = DemandStream(2, kStart, 16);
  const std::vector<OwnedEvent> after = DemandStream(3, kStart + 16 * kDay, 6);
  CategoryDemand original(config, 3);
  Feed(before, &original);
  // The restored instance starts with other content, which LoadPart must replace.
  CategoryDemand restored(config, 3);
  restored.Add(1, At("stale.category", kStart + 30 * kDay));
  for (uint32_t p = 0; p < 3; ++p) {
    std::string part;
    original.SavePart(p, &part);
    ASSERT_TRUE(restored.LoadPart(p, part).ok()) << p;
  }
  EXPECT_EQ(SaveAll(restored), SaveAll(original));
  EXPECT_EQ(AllReads(restored), AllReads(original));
  EXPECT_FALSE(restored.Series("stale.category", DemandPeriod::kDay, DemandMetric::kEvents).ok());

  Feed(after, &original);
  Feed(after, &restored);
  EXPECT_EQ(SaveAll(restored), SaveAll(original));
  EXPECT_EQ(AllReads(restored), AllReads(original));
}

TEST(CategoryDemandPartsTest, EmptyPartRoundTrips) {
  CategoryDemand empty, other;
  other.Add(At("a", kStart));
  std::string part;
  empty.SavePart(0, &part);
  ASSERT_TRUE(other.LoadPart(0, part).ok());
  EXPECT_EQ(other.category_count(), 0u);
  EXPECT_EQ(other.watermark_ms(), 0);
  EXPECT_TRUE(other.Categories(10).empty());
}

// A blob whose body is `body` with a correct checksum: the decoder's own checks are all that
// stands between it and the part.
std::string WithChecksum(std::string_view body) {
  std::string out(body);
  AppendFixed64(&out, Hash64(body));
  return out;
}

TEST(CategoryDemandPartsTest, TruncatedOrCorruptPartIsDataLossAndChangesNothing) {
  CategoryDemand source;
  Feed(DemandStream(4, kStart, 3), &source);
  source.Add(At("x.y", kStart + 2 * kDay, EventType::kPurchase));
  std::string blob;
  source.SavePart(0, &blob);
  ASSERT_GT(blob.size(), 100u);

  CategoryDemand target;
  target.Add(At("kept", kStart));
  std::string before;
  target.SavePart(0, &before);
  auto expect_rejected = [&](std::string_view in, const std::string& what) {
    const absl::Status s = target.LoadPart(0, in);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << what << ": " << s;
  };
  for (size_t n = 0; n < blob.size(); ++n)
    expect_rejected(blob.substr(0, n), "prefix " + std::to_string(n));
  for (size_t i = 0; i < blob.size(); ++i) {
    for (int bit : {0, 7}) {
      std::string flipped = blob;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      expect_rejected(flipped, "flip at " + std::to_string(i));
    }
  }
  expect_rejected(blob + "x", "trailing byte");
  // Every proper prefix of the body, checksummed: the structure itself must give it away.
  const std::string_view body = std::string_view(blob).substr(0, blob.size() - 8);
  for (size_t n = 0; n < body.size(); ++n) {
    expect_rejected(WithChecksum(body.substr(0, n)), "checksummed prefix " + std::to_string(n));
  }
  std::string after;
  target.SavePart(0, &after);
  EXPECT_EQ(after, before);
  EXPECT_TRUE(target.LoadPart(0, blob).ok());
}

// Random damage behind a valid checksum: any outcome but a crash or an out-of-bounds read (run
// under ASan) is fine, and a part that loads must encode back to a valid blob.
TEST(CategoryDemandPartsTest, CorruptBodyWithValidChecksumNeverCrashes) {
  CategoryDemand source;
  Feed(DemandStream(5, kStart, 2), &source);
  std::string blob;
  source.SavePart(0, &blob);
  const std::string body = blob.substr(0, blob.size() - 8);
  std::mt19937 rng(9);
  int loaded = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = body;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      damaged[rng() % damaged.size()] = static_cast<char>(rng());
    }
    CategoryDemand target;
    const absl::Status s = target.LoadPart(0, WithChecksum(damaged));
    if (s.ok()) {
      ++loaded;
      std::string again;
      target.SavePart(0, &again);
      CategoryDemand check;
      EXPECT_TRUE(check.LoadPart(0, again).ok());
      (void)target.Categories(10);
      (void)target.Series("books", DemandPeriod::kHour, DemandMetric::kEvents);
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    }
  }
  RecordProperty("loaded", loaded);
}

TEST(CategoryDemandPartsTest, PartOfAnotherRingGeometryIsRejected) {
  CategoryDemandConfig small;
  small.hour_buckets = 24;
  CategoryDemand source(small);
  source.Add(At("a", kStart));
  std::string blob;
  source.SavePart(0, &blob);
  CategoryDemand target;
  EXPECT_EQ(target.LoadPart(0, blob).code(), absl::StatusCode::kDataLoss);
  CategoryDemandConfig narrow;
  narrow.day_bucket_ms = kHour * 12;
  CategoryDemand other(narrow);
  EXPECT_EQ(other.LoadPart(0, blob).code(), absl::StatusCode::kDataLoss);
  CategoryDemand same(small, 2);
  EXPECT_TRUE(same.LoadPart(1, blob).ok());
  EXPECT_EQ(same.LoadPart(2, blob).code(), absl::StatusCode::kInvalidArgument);
}

#if defined(PERSONA_BINARY)
struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunPersona(const std::string& args) {
  CommandResult r;
  FILE* pipe = popen((std::string(PERSONA_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `persona eval demand` end to end on a taobao-format file with a planted daily cycle (busy days,
// quiet nights, Poisson noise): the forecast has to beat the last-value baseline it is printed
// next to, and the command has to say so.
TEST(EvalDemandCommandTest, SeasonalDemandBeatsTheNaiveBaselineEndToEnd) {
  const auto input = std::filesystem::path(::testing::TempDir()) / "eval_demand_cycle.csv";
  {
    std::ofstream out(input);
    std::mt19937 rng(1);
    const int64_t start_s = kStart / 1000;
    for (int h = 0; h < 24 * 6; ++h) {
      const int hour = h % 24;
      for (int cat = 0; cat < 2; ++cat) {
        std::poisson_distribution<int> count(hour >= 9 && hour < 23 ? 30 - 10 * cat : 3);
        const int n = count(rng);
        for (int k = 0; k < n; ++k) {
          out << (k % 50) << ",item" << k << ",cat" << cat << ",pv," << start_s + h * 3600 + k
              << "\n";
        }
      }
    }
  }
  const CommandResult table =
      RunPersona("eval demand --input " + input.string() + " --format taobao --top 2 -q");
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("| holt_winters |"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("| seasonal naive |"), std::string::npos) << table.output;
  const CommandResult json =
      RunPersona("eval demand --input " + input.string() + " --format taobao --top 2 -q --json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find("\"categories\":2"), std::string::npos) << json.output;
  // 144 hours, the last one left out as possibly cut short, 48 to train: origins at hours 48, 72
  // and 96 in both categories.
  EXPECT_NE(json.output.find("\"origins\":6"), std::string::npos) << json.output;
  const size_t model = json.output.find("\"name\":\"holt_winters\"");
  const size_t naive = json.output.find("\"name\":\"naive (last value)\"");
  ASSERT_NE(model, std::string::npos);
  ASSERT_NE(naive, std::string::npos);
  auto mae_after = [&](size_t pos) {
    const size_t at = json.output.find("\"mae\":", pos) + 6;
    return std::stod(json.output.substr(at, 20));
  };
  EXPECT_LT(mae_after(model), 0.8 * mae_after(naive)) << json.output;
  std::filesystem::remove(input);
}

TEST(EvalDemandCommandTest, BadOptionsAreUsageErrors) {
  EXPECT_EQ(RunPersona("eval demand --input /nonexistent --format taobao --period week").exit_code,
            2);
  EXPECT_EQ(RunPersona("eval demand --input /nonexistent --format taobao --bucket 7x").exit_code,
            2);
  EXPECT_NE(RunPersona("eval demand --input /nonexistent --format taobao").exit_code, 0);
}
#endif

}  // namespace
}  // namespace persona
