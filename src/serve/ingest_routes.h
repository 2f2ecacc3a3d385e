// The ingest route, POST /v1/events (docs/openapi.yaml "events"): a JSON or NDJSON body parsed and
// validated, invalid records dead-lettered, the rest submitted to the engine without blocking (429
// when a partition queue is full), or, on a Kafka-fed service, produced to the events topic so that
// the owner of each user's partition applies them. Api owns one and forwards the matched route to
// it.
//
// Threading: parsing runs on the I/O thread; the answer is given on the partition thread once the
// events are durable and applied, which is what makes read-your-writes hold.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "event/json_event.h"
#include "serve/api_context.h"
#include "serve/http_server.h"
#include "serve/request_target.h"

namespace persona {
class KafkaProducer;
}  // namespace persona

namespace persona::serve {

class IngestRoutes {
 public:
  // `context` must outlive this object.
  explicit IngestRoutes(ApiContext& context) : context_(context) {}
  IngestRoutes(const IngestRoutes&) = delete;
  IngestRoutes& operator=(const IngestRoutes&) = delete;

  void PostEvents(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  // GET /v1/cluster/applied?partition=P&offset=O&timeout_ms=T: {"applied": bool} once offset O
  // of Kafka partition P is applied here (false when not owned here or not within T).
  void GetApplied(const HttpRequest& req, const RouteMatch& m, Responder& respond);

  // For /metrics: records refused by the parser before they had a type, since start.
  uint64_t parse_rejected() const { return parse_rejected_.load(std::memory_order_relaxed); }

 private:
  // With a Kafka source: produces the valid events (key = user_id) and answers once the brokers
  // acknowledged them (docs/openapi.yaml, POST /v1/events, ?wait=).
  void ProduceToKafka(const HttpRequest& req, KafkaProducer& producer,
                      std::shared_ptr<EventBatch> batch, std::vector<EventIssue> issues,
                      bool wait_applied, Responder& respond);

  ApiContext& context_;
  std::atomic<uint64_t> parse_rejected_{0};
};

}  // namespace persona::serve
