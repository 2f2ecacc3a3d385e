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
// Thread-safe: Add from every partition writer (items are striped over locks), Similar/Recommend
// from any reader.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace persona {

struct ItemCfConfig {
  uint32_t max_neighbours = 100;  // counters kept per item
  uint32_t window = 5;            // previous items paired with each new one
  // Chosen on the validation splits of three Amazon datasets (BENCHMARKS.md, issue 4): shrink 10
  // and decay 0.9 helped all three; more neighbours help too but cost memory per item.
  float distance_decay = 0.9f;    // pair weight = decay^(d-1) for the d-th previous item
  float shrink = 10.0f;           // similarity *= c / (c + shrink)
};

class ItemCf {
 public:
  explicit ItemCf(ItemCfConfig config = {});
  ~ItemCf();
  ItemCf(const ItemCf&) = delete;
  ItemCf& operator=(const ItemCf&) = delete;

  // Records an interaction with `item` by a user whose previous items are `previous`, most recent
  // first (only the first `window` are used; repeats of `item` itself are skipped). `weight`
  // scales the pair weights (e.g. by event type).
  void Add(uint32_t item, std::span<const uint32_t> previous, float weight = 1.0f);

  struct Neighbour {
    uint32_t item;
    float similarity;
  };
  // The k most similar items to `item`, best first (empty for unknown items).
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

  size_t items() const;      // items with at least one counter
  uint64_t pairs() const;    // pair updates applied
  size_t MemoryBytes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace persona
