#include "serve/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "serve/testing/prometheus_text.h"

namespace persona::serve {
namespace {

TEST(MetricsRegistryTest, CounterWithLabelsRendersHelpTypeAndSample) {
  MetricsRegistry m;
  Counter& views = m.AddCounter("persona_events_total", "Events by type and outcome",
                                {{"type", "view"}, {"outcome", "accepted"}});
  views.Add(3);
  views.Add();
  EXPECT_EQ(m.Render(),
            "# HELP persona_events_total Events by type and outcome\n"
            "# TYPE persona_events_total counter\n"
            "persona_events_total{type=\"view\",outcome=\"accepted\"} 4\n");
}

TEST(MetricsRegistryTest, GaugeWithoutLabelsAndFractionalValues) {
  MetricsRegistry m;
  Gauge& g = m.AddGauge("persona_lag_seconds", "Lag");
  g.Set(1.5);
  g.Add(-0.25);
  EXPECT_EQ(m.Render(),
            "# HELP persona_lag_seconds Lag\n"
            "# TYPE persona_lag_seconds gauge\n"
            "persona_lag_seconds 1.25\n");
}

TEST(MetricsRegistryTest, DoublesAreSpelledTheWayPrometheusParsesThem) {
  MetricsRegistry m;
  m.AddGauge("g", "h", {{"v", "big"}}).Set(1e6);
  m.AddGauge("g", "h", {{"v", "tiny"}}).Set(0.1);
  m.AddGauge("g", "h", {{"v", "neg"}}).Set(-3);
  m.AddGauge("g", "h", {{"v", "inf"}}).Set(std::numeric_limits<double>::infinity());
  m.AddGauge("g", "h", {{"v", "ninf"}}).Set(-std::numeric_limits<double>::infinity());
  m.AddGauge("g", "h", {{"v", "nan"}}).Set(std::nan(""));
  m.AddGauge("g", "h", {{"v", "huge"}}).Set(1e300);
  m.AddGauge("g", "h", {{"v", "small"}}).Set(0.0005);
  m.AddGauge("g", "h", {{"v", "smaller"}}).Set(1.5e-7);
  m.AddGauge("g", "h", {{"v", "mixed"}}).Set(123.456);
  EXPECT_EQ(m.Render(),
            "# HELP g h\n# TYPE g gauge\n"
            "g{v=\"big\"} 1000000\n"
            "g{v=\"tiny\"} 0.1\n"
            "g{v=\"neg\"} -3\n"
            "g{v=\"inf\"} +Inf\n"
            "g{v=\"ninf\"} -Inf\n"
            "g{v=\"nan\"} NaN\n"
            "g{v=\"huge\"} 1e+300\n"
            "g{v=\"small\"} 0.0005\n"
            "g{v=\"smaller\"} 1.5e-07\n"
            "g{v=\"mixed\"} 123.456\n");
}

TEST(HistogramTest, BucketsAreCumulativeAndBoundsInclusive) {
  MetricsRegistry m;
  const double bounds[] = {0.001, 0.01, 0.1};
  Histogram& h = m.AddHistogram("lat_seconds", "Latency", bounds, {{"route", "/healthz"}});
  h.Observe(0.001);   // == first bound: le is inclusive
  h.Observe(0.0005);  // below the first bound
  h.Observe(0.01);    // == second bound
  h.Observe(0.05);
  h.Observe(7);  // +Inf
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.bucket(1), 1u);
  EXPECT_EQ(h.bucket(2), 1u);
  EXPECT_EQ(h.bucket(3), 1u);
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 7.0615);
  std::string text = m.Render();
  const std::string sum_line = "lat_seconds_sum{route=\"/healthz\"} ";
  size_t sum_at = text.find(sum_line);
  ASSERT_NE(sum_at, std::string::npos) << text;
  EXPECT_EQ(text.substr(0, sum_at),
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 2\n"
            "lat_seconds_bucket{route=\"/healthz\",le=\"0.01\"} 3\n"
            "lat_seconds_bucket{route=\"/healthz\",le=\"0.1\"} 4\n"
            "lat_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 5\n");
  EXPECT_EQ(text.substr(text.find('\n', sum_at) + 1), "lat_seconds_count{route=\"/healthz\"} 5\n");
  EXPECT_NEAR(*PrometheusSample(text, "lat_seconds_sum", {{"route", "/healthz"}}), 7.0615, 1e-12);
  EXPECT_TRUE(CheckPrometheusText(text).ok()) << CheckPrometheusText(text);
}

TEST(HistogramTest, LatencyBoundsSpan25MicrosecondsTo10Seconds) {
  std::span<const double> b = Histogram::LatencyBounds();
  ASSERT_EQ(b.size(), 18u);
  EXPECT_DOUBLE_EQ(b.front(), 25e-6);
  EXPECT_DOUBLE_EQ(b[5], 0.001);
  EXPECT_DOUBLE_EQ(b.back(), 10.0);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));

  MetricsRegistry m;
  m.AddHistogram("h_seconds", "h", b).Observe(0.00042);
  std::string text = m.Render();
  EXPECT_NE(text.find("h_seconds_bucket{le=\"2.5e-05\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"2.5\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{le=\"10\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_count 1\n"), std::string::npos) << text;
  EXPECT_TRUE(CheckPrometheusText(text).ok()) << CheckPrometheusText(text);
}

TEST(HistogramTest, NaNObservationLandsInInfBucket) {
  const double bounds[] = {1};
  Histogram h(bounds);
  h.Observe(std::nan(""));
  EXPECT_EQ(h.bucket(0), 0u);
  EXPECT_EQ(h.bucket(1), 1u);
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry m;
  m.AddCounter("c_total", "line1\nback\\slash \"quoted\"", {{"path", "a\\b\"c\nd"}}).Add();
  std::string text = m.Render();
  EXPECT_EQ(text,
            "# HELP c_total line1\\nback\\\\slash \"quoted\"\n"
            "# TYPE c_total counter\n"
            "c_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
  EXPECT_TRUE(CheckPrometheusText(text).ok()) << CheckPrometheusText(text);
  // The checker's parser undoes the escaping.
  EXPECT_EQ(PrometheusSample(text, "c_total", {{"path", "a\\b\"c\nd"}}), 1.0);
}

TEST(MetricsRegistryTest, SeriesOfOneFamilyAreGroupedWhenRegisteredInterleaved) {
  MetricsRegistry m;
  m.AddCounter("a_total", "A", {{"k", "1"}}).Add(1);
  m.AddGauge("b", "B").Set(2);
  m.AddCounter("a_total", "A", {{"k", "2"}}).Add(3);
  m.AddGauge("b", "B", {{"x", "y"}}).Set(4);
  EXPECT_EQ(m.Render(),
            "# HELP a_total A\n# TYPE a_total counter\n"
            "a_total{k=\"1\"} 1\n"
            "a_total{k=\"2\"} 3\n"
            "# HELP b B\n# TYPE b gauge\n"
            "b 2\n"
            "b{x=\"y\"} 4\n");
}

TEST(MetricsRegistryTest, SameNameAndLabelsReturnsTheSameSeries) {
  MetricsRegistry m;
  Counter& a = m.AddCounter("x_total", "X", {{"k", "v"}});
  Counter& b = m.AddCounter("x_total", "X", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  const double bounds[] = {1, 2};
  EXPECT_EQ(&m.AddHistogram("h", "H", bounds), &m.AddHistogram("h", "H", bounds));
}

TEST(MetricsRegistryTest, CollectorOutputFollowsRegisteredFamilies) {
  MetricsRegistry m;
  m.AddCounter("requests_total", "Requests").Add(2);
  m.AddCollector([](MetricsWriter& w) {
    w.Gauge("persona_partition_queue_events", "Queued events", {{"partition", "0"}}, 5);
    w.Gauge("persona_partition_queue_events", "Queued events", {{"partition", "1"}}, 0);
    w.Counter("persona_dead_letters", "Dead letters", {}, 7);
  });
  m.AddCollector([](MetricsWriter& w) { w.Gauge("persona_memory_bytes", "Memory", {}, 1.5e9); });
  std::string text = m.Render();
  EXPECT_EQ(text,
            "# HELP requests_total Requests\n# TYPE requests_total counter\n"
            "requests_total 2\n"
            "# HELP persona_partition_queue_events Queued events\n"
            "# TYPE persona_partition_queue_events gauge\n"
            "persona_partition_queue_events{partition=\"0\"} 5\n"
            "persona_partition_queue_events{partition=\"1\"} 0\n"
            "# HELP persona_dead_letters Dead letters\n"
            "# TYPE persona_dead_letters counter\n"
            "persona_dead_letters 7\n"
            "# HELP persona_memory_bytes Memory\n"
            "# TYPE persona_memory_bytes gauge\n"
            "persona_memory_bytes 1500000000\n");
  EXPECT_TRUE(CheckPrometheusText(text).ok()) << CheckPrometheusText(text);
}

TEST(MetricsRegistryTest, ConcurrentAddAndObserveFromFourThreadsSumExactly) {
  MetricsRegistry m;
  Counter& c = m.AddCounter("c_total", "C");
  Gauge& g = m.AddGauge("g", "G");
  const double bounds[] = {0.5, 1.5};
  Histogram& h = m.AddHistogram("h", "H", bounds);
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        c.Add(2);
        g.Add(1);
        h.Observe(t % 2 == 0 ? 1.0 : 2.0);  // exact in binary, so the sum is exact too
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.value(), uint64_t{2} * kThreads * kIterations);
  EXPECT_EQ(g.value(), double{kThreads} * kIterations);
  EXPECT_EQ(h.count(), uint64_t{kThreads} * kIterations);
  EXPECT_EQ(h.bucket(0), 0u);
  EXPECT_EQ(h.bucket(1), uint64_t{kThreads / 2} * kIterations);
  EXPECT_EQ(h.bucket(2), uint64_t{kThreads / 2} * kIterations);
  EXPECT_EQ(h.sum(), 1.5 * kThreads * kIterations);
}

TEST(MetricsRegistryTest, RenderWhileObservingStaysConsistent) {
  MetricsRegistry m;
  Histogram& h = m.AddHistogram("busy_seconds", "B", Histogram::LatencyBounds());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) h.Observe((i % 100) * 1e-4);
  });
  for (int i = 0; i < 50; ++i) {
    std::string text = m.Render();
    ASSERT_TRUE(CheckPrometheusText(text).ok()) << CheckPrometheusText(text) << "\n" << text;
  }
  stop = true;
  writer.join();
}

TEST(MetricsRegistryTest, RenderedTextPassesTheChecker) {
  MetricsRegistry m;
  m.AddCounter("persona_http_requests_total", "HTTP requests",
               {{"route", "/v1/users/{id}/profile"}, {"status", "200"}})
      .Add(9);
  m.AddHistogram("persona_http_request_duration_seconds", "Latency", Histogram::LatencyBounds(),
                 {{"route", "/v1/events"}})
      .Observe(0.003);
  m.AddHistogram("persona_http_request_duration_seconds", "Latency", Histogram::LatencyBounds(),
                 {{"route", "/healthz"}});
  m.AddGauge("persona_http_connections", "Open connections").Set(3);
  m.AddCollector([](MetricsWriter& w) { w.Gauge("persona_profiles", "Profiles", {}, 42); });
  std::string text = m.Render();
  ASSERT_TRUE(CheckPrometheusText(text).ok()) << CheckPrometheusText(text) << "\n" << text;
  EXPECT_EQ(PrometheusSample(text, "persona_http_requests_total",
                             {{"status", "200"}, {"route", "/v1/users/{id}/profile"}}),
            9.0);
  EXPECT_EQ(PrometheusSample(text, "persona_http_request_duration_seconds_bucket",
                             {{"route", "/v1/events"}, {"le", "0.005"}}),
            1.0);
  EXPECT_EQ(PrometheusSample(text, "persona_http_request_duration_seconds_bucket",
                             {{"route", "/v1/events"}, {"le", "0.0025"}}),
            0.0);
  EXPECT_EQ(PrometheusSample(text, "persona_profiles", {}), 42.0);
  EXPECT_EQ(PrometheusSample(text, "persona_profiles", {{"x", "y"}}), std::nullopt);
  EXPECT_EQ(PrometheusSample(text, "persona_http_connections", {}), 3.0);
  EXPECT_EQ(PrometheusSample(text, "persona_http", {}), std::nullopt);
}

// The checker must be able to fail, or the integration tests that rely on it prove nothing.
TEST(PrometheusTextTest, CheckerRejectsBrokenExpositions) {
  auto rejects = [](std::string_view text) { return !CheckPrometheusText(text).ok(); };
  EXPECT_FALSE(rejects(""));
  EXPECT_FALSE(rejects("# a comment\n# TYPE a gauge\na 1\na{x=\"1\",} 2 1700000000000\n"));
  EXPECT_TRUE(rejects("# TYPE a gauge\na 1"));                     // no final line feed
  EXPECT_TRUE(rejects("a 1\n"));                                   // no TYPE
  EXPECT_TRUE(rejects("a 1\n# TYPE a gauge\n"));                   // TYPE after samples
  EXPECT_TRUE(rejects("# TYPE a gauge\n# TYPE a gauge\na 1\n"));   // TYPE twice
  EXPECT_TRUE(rejects("# TYPE a wibble\na 1\n"));                  // unknown type
  EXPECT_TRUE(rejects("# TYPE a gauge\na one\n"));                 // bad value
  EXPECT_TRUE(rejects("# TYPE a gauge\na{x=\"1\"}1\n"));           // no space before value
  EXPECT_TRUE(rejects("# TYPE a gauge\na{x=\"1} 1\n"));            // unterminated value
  EXPECT_TRUE(rejects("# TYPE a gauge\na{x=\"\\t\"} 1\n"));        // invalid escape
  EXPECT_TRUE(rejects("# TYPE a gauge\na{1x=\"1\"} 1\n"));         // bad label name
  EXPECT_TRUE(rejects("# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n"));  // label twice
  EXPECT_TRUE(rejects("# TYPE a gauge\na 1\na 2\n"));              // duplicate series
  EXPECT_TRUE(rejects("# TYPE a counter\na -1\n"));                // negative counter
  EXPECT_TRUE(rejects("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 1\n"));  // split
  EXPECT_TRUE(
      rejects("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
              "h_sum 1\nh_count 1\n"));  // not cumulative
  EXPECT_TRUE(rejects("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"));  // +Inf
  EXPECT_TRUE(rejects("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"));
  EXPECT_TRUE(rejects("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n"));  // no _sum
  EXPECT_TRUE(rejects("# TYPE h histogram\nh 1\n"));                                 // no suffix
}

TEST(MetricsRegistryDeathTest, InvalidNamesAndConflictingRegistrationsAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(MetricsRegistry().AddCounter("9lives", "x"), "invalid metric name");
  EXPECT_DEATH(MetricsRegistry().AddCounter("a-b", "x"), "invalid metric name");
  EXPECT_DEATH(MetricsRegistry().AddGauge("ok", "x", {{"bad-label", "v"}}), "invalid label name");
  EXPECT_DEATH(MetricsRegistry().AddGauge("ok", "x", {{"a:b", "v"}}), "invalid label name");
  EXPECT_DEATH(MetricsRegistry().AddGauge("ok", "x", {{"k", "1"}, {"k", "2"}}), "twice");
  const double bounds[] = {1};
  EXPECT_DEATH(MetricsRegistry().AddHistogram("h", "x", bounds, {{"le", "1"}}), "reserve");
  const double unsorted[] = {2, 1};
  EXPECT_DEATH(Histogram{unsorted}, "strictly increasing");
  EXPECT_DEATH(
      {
        MetricsRegistry m;
        m.AddCounter("dup", "x");
        m.AddGauge("dup", "x");
      },
      "different types");
  EXPECT_DEATH(
      {
        MetricsRegistry m;
        m.AddCounter("dup", "x");
        m.AddCounter("dup", "y", {{"k", "v"}});
      },
      "different help");
  EXPECT_DEATH(
      {
        MetricsRegistry m;
        m.AddCollector([](MetricsWriter& w) { w.Gauge("bad name", "x", {}, 1); });
        m.Render();
      },
      "invalid metric name");
}

}  // namespace
}  // namespace persona::serve
