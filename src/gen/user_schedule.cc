#include "gen/user_schedule.h"

#include <algorithm>
#include <limits>

#include "common/time_util.h"

namespace persona::gen {

UserSchedule::UserSchedule(const std::vector<int64_t>& first_ts_ms)
    : bucket_head_(kBuckets, kNil), blocks_(first_ts_ms.size() / kBlockEntries + kBuckets + 2) {
  for (uint32_t b = 0; b < blocks_.size(); ++b) {
    blocks_[b].next = b + 1 < blocks_.size() ? b + 1 : kNil;
  }
  free_block_ = blocks_.empty() ? kNil : 0;
  due_.reserve(first_ts_ms.size());
  if (first_ts_ms.empty()) return;
  const int64_t earliest =
      std::min(*std::min_element(first_ts_ms.begin(), first_ts_ms.end()), kLatestMs);
  horizon_ms_ = FloorDiv(earliest, kBucketMs) * kBucketMs;
  for (size_t u = 0; u < first_ts_ms.size(); ++u) {
    Insert(static_cast<uint32_t>(u), first_ts_ms[u]);
  }
  Settle();
}

void UserSchedule::RescheduleTop(int64_t next_ts_ms) {
  if (next_ts_ms < horizon_ms_) {
    due_[0].ts_ms = next_ts_ms;
    SiftDown(0);
  } else {
    const uint32_t user = due_[0].user;
    HeapPop();
    Insert(user, next_ts_ms);
  }
  Settle();
}

void UserSchedule::Insert(uint32_t user, int64_t ts_ms) {
  ts_ms = std::min(ts_ms, kLatestMs);  // keeps bucket arithmetic far from overflow
  if (ts_ms < horizon_ms_) {
    HeapPush(Entry{ts_ms, user});
    return;
  }
  Append(static_cast<uint32_t>(FloorDiv(ts_ms, kBucketMs) % kBuckets), ts_ms, user);
  ++waiting_;
}

void UserSchedule::Append(uint32_t bucket, int64_t ts_ms, uint32_t user) {
  uint32_t head = bucket_head_[bucket];
  if (head == kNil || blocks_[head].count == kBlockEntries) {
    const uint32_t fresh = NewBlock();
    blocks_[fresh].count = 0;
    blocks_[fresh].next = head;
    bucket_head_[bucket] = head = fresh;
  }
  Block& block = blocks_[head];
  block.wake_ms[block.count] = ts_ms;
  block.user[block.count] = user;
  ++block.count;
}

uint32_t UserSchedule::NewBlock() {
  if (free_block_ == kNil) {
    // Not reached (the pool is sized for the worst case); kept so a miscount cannot corrupt.
    blocks_.emplace_back();
    return static_cast<uint32_t>(blocks_.size() - 1);
  }
  const uint32_t b = free_block_;
  free_block_ = blocks_[b].next;
  return b;
}

void UserSchedule::Settle() {
  uint32_t empty_buckets = 0;
  while (waiting_ > 0 && (due_.empty() || due_[0].ts_ms >= horizon_ms_)) {
    if (DrainHorizonBucket()) {
      empty_buckets = 0;
    } else if (due_.empty() && ++empty_buckets >= kBuckets) {
      JumpToEarliest();  // a long quiet stretch: do not walk it minute by minute
      empty_buckets = 0;
    }
  }
}

bool UserSchedule::DrainHorizonBucket() {
  const uint32_t bucket = static_cast<uint32_t>(FloorDiv(horizon_ms_, kBucketMs) % kBuckets);
  const int64_t bucket_end = horizon_ms_ + kBucketMs;
  horizon_ms_ = bucket_end;
  uint32_t b = bucket_head_[bucket];
  if (b == kNil) return false;
  bucket_head_[bucket] = kNil;
  bool moved = false;
  while (b != kNil) {
    const uint32_t next = blocks_[b].next;
    // Copy out first: entries due in a later lap are appended to this bucket again, possibly
    // into a block taken from the free list.
    const Block block = blocks_[b];
    blocks_[b].next = free_block_;
    free_block_ = b;
    for (uint32_t i = 0; i < block.count; ++i) {
      if (block.wake_ms[i] < bucket_end) {
        HeapPush(Entry{block.wake_ms[i], block.user[i]});
        --waiting_;
        moved = true;
      } else {
        Append(bucket, block.wake_ms[i], block.user[i]);
      }
    }
    b = next;
  }
  return moved;
}

void UserSchedule::JumpToEarliest() {
  int64_t earliest = std::numeric_limits<int64_t>::max();
  for (uint32_t head : bucket_head_) {
    for (uint32_t b = head; b != kNil; b = blocks_[b].next) {
      for (uint32_t i = 0; i < blocks_[b].count; ++i) {
        earliest = std::min(earliest, blocks_[b].wake_ms[i]);
      }
    }
  }
  horizon_ms_ = FloorDiv(earliest, kBucketMs) * kBucketMs;
}

void UserSchedule::HeapPush(Entry e) {
  size_t i = due_.size();
  due_.push_back(e);
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!(e < due_[parent])) break;
    due_[i] = due_[parent];
    i = parent;
  }
  due_[i] = e;
}

void UserSchedule::HeapPop() {
  due_[0] = due_.back();
  due_.pop_back();
  if (!due_.empty()) SiftDown(0);
}

void UserSchedule::SiftDown(size_t i) {
  const size_t n = due_.size();
  const Entry moving = due_[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && due_[child + 1] < due_[child]) ++child;
    if (!(due_[child] < moving)) break;
    due_[i] = due_[child];
    i = child;
  }
  due_[i] = moving;
}

}  // namespace persona::gen
