#include "profile/compact_bytes.h"

#include <algorithm>
#include <cassert>

namespace persona {
namespace {

// The largest capacity >= n whose malloc chunk has no padding: n + 8 a multiple of 16.
size_t ChunkFillingCapacity(size_t n) {
  if (n <= 24) return 24;
  return ((n + 8 + 15) & ~size_t{15}) - 8;
}

}  // namespace

CompactBytes& CompactBytes::operator=(const CompactBytes& other) {
  if (this == &other) return *this;
  if (other.size_ == 0) {
    Clear();
    return *this;
  }
  const size_t capacity = ChunkFillingCapacity(other.size_);
  data_ = std::make_unique_for_overwrite<uint8_t[]>(capacity);
  std::memcpy(data_.get(), other.data_.get(), other.size_);
  size_ = other.size_;
  capacity_ = static_cast<uint32_t>(capacity);
  return *this;
}

void CompactBytes::Reallocate(size_t capacity) {
  auto fresh = std::make_unique_for_overwrite<uint8_t[]>(capacity);
  if (size_ > 0) std::memcpy(fresh.get(), data_.get(), size_);
  data_ = std::move(fresh);
  capacity_ = static_cast<uint32_t>(capacity);
}

void CompactBytes::Replace(size_t pos, size_t old_len, const uint8_t* src, size_t n) {
  assert(pos + old_len <= size_);
  const size_t new_size = size_ - old_len + n;
  if (new_size > capacity_) {
    Reallocate(ChunkFillingCapacity(std::max<size_t>(new_size, capacity_ + capacity_ / 4)));
  }
  uint8_t* base = data_.get();
  const size_t tail = size_ - pos - old_len;
  if (tail > 0 && n != old_len) std::memmove(base + pos + n, base + pos + old_len, tail);
  if (n > 0) std::memcpy(base + pos, src, n);
  size_ = static_cast<uint32_t>(new_size);
}

void CompactBytes::Clear() {
  data_.reset();
  size_ = 0;
  capacity_ = 0;
}

void CompactBytes::ShrinkToFit() {
  if (size_ == 0) {
    Clear();
    return;
  }
  const size_t capacity = ChunkFillingCapacity(size_);
  if (capacity < capacity_) Reallocate(capacity);
}

}  // namespace persona
