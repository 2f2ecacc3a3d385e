#include "common/string_pool.h"

#include <cstring>

namespace persona {

std::string_view StringPool::Store(std::string_view s) {
  // Strings are packed into 64 KiB blocks (larger strings get their own block) so that a pool of
  // millions of short ids costs about their length, not a heap allocation each.
  constexpr size_t kBlock = 64 * 1024;
  if (s.size() > kBlock / 4) {
    blocks_.push_back(std::make_unique<char[]>(s.size()));
    std::memcpy(blocks_.back().get(), s.data(), s.size());
    arena_bytes_ += s.size();
    return {blocks_.back().get(), s.size()};
  }
  if (blocks_.empty() || block_used_ + s.size() > block_size_) {
    // Keep the current small-string block last: a large string inserted above would otherwise
    // become the "current" block.
    blocks_.push_back(std::make_unique<char[]>(kBlock));
    block_used_ = 0;
    block_size_ = kBlock;
    arena_bytes_ += kBlock;
  }
  char* dst = blocks_.back().get() + block_used_;
  std::memcpy(dst, s.data(), s.size());
  block_used_ += s.size();
  return {dst, s.size()};
}

uint32_t StringPool::Intern(std::string_view s) {
  auto it = index_.find(s);
  if (it != index_.end()) return it->second;
  std::string_view stored = Store(s);
  if (s.size() > 64 * 1024 / 4) {
    // A large string took a fresh block; the next small string must open a new block too.
    block_used_ = block_size_;
  }
  const uint32_t code = size_;
  const uint32_t chunk = code >> kChunkBits;
  if ((code & (kChunkSize - 1)) == 0) {
    const uint32_t d = code >> (kChunkBits + kMidBits);
    if ((chunk & (kMidSize - 1)) == 0) {
      owned_mids_.push_back(std::make_unique<std::atomic<std::string_view*>[]>(kMidSize));
      directory_[d].store(owned_mids_.back().get(), std::memory_order_release);
    }
    owned_chunks_.push_back(std::make_unique<std::string_view[]>(kChunkSize));
    owned_mids_[d][chunk & (kMidSize - 1)].store(owned_chunks_.back().get(),
                                                 std::memory_order_release);
  }
  owned_chunks_[chunk][code & (kChunkSize - 1)] = stored;
  ++size_;
  index_.emplace(stored, code);
  return code;
}

uint32_t StringPool::Find(std::string_view s) const {
  auto it = index_.find(s);
  return it == index_.end() ? kNone : it->second;
}

size_t StringPool::MemoryBytes() const {
  return arena_bytes_ + owned_chunks_.size() * kChunkSize * sizeof(std::string_view) +
         owned_mids_.size() * kMidSize * sizeof(void*) + sizeof(directory_) +
         index_.capacity() * (sizeof(std::string_view) + sizeof(uint32_t) + 1);
}

}  // namespace persona
