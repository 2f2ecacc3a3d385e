#include "profile/daily_activity.h"

#include <algorithm>
#include <bit>

#include "common/time_util.h"

namespace persona {
namespace {

constexpr uint32_t kAmountBit = 1u << kEventTypeCount;
constexpr uint32_t kMaskLimit = 1u << (kEventTypeCount + 1);

}  // namespace

uint64_t ActivityTotals::events() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

const uint8_t* DailyActivity::DecodeBucket(const uint8_t* p, const uint8_t* end,
                                           int32_t previous_day, DayBucket* out) {
  uint64_t delta, mask;
  if ((p = GetVarint(p, end, &delta)) == nullptr) return nullptr;
  if ((p = GetVarint(p, end, &mask)) == nullptr || mask >= kMaskLimit) return nullptr;
  const int64_t day = previous_day + UnZigZag(delta);
  if (day < INT32_MIN || day > INT32_MAX) return nullptr;
  out->day = static_cast<int32_t>(day);
  for (int t = 0; t < kEventTypeCount; ++t) {
    uint64_t count = 0;
    if (mask & (1u << t)) {
      if ((p = GetVarint(p, end, &count)) == nullptr || count > UINT32_MAX) return nullptr;
    }
    out->counts[t] = static_cast<uint32_t>(count);
  }
  out->purchase_amount = 0;
  if (mask & kAmountBit) {
    if (end - p < 8) return nullptr;
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(p[i]) << (8 * i);
    out->purchase_amount = std::bit_cast<double>(bits);
    p += 8;
  }
  return p;
}

size_t DailyActivity::EncodeBucket(const DayBucket& b, int32_t previous_day, uint8_t* dst) {
  uint32_t mask = 0;
  for (int t = 0; t < kEventTypeCount; ++t) {
    if (b.counts[t] != 0) mask |= 1u << t;
  }
  if (b.purchase_amount != 0) mask |= kAmountBit;
  size_t n = PutVarint(dst, ZigZag(static_cast<int64_t>(b.day) - previous_day));
  n += PutVarint(dst + n, mask);
  for (int t = 0; t < kEventTypeCount; ++t) {
    if (b.counts[t] != 0) n += PutVarint(dst + n, b.counts[t]);
  }
  if (mask & kAmountBit) {
    const uint64_t bits = std::bit_cast<uint64_t>(b.purchase_amount);
    for (int i = 0; i < 8; ++i) dst[n++] = static_cast<uint8_t>(bits >> (8 * i));
  }
  return n;
}

void DailyActivity::Add(int32_t day, EventType type, double purchase_amount) {
  const int t = static_cast<int>(type);
  if (!(purchase_amount > 0 || purchase_amount < 0)) purchase_amount = 0;  // NaN -> 0
  uint8_t buf[kMaxBucketBytes];
  if (bucket_count_ == 0) {
    DayBucket b;
    b.day = day;
    b.counts[t] = 1;
    b.purchase_amount = purchase_amount;
    bytes_.Append(buf, EncodeBucket(b, 0, buf));
    latest_day_ = day;
    last_offset_ = 0;
    bucket_count_ = 1;
    return;
  }
  if (day == latest_day_ && purchase_amount == 0 && IncrementInPlace(t)) return;
  if (day == latest_day_) {
    // Re-encode only the latest bucket. Decoding it against previous day 0
    // yields its stored delta as `day`, and encoding against 0 writes the same delta back.
    DayBucket b;
    const uint8_t* start = bytes_.data() + last_offset_;
    const uint8_t* after = DecodeBucket(start, bytes_.end(), 0, &b);
    if (after == nullptr) return;  // unreachable: the buffer is only written by EncodeBucket
    if (b.counts[t] != UINT32_MAX) ++b.counts[t];
    b.purchase_amount += purchase_amount;
    bytes_.Replace(last_offset_, after - start, buf, EncodeBucket(b, 0, buf));
    return;
  }
  if (day > latest_day_) {
    uint64_t first_delta = 0;
    GetVarint(bytes_.data(), bytes_.end(), &first_delta);
    const int64_t first_day = UnZigZag(first_delta);
    if (first_day > static_cast<int64_t>(day) - kDaysKept) {
      DayBucket b;
      b.day = day;
      b.counts[t] = 1;
      b.purchase_amount = purchase_amount;
      last_offset_ = static_cast<uint16_t>(bytes_.size());
      bytes_.Append(buf, EncodeBucket(b, latest_day_, buf));
      latest_day_ = day;
      ++bucket_count_;
      return;
    }
  } else if (static_cast<int64_t>(day) <= static_cast<int64_t>(latest_day_) - kDaysKept) {
    return;  // older than the kept range
  }
  AddSlow(day, type, purchase_amount);
}

bool DailyActivity::IncrementInPlace(int type) {
  // The hottest path of all (most events are one more of a type already seen today): find the
  // type's count in the latest bucket and bump it where it is when its varint keeps its length.
  uint8_t* p = bytes_.data() + last_offset_;
  const uint8_t* end = bytes_.end();
  uint64_t value;
  const uint8_t* q = GetVarint(p, end, &value);  // day delta
  if (q == nullptr || (q = GetVarint(q, end, &value)) == nullptr) return false;
  const uint64_t mask = value;
  if (!(mask & (1u << type))) return false;
  for (int t = 0; t < type; ++t) {
    if ((mask & (1u << t)) && (q = GetVarint(q, end, &value)) == nullptr) return false;
  }
  uint8_t* count_at = p + (q - p);
  if (GetVarint(count_at, end, &value) == nullptr || value >= UINT32_MAX ||
      VarintLength(value + 1) != VarintLength(value)) {
    return false;
  }
  PutVarint(count_at, value + 1);
  return true;
}

void DailyActivity::AddSlow(int32_t day, EventType type, double purchase_amount) {
  std::array<DayBucket, kDaysKept + 1> buckets;
  size_t n = 0;
  bool merged = false;
  ForEach([&](const DayBucket& b) {
    if (!merged && day < b.day) {
      buckets[n] = DayBucket{};
      buckets[n].day = day;
      ++n;
      merged = true;
    }
    buckets[n++] = b;
    if (b.day == day) merged = true;
  });
  if (!merged) {
    buckets[n] = DayBucket{};
    buckets[n].day = day;
    ++n;
  }
  const int32_t latest = std::max(latest_day_, day);
  uint8_t packed[(kDaysKept + 1) * kMaxBucketBytes];
  size_t size = 0;
  int32_t previous = 0;
  uint8_t count = 0;
  uint16_t last_offset = 0;
  for (size_t i = 0; i < n; ++i) {
    DayBucket& b = buckets[i];
    if (static_cast<int64_t>(b.day) <= static_cast<int64_t>(latest) - kDaysKept) continue;
    if (b.day == day) {
      if (b.counts[static_cast<int>(type)] != UINT32_MAX) ++b.counts[static_cast<int>(type)];
      b.purchase_amount += purchase_amount;
    }
    last_offset = static_cast<uint16_t>(size);
    size += EncodeBucket(b, previous, packed + size);
    previous = b.day;
    ++count;
  }
  bytes_.Replace(0, bytes_.size(), packed, size);
  latest_day_ = latest;
  last_offset_ = last_offset;
  bucket_count_ = count;
}

ActivityTotals DailyActivity::Sum(int32_t first_day, int32_t last_day) const {
  ActivityTotals totals;
  ForEach([&](const DayBucket& b) {
    if (b.day < first_day || b.day > last_day) return;
    for (int t = 0; t < kEventTypeCount; ++t) totals.counts[t] += b.counts[t];
    totals.purchase_amount += b.purchase_amount;
  });
  return totals;
}

ActivityTotals DailyActivity::Window(int64_t now_ms, int days) const {
  const int64_t now_day = FloorDiv(now_ms, kDayMs);
  const int64_t first = std::max<int64_t>(INT32_MIN, now_day - days + 1);
  const int64_t last = std::min<int64_t>(INT32_MAX, now_day);
  if (last < first) return {};
  return Sum(static_cast<int32_t>(first), static_cast<int32_t>(last));
}

absl::Status DailyActivity::Restore(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* end = p + bytes.size();
  const uint8_t* start = p;
  int32_t previous = 0;
  int32_t first = 0;
  uint16_t last_offset = 0;
  size_t count = 0;
  DayBucket b;
  while (p < end) {
    const uint8_t* bucket_start = p;
    p = DecodeBucket(p, end, previous, &b);
    if (p == nullptr) return absl::DataLossError("day buckets: malformed bucket");
    if (count > 0 && b.day <= previous)
      return absl::DataLossError("day buckets: days not ascending");
    if (count == 0) first = b.day;
    if (++count > static_cast<size_t>(kDaysKept) ||
        static_cast<int64_t>(b.day) - first >= kDaysKept) {
      return absl::DataLossError("day buckets: more than 30 days");
    }
    last_offset = static_cast<uint16_t>(bucket_start - start);
    previous = b.day;
  }
  bytes_.Clear();
  if (count > 0) bytes_.Append(start, bytes.size());
  latest_day_ = count > 0 ? previous : 0;
  last_offset_ = last_offset;
  bucket_count_ = static_cast<uint8_t>(count);
  return absl::OkStatus();
}

}  // namespace persona
