#include "serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace persona::serve {
namespace {

// Registration mistakes (a bad name, one name with two types) are programming errors that would
// make every scrape unparseable, so they stop the process in every build type, not only under
// assert().
[[noreturn]] void DieBadMetric(std::string_view what, std::string_view name) {
  std::fprintf(stderr, "metrics: %.*s: \"%.*s\"\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty() || !IsNameStart(name[0], allow_colon)) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return IsNameStart(c, allow_colon) || (c >= '0' && c <= '9'); });
}

void CheckMetricName(std::string_view name) {
  if (!IsValidName(name, /*allow_colon=*/true)) {
    DieBadMetric("invalid metric name (want [a-zA-Z_:][a-zA-Z0-9_:]*)", name);
  }
}

// Label names may not contain ':' (reserved for recording rules) and "__" prefixes are reserved
// for Prometheus itself.
void CheckLabels(const MetricLabels& labels, bool histogram) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& label = labels[i].first;
    if (!IsValidName(label, /*allow_colon=*/false) || label.starts_with("__")) {
      DieBadMetric("invalid label name (want [a-zA-Z_][a-zA-Z0-9_]*, no \"__\" prefix)", label);
    }
    if (histogram && label == "le") DieBadMetric("histograms reserve the label", label);
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].first == label) DieBadMetric("label name used twice in one series", label);
    }
  }
}

void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[32];
  std::to_chars_result r;
  // Integral values (counts, bytes) read best without an exponent: "1000000", not "1e+06".
  if (v == std::trunc(v) && std::fabs(v) < 9.0e15) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  } else {
    // Shortest round-trip digits in %g style: "0.0005" and "2.5e-05", like the Go client.
    r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  }
  out.append(buf, r.ptr);
}

void AppendEscaped(std::string& out, std::string_view s, bool escape_quote) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '"':
        if (escape_quote) {
          out.append("\\\"");
        } else {
          out.push_back(c);
        }
        break;
      default:
        out.push_back(c);
    }
  }
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help,
                  std::string_view type) {
  out.append("# HELP ").append(name).push_back(' ');
  AppendEscaped(out, help, /*escape_quote=*/false);
  out.append("\n# TYPE ").append(name).push_back(' ');
  out.append(type).push_back('\n');
}

// `name{a="x",b="y",le="0.5"} ` (braces omitted when there are no labels). `le` is the extra
// histogram bucket label, written last as the Go client does.
void AppendSeriesName(std::string& out, std::string_view name, std::string_view suffix,
                      const MetricLabels& labels, const std::string* le = nullptr) {
  out.append(name).append(suffix);
  if (!labels.empty() || le != nullptr) {
    out.push_back('{');
    bool first = true;
    for (const auto& [label, value] : labels) {
      if (!first) out.push_back(',');
      first = false;
      out.append(label).append("=\"");
      AppendEscaped(out, value, /*escape_quote=*/true);
      out.push_back('"');
    }
    if (le != nullptr) {
      if (!first) out.push_back(',');
      out.append("le=\"").append(*le).push_back('"');
    }
    out.push_back('}');
  }
  out.push_back(' ');
}

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const MetricLabels& labels, double value) {
  AppendSeriesName(out, name, suffix, labels);
  AppendDouble(out, value);
  out.push_back('\n');
}

void AppendCountSample(std::string& out, std::string_view name, std::string_view suffix,
                       const MetricLabels& labels, const std::string* le, uint64_t value) {
  AppendSeriesName(out, name, suffix, labels, le);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr).push_back('\n');
}

enum class MetricType { kCounter, kGauge, kHistogram };

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

// ---- Histogram ------------------------------------------------------------------------------

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds.size() + 1)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      DieBadMetric("histogram bounds must be finite and strictly increasing (+Inf is implicit)",
                   "bounds");
    }
  }
}

void Histogram::Observe(double v) {
  // First bound >= v: bounds are inclusive upper limits (`le`). NaN lands in +Inf, as in the Go
  // client.
  size_t i = std::isnan(v)
                 ? bounds_.size()
                 : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                       bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::span<const double> Histogram::LatencyBounds() {
  static constexpr double kBounds[] = {0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                       0.0025,   0.005,   0.01,   0.025,   0.05,   0.1,
                                       0.25,     0.5,     1,      2.5,     5,      10};
  return kBounds;
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) total += bucket(i);
  return total;
}

// ---- MetricsWriter --------------------------------------------------------------------------

void MetricsWriter::Counter(std::string_view name, std::string_view help,
                            const MetricLabels& labels, double value) {
  Sample(name, help, "counter", labels, value);
}

void MetricsWriter::Gauge(std::string_view name, std::string_view help, const MetricLabels& labels,
                          double value) {
  Sample(name, help, "gauge", labels, value);
}

void MetricsWriter::Sample(std::string_view name, std::string_view help, std::string_view type,
                           const MetricLabels& labels, double value) {
  if (name != last_name_) {
    // Collectors' names are code constants like registered ones; a bad one would make the whole
    // scrape unparseable, so it is caught the same way (by the first test that scrapes).
    CheckMetricName(name);
    AppendHeader(*out_, name, help, type);
    last_name_.assign(name);
  }
  CheckLabels(labels, /*histogram=*/false);
  AppendSample(*out_, name, "", labels, value);
}

// ---- MetricsRegistry ------------------------------------------------------------------------

struct MetricsRegistry::Family {
  struct Series {
    MetricLabels labels;
    // Exactly one is set, per the family's type. Heap-allocated so references handed out stay
    // valid while the vector grows.
    std::unique_ptr<serve::Counter> counter;
    std::unique_ptr<serve::Gauge> gauge;
    std::unique_ptr<serve::Histogram> histogram;
  };

  std::string name;
  std::string help;
  MetricType type;
  std::vector<Series> series;

  Series* Find(const MetricLabels& labels) {
    for (Series& s : series) {
      if (s.labels == labels) return &s;
    }
    return nullptr;
  }
};

namespace {

// Finds or creates the family `name`, aborting when it exists with another type or help.
template <typename Families>
auto& FamilyFor(Families& families, std::string_view name, std::string_view help, MetricType type,
                const MetricLabels& labels) {
  CheckMetricName(name);
  CheckLabels(labels, type == MetricType::kHistogram);
  for (auto& family : families) {
    if (family->name != name) continue;
    if (family->type != type) DieBadMetric("metric registered twice with different types", name);
    if (family->help != help) DieBadMetric("metric registered twice with different help", name);
    return *family;
  }
  auto& family =
      *families.emplace_back(std::make_unique<typename Families::value_type::element_type>());
  family.name.assign(name);
  family.help.assign(help);
  family.type = type;
  return family;
}

}  // namespace

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Counter& MetricsRegistry::AddCounter(std::string_view name, std::string_view help,
                                     MetricLabels labels) {
  std::lock_guard lock(mu_);
  Family& family = FamilyFor(families_, name, help, MetricType::kCounter, labels);
  if (Family::Series* s = family.Find(labels)) return *s->counter;
  auto& s = family.series.emplace_back();
  s.labels = std::move(labels);
  s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& MetricsRegistry::AddGauge(std::string_view name, std::string_view help,
                                 MetricLabels labels) {
  std::lock_guard lock(mu_);
  Family& family = FamilyFor(families_, name, help, MetricType::kGauge, labels);
  if (Family::Series* s = family.Find(labels)) return *s->gauge;
  auto& s = family.series.emplace_back();
  s.labels = std::move(labels);
  s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& MetricsRegistry::AddHistogram(std::string_view name, std::string_view help,
                                         std::span<const double> upper_bounds,
                                         MetricLabels labels) {
  std::lock_guard lock(mu_);
  Family& family = FamilyFor(families_, name, help, MetricType::kHistogram, labels);
  if (Family::Series* s = family.Find(labels)) {
    std::span<const double> existing = s->histogram->bounds();
    if (!std::equal(existing.begin(), existing.end(), upper_bounds.begin(), upper_bounds.end())) {
      DieBadMetric("histogram series registered twice with different bounds", name);
    }
    return *s->histogram;
  }
  auto& s = family.series.emplace_back();
  s.labels = std::move(labels);
  s.histogram = std::make_unique<Histogram>(upper_bounds);
  return *s.histogram;
}

void MetricsRegistry::AddCollector(std::function<void(MetricsWriter&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::string le;
  // Held for the whole scrape: registration is rare, and collectors must not register.
  std::lock_guard lock(mu_);
  for (const auto& family : families_) {
    if (family->series.empty()) continue;
    AppendHeader(out, family->name, family->help, TypeName(family->type));
    for (const Family::Series& s : family->series) {
      switch (family->type) {
        case MetricType::kCounter:
          AppendCountSample(out, family->name, "", s.labels, nullptr, s.counter->value());
          break;
        case MetricType::kGauge:
          AppendSample(out, family->name, "", s.labels, s.gauge->value());
          break;
        case MetricType::kHistogram: {
          const Histogram& h = *s.histogram;
          std::span<const double> bounds = h.bounds();
          // _count is the +Inf bucket of this same pass, so the two always agree even while
          // other threads observe.
          uint64_t cumulative = 0;
          for (size_t i = 0; i <= bounds.size(); ++i) {
            cumulative += h.bucket(i);
            le.clear();
            if (i < bounds.size()) {
              AppendDouble(le, bounds[i]);
            } else {
              le = "+Inf";
            }
            AppendCountSample(out, family->name, "_bucket", s.labels, &le, cumulative);
          }
          AppendSample(out, family->name, "_sum", s.labels, h.sum());
          AppendCountSample(out, family->name, "_count", s.labels, nullptr, cumulative);
          break;
        }
      }
    }
  }
  MetricsWriter writer(&out);
  for (const auto& collector : collectors_) collector(writer);
  return out;
}

}  // namespace persona::serve
