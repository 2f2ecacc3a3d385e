// What the Kafka source, the producer and the mock cluster share: building a librdkafka
// configuration from our settings, owning handles, and asking a cluster how many partitions a
// topic has. librdkafka's C API (rdkafka.h) is used directly: it is what Debian ships
// (librdkafka-dev), and its C++ wrapper adds nothing we need.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace persona {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using RdKafkaHandle = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
using RdKafkaConf = std::unique_ptr<rd_kafka_conf_t, RdKafkaDeleter>;
using RdKafkaPartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, RdKafkaDeleter>;
using RdKafkaMessage = std::unique_ptr<rd_kafka_message_t, RdKafkaDeleter>;

using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

// A configuration with `properties` set in order; InvalidArgument naming the property librdkafka
// refused and its reason.
absl::StatusOr<RdKafkaConf> MakeRdKafkaConf(const KafkaProperties& properties);

// A handle of `type` from `conf` (consumed even on failure).
absl::StatusOr<RdKafkaHandle> MakeRdKafkaHandle(rd_kafka_type_t type, RdKafkaConf conf);

// The number of partitions of `topic` on the cluster at `brokers`; NotFound when the cluster does
// not have the topic, Unavailable when no broker answered within `timeout`.
absl::StatusOr<int32_t> KafkaTopicPartitionCount(const std::string& brokers,
                                                 const KafkaProperties& client,
                                                 const std::string& topic,
                                                 std::chrono::milliseconds timeout);

}  // namespace persona
