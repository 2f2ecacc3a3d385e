#include "serve/profile_routes.h"

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_writer.h"
#include "kafka/cluster_exchange.h"
#include "predict/predictor.h"
#include "profile/profile_json.h"
#include "serve/json_response.h"

namespace persona::serve {

void ProfileRoutes::PutAttributes(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
    return;
  }
  bool merge = true;
  if (auto v = params->Get("merge")) {
    if (*v == "false" || *v == "0") {
      merge = false;
    } else if (*v != "true" && *v != "1") {
      respond(JsonError(400, "invalid_argument", "merge must be true or false", "merge"));
      return;
    }
  }
  const std::string_view media = req.header("content-type");
  if (!media.empty() && MediaType(media) != "application/json") {
    respond(JsonError(415, "unsupported_media_type",
                      "attributes are a JSON object (application/json)", "Content-Type"));
    return;
  }
  if (absl::Status s = CheckUserId(m.id); !s.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(s.message()), "id"));
    return;
  }
  std::string user(m.id);
  context_.engine().SetAttributes(user, req.body, merge,
                                  [respond, user](absl::StatusOr<std::string> r) {
                                    if (!r.ok()) {
                                      respond(StatusError(r.status()));
                                      return;
                                    }
                                    JsonWriter w;
                                    w.BeginObject();
                                    w.Key("user_id").String(user);
                                    w.Key("attributes").Raw(*r);
                                    w.EndObject();
                                    respond(JsonOk(200, w.Take()));
                                  });
}

void ProfileRoutes::GetProfile(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
  uint32_t sections = kAll;
  if (!req.query.empty()) {
    auto params = ParseQuery(req.query);
    if (!params.ok()) {
      respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
      return;
    }
    if (auto v = params->Get("fields"); v && !v->empty()) {
      auto parsed = ParseSections(*v);
      if (!parsed) {
        respond(JsonError(400, "invalid_argument",
                          "fields: expected a comma list of identity, stats, sessions, "
                          "interests, consumption, funnel, lifecycle, sequence, tags, signals, "
                          "predictions; got '" +
                              *v + "'",
                          "fields"));
        return;
      }
      sections = *parsed;
    }
  }
  std::optional<std::string> json;
  if (Predictor* predictor = context_.predictor();
      predictor != nullptr && (sections & kPredictions)) {
    json = context_.engine().ProfileJson(
        m.id, sections,
        [predictor](JsonWriter& w, const Profile& p, const ProfileContext& ctx, int64_t now) {
          w.Key("predictions");
          predictor->WritePredictions(w, p, ctx, now);
        });
  } else {
    json = context_.engine().ProfileJson(m.id, sections);
  }
  if (!json) {
    respond(JsonError(404, "not_found", "no profile for user '" + m.id + "'"));
    return;
  }
  respond(JsonOk(200, std::move(*json)));
}

void ProfileRoutes::GetTimeline(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
  size_t limit = 20;
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
    return;
  }
  if (auto v = params->Get("limit")) {
    auto n = ParseUint(*v);
    if (!n || *n < 1 || *n > 1000) {
      respond(JsonError(400, "invalid_argument", "limit must be an integer in 1..1000", "limit"));
      return;
    }
    limit = *n;
  }
  absl::StatusOr<std::string> events = context_.engine().TimelineJson(m.id, limit);
  if (!events.ok()) {
    if (absl::IsNotFound(events.status())) {
      respond(JsonError(404, "not_found", "no profile for user '" + m.id + "'"));
    } else {
      respond(StatusError(events.status()));
    }
    return;
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("user_id").String(m.id);
  w.Key("events").Raw(*events);
  w.EndObject();
  respond(JsonOk(200, w.Take()));
}

void ProfileRoutes::DeleteUser(const HttpRequest&, const RouteMatch& m, Responder& respond) {
  if (absl::Status s = CheckUserId(m.id); !s.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(s.message()), "id"));
    return;
  }
  std::string user(m.id);
  context_.engine().EraseUser(user, [respond, user](absl::StatusOr<UserErasure> r) {
    if (!r.ok()) {
      respond(StatusError(r.status()));
      return;
    }
    if (!r->profile && r->log_events == 0 && r->dead_letters == 0) {
      respond(JsonError(404, "not_found", "nothing is stored for user '" + user + "'"));
      return;
    }
    JsonWriter w;
    w.BeginObject();
    w.Key("user_id").String(user);
    w.Key("erased").BeginObject();
    w.Key("profile").Bool(r->profile);
    w.Key("log_events").Uint(r->log_events);
    w.Key("dead_letters").Uint(r->dead_letters);
    w.EndObject();
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  });
}

namespace {

// One POST /v1/profiles:batchGet whose users are spread over instances: answered once every
// owner asked answered (the first failing owner's error is the answer).
struct BatchGather {
  Responder respond;
  std::vector<std::string> ids;                   // as requested
  std::vector<std::optional<std::string>> found;  // profile JSON per id (guarded by mu)
  std::atomic<size_t> pending{0};
  std::mutex mu;
  std::optional<HttpResponse> error;  // guarded by mu
  void Merge(const std::vector<size_t>& indexes, HttpResponse& r);
  void Answer();
};

}  // namespace

void ProfileRoutes::BatchGet(const HttpRequest& req, const RouteMatch&, Responder& respond) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto error = parser.parse(req.body.data(), req.body.size()).get(doc); error) {
    respond(JsonError(400, "malformed_json", simdjson::error_message(error)));
    return;
  }
  simdjson::dom::object object;
  if (doc.get_object().get(object)) {
    respond(JsonError(400, "invalid_argument",
                      "expected an object {\"user_ids\": [...], \"fields\": \"...\"}"));
    return;
  }
  simdjson::dom::array ids;
  uint32_t sections = kAll;
  std::string fields_text = "all";  // as given, for owners in a cluster
  bool have_ids = false;
  std::string unknown;
  for (auto field : object) {
    if (field.key == "user_ids") {
      if (field.value.get_array().get(ids)) {
        respond(
            JsonError(400, "invalid_argument", "user_ids must be an array of strings", "user_ids"));
        return;
      }
      have_ids = true;
    } else if (field.key == "fields") {
      std::string_view list;
      std::optional<uint32_t> parsed;
      if (!field.value.get_string().get(list)) parsed = ParseSections(list);
      fields_text = std::string(list);
      if (!parsed) {
        respond(JsonError(400, "invalid_argument",
                          "fields: expected a comma list of profile sections", "fields"));
        return;
      }
      sections = *parsed;
    } else if (unknown.empty()) {
      unknown = std::string(field.key);
    }
  }
  // A missing user_ids explains a misspelt key better than the unknown key does.
  if (!have_ids || ids.size() == 0) {
    respond(
        JsonError(400, "invalid_argument", "user_ids must list at least one user id", "user_ids"));
    return;
  }
  if (!unknown.empty()) {
    respond(JsonError(400, "invalid_argument",
                      "unknown field '" + unknown + "' (expected user_ids, fields)", unknown));
    return;
  }
  if (ids.size() > context_.config().max_batch_get) {
    respond(JsonError(400, "too_many_users",
                      std::to_string(ids.size()) + " user ids; at most " +
                          std::to_string(context_.config().max_batch_get) + " per call",
                      "user_ids"));
    return;
  }
  // Each id's profile JSON, in request order. In a cluster, the users of partitions another
  // instance owns are read from their owners (one forwarded batchGet per owner).
  auto gather = std::make_shared<BatchGather>();
  gather->respond = respond;
  gather->ids.reserve(ids.size());
  gather->found.resize(ids.size());
  std::map<std::string, std::vector<size_t>> remote;  // owner URL -> indexes
  Engine& engine = context_.engine();
  ClusterExchange* cluster = context_.cluster();
  for (auto v : ids) {
    std::string_view id;
    if (v.get_string().get(id)) {
      respond(
          JsonError(400, "invalid_argument", "user_ids must be an array of strings", "user_ids"));
      return;
    }
    const size_t i = gather->ids.size();
    gather->ids.emplace_back(id);
    const uint32_t partition = engine.RouteOf(id);
    if (cluster != nullptr && engine.foreign(partition)) {
      std::optional<std::string> owner =
          ApiContext::WasForwarded(req) ? std::nullopt : cluster->OwnerUrl(partition);
      if (!owner) {
        HttpResponse r = JsonError(503, "owner_unknown",
                                   "user '" + std::string(id) + "' is owned by another instance " +
                                       "that this one cannot reach yet (the group is "
                                       "rebalancing); retry shortly");
        r.headers.emplace_back("Retry-After", "1");
        respond(std::move(r));
        return;
      }
      remote[*owner].push_back(i);
      continue;
    }
    gather->found[i] = engine.ProfileJson(id, sections);
  }
  if (remote.empty()) {
    gather->Answer();
    return;
  }
  gather->pending.store(remote.size());
  for (auto& [owner, indexes] : remote) {
    JsonWriter body;
    body.BeginObject();
    body.Key("user_ids").BeginArray();
    for (size_t i : indexes) body.String(gather->ids[i]);
    body.EndArray();
    body.Key("fields").String(fields_text);
    body.EndObject();
    context_.forwarder()->Forward(
        owner, "POST", "/v1/profiles:batchGet", context_.ForwardHeaders(req), body.Take(),
        std::chrono::seconds(10),
        [gather, indexes = std::move(indexes)](HttpResponse r) { gather->Merge(indexes, r); });
  }
}

void BatchGather::Merge(const std::vector<size_t>& indexes, HttpResponse& r) {
  {
    std::lock_guard lock(mu);
    if (r.status != 200) {
      if (!error) error = std::move(r);
    } else {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      simdjson::dom::array profiles;
      if (parser.parse(r.body).get(doc) || doc["profiles"].get_array().get(profiles)) {
        if (!error) error = JsonError(502, "owner_unreachable", "an owner answered malformed JSON");
      } else {
        // Profiles come back in the order asked, without the ids not found: match them by id.
        std::map<std::string_view, std::vector<size_t>> by_id;
        for (size_t i : indexes) by_id[ids[i]].push_back(i);
        for (simdjson::dom::element profile : profiles) {
          std::string_view user;
          if (profile["user_id"].get(user)) continue;
          auto it = by_id.find(user);
          if (it == by_id.end()) continue;
          const std::string json = simdjson::minify(profile);
          for (size_t i : it->second) found[i] = json;
        }
      }
    }
  }
  if (pending.fetch_sub(1) == 1) Answer();
}

void BatchGather::Answer() {
  if (error) {
    respond(std::move(*error));
    return;
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("profiles").BeginArray();
  for (const std::optional<std::string>& json : found) {
    if (json) w.Raw(*json);
  }
  w.EndArray();
  w.Key("not_found").BeginArray();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!found[i]) w.String(ids[i]);
  }
  w.EndArray();
  w.EndObject();
  respond(JsonOk(200, w.Take()));
}

}  // namespace persona::serve
