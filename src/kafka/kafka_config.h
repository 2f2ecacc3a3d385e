// The Kafka source's settings: the [kafka] table of the service's TOML file (config/persona.toml
// lists every key with its default) or `persona serve --kafka-*` flags. Unknown keys are errors
// naming the key; librdkafka's own properties go through [kafka.client] as they are.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace persona {

struct KafkaConfig {
  // Bootstrap servers ("host:port,host:port"); empty = no Kafka source.
  std::string brokers;
  // The topic of behaviour events: one native JSON event per message (or a JSON array / NDJSON of
  // events), keyed by user_id with Kafka's default (murmur2) partitioner.
  std::string topic = "persona-events";
  // How the shop's producers partition by key: "murmur2" (Kafka's default partitioner, Java
  // clients, librdkafka's murmur2_random) or "crc32" (librdkafka's consistent_random, the default
  // of librdkafka-based clients). Users are routed the same way; fixed for a data directory's life.
  std::string partitioner = "murmur2";
  // The consumer group: instances of one group share the topic's partitions.
  std::string group = "persona";
  // Events per batch handed to a partition (one durable write each).
  uint32_t max_batch_events = 5000;
  // How long a partial batch waits for more messages before it is handed over.
  std::chrono::milliseconds linger{5};
  // How often consumed offsets are committed to the group (informational: the data directory's
  // offsets, written with the events, are the ones a restart resumes from).
  std::chrono::milliseconds commit_interval{1000};
  // Topic that saved audiences' enter/exit changes are published to ("" = none; kafka/
  // audience_sink.h has the message format).
  std::string audience_topic;
  // Topic that profile changes are published to ("" = none; kafka/profile_change_sink.h), with
  // these sections of the profile JSON.
  std::string profile_topic;
  std::string profile_fields = "identity,stats,lifecycle,consumption,tags,signals";
  // Scale-out (kafka/cluster_exchange.h): the instances of a group publish their HTTP address and
  // owned partitions, and the operators' shared state of those partitions, on this compacted
  // topic, so that any instance forwards a user's reads to the owner and combines every instance's
  // trending, item-CF and demand. Empty = "<group>-cluster" (one per group). `cluster = false`
  // turns it off.
  bool cluster = true;
  std::string cluster_topic;
  // The URL other instances reach this one's HTTP API at ("" = http://<bind or host name>:<port>).
  std::string advertised_url;
  // How often an owner publishes the shared state of partitions that changed: the bound on how
  // stale another instance's view of it is.
  std::chrono::milliseconds share_interval{2000};
  // The changelog (kafka/changelog.h): every checkpoint of an owned partition is mirrored, in one
  // Kafka transaction, to partition p of this compacted topic (same partition count as `topic`;
  // "" = "<group>-changelog"), and a partition assigned to an instance whose local state is older
  // is restored from it instead of re-consuming the events topic. Without the topic (or with
  // `changelog = false`) a moved partition is rebuilt from the events topic.
  bool changelog = true;
  std::string changelog_topic;
  // librdkafka properties ([kafka.client], e.g. "security.protocol" = "SASL_SSL"), applied last.
  std::vector<std::pair<std::string, std::string>> client;

  bool enabled() const { return !brokers.empty(); }
  // [kafka.client] plus the librdkafka partitioner matching `partitioner`, for producers.
  std::vector<std::pair<std::string, std::string>> ProducerClient() const {
    auto out = client;
    out.emplace_back("partitioner",
                     partitioner == "crc32" ? "consistent_random" : "murmur2_random");
    return out;
  }
  std::string changelog_topic_name() const {
    return changelog_topic.empty() ? group + "-changelog" : changelog_topic;
  }
  std::string cluster_topic_name() const {
    return cluster_topic.empty() ? group + "-cluster" : cluster_topic;
  }
};

// Reads the [kafka] table (and [kafka.client]) of TOML text / a file into `config`; absent keys
// keep their values, a missing table changes nothing. InvalidArgument naming the key on a bad
// value.
absl::Status LoadKafkaConfigText(std::string_view toml, std::string_view origin,
                                 KafkaConfig* config);
absl::Status LoadKafkaConfigFile(const std::string& path, KafkaConfig* config);

}  // namespace persona
