#include "serve/audience_routes.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>

#include "common/json_writer.h"
#include "common/time_util.h"
#include "kafka/cluster_exchange.h"
#include "serve/api_context.h"
#include "serve/http_forwarder.h"
#include "serve/json_response.h"
#include "simdjson.h"

namespace persona::serve {
namespace {

constexpr size_t kMaxSample = AudienceScanner::kMaxSample;
constexpr size_t kMaxPageSize = AudienceScanner::kMaxPageSize;
constexpr size_t kMaxChangesLimit = 10'000;
constexpr int64_t kMaxWaitMs = 30'000;

// A condition that does not compile: 400 invalid_condition with the column of the problem, so
// that an editor can point at it.
HttpResponse ConditionError(const absl::Status& s) {
  const std::string message(s.message());
  int64_t column = 0;
  if (message.rfind("column ", 0) == 0) {
    const char* begin = message.data() + 7;
    std::from_chars(begin, message.data() + message.size(), column);
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("error").String("invalid_condition");
  w.Key("detail").String(message);
  w.Key("field").String("condition");
  if (column > 0) w.Key("column").Int(column);
  w.EndObject();
  HttpResponse r;
  r.status = 400;
  r.body = w.Take();
  return r;
}

HttpResponse BadRequest(std::string_view detail, std::string_view field = {}) {
  return JsonError(400, "invalid_argument", detail, field);
}

// A scan's failure: 400 for input it refused (a bad cursor, field or limit), else the engine's.
HttpResponse ScanError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ? BadRequest(std::string(s.message()))
                                                        : StatusError(s);
}

// Parses a non-negative integer query parameter bounded by `max`; nullopt (with `respond`
// called) when malformed.
std::optional<uint64_t> UintParam(const QueryParams& params, std::string_view key,
                                  uint64_t fallback, uint64_t max, Responder& respond) {
  std::optional<std::string> v = params.Get(key);
  if (!v) return fallback;
  uint64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size() || out > max) {
    respond(BadRequest(std::string(key) + " must be an integer in [0, " + std::to_string(max) +
                           "], not '" + *v + "'",
                       key));
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> SplitFields(std::string_view list) {
  std::vector<std::string> out;
  // Commas inside a call argument (attribute("a,b")) belong to the argument.
  std::string current;
  bool quoted = false;
  for (char c : list) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
      continue;
    }
    if (!(c == ' ' && current.empty())) current.push_back(c);
  }
  while (!current.empty() && current.back() == ' ') current.pop_back();
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

void WriteInfo(JsonWriter& w, const SavedAudienceInfo& a) {
  w.BeginObject();
  w.Key("id").String(a.id);
  w.Key("name").String(a.name);
  w.Key("description").String(a.description);
  w.Key("condition").String(a.condition);
  w.Key("created_at").String(FormatIsoTime(a.created_ms));
  w.Key("created_at_ms").Int(a.created_ms);
  w.Key("size").Uint(a.size);
  w.Key("entered").Uint(a.entered);
  w.Key("exited").Uint(a.exited);
  w.Key("last_seq").Uint(a.last_seq);
  w.Key("active").Bool(a.active);
  if (!a.error.empty()) w.Key("error").String(a.error);
  w.EndObject();
}

std::string InfoJson(const SavedAudienceInfo& a) {
  JsonWriter w;
  WriteInfo(w, a);
  return w.Take();
}

// The members of a JSON request body, parsed once.
struct Body {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
};

// Reads the `condition` member of a body into `text`; false after answering 400.
bool ReadCondition(simdjson::dom::element value, std::optional<std::string>& text,
                   Responder& respond) {
  std::string_view s;
  if (value.get_string().get(s)) {
    respond(BadRequest("condition must be a string", "condition"));
    return false;
  }
  text = std::string(s);
  return true;
}

// Parses `body` as a JSON object; on failure responds 400 and returns false.
bool ParseObject(std::string_view text, Body& body, Responder& respond) {
  simdjson::dom::element doc;
  if (auto error = body.parser.parse(text.data(), text.size()).get(doc); error) {
    respond(JsonError(400, "malformed_json", simdjson::error_message(error)));
    return false;
  }
  if (doc.get_object().get(body.object)) {
    respond(BadRequest("expected a JSON object"));
    return false;
  }
  return true;
}

}  // namespace

AudienceRoutes::AudienceRoutes(Engine* engine, const Predictor* predictor, SavedAudiences* saved,
                               ApiContext* context)
    : engine_(engine),
      predictor_(predictor),
      saved_(saved),
      context_(context),
      scanner_(engine, predictor) {}

bool AudienceRoutes::OtherOwners(const HttpRequest& req, Responder& respond,
                                 std::vector<std::string>* owners) {
  owners->clear();
  ClusterExchange* cluster = context_ != nullptr ? context_->cluster() : nullptr;
  if (cluster == nullptr || ApiContext::WasForwarded(req)) return true;
  std::set<std::string> urls;
  for (uint32_t p = 0; p < engine_->partitions(); ++p) {
    if (!engine_->foreign(p)) continue;
    std::optional<std::string> owner = cluster->OwnerUrl(p);
    if (!owner) {
      HttpResponse r = JsonError(503, "owner_unknown",
                                 "partition " + std::to_string(p) +
                                     " is owned by an instance this one cannot reach yet (the "
                                     "group is rebalancing); retry shortly");
      r.headers.emplace_back("Retry-After", "1");
      respond(std::move(r));
      return false;
    }
    urls.insert(*owner);
  }
  owners->assign(urls.begin(), urls.end());
  return true;
}

AudienceRoutes::~AudienceRoutes() = default;

void AudienceRoutes::CountScan(double seconds, uint64_t scanned) {
  scans_.fetch_add(1, std::memory_order_relaxed);
  scan_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  profiles_scanned_.fetch_add(scanned, std::memory_order_relaxed);
}

AudienceRoutes::Counters AudienceRoutes::counters() const {
  Counters c;
  c.scans = scans_.load(std::memory_order_relaxed);
  c.scan_seconds = static_cast<double>(scan_micros_.load(std::memory_order_relaxed)) / 1e6;
  c.profiles_scanned = profiles_scanned_.load(std::memory_order_relaxed);
  c.invalid_conditions = invalid_conditions_.load(std::memory_order_relaxed);
  c.long_polls_waiting = long_polls_waiting_->load(std::memory_order_relaxed);
  return c;
}

std::shared_ptr<AudienceCondition> AudienceRoutes::CompileCondition(
    const std::optional<std::string>& text, Responder& respond) {
  if (!text || text->empty()) {
    respond(BadRequest("condition is required", "condition"));
    return nullptr;
  }
  auto condition = AudienceCondition::Compile(*text);
  if (!condition.ok()) {
    invalid_conditions_.fetch_add(1, std::memory_order_relaxed);
    respond(ConditionError(condition.status()));
    return nullptr;
  }
  return std::make_shared<AudienceCondition>(std::move(*condition));
}

std::optional<int> AudienceRoutes::SavedBit(const RouteMatch& m, Responder& respond) {
  if (!SavedReady(respond)) return std::nullopt;
  std::optional<int> bit = saved_->BitOf(m.id);
  if (!bit) respond(JsonError(404, "not_found", "no saved audience '" + m.id + "'"));
  return bit;
}

bool AudienceRoutes::SavedReady(Responder& respond) {
  if (saved_ != nullptr) return true;
  respond(JsonError(503, "unavailable", "saved audiences are not enabled on this server"));
  return false;
}

void AudienceRoutes::Fields(const HttpRequest&, const RouteMatch&, Responder& respond) {
  JsonWriter w;
  w.BeginObject();
  w.Key("fields").BeginArray();
  for (const AudienceFieldInfo& f : AudienceFieldList()) {
    w.BeginObject();
    w.Key("name").String(f.name);
    w.Key("type").String(VarTypeName(f.type));
    w.Key("group").String(f.group);
    w.Key("description").String(f.description);
    w.EndObject();
  }
  w.EndArray();
  w.Key("functions").BeginArray();
  for (const AudienceFunctionInfo& f : AudienceFunctionList()) {
    w.BeginObject();
    w.Key("name").String(f.name);
    w.Key("argument").String(f.argument);
    w.Key("type").String(VarTypeName(f.type));
    w.Key("description").String(f.description);
    w.EndObject();
  }
  w.EndArray();
  w.Key("tags").BeginArray();
  if (auto rules = engine_->tag_rules()) {
    for (const std::string& name : rules->names()) w.String(name);
  }
  w.EndArray();
  w.Key("operators").BeginArray();
  for (std::string_view op :
       {"and", "or", "not", "<", "<=", ">", ">=", "=", "!=", "in", "not in", "+", "-", "*", "/"}) {
    w.String(op);
  }
  w.EndArray();
  w.Key("example").String(
      "interest.category(\"electronics\") > 0.3 and rfm.monetary_30d >= 500 and "
      "lifecycle = \"dormant\" and predictions.churn > 0.7 and not tag(\"bot\")");
  w.EndObject();
  respond(JsonOk(200, w.Take()));
}

void AudienceRoutes::Query(const HttpRequest& req, const RouteMatch&, Responder& respond) {
  Body body;
  if (!ParseObject(req.body, body, respond)) return;
  std::optional<std::string> condition_text;
  AudienceQueryOptions options;
  for (auto field : body.object) {
    const std::string_view key = field.key;
    if (key == "condition") {
      if (!ReadCondition(field.value, condition_text, respond)) return;
    } else if (key == "sample" || key == "page_size") {
      uint64_t v = 0;
      const uint64_t max = key == "sample" ? kMaxSample : kMaxPageSize;
      if (field.value.get_uint64().get(v) || v > max) {
        respond(BadRequest(
            std::string(key) + " must be an integer in [0, " + std::to_string(max) + "]", key));
        return;
      }
      (key == "sample" ? options.sample : options.page_size) = v;
    } else if (key == "cursor") {
      std::string_view cursor;
      if (field.value.get_string().get(cursor)) {
        respond(BadRequest("cursor must be a string (next_cursor of the previous page)", "cursor"));
        return;
      }
      options.cursor = std::string(cursor);
    } else if (key == "seed") {
      if (field.value.get_uint64().get(options.seed)) {
        respond(BadRequest("seed must be a non-negative integer", "seed"));
        return;
      }
    } else if (key == "fields") {
      simdjson::dom::array list;
      if (field.value.get_array().get(list)) {
        respond(BadRequest("fields must be an array of field names", "fields"));
        return;
      }
      for (auto item : list) {
        std::string_view name;
        if (item.get_string().get(name)) {
          respond(BadRequest("fields must be an array of field names", "fields"));
          return;
        }
        options.fields.emplace_back(name);
      }
    } else {
      respond(BadRequest("unknown member '" + std::string(key) +
                             "' (expected condition, sample, page_size, cursor, fields, seed)",
                         key));
      return;
    }
  }
  std::shared_ptr<AudienceCondition> shared = CompileCondition(condition_text, respond);
  if (shared == nullptr) return;
  if (auto fields = AudienceField::ParseAll(options.fields); !fields.ok()) {
    respond(BadRequest(std::string(fields.status().message()), "fields"));
    return;
  }
  std::vector<std::string> owners;
  if (!OtherOwners(req, respond, &owners)) return;
  if (!owners.empty()) {
    GatherQuery(req, shared, std::move(options), owners, respond);
    return;
  }
  RunScan([this, shared, options = std::move(options), respond]() {
    AudienceSelector selector;
    selector.condition = shared.get();
    auto result = scanner_.Query(selector, options);
    if (!result.ok()) {
      respond(ScanError(result.status()));
      return;
    }
    CountScan(result->took_ms / 1000.0, result->scanned);
    JsonWriter w;
    w.BeginObject();
    w.Key("condition").String(shared->text());
    result->WriteMembers(w);
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  });
}

namespace {

// One condition query answered by every instance of a cluster for the partitions it owns, all
// with the same seed: counts add, the page is the page_size first ids of the union in the stable
// order, and the sample the `sample` members of smallest priority (exactly what one instance
// holding every partition would answer).
struct QueryGather {
  Responder respond;
  std::string condition;
  size_t sample = 0, page_size = 0;
  uint64_t seed = 0;
  std::atomic<size_t> pending{0};
  std::mutex mu;  // guards what follows
  uint64_t count = 0, scanned = 0;
  double took_ms = 0;
  int64_t as_of_ms = 0;
  std::vector<std::string> ids;
  bool more = false;
  std::vector<std::pair<std::string, std::string>> rows;  // user id, the row's JSON object
  std::optional<HttpResponse> error;
  size_t instances = 0;

  void AddLocal(const AudienceQueryResult& r) {
    std::vector<std::pair<std::string, std::string>> local;
    for (const AudienceRow& row : r.sample) {
      JsonWriter w;
      r.WriteRow(w, row);
      local.emplace_back(row.user_id, w.Take());
    }
    std::lock_guard lock(mu);
    ++instances;
    count += r.count;
    scanned += r.scanned;
    took_ms = std::max(took_ms, r.took_ms);
    as_of_ms = std::max(as_of_ms, r.as_of_ms);
    ids.insert(ids.end(), r.ids.begin(), r.ids.end());
    more |= !r.next_cursor.empty();
    for (auto& row : local) rows.push_back(std::move(row));
  }

  void AddRemote(const HttpResponse& r) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::lock_guard lock(mu);
    if (r.status != 200 || parser.parse(r.body).get(doc)) {
      if (!error) error = r.status != 200 ? r : JsonError(502, "bad_gateway", "unreadable answer");
      return;
    }
    ++instances;
    uint64_t u = 0;
    if (!doc["count"].get_uint64().get(u)) count += u;
    if (!doc["scanned"].get_uint64().get(u)) scanned += u;
    double d = 0;
    if (!doc["took_ms"].get_double().get(d)) took_ms = std::max(took_ms, d);
    int64_t at = 0;
    if (!doc["as_of_ms"].get_int64().get(at)) as_of_ms = std::max(as_of_ms, at);
    simdjson::dom::array list;
    if (!doc["ids"].get_array().get(list)) {
      for (auto v : list) {
        std::string_view id;
        if (!v.get_string().get(id)) ids.emplace_back(id);
      }
    }
    std::string_view cursor;
    more |= !doc["next_cursor"].get_string().get(cursor);
    if (!doc["sample"].get_array().get(list)) {
      for (auto v : list) {
        std::string_view id;
        if (v["user_id"].get_string().get(id)) continue;
        rows.emplace_back(std::string(id), simdjson::minify(v));
      }
    }
  }

  void Finish() {
    if (error) {
      respond(std::move(*error));
      return;
    }
    std::sort(ids.begin(), ids.end(), AudienceOrderLess);
    if (ids.size() > page_size) {
      ids.resize(page_size);
      more = true;
    }
    std::sort(rows.begin(), rows.end(), [this](const auto& a, const auto& b) {
      return AudienceSamplePriority(a.first, seed) < AudienceSamplePriority(b.first, seed);
    });
    if (rows.size() > sample) rows.resize(sample);
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return AudienceOrderLess(a.first, b.first); });
    AudienceQueryResult summary;
    summary.count = count;
    summary.scanned = scanned;
    summary.took_ms = took_ms;
    summary.as_of_ms = as_of_ms;
    summary.ids = std::move(ids);
    if (more && !summary.ids.empty()) summary.next_cursor = AudienceCursor(summary.ids.back());
    JsonWriter w;
    w.BeginObject();
    w.Key("condition").String(condition);
    summary.WriteSummary(w);
    w.Key("sample").BeginArray();
    for (const auto& [id, json] : rows) w.Raw(json);
    w.EndArray();
    w.Key("instances").Uint(instances);
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  }
};

}  // namespace

void AudienceRoutes::GatherQuery(const HttpRequest& req, std::shared_ptr<AudienceCondition> shared,
                                 AudienceQueryOptions options,
                                 const std::vector<std::string>& owners, Responder& respond) {
  if (options.seed == 0) options.seed = AudienceRandomSeed();
  auto gather = std::make_shared<QueryGather>();
  gather->respond = respond;
  gather->condition = shared->text();
  gather->sample = options.sample;
  gather->page_size = options.page_size;
  gather->seed = options.seed;
  gather->pending.store(owners.size() + 1);
  JsonWriter body;
  body.BeginObject();
  body.Key("condition").String(shared->text());
  body.Key("sample").Uint(options.sample);
  body.Key("page_size").Uint(options.page_size);
  if (!options.cursor.empty()) body.Key("cursor").String(options.cursor);
  body.Key("seed").Uint(options.seed);
  body.Key("fields").BeginArray();
  for (const std::string& f : options.fields) body.String(f);
  body.EndArray();
  body.EndObject();
  const std::string text = body.Take();
  for (const std::string& owner : owners) {
    context_->forwarder()->Forward(owner, "POST", "/v1/audiences:query",
                                   context_->ForwardHeaders(req), text, std::chrono::seconds(60),
                                   [gather](HttpResponse r) {
                                     gather->AddRemote(r);
                                     if (gather->pending.fetch_sub(1) == 1) gather->Finish();
                                   });
  }
  RunScan([this, shared, options = std::move(options), gather]() {
    AudienceSelector selector;
    selector.condition = shared.get();
    auto result = scanner_.Query(selector, options);
    if (!result.ok()) {
      std::lock_guard lock(gather->mu);
      if (!gather->error) gather->error = ScanError(result.status());
    } else {
      CountScan(result->took_ms / 1000.0, result->scanned);
      gather->AddLocal(*result);
    }
    if (gather->pending.fetch_sub(1) == 1) gather->Finish();
  });
}

void AudienceRoutes::ReportOf(std::shared_ptr<AudienceCondition> condition, int saved_bit,
                              ReportOptions options, Responder& respond) {
  RunScan([this, condition, saved_bit, options, respond]() {
    AudienceSelector selector;
    selector.condition = condition.get();
    selector.saved_bit = saved_bit;
    const auto start = std::chrono::steady_clock::now();
    auto report = scanner_.Report(selector, options);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!report.ok()) {
      respond(ScanError(report.status()));
      return;
    }
    CountScan(seconds, report->scanned);
    JsonWriter w;
    report->WriteJson(w);
    respond(JsonOk(200, w.Take()));
  });
}

// Reads the report options of a body or a query string into `options`; false after responding.
static bool ReportOptionFromText(std::string_view key, std::string_view value,
                                 ReportOptions& options, Responder& respond) {
  double number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  const bool ok = ec == std::errc() && end == value.data() + value.size();
  if (key == "epsilon") {
    if (!ok || !(number > 0) || number > 100) {
      respond(BadRequest("epsilon must be a number in (0, 100]", "epsilon"));
      return false;
    }
    options.epsilon = number;
  } else if (key == "spend_clip") {
    if (!ok || !(number > 0)) {
      respond(BadRequest("spend_clip must be a positive number", "spend_clip"));
      return false;
    }
    options.spend_clip = number;
  } else if (key == "top") {
    if (!ok || number < 1 || number > 100 ||
        number != static_cast<double>(static_cast<int>(number))) {
      respond(BadRequest("top must be an integer in [1, 100]", "top"));
      return false;
    }
    options.top_categories = static_cast<size_t>(number);
  } else if (key == "seed") {
    if (!ok || number < 0) {
      respond(BadRequest("seed must be a non-negative integer", "seed"));
      return false;
    }
    options.seed = static_cast<uint64_t>(number);
  } else {
    respond(BadRequest(
        "unknown parameter '" + std::string(key) + "' (expected epsilon, spend_clip, top, seed)",
        key));
    return false;
  }
  return true;
}

void AudienceRoutes::Report(const HttpRequest& req, const RouteMatch&, Responder& respond) {
  Body body;
  if (!ParseObject(req.body, body, respond)) return;
  std::optional<std::string> condition_text;
  ReportOptions options;
  bool aggregates = false;
  for (auto field : body.object) {
    const std::string_view key = field.key;
    if (key == "condition") {
      if (!ReadCondition(field.value, condition_text, respond)) return;
      continue;
    }
    if (key == "aggregates" && ApiContext::WasForwarded(req)) {
      // Internal (a cluster's instance gathering a report): the exact sums of this instance's
      // partitions instead of the report.
      if (field.value.get_bool().get(aggregates)) {
        respond(BadRequest("aggregates must be true or false", key));
        return;
      }
      continue;
    }
    double number = 0;
    if (field.value.get_double().get(number)) {
      respond(BadRequest(std::string(key) + " must be a number", key));
      return;
    }
    if (!ReportOptionFromText(key, std::to_string(number), options, respond)) return;
  }
  std::shared_ptr<AudienceCondition> condition = CompileCondition(condition_text, respond);
  if (condition == nullptr) return;
  if (aggregates) {
    RunScan([this, condition, options, respond]() {
      AudienceSelector selector;
      selector.condition = condition.get();
      auto part = scanner_.Aggregate(selector, options);
      if (!part.ok()) {
        respond(ScanError(part.status()));
        return;
      }
      CountScan(part->took_ms / 1000.0, part->scanned);
      JsonWriter w;
      w.BeginObject();
      w.Key("aggregates");
      WriteAggregatesJson(w, part->aggregates);
      w.Key("scanned").Uint(part->scanned);
      w.Key("as_of_ms").Int(part->as_of_ms);
      w.Key("took_ms").Double(part->took_ms);
      w.EndObject();
      respond(JsonOk(200, w.Take()));
    });
    return;
  }
  std::vector<std::string> owners;
  if (!OtherOwners(req, respond, &owners)) return;
  if (!owners.empty()) {
    GatherReport(req, std::move(condition), options, owners, respond);
    return;
  }
  ReportOf(std::move(condition), -1, options, respond);
}

namespace {

// One report over every instance's partitions: each instance's exact sums, added, then made into
// the report once (the noise, when asked for, added once to the combined sums).
struct ReportGather {
  Responder respond;
  ReportOptions options;
  std::atomic<size_t> pending{0};
  std::mutex mu;  // guards what follows
  AudienceAggregates all;
  uint64_t scanned = 0;
  int64_t as_of_ms = 0;
  double took_ms = 0;
  size_t instances = 0;
  std::optional<HttpResponse> error;

  void Add(const AudienceAggregates& part, uint64_t part_scanned, int64_t at, double ms) {
    std::lock_guard lock(mu);
    all.Merge(part);
    scanned += part_scanned;
    as_of_ms = std::max(as_of_ms, at);
    took_ms = std::max(took_ms, ms);
    ++instances;
  }

  void AddRemote(const HttpResponse& r) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc, aggregates;
    if (r.status != 200 || parser.parse(r.body).get(doc) || doc["aggregates"].get(aggregates)) {
      std::lock_guard lock(mu);
      if (!error) error = r.status != 200 ? r : JsonError(502, "bad_gateway", "unreadable answer");
      return;
    }
    absl::StatusOr<AudienceAggregates> part = ParseAggregatesJson(simdjson::minify(aggregates));
    uint64_t n = 0;
    int64_t at = 0;
    double ms = 0;
    if (doc["scanned"].get_uint64().get(n)) n = 0;
    if (doc["as_of_ms"].get_int64().get(at)) at = 0;
    if (doc["took_ms"].get_double().get(ms)) ms = 0;
    if (!part.ok()) {
      std::lock_guard lock(mu);
      if (!error) error = JsonError(502, "bad_gateway", std::string(part.status().message()));
      return;
    }
    Add(*part, n, at, ms);
  }

  void Finish() {
    if (error) {
      respond(std::move(*error));
      return;
    }
    AudienceReport report = MakeAudienceReport(all, options);
    report.scanned = scanned;
    report.as_of_ms = as_of_ms;
    report.took_ms = took_ms;
    JsonWriter w;
    w.BeginObject();
    report.WriteMembers(w);
    w.Key("instances").Uint(instances);
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  }
};

}  // namespace

void AudienceRoutes::GatherReport(const HttpRequest& req,
                                  std::shared_ptr<AudienceCondition> condition,
                                  ReportOptions options, const std::vector<std::string>& owners,
                                  Responder& respond) {
  auto gather = std::make_shared<ReportGather>();
  gather->respond = respond;
  gather->options = options;
  gather->pending.store(owners.size() + 1);
  JsonWriter body;
  body.BeginObject();
  body.Key("condition").String(condition->text());
  body.Key("spend_clip").Double(options.spend_clip);
  body.Key("aggregates").Bool(true);
  body.EndObject();
  const std::string text = body.Take();
  for (const std::string& owner : owners) {
    context_->forwarder()->Forward(owner, "POST", "/v1/audiences:report",
                                   context_->ForwardHeaders(req), text, std::chrono::seconds(60),
                                   [gather](HttpResponse r) {
                                     gather->AddRemote(r);
                                     if (gather->pending.fetch_sub(1) == 1) gather->Finish();
                                   });
  }
  RunScan([this, condition, options, gather]() {
    AudienceSelector selector;
    selector.condition = condition.get();
    auto part = scanner_.Aggregate(selector, options);
    if (!part.ok()) {
      std::lock_guard lock(gather->mu);
      if (!gather->error) gather->error = ScanError(part.status());
    } else {
      CountScan(part->took_ms / 1000.0, part->scanned);
      gather->Add(part->aggregates, part->scanned, part->as_of_ms, part->took_ms);
    }
    if (gather->pending.fetch_sub(1) == 1) gather->Finish();
  });
}

void AudienceRoutes::ExportRows(const HttpRequest& req,
                                std::shared_ptr<AudienceCondition> condition, int saved_bit,
                                std::string filename, Responder& respond) {
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(BadRequest(std::string(params.status().message())));
    return;
  }
  std::string format = params->Get("format").value_or("csv");
  if (format != "csv" && format != "ndjson") {
    respond(BadRequest("format must be csv or ndjson, not '" + format + "'", "format"));
    return;
  }
  std::vector<std::string> fields = SplitFields(params->Get("fields").value_or(""));
  std::erase(fields, "user_id");  // always the first column
  if (auto parsed = AudienceField::ParseAll(fields); !parsed.ok()) {
    respond(BadRequest(std::string(parsed.status().message()), "fields"));
    return;
  }
  auto limit = UintParam(*params, "limit", 0, 10'000'000, respond);
  if (!limit) return;
  std::string cursor = params->Get("cursor").value_or("");
  filename += format == "csv" ? ".csv" : ".ndjson";
  // A condition's export in a cluster gathers every instance's rows (saved audiences are
  // defined per instance, so their exports stay local).
  std::vector<std::string> owners;
  if (saved_bit < 0 && !OtherOwners(req, respond, &owners)) return;
  if (!owners.empty()) {
    GatherExport(req, condition, format, fields, *limit, cursor, filename, owners, respond);
    return;
  }
  RunScan([this, condition, saved_bit, format, fields = std::move(fields), limit = *limit,
           cursor = std::move(cursor), filename = std::move(filename), respond]() {
    AudienceSelector selector;
    selector.condition = condition.get();
    selector.saved_bit = saved_bit;
    std::string next_cursor;
    const auto start = std::chrono::steady_clock::now();
    auto rows = scanner_.Export(selector, fields, format, limit, cursor, &next_cursor);
    if (!rows.ok()) {
      respond(ScanError(rows.status()));
      return;
    }
    CountScan(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0);
    HttpResponse r;
    r.status = 200;
    r.content_type = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
    r.body = std::move(*rows);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + filename + "\"");
    if (!next_cursor.empty()) r.headers.emplace_back("X-Persona-Next-Cursor", next_cursor);
    respond(std::move(r));
  });
}

namespace {

// The records of an export body: CSV (a header line, then one record per member, user_id first,
// fields quoted where needed, so a record may span lines inside quotes) or NDJSON (one object per
// line with "user_id"). Appends (user id, record text without its line end) to `rows`; the CSV
// header goes to `header`.
bool SplitExport(std::string_view body, bool csv, std::string* header,
                 std::vector<std::pair<std::string, std::string>>* rows) {
  simdjson::dom::parser parser;
  bool first = true;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = at;
    bool quoted = false;
    while (end < body.size() && (quoted || body[end] != '\n')) {
      if (csv && body[end] == '"') quoted = !quoted;
      ++end;
    }
    std::string_view record = body.substr(at, end - at);
    at = end + 1;
    if (record.empty()) continue;
    if (csv && first) {
      first = false;
      *header = std::string(record);
      continue;
    }
    std::string id;
    if (csv) {
      if (record[0] == '"') {
        for (size_t i = 1; i < record.size(); ++i) {
          if (record[i] != '"') {
            id.push_back(record[i]);
          } else if (i + 1 < record.size() && record[i + 1] == '"') {
            id.push_back('"');
            ++i;
          } else {
            break;
          }
        }
      } else {
        id = std::string(record.substr(0, record.find(',')));
      }
    } else {
      simdjson::dom::element doc;
      std::string_view v;
      if (parser.parse(record.data(), record.size()).get(doc) ||
          doc["user_id"].get_string().get(v)) {
        return false;
      }
      id = std::string(v);
    }
    rows->emplace_back(std::move(id), std::string(record));
  }
  return true;
}

struct ExportGather {
  Responder respond;
  bool csv = true;
  size_t limit = 0;
  std::string filename;
  std::atomic<size_t> pending{0};
  std::mutex mu;  // guards what follows
  std::string header;
  std::vector<std::pair<std::string, std::string>> rows;
  bool more = false;
  std::optional<HttpResponse> error;

  void Add(std::string_view body, bool has_more) {
    std::lock_guard lock(mu);
    std::string h;
    if (!SplitExport(body, csv, &h, &rows)) {
      if (!error) error = JsonError(502, "bad_gateway", "an instance's export could not be read");
      return;
    }
    if (header.empty()) header = std::move(h);
    more |= has_more;
  }

  void Finish() {
    if (error) {
      respond(std::move(*error));
      return;
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return AudienceOrderLess(a.first, b.first); });
    if (limit > 0 && rows.size() > limit) {
      rows.resize(limit);
      more = true;
    }
    HttpResponse r;
    r.status = 200;
    r.content_type = csv ? "text/csv; charset=utf-8" : "application/x-ndjson";
    if (csv) r.body = header + "\n";
    for (const auto& [id, record] : rows) {
      r.body += record;
      r.body += '\n';
    }
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + filename + "\"");
    if (limit > 0 && more && !rows.empty()) {
      r.headers.emplace_back("X-Persona-Next-Cursor", AudienceCursor(rows.back().first));
    }
    respond(std::move(r));
  }
};

}  // namespace

void AudienceRoutes::GatherExport(const HttpRequest& req,
                                  std::shared_ptr<AudienceCondition> condition, std::string format,
                                  std::vector<std::string> fields, size_t limit, std::string cursor,
                                  std::string filename, const std::vector<std::string>& owners,
                                  Responder& respond) {
  auto gather = std::make_shared<ExportGather>();
  gather->respond = respond;
  gather->csv = format == "csv";
  gather->limit = limit;
  gather->filename = filename;
  gather->pending.store(owners.size() + 1);
  const std::string target = "/v1/audiences:export?" + std::string(req.query);
  for (const std::string& owner : owners) {
    context_->forwarder()->Forward(owner, "GET", target, context_->ForwardHeaders(req), "",
                                   std::chrono::seconds(120), [gather](HttpResponse r) {
                                     if (r.status != 200) {
                                       std::lock_guard lock(gather->mu);
                                       if (!gather->error) gather->error = std::move(r);
                                     } else {
                                       bool more = false;
                                       for (const auto& [name, value] : r.headers)
                                         more |= name == "X-Persona-Next-Cursor";
                                       gather->Add(r.body, more);
                                     }
                                     if (gather->pending.fetch_sub(1) == 1) gather->Finish();
                                   });
  }
  RunScan([this, condition, format, fields = std::move(fields), limit, cursor = std::move(cursor),
           gather]() {
    AudienceSelector selector;
    selector.condition = condition.get();
    std::string next_cursor;
    const auto start = std::chrono::steady_clock::now();
    auto rows = scanner_.Export(selector, fields, format, limit, cursor, &next_cursor);
    if (!rows.ok()) {
      std::lock_guard lock(gather->mu);
      if (!gather->error) gather->error = ScanError(rows.status());
    } else {
      CountScan(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0);
      gather->Add(*rows, !next_cursor.empty());
    }
    if (gather->pending.fetch_sub(1) == 1) gather->Finish();
  });
}

void AudienceRoutes::ExportCondition(const HttpRequest& req, const RouteMatch&,
                                     Responder& respond) {
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(BadRequest(std::string(params.status().message())));
    return;
  }
  std::shared_ptr<AudienceCondition> condition =
      CompileCondition(params->Get("condition"), respond);
  if (condition == nullptr) return;
  ExportRows(req, std::move(condition), -1, "audience", respond);
}

void AudienceRoutes::Create(const HttpRequest& req, const RouteMatch&, Responder& respond) {
  if (!SavedReady(respond)) return;
  Body body;
  if (!ParseObject(req.body, body, respond)) return;
  std::string name, condition, description, id;
  for (auto field : body.object) {
    const std::string_view key = field.key;
    std::string_view value;
    if (key != "name" && key != "condition" && key != "description" && key != "id") {
      respond(BadRequest(
          "unknown member '" + std::string(key) + "' (expected name, condition, description, id)",
          key));
      return;
    }
    if (field.value.get_string().get(value)) {
      respond(BadRequest(std::string(key) + " must be a string", key));
      return;
    }
    (key == "name"        ? name
     : key == "condition" ? condition
     : key == "id"        ? id
                          : description) = std::string(value);
  }
  if (name.empty()) {
    respond(BadRequest("name is required", "name"));
    return;
  }
  // Compiled here too, so that a typo gets the same positioned answer as a query.
  if (CompileCondition(condition, respond) == nullptr) return;
  // Creating scans every profile once to set the initial membership.
  RunScan([this, name = std::move(name), condition = std::move(condition),
           description = std::move(description), id = std::move(id), respond]() {
    auto info = saved_->Create(name, condition, description, id);
    if (!info.ok()) {
      respond(StatusError(info.status()));
      return;
    }
    HttpResponse r = JsonOk(201, InfoJson(*info));
    r.headers.emplace_back("Location", "/v1/audiences/" + info->id);
    respond(std::move(r));
  });
}

void AudienceRoutes::List(const HttpRequest&, const RouteMatch&, Responder& respond) {
  if (!SavedReady(respond)) return;
  JsonWriter w;
  w.BeginObject();
  w.Key("audiences").BeginArray();
  for (const SavedAudienceInfo& a : saved_->List()) WriteInfo(w, a);
  w.EndArray();
  w.Key("limit").Uint(SavedAudiences::kMaxAudiences);
  w.Key("epoch").String(saved_->epoch());
  w.EndObject();
  respond(JsonOk(200, w.Take()));
}

void AudienceRoutes::Get(const HttpRequest&, const RouteMatch& m, Responder& respond) {
  if (!SavedReady(respond)) return;
  std::optional<SavedAudienceInfo> info = saved_->Get(m.id);
  if (!info) {
    respond(JsonError(404, "not_found", "no saved audience '" + m.id + "'"));
    return;
  }
  respond(JsonOk(200, InfoJson(*info)));
}

void AudienceRoutes::Delete(const HttpRequest&, const RouteMatch& m, Responder& respond) {
  if (!SavedReady(respond)) return;
  // Deleting clears the audience's bit in every profile: a scan.
  RunScan([this, id = m.id, respond]() {
    if (absl::Status s = saved_->Delete(id); !s.ok()) {
      respond(StatusError(s));
      return;
    }
    JsonWriter w;
    w.BeginObject();
    w.Key("deleted").String(id);
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  });
}

void AudienceRoutes::Members(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
  std::optional<int> bit = SavedBit(m, respond);
  if (!bit) return;
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(BadRequest(std::string(params.status().message())));
    return;
  }
  auto limit = UintParam(*params, "limit", 1000, kMaxPageSize, respond);
  if (!limit) return;
  AudienceQueryOptions options;
  options.sample = 0;
  options.page_size = *limit;
  options.cursor = params->Get("cursor").value_or("");
  RunScan([this, id = m.id, bit = *bit, options = std::move(options), respond]() {
    AudienceSelector selector;
    selector.saved_bit = bit;
    auto result = scanner_.Query(selector, options);
    if (!result.ok()) {
      respond(ScanError(result.status()));
      return;
    }
    CountScan(result->took_ms / 1000.0, result->scanned);
    JsonWriter w;
    w.BeginObject();
    w.Key("id").String(id);
    w.Key("size").Uint(result->count);
    w.Key("ids").BeginArray();
    for (const std::string& user : result->ids) w.String(user);
    w.EndArray();
    w.Key("next_cursor");
    if (result->next_cursor.empty()) {
      w.Null();
    } else {
      w.String(result->next_cursor);
    }
    w.EndObject();
    respond(JsonOk(200, w.Take()));
  });
}

void AudienceRoutes::ExportSaved(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
  std::optional<int> bit = SavedBit(m, respond);
  if (!bit) return;
  ExportRows(req, nullptr, *bit, "audience-" + m.id, respond);
}

void AudienceRoutes::ReportSaved(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
  std::optional<int> bit = SavedBit(m, respond);
  if (!bit) return;
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(BadRequest(std::string(params.status().message())));
    return;
  }
  ReportOptions options;
  for (const auto& [key, value] : params->pairs) {
    if (!ReportOptionFromText(key, value, options, respond)) return;
  }
  ReportOf(nullptr, *bit, options, respond);
}

void AudienceRoutes::Changes(const HttpRequest& req, const RouteMatch& m, Responder& respond) {
  if (!SavedReady(respond)) return;
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(BadRequest(std::string(params.status().message())));
    return;
  }
  auto after = UintParam(*params, "after", 0, UINT64_MAX, respond);
  if (!after) return;
  auto limit = UintParam(*params, "limit", 1000, kMaxChangesLimit, respond);
  if (!limit) return;
  auto wait = UintParam(*params, "wait_ms", 0, kMaxWaitMs, respond);
  if (!wait) return;
  if (*limit == 0) *limit = 1;
  // Writes the page available now as NDJSON; the answer of both the immediate and the
  // long-poll path.
  auto answer = [saved = saved_, id = m.id, after = *after, limit = *limit](Responder& r) {
    auto page = saved->Changes(id, after, limit);
    if (!page.ok()) {
      r(StatusError(page.status()));
      return;
    }
    HttpResponse out;
    out.content_type = "application/x-ndjson";
    JsonWriter w;
    for (const MembershipChange& c : page->changes) {
      w.Clear();
      w.BeginObject();
      w.Key("seq").Uint(c.seq);
      w.Key("user_id").String(c.user_id);
      w.Key("change").String(c.entered ? "enter" : "exit");
      w.Key("at").String(FormatIsoTime(c.at_ms));
      w.Key("at_ms").Int(c.at_ms);
      w.EndObject();
      out.body += w.str();
      out.body += '\n';
    }
    out.headers.emplace_back("X-Persona-Next-After", std::to_string(page->next_after));
    out.headers.emplace_back("X-Persona-Epoch", page->epoch);
    if (page->truncated) out.headers.emplace_back("X-Persona-Truncated", "true");
    r(std::move(out));
  };
  auto now = saved_->Changes(m.id, *after, 1);
  if (!now.ok()) {
    respond(StatusError(now.status()));
    return;
  }
  if (!now->changes.empty() || *wait == 0) {
    answer(respond);
    return;
  }
  long_polls_waiting_->fetch_add(1, std::memory_order_relaxed);
  // `ready` may run on a partition writer (holding a shard lock) right after the first new
  // change, so the page it builds is small. It may run after this object is gone (SavedAudiences
  // answers what is left when it is destroyed), so it holds nothing of this object but the
  // shared gauge.
  saved_->WaitForChanges(m.id, *after, std::chrono::milliseconds(*wait),
                         [waiting = long_polls_waiting_, answer, respond]() mutable {
                           waiting->fetch_sub(1, std::memory_order_relaxed);
                           answer(respond);
                         });
}

}  // namespace persona::serve
