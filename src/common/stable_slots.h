// Records indexed by a dense 32-bit id (item catalogue ids) in chunks of 4096 that never move,
// reached through a two-level directory of atomic pointers: readers find a record without a lock
// while writers add chunks (once per 4096 ids, under a mutex). A small population costs 8 KiB of
// directory plus its chunks.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace persona {

template <typename T>
class StableSlots {
 public:
  // The slot of `id`, or null when its chunk was never created. Lock-free.
  T* Find(uint32_t id) const {
    std::atomic<T*>* mid = top_[id >> (kChunkBits + kMidBits)].load(std::memory_order_acquire);
    if (mid == nullptr) return nullptr;
    T* chunk = mid[(id >> kChunkBits) & (kMidSize - 1)].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : chunk + (id & (kChunkSize - 1));
  }
  // The slot of `id`, creating its chunk (default-constructed slots) when needed.
  T& Get(uint32_t id) {
    if (T* slot = Find(id)) return *slot;
    std::lock_guard lock(grow_mu_);
    std::atomic<std::atomic<T*>*>& top = top_[id >> (kChunkBits + kMidBits)];
    std::atomic<T*>* mid = top.load(std::memory_order_relaxed);
    if (mid == nullptr) {
      mids_.push_back(std::make_unique<std::atomic<T*>[]>(kMidSize));
      mid = mids_.back().get();
      top.store(mid, std::memory_order_release);
    }
    std::atomic<T*>& entry = mid[(id >> kChunkBits) & (kMidSize - 1)];
    T* chunk = entry.load(std::memory_order_relaxed);
    if (chunk == nullptr) {
      chunks_.push_back(std::make_unique<T[]>(kChunkSize));
      chunk = chunks_.back().get();
      entry.store(chunk, std::memory_order_release);
      chunk_count_.store(chunks_.size(), std::memory_order_relaxed);
    }
    return chunk[id & (kChunkSize - 1)];
  }
  size_t MemoryBytes() const {
    const size_t chunks = chunk_count_.load(std::memory_order_relaxed);
    return chunks * kChunkSize * sizeof(T) + (chunks / kMidSize + 1) * kMidSize * sizeof(void*);
  }

 private:
  static constexpr uint32_t kChunkBits = 12;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kMidBits = 10;
  static constexpr uint32_t kMidSize = 1u << kMidBits;
  static constexpr uint32_t kTopSize = 1u << (32 - kChunkBits - kMidBits);

  std::array<std::atomic<std::atomic<T*>*>, kTopSize> top_{};
  std::mutex grow_mu_;
  std::vector<std::unique_ptr<std::atomic<T*>[]>> mids_;
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::atomic<size_t> chunk_count_{0};
};

}  // namespace persona
