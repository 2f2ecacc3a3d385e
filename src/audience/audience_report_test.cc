// Audience reports: exact without epsilon; with it, Laplace noise whose mean is 0 and whose scale
// is sensitivity / (epsilon / statistics), reproducible with a seed, counts rounded and clamped.
#include "audience/audience_report.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace persona {
namespace {

AudienceAggregates BigAudience() {
  AudienceAggregates a;
  a.size = 1'000'000;
  a.spend = 9e8;
  a.spend_clipped = 4e8;
  a.orders = 3e6;
  a.orders_clipped = 2.5e6;
  a.lifecycle = {100'000, 500'000, 300'000, 100'000};
  a.price_tiers = {200'000, 300'000, 100'000, 400'000};
  a.segments = {{-1, 10'000}, {0, 600'000}, {1, 390'000}};
  a.categories = {{"c1.s1", {700'000, 350'000}}, {"c2", {250'000, 50'000}}, {"rare", {1, 1}}};
  return a;
}

TEST(AudienceReportTest, WithoutEpsilonEveryValueIsExact) {
  const AudienceAggregates a = BigAudience();
  ReportOptions options;
  options.top_categories = 2;
  const AudienceReport r = MakeAudienceReport(a, options);
  EXPECT_FALSE(r.noisy);
  EXPECT_EQ(r.size, a.size);
  EXPECT_EQ(r.spend_sum, a.spend);  // unclipped
  EXPECT_EQ(r.spend_mean, 900);
  EXPECT_EQ(r.orders_sum, a.orders);
  ASSERT_EQ(r.lifecycle.size(), 4u);
  EXPECT_EQ(r.lifecycle[2].name, "dormant");
  EXPECT_EQ(r.lifecycle[2].users, 300'000u);
  ASSERT_EQ(r.segments.size(), 3u);
  EXPECT_EQ(r.segments[0].segment, -1);
  EXPECT_EQ(r.segments[2].users, 390'000u);
  EXPECT_EQ(r.price_tiers[3].name, "none");
  ASSERT_EQ(r.top_categories.size(), 2u);  // the two largest of three
  EXPECT_EQ(r.top_categories[0].category, "c1.s1");
  EXPECT_EQ(r.top_categories[0].mean_share, 0.5);
  EXPECT_EQ(r.top_categories[1].category, "c2");

  JsonWriter w;
  r.WriteJson(w);
  EXPECT_NE(w.str().find(R"("privacy":{"noisy":false})"), std::string::npos) << w.str();
  EXPECT_NE(w.str().find(R"("lifecycle":{"new":100000,"active":500000,"dormant":300000,)"),
            std::string::npos)
      << w.str();

  const AudienceReport empty = MakeAudienceReport(AudienceAggregates(), options);
  EXPECT_EQ(empty.size, 0u);
  EXPECT_TRUE(std::isnan(empty.spend_mean));
}

TEST(AudienceReportTest, AFixedSeedAppliesReproducibleNoise) {
  const AudienceAggregates a = BigAudience();
  ReportOptions options;
  options.epsilon = 0.5;
  options.seed = 99;
  const AudienceReport r1 = MakeAudienceReport(a, options);
  const AudienceReport r2 = MakeAudienceReport(a, options);
  EXPECT_TRUE(r1.noisy);
  EXPECT_EQ(r1.epsilon_per_statistic, 0.5 / AudienceReport::kReleasedStatistics);
  EXPECT_NE(r1.size, a.size);
  EXPECT_NE(r1.spend_sum, a.spend_clipped);
  EXPECT_EQ(r1.size, r2.size);
  EXPECT_EQ(r1.spend_sum, r2.spend_sum);
  EXPECT_EQ(r1.lifecycle[1].users, r2.lifecycle[1].users);
  // Noise is on the clipped sum: nowhere near the unclipped 9e8 at this scale (16000).
  EXPECT_LT(std::fabs(r1.spend_sum - a.spend_clipped), 400'000);
  // A category held by one user does not clear the release threshold.
  for (const auto& c : r1.top_categories) EXPECT_NE(c.category, "rare");
  options.seed = 100;
  EXPECT_NE(MakeAudienceReport(a, options).spend_sum, r1.spend_sum);

  JsonWriter w;
  r1.WriteJson(w);
  EXPECT_NE(w.str().find(R"("privacy":{"noisy":true,"mechanism":"laplace","epsilon":0.5,)"
                         R"("epsilon_per_statistic":0.0625,"statistics":8,)"
                         R"("clip":{"spend":1000,"orders":20}})"),
            std::string::npos)
      << w.str();
}

// Over many seeds, the noise of each statistic has mean ~0 and mean absolute value ~ its
// Laplace scale b = sensitivity / (epsilon / 8) (E|X| = b for Laplace). A budget that was not
// split, or a sensitivity off by a clip factor, moves E|X| by a factor of 8 or more.
TEST(AudienceReportTest, NoiseMeanIsZeroAndScaleIsSensitivityOverEpsilonPerStatistic) {
  const AudienceAggregates a = BigAudience();
  ReportOptions options;
  options.epsilon = 2.0;
  const double per_statistic = 2.0 / AudienceReport::kReleasedStatistics;
  const double spend_scale = options.spend_clip / per_statistic;    // 4000
  const double orders_scale = options.orders_clip / per_statistic;  // 80
  const double count_scale = 1 / per_statistic;                     // 4
  constexpr int kRuns = 4000;
  double spend_sum = 0, spend_abs = 0, orders_abs = 0, size_sum = 0, size_abs = 0;
  double dormant_abs = 0;
  for (int seed = 1; seed <= kRuns; ++seed) {
    options.seed = seed;
    const AudienceReport r = MakeAudienceReport(a, options);
    const double spend_noise = r.spend_sum - a.spend_clipped;
    spend_sum += spend_noise;
    spend_abs += std::fabs(spend_noise);
    orders_abs += std::fabs(r.orders_sum - a.orders_clipped);
    const double size_noise = static_cast<double>(r.size) - static_cast<double>(a.size);
    size_sum += size_noise;
    size_abs += std::fabs(size_noise);
    dormant_abs += std::fabs(static_cast<double>(r.lifecycle[2].users) - 300'000.0);
  }
  // Standard error of the mean of Laplace(b) is b * sqrt(2 / n) ~ 0.022 b; allow ~4.5 of them.
  EXPECT_NEAR(spend_sum / kRuns, 0, 0.1 * spend_scale);
  EXPECT_NEAR(size_sum / kRuns, 0, 0.1 * count_scale);
  // The standard error of mean |X| is b / sqrt(n) ~ 0.016 b; allow ~6 of them. Rounding the
  // counts to integers changes E|X| by well under 0.05 for b = 4.
  EXPECT_NEAR(spend_abs / kRuns, spend_scale, 0.1 * spend_scale);
  EXPECT_NEAR(orders_abs / kRuns, orders_scale, 0.1 * orders_scale);
  EXPECT_NEAR(size_abs / kRuns, count_scale, 0.1 * count_scale);
  EXPECT_NEAR(dormant_abs / kRuns, count_scale, 0.1 * count_scale);
}

TEST(AudienceReportTest, NoisyCountsAreRoundedAndNeverNegative) {
  AudienceAggregates tiny;
  tiny.size = 1;
  tiny.lifecycle = {1, 0, 0, 0};
  ReportOptions options;
  options.epsilon = 0.1;  // scale 80: most draws would go negative
  int zeros = 0;
  for (int seed = 1; seed <= 200; ++seed) {
    options.seed = seed;
    const AudienceReport r = MakeAudienceReport(tiny, options);
    EXPECT_GE(r.spend_sum, 0);
    EXPECT_GE(r.orders_sum, 0);
    if (r.size == 0) ++zeros;
    for (const auto& b : r.lifecycle) EXPECT_EQ(std::floor(static_cast<double>(b.users)), b.users);
  }
  EXPECT_GT(zeros, 50);  // clamped, not wrapped around to huge unsigned values
}

TEST(AudienceReportTest, LaplaceInverseCdfIsSymmetricAroundZero) {
  EXPECT_EQ(LaplaceNoise(3, 0.5), 0);
  EXPECT_NEAR(LaplaceNoise(3, 0.75), 3 * std::log(2), 1e-12);
  EXPECT_NEAR(LaplaceNoise(3, 0.25), -3 * std::log(2), 1e-12);
  EXPECT_TRUE(std::isfinite(LaplaceNoise(1, 1e-300)));
  EXPECT_TRUE(std::isfinite(LaplaceNoise(1, 1.0)));
  EXPECT_TRUE(std::isfinite(LaplaceNoise(1, 0.0)));
}

TEST(AudienceReportTest, AggregatesMergeLikeOneScan) {
  AudienceAggregates a = BigAudience(), b = BigAudience();
  a.Merge(b);
  EXPECT_EQ(a.size, 2'000'000u);
  EXPECT_EQ(a.segments.at(1), 780'000u);
  EXPECT_EQ(a.categories.at("c2").users, 500'000u);
  EXPECT_EQ(a.categories.at("c2").share_sum, 100'000);
}

// What a cluster's instances send each other: the JSON gives back the same sums, bit for bit, so
// the combined report is the one a single instance would make.
TEST(AudienceReportTest, AggregatesSurviveTheirJsonExactly) {
  AudienceAggregates a = BigAudience();
  a.spend = 1234.5678901234567;
  a.categories["with \"quotes\" and 蓝牙"] = {3, 0.1 + 0.2};
  JsonWriter w;
  WriteAggregatesJson(w, a);
  absl::StatusOr<AudienceAggregates> back = ParseAggregatesJson(w.str());
  ASSERT_TRUE(back.ok()) << back.status();
  JsonWriter again;
  WriteAggregatesJson(again, *back);
  EXPECT_EQ(again.str(), w.str());
  EXPECT_EQ(back->spend, a.spend);
  EXPECT_EQ(back->categories.at("with \"quotes\" and 蓝牙").share_sum, 0.1 + 0.2);
  ReportOptions options;
  JsonWriter r1, r2;
  MakeAudienceReport(a, options).WriteJson(r1);
  MakeAudienceReport(*back, options).WriteJson(r2);
  EXPECT_EQ(r1.str(), r2.str());
  for (const char* bad : {"", "[]", R"({"size":1})", R"({"size":-1})"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseAggregatesJson(bad).status())) << bad;
  }
}

}  // namespace
}  // namespace persona
