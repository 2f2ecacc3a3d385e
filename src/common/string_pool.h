// Interns strings (item ids, categories, brands, keywords) to dense 32-bit codes so that profiles
// hold 4-byte references instead of strings. One pool per partition, owned by the partition's
// writer thread: not thread-safe, by design (no lock on the update path).
#pragma once

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
  std::string_view Get(uint32_t code) const { return strings_[code]; }
  size_t size() const { return strings_.size(); }
  // Approximate heap bytes held (arena + index), for memory accounting.
  size_t MemoryBytes() const;

 private:
  std::string_view Store(std::string_view s);

  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t block_used_ = 0;
  size_t block_size_ = 0;
  size_t arena_bytes_ = 0;
  std::vector<std::string_view> strings_;
  absl::flat_hash_map<std::string_view, uint32_t> index_;
};

}  // namespace persona
