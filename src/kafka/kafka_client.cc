#include "kafka/kafka_client.h"

namespace persona {

absl::StatusOr<RdKafkaConf> MakeRdKafkaConf(const KafkaProperties& properties) {
  RdKafkaConf conf(rd_kafka_conf_new());
  char err[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError("Kafka client property '" + name + "' = '" + value +
                                        "': " + err);
    }
  }
  return conf;
}

absl::StatusOr<RdKafkaHandle> MakeRdKafkaHandle(rd_kafka_type_t type, RdKafkaConf conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (rk == nullptr) return absl::InvalidArgumentError(std::string("Kafka client: ") + err);
  conf.release();  // rd_kafka_new took it
  return RdKafkaHandle(rk);
}

absl::StatusOr<int32_t> KafkaTopicPartitionCount(const std::string& brokers,
                                                 const KafkaProperties& client,
                                                 const std::string& topic,
                                                 std::chrono::milliseconds timeout) {
  KafkaProperties props = {{"bootstrap.servers", brokers},
                           {"allow.auto.create.topics", "false"}};
  props.insert(props.end(), client.begin(), client.end());
  absl::StatusOr<RdKafkaConf> conf = MakeRdKafkaConf(props);
  if (!conf.ok()) return conf.status();
  absl::StatusOr<RdKafkaHandle> rk = MakeRdKafkaHandle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  // Every topic's metadata: asking for one topic by name makes brokers with
  // auto.create.topics.enable (Kafka's default) create it.
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk->get(), /*all_topics=*/1, nullptr, &md,
                                              static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError("Kafka brokers " + brokers + " did not answer metadata for '" +
                                  topic + "': " + rd_kafka_err2str(err));
  }
  absl::StatusOr<int32_t> count = absl::NotFoundError("Kafka topic '" + topic + "' not found");
  for (int i = 0; i < md->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0) {
      count = t.partition_cnt;
    } else if (t.err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      count = absl::UnavailableError("Kafka topic '" + topic + "': " + rd_kafka_err2str(t.err));
    }
  }
  rd_kafka_metadata_destroy(md);
  return count;
}

}  // namespace persona
