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

}  // namespace persona
