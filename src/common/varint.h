// Variable-length integer encoding (LevelDB/protobuf style) for the durable log and checkpoints:
// 7 bits per byte, least significant group first, high bit set on every byte but the last.
// Signed values go through ZigZag so that small negative numbers stay small.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace persona {

// The longest encoding of a 64-bit value.
inline constexpr size_t kMaxVarint64Bytes = 10;

// Appends `v` as a varint (1..10 bytes) to `out`.
// Inline: it runs several times per applied event (log records, compact profile containers).
inline void AppendVarint64(std::string* out, uint64_t v) {
  if (v < 0x80) {
    out->push_back(static_cast<char>(v));
    return;
  }
  char buf[kMaxVarint64Bytes];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

// Decodes a varint from the front of `*in` and advances `*in` past it. Returns false, leaving
// `*in` unchanged, when the input ends inside the varint or the encoding is longer than 10 bytes
// or overflows 64 bits.
bool ReadVarint64(std::string_view* in, uint64_t* v);

// Appends `v` as 8 little-endian bytes.
void AppendFixed64(std::string* out, uint64_t v);
// Reads 8 little-endian bytes from the front of `*in`; false (nothing consumed) if fewer remain.
bool ReadFixed64(std::string_view* in, uint64_t* v);

// ZigZag maps signed to unsigned so that values near zero encode short: 0,-1,1,-2 -> 0,1,2,3.
inline uint64_t ZigZagEncode64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t ZigZagDecode64(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

}  // namespace persona
