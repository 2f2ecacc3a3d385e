// Profile-change notifications ([kafka] profile_topic): every profile an applied batch changed is
// published to a Kafka topic, keyed by user_id, as the profile JSON of GET /v1/users/{id}/profile
// with the configured sections ([kafka] profile_fields) plus "changed_at_ms", for downstream tools
// that keep their own copy (a CRM, a campaign tool, a cache).
//
// The sink is a pipeline operator (engine/stream_operator.h) that every engine carries: it does
// nothing until a target is attached (persona serve with a profile topic), so turning the topic
// on or off never changes the pipeline a data directory was written by. It keeps no state.
//
// Delivery is at least once: a notification is produced from the partition's writer thread when
// the batch is applied (librdkafka queues it; the idempotent producer delivers it with acks=all),
// and the log tail replayed after a crash produces its notifications again. A consumer keeps, per
// user, the notification with the highest stats.events. With a full producer queue a
// notification is dropped and counted (`dropped`), never waited for: the pipeline does not stall
// on the sink. In a cluster each instance publishes the users of the partitions it owns.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/stream_operator.h"
#include "kafka/kafka_config.h"
#include "kafka/kafka_producer.h"

namespace persona {

class ProfileChangeSink : public StreamOperator {
 public:
  std::string_view name() const override { return "profile_changes"; }
  void OnProfileChanged(const ChangedProfile& changed) override;

  // Starts publishing the changes of `engine`'s profiles to config.profile_topic (sections from
  // config.profile_fields; InvalidArgument naming an unknown section). The engine must be the one
  // this operator was opened with and outlive the sink's use (Detach before closing it).
  absl::Status Attach(Engine* engine, const KafkaConfig& config);
  // Stops publishing and delivers what is queued (up to `flush`).
  void Detach(std::chrono::milliseconds flush);

  uint64_t published() const { return published_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  struct Target {
    Engine* engine = nullptr;
    std::unique_ptr<KafkaProducer> producer;
    std::string topic;
    uint32_t sections = 0;
  };
  std::atomic<std::shared_ptr<Target>> target_;
  std::atomic<uint64_t> published_{0}, dropped_{0}, failed_{0};
};

}  // namespace persona
