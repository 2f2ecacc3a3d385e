#include "kafka/kafka_mock_cluster.h"

#include <librdkafka/rdkafka_mock.h>

#include <vector>

namespace persona {

absl::StatusOr<std::unique_ptr<KafkaMockCluster>> KafkaMockCluster::Start(int brokers) {
  std::unique_ptr<KafkaMockCluster> c(new KafkaMockCluster());
  absl::StatusOr<RdKafkaConf> conf = MakeRdKafkaConf({{"log_level", "3"}});
  if (!conf.ok()) return conf.status();
  absl::StatusOr<RdKafkaHandle> rk = MakeRdKafkaHandle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  c->rk_ = std::move(*rk);
  c->cluster_ = rd_kafka_mock_cluster_new(c->rk_.get(), brokers);
  if (c->cluster_ == nullptr) return absl::InternalError("could not start a mock Kafka cluster");
  return c;
}

KafkaMockCluster::~KafkaMockCluster() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
}

std::string KafkaMockCluster::bootstrap() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

absl::Status KafkaMockCluster::CreateTopic(std::string_view topic, int partitions) {
  rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(cluster_, std::string(topic).c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError("creating mock topic '" + std::string(topic) +
                                      "': " + rd_kafka_err2str(err));
  }
  return absl::OkStatus();
}

void KafkaMockCluster::FailRequests(int16_t api_key, size_t count, int error) {
  std::vector<rd_kafka_resp_err_t> errors(count, static_cast<rd_kafka_resp_err_t>(error));
  rd_kafka_mock_push_request_errors_array(cluster_, api_key, count, errors.data());
}

void KafkaMockCluster::ClearFailures(int16_t api_key) {
  rd_kafka_mock_clear_request_errors(cluster_, api_key);
}

absl::Status KafkaMockCluster::SetBrokerUp(int id, bool up) {
  rd_kafka_resp_err_t err =
      up ? rd_kafka_mock_broker_set_up(cluster_, id) : rd_kafka_mock_broker_set_down(cluster_, id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(std::string("mock broker: ") + rd_kafka_err2str(err));
  }
  return absl::OkStatus();
}

}  // namespace persona
