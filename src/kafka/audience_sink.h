// Publishes saved audiences' enter/exit changes to a Kafka topic for downstream campaign tools
// (`[kafka] audience_topic`). One JSON message per change, keyed by user_id:
//
//   {"audience":"vip","user_id":"u1","change":"enter","seq":42,"epoch":"...","at_ms":1700000000000}
//
// Each instance publishes the changes of the users it owns (membership is evaluated on its
// partitions), so a group of instances publishes every change once. Delivery is at least once
// while running (idempotent producer, acks=all); `seq` increases by 1 per audience within an
// `epoch`, and a new epoch (a restart) means: re-read the members (GET /v1/audiences/{id}/export),
// as for the HTTP change stream. Changes dropped from the in-memory ring before they were
// published (a broker away for longer than the ring holds) are counted, logged and marked by a
// message {"audience":...,"truncated":true,...} so consumers know to re-export.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "audience/saved_audiences.h"
#include "kafka/kafka_producer.h"

namespace persona {

class AudienceSink {
 public:
  // `audiences` must outlive the sink. Starts a thread that follows every saved audience's
  // changes, from the latest at start (earlier ones were the initial state), and produces them.
  static absl::StatusOr<std::unique_ptr<AudienceSink>> Start(
      SavedAudiences* audiences, const std::string& brokers, const KafkaProperties& client,
      std::string topic, std::function<void(std::string_view)> log = {});
  ~AudienceSink();  // Stop()
  // Publishes what is pending, waits for the broker's acknowledgement (bounded), and stops.
  void Stop();

  uint64_t published() const { return published_.load(); }
  uint64_t truncations() const { return truncations_.load(); }

 private:
  AudienceSink() = default;
  void Run();
  void PublishPending();

  SavedAudiences* audiences_ = nullptr;
  std::string topic_;
  std::function<void(std::string_view)> log_;
  std::unique_ptr<KafkaProducer> producer_;
  std::map<std::string, std::pair<std::string, uint64_t>> after_;  // id -> (epoch, last seq sent)
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> published_{0}, truncations_{0};
};

}  // namespace persona
