#include "common/hash.h"

#include <xxhash.h>

namespace persona {

uint64_t Hash64(std::string_view bytes) { return XXH64(bytes.data(), bytes.size(), 0); }

uint32_t PartitionOf(std::string_view user_id, uint32_t partitions) {
  // Multiply-shift on the high bits: uniform even when `partitions` is not a power of two.
  const uint64_t h = Hash64(user_id);
  return static_cast<uint32_t>((static_cast<unsigned __int128>(h) * partitions) >> 64);
}

}  // namespace persona
