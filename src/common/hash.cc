#include "common/hash.h"

#include <xxhash.h>
#include <zlib.h>

namespace persona {

uint64_t Hash64(std::string_view bytes) { return XXH64(bytes.data(), bytes.size(), 0); }

uint32_t PartitionOf(std::string_view user_id, uint32_t partitions) {
  // Multiply-shift on the high bits: uniform even when `partitions` is not a power of two.
  const uint64_t h = Hash64(user_id);
  return static_cast<uint32_t>((static_cast<unsigned __int128>(h) * partitions) >> 64);
}

int32_t KafkaMurmur2(std::string_view key) {
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const uint32_t length = static_cast<uint32_t>(key.size());
  constexpr uint32_t m = 0x5bd1e995;
  constexpr int r = 24;
  uint32_t h = 0x9747b28cu ^ length;
  const uint32_t blocks = length / 4;
  for (uint32_t i = 0; i < blocks; ++i) {
    const unsigned char* p = data + 4 * i;
    uint32_t k = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const unsigned char* tail = data + 4 * blocks;
  switch (length % 4) {
    case 3:
      h ^= uint32_t{tail[2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= uint32_t{tail[1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= uint32_t{tail[0]};
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

uint32_t KafkaCrc32PartitionOf(std::string_view key, uint32_t partitions) {
  if (partitions == 0) return 0;
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(key.data()),
                          static_cast<uInt>(key.size()));
  return static_cast<uint32_t>(crc) % partitions;
}

uint32_t KafkaPartitionOf(std::string_view key, uint32_t partitions) {
  if (partitions == 0) return 0;
  return (static_cast<uint32_t>(KafkaMurmur2(key)) & 0x7fffffffu) % partitions;
}

}  // namespace persona
