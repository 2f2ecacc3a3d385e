#include "eval/holt_winters.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

namespace persona {
namespace {

double Daily(int t) {
  return 20 + 8 * std::sin(2 * std::numbers::pi * t / 24) + (t % 24 == 9 ? 5 : 0);
}

TEST(HoltWintersTest, PureSeasonalSeriesIsForecastNearlyExactly) {
  std::vector<double> series;
  for (int t = 0; t < 24 * 4; ++t) series.push_back(Daily(t));
  const SmoothingForecast f = Forecast(series, 48, 24);
  EXPECT_TRUE(f.method == SmoothingMethod::kSeasonal || f.method == SmoothingMethod::kHoltWinters)
      << SmoothingMethodName(f.method);
  EXPECT_EQ(f.period, 24);
  ASSERT_EQ(f.points.size(), 48u);
  for (int h = 0; h < 48; ++h) {
    EXPECT_NEAR(f.points[h].mean, Daily(24 * 4 + h), 0.05) << "h=" << h + 1;
  }
}

TEST(HoltWintersTest, TwoSeasonsMakeTheForecastSeasonalEvenWhenNoisy) {
  std::mt19937 rng(9);
  std::poisson_distribution<int> noise(3);
  std::vector<double> series;
  for (int t = 0; t < 24 * 3; ++t) series.push_back(noise(rng) + (t % 24 < 12 ? 10 : 0));
  const SmoothingForecast f = Forecast(series, 24, 24);
  EXPECT_EQ(f.period, 24);
  double day = 0, night = 0;
  for (int h = 0; h < 24; ++h) (h < 12 ? day : night) += f.points[h].mean / 12;
  EXPECT_GT(day - night, 6);
}

TEST(HoltWintersTest, LinearTrendIsExtrapolated) {
  std::vector<double> series;
  for (int t = 0; t < 30; ++t) series.push_back(5 + 2.0 * t);
  const SmoothingForecast f = Forecast(series, 10, 24);  // too short for a season of 24
  EXPECT_EQ(f.method, SmoothingMethod::kHolt);
  EXPECT_EQ(f.period, 0);
  for (int h = 1; h <= 10; ++h) EXPECT_NEAR(f.points[h - 1].mean, 5 + 2.0 * (29 + h), 1e-6);
}

TEST(HoltWintersTest, TrendAndSeasonTogetherPickHoltWinters) {
  std::vector<double> series;
  for (int t = 0; t < 24 * 5; ++t) series.push_back(Daily(t) + 0.5 * t);
  const SmoothingForecast f = Forecast(series, 24, 24);
  EXPECT_EQ(f.method, SmoothingMethod::kHoltWinters);
  for (int h = 1; h <= 24; ++h) {
    const int t = 24 * 5 + h - 1;
    EXPECT_NEAR(f.points[h - 1].mean, Daily(t) + 0.5 * t, 0.5) << "h=" << h;
  }
}

TEST(HoltWintersTest, IntervalsWidenWithTheHorizonAndHoldTheMean) {
  std::mt19937 rng(7);
  std::poisson_distribution<int> noise(30);
  std::vector<double> series;
  for (int t = 0; t < 24 * 6; ++t) series.push_back(noise(rng) + 10 * std::sin(t * 0.2618));
  const SmoothingForecast f = Forecast(series, 48, 24);
  ASSERT_EQ(f.points.size(), 48u);
  EXPECT_GT(f.sigma, 1.0);
  for (size_t h = 0; h < f.points.size(); ++h) {
    EXPECT_LE(f.points[h].lo, f.points[h].mean);
    EXPECT_GE(f.points[h].hi, f.points[h].mean);
    if (h > 0) {
      EXPECT_GE(f.points[h].hi - f.points[h].lo, f.points[h - 1].hi - f.points[h - 1].lo - 1e-9);
    }
  }
  EXPECT_GT(f.points[47].hi - f.points[47].lo, 1.05 * (f.points[0].hi - f.points[0].lo));
}

TEST(HoltWintersTest, ForecastsOfAFallingSeriesAreClampedAtZero) {
  std::vector<double> series;
  for (int t = 0; t < 20; ++t) series.push_back(40 - 2.0 * t);
  const SmoothingForecast f = Forecast(series, 30, 0);
  for (const ForecastPoint& p : f.points) {
    EXPECT_GE(p.mean, 0);
    EXPECT_GE(p.lo, 0);
    EXPECT_GE(p.hi, p.mean);
  }
  EXPECT_EQ(f.points.back().mean, 0);
}

TEST(HoltWintersTest, ConstantSeriesIsSimpleWithANarrowInterval) {
  const std::vector<double> series(50, 7.0);
  const SmoothingForecast f = Forecast(series, 5, 0);
  EXPECT_EQ(f.method, SmoothingMethod::kSimple);
  for (const ForecastPoint& p : f.points) {
    EXPECT_NEAR(p.mean, 7.0, 1e-9);
    EXPECT_NEAR(p.hi - p.lo, 0, 1e-6);
  }
}

TEST(HoltWintersTest, TinySeriesForecastTheLastValueWithAPoissonInterval) {
  EXPECT_EQ(Forecast(std::vector<double>{}, 3, 24).points.size(), 3u);
  EXPECT_EQ(Forecast(std::vector<double>{}, 3, 24).points[0].mean, 0);
  const SmoothingForecast f = Forecast(std::vector<double>{4, 9}, 2, 24);
  EXPECT_EQ(f.points[1].mean, 9);
  EXPECT_GT(f.points[1].hi, 9);
}

TEST(HoltWintersTest, GridSearchFindsParametersNoWorseThanAnyCoarsePoint) {
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 2);
  std::vector<double> series;
  double level = 50;
  for (int t = 0; t < 80; ++t) {
    level += noise(rng) * 0.5;
    series.push_back(level + noise(rng));
  }
  const SmoothingForecast f = Forecast(series, 1, 0);
  const double fitted = OneStepSse(series, f.method, f.alpha, f.beta, f.gamma, 0);
  EXPECT_NEAR(fitted, f.sse, 1e-6);
  // Whatever won, its own grid beat every coarse point of its own method.
  for (int i = 1; i <= 10; ++i) {
    for (int j = 0; j <= 10; ++j) {
      EXPECT_LE(f.sse, OneStepSse(series, f.method, i / 10.0, j / 10.0, 0, 0) + 1e-9);
    }
  }
}

}  // namespace
}  // namespace persona
