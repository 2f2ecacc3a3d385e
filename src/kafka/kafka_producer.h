// A keyed producer of the events topic: what `persona kafka-produce`, `POST /v1/events` on a
// Kafka-fed service and the tests use to feed Kafka the way a shop's services do (key = user_id,
// Kafka's murmur2 partitioner, acks=all, idempotent), so the partition of a message is the engine
// partition that owns its user.
//
// Threading: Produce may be called from any thread. Delivery callbacks run on the thread that
// serves delivery reports: the producer's own poll thread when created with one, else the caller
// of Poll/Flush/Produce.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "kafka/kafka_client.h"

namespace persona {

class KafkaProducer {
 public:
  // Called once per message with its delivery result, and its partition and offset when delivered.
  using DeliveryFn = std::function<void(const absl::Status&, int32_t partition, int64_t offset)>;

  // `poll_thread`: serve delivery reports on a thread of the producer (for callers that never
  // call Poll, like the HTTP service).
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(const std::string& brokers,
                                                               const KafkaProperties& client = {},
                                                               bool poll_thread = false);
  ~KafkaProducer();
  // Queues one message; `partition` < 0 = the partitioner's choice from `key`. With `block`, waits
  // while librdkafka's queue is full, else returns ResourceExhausted. `done` (optional) receives
  // the delivery result.
  absl::Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                       int32_t partition = -1, DeliveryFn done = nullptr, bool block = true);
  // Waits until every queued message is acknowledged; the first delivery error, if any.
  absl::Status Flush(std::chrono::milliseconds timeout);
  // Serves delivery reports without blocking (call it regularly between Produce calls).
  void Poll() { rd_kafka_poll(rk_.get(), 0); }
  uint64_t delivered() const { return delivered_.load(); }

 private:
  KafkaProducer() = default;
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

  RdKafkaHandle rk_;
  std::atomic<uint64_t> delivered_{0};
  std::mutex error_mu_;
  absl::Status first_error_;  // guarded by error_mu_
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace persona
