// Metrics in the Prometheus text exposition format (version 0.0.4). Series are registered once at
// startup and kept by reference; the hot path is one or two relaxed atomic adds (no lock, no map
// lookup). Values known only at scrape time (queue depths, profiles held, memory) come from
// collectors called by Render.
//
//   MetricsRegistry m;
//   Counter& ok = m.AddCounter("persona_events_total", "Events by type and outcome",
//                              {{"type", "view"}, {"outcome", "accepted"}});
//   ok.Add(3);
//   Histogram& h = m.AddHistogram("persona_http_request_duration_seconds", "...",
//                                 Histogram::LatencyBounds(), {{"route", "/healthz"}});
//   h.Observe(0.00042);
//   std::string text = m.Render();
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace persona::serve {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Cumulative histogram with fixed upper bounds (the +Inf bucket is implicit).
class Histogram {
 public:
  explicit Histogram(std::span<const double> upper_bounds);
  void Observe(double v);
  // 25 us .. 10 s, roughly x2 steps: request latencies from a cache hit to a stuck client.
  static std::span<const double> LatencyBounds();
  std::span<const double> bounds() const { return bounds_; }
  // Non-cumulative count of bucket i (i == bounds().size() is +Inf).
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Writes series during a scrape (collectors). Samples of one name must be written together and
// each name's HELP/TYPE is written before its first sample.
class MetricsWriter {
 public:
  explicit MetricsWriter(std::string* out) : out_(out) {}
  void Counter(std::string_view name, std::string_view help, const MetricLabels& labels,
               double value);
  void Gauge(std::string_view name, std::string_view help, const MetricLabels& labels,
             double value);

 private:
  void Sample(std::string_view name, std::string_view help, std::string_view type,
              const MetricLabels& labels, double value);
  std::string* out_;
  std::string last_name_;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();  // out of line: Family is defined in metrics.cc
  // Registration is thread-safe but meant for startup. Registering the same name with a
  // different type or help aborts (a programming error); the same name + labels twice returns
  // the existing series. Returned references live as long as the registry.
  Counter& AddCounter(std::string_view name, std::string_view help, MetricLabels labels = {});
  Gauge& AddGauge(std::string_view name, std::string_view help, MetricLabels labels = {});
  Histogram& AddHistogram(std::string_view name, std::string_view help,
                          std::span<const double> upper_bounds, MetricLabels labels = {});
  void AddCollector(std::function<void(MetricsWriter&)> collector);

  // The whole exposition: registered families in registration order (series of a family
  // together), then the collectors' output. Label values are escaped (\\, \", \n).
  std::string Render() const;

 private:
  struct Family;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::function<void(MetricsWriter&)>> collectors_;
};

}  // namespace persona::serve
