// Item-to-item collaborative filtering learned online: every event on item j by a user whose
// recent items are i_1 (latest), i_2, ... adds co-occurrence weight between j and each i_d within
// the window (weight decays with the distance d), symmetrically. Similarity is cosine over these
// co-occurrence weights: sim(i, j) = c(i, j) / sqrt(n(i) * n(j)), with n(i) the total weight of
// pairs i took part in, and a shrinkage term (c / (c + shrink)) against one-off coincidences.
//
// Memory is bounded: each item keeps at most `max_neighbours` counters, maintained with the
// Space-Saving rule (a new neighbour replaces the smallest counter and inherits its count as
// error), which keeps the heavy co-occurrences exactly and bounds the error of the rest. A new
// item has neighbours as soon as one user interacts with it after another item.
//
// Parts: the counters are kept in `parts` independent parts, one per engine partition, so that a
// part is a function of its partition's stream alone (exact crash recovery from a part's
// checkpoint plus its log tail) and is saved and restored on its own. Reads combine the parts:
// c(i, j) is the sum over parts, in part order 0..P-1, of the guaranteed count (count - error) of
// j among i's counters in that part (nothing where j is not one of them), and n(i) the sum of the
// parts' totals. With users split over partitions and no eviction this equals one part fed with
// everything; with eviction each part bounds its own error. One part reads as a single table.
//
// Ties (equal similarity or score) rank by item string when a catalog is set, else by id: catalog
// ids follow first sight across threads and differ between runs, the strings do not.
//
// Thread-safe: Add from any thread (items are striped over locks per part; a part is meant to
// have one writer, its partition), Similar/Recommend/SavePart from any reader.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace persona {

class ItemCatalog;

struct ItemCfConfig {
  uint32_t max_neighbours = 100;  // counters kept per item (per part)
  uint32_t window = 5;            // previous items paired with each new one
  // Chosen on the validation splits of three Amazon datasets (BENCHMARKS.md, issue 4): shrink 10
  // and decay 0.9 helped all three; more neighbours help too but cost memory per item.
  float distance_decay = 0.9f;  // pair weight = decay^(d-1) for the d-th previous item
  float shrink = 10.0f;         // similarity *= c / (c + shrink)
};

class ItemCf {
 public:
  // `parts` >= 1 (0 is taken as 1). `catalog` (optional; must outlive this) names items for
  // tie-breaks and is required by SavePart/LoadPart.
  explicit ItemCf(ItemCfConfig config = {}, uint32_t parts = 1, ItemCatalog* catalog = nullptr);
  ~ItemCf();
  ItemCf(const ItemCf&) = delete;
  ItemCf& operator=(const ItemCf&) = delete;

  // Records, in `part`, an interaction with `item` by a user whose previous items are `previous`,
  // most recent first (only the first `window` are used; repeats of `item` itself are skipped).
  // `weight` scales the pair weights (e.g. by event type). Ignored for part >= parts(). The form
  // without a part records in part 0.
  void Add(uint32_t part, uint32_t item, std::span<const uint32_t> previous, float weight = 1.0f);
  void Add(uint32_t item, std::span<const uint32_t> previous, float weight = 1.0f) {
    Add(0, item, previous, weight);
  }

  struct Neighbour {
    uint32_t item;
    float similarity;
  };
  // The k most similar items to `item` over all parts, best first (empty for unknown items).
  std::vector<Neighbour> Similar(uint32_t item, size_t k) const;

  struct Scored {
    uint32_t item;
    float score;
    uint32_t because;  // the history item that contributed most
  };
  // Items scored for a user with `history` (most recent first): sum over the first `depth`
  // history items h_r of recency^r * sim(h_r, j). Items in `exclude` (sorted ascending) and in
  // the history itself are skipped. Best first, at most k.
  std::vector<Scored> Recommend(std::span<const uint32_t> history, size_t k,
                                std::span<const uint32_t> exclude = {}, size_t depth = 10,
                                float recency = 0.65f) const;

  // Items with at least one counter, summed over parts (an item with counters in two parts
  // counts twice: a distinct count would need a scan).
  size_t items() const;
  uint64_t pairs() const;  // pair updates applied, over all parts
  size_t MemoryBytes() const;
  uint32_t parts() const;

  // Appends the counters of `part` to `out` in the format below; item ids are written as their
  // catalog strings. Requires a catalog holding every id added (appends nothing without one or
  // for part >= parts()). Safe with concurrent writers, but the blob reflects a log position only
  // when called by the part's writer (or while it is paused).
  //
  // Format (integers are varints; f32 is 4 little-endian bytes of the IEEE bits):
  //   'C' 1(version) pairs:u64 string_count:u64 string_count x (len:u64 bytes)
  //   node_count:u64 node_count x (item:u64 total:f32 counter_count:u64
  //                                counter_count x (neighbour:u64 count:f32 error:f32))
  //   checksum: 8 little-endian bytes, xxHash64 (common/hash.h) of every preceding byte
  // `item` and `neighbour` index the string table. Counters keep their order: Space-Saving picks
  // the first smallest counter, so the order is part of the state.
  void SavePart(uint32_t part, std::string* out) const;
  // Replaces the counters of `part` with a blob written by SavePart, interning its items with
  // catalog->Intern(item, {}). Returns DataLossError for truncated or corrupt input (including a
  // node with more counters than max_neighbours), FailedPreconditionError without a catalog,
  // InvalidArgumentError for part >= parts(). On error the part is unchanged. Concurrent readers
  // are safe (while it runs they may see some nodes old, others new); restore before the part's
  // writer starts.
  absl::Status LoadPart(uint32_t part, std::string_view in);

 private:
  struct Part;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace persona
