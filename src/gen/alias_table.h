// Walker's alias method: O(1) sampling from a fixed discrete distribution with one 64-bit random
// draw, after O(n) construction (Vose's variant). This is what keeps Zipf item picks cheap enough
// for millions of events per second over catalogs of hundreds of thousands of items.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "gen/random.h"

namespace persona::gen {

class AliasTable {
 public:
  AliasTable() = default;
  // Builds the table for weights proportional to `weights` (each >= 0, finite). Outcomes with
  // weight 0 are never sampled. If all weights are 0 (or there are none) the table is empty.
  explicit AliasTable(std::span<const double> weights);

  // An index i with probability weights[i] / sum(weights). Must not be called on an empty table.
  uint32_t Sample(Rng& rng) const {
    const uint64_t r = rng.Next();
    // High 32 bits choose the column, low 32 bits decide between it and its alias.
    const uint32_t i = static_cast<uint32_t>(((r >> 32) * size_) >> 32);
    return static_cast<uint32_t>(r) < columns_[i].threshold ? i : columns_[i].alias;
  }

  bool empty() const { return size_ == 0; }
  uint32_t size() const { return static_cast<uint32_t>(size_); }
  size_t MemoryBytes() const { return columns_.capacity() * sizeof(Column); }

 private:
  // Column i yields i when the low 32 random bits are below `threshold`, else `alias`. Both in
  // one struct: a sample touches one cache line.
  struct Column {
    uint32_t threshold;
    uint32_t alias;
  };
  uint64_t size_ = 0;
  std::vector<Column> columns_;
};

}  // namespace persona::gen
