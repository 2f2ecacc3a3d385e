#include "serve/ingest_routes.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "event/json_event.h"
#include "kafka/kafka_producer.h"
#include "kafka/kafka_source.h"
#include "serve/json_response.h"

namespace persona::serve {
namespace {

// {accepted, duplicates, rejected[], ...extra members}: the answer of POST /v1/events.
std::string OutcomeJson(IngestOutcome outcome, std::vector<EventIssue> issues,
                        const std::function<void(JsonWriter&)>& extra = {}) {
  for (EventIssue& is : issues) {
    outcome.rejected.push_back({is.index_or_line, std::move(is.field), std::move(is.rule)});
  }
  std::sort(outcome.rejected.begin(), outcome.rejected.end(),
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
  if (extra) extra(w);
  w.EndObject();
  return w.Take();
}

// One POST produced to Kafka: answered once every event is acknowledged by the brokers (and, with
// ?wait=applied, applied by this instance where it owns the partition).
struct ProducedRequest {
  Responder respond;
  std::vector<EventIssue> issues;
  ApiContext* context = nullptr;
  std::vector<std::pair<std::string, std::string>> auth;  // the caller's, for the owner's wait
  bool wait_applied = false;
  std::chrono::milliseconds wait_timeout{10000};
  std::atomic<size_t> remaining{0};
  std::mutex mu;
  absl::Status error;                      // guarded by mu
  std::map<int32_t, int64_t> last_offset;  // guarded by mu: partition -> highest offset
  size_t produced = 0;                     // guarded by mu
  std::atomic<size_t> waits{0};
  std::atomic<bool> all_applied{true};

  void Answer(std::optional<bool> applied) {
    const bool rejected = !issues.empty();
    IngestOutcome outcome;
    outcome.accepted = produced;
    std::string body = OutcomeJson(std::move(outcome), std::move(issues), [&](JsonWriter& w) {
      w.Key("produced").Uint(produced);
      if (applied) w.Key("applied").Bool(*applied);
    });
    respond(JsonOk(rejected ? 207 : 200, std::move(body)));
  }

  // After the last delivery report.
  void Delivered(const std::shared_ptr<ProducedRequest>& self) {
    if (!error.ok()) {
      respond(JsonError(503, "unavailable",
                        std::to_string(produced) +
                            " events were produced before: " + std::string(error.message()) +
                            " (send the request again: events already delivered are dropped as "
                            "duplicates by event_id)"));
      return;
    }
    if (!wait_applied || last_offset.empty()) {
      Answer(wait_applied ? std::optional<bool>(true) : std::nullopt);
      return;
    }
    waits.store(last_offset.size());
    for (const auto& [partition, offset] : last_offset) {
      context->WhenApplied(partition, offset, wait_timeout, auth, [self](bool applied) {
        if (!applied) self->all_applied.store(false);
        if (self->waits.fetch_sub(1) == 1) self->Answer(self->all_applied.load());
      });
    }
  }
};

}  // namespace

void IngestRoutes::PostEvents(const HttpRequest& req, const RouteMatch&, Responder& respond) {
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
  bool strict = context_.config().strict;
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
  Engine& engine = context_.engine();
  auto batch = std::make_shared<EventBatch>();
  std::vector<EventIssue> issues;
  if (absl::Status s =
          ParseJsonBody(req.body, engine.config().limits, strict, batch.get(), &issues);
      !s.ok()) {
    respond(JsonError(400, "malformed_json", std::string(s.message())));
    return;
  }
  const size_t records = batch->events.size() + issues.size();
  if (records > context_.config().max_batch_events) {
    respond(JsonError(413, "batch_too_large",
                      std::to_string(records) + " events in one request; the limit is " +
                          std::to_string(context_.config().max_batch_events) +
                          " (server.max_batch_events)"));
    return;
  }
  if (!issues.empty()) {
    std::vector<DeadLetter> letters;
    letters.reserve(issues.size());
    const int64_t now = WallClockMs();
    for (const EventIssue& is : issues) {
      letters.push_back(DeadLetter{now, "http", is.index_or_line, UserIdOfJsonRecord(is.raw),
                                   is.field, is.rule, is.raw});
    }
    parse_rejected_.fetch_add(issues.size(), std::memory_order_relaxed);
    if (absl::Status s = engine.AddDeadLetters(letters); !s.ok()) {
      respond(StatusError(s));
      return;
    }
  }
  if (KafkaProducer* producer = context_.kafka_producer(); producer != nullptr) {
    bool wait_applied = false;
    if (auto v = params->Get("wait")) {
      if (*v == "applied") {
        wait_applied = true;
      } else if (*v != "produced") {
        respond(JsonError(400, "invalid_argument", "wait must be produced or applied", "wait"));
        return;
      }
    }
    ProduceToKafka(req, *producer, std::move(batch), std::move(issues), wait_applied, respond);
    return;
  }
  // The outcome callback runs on a partition thread; the parse issues travel with it.
  auto finish = [respond, issues = std::move(issues)](IngestOutcome outcome) mutable {
    const bool rejected = !outcome.rejected.empty() || !issues.empty();
    respond(JsonOk(rejected ? 207 : 200, OutcomeJson(std::move(outcome), std::move(issues))));
  };
  if (absl::Status h = engine.health(); !h.ok()) {
    respond(StatusError(absl::UnavailableError(std::string(h.message()))));
    return;
  }
  if (batch->events.empty()) {
    finish(IngestOutcome{});
    return;
  }
  // Submit consumes `finish` only when it succeeds; keep a copy of the responder for refusals.
  Responder refuse = respond;
  if (absl::Status s = engine.Submit(std::move(batch), std::move(finish), /*block=*/false);
      !s.ok()) {
    refuse(StatusError(s));
  }
}

void IngestRoutes::ProduceToKafka(const HttpRequest& req, KafkaProducer& producer,
                                  std::shared_ptr<EventBatch> batch, std::vector<EventIssue> issues,
                                  bool wait_applied, Responder& respond) {
  auto request = std::make_shared<ProducedRequest>();
  request->respond = respond;
  request->issues = std::move(issues);
  request->context = &context_;
  request->auth = ApiContext::AuthHeaders(req);
  request->wait_applied = wait_applied && context_.kafka() != nullptr;
  const size_t n = batch->events.size();
  if (n == 0) {
    request->Answer(wait_applied ? std::optional<bool>(true) : std::nullopt);
    return;
  }
  // One extra count, released after the loop, so that no delivery answers mid-loop.
  request->remaining.store(n + 1);
  auto delivered = [request](const absl::Status& status, int32_t partition, int64_t offset) {
    {
      std::lock_guard lock(request->mu);
      if (status.ok()) {
        ++request->produced;
        int64_t& last = request->last_offset[partition];
        last = std::max(last, offset);
      } else if (request->error.ok()) {
        request->error = status;
      }
    }
    if (request->remaining.fetch_sub(1) == 1) request->Delivered(request);
  };
  JsonWriter w;
  size_t queued = 0;
  for (const Event& e : batch->events) {
    w.Clear();
    WriteEventJson(w, e);
    absl::Status s = producer.Produce(context_.kafka_topic(), e.user_id, w.str(), -1, delivered,
                                      /*block=*/false);
    if (!s.ok()) {
      std::lock_guard lock(request->mu);
      if (request->error.ok()) request->error = s;
      break;
    }
    ++queued;
  }
  // Messages never queued will get no report: count them as done now, with the loop's own count.
  if (request->remaining.fetch_sub(n - queued + 1) == n - queued + 1) request->Delivered(request);
}

// The owner's half of a cross-instance ?wait=applied (ApiContext::WhenApplied).
void IngestRoutes::GetApplied(const HttpRequest& req, const RouteMatch&, Responder& respond) {
  auto params = ParseQuery(req.query);
  if (!params.ok()) {
    respond(JsonError(400, "invalid_argument", std::string(params.status().message())));
    return;
  }
  int64_t values[3] = {-1, -1, 10000};
  const char* names[3] = {"partition", "offset", "timeout_ms"};
  for (int i = 0; i < 3; ++i) {
    auto v = params->Get(names[i]);
    if (!v && i < 2) {
      respond(JsonError(400, "invalid_argument", std::string(names[i]) + " is required", names[i]));
      return;
    }
    if (!v) continue;
    int64_t n = 0;
    if (!absl::SimpleAtoi(*v, &n) || n < 0 || (i == 2 && n > 60000)) {
      respond(JsonError(400, "invalid_argument",
                        std::string(names[i]) + " must be a non-negative integer" +
                            (i == 2 ? " up to 60000" : ""),
                        names[i]));
      return;
    }
    values[i] = n;
  }
  KafkaSource* source = context_.kafka();
  if (source == nullptr) {  // nothing is applied from Kafka here
    respond(JsonOk(200, "{\"applied\":false}"));
    return;
  }
  source->WhenApplied(
      static_cast<int32_t>(values[0]), values[1], std::chrono::milliseconds(values[2]),
      [respond](bool applied) {
        respond(JsonOk(200, applied ? "{\"applied\":true}" : "{\"applied\":false}"));
      });
}

}  // namespace persona::serve
