#include "model/category_demand.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

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
