// Stable 64-bit hashing used for routing, de-duplication and derived event ids.
// The values are persisted (partition assignment, event ids), so the function must never change.
#pragma once

#include <cstdint>
#include <string_view>

namespace persona {

// xxHash64 with seed 0. Stable across processes, machines and versions.
uint64_t Hash64(std::string_view bytes);

// Partition of a user among `partitions` partitions: a pure function of the user id.
uint32_t PartitionOf(std::string_view user_id, uint32_t partitions);

// Kafka's murmur2 of a message key (Java client's Utils.murmur2, librdkafka's murmur2 partitioner).
int32_t KafkaMurmur2(std::string_view key);
// The partition Kafka's default partitioner picks for a keyed message: (murmur2 & 0x7fffffff) %
// partitions. A data directory fed by Kafka routes users with this, so that the partition a
// producer writes a user's events to is the engine partition that owns the user.
uint32_t KafkaPartitionOf(std::string_view key, uint32_t partitions);
// The partition librdkafka's "consistent" / "consistent_random" partitioner picks (the default of
// librdkafka-based clients such as confluent-kafka-python and kcat): CRC-32 of the key %
// partitions.
uint32_t KafkaCrc32PartitionOf(std::string_view key, uint32_t partitions);

}  // namespace persona
