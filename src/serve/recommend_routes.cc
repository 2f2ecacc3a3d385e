#include "serve/recommend_routes.h"

#include <string>

#include "common/json_writer.h"
#include "recommend/recommender.h"
#include "serve/json_response.h"

namespace persona::serve {
namespace {

// False after answering 503 when the server runs without a recommender.
bool RecommenderReady(const Recommender* recommender, Responder& respond) {
  if (recommender != nullptr) return true;
  respond(JsonError(503, "unavailable", "recommendations are not enabled on this server"));
  return false;
}

// Reads ?k= (default 10) into *k; answers 400 and returns false when it is malformed.
bool ReadK(const QueryParams& params, uint32_t max_k, uint32_t* k, Responder& respond) {
  *k = 10;
  if (auto v = params.Get("k")) {
    auto n = ParseUint(*v);
    if (!n || *n < 1 || *n > max_k) {
      respond(JsonError(400, "invalid_argument",
                        "k must be an integer in 1.." + std::to_string(max_k), "k"));
      return false;
    }
    *k = static_cast<uint32_t>(*n);
  }
  return true;
}

}  // namespace

void RecommendRoutes::GetRecommendations(const HttpRequest& req, const RouteMatch& m,
                                         Responder& respond) {
  if (!RecommenderReady(context_.recommender(), respond)) return;
  if (absl::Status s = CheckUserId(m.id); !s.ok()) {
    respond(StatusError(s));
    return;
  }
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
    return;
  }
  Recommender::Request r;
  r.user = m.id;
  if (!ReadK(*params, context_.recommender()->config().max_k, &r.k, respond)) return;
  std::string category, source;
  if (auto v = params->Get("category")) category = *v;
  if (auto v = params->Get("source")) source = *v;
  r.category = category;
  r.source = source;
  if (!source.empty()) {
    RecSource parsed;
    if (!ParseRecSource(source, &parsed)) {
      respond(JsonError(400, "invalid_argument",
                        "source must be one of sasrec, item_cf, trending; got '" + source + "'",
                        "source"));
      return;
    }
  }
  auto result = context_.recommender()->Recommend(r);
  if (!result.ok()) {
    if (absl::IsNotFound(result.status())) {
      respond(JsonError(404, "not_found", std::string(result.status().message()), "category"));
    } else {
      respond(StatusError(result.status()));
    }
    return;
  }
  JsonWriter w;
  w.Reserve(256 + 96 * result->items.size());
  w.BeginObject();
  w.Key("user_id").String(m.id);
  w.Key("rec_id").String(result->rec_id);
  w.Key("variant").String(result->variant);
  w.Key("model_version");
  if (result->model_version.empty()) {
    w.Null();
  } else {
    w.String(result->model_version);
  }
  w.Key("known_user").Bool(result->known_user);
  w.Key("cold_start").Bool(result->cold);
  w.Key("items").BeginArray();
  for (const Recommender::Item& item : result->items) {
    w.BeginObject();
    w.Key("item_id").String(item.item);
    w.Key("score").Double(item.score);
    w.Key("source").String(RecSourceName(item.source));
    w.Key("sources").BeginArray();
    for (int s = 0; s < kRecSourceCount; ++s) {
      if (item.sources & (1u << s)) w.String(RecSourceName(static_cast<RecSource>(s)));
    }
    w.EndArray();
    if (!item.because.empty()) w.Key("because").String(item.because);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  respond(JsonOk(200, w.Take()));
}

void RecommendRoutes::GetSimilarItems(const HttpRequest& req, const RouteMatch& m,
                                      Responder& respond) {
  if (!RecommenderReady(context_.recommender(), respond)) return;
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
    return;
  }
  uint32_t k;
  if (!ReadK(*params, context_.recommender()->config().max_k, &k, respond)) return;
  auto similar = context_.recommender()->SimilarItems(m.id, k);
  if (!similar.ok()) {
    if (absl::IsNotFound(similar.status())) {
      respond(JsonError(404, "not_found", std::string(similar.status().message())));
    } else {
      respond(StatusError(similar.status()));
    }
    return;
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("item_id").String(m.id);
  w.Key("items").BeginArray();
  for (const Recommender::Similar& s : *similar) {
    w.BeginObject();
    w.Key("item_id").String(s.item);
    w.Key("score").Double(s.score);
    w.Key("source").String(RecSourceName(s.source));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  respond(JsonOk(200, w.Take()));
}

void RecommendRoutes::GetTrending(const HttpRequest& req, const RouteMatch&, Responder& respond) {
  if (!RecommenderReady(context_.recommender(), respond)) return;
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
    return;
  }
  uint32_t k;
  if (!ReadK(*params, context_.recommender()->config().max_k, &k, respond)) return;
  std::string category;
  if (auto v = params->Get("category")) category = *v;
  auto top = context_.recommender()->TrendingItems(category, k);
  if (!top.ok()) {
    if (absl::IsNotFound(top.status())) {
      respond(JsonError(404, "not_found", std::string(top.status().message()), "category"));
    } else {
      respond(StatusError(top.status()));
    }
    return;
  }
  const ItemCatalog& catalog = context_.recommender()->catalog();
  JsonWriter w;
  w.BeginObject();
  w.Key("category");
  if (category.empty()) {
    w.Null();
  } else {
    w.String(category);
  }
  w.Key("items").BeginArray();
  for (const Trending::Scored& s : *top) {
    w.BeginObject();
    w.Key("item_id").String(catalog.Item(s.item));
    w.Key("score").Double(s.score);
    const uint32_t c = catalog.CategoryOf(s.item);
    if (c != ItemCatalog::kNone) w.Key("category").String(catalog.CategoryName(c));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  respond(JsonOk(200, w.Take()));
}

}  // namespace persona::serve
