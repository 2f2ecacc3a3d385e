#include "recommend/item_cf.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/stable_slots.h"
#include "common/varint.h"
#include "recommend/item_catalog.h"

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

// The position of the first smallest count (n > 0): a vector minimum over blocks of 4, then the
// first position holding it. (The compiler does not vectorise a float minimum without
// -ffast-math; counts are never NaN, so _mm_min_ps gives the true minimum.)
size_t MinIndex(const float* counts, size_t n) {
  float m = counts[0];
  size_t i = 0;
#if defined(__SSE2__)
  if (n >= 8) {
    __m128 a = _mm_loadu_ps(counts);
    __m128 b = _mm_loadu_ps(counts + 4);
    for (i = 8; i + 8 <= n; i += 8) {
      a = _mm_min_ps(a, _mm_loadu_ps(counts + i));
      b = _mm_min_ps(b, _mm_loadu_ps(counts + i + 4));
    }
    a = _mm_min_ps(a, b);
    a = _mm_min_ps(a, _mm_shuffle_ps(a, a, _MM_SHUFFLE(1, 0, 3, 2)));
    a = _mm_min_ps(a, _mm_shuffle_ps(a, a, _MM_SHUFFLE(2, 3, 0, 1)));
    m = _mm_cvtss_f32(a);
  }
#endif
  for (; i < n; ++i) m = std::min(m, counts[i]);
  return FindFirst(counts, n, m);
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

// The capacity Grow reaches for `size` counters (so that a loaded node costs what it did).
uint32_t CapacityFor(uint32_t size, uint32_t max_neighbours) {
  uint32_t capacity = 0;
  while (capacity < size) {
    capacity = std::min<uint32_t>(max_neighbours, std::max<uint32_t>(4, capacity * 2));
  }
  return capacity;
}

// SavePart's format (item_cf.h).
constexpr char kPartMagic = 'C';
constexpr uint64_t kPartVersion = 1;
constexpr size_t kChecksumBytes = 8;
constexpr size_t kMinNodeBytes = 1 + 4 + 1;     // item index, total, counter count
constexpr size_t kMinCounterBytes = 1 + 4 + 4;  // neighbour index, count, error

void AppendFloat(std::string* out, float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  const char buf[4] = {static_cast<char>(bits), static_cast<char>(bits >> 8),
                       static_cast<char>(bits >> 16), static_cast<char>(bits >> 24)};
  out->append(buf, 4);
}

bool ReadFloat(std::string_view* in, float* v) {
  if (in->size() < 4) return false;
  uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) {
    bits |= static_cast<uint32_t>(static_cast<unsigned char>((*in)[i])) << (8 * i);
  }
  *v = std::bit_cast<float>(bits);
  in->remove_prefix(4);
  return true;
}

// A node as SavePart reads it and LoadPart rebuilds it: counters in their array order.
struct NodeCopy {
  uint32_t item;
  float total;
  std::vector<uint32_t> ids;
  std::vector<float> counts;
  std::vector<float> errors;
};

}  // namespace

// One partition's counters. Writers and readers of an item serialise on its stripe.
struct ItemCf::Part {
  Stripe& StripeOf(uint32_t item) const { return stripes[item % kStripes]; }

  // The node of `item`, created when needed; keeps `item_bound` above every node id.
  ItemNode& NodeOf(uint32_t item) {
    ItemNode& node = nodes.Get(item);
    uint32_t bound = item_bound.load(std::memory_order_relaxed);
    while (item >= bound &&
           !item_bound.compare_exchange_weak(bound, item + 1, std::memory_order_release,
                                             std::memory_order_relaxed)) {
    }
    return node;
  }

  // n(item) in this part (0 when it has no node).
  float TotalOf(uint32_t item) const {
    const ItemNode* node = nodes.Find(item);
    return node == nullptr ? 0.0f : node->total.load(std::memory_order_relaxed);
  }

  uint64_t Sum(std::atomic<uint64_t> Stripe::*field) const {
    uint64_t n = 0;
    for (const Stripe& s : stripes) n += (s.*field).load(std::memory_order_relaxed);
    return n;
  }

  mutable std::array<Stripe, kStripes> stripes;
  StableSlots<ItemNode> nodes;
  std::atomic<uint32_t> item_bound{0};  // 1 + the largest id that has a node
};

struct ItemCf::State {
  State(ItemCfConfig c, uint32_t n, ItemCatalog* cat)
      : config(c),
        catalog(cat),
        num_parts(std::max<uint32_t>(n, 1)),
        parts(std::make_unique<Part[]>(num_parts)) {
    config.max_neighbours = std::max<uint32_t>(config.max_neighbours, 1);
    float w = 1.0f;
    for (uint32_t d = 0; d < config.window; ++d) {
      distance_weight.push_back(w);
      w *= config.distance_decay;
    }
  }

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
    Resize(node, stripe, capacity);
  }

  void Resize(ItemNode& node, Stripe& stripe, uint32_t capacity) {
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

  // n(item) over all parts, added in part order.
  float TotalOf(uint32_t item) const {
    float n = 0;
    for (uint32_t p = 0; p < num_parts; ++p) n += parts[p].TotalOf(item);
    return n;
  }

  // Cosine with shrinkage over the guaranteed part of each counter (count - error): a neighbour
  // that just replaced a counter is credited with its own weight, not the inherited count.
  void Neighbours(uint32_t item, std::vector<Neighbour>* out) const {
    out->clear();
    if (num_parts > 1) return CombinedNeighbours(item, out);
    const Part& part = parts[0];
    const ItemNode* node = part.nodes.Find(item);
    if (node == nullptr) return;
    // Copied out under the lock, scored outside it: scoring reads other items' totals (cache
    // misses) and should not hold up the writers of this stripe.
    thread_local std::vector<uint32_t> ids;
    thread_local std::vector<float> guaranteed;
    float n_i;
    {
      std::shared_lock lock(part.StripeOf(item).mu);
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
      const ItemNode* other = part.nodes.Find(ids[i]);
      if (other == nullptr) continue;
      const float n_j = other->total.load(std::memory_order_relaxed);
      if (n_j <= 0) continue;
      out->push_back({ids[i], c / std::sqrt(n_i * n_j) * (c / (c + config.shrink))});
    }
  }

  // Neighbours over several parts: c(i, j) and n(i) summed in part order, so the floats are a
  // function of the parts whatever the hash map's order (the callers sort with a total order).
  void CombinedNeighbours(uint32_t item, std::vector<Neighbour>* out) const {
    thread_local absl::flat_hash_map<uint32_t, float> combined;
    combined.clear();
    float n_i = 0;
    for (uint32_t p = 0; p < num_parts; ++p) {
      const Part& part = parts[p];
      const ItemNode* node = part.nodes.Find(item);
      if (node == nullptr) continue;
      std::shared_lock lock(part.StripeOf(item).mu);
      for (size_t i = 0; i < node->size; ++i) {
        combined[node->ids[i]] += node->counts()[i] - node->errors()[i];
      }
      n_i += node->total.load(std::memory_order_relaxed);
    }
    if (n_i <= 0) return;
    out->reserve(combined.size());
    for (const auto& [j, c] : combined) {
      if (c <= 0) continue;
      const float n_j = TotalOf(j);
      if (n_j <= 0) continue;
      out->push_back({j, c / std::sqrt(n_i * n_j) * (c / (c + config.shrink))});
    }
  }

  // Whether `a` ranks before `b` among equal values: by item string, else by id.
  bool TieBefore(uint32_t a, uint32_t b) const {
    if (catalog != nullptr) {
      const std::string_view x = catalog->Item(a);
      const std::string_view y = catalog->Item(b);
      if (x != y) return x < y;
    }
    return a < b;
  }

  ItemCfConfig config;
  std::vector<float> distance_weight;  // decay^(d-1), d = 1..window
  ItemCatalog* catalog;
  uint32_t num_parts;
  std::unique_ptr<Part[]> parts;
};

ItemCf::ItemCf(ItemCfConfig config, uint32_t parts, ItemCatalog* catalog)
    : state_(std::make_unique<State>(config, parts, catalog)) {}
ItemCf::~ItemCf() = default;

void ItemCf::Add(uint32_t part_index, uint32_t item, std::span<const uint32_t> previous,
                 float weight) {
  State& s = *state_;
  if (part_index >= s.num_parts || !(weight > 0)) return;
  Part& part = s.parts[part_index];
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

  // The n + 1 nodes are scattered over memory and each costs three dependent cache misses (the
  // node, its ids, its counts): ask for all of them before using any, so the misses overlap
  // instead of following each other (the scans below measured ~3/4 stall before this).
  std::array<ItemNode*, kMaxWindow> nodes;
  ItemNode& node = part.NodeOf(item);
  __builtin_prefetch(&node);
  for (size_t i = 0; i < n; ++i) {
    nodes[i] = &part.NodeOf(others[i]);
    __builtin_prefetch(nodes[i]);
  }
  const uint32_t max_neighbours = s.config.max_neighbours;
  const auto prefetch_counters = [max_neighbours](const ItemNode& x) {
    // Every line of the ids (the scan reads them all when the neighbour is new, the common
    // case); the counts are read at one position, or all of them only when the node is full.
    const size_t bytes = x.size * sizeof(uint32_t);
    const char* ids = reinterpret_cast<const char*>(x.ids.get());
    for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(ids + b);
    const char* counts = reinterpret_cast<const char*>(x.counts());
    if (x.size == max_neighbours) {
      for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(counts + b);
    } else if (x.size != 0) {
      __builtin_prefetch(counts);
    }
  };
  prefetch_counters(node);
  for (size_t i = 0; i < n; ++i) prefetch_counters(*nodes[i]);

  // One stripe lock at a time (never two), so writers cannot deadlock.
  {
    Stripe& stripe = part.StripeOf(item);
    std::unique_lock lock(stripe.mu);
    for (size_t i = 0; i < n; ++i) s.Count(node, stripe, others[i], weights[i]);
    Bump(stripe.pairs, n);
  }
  for (size_t i = 0; i < n; ++i) {
    Stripe& stripe = part.StripeOf(others[i]);
    std::unique_lock lock(stripe.mu);
    s.Count(*nodes[i], stripe, item, weights[i]);
  }
}

std::vector<ItemCf::Neighbour> ItemCf::Similar(uint32_t item, size_t k) const {
  std::vector<Neighbour> out;
  state_->Neighbours(item, &out);
  const auto better = [this](const Neighbour& a, const Neighbour& b) {
    return a.similarity != b.similarity ? a.similarity > b.similarity
                                        : state_->TieBefore(a.item, b.item);
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
  const auto better = [this](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : state_->TieBefore(a.item, b.item);
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
  for (uint32_t p = 0; p < state_->num_parts; ++p) n += state_->parts[p].Sum(&Stripe::items);
  return n;
}

uint64_t ItemCf::pairs() const {
  uint64_t n = 0;
  for (uint32_t p = 0; p < state_->num_parts; ++p) n += state_->parts[p].Sum(&Stripe::pairs);
  return n;
}

size_t ItemCf::MemoryBytes() const {
  size_t bytes = sizeof(State) + state_->distance_weight.capacity() * sizeof(float);
  for (uint32_t p = 0; p < state_->num_parts; ++p) {
    const Part& part = state_->parts[p];
    bytes += sizeof(Part) + part.nodes.MemoryBytes() + part.Sum(&Stripe::counter_bytes);
  }
  return bytes;
}

uint32_t ItemCf::parts() const { return state_->num_parts; }

void ItemCf::SavePart(uint32_t part_index, std::string* out) const {
  const State& s = *state_;
  if (part_index >= s.num_parts || s.catalog == nullptr) return;
  const Part& part = s.parts[part_index];

  // Copy every node out (each under its stripe's shared lock), naming items by string index.
  std::vector<NodeCopy> copies;
  absl::flat_hash_map<uint32_t, uint32_t> index_of;  // catalog id -> string table index
  std::vector<uint32_t> table;                       // string table, as catalog ids
  const auto index = [&](uint32_t id) {
    auto [it, added] = index_of.try_emplace(id, static_cast<uint32_t>(table.size()));
    if (added) table.push_back(id);
    return it->second;
  };
  const uint32_t bound = part.item_bound.load(std::memory_order_acquire);
  for (uint32_t id = 0; id < bound; ++id) {
    const ItemNode* node = part.nodes.Find(id);
    if (node == nullptr) continue;
    NodeCopy copy{id, 0, {}, {}, {}};
    {
      std::shared_lock lock(part.StripeOf(id).mu);
      copy.total = node->total.load(std::memory_order_relaxed);
      copy.ids.assign(node->ids.get(), node->ids.get() + node->size);
      copy.counts.assign(node->counts(), node->counts() + node->size);
      copy.errors.assign(node->errors(), node->errors() + node->size);
    }
    if (copy.ids.empty() && copy.total == 0) continue;
    copy.item = index(id);
    for (uint32_t& neighbour : copy.ids) neighbour = index(neighbour);
    copies.push_back(std::move(copy));
  }

  const size_t start = out->size();
  out->push_back(kPartMagic);
  AppendVarint64(out, kPartVersion);
  AppendVarint64(out, part.Sum(&Stripe::pairs));
  AppendVarint64(out, table.size());
  for (uint32_t id : table) {
    const std::string_view item = s.catalog->Item(id);
    AppendVarint64(out, item.size());
    out->append(item);
  }
  AppendVarint64(out, copies.size());
  for (const NodeCopy& copy : copies) {
    AppendVarint64(out, copy.item);
    AppendFloat(out, copy.total);
    AppendVarint64(out, copy.ids.size());
    for (size_t i = 0; i < copy.ids.size(); ++i) {
      AppendVarint64(out, copy.ids[i]);
      AppendFloat(out, copy.counts[i]);
      AppendFloat(out, copy.errors[i]);
    }
  }
  AppendFixed64(out, Hash64(std::string_view(*out).substr(start)));
}

absl::Status ItemCf::LoadPart(uint32_t part_index, std::string_view in) {
  State& s = *state_;
  if (part_index >= s.num_parts) {
    return absl::InvalidArgumentError(absl::StrCat("item-cf: no part ", part_index));
  }
  if (s.catalog == nullptr) {
    return absl::FailedPreconditionError("item-cf: loading a part needs an item catalog");
  }
  const auto corrupt = [part_index](const char* what) {
    return absl::DataLossError(absl::StrCat("item-cf part ", part_index, ": ", what));
  };
  if (in.size() < 1 + kChecksumBytes) return corrupt("truncated");
  std::string_view body = in.substr(0, in.size() - kChecksumBytes);
  std::string_view tail = in.substr(body.size());
  uint64_t checksum = 0;
  ReadFixed64(&tail, &checksum);
  if (checksum != Hash64(body)) return corrupt("checksum mismatch");

  if (body.front() != kPartMagic) return corrupt("not an item-cf part");
  body.remove_prefix(1);
  uint64_t version, pairs, string_count;
  if (!ReadVarint64(&body, &version) || version != kPartVersion) {
    return corrupt("unknown version");
  }
  if (!ReadVarint64(&body, &pairs) || !ReadVarint64(&body, &string_count)) {
    return corrupt("truncated header");
  }
  // Every string costs at least its length byte.
  if (string_count > body.size()) return corrupt("string count exceeds the data");
  std::vector<std::string_view> strings;
  strings.reserve(string_count);
  absl::flat_hash_set<std::string_view> distinct;
  distinct.reserve(string_count);
  for (uint64_t i = 0; i < string_count; ++i) {
    uint64_t size;
    if (!ReadVarint64(&body, &size) || size > body.size()) return corrupt("truncated string");
    strings.push_back(body.substr(0, size));
    body.remove_prefix(size);
    if (!distinct.insert(strings.back()).second) return corrupt("string listed twice");
  }

  uint64_t node_count;
  if (!ReadVarint64(&body, &node_count)) return corrupt("truncated node count");
  if (node_count > body.size() / kMinNodeBytes) return corrupt("node count exceeds the data");
  std::vector<NodeCopy> nodes;
  nodes.reserve(node_count);
  // Per string index, the last node that used it (as the node or as a neighbour): catches a node
  // listed twice and a neighbour listed twice in one node.
  constexpr uint64_t kUnused = ~uint64_t{0};
  std::vector<uint64_t> node_of(string_count, kUnused);
  std::vector<uint64_t> neighbour_of(string_count, kUnused);
  const auto valid_weight = [](float v) { return std::isfinite(v) && v >= 0; };
  for (uint64_t n = 0; n < node_count; ++n) {
    uint64_t item, counter_count;
    NodeCopy node;
    if (!ReadVarint64(&body, &item) || !ReadFloat(&body, &node.total) ||
        !ReadVarint64(&body, &counter_count)) {
      return corrupt("truncated node");
    }
    if (item >= string_count) return corrupt("node item out of range");
    if (node_of[item] != kUnused) return corrupt("node listed twice");
    node_of[item] = n;
    if (!valid_weight(node.total)) return corrupt("invalid node total");
    if (counter_count > s.config.max_neighbours) {
      return corrupt("node has more counters than max_neighbours");
    }
    if (counter_count > body.size() / kMinCounterBytes) return corrupt("truncated counters");
    node.item = static_cast<uint32_t>(item);
    node.ids.resize(counter_count);
    node.counts.resize(counter_count);
    node.errors.resize(counter_count);
    for (uint64_t c = 0; c < counter_count; ++c) {
      uint64_t neighbour;
      if (!ReadVarint64(&body, &neighbour) || !ReadFloat(&body, &node.counts[c]) ||
          !ReadFloat(&body, &node.errors[c])) {
        return corrupt("truncated counter");
      }
      if (neighbour >= string_count || neighbour == item) {
        return corrupt("counter neighbour out of range");
      }
      if (neighbour_of[neighbour] == n) return corrupt("neighbour listed twice in a node");
      neighbour_of[neighbour] = n;
      if (!valid_weight(node.counts[c]) || !valid_weight(node.errors[c]) ||
          node.errors[c] > node.counts[c]) {
        return corrupt("invalid counter");
      }
      node.ids[c] = static_cast<uint32_t>(neighbour);
    }
    nodes.push_back(std::move(node));
  }
  if (!body.empty()) return corrupt("trailing bytes");

  // Valid: intern the strings and replace the part.
  std::vector<uint32_t> ids(strings.size());
  for (size_t i = 0; i < strings.size(); ++i) ids[i] = s.catalog->Intern(strings[i], {});
  Part& part = s.parts[part_index];
  for (NodeCopy& node : nodes) {
    node.item = ids[node.item];
    for (uint32_t& neighbour : node.ids) neighbour = ids[neighbour];
    part.NodeOf(node.item);  // allocate before blocking the writers
  }
  // Stripe by stripe (holding all 256 locks at once would be too many for ThreadSanitizer's
  // deadlock detector): a concurrent reader sees each node either old or new.
  std::sort(nodes.begin(), nodes.end(), [](const NodeCopy& a, const NodeCopy& b) {
    return a.item % kStripes < b.item % kStripes;
  });
  const uint32_t bound = part.item_bound.load(std::memory_order_relaxed);
  auto next = nodes.begin();
  for (uint32_t i = 0; i < kStripes; ++i) {
    Stripe& stripe = part.stripes[i];
    std::unique_lock lock(stripe.mu);
    for (uint32_t id = i; id < bound; id += kStripes) {
      ItemNode* node = part.nodes.Find(id);
      if (node == nullptr) continue;
      node->ids.reset();
      node->weights.reset();
      node->size = 0;
      node->capacity = 0;
      node->total.store(0, std::memory_order_relaxed);
    }
    stripe.pairs.store(i == 0 ? pairs : 0, std::memory_order_relaxed);
    stripe.items.store(0, std::memory_order_relaxed);
    stripe.counter_bytes.store(0, std::memory_order_relaxed);
    for (; next != nodes.end() && next->item % kStripes == i; ++next) {
      const NodeCopy& copy = *next;
      ItemNode& node = *part.nodes.Find(copy.item);
      const uint32_t size = static_cast<uint32_t>(copy.ids.size());
      if (size > 0) {
        s.Resize(node, stripe, CapacityFor(size, s.config.max_neighbours));
        std::copy(copy.ids.begin(), copy.ids.end(), node.ids.get());
        std::copy(copy.counts.begin(), copy.counts.end(), node.counts());
        std::copy(copy.errors.begin(), copy.errors.end(), node.errors());
        node.size = size;
        Bump(stripe.items, 1);
      }
      node.total.store(copy.total, std::memory_order_relaxed);
    }
  }
  return absl::OkStatus();
}

}  // namespace persona
