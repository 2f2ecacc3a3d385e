// Trending: time-decayed item popularity, overall and per category node (an item counts for its
// category and every ancestor), updated with every event.
//
// Scores are kept relative to a fixed anchor time: an event of weight w at time t adds
// w * 2^((t - anchor) / half_life). Sums commute, so any arrival order gives the same scores, and
// the ranking at any "now" is the ranking of the anchored sums (decay scales every item alike);
// Score() converts to "weighted events per half-life as of now". When exponents grow large, all
// sums are rebased to a later anchor (rare; under the write lock).
//
// Reads are served from a snapshot of the top lists rebuilt at most every `refresh_ms` of wall
// time, so a query never scans the catalogue on the request path more than once per interval.
// Thread-safe: Add from every partition writer, Top from any reader.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "event/event.h"
#include "model/item_catalog.h"

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
  Trending(const ItemCatalog* catalog, TrendingConfig config);
  ~Trending();
  Trending(const Trending&) = delete;
  Trending& operator=(const Trending&) = delete;

  // Counts an event on `item` (an ItemCatalog id) of `type` at event time `ts_ms`.
  void Add(uint32_t item, EventType type, int64_t ts_ms);

  struct Scored {
    uint32_t item;
    double score;  // weighted events per half-life, decayed to `now_ms`
  };
  // The k most popular items overall (category == ItemCatalog::kNone) or within a category node,
  // best first, from a snapshot at most refresh_ms old.
  std::vector<Scored> Top(size_t k, uint32_t category, int64_t now_ms) const;
  // The item's current score (0 for unknown items).
  double Score(uint32_t item, int64_t now_ms) const;
  // Forces the next Top to rebuild its snapshot (tests, admin).
  void Invalidate();
  uint64_t events() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace persona
