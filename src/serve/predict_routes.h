// The prediction routes (docs/openapi.yaml "predictions"): a user's predictions, the segments with
// their sizes, the category demand forecast and the models in service. Api owns one and forwards
// the matched routes to it; without a predictor they answer 503.
//
// Threading: answers are given inline on the I/O thread, except the segment sizes, which scan
// every profile and so run on the context's worker.
#pragma once

#include "serve/api_context.h"
#include "serve/http_server.h"
#include "serve/request_target.h"

namespace persona::serve {

class PredictRoutes {
 public:
  // `context` must outlive this object.
  explicit PredictRoutes(ApiContext& context) : context_(context) {}
  PredictRoutes(const PredictRoutes&) = delete;
  PredictRoutes& operator=(const PredictRoutes&) = delete;

  void GetPredictions(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void GetSegments(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void GetForecast(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void GetModels(const HttpRequest& req, const RouteMatch& m, Responder& respond);

 private:
  ApiContext& context_;
};

}  // namespace persona::serve
