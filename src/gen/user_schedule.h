// Which user acts next: the users of the stream ordered by (next event time, user index). The
// stream is this order, so users' events interleave in increasing time like live traffic. Keys
// are unique (ties on time break on the user index), so the order is fully determined.
//
// Most users are idle most of the time (hours between sessions) and a few are inside a session
// (the next event in about a minute). So idle users wait in a timing wheel of one-minute buckets
// (an O(1) append to the bucket's chain of 128-byte blocks, read back sequentially) and only users
// due within the current minute sit in a small min-heap that stays in cache. The order is exactly
// that of one big heap over all users, at a fraction of its cache misses. Memory is fixed at
// construction: a bucket chain has at most one partly filled block, so users / 9 + one block per
// bucket always suffice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace persona::gen {

class UserSchedule {
 public:
  UserSchedule() = default;
  // One entry per user: user u acts first at first_ts_ms[u] (epoch ms, >= 0). Times beyond
  // kLatestMs (~146 million years) are treated as kLatestMs.
  explicit UserSchedule(const std::vector<int64_t>& first_ts_ms);

  static constexpr int64_t kLatestMs = int64_t{1} << 62;

  bool empty() const { return due_.empty(); }
  // The earliest (time, user) pair. Must not be called when empty.
  int64_t top_ts_ms() const { return due_[0].ts_ms; }
  uint32_t top_user() const { return due_[0].user; }
  // Moves the top user to `next_ts_ms` (>= its current time).
  void RescheduleTop(int64_t next_ts_ms);

  size_t MemoryBytes() const {
    return due_.capacity() * sizeof(Entry) + bucket_head_.capacity() * sizeof(uint32_t) +
           blocks_.capacity() * sizeof(Block);
  }

 private:
  struct Entry {
    int64_t ts_ms;
    uint32_t user;
    bool operator<(const Entry& o) const {
      return ts_ms < o.ts_ms || (ts_ms == o.ts_ms && user < o.user);
    }
  };
  static constexpr int64_t kBucketMs = 60'000;
  static constexpr uint32_t kBuckets = 4096;  // a ring of ~2.8 days; later times wait a lap
  static constexpr uint32_t kNil = 0xffffffffu;

  // Puts `user` in the heap if it is due before horizon_ms_, else in its bucket.
  void Insert(uint32_t user, int64_t ts_ms);
  // Appends to the bucket's chain (a new head block when the head block is full).
  void Append(uint32_t bucket, int64_t ts_ms, uint32_t user);
  uint32_t NewBlock();
  // Advances the horizon minute by minute until the heap's top is the global minimum.
  void Settle();
  // Moves the users of the bucket at the horizon that are due within its minute to the heap.
  // Returns whether any moved.
  bool DrainHorizonBucket();
  // After a whole lap of empty buckets: jumps the horizon to the earliest waiting user.
  void JumpToEarliest();
  void HeapPush(Entry e);
  void HeapPop();
  void SiftDown(size_t i);

  // Waiting users, two cache lines per block.
  static constexpr uint32_t kBlockEntries = 9;
  struct alignas(64) Block {
    int64_t wake_ms[kBlockEntries];
    uint32_t user[kBlockEntries];
    uint32_t count;
    uint32_t next;  // next block of the same bucket, or the next free block
  };

  std::vector<Entry> due_;             // min-heap of users due before horizon_ms_
  std::vector<uint32_t> bucket_head_;  // per bucket: its first block, or kNil
  std::vector<Block> blocks_;          // the pool
  uint32_t free_block_ = kNil;         // free list through Block::next
  int64_t horizon_ms_ = 0;             // every user due before this is in due_
  size_t waiting_ = 0;                 // users in buckets
};

}  // namespace persona::gen
