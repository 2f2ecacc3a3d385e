#include "serve/api.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/admin_routes.h"
#include "serve/api_context.h"
#include "serve/api_metrics.h"
#include "serve/audience_routes.h"
#include "serve/ingest_routes.h"
#include "serve/json_response.h"
#include "serve/predict_routes.h"
#include "serve/profile_routes.h"
#include "serve/recommend_routes.h"
#include "serve/request_target.h"
#include "serve/static_files.h"

namespace persona::serve {
namespace {

constexpr uint8_t kScopeNone = 0;

using Handler = std::function<void(const HttpRequest&, const RouteMatch&, Responder&)>;

// A handler that calls `method` on `routes`, one of the domains below.
template <typename Domain>
Handler On(Domain* routes,
           void (Domain::*method)(const HttpRequest&, const RouteMatch&, Responder&)) {
  return [routes, method](const HttpRequest& req, const RouteMatch& m, Responder& respond) {
    (routes->*method)(req, m, respond);
  };
}

}  // namespace

// ---- Routes -------------------------------------------------------------------------------------

// The route table and the domains whose handlers it names. Members are built in order and
// destroyed in reverse: the context (and its worker) outlives every domain.
struct Api::Routes {
  struct Route {
    std::string_view method;
    std::string_view pattern;  // "/v1/users/{id}/profile"
    uint8_t scope;
    Handler handler;
  };

  ApiContext context;
  IngestRoutes ingest{context};
  ProfileRoutes profiles{context};
  PredictRoutes predictions{context};
  RecommendRoutes recommendations{context};
  AudienceRoutes audiences;
  AdminRoutes admin;
  StaticFiles dashboard = StaticFiles::NotBuilt();
  std::vector<Route> routes;
  RoutePatterns patterns;
  std::unique_ptr<ApiMetrics> metrics;

  Routes(Engine* engine, const ServeConfig& config, std::string config_path,
         Recommender* recommender, Predictor* predictor, SavedAudiences* saved,
         MetricsRegistry& registry)
      : context(engine, config, std::move(config_path), recommender, predictor),
        audiences(engine, predictor, saved, &context),
        admin(context, registry) {
    // The API's index: every route, its scope and the domain that answers it.
    routes = {
        {"GET", "/v1/audiences:fields", kScopeRead, On(&audiences, &AudienceRoutes::Fields)},
        {"POST", "/v1/audiences:query", kScopeRead, On(&audiences, &AudienceRoutes::Query)},
        {"POST", "/v1/audiences:report", kScopeRead, On(&audiences, &AudienceRoutes::Report)},
        {"GET", "/v1/audiences:export", kScopeRead,
         On(&audiences, &AudienceRoutes::ExportCondition)},
        {"POST", "/v1/audiences", kScopeAdmin, On(&audiences, &AudienceRoutes::Create)},
        {"GET", "/v1/audiences", kScopeRead, On(&audiences, &AudienceRoutes::List)},
        {"GET", "/v1/audiences/{id}", kScopeRead, On(&audiences, &AudienceRoutes::Get)},
        {"DELETE", "/v1/audiences/{id}", kScopeAdmin, On(&audiences, &AudienceRoutes::Delete)},
        {"GET", "/v1/audiences/{id}/members", kScopeRead, On(&audiences, &AudienceRoutes::Members)},
        {"GET", "/v1/audiences/{id}/export", kScopeRead,
         On(&audiences, &AudienceRoutes::ExportSaved)},
        {"GET", "/v1/audiences/{id}/report", kScopeRead,
         On(&audiences, &AudienceRoutes::ReportSaved)},
        {"GET", "/v1/audiences/{id}/changes", kScopeRead, On(&audiences, &AudienceRoutes::Changes)},
        {"GET", "/", kScopeNone, On(this, &Routes::Dashboard)},
        {"GET", "/assets/{id}", kScopeNone, On(this, &Routes::Dashboard)},
        {"GET", "/v1/users/{id}/predictions", kScopeRead,
         On(&predictions, &PredictRoutes::GetPredictions)},
        {"GET", "/v1/segments", kScopeRead, On(&predictions, &PredictRoutes::GetSegments)},
        {"GET", "/v1/forecast", kScopeRead, On(&predictions, &PredictRoutes::GetForecast)},
        {"GET", "/v1/models", kScopeRead, On(&predictions, &PredictRoutes::GetModels)},
        {"GET", "/v1/users/{id}/recommendations", kScopeRead,
         On(&recommendations, &RecommendRoutes::GetRecommendations)},
        {"GET", "/v1/items/{id}/similar", kScopeRead,
         On(&recommendations, &RecommendRoutes::GetSimilarItems)},
        {"GET", "/v1/trending", kScopeRead, On(&recommendations, &RecommendRoutes::GetTrending)},
        {"POST", "/v1/events", kScopeIngest, On(&ingest, &IngestRoutes::PostEvents)},
        {"GET", "/v1/cluster/applied", kScopeIngest, On(&ingest, &IngestRoutes::GetApplied)},
        {"PUT", "/v1/users/{id}/attributes", kScopeIngest,
         On(&profiles, &ProfileRoutes::PutAttributes)},
        {"GET", "/v1/users/{id}/profile", kScopeRead, On(&profiles, &ProfileRoutes::GetProfile)},
        {"GET", "/v1/users/{id}/timeline", kScopeRead, On(&profiles, &ProfileRoutes::GetTimeline)},
        {"DELETE", "/v1/users/{id}", kScopeAdmin, On(&profiles, &ProfileRoutes::DeleteUser)},
        {"POST", "/v1/profiles:batchGet", kScopeRead, On(&profiles, &ProfileRoutes::BatchGet)},
        {"GET", "/v1/stats", kScopeRead, On(&admin, &AdminRoutes::GetStats)},
        {"GET", "/healthz", kScopeNone, On(&admin, &AdminRoutes::Healthz)},
        {"GET", "/readyz", kScopeNone, On(&admin, &AdminRoutes::Readyz)},
        {"GET", "/metrics", config.metrics_public ? kScopeNone : uint8_t{kScopeRead},
         On(&admin, &AdminRoutes::Metrics)},
        {"POST", "/v1/admin/checkpoint", kScopeAdmin, On(&admin, &AdminRoutes::Checkpoint)},
        {"POST", "/v1/admin/reload", kScopeAdmin, On(&admin, &AdminRoutes::Reload)},
    };
    std::vector<std::string_view> names;
    for (const Route& r : routes) {
      patterns.Add(r.pattern);
      names.push_back(r.pattern);
    }
    metrics = std::make_unique<ApiMetrics>(registry, names, context, ingest, audiences);
  }

  void Dispatch(const HttpRequest& req, Responder& respond) {
    auto match = patterns.Match(req.path);
    if (!match.ok()) {
      HttpResponse r = JsonError(400, "invalid_argument", std::string(match.status().message()));
      r.route = "unmatched";
      respond(std::move(r));
      return;
    }
    if (match->pattern.empty()) {
      HttpResponse r = JsonError(
          404, "not_found", "no route " + std::string(req.method) + " " + std::string(req.path));
      r.route = "unmatched";
      respond(std::move(r));
      return;
    }
    const Route* route = nullptr;
    std::string allow;
    for (const Route& r : routes) {
      if (r.pattern != match->pattern) continue;
      if (r.method == req.method) route = &r;
      if (!allow.empty()) allow += ", ";
      allow += r.method;
    }
    if (route == nullptr) {
      HttpResponse r = JsonError(405, "method_not_allowed",
                                 std::string(req.method) + " is not allowed on " +
                                     std::string(match->pattern) + " (allowed: " + allow + ")");
      r.headers.emplace_back("Allow", allow);
      r.route = std::string(match->pattern);
      respond(std::move(r));
      return;
    }
    std::string principal;
    const uint8_t scope = route->scope;
    if (scope != kScopeNone) {
      std::shared_ptr<const ApiKeys> k = context.keys();
      if (k->enabled()) {
        const std::string_view secret =
            ApiKeys::SecretFromHeaders(req.header("authorization"), req.header("x-api-key"));
        const ApiKey* key = secret.empty() ? nullptr : k->Authenticate(secret);
        if (key == nullptr) {
          HttpResponse r = JsonError(401, "unauthenticated",
                                     secret.empty() ? "an API key is required (Authorization: "
                                                      "Bearer <key> or X-Api-Key)"
                                                    : "unknown API key");
          r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"persona\"");
          r.route = std::string(route->pattern);
          respond(std::move(r));
          return;
        }
        if ((key->scopes & scope) == 0) {
          HttpResponse r =
              JsonError(403, "forbidden",
                        "API key '" + key->name + "' lacks the scope '" + ScopeNames(scope) +
                            "' (it has: " + ScopeNames(key->scopes) + ")");
          r.route = std::string(route->pattern);
          r.principal = key->name;
          respond(std::move(r));
          return;
        }
        principal = key->name;
      }
    }
    // Every answer of this route carries its template and the caller's name.
    Responder wrapped = [respond = std::move(respond), pattern = route->pattern,
                         principal = std::move(principal)](HttpResponse r) mutable {
      r.route = std::string(pattern);
      r.principal = std::move(principal);
      respond(std::move(r));
    };
    // In a cluster, a user's requests are answered by the instance owning the user's partition.
    if (context.cluster() != nullptr && route->pattern.starts_with("/v1/users/{id}")) {
      const uint32_t partition = context.engine().RouteOf(match->id);
      if (context.engine().foreign(partition)) {
        context.ForwardToOwner(partition, req, std::move(wrapped));
        return;
      }
    }
    route->handler(req, *match, wrapped);
  }

  void Dashboard(const HttpRequest& req, const RouteMatch&, Responder& respond) {
    std::optional<HttpResponse> r = dashboard.Get(req.path, req.header("if-none-match"));
    if (!r) {
      respond(JsonError(404, "not_found", "no file " + std::string(req.path)));
      return;
    }
    respond(std::move(*r));
  }
};

// ---- Api ----------------------------------------------------------------------------------------

Api::Api() : metrics_(std::make_unique<MetricsRegistry>()) {}

Api::~Api() = default;

absl::StatusOr<std::unique_ptr<Api>> Api::Create(Engine* engine, const ServeConfig& config,
                                                 std::string config_path, Recommender* recommender,
                                                 Predictor* predictor, SavedAudiences* audiences) {
  std::unique_ptr<Api> api(new Api());
  api->routes_ = std::make_unique<Routes>(engine, config, std::move(config_path), recommender,
                                          predictor, audiences, *api->metrics_);
  const std::string web_root =
      config.web_root.empty() ? FindWebRoot("/proc/self/exe") : config.web_root;
  if (!web_root.empty()) {
    auto files = StaticFiles::Load(web_root);
    // A configured root that cannot be served is an error; a missing default is not.
    if (!files.ok() && !config.web_root.empty()) {
      return absl::InvalidArgumentError("server.web_root '" + web_root +
                                        "': " + std::string(files.status().message()));
    }
    if (files.ok()) api->routes_->dashboard = std::move(*files);
  }
  auto keys = BuildApiKeys(config);
  if (!keys.ok()) return keys.status();
  api->routes_->context.set_keys(std::move(*keys));
  auto log = AccessLog::Open(config.access_log);
  if (!log.ok()) return log.status();
  api->access_log_ = std::move(*log);
  return api;
}

void Api::SetReady(bool ready) { routes_->context.set_ready(ready); }

void Api::SetKafka(KafkaSource* source, KafkaProducer* producer, std::string topic) {
  routes_->context.set_kafka(source, producer, std::move(topic));
}

void Api::SetCluster(ClusterExchange* cluster) { routes_->context.set_cluster(cluster); }
void Api::SetChangelog(Changelog* changelog) { routes_->context.set_changelog(changelog); }

void Api::SetProfileChanges(ProfileChangeSink* sink) { routes_->context.set_profile_changes(sink); }

void Api::SetConnectionsSource(std::function<uint64_t()> source) {
  routes_->metrics->SetConnectionsSource(std::move(source));
}

bool Api::auth_enabled() const { return routes_->context.keys()->enabled(); }

void Api::Handle(const HttpRequest& request, Responder respond) {
  routes_->Dispatch(request, respond);
}

void Api::Observe(const HttpExchange& exchange) {
  routes_->metrics->Observe(exchange);
  if (access_log_) access_log_->Write(exchange, exchange.principal);
}

}  // namespace persona::serve
