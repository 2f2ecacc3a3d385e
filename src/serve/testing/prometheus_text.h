// Test helpers for the Prometheus text exposition format 0.0.4, shared by the metrics unit tests
// and the integration tests that scrape a running `persona serve`.
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "serve/metrics.h"

namespace persona::serve {

// Checks `text` the way a strict scraper would: every line is a `# HELP`/`# TYPE`/comment or a
// sample `name{label="value",...} value [timestamp]` with valid names, escapes and numbers; every
// sample's family has a TYPE written before it; a family's samples are contiguous; no series
// appears twice; counters are >= 0; histogram buckets are cumulative, end with le="+Inf" and
// agree with _count. Returns InvalidArgument naming the line number and the problem.
absl::Status CheckPrometheusText(std::string_view text);

// The value of the sample with exactly this name and label set (order-insensitive; a histogram
// bucket needs its "le" label), or nullopt when there is none. Lines that do not parse are
// skipped.
std::optional<double> PrometheusSample(std::string_view text, std::string_view name,
                                       const MetricLabels& labels);

}  // namespace persona::serve
