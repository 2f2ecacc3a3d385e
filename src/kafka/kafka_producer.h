// A keyed producer of the events topic: what `persona kafka-produce` and the tests use to feed
// Kafka the way a shop's services do (key = user_id, Kafka's murmur2 partitioner, acks=all,
// idempotent), so the partition of a message is the engine partition that owns its user.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kafka/kafka_client.h"

namespace persona {

class KafkaProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(const std::string& brokers,
                                                               const KafkaProperties& client = {});
  // Queues one message; `partition` < 0 = the partitioner's choice from `key`. Blocks while
  // librdkafka's queue is full. The message is delivered (or failed) by Flush.
  absl::Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                       int32_t partition = -1);
  // Waits until every queued message is acknowledged; the first delivery error, if any.
  absl::Status Flush(std::chrono::milliseconds timeout);
  // Serves delivery reports without blocking (call it regularly between Produce calls).
  void Poll() { rd_kafka_poll(rk_.get(), 0); }
  uint64_t delivered() const { return delivered_; }

 private:
  KafkaProducer() = default;
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

  RdKafkaHandle rk_;
  uint64_t delivered_ = 0;
  absl::Status first_error_;
};

}  // namespace persona
