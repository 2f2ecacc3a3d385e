#include "serve/api.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "audience/saved_audiences.h"
#include "common/json_writer.h"
#include "engine/stats_json.h"
#include "event/json_event.h"
#include "predict/predictor.h"
#include "profile/profile_json.h"
#include "recommend/recommender.h"
#include "serve/audience_routes.h"
#include "serve/json_response.h"
#include "serve/request_target.h"
#include "serve/static_files.h"

namespace persona::serve {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint8_t kScopeNone = 0;

// The media type of a Content-Type header, lower-cased, without parameters.
std::string MediaType(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  std::string out(t);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

// ---- Routes -------------------------------------------------------------------------------------

struct Api::Routes {
  using Handler = void (Api::Routes::*)(const HttpRequest&, const RouteMatch&, Responder&);
  struct Route {
    std::string_view method;
    std::string_view pattern;  // "/v1/users/{id}/profile"
    uint8_t scope;
    Handler handler;
  };

  Api* api;
  Engine* engine;
  Recommender* recommender = nullptr;  // null: recommendation routes answer 503
  Predictor* predictor = nullptr;      // null: prediction routes answer 503
  std::unique_ptr<AudienceRoutes> audiences;
  StaticFiles dashboard = StaticFiles::NotBuilt();
  std::vector<Route> routes;
  RoutePatterns patterns;
  std::atomic<std::shared_ptr<const ApiKeys>> keys;

  // Metrics.
  struct RouteMetrics {
    Histogram* latency = nullptr;
    std::array<std::atomic<Counter*>, 600> by_status{};
  };
  absl::flat_hash_map<std::string, std::unique_ptr<RouteMetrics>> route_metrics;
  std::atomic<uint64_t> http_parse_rejected{0};
  std::function<uint64_t()> connections;
  std::mutex dead_letter_mu;
  int64_t dead_letter_count_at_ms = 0;
  uint64_t dead_letter_count = 0;

  // One worker for slow admin calls (checkpoint, reload), so that they never hold an I/O thread.
  std::mutex work_mu;
  std::condition_variable work_cv;
  std::deque<std::function<void()>> work;
  bool stopping = false;
  std::thread worker;

  Routes(Api* a, Engine* e, Recommender* rec, Predictor* pred)
      : api(a), engine(e), recommender(rec), predictor(pred) {
    // Routes. Audiences (/v1/audiences...) join this table when their issue lands.
    routes = {
        {"GET", "/v1/audiences:fields", kScopeRead, &Routes::AudienceFields},
        {"POST", "/v1/audiences:query", kScopeRead, &Routes::AudienceQuery},
        {"POST", "/v1/audiences:report", kScopeRead, &Routes::AudienceReport},
        {"GET", "/v1/audiences:export", kScopeRead, &Routes::AudienceExport},
        {"POST", "/v1/audiences", kScopeAdmin, &Routes::AudienceCreate},
        {"GET", "/v1/audiences", kScopeRead, &Routes::AudienceList},
        {"GET", "/v1/audiences/{id}", kScopeRead, &Routes::AudienceGet},
        {"DELETE", "/v1/audiences/{id}", kScopeAdmin, &Routes::AudienceDelete},
        {"GET", "/v1/audiences/{id}/members", kScopeRead, &Routes::AudienceMembers},
        {"GET", "/v1/audiences/{id}/export", kScopeRead, &Routes::AudienceExportSaved},
        {"GET", "/v1/audiences/{id}/report", kScopeRead, &Routes::AudienceReportSaved},
        {"GET", "/v1/audiences/{id}/changes", kScopeRead, &Routes::AudienceChanges},
        {"GET", "/", kScopeNone, &Routes::Dashboard},
        {"GET", "/assets/{id}", kScopeNone, &Routes::Dashboard},
        {"GET", "/v1/users/{id}/predictions", kScopeRead, &Routes::GetPredictions},
        {"GET", "/v1/segments", kScopeRead, &Routes::GetSegments},
        {"GET", "/v1/forecast", kScopeRead, &Routes::GetForecast},
        {"GET", "/v1/models", kScopeRead, &Routes::GetModels},
        {"GET", "/v1/users/{id}/recommendations", kScopeRead, &Routes::GetRecommendations},
        {"GET", "/v1/items/{id}/similar", kScopeRead, &Routes::GetSimilarItems},
        {"GET", "/v1/trending", kScopeRead, &Routes::GetTrending},
        {"POST", "/v1/events", kScopeIngest, &Routes::PostEvents},
        {"PUT", "/v1/users/{id}/attributes", kScopeIngest, &Routes::PutAttributes},
        {"GET", "/v1/users/{id}/profile", kScopeRead, &Routes::GetProfile},
        {"GET", "/v1/users/{id}/timeline", kScopeRead, &Routes::GetTimeline},
        {"DELETE", "/v1/users/{id}", kScopeAdmin, &Routes::DeleteUser},
        {"POST", "/v1/profiles:batchGet", kScopeRead, &Routes::BatchGet},
        {"GET", "/v1/stats", kScopeRead, &Routes::GetStats},
        {"GET", "/healthz", kScopeNone, &Routes::Healthz},
        {"GET", "/readyz", kScopeNone, &Routes::Readyz},
        {"GET", "/metrics", kScopeRead, &Routes::Metrics},
        {"POST", "/v1/admin/checkpoint", kScopeAdmin, &Routes::AdminCheckpoint},
        {"POST", "/v1/admin/reload", kScopeAdmin, &Routes::AdminReload},
    };
    for (const Route& r : routes) patterns.Add(r.pattern);
    worker = std::thread([this] { WorkLoop(); });
  }

  ~Routes() {
    {
      std::lock_guard<std::mutex> lock(work_mu);
      stopping = true;
    }
    work_cv.notify_all();
    worker.join();
  }

  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(work_mu);
      work.push_back(std::move(fn));
    }
    work_cv.notify_one();
  }

  void WorkLoop() {
    while (true) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(work_mu);
        work_cv.wait(lock, [&] { return stopping || !work.empty(); });
        if (work.empty()) return;  // stopping and drained
        fn = std::move(work.front());
        work.pop_front();
      }
      fn();
    }
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
    uint8_t scope = route->scope;
    if (route->handler == &Routes::Metrics && api->config_.metrics_public) scope = kScopeNone;
    if (scope != kScopeNone) {
      std::shared_ptr<const ApiKeys> k = keys.load();
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
    (this->*(route->handler))(req, *match, wrapped);
  }

  // -- handlers --

  void PostEvents(const HttpRequest& req, const RouteMatch&, Responder& respond) {
    const std::string media = MediaType(req.header("content-type"));
    if (media != "application/json" && media != "application/x-ndjson" &&
        media != "application/jsonl") {
      respond(JsonError(415, "unsupported_media_type",
                        "send events as application/json (one object or an array) or "
                        "application/x-ndjson, not '" +
                            std::string(req.header("content-type")) + "'",
                        "Content-Type"));
      return;
    }
    bool strict = api->config_.strict;
    auto params = ParseQuery(req.query);
    if (!params.ok()) {
      respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
      return;
    }
    if (auto v = params->Get("strict")) {
      if (*v == "true" || *v == "1") {
        strict = true;
      } else if (*v == "false" || *v == "0") {
        strict = false;
      } else {
        respond(JsonError(400, "invalid_argument", "strict must be true or false", "strict"));
        return;
      }
    }
    auto batch = std::make_shared<EventBatch>();
    std::vector<EventIssue> issues;
    if (absl::Status s =
            ParseJsonBody(req.body, engine->config().limits, strict, batch.get(), &issues);
        !s.ok()) {
      respond(JsonError(400, "malformed_json", std::string(s.message())));
      return;
    }
    const size_t records = batch->events.size() + issues.size();
    if (records > api->config_.max_batch_events) {
      respond(JsonError(413, "batch_too_large",
                        std::to_string(records) + " events in one request; the limit is " +
                            std::to_string(api->config_.max_batch_events) +
                            " (server.max_batch_events)"));
      return;
    }
    if (!issues.empty()) {
      std::vector<DeadLetter> letters;
      letters.reserve(issues.size());
      const int64_t now = WallMs();
      for (const EventIssue& is : issues) {
        letters.push_back(DeadLetter{now, "http", is.index_or_line, UserIdOfJsonRecord(is.raw),
                                     is.field, is.rule, is.raw});
      }
      http_parse_rejected.fetch_add(issues.size(), std::memory_order_relaxed);
      if (absl::Status s = engine->AddDeadLetters(letters); !s.ok()) {
        respond(StatusError(s));
        return;
      }
    }
    // The outcome callback runs on a partition thread; the parse issues travel with it.
    auto finish = [respond, issues = std::move(issues)](IngestOutcome outcome) mutable {
      for (EventIssue& is : issues) {
        outcome.rejected.push_back({is.index_or_line, std::move(is.field), std::move(is.rule)});
      }
      std::sort(
          outcome.rejected.begin(), outcome.rejected.end(),
          [](const RejectedEvent& a, const RejectedEvent& b) { return a.position < b.position; });
      JsonWriter w;
      w.BeginObject();
      w.Key("accepted").Uint(outcome.accepted);
      w.Key("duplicates").Uint(outcome.duplicates);
      w.Key("rejected").BeginArray();
      for (const RejectedEvent& r : outcome.rejected) {
        w.BeginObject();
        w.Key("index").Uint(r.position);
        w.Key("field").String(r.field);
        w.Key("reason").String(r.rule);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
      respond(JsonOk(outcome.rejected.empty() ? 200 : 207, w.Take()));
    };
    if (absl::Status h = engine->health(); !h.ok()) {
      respond(StatusError(absl::UnavailableError(std::string(h.message()))));
      return;
    }
    if (batch->events.empty()) {
      finish(IngestOutcome{});
      return;
    }
    // Submit consumes `finish` only when it succeeds; keep a copy of the responder for refusals.
    Responder refuse = respond;
    if (absl::Status s = engine->Submit(std::move(batch), std::move(finish), /*block=*/false);
        !s.ok()) {
      refuse(StatusError(s));
    }
  }

  void PutAttributes(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
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
    engine->SetAttributes(user, req.body, merge, [respond, user](absl::StatusOr<std::string> r) {
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

  void GetProfile(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
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
    if (predictor != nullptr && (sections & kPredictions)) {
      json = engine->ProfileJson(
          m.id, sections,
          [this](JsonWriter& w, const Profile& p, const ProfileContext& ctx, int64_t now) {
            w.Key("predictions");
            predictor->WritePredictions(w, p, ctx, now);
          });
    } else {
      json = engine->ProfileJson(m.id, sections);
    }
    if (!json) {
      respond(JsonError(404, "not_found", "no profile for user '" + m.id + "'"));
      return;
    }
    respond(JsonOk(200, std::move(*json)));
  }

  void GetTimeline(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
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
    absl::StatusOr<std::string> events = engine->TimelineJson(m.id, limit);
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

  void DeleteUser(const HttpRequest&, const RouteMatch& m, Responder& respond) {
    if (absl::Status s = CheckUserId(m.id); !s.ok()) {
      respond(JsonError(400, "invalid_argument", std::string(s.message()), "id"));
      return;
    }
    std::string user(m.id);
    engine->EraseUser(user, [respond, user](absl::StatusOr<UserErasure> r) {
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

  void BatchGet(const HttpRequest& req, const RouteMatch&, Responder& respond) {
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
    bool have_ids = false;
    std::string unknown;
    for (auto field : object) {
      if (field.key == "user_ids") {
        if (field.value.get_array().get(ids)) {
          respond(JsonError(400, "invalid_argument", "user_ids must be an array of strings",
                            "user_ids"));
          return;
        }
        have_ids = true;
      } else if (field.key == "fields") {
        std::string_view list;
        std::optional<uint32_t> parsed;
        if (!field.value.get_string().get(list)) parsed = ParseSections(list);
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
      respond(JsonError(400, "invalid_argument", "user_ids must list at least one user id",
                        "user_ids"));
      return;
    }
    if (!unknown.empty()) {
      respond(JsonError(400, "invalid_argument",
                        "unknown field '" + unknown + "' (expected user_ids, fields)", unknown));
      return;
    }
    if (ids.size() > api->config_.max_batch_get) {
      respond(JsonError(400, "too_many_users",
                        std::to_string(ids.size()) + " user ids; at most " +
                            std::to_string(api->config_.max_batch_get) + " per call",
                        "user_ids"));
      return;
    }
    JsonWriter w;
    w.BeginObject();
    w.Key("profiles").BeginArray();
    std::vector<std::string_view> missing;
    for (auto v : ids) {
      std::string_view id;
      if (v.get_string().get(id)) {
        respond(
            JsonError(400, "invalid_argument", "user_ids must be an array of strings", "user_ids"));
        return;
      }
      std::optional<std::string> json = engine->ProfileJson(id, sections);
      if (json) {
        w.Raw(*json);
      } else {
        missing.push_back(id);
      }
    }
    w.EndArray();
    w.Key("not_found").BeginArray();
    for (std::string_view id : missing) w.String(id);
    w.EndArray();
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  }

  // ---- recommendations ---------------------------------------------------------------------

  // -- audiences (serve/audience_routes.h) and the dashboard --

#define PERSONA_AUDIENCE_ROUTE(name, method)                                   \
  void name(const HttpRequest& req, const RouteMatch& m, Responder& respond) { \
    audiences->method(req, m, respond);                                        \
  }
  PERSONA_AUDIENCE_ROUTE(AudienceFields, Fields)
  PERSONA_AUDIENCE_ROUTE(AudienceQuery, Query)
  PERSONA_AUDIENCE_ROUTE(AudienceReport, Report)
  PERSONA_AUDIENCE_ROUTE(AudienceExport, ExportCondition)
  PERSONA_AUDIENCE_ROUTE(AudienceCreate, Create)
  PERSONA_AUDIENCE_ROUTE(AudienceList, List)
  PERSONA_AUDIENCE_ROUTE(AudienceGet, Get)
  PERSONA_AUDIENCE_ROUTE(AudienceDelete, Delete)
  PERSONA_AUDIENCE_ROUTE(AudienceMembers, Members)
  PERSONA_AUDIENCE_ROUTE(AudienceExportSaved, ExportSaved)
  PERSONA_AUDIENCE_ROUTE(AudienceReportSaved, ReportSaved)
  PERSONA_AUDIENCE_ROUTE(AudienceChanges, Changes)
#undef PERSONA_AUDIENCE_ROUTE

  void Dashboard(const HttpRequest& req, const RouteMatch&, Responder& respond) {
    std::optional<HttpResponse> r = dashboard.Get(req.path, req.header("if-none-match"));
    if (!r) {
      respond(JsonError(404, "not_found", "no file " + std::string(req.path)));
      return;
    }
    respond(std::move(*r));
  }

  void CollectAudiences(MetricsWriter& w) {
    const AudienceRoutes::Counters c = audiences->counters();
    w.Counter("persona_audience_scans_total", "Audience scans (queries, exports, reports)", {},
              static_cast<double>(c.scans));
    w.Counter("persona_audience_scan_seconds_total", "Time spent in audience scans", {},
              c.scan_seconds);
    w.Counter("persona_audience_profiles_scanned_total", "Profiles visited by audience scans", {},
              static_cast<double>(c.profiles_scanned));
    w.Counter("persona_audience_invalid_conditions_total",
              "Audience conditions refused with a parse or type error", {},
              static_cast<double>(c.invalid_conditions));
    w.Gauge("persona_audience_long_polls", "Change-stream long-polls waiting", {},
            static_cast<double>(c.long_polls_waiting));
    if (SavedAudiences* saved = audiences->saved()) {
      // Prometheus text keeps a family's samples together: one loop per family.
      const std::vector<SavedAudienceInfo> list = saved->List();
      for (const SavedAudienceInfo& a : list) {
        w.Gauge("persona_audience_size", "Members of a saved audience", {{"audience", a.id}},
                static_cast<double>(a.size));
      }
      for (const SavedAudienceInfo& a : list) {
        for (const bool enter : {true, false}) {
          w.Counter("persona_audience_changes_total",
                    "Enter/exit transitions of a saved audience since start",
                    {{"audience", a.id}, {"change", enter ? "enter" : "exit"}},
                    static_cast<double>(enter ? a.entered : a.exited));
        }
      }
    }
  }

  bool PredictorReady(Responder& respond) {
    if (predictor != nullptr) return true;
    respond(JsonError(503, "unavailable", "predictions are not enabled on this server"));
    return false;
  }

  void GetPredictions(const HttpRequest&, const RouteMatch& m, Responder& respond) {
    if (!PredictorReady(respond)) return;
    std::optional<std::string> json = predictor->PredictionsJson(m.id);
    if (!json) {
      respond(JsonError(404, "not_found", "no profile for user '" + m.id + "'"));
      return;
    }
    respond(JsonOk(200, std::move(*json)));
  }

  void GetSegments(const HttpRequest&, const RouteMatch&, Responder& respond) {
    if (!PredictorReady(respond)) return;
    // Sizes come from a scan of all profiles (cached for a few seconds): off the I/O thread.
    Post([this, respond] { respond(JsonOk(200, predictor->SegmentsJson())); });
  }

  void GetModels(const HttpRequest&, const RouteMatch&, Responder& respond) {
    if (!PredictorReady(respond)) return;
    respond(JsonOk(200, predictor->ModelsJson()));
  }

  void GetForecast(const HttpRequest& req, const RouteMatch&, Responder& respond) {
    if (!PredictorReady(respond)) return;
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
                          "horizon: expected an integer from 1 to 720, got '" + *v + "'",
                          "horizon"));
        return;
      }
      horizon = static_cast<int>(*h);
    }
    auto json = predictor->ForecastJson(category, period, horizon, metric);
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

  bool RecommenderReady(Responder& respond) {
    if (recommender != nullptr) return true;
    respond(JsonError(503, "unavailable", "recommendations are not enabled on this server"));
    return false;
  }

  // Reads ?k= (default 10) into *k; answers 400 and returns false when it is malformed.
  static bool ReadK(const QueryParams& params, uint32_t max_k, uint32_t* k, Responder& respond) {
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

  void GetRecommendations(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
    if (!RecommenderReady(respond)) return;
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
    if (!ReadK(*params, recommender->config().max_k, &r.k, respond)) return;
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
    auto result = recommender->Recommend(r);
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

  void GetSimilarItems(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
    if (!RecommenderReady(respond)) return;
    auto params = ParseQuery(req.query);
    if (!params.ok()) {
      respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
      return;
    }
    uint32_t k;
    if (!ReadK(*params, recommender->config().max_k, &k, respond)) return;
    auto similar = recommender->SimilarItems(m.id, k);
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

  void GetTrending(const HttpRequest& req, const RouteMatch&, Responder& respond) {
    if (!RecommenderReady(respond)) return;
    auto params = ParseQuery(req.query);
    if (!params.ok()) {
      respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
      return;
    }
    uint32_t k;
    if (!ReadK(*params, recommender->config().max_k, &k, respond)) return;
    std::string category;
    if (auto v = params->Get("category")) category = *v;
    auto top = recommender->TrendingItems(category, k);
    if (!top.ok()) {
      if (absl::IsNotFound(top.status())) {
        respond(JsonError(404, "not_found", std::string(top.status().message()), "category"));
      } else {
        respond(StatusError(top.status()));
      }
      return;
    }
    const ItemCatalog& catalog = recommender->catalog();
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

  void GetStats(const HttpRequest&, const RouteMatch&, Responder& respond) {
    // Walks every profile for memory figures: off the I/O thread.
    Post([this, respond] {
      std::string json = EngineStatsJson(*engine);
      if (recommender != nullptr && !json.empty() && json.back() == '}') {
        json.pop_back();
        json += ",\"recommend\":";
        json += recommender->StatsJson();
        json += '}';
      }
      respond(JsonOk(200, std::move(json)));
    });
  }

  void Healthz(const HttpRequest&, const RouteMatch&, Responder& respond) {
    respond(JsonOk(200, "{\"status\":\"ok\"}"));
  }

  void Readyz(const HttpRequest&, const RouteMatch&, Responder& respond) {
    if (!api->ready_.load()) {
      HttpResponse r = JsonError(503, "unavailable", "starting or shutting down");
      r.headers.emplace_back("Retry-After", "1");
      respond(std::move(r));
      return;
    }
    if (absl::Status h = engine->health(); !h.ok()) {
      respond(JsonError(503, "unavailable", "storage error: " + std::string(h.message())));
      return;
    }
    respond(JsonOk(200, "{\"status\":\"ready\"}"));
  }

  void Metrics(const HttpRequest&, const RouteMatch&, Responder& respond) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = api->metrics_->Render();
    respond(std::move(r));
  }

  void AdminCheckpoint(const HttpRequest&, const RouteMatch&, Responder& respond) {
    Post([this, respond] {
      const auto start = Clock::now();
      if (absl::Status s = engine->Checkpoint(); !s.ok()) {
        respond(StatusError(s));
        return;
      }
      JsonWriter w;
      w.BeginObject();
      w.Key("partitions").Uint(engine->partitions());
      w.Key("duration_ms")
          .Double(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      w.EndObject();
      respond(JsonOk(200, w.Take()));
    });
  }

  void AdminReload(const HttpRequest&, const RouteMatch&, Responder& respond) {
    Post([this, respond] {
      std::vector<std::string> reloaded;
      if (absl::Status s = engine->ReloadTagRules(); !s.ok()) {
        respond(JsonError(400, "invalid_config", "tag rules: " + std::string(s.message())));
        return;
      }
      reloaded.push_back("tag_rules");  // re-read, or still none when no file is configured
      if (!api->config_path_.empty()) {
        ServeConfig fresh = api->config_;
        if (absl::Status s = LoadServeConfigFile(api->config_path_, &fresh); !s.ok()) {
          respond(JsonError(400, "invalid_config", std::string(s.message())));
          return;
        }
        auto built = BuildKeys(fresh);
        if (!built.ok()) {
          respond(JsonError(400, "invalid_config", std::string(built.status().message())));
          return;
        }
        keys.store(std::move(*built));
        reloaded.push_back("api_keys");
      }
      if (predictor != nullptr) {
        if (absl::Status s = predictor->Reload(); !s.ok()) {
          respond(JsonError(400, "invalid_model", std::string(s.message())));
          return;
        }
        reloaded.push_back("predictions");
      }
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

  static absl::Status CheckUserId(std::string_view id) {
    if (id.empty()) return absl::InvalidArgumentError("the user id is empty");
    if (id.size() > 256) return absl::InvalidArgumentError("the user id is longer than 256 bytes");
    return absl::OkStatus();
  }

  static std::optional<size_t> ParseUint(std::string_view s) {
    if (s.empty() || s.size() > 9) return std::nullopt;
    size_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<size_t>(c - '0');
    }
    return v;
  }

  static absl::StatusOr<std::shared_ptr<const ApiKeys>> BuildKeys(const ServeConfig& config) {
    auto keys = std::make_shared<ApiKeys>();
    for (const ApiKeyConfig& k : config.api_keys) {
      auto scopes = ParseScopes(k.scopes);
      if (!scopes.ok()) {
        return absl::InvalidArgumentError("server.api_keys '" + k.name +
                                          "': " + std::string(scopes.status().message()));
      }
      if (absl::Status s = keys->Add(k.name, k.sha256, *scopes); !s.ok()) {
        return absl::InvalidArgumentError("server.api_keys '" + k.name +
                                          "': " + std::string(s.message()));
      }
    }
    return std::shared_ptr<const ApiKeys>(std::move(keys));
  }

  // -- metrics --

  void RegisterMetrics(MetricsRegistry& m) {
    std::vector<std::string> names = {"unmatched", "-"};
    for (const Route& r : routes) names.emplace_back(r.pattern);
    for (const std::string& name : names) {
      auto rm = std::make_unique<RouteMetrics>();
      rm->latency = &m.AddHistogram("persona_http_request_duration_seconds",
                                    "HTTP request latency from first byte to response written",
                                    Histogram::LatencyBounds(), {{"route", name}});
      route_metrics.emplace(name, std::move(rm));
    }
    m.AddCollector([this](MetricsWriter& w) { Collect(w); });
  }

  void ObserveExchange(const HttpExchange& x) {
    auto it = route_metrics.find(absl::string_view(x.route.data(), x.route.size()));
    if (it == route_metrics.end()) it = route_metrics.find("unmatched");
    RouteMetrics& rm = *it->second;
    rm.latency->Observe(std::chrono::duration<double>(x.duration).count());
    const size_t status = x.status >= 100 && x.status < 600 ? static_cast<size_t>(x.status) : 0;
    Counter* c = rm.by_status[status].load(std::memory_order_acquire);
    if (c == nullptr) {
      // First answer with this status on this route: registration is idempotent and locked.
      c = &api->metrics_->AddCounter("persona_http_requests_total",
                                     "HTTP requests by route and status",
                                     {{"route", it->first}, {"status", std::to_string(x.status)}});
      rm.by_status[status].store(c, std::memory_order_release);
    }
    c->Add();
  }

  void CollectRecommendations(MetricsWriter& w) {
    const RecommendConfig& config = recommender->config();
    for (size_t i = 0; i <= config.variants.size(); ++i) {
      const std::string name = i < config.variants.size() ? config.variants[i].name : "(unknown)";
      const Recommender::VariantCounters& c = recommender->counters(i);
      w.Counter("persona_recommendations_total", "Recommendation responses served, by A/B variant",
                {{"variant", name}}, static_cast<double>(c.responses.load()));
    }
    for (size_t i = 0; i <= config.variants.size(); ++i) {
      const std::string name = i < config.variants.size() ? config.variants[i].name : "(unknown)";
      const Recommender::VariantCounters& c = recommender->counters(i);
      constexpr std::string_view kHelp =
          "Events carrying a rec_id, by the variant that served it (click = view or click)";
      w.Counter("persona_rec_attributed_events_total", kHelp,
                {{"variant", name}, {"type", "click"}}, static_cast<double>(c.clicks.load()));
      w.Counter("persona_rec_attributed_events_total", kHelp, {{"variant", name}, {"type", "cart"}},
                static_cast<double>(c.carts.load()));
      w.Counter("persona_rec_attributed_events_total", kHelp,
                {{"variant", name}, {"type", "purchase"}}, static_cast<double>(c.purchases.load()));
    }
    for (size_t i = 0; i < config.variants.size(); ++i) {
      const Recommender::VariantCounters& c = recommender->counters(i);
      const double responses = static_cast<double>(c.responses.load());
      w.Gauge("persona_rec_ctr", "Attributed clicks per recommendation response since start",
              {{"variant", config.variants[i].name}},
              responses > 0 ? static_cast<double>(c.clicks.load()) / responses : 0.0);
    }
    for (size_t i = 0; i < config.variants.size(); ++i) {
      const Recommender::VariantCounters& c = recommender->counters(i);
      const double responses = static_cast<double>(c.responses.load());
      w.Gauge("persona_rec_conversion",
              "Attributed purchases per recommendation response since start",
              {{"variant", config.variants[i].name}},
              responses > 0 ? static_cast<double>(c.purchases.load()) / responses : 0.0);
    }
    for (size_t i = 0; i < config.variants.size(); ++i) {
      const Recommender::VariantCounters& c = recommender->counters(i);
      w.Counter("persona_rec_revenue_total", "Revenue of purchases carrying a rec_id",
                {{"variant", config.variants[i].name}},
                static_cast<double>(c.revenue_cents.load()) / 100.0);
    }
    w.Gauge("persona_rec_catalog_items", "Items known to the recommenders", {},
            static_cast<double>(recommender->catalog().size()));
    auto model = recommender->model();
    w.Gauge("persona_rec_model_info", "The SASRec model in service (1), labelled by version",
            {{"version", model ? model->version() : "none"}}, model ? 1.0 : 0.0);
  }

  void CollectPredictions(MetricsWriter& w) {
    const Predictor::Counters c = predictor->counters();
    for (int i = 0; i < kAnomalyFlagCount; ++i) {
      w.Gauge("persona_anomaly_flagged_users",
              "Users currently flagged as anomalous (bots, scrapers), by flag",
              {{"flag", AnomalyFlagName(static_cast<uint8_t>(1u << i))}},
              static_cast<double>(c.flagged_users[i]));
    }
    w.Counter("persona_anomaly_flagged_total", "Users newly flagged as anomalous since start", {},
              static_cast<double>(c.flagged_transitions));
    w.Counter("persona_reviews_scored_total", "Reviews scored for sentiment since start", {},
              static_cast<double>(c.reviews_scored));
    w.Counter("persona_segment_assignments_total", "Segment assignments at update time", {},
              static_cast<double>(c.segment_assignments));
    if (recommender != nullptr) {
      w.Counter("persona_rec_flagged_events_skipped_total",
                "Events of anomaly-flagged users kept out of trending and item-CF", {},
                static_cast<double>(recommender->flagged_events()));
    }
  }

  void Collect(MetricsWriter& w) {
    if (recommender != nullptr) CollectRecommendations(w);
    if (predictor != nullptr) CollectPredictions(w);
    CollectAudiences(w);
    const std::vector<PartitionStats> stats = engine->Stats();
    for (int t = 0; t < kEventTypeCount; ++t) {
      uint64_t acc = 0, dup = 0, rej = 0;
      for (const auto& s : stats) {
        acc += s.events_by_type[t];
        dup += s.duplicates_by_type[t];
        rej += s.rejected_by_type[t];
      }
      const std::string type(EventTypeName(static_cast<EventType>(t)));
      constexpr std::string_view kHelp =
          "Events by type and outcome (accepted: durable and applied, counted across restarts; "
          "duplicate and rejected: since start; type \"unparsed\": rejected before a type was "
          "known)";
      w.Counter("persona_events_total", kHelp, {{"type", type}, {"outcome", "accepted"}}, acc);
      w.Counter("persona_events_total", kHelp, {{"type", type}, {"outcome", "duplicate"}}, dup);
      w.Counter("persona_events_total", kHelp, {{"type", type}, {"outcome", "rejected"}}, rej);
      if (t == kEventTypeCount - 1) {
        w.Counter("persona_events_total", kHelp, {{"type", "unparsed"}, {"outcome", "rejected"}},
                  http_parse_rejected.load(std::memory_order_relaxed));
      }
    }
    for (const auto& s : stats) {
      w.Gauge("persona_partition_queue_events", "Events waiting in the partition's ingest queue",
              {{"partition", std::to_string(s.partition)}}, static_cast<double>(s.queued_events));
    }
    for (const auto& s : stats) {
      w.Gauge("persona_partition_lag_seconds",
              "Age of the oldest request waiting in the partition's queue",
              {{"partition", std::to_string(s.partition)}}, s.lag_seconds);
    }
    for (const auto& s : stats) {
      w.Gauge("persona_partition_watermark_seconds", "Event-time watermark of the partition",
              {{"partition", std::to_string(s.partition)}},
              static_cast<double>(s.watermark_ms) / 1000.0);
    }
    for (const auto& s : stats) {
      w.Gauge("persona_log_bytes",
              "Bytes of the partition's retained event log (before RocksDB compression)",
              {{"partition", std::to_string(s.partition)}}, static_cast<double>(s.log_bytes));
    }
    for (const auto& s : stats) {
      w.Counter("persona_log_trimmed_segments_total",
                "Log segments deleted by retention since start",
                {{"partition", std::to_string(s.partition)}},
                static_cast<double>(s.log_trimmed_segments));
    }
    uint64_t profiles = 0, checkpoints = 0;
    double checkpoint_seconds = 0, last_checkpoint = 0;
    for (const auto& s : stats) {
      profiles += s.profiles;
      checkpoints += s.checkpoints;
      checkpoint_seconds += s.checkpoint_seconds_total;
      last_checkpoint = std::max(last_checkpoint, s.last_checkpoint_seconds);
    }
    w.Gauge("persona_profiles", "Profiles held in memory", {}, static_cast<double>(profiles));
    w.Gauge("persona_memory_bytes", "Resident memory of the process", {},
            static_cast<double>(ResidentBytes()));
    w.Counter("persona_checkpoint_duration_seconds_sum",
              "Total seconds spent writing checkpoints (all partitions, since start)", {},
              checkpoint_seconds);
    w.Counter("persona_checkpoint_duration_seconds_count", "Checkpoints written since start", {},
              static_cast<double>(checkpoints));
    w.Gauge("persona_checkpoint_last_duration_seconds",
            "Duration of the slowest partition's most recent checkpoint", {}, last_checkpoint);
    w.Gauge("persona_dead_letters", "Dead letters kept for inspection", {},
            static_cast<double>(DeadLetterCount()));
    if (connections) {
      w.Gauge("persona_http_connections", "Open HTTP connections", {},
              static_cast<double>(connections()));
    }
  }

  // The count is a scan of the dead-letter keys, so scrapes reuse it for a few seconds.
  uint64_t DeadLetterCount() {
    std::lock_guard<std::mutex> lock(dead_letter_mu);
    const int64_t now = WallMs();
    if (now - dead_letter_count_at_ms >= 10000) {
      auto n = engine->store().CountDeadLetters();
      if (n.ok()) dead_letter_count = *n;
      dead_letter_count_at_ms = now;
    }
    return dead_letter_count;
  }
};

// ---- Api ----------------------------------------------------------------------------------------

Api::Api(const ServeConfig& config, std::string config_path)
    : config_(config),
      config_path_(std::move(config_path)),
      metrics_(std::make_unique<MetricsRegistry>()) {}

Api::~Api() = default;

absl::StatusOr<std::unique_ptr<Api>> Api::Create(Engine* engine, const ServeConfig& config,
                                                 std::string config_path, Recommender* recommender,
                                                 Predictor* predictor, SavedAudiences* audiences) {
  std::unique_ptr<Api> api(new Api(config, std::move(config_path)));
  api->routes_ = std::make_unique<Routes>(api.get(), engine, recommender, predictor);
  api->routes_->audiences = std::make_unique<AudienceRoutes>(engine, predictor, audiences);
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
  auto keys = Routes::BuildKeys(config);
  if (!keys.ok()) return keys.status();
  api->routes_->keys.store(std::move(*keys));
  auto log = AccessLog::Open(config.access_log);
  if (!log.ok()) return log.status();
  api->access_log_ = std::move(*log);
  api->routes_->RegisterMetrics(*api->metrics_);
  return api;
}

void Api::SetConnectionsSource(std::function<uint64_t()> source) {
  routes_->connections = std::move(source);
}

bool Api::auth_enabled() const { return routes_->keys.load()->enabled(); }

void Api::Handle(const HttpRequest& request, Responder respond) {
  routes_->Dispatch(request, respond);
}

void Api::Observe(const HttpExchange& exchange) {
  routes_->ObserveExchange(exchange);
  if (access_log_) access_log_->Write(exchange, exchange.principal);
}

}  // namespace persona::serve
