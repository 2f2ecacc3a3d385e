// A bounded top-K of interest scores (categories, brands, items, keywords) kept with the
// Space-Saving algorithm (Metwally et al. 2005), weighted variant. Scores are plain sums of
// anchor-relative weights (see Profile): the table never decays anything itself, so the same
// increments in any order give the same sums. When the table is full, a new key replaces the
// entry with the smallest score, inheriting that score as its `error`: for every kept key
//   true_score <= score <= true_score + error,
// and every key whose true score exceeds total_increments / capacity is kept. `evictions() == 0`
// means the table is exact (error is 0 everywhere).
//
// Layout: one heap block, header + entries, 16 bytes each, grown in steps up to the capacity; an
// empty table is a single null pointer (8 bytes), because most users never search or see a brand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

namespace persona {

class InterestTable {
 public:
  // Keys are StringPool codes (< 2^31). Bit 31 of `key` is a per-entry mark that lookups ignore;
  // Profile uses it on category entries to tell keys that events named directly from ancestors
  // that were only credited through a dotted path.
  static constexpr uint32_t kMarkBit = 0x80000000u;
  static constexpr uint32_t kMaxCapacity = 0xffff;

  struct Entry {
    double score;  // sum of anchor-relative increments (an overestimate by at most `error`)
    uint32_t key;  // pool code | kMarkBit when marked
    float error;   // Space-Saving overestimate bound, rounded up to float
    uint32_t code() const { return key & ~kMarkBit; }
    bool marked() const { return (key & kMarkBit) != 0; }
  };

  InterestTable() = default;
  InterestTable(const InterestTable& other) { *this = other; }
  InterestTable& operator=(const InterestTable& other);
  InterestTable(InterestTable&&) noexcept = default;
  InterestTable& operator=(InterestTable&&) noexcept = default;

  // Adds `amount` (> 0) to `code`'s score; when the key is new and the table holds `capacity`
  // entries, evicts the smallest. `mark` sets the entry's mark (marks are sticky until eviction).
  void Add(uint32_t code, double amount, uint32_t capacity, bool mark);
  // Adds to the table's total: the denominator of shares. Kept apart from Add because one event
  // may credit several keys (a category and its ancestors) but counts once in the total.
  void AddTotal(double amount);
  // Multiplies every score, error and the total by 2^-k, exactly (binary floating point), when
  // the profile moves its decay anchor k half-lives later.
  void ScaleDownByPowerOfTwo(int k);

  // Entries in no particular order.
  std::span<const Entry> entries() const;
  // The entry of `code`, or nullptr.
  const Entry* Find(uint32_t code) const;
  uint32_t size() const;
  uint32_t evictions() const;
  double total() const;
  bool exact() const { return evictions() == 0; }

  // Replaces the contents (decoding). Entries beyond `capacity` (a smaller configured capacity
  // than when encoded) are dropped smallest first and counted as evictions.
  void Restore(double total, uint32_t evictions, std::span<const Entry> entries, uint32_t capacity);

  // Heap bytes owned, as malloc accounts them.
  size_t HeapBytes() const;

 private:
  struct Header {
    double total;
    uint32_t evictions;
    uint16_t size;
    uint16_t capacity;  // entries allocated
  };
  static_assert(sizeof(Header) == sizeof(Entry));

  // Slot 0 of the block holds the header (copied in and out with memcpy, so there is no type
  // punning), slots 1..capacity the entries: one allocation per table.
  Header LoadHeader() const;
  void StoreHeader(const Header& h) { std::memcpy(&slots_[0], &h, sizeof h); }
  Entry* begin() { return slots_.get() + 1; }
  const Entry* begin() const { return slots_.get() + 1; }
  void Grow(uint32_t capacity);

  std::unique_ptr<Entry[]> slots_;
};

}  // namespace persona
