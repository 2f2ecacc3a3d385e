#include "serve/ingest_routes.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/json_writer.h"
#include "event/json_event.h"
#include "serve/json_response.h"

namespace persona::serve {

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
    const int64_t now = WallMs();
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

}  // namespace persona::serve
