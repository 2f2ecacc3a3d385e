// Which user acts next: a 4-ary min-heap of (next event time, user) over all users. The stream is
// the heap's pop order, so users' events interleave in increasing time like live traffic. Keys are
// unique (ties on time break on the user index), so the order does not depend on heap details.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace persona::gen {

class UserSchedule {
 public:
  UserSchedule() = default;
  // One entry per user: user u acts first at first_ts_ms[u].
  explicit UserSchedule(const std::vector<int64_t>& first_ts_ms);

  bool empty() const { return heap_.empty(); }
  // The earliest (time, user) pair. Must not be called when empty.
  int64_t top_ts_ms() const { return heap_[0].ts_ms; }
  uint32_t top_user() const { return heap_[0].user; }
  // Moves the top user to `next_ts_ms` (>= its current time). Cheap when the new time is near,
  // which is the common case (the next event of a session).
  void RescheduleTop(int64_t next_ts_ms);

  size_t MemoryBytes() const { return heap_.capacity() * sizeof(Entry); }

 private:
  struct Entry {
    int64_t ts_ms;
    uint32_t user;
    bool operator<(const Entry& o) const {
      return ts_ms < o.ts_ms || (ts_ms == o.ts_ms && user < o.user);
    }
  };
  void SiftDown(size_t i);

  // 4-ary: half the depth of a binary heap, and the four children of a node share a cache line
  // or two, which matters with 100k+ users.
  static constexpr size_t kArity = 4;
  std::vector<Entry> heap_;
};

}  // namespace persona::gen
