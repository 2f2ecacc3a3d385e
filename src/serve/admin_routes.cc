#include "serve/admin_routes.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/json_writer.h"
#include "engine/stats_json.h"
#include "kafka/changelog.h"
#include "kafka/cluster_exchange.h"
#include "kafka/kafka_source.h"
#include "predict/predictor.h"
#include "recommend/recommender.h"
#include "serve/json_response.h"

namespace persona::serve {

// Calls posted to the worker capture the context, never `this`: the context outlives the routes
// and drains its worker before it goes.

void AdminRoutes::GetStats(const HttpRequest&, const RouteMatch&, Responder& respond) {
  // Walks every profile for memory figures: off the I/O thread.
  context_.Post([context = &context_, respond] {
    std::string json = EngineStatsJson(context->engine());
    if (Recommender* recommender = context->recommender();
        recommender != nullptr && !json.empty() && json.back() == '}') {
      json.pop_back();
      json += ",\"recommend\":";
      json += recommender->StatsJson();
      json += '}';
    }
    if (const KafkaSource* kafka = context->kafka(); kafka != nullptr && !json.empty()) {
      json.pop_back();
      json += ",\"kafka\":" + KafkaSourceStatusJson(kafka->Status()) + "}";
    }
    if (const ClusterExchange* cluster = context->cluster(); cluster != nullptr && !json.empty()) {
      json.pop_back();
      json += ",\"cluster\":" + ClusterStatusJson(cluster->Status()) + "}";
    }
    if (const Changelog* changelog = context->changelog(); changelog != nullptr && !json.empty()) {
      json.pop_back();
      json += ",\"changelog\":" + ChangelogStatusJson(changelog->Status()) + "}";
    }
    respond(JsonOk(200, std::move(json)));
  });
}

void AdminRoutes::Healthz(const HttpRequest&, const RouteMatch&, Responder& respond) {
  respond(JsonOk(200, "{\"status\":\"ok\"}"));
}

void AdminRoutes::Readyz(const HttpRequest&, const RouteMatch&, Responder& respond) {
  if (!context_.ready()) {
    HttpResponse r = JsonError(503, "unavailable", "starting or shutting down");
    r.headers.emplace_back("Retry-After", "1");
    respond(std::move(r));
    return;
  }
  if (absl::Status h = context_.engine().health(); !h.ok()) {
    respond(JsonError(503, "unavailable", "storage error: " + std::string(h.message())));
    return;
  }
  // Complete includes the Kafka topic's backlog at start (kafka/kafka_source.h, readiness).
  if (const KafkaSource* kafka = context_.kafka(); kafka != nullptr && !kafka->caught_up()) {
    int64_t lag = 0;
    for (const KafkaPartitionStatus& p : kafka->Status().partitions) lag += p.assigned ? p.lag : 0;
    HttpResponse r = JsonError(
        503, "unavailable",
        "consuming the Kafka topic's backlog (" + std::to_string(lag) + " messages behind)");
    r.headers.emplace_back("Retry-After", "1");
    respond(std::move(r));
    return;
  }
  respond(JsonOk(200, "{\"status\":\"ready\"}"));
}

void AdminRoutes::Metrics(const HttpRequest&, const RouteMatch&, Responder& respond) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.Render();
  respond(std::move(r));
}

void AdminRoutes::Checkpoint(const HttpRequest&, const RouteMatch&, Responder& respond) {
  context_.Post([context = &context_, respond] {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    Engine& engine = context->engine();
    if (absl::Status s = engine.Checkpoint(); !s.ok()) {
      respond(StatusError(s));
      return;
    }
    JsonWriter w;
    w.BeginObject();
    w.Key("partitions").Uint(engine.partitions());
    w.Key("duration_ms")
        .Double(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  });
}

void AdminRoutes::Reload(const HttpRequest&, const RouteMatch&, Responder& respond) {
  context_.Post([context = &context_, respond] {
    std::vector<std::string> reloaded;
    if (absl::Status s = context->engine().ReloadTagRules(); !s.ok()) {
      respond(JsonError(400, "invalid_config", "tag rules: " + std::string(s.message())));
      return;
    }
    reloaded.push_back("tag_rules");  // re-read, or still none when no file is configured
    if (!context->config_path().empty()) {
      ServeConfig fresh = context->config();
      if (absl::Status s = LoadServeConfigFile(context->config_path(), &fresh); !s.ok()) {
        respond(JsonError(400, "invalid_config", std::string(s.message())));
        return;
      }
      auto built = BuildApiKeys(fresh);
      if (!built.ok()) {
        respond(JsonError(400, "invalid_config", std::string(built.status().message())));
        return;
      }
      context->set_keys(std::move(*built));
      reloaded.push_back("api_keys");
    }
    if (Predictor* predictor = context->predictor(); predictor != nullptr) {
      if (absl::Status s = predictor->Reload(); !s.ok()) {
        respond(JsonError(400, "invalid_model", std::string(s.message())));
        return;
      }
      reloaded.push_back("predictions");
    }
    Recommender* recommender = context->recommender();
    std::string model_version;
    if (recommender != nullptr) {
      auto v = recommender->ReloadModel();
      if (!v.ok()) {
        respond(JsonError(400, "invalid_model", std::string(v.status().message())));
        return;
      }
      model_version = *v;
      reloaded.push_back("model");
    }
    JsonWriter w;
    w.BeginObject();
    w.Key("reloaded").BeginArray();
    for (const auto& r : reloaded) w.String(r);
    w.EndArray();
    if (recommender != nullptr) {
      w.Key("model_version");
      if (model_version.empty()) {
        w.Null();
      } else {
        w.String(model_version);
      }
    }
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  });
}

}  // namespace persona::serve
