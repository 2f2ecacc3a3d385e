#include "serve/predict_routes.h"

#include <optional>
#include <string>
#include <utility>

#include "predict/predictor.h"
#include "serve/json_response.h"

namespace persona::serve {
namespace {

// False after answering 503 when the server runs without a predictor.
bool PredictorReady(const Predictor* predictor, Responder& respond) {
  if (predictor != nullptr) return true;
  respond(JsonError(503, "unavailable", "predictions are not enabled on this server"));
  return false;
}

}  // namespace

void PredictRoutes::GetPredictions(const HttpRequest&, const RouteMatch& m, Responder& respond) {
  if (!PredictorReady(context_.predictor(), respond)) return;
  std::optional<std::string> json = context_.predictor()->PredictionsJson(m.id);
  if (!json) {
    respond(JsonError(404, "not_found", "no profile for user '" + m.id + "'"));
    return;
  }
  respond(JsonOk(200, std::move(*json)));
}

void PredictRoutes::GetSegments(const HttpRequest&, const RouteMatch&, Responder& respond) {
  if (!PredictorReady(context_.predictor(), respond)) return;
  // Sizes come from a scan of all profiles (cached for a few seconds): off the I/O thread.
  context_.Post([predictor = context_.predictor(), respond] {
    respond(JsonOk(200, predictor->SegmentsJson()));
  });
}

void PredictRoutes::GetModels(const HttpRequest&, const RouteMatch&, Responder& respond) {
  if (!PredictorReady(context_.predictor(), respond)) return;
  respond(JsonOk(200, context_.predictor()->ModelsJson()));
}

void PredictRoutes::GetForecast(const HttpRequest& req, const RouteMatch&, Responder& respond) {
  if (!PredictorReady(context_.predictor(), respond)) return;
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
    return;
  }
  std::string category, period = "hour", metric = "events";
  if (auto v = params->Get("category")) category = *v;
  if (auto v = params->Get("period")) period = *v;
  if (auto v = params->Get("metric")) metric = *v;
  int horizon = period == "day" ? 7 : 24;
  if (auto v = params->Get("horizon")) {
    std::optional<size_t> h = ParseUint(*v);
    if (!h || *h < 1 || *h > 720) {
      respond(JsonError(400, "invalid_argument",
                        "horizon: expected an integer from 1 to 720, got '" + *v + "'", "horizon"));
      return;
    }
    horizon = static_cast<int>(*h);
  }
  auto json = context_.predictor()->ForecastJson(category, period, horizon, metric);
  if (!json.ok()) {
    if (absl::IsNotFound(json.status())) {
      respond(JsonError(404, "not_found", std::string(json.status().message()), "category"));
    } else {
      respond(JsonError(400, "invalid_argument", std::string(json.status().message())));
    }
    return;
  }
  respond(JsonOk(200, std::move(*json)));
}

}  // namespace persona::serve
