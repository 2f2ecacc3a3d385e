// Api: the routes of `persona serve` (docs/openapi.yaml) on top of one Engine. It turns an
// HttpRequest into engine calls and an HttpResponse: authentication and scopes, parameter
// validation with JSON errors {error, detail, field?}, ingest with backpressure (429 when a
// partition queue is full), metrics and access-log hooks.
//
// Threading: Handle runs on the I/O thread that read the request. Reads answer inline (a profile
// is a few microseconds under its shard lock); ingest answers from the partition thread once the
// events are durable and applied, which is what makes read-your-writes hold.
//
// The route table in api.cc (see "Routes") lists every route; the handlers live by domain in
// serve/ingest_routes.h, profile_routes.h, predict_routes.h, recommend_routes.h,
// audience_routes.h and admin_routes.h, sharing an ApiContext (serve/api_context.h), with the
// dashboard's files in serve/static_files.h and the API's metrics in serve/api_metrics.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "serve/access_log.h"
#include "serve/api_keys.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/serve_config.h"

namespace persona {
class KafkaProducer;
class ClusterExchange;
class Changelog;
class ProfileChangeSink;
class KafkaSource;
class Predictor;
class Recommender;
class SavedAudiences;
}  // namespace persona

namespace persona::serve {

class Api {
 public:
  // `engine` must outlive the Api. `config_path` ("" = none) is re-read by POST /v1/admin/reload.
  // `recommender` (may be null: the recommendation routes then answer 503) must outlive the Api;
  // so must `predictor` (may be null: the prediction routes answer 503 and profiles carry no
  // `predictions`), and `audiences` (may be null: the saved-audience routes answer 503; ad-hoc
  // audience queries work regardless). The dashboard is served from config.web_root, or from
  // the web/dist found next to the binary (serve/static_files.h).
  static absl::StatusOr<std::unique_ptr<Api>> Create(Engine* engine, const ServeConfig& config,
                                                     std::string config_path,
                                                     Recommender* recommender = nullptr,
                                                     Predictor* predictor = nullptr,
                                                     SavedAudiences* audiences = nullptr);
  ~Api();

  // The HttpHandler of the server.
  void Handle(const HttpRequest& request, Responder respond);
  // The ExchangeObserver of the server: metrics per route and the access log.
  void Observe(const HttpExchange& exchange);

  // /readyz answers 503 until SetReady(true) and again after SetReady(false) (shutdown).
  void SetReady(bool ready);
  // The Kafka source feeding the engine (see ApiContext::kafka); set before the server starts,
  // reset (nullptrs) before destroying the source or the producer.
  // With a source, POST /v1/events produces to `topic` with `producer` (docs/cluster.md).
  void SetKafka(KafkaSource* source, KafkaProducer* producer, std::string topic);
  // The cluster exchange (kafka/cluster_exchange.h), or null: requests about users of partitions
  // owned by other instances are forwarded to them; /v1/stats and /metrics report it.
  void SetCluster(ClusterExchange* cluster);
  // The Kafka changelog (kafka/changelog.h), or null: /v1/stats and /metrics report it.
  void SetChangelog(Changelog* changelog);
  // The profile-change sink publishing to a topic (counters in /metrics), or null.
  void SetProfileChanges(ProfileChangeSink* sink);
  // Gauges the server knows (open connections).
  void SetConnectionsSource(std::function<uint64_t()> source);
  MetricsRegistry& metrics() { return *metrics_; }
  // Whether API keys are configured (else every route is open).
  bool auth_enabled() const;

 private:
  struct Routes;  // the route table and the domains that answer its routes (api.cc)
  Api();

  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<Routes> routes_;
  std::unique_ptr<AccessLog> access_log_;
};

}  // namespace persona::serve
