// Interns strings (item ids, categories, brands, keywords) to dense 32-bit codes so that profiles
// hold 4-byte references instead of strings. One pool per partition, owned by the partition's
// writer thread: Intern and Find are writer-only (no lock on the update path). Get may be called
// by reader threads concurrently with Intern for any code the reader obtained through a
// happens-before edge (e.g. from a profile read under its shard lock): codes live in fixed chunks
// that never move.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace persona {

class StringPool {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  StringPool() = default;
  StringPool(const StringPool&) = delete;
  StringPool& operator=(const StringPool&) = delete;

  // Returns the code of `s`, adding it if absent. Codes are dense, starting at 0.
  uint32_t Intern(std::string_view s);
  // Returns the code of `s`, or kNone if it was never interned.
  uint32_t Find(std::string_view s) const;
  // The string of a code returned by Intern. The view stays valid for the pool's lifetime.
  std::string_view Get(uint32_t code) const {
    const std::atomic<std::string_view*>* mid =
        directory_[code >> (kChunkBits + kMidBits)].load(std::memory_order_acquire);
    return mid[(code >> kChunkBits) & (kMidSize - 1)].load(
        std::memory_order_acquire)[code & (kChunkSize - 1)];
  }
  size_t size() const { return size_; }
  // Approximate heap bytes held (arena + index), for memory accounting.
  size_t MemoryBytes() const;

 private:
  std::string_view Store(std::string_view s);

  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t block_used_ = 0;
  size_t block_size_ = 0;
  size_t arena_bytes_ = 0;
  // code -> directory[10 bits] -> mid[10 bits] -> chunk[12 bits]. Published pointers never move,
  // so Get needs no lock; a small pool costs 8 KiB + 8 KiB + 64 KiB.
  static constexpr uint32_t kChunkBits = 12;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kMidBits = 10;
  static constexpr uint32_t kMidSize = 1u << kMidBits;
  static constexpr uint32_t kDirectorySize = 1u << (32 - kChunkBits - kMidBits);
  std::atomic<std::atomic<std::string_view*>*> directory_[kDirectorySize] = {};
  std::vector<std::unique_ptr<std::atomic<std::string_view*>[]>> owned_mids_;
  std::vector<std::unique_ptr<std::string_view[]>> owned_chunks_;
  uint32_t size_ = 0;
  absl::flat_hash_map<std::string_view, uint32_t> index_;
};

}  // namespace persona
