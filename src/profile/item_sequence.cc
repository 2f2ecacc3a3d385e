#include "profile/item_sequence.h"

#include <algorithm>

#include "common/time_util.h"

namespace persona {
namespace {

size_t PutEntry(uint8_t* dst, int64_t delta_s, EventType type, uint32_t code) {
  size_t n = PutVarint(dst, (static_cast<uint64_t>(delta_s) << 4) | static_cast<uint64_t>(type));
  return n + PutVarint(dst + n, code);
}

}  // namespace

void ItemSequence::Clear() {
  bytes_.Clear();
  base_s_ = 0;
  last_rel_s_ = 0;
  count_ = skip_ = 0;
}

void ItemSequence::Add(int64_t ts_ms, EventType type, uint32_t code, uint32_t limit) {
  limit = std::min(limit, kMaxLimit);
  if (limit == 0) {
    if (count_ > 0) Clear();
    return;
  }
  const int64_t ts = FloorDiv(ts_ms, 1000);
  uint8_t buf[4 * kMaxVarintBytes];
  if (count_ == 0) {
    base_s_ = ts;
    last_rel_s_ = 0;
    bytes_.Append(buf, PutEntry(buf, 0, type, code));
    count_ = 1;
    skip_ = 0;
    return;
  }
  const int64_t last = base_s_ + last_rel_s_;
  if (ts >= last) {
    if (ts - base_s_ > UINT32_MAX) return;  // a sequence spanning 136 years: not worth a field
    bytes_.Append(buf, PutEntry(buf, ts - last, type, code));
    last_rel_s_ = static_cast<uint32_t>(ts - base_s_);
  } else {
    // Late event: find the first entry later than ts (there is one: the last entry is).
    const uint8_t* p = bytes_.data();
    const uint8_t* end = bytes_.end();
    int64_t previous_ts = base_s_;
    int64_t entry_ts = base_s_;
    uint32_t index = 0;
    const uint8_t* head_start = p;
    uint64_t head = 0;
    for (; index < count_; ++index) {
      head_start = p;
      uint64_t item;
      p = GetVarint(p, end, &head);
      if (p == nullptr) return;  // unreachable: bytes are only written here
      entry_ts = previous_ts + static_cast<int64_t>(head >> 4);
      if (entry_ts > ts) break;
      if ((p = GetVarint(p, end, &item)) == nullptr) return;
      previous_ts = entry_ts;
    }
    if (index == count_) return;  // unreachable: the last entry is later than ts
    // After insertion the first (count_ + 1 - limit) entries fall outside the sequence.
    const uint32_t after = static_cast<uint32_t>(count_) + 1;
    const uint32_t outside = after > limit ? after - limit : 0;
    if (index < outside) return;
    if (base_s_ + static_cast<int64_t>(last_rel_s_) - std::min(ts, base_s_) > UINT32_MAX) return;
    // Replace the next entry's head with: new entry + next head re-based on the new entry.
    size_t n;
    if (index == 0) {
      n = PutEntry(buf, 0, type, code);
      n += PutVarint(buf + n, (static_cast<uint64_t>(entry_ts - ts) << 4) | (head & 15));
      last_rel_s_ = static_cast<uint32_t>(last_rel_s_ + (base_s_ - ts));
      base_s_ = ts;
    } else {
      n = PutEntry(buf, ts - previous_ts, type, code);
      n += PutVarint(buf + n, (static_cast<uint64_t>(entry_ts - ts) << 4) | (head & 15));
    }
    const size_t offset = head_start - bytes_.data();
    bytes_.Replace(offset, p - head_start, buf, n);
  }
  ++count_;
  skip_ = count_ > limit ? static_cast<uint16_t>(count_ - limit) : uint16_t{0};
  if (skip_ > std::max<uint32_t>(1, limit / 16)) DropOldest(skip_);
}

void ItemSequence::DropOldest(uint32_t k) {
  const uint8_t* p = bytes_.data();
  const uint8_t* end = bytes_.end();
  int64_t ts = base_s_;
  for (uint32_t i = 0; i < k; ++i) {
    uint64_t head, item;
    if ((p = GetVarint(p, end, &head)) == nullptr || (p = GetVarint(p, end, &item)) == nullptr)
      return;
    ts += static_cast<int64_t>(head >> 4);
  }
  // Entry k becomes the first: its delta becomes 0 against the new base.
  uint64_t head;
  if ((p = GetVarint(p, end, &head)) == nullptr) return;
  ts += static_cast<int64_t>(head >> 4);
  uint8_t buf[kMaxVarintBytes];
  const size_t n = PutVarint(buf, head & 15);
  bytes_.Replace(0, p - bytes_.data(), buf, n);
  last_rel_s_ = static_cast<uint32_t>(base_s_ + last_rel_s_ - ts);
  base_s_ = ts;
  count_ = static_cast<uint16_t>(count_ - k);
  skip_ = static_cast<uint16_t>(skip_ - std::min<uint32_t>(skip_, k));
}

}  // namespace persona
