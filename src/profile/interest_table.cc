#include "profile/interest_table.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "profile/compact_bytes.h"

namespace persona {
namespace {

// The smallest float >= v, so that a float error bound never understates the double it bounds.
float RoundUpToFloat(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, INFINITY);
  return f;
}

}  // namespace

InterestTable& InterestTable::operator=(const InterestTable& other) {
  if (this == &other) return *this;
  if (!other.slots_) {
    slots_.reset();
    return *this;
  }
  const uint32_t capacity = other.LoadHeader().capacity;
  slots_ = std::make_unique_for_overwrite<Entry[]>(capacity + 1);
  std::memcpy(slots_.get(), other.slots_.get(), (capacity + 1) * sizeof(Entry));
  return *this;
}

InterestTable::Header InterestTable::LoadHeader() const {
  Header h;
  std::memcpy(&h, &slots_[0], sizeof h);
  return h;
}

void InterestTable::Grow(uint32_t capacity) {
  auto fresh = std::make_unique_for_overwrite<Entry[]>(capacity + 1);
  Header h{0, 0, 0, 0};
  if (slots_) {
    h = LoadHeader();
    std::memcpy(fresh.get() + 1, begin(), h.size * sizeof(Entry));
  }
  h.capacity = static_cast<uint16_t>(capacity);
  slots_ = std::move(fresh);
  StoreHeader(h);
}

void InterestTable::Add(uint32_t code, double amount, uint32_t capacity, bool mark) {
  capacity = std::min(capacity, kMaxCapacity);
  if (capacity == 0) return;
  const uint32_t key = code | (mark ? kMarkBit : 0);
  if (!slots_) Grow(std::min<uint32_t>(capacity, 4));
  Header h = LoadHeader();
  Entry* e = begin();
  for (uint32_t i = 0; i < h.size; ++i) {
    if (e[i].code() == code) {
      e[i].score += amount;
      e[i].key |= key & kMarkBit;
      return;
    }
  }
  if (h.size < capacity) {
    if (h.size == h.capacity) {
      // Grow in steps of a quarter (at least 4 entries): tables are small, and a table that stops
      // at 18 keys should not pay for 32.
      Grow(std::min<uint32_t>(capacity, h.capacity + std::max<uint32_t>(4, h.capacity / 4)));
      e = begin();
      h = LoadHeader();
    }
    e[h.size] = Entry{amount, key, 0.0f};
    ++h.size;
    StoreHeader(h);
    return;
  }
  // Full: the new key takes over the smallest entry and inherits its score as error.
  uint32_t min_i = 0;
  for (uint32_t i = 1; i < h.size; ++i) {
    if (e[i].score < e[min_i].score) min_i = i;
  }
  const double floor_score = e[min_i].score;
  e[min_i] = Entry{floor_score + amount, key, RoundUpToFloat(floor_score)};
  if (h.evictions != UINT32_MAX) ++h.evictions;
  StoreHeader(h);
}

void InterestTable::AddTotal(double amount) {
  if (!slots_) Grow(4);
  Header h = LoadHeader();
  h.total += amount;
  StoreHeader(h);
}

void InterestTable::ScaleDownByPowerOfTwo(int k) {
  if (!slots_ || k == 0) return;
  Header h = LoadHeader();
  h.total = std::ldexp(h.total, -k);
  Entry* e = begin();
  for (uint32_t i = 0; i < h.size; ++i) {
    e[i].score = std::ldexp(e[i].score, -k);
    e[i].error = std::ldexp(e[i].error, -k);
  }
  StoreHeader(h);
}

std::span<const InterestTable::Entry> InterestTable::entries() const {
  if (!slots_) return {};
  return {begin(), LoadHeader().size};
}

const InterestTable::Entry* InterestTable::Find(uint32_t code) const {
  for (const Entry& e : entries()) {
    if (e.code() == code) return &e;
  }
  return nullptr;
}

uint32_t InterestTable::size() const { return slots_ ? LoadHeader().size : 0; }
uint32_t InterestTable::evictions() const { return slots_ ? LoadHeader().evictions : 0; }
double InterestTable::total() const { return slots_ ? LoadHeader().total : 0.0; }

void InterestTable::Restore(double total, uint32_t evictions, std::span<const Entry> entries,
                            uint32_t capacity) {
  capacity = std::min(capacity, kMaxCapacity);
  std::vector<Entry> kept(entries.begin(), entries.end());
  if (kept.size() > capacity) {
    // Keep the largest scores; stable so that equal scores keep their stored order.
    std::stable_sort(kept.begin(), kept.end(),
                     [](const Entry& a, const Entry& b) { return a.score > b.score; });
    const uint64_t dropped = kept.size() - capacity;
    kept.resize(capacity);
    evictions = static_cast<uint32_t>(std::min<uint64_t>(UINT32_MAX, evictions + dropped));
  }
  if (kept.empty() && total == 0 && evictions == 0) {
    slots_.reset();
    return;
  }
  const uint32_t allocated = std::max<uint32_t>(1, static_cast<uint32_t>(kept.size()));
  slots_ = std::make_unique_for_overwrite<Entry[]>(allocated + 1);
  if (!kept.empty()) std::memcpy(begin(), kept.data(), kept.size() * sizeof(Entry));
  StoreHeader(Header{total, evictions, static_cast<uint16_t>(kept.size()),
                     static_cast<uint16_t>(allocated)});
}

size_t InterestTable::HeapBytes() const {
  return slots_ ? MallocChunkBytes((LoadHeader().capacity + 1) * sizeof(Entry)) : 0;
}

}  // namespace persona
