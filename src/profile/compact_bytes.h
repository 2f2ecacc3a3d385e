// A growable byte array for the variable-length parts of a profile (recent items, day buckets).
// Sixteen bytes inline (pointer, size, capacity as uint32) instead of std::vector's 24, capacities
// chosen so that the heap block fills its malloc chunk, and raw varint helpers to pack small
// integers into it. Profiles hold hundreds of thousands of these, so every byte counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace persona {

// Bytes a heap block of `n` requested bytes really occupies under glibc malloc: an 8-byte chunk
// header, rounded up to 16, at least 32. Profile::MemoryBytes counts blocks with this so that the
// reported size is what the process pays, not what was asked for.
inline size_t MallocChunkBytes(size_t n) {
  if (n == 0) return 0;
  const size_t chunk = (n + 8 + 15) & ~size_t{15};
  return chunk < 32 ? 32 : chunk;
}

// Longest varint encoding of a 64-bit value.
inline constexpr size_t kMaxVarintBytes = 10;

// Writes `v` as a LEB128 varint at `dst` (which must have kMaxVarintBytes of room) and returns the
// number of bytes written.
inline size_t PutVarint(uint8_t* dst, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    dst[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  dst[n++] = static_cast<uint8_t>(v);
  return n;
}

// Reads a varint from [p, end). Returns the position after it, or nullptr when the input ends
// inside the varint or the encoding is longer than 10 bytes (corrupt data never reads past end).
inline const uint8_t* GetVarint(const uint8_t* p, const uint8_t* end, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const uint64_t byte = *p++;
    result |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      *v = result;
      return p;
    }
  }
  return nullptr;
}

inline size_t VarintLength(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

class CompactBytes {
 public:
  CompactBytes() = default;
  CompactBytes(const CompactBytes& other) { *this = other; }
  CompactBytes& operator=(const CompactBytes& other);
  CompactBytes(CompactBytes&&) noexcept = default;
  CompactBytes& operator=(CompactBytes&&) noexcept = default;

  const uint8_t* data() const { return data_.get(); }
  uint8_t* data() { return data_.get(); }
  const uint8_t* end() const { return data_.get() + size_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }

  // Replaces the `old_len` bytes at `pos` with `n` bytes from `src` (which must not point into
  // this buffer). Insert, erase and overwrite are all special cases. Grows by about a quarter, so
  // appends are amortised O(1); the profile parts using this are bounded, so growth stops.
  void Replace(size_t pos, size_t old_len, const uint8_t* src, size_t n);
  void Append(const uint8_t* src, size_t n) { Replace(size_, 0, src, n); }
  void Insert(size_t pos, const uint8_t* src, size_t n) { Replace(pos, 0, src, n); }
  void Erase(size_t pos, size_t n) { Replace(pos, n, nullptr, 0); }
  void Truncate(size_t n) {
    if (n < size_) size_ = static_cast<uint32_t>(n);
  }
  // Frees the heap block.
  void Clear();
  // Reallocates to the smallest chunk-filling capacity that holds the contents (after a decode).
  void ShrinkToFit();

  // Heap bytes owned, as malloc accounts them.
  size_t HeapBytes() const { return MallocChunkBytes(capacity_); }

 private:
  void Reallocate(size_t capacity);

  std::unique_ptr<uint8_t[]> data_;
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
};

}  // namespace persona
