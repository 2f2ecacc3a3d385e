#include "model/item_cf.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/stable_slots.h"

namespace persona {
namespace {

// An item's Space-Saving counters as parallel arrays: the scan for a neighbour, done for every
// pair update, reads only the ids (400 bytes for 100 counters). `count` over-estimates the pair
// weight by at most `error`, the count of the counter it replaced. Unordered: keeping the
// counters sorted cost more in moves than it saved in scans.
struct ItemNode {
  std::unique_ptr<uint32_t[]> ids;
  std::unique_ptr<float[]> weights;  // counts in [0, capacity), errors in [capacity, 2 * capacity)
  uint32_t size = 0;
  uint32_t capacity = 0;
  // n(i): total pair weight i took part in. Written under the item's stripe lock, read without.
  std::atomic<float> total{0};

  float* counts() { return weights.get(); }
  float* errors() { return weights.get() + capacity; }
  const float* counts() const { return weights.get(); }
  const float* errors() const { return weights.get() + capacity; }
};

// The position of the first `x` in v[0, n), or n. Compares blocks of 16 without branches (the
// compiler turns a block into a few vector compares) and looks for the exact position only in a
// block that holds it: most scans for a neighbour miss.
template <typename T>
size_t FindFirst(const T* v, size_t n, T x) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    uint32_t hit = 0;
    for (size_t j = 0; j < 16; ++j) hit |= v[i + j] == x;
    if (hit) break;
  }
  for (; i < n; ++i) {
    if (v[i] == x) return i;
  }
  return n;
}

// The position of the smallest count (n > 0). Four independent running minima let the CPU
// overlap the comparisons; the compiler does not vectorise a float minimum without -ffast-math.
size_t MinIndex(const float* counts, size_t n) {
  float m[4] = {counts[0], counts[0], counts[0], counts[0]};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t k = 0; k < 4; ++k) m[k] = std::min(m[k], counts[i + k]);
  }
  for (; i < n; ++i) m[0] = std::min(m[0], counts[i]);
  return FindFirst(counts, n, std::min(std::min(m[0], m[1]), std::min(m[2], m[3])));
}

// Stripe counters are plain values updated under the stripe's lock; they are atomics only so that
// the statistics readers may load them without it.
struct alignas(64) Stripe {
  // Readers copy an item's counters under a shared lock. (absl::Mutex measured slower here.)
  mutable std::shared_mutex mu;
  std::atomic<uint64_t> pairs{0};
  std::atomic<uint64_t> items{0};
  std::atomic<uint64_t> counter_bytes{0};
};

constexpr uint32_t kStripes = 256;

void Bump(std::atomic<uint64_t>& v, uint64_t by) {
  v.store(v.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

struct ItemCf::State {
  explicit State(ItemCfConfig c) : config(c) {
    config.max_neighbours = std::max<uint32_t>(config.max_neighbours, 1);
    float w = 1.0f;
    for (uint32_t d = 0; d < config.window; ++d) {
      distance_weight.push_back(w);
      w *= config.distance_decay;
    }
  }

  Stripe& StripeOf(uint32_t item) const { return stripes[item % kStripes]; }

  // Adds `w` to the counter of `neighbour` in `node` (Space-Saving when the node is full). Caller
  // holds `stripe` exclusively.
  void Count(ItemNode& node, Stripe& stripe, uint32_t neighbour, float w) {
    const size_t i = FindFirst(node.ids.get(), node.size, neighbour);
    if (i < node.size) {
      node.counts()[i] += w;
    } else if (node.size < config.max_neighbours) {
      if (node.size == node.capacity) Grow(node, stripe);
      if (node.size == 0) Bump(stripe.items, 1);
      node.ids[node.size] = neighbour;
      node.counts()[node.size] = w;
      node.errors()[node.size] = 0;
      ++node.size;
    } else {
      // Replace the smallest counter; the newcomer inherits its count as error.
      const size_t j = MinIndex(node.counts(), node.size);
      node.ids[j] = neighbour;
      node.errors()[j] = node.counts()[j];
      node.counts()[j] += w;
    }
    node.total.store(node.total.load(std::memory_order_relaxed) + w, std::memory_order_relaxed);
  }

  // Doubles the node's arrays up to the bound, never past it: a full node costs exactly
  // max_neighbours counters.
  void Grow(ItemNode& node, Stripe& stripe) {
    const uint32_t capacity =
        std::min<uint32_t>(config.max_neighbours, std::max<uint32_t>(4, node.capacity * 2));
    auto ids = std::make_unique<uint32_t[]>(capacity);
    auto weights = std::make_unique<float[]>(2 * size_t{capacity});
    std::copy_n(node.ids.get(), node.size, ids.get());
    std::copy_n(node.counts(), node.size, weights.get());
    std::copy_n(node.errors(), node.size, weights.get() + capacity);
    Bump(stripe.counter_bytes, (capacity - node.capacity) * (sizeof(uint32_t) + 2 * sizeof(float)));
    node.ids = std::move(ids);
    node.weights = std::move(weights);
    node.capacity = capacity;
  }

  // Cosine with shrinkage over the guaranteed part of each counter (count - error): a neighbour
  // that just replaced a counter is credited with its own weight, not the inherited count.
  void Neighbours(uint32_t item, std::vector<Neighbour>* out) const {
    out->clear();
    const ItemNode* node = nodes.Find(item);
    if (node == nullptr) return;
    // Copied out under the lock, scored outside it: scoring reads other items' totals (cache
    // misses) and should not hold up the writers of this stripe.
    thread_local std::vector<uint32_t> ids;
    thread_local std::vector<float> guaranteed;
    float n_i;
    {
      std::shared_lock lock(StripeOf(item).mu);
      ids.assign(node->ids.get(), node->ids.get() + node->size);
      guaranteed.resize(node->size);
      for (size_t i = 0; i < node->size; ++i) {
        guaranteed[i] = node->counts()[i] - node->errors()[i];
      }
      n_i = node->total.load(std::memory_order_relaxed);
    }
    if (n_i <= 0) return;
    out->reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const float c = guaranteed[i];
      if (c <= 0) continue;
      const ItemNode* other = nodes.Find(ids[i]);
      if (other == nullptr) continue;
      const float n_j = other->total.load(std::memory_order_relaxed);
      if (n_j <= 0) continue;
      out->push_back({ids[i], c / std::sqrt(n_i * n_j) * (c / (c + config.shrink))});
    }
  }

  ItemCfConfig config;
  std::vector<float> distance_weight;  // decay^(d-1), d = 1..window
  mutable std::array<Stripe, kStripes> stripes;
  StableSlots<ItemNode> nodes;
};

ItemCf::ItemCf(ItemCfConfig config) : state_(std::make_unique<State>(config)) {}
ItemCf::~ItemCf() = default;

void ItemCf::Add(uint32_t item, std::span<const uint32_t> previous, float weight) {
  State& s = *state_;
  if (!(weight > 0)) return;
  // The distinct previous items within the window, each at its nearest distance: a user going
  // back and forth between two items should not count the pair once per trip within one event.
  constexpr size_t kMaxWindow = 64;
  std::array<uint32_t, kMaxWindow> others;
  std::array<float, kMaxWindow> weights;
  size_t n = 0;
  const size_t window = std::min<size_t>({previous.size(), s.config.window, kMaxWindow});
  for (size_t d = 0; d < window; ++d) {
    const uint32_t p = previous[d];
    if (p == item || std::find(others.begin(), others.begin() + n, p) != others.begin() + n) {
      continue;
    }
    others[n] = p;
    weights[n] = weight * s.distance_weight[d];
    ++n;
  }
  if (n == 0) return;

  // One stripe lock at a time (never two), so writers cannot deadlock.
  ItemNode& node = s.nodes.Get(item);
  {
    Stripe& stripe = s.StripeOf(item);
    std::unique_lock lock(stripe.mu);
    for (size_t i = 0; i < n; ++i) s.Count(node, stripe, others[i], weights[i]);
    Bump(stripe.pairs, n);
  }
  for (size_t i = 0; i < n; ++i) {
    ItemNode& other = s.nodes.Get(others[i]);
    Stripe& stripe = s.StripeOf(others[i]);
    std::unique_lock lock(stripe.mu);
    s.Count(other, stripe, item, weights[i]);
  }
}

std::vector<ItemCf::Neighbour> ItemCf::Similar(uint32_t item, size_t k) const {
  std::vector<Neighbour> out;
  state_->Neighbours(item, &out);
  const auto better = [](const Neighbour& a, const Neighbour& b) {
    return a.similarity != b.similarity ? a.similarity > b.similarity : a.item < b.item;
  };
  if (out.size() > k) {
    std::partial_sort(out.begin(), out.begin() + k, out.end(), better);
    out.resize(k);
  } else {
    std::sort(out.begin(), out.end(), better);
  }
  return out;
}

std::vector<ItemCf::Scored> ItemCf::Recommend(std::span<const uint32_t> history, size_t k,
                                              std::span<const uint32_t> exclude, size_t depth,
                                              float recency) const {
  std::vector<uint32_t> seen(history.begin(), history.end());
  std::sort(seen.begin(), seen.end());
  const auto skipped = [&](uint32_t item) {
    return std::binary_search(seen.begin(), seen.end(), item) ||
           std::binary_search(exclude.begin(), exclude.end(), item);
  };

  // Per candidate: the score so far and its largest contribution, which names `because` (the
  // most recent history item on ties: contributions arrive in history order).
  struct Candidate {
    float score = 0;
    float largest = 0;
    uint32_t because = 0;
  };
  absl::flat_hash_map<uint32_t, Candidate> candidates;
  std::vector<Neighbour> neighbours;
  float scale = 1.0f;
  for (size_t r = 0; r < std::min(depth, history.size()); ++r, scale *= recency) {
    state_->Neighbours(history[r], &neighbours);
    if (candidates.empty()) candidates.reserve(neighbours.size() * std::min(depth, history.size()));
    for (const Neighbour& n : neighbours) {
      if (skipped(n.item)) continue;
      const float value = scale * n.similarity;
      Candidate& c = candidates[n.item];
      c.score += value;
      if (value > c.largest) {
        c.largest = value;
        c.because = history[r];
      }
    }
  }
  std::vector<Scored> out;
  out.reserve(candidates.size());
  for (const auto& [item, c] : candidates) out.push_back({item, c.score, c.because});
  const auto better = [](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  };
  if (out.size() > k) {
    std::partial_sort(out.begin(), out.begin() + k, out.end(), better);
    out.resize(k);
  } else {
    std::sort(out.begin(), out.end(), better);
  }
  return out;
}

size_t ItemCf::items() const {
  size_t n = 0;
  for (const Stripe& s : state_->stripes) n += s.items.load(std::memory_order_relaxed);
  return n;
}

uint64_t ItemCf::pairs() const {
  uint64_t n = 0;
  for (const Stripe& s : state_->stripes) n += s.pairs.load(std::memory_order_relaxed);
  return n;
}

size_t ItemCf::MemoryBytes() const {
  size_t bytes = sizeof(State) + state_->nodes.MemoryBytes();
  for (const Stripe& s : state_->stripes) bytes += s.counter_bytes.load(std::memory_order_relaxed);
  return bytes;
}

}  // namespace persona
