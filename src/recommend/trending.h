// Trending: time-decayed item popularity, overall and per category node (an item counts for its
// category and every ancestor), updated with every event.
//
// Scores are kept relative to a fixed anchor time: an event of weight w at time t adds
// w * 2^((t - anchor) / half_life). Sums commute, so any arrival order gives the same scores, and
// the ranking at any "now" is the ranking of the anchored sums (decay scales every item alike);
// Score() converts to "weighted events per half-life as of now". When exponents grow large, all
// sums are rebased to a later anchor (rare; under the write lock).
//
// Parts: the state is split into `parts` independent parts, one per engine partition, each with
// its own anchor and sums, so that a part is a function of its partition's stream alone (exact
// crash recovery from a part's checkpoint plus its log tail) and can be saved and restored on its
// own. Reads combine the parts: every part's sums are brought to the latest anchor among them (an
// exact power-of-two scaling: anchors are whole multiples of the half-life) and added in part
// order 0..P-1, so the combination is a deterministic function of the parts. With one part the
// results are those of a single sum.
//
// Reads are served from a snapshot of the top lists rebuilt at most every `refresh_ms` of wall
// time, so a query never scans the catalogue on the request path more than once per interval.
// Ties (equal anchored sums) rank by item string when a catalog is set, else by id: catalog ids
// follow first sight across threads and differ between runs, the strings do not.
//
// Thread-safe: Add from any thread (a part is meant to have one writer, its partition, but more
// are safe), Top/Score/SavePart from any reader. LoadPart may run with concurrent readers.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "event/event.h"
#include "recommend/item_catalog.h"

namespace persona {

struct TrendingConfig {
  int64_t half_life_ms = 24LL * 3600 * 1000;
  // Weight of each event type (EventType order: view, click, search, cart, remove_cart, fav,
  // purchase, review, refund). Searches carry no item; removals and refunds do not count.
  std::array<float, kEventTypeCount> weights = {1, 1, 0, 3, 0, 2, 5, 1, 0};
  // Longest list kept per category in a snapshot (Top's k is capped by it).
  uint32_t snapshot_depth = 200;
  // Wall-clock age after which Top rebuilds the snapshot.
  int64_t refresh_ms = 1000;
};

class Trending {
 public:
  // `catalog` (may be null: no categories, ties by id, no SavePart/LoadPart) must outlive this.
  // `parts` >= 1 (0 is taken as 1).
  Trending(ItemCatalog* catalog, TrendingConfig config, uint32_t parts = 1);
  ~Trending();
  Trending(const Trending&) = delete;
  Trending& operator=(const Trending&) = delete;

  // Counts an event on `item` (an ItemCatalog id) of `type` at event time `ts_ms` in `part`.
  // Events for a part >= parts() are ignored. The one-argument form counts in part 0.
  void Add(uint32_t part, uint32_t item, EventType type, int64_t ts_ms);
  void Add(uint32_t item, EventType type, int64_t ts_ms) { Add(0, item, type, ts_ms); }

  struct Scored {
    uint32_t item;
    double score;  // weighted events per half-life, decayed to `now_ms`
  };
  // The k most popular items overall (category == ItemCatalog::kNone) or within a category node,
  // best first, from a snapshot at most refresh_ms old, summed over all parts.
  std::vector<Scored> Top(size_t k, uint32_t category, int64_t now_ms) const;
  // The item's current score summed over all parts (0 for unknown items). Reads the live sums.
  double Score(uint32_t item, int64_t now_ms) const;
  // Forces the next Top to rebuild its snapshot (tests, admin).
  void Invalidate();
  // Events counted (with a non-zero weight), over all parts.
  uint64_t events() const;
  uint32_t parts() const;

  // Appends the content of `part` to `out` in the format below: its anchor, its event count and,
  // for every item with a non-zero sum, the item string (catalog->Item) and the exact bits of the
  // anchored sum. Requires a catalog holding every id added (appends nothing without a catalog or
  // for part >= parts()). Safe with concurrent writers, but the blob reflects a log position only
  // when called by the part's writer (or while it is paused).
  //
  // Format (integers are varints, i64 zigzag; f64 is 8 little-endian bytes of the IEEE bits):
  //   'T' 1(version) half_life_ms:u64 anchor_ms:i64 events:u64 count:u64
  //   count x (item_len:u64 item_bytes sum:f64)
  //   checksum: 8 little-endian bytes, xxHash64 (common/hash.h) of every preceding byte
  void SavePart(uint32_t part, std::string* out) const;
  // Replaces the content of `part` with a blob written by SavePart (items interned with
  // catalog->Intern(item, {}): restore their categories into the catalog beforehand). Returns
  // DataLossError for truncated or corrupt input, FailedPreconditionError without a catalog or
  // when the blob's half-life differs from the config's, InvalidArgumentError for part >= parts().
  // On error the part is unchanged. Invalidates the snapshot. Concurrent readers are safe;
  // restore before the part's writer starts (a concurrent Add is serialised, then overwritten).
  absl::Status LoadPart(uint32_t part, std::string_view in);

 private:
  struct Part;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace persona
