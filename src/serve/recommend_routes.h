// The recommendation routes (docs/openapi.yaml "recommendations"): a user's recommendations with
// their A/B variant and sources, similar items and trending items. Api owns one and forwards the
// matched routes to it; without a recommender they answer 503.
//
// Threading: answers are given inline on the I/O thread.
#pragma once

#include "serve/api_context.h"
#include "serve/http_server.h"
#include "serve/request_target.h"

namespace persona::serve {

class RecommendRoutes {
 public:
  // `context` must outlive this object.
  explicit RecommendRoutes(ApiContext& context) : context_(context) {}
  RecommendRoutes(const RecommendRoutes&) = delete;
  RecommendRoutes& operator=(const RecommendRoutes&) = delete;

  void GetRecommendations(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void GetSimilarItems(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void GetTrending(const HttpRequest& req, const RouteMatch& m, Responder& respond);

 private:
  ApiContext& context_;
};

}  // namespace persona::serve
