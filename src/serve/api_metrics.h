// The API's series on /metrics (docs/openapi.yaml, GET /metrics). Per route: a latency histogram
// and a request counter by status, observed on every exchange. At each scrape: events by type and
// outcome, partition queues, lag, watermarks and logs, profiles held, memory, checkpoints, dead
// letters and open connections, plus the counters of the recommender, the predictor and the
// audience routes when the server has them.
//
// Threading: Observe runs on I/O threads and takes no lock once a route has answered with a given
// status (one relaxed add per series); the collector runs on the thread that renders /metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "serve/api_context.h"
#include "serve/audience_routes.h"
#include "serve/http_server.h"
#include "serve/ingest_routes.h"
#include "serve/metrics.h"

namespace persona::serve {

class ApiMetrics {
 public:
  // Registers on `registry` a latency histogram for each of `route_patterns` (plus "unmatched"
  // and "-", the server's own answers) and a collector for the scrape-time series. `registry`,
  // `context`, `ingest` and `audiences` must outlive this object, and this object must outlive
  // every render of `registry`.
  ApiMetrics(MetricsRegistry& registry, std::span<const std::string_view> route_patterns,
             ApiContext& context, const IngestRoutes& ingest, const AudienceRoutes& audiences);
  ApiMetrics(const ApiMetrics&) = delete;
  ApiMetrics& operator=(const ApiMetrics&) = delete;

  // Counts one answered request under its route template (an unknown one as "unmatched").
  void Observe(const HttpExchange& exchange);
  // The gauge of open connections; none is exported until a source is set.
  void SetConnectionsSource(std::function<uint64_t()> source);

 private:
  struct RouteMetrics {
    Histogram* latency = nullptr;
    std::array<std::atomic<Counter*>, 600> by_status{};  // registered on first use
  };

  void Collect(MetricsWriter& w);
  void CollectRecommendations(MetricsWriter& w);
  void CollectPredictions(MetricsWriter& w);
  void CollectAudiences(MetricsWriter& w);
  void CollectKafka(MetricsWriter& w);
  // The count is a scan of the dead-letter keys, so scrapes reuse it for a few seconds.
  uint64_t DeadLetterCount();

  MetricsRegistry& registry_;
  ApiContext& context_;
  const IngestRoutes& ingest_;
  const AudienceRoutes& audiences_;
  absl::flat_hash_map<std::string, std::unique_ptr<RouteMetrics>> routes_;
  std::function<uint64_t()> connections_;

  std::mutex dead_letter_mu_;
  int64_t dead_letter_count_at_ms_ ABSL_GUARDED_BY(dead_letter_mu_) = 0;
  uint64_t dead_letter_count_ ABSL_GUARDED_BY(dead_letter_mu_) = 0;
};

}  // namespace persona::serve
