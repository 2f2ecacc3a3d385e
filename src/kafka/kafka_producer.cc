#include "kafka/kafka_producer.h"

namespace persona {

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    const std::string& brokers, const KafkaProperties& client, bool poll_thread) {
  std::unique_ptr<KafkaProducer> p(new KafkaProducer());
  KafkaProperties props = {{"bootstrap.servers", brokers},
                           {"partitioner", "murmur2_random"},
                           {"enable.idempotence", "true"},
                           {"linger.ms", "5"}};
  props.insert(props.end(), client.begin(), client.end());
  absl::StatusOr<RdKafkaConf> conf = MakeRdKafkaConf(props);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaProducer::OnDelivery);
  rd_kafka_conf_set_opaque(conf->get(), p.get());
  absl::StatusOr<RdKafkaHandle> rk = MakeRdKafkaHandle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!rk.ok()) return rk.status();
  p->rk_ = std::move(*rk);
  if (poll_thread) {
    p->poller_ = std::thread([self = p.get()] {
      while (!self->stop_.load()) rd_kafka_poll(self->rk_.get(), 100);
    });
  }
  return p;
}

KafkaProducer::~KafkaProducer() {
  stop_.store(true);
  if (poller_.joinable()) poller_.join();
  if (rk_) {
    rd_kafka_flush(rk_.get(), 5000);  // delivers (or fails) what is queued: callbacks run here
  }
}

void KafkaProducer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  absl::Status status;
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->delivered_.fetch_add(1);
  } else {
    status = absl::UnavailableError(std::string("Kafka delivery failed: ") +
                                    rd_kafka_err2str(m->err));
    std::lock_guard lock(self->error_mu_);
    if (self->first_error_.ok()) self->first_error_ = status;
  }
  if (m->_private != nullptr) {
    std::unique_ptr<DeliveryFn> done(static_cast<DeliveryFn*>(m->_private));
    (*done)(status, m->partition, m->offset);
  }
}

absl::Status KafkaProducer::Produce(std::string_view topic, std::string_view key,
                                    std::string_view value, int32_t partition, DeliveryFn done,
                                    bool block) {
  const std::string topic_name(topic);
  std::unique_ptr<DeliveryFn> opaque = done ? std::make_unique<DeliveryFn>(std::move(done)) : nullptr;
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_TOPIC(topic_name.c_str()),
        RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_OPAQUE(opaque.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      opaque.release();  // OnDelivery owns it now
      return absl::OkStatus();
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::UnavailableError(std::string("Kafka produce to '") + topic_name +
                                    "': " + rd_kafka_err2str(err));
    }
    if (!block) return absl::ResourceExhaustedError("the Kafka producer's queue is full");
    rd_kafka_poll(rk_.get(), 100);  // serve delivery reports to make room
  }
}

absl::Status KafkaProducer::Flush(std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
  {
    std::lock_guard lock(error_mu_);
    if (!first_error_.ok()) return first_error_;
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(std::string("Kafka flush: ") + rd_kafka_err2str(err));
  }
  return absl::OkStatus();
}

}  // namespace persona
