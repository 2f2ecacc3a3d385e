// Per-day activity of one user over the last 30 days of their activity: for each UTC day with
// events, the count of each event type and the purchase amount. Rolling windows (1, 7, 30 days
// ending at any `now`) are summed from these buckets at read time, so window resolution is one UTC
// day: "7d" at `now` means the UTC days now_day-6 .. now_day, whatever the time of day.
//
// Buckets are kept sparse and varint-packed in one CompactBytes, ordered by day:
//   zigzag(day - previous_day)   (the first bucket's previous_day is 0: an absolute epoch day)
//   varint(mask)                 bit t: type t has a count; bit 9: a purchase amount follows
//   varint(count) per set type bit, ascending type
//   8-byte little-endian double purchase amount, when bit 9 is set
// A typical taobao day (views and a cart) costs 4-6 bytes instead of a 48-byte struct.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "event/event.h"
#include "profile/compact_bytes.h"

namespace persona {

struct DayBucket {
  int32_t day = 0;  // UTC days since 1970-01-01
  std::array<uint32_t, kEventTypeCount> counts{};
  double purchase_amount = 0;
};

// Sums over a range of days.
struct ActivityTotals {
  std::array<uint64_t, kEventTypeCount> counts{};
  double purchase_amount = 0;
  uint64_t events() const;
};

class DailyActivity {
 public:
  // Days kept: buckets older than latest_day - (kDaysKept - 1) are dropped.
  static constexpr int32_t kDaysKept = 30;

  // Counts one event of `type` on UTC day `day`, adding `purchase_amount` (0 for none). Events
  // older than the kept range are ignored (the all-time counters live in Profile). O(1) for the
  // latest day; an older day (late event) or a new day re-packs the at most 30 buckets.
  void Add(int32_t day, EventType type, double purchase_amount);

  // Totals over days [first_day, last_day], inclusive.
  ActivityTotals Sum(int32_t first_day, int32_t last_day) const;
  // Totals over the `days` UTC days ending with the day of `now_ms` (days >= 1).
  ActivityTotals Window(int64_t now_ms, int days) const;

  // Calls fn(const DayBucket&) for each bucket, oldest first.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    const uint8_t* p = bytes_.data();
    const uint8_t* end = bytes_.end();
    DayBucket b;
    int32_t previous = 0;
    while (p != nullptr && p < end) {
      p = DecodeBucket(p, end, previous, &b);
      if (p == nullptr) return;
      previous = b.day;
      fn(b);
    }
  }

  size_t bucket_count() const { return bucket_count_; }
  int32_t latest_day() const { return latest_day_; }

  // The packed bytes (codec) and their inverse; Restore rejects malformed input.
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  absl::Status Restore(std::string_view bytes);

  size_t HeapBytes() const { return bytes_.HeapBytes(); }

 private:
  // Decodes one bucket at p whose predecessor is `previous_day`; nullptr when malformed.
  static const uint8_t* DecodeBucket(const uint8_t* p, const uint8_t* end, int32_t previous_day,
                                     DayBucket* out);
  // Encodes `b` after `previous_day` into dst (room for kMaxBucketBytes); returns bytes written.
  static size_t EncodeBucket(const DayBucket& b, int32_t previous_day, uint8_t* dst);
  static constexpr size_t kMaxBucketBytes = 2 * kMaxVarintBytes + kEventTypeCount * 5 + 8;
  // Adds one to `type`'s count in the latest bucket without re-packing; false when that is not
  // possible (type absent from the bucket, or the count's varint would grow).
  bool IncrementInPlace(int type);
  // Re-packs all buckets after an insert in the middle or a drop at the front.
  void AddSlow(int32_t day, EventType type, double purchase_amount);

  CompactBytes bytes_;
  int32_t latest_day_ = 0;
  uint16_t last_offset_ = 0;  // byte offset of the latest bucket
  uint8_t bucket_count_ = 0;
};

}  // namespace persona
