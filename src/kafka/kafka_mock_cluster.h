// An in-process Kafka cluster (librdkafka's mock cluster: real Kafka protocol on localhost ports,
// with consumer groups and offset commits) for tests and `persona kafka-mock`, on machines with no
// Kafka broker. Any Kafka client (kcat, persona serve) connects to bootstrap().
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kafka/kafka_client.h"

struct rd_kafka_mock_cluster_s;

namespace persona {

class KafkaMockCluster {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaMockCluster>> Start(int brokers);
  ~KafkaMockCluster();
  // "127.0.0.1:port,..."
  std::string bootstrap() const;
  absl::Status CreateTopic(std::string_view topic, int partitions);
  // Takes broker `id` (1-based) down or back up (connections refused meanwhile).
  absl::Status SetBrokerUp(int id, bool up);
  // The next `count` requests of protocol `api_key` (0 Produce, 1 Fetch, 8 OffsetCommit, ...) fail
  // with `error` (an rd_kafka_resp_err_t; RD_KAFKA_RESP_ERR__TRANSPORT drops the connection).
  void FailRequests(int16_t api_key, size_t count, int error);
  // Drops the errors FailRequests queued for `api_key` that no request consumed yet.
  void ClearFailures(int16_t api_key);

 private:
  KafkaMockCluster() = default;
  RdKafkaHandle rk_;  // owns the cluster's threads
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
};

}  // namespace persona
