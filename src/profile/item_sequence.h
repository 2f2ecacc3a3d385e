// The user's most recent item events (item, event type, time), for sequence models and the
// "recently viewed" API. Keeps the latest N by (time, arrival): an event later than all kept ones
// is appended (O(1)), a late event is inserted at its time position, and a late event older than
// all N kept ones is dropped when the sequence is full. Time resolution is one second.
//
// Entries are varint-packed, ordered by time, each
//   varint((seconds since the previous entry) << 4 | type)  varint(item pool code)
// with the first entry's delta 0 against `base_s_`. About 5 bytes per taobao event instead of
// the 8 of a fixed (code, type:4 | seconds:28) pair. The oldest entries are dropped lazily, in
// steps of N/16, so that a full sequence does not memmove on every event.
#pragma once

#include <cstdint>

#include "event/event.h"
#include "profile/compact_bytes.h"

namespace persona {

class ItemSequence {
 public:
  // The largest limit honoured (count and skip are uint16).
  static constexpr uint32_t kMaxLimit = 60000;

  struct Item {
    int64_t ts_s;
    EventType type;
    uint32_t code;
  };

  // Adds an event of `type` on item `code` at `ts_ms`, keeping at most `limit` entries.
  void Add(int64_t ts_ms, EventType type, uint32_t code, uint32_t limit);

  // Entries kept (<= the last limit passed to Add).
  uint32_t size() const { return count_ - skip_; }
  bool empty() const { return size() == 0; }

  // Calls fn(const Item&) for each kept entry, oldest first.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    const uint8_t* p = bytes_.data();
    const uint8_t* end = bytes_.end();
    int64_t ts = base_s_;
    for (uint32_t i = 0; i < count_ && p < end; ++i) {
      uint64_t head, code;
      p = GetVarint(p, end, &head);
      if (p == nullptr || (p = GetVarint(p, end, &code)) == nullptr) return;
      ts += static_cast<int64_t>(head >> 4);
      if (i >= skip_) fn(Item{ts, static_cast<EventType>(head & 15), static_cast<uint32_t>(code)});
    }
  }

  // Calls fn(uint32_t code) for the item codes of the kept entries, newest first, until fn
  // returns false. Reads the bytes backwards (a varint ends at the first byte below 0x80, so
  // the start of the one before it is found by stepping back over bytes >= 0x80): the cost is
  // in the entries visited, not in the sequence's length. For callers that want only the last
  // few items (item-CF's co-occurrence window) on every event.
  template <typename Fn>
  void ForEachCodeNewestFirst(Fn&& fn) const {
    const uint8_t* begin = bytes_.data();
    const uint8_t* p = bytes_.end();
    for (uint32_t left = size(); left > 0 && p != begin; --left) {
      const uint8_t* code_end = p;
      p = VarintStart(begin, code_end);
      uint64_t code;
      if (GetVarint(p, code_end, &code) == nullptr) return;
      if (p == begin) return;     // unreachable: every code follows its head
      p = VarintStart(begin, p);  // skip the entry's head
      if (!fn(static_cast<uint32_t>(code))) return;
    }
  }

  void Clear();
  size_t HeapBytes() const { return bytes_.HeapBytes(); }

 private:
  // The first byte of the varint that ends at `end` (exclusive), not before `begin`.
  static const uint8_t* VarintStart(const uint8_t* begin, const uint8_t* end) {
    const uint8_t* p = end - 1;
    while (p != begin && (p[-1] & 0x80) != 0) --p;
    return p;
  }

  // Drops the first `k` physical entries.
  void DropOldest(uint32_t k);

  CompactBytes bytes_;
  int64_t base_s_ = 0;       // time of the first physical entry
  uint32_t last_rel_s_ = 0;  // time of the last entry - base_s_
  uint16_t count_ = 0;       // physical entries
  uint16_t skip_ = 0;        // leading physical entries beyond the limit, not yet dropped
};

}  // namespace persona
