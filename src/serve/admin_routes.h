// The operations and admin routes (docs/openapi.yaml "operations", "admin"): engine statistics,
// probes, the Prometheus exposition, and the admin calls that checkpoint every partition or reload
// tag rules, API keys and models. Api owns one and forwards the matched routes to it.
//
// Threading: probes and /metrics answer inline on the I/O thread; statistics (they walk every
// profile), checkpoints and reloads run on the context's worker.
#pragma once

#include "serve/api_context.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/request_target.h"

namespace persona::serve {

class AdminRoutes {
 public:
  // `context` and `metrics` (what /metrics renders) must outlive this object.
  AdminRoutes(ApiContext& context, const MetricsRegistry& metrics)
      : context_(context), metrics_(metrics) {}
  AdminRoutes(const AdminRoutes&) = delete;
  AdminRoutes& operator=(const AdminRoutes&) = delete;

  void GetStats(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Healthz(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Readyz(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Metrics(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Checkpoint(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  // Re-reads the tag rules, the API keys (when the server has a config file), the predictor's
  // models and the recommender's model; the first failure answers 400 and stops there.
  void Reload(const HttpRequest& req, const RouteMatch& m, Responder& respond);

 private:
  ApiContext& context_;
  const MetricsRegistry& metrics_;
};

}  // namespace persona::serve
