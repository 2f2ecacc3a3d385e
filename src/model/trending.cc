#include "model/trending.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <numbers>
#include <thread>
#include <vector>

#include "common/stable_slots.h"

namespace persona {
namespace {

constexpr int64_t kNoAnchor = std::numeric_limits<int64_t>::min();
// Sums are rebased once an event lies this many half-lives after the anchor: 2^128 per unit of
// weight leaves 2^896 of headroom for the sums, and a rebase happens every 128 half-lives of
// event time (four months at the default one day).
constexpr int64_t kRebaseHalfLives = 128;
constexpr uint32_t kStripes = 64;

int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// 2^(d / half_life) split into whole half-lives (exact, by ldexp) and a fraction that depends only
// on d mod half_life. Anchors are whole multiples of the half-life, so an event's contribution is
// the same up to an exact power of two whatever the anchor: rebasing loses nothing but underflow.
double Growth(int64_t d, int64_t half_life) {
  const int64_t whole = FloorDiv(d, half_life);
  const int64_t rest = d - whole * half_life;
  const double fraction = std::exp2(static_cast<double>(rest) / static_cast<double>(half_life));
  return std::ldexp(fraction, static_cast<int>(std::clamp<int64_t>(whole, -100000, 100000)));
}

struct alignas(64) Stripe {
  std::mutex mu;
  std::atomic<uint64_t> events{0};  // updated under mu; atomic so events() may read it without
};

struct Entry {
  uint32_t item;
  double anchored;  // the item's sum relative to the snapshot's anchor
};

bool Better(const Entry& a, const Entry& b) {
  return a.anchored != b.anchored ? a.anchored > b.anchored : a.item < b.item;
}

struct Snapshot {
  std::chrono::steady_clock::time_point built;
  int64_t anchor_ms = kNoAnchor;
  std::vector<Entry> overall;
  std::vector<std::vector<Entry>> by_category;  // indexed by category node id
};

void KeepBest(std::vector<Entry>* list, size_t depth) {
  if (list->size() > depth) {
    std::nth_element(list->begin(), list->begin() + depth, list->end(), Better);
    list->resize(depth);
    list->shrink_to_fit();
  }
  std::sort(list->begin(), list->end(), Better);
}

}  // namespace

struct Trending::State {
  State(const ItemCatalog* c, TrendingConfig cfg) : catalog(c), config(cfg) {
    config.half_life_ms = std::max<int64_t>(config.half_life_ms, 1);
  }

  // Scales every sum to the anchor of `ts_ms` (a whole multiple of the half-life). Takes every
  // stripe, so no Add runs meanwhile; readers retry through `version`.
  void Rebase(int64_t ts_ms) {
    std::array<std::unique_lock<std::mutex>, kStripes> locks;
    for (uint32_t i = 0; i < kStripes; ++i) locks[i] = std::unique_lock(stripes[i].mu);
    const int64_t anchor = anchor_ms.load(std::memory_order_relaxed);
    // Another writer may have rebased while this one waited for the stripes.
    if (FloorDiv(ts_ms - anchor, config.half_life_ms) <= kRebaseHalfLives) return;
    const int64_t new_anchor = FloorDiv(ts_ms, config.half_life_ms) * config.half_life_ms;
    const int shift =
        static_cast<int>(std::min<int64_t>((new_anchor - anchor) / config.half_life_ms, 100000));
    const uint64_t v = version.load(std::memory_order_relaxed);
    version.store(v + 1, std::memory_order_relaxed);
    // Release stores: a reader that loads any rebased sum also sees the odd version and retries.
    const uint32_t bound = item_bound.load(std::memory_order_relaxed);
    for (uint32_t id = 0; id < bound; ++id) {
      if (std::atomic<double>* slot = scores.Find(id)) {
        slot->store(std::ldexp(slot->load(std::memory_order_relaxed), -shift),
                    std::memory_order_release);
      }
    }
    anchor_ms.store(new_anchor, std::memory_order_release);
    version.store(v + 2, std::memory_order_release);
  }

  // Runs `read` (which loads sums with acquire) until no rebase overlapped it; returns the anchor
  // of the sums it read. Every sum is stored with release (by Add or Rebase), so a reader that
  // saw a sum written after the anchor moved also sees the version change. No fences: they
  // would be invisible to ThreadSanitizer.
  template <typename Read>
  int64_t ReadConsistent(Read read) const {
    for (;;) {
      const uint64_t v = version.load(std::memory_order_acquire);
      if (v & 1) {
        std::this_thread::yield();
        continue;
      }
      read();
      const int64_t anchor = anchor_ms.load(std::memory_order_acquire);
      if (version.load(std::memory_order_relaxed) == v) return anchor;
    }
  }

  std::shared_ptr<const Snapshot> Build() const {
    auto snap = std::make_shared<Snapshot>();
    const size_t depth = config.snapshot_depth;
    snap->anchor_ms = ReadConsistent([&] {
      snap->overall.clear();
      snap->by_category.clear();
      if (catalog != nullptr) snap->by_category.resize(catalog->category_count());
      const uint32_t bound = item_bound.load(std::memory_order_acquire);
      for (uint32_t id = 0; id < bound; ++id) {
        const std::atomic<double>* slot = scores.Find(id);
        if (slot == nullptr) continue;
        const double value = slot->load(std::memory_order_acquire);
        if (!(value > 0)) continue;
        snap->overall.push_back({id, value});
        if (catalog == nullptr) continue;
        for (uint32_t node : catalog->CategoryLineage(catalog->CategoryOf(id))) {
          if (node >= snap->by_category.size()) snap->by_category.resize(node + 1);
          snap->by_category[node].push_back({id, value});
        }
      }
    });
    KeepBest(&snap->overall, depth);
    for (std::vector<Entry>& list : snap->by_category) KeepBest(&list, depth);
    snap->built = std::chrono::steady_clock::now();
    return snap;
  }

  std::shared_ptr<const Snapshot> Current() const {
    std::shared_ptr<const Snapshot> snap = snapshot.load(std::memory_order_acquire);
    const auto fresh = [&](const std::shared_ptr<const Snapshot>& s) {
      return s != nullptr && !invalidated.load(std::memory_order_acquire) &&
             std::chrono::steady_clock::now() - s->built <
                 std::chrono::milliseconds(config.refresh_ms);
    };
    if (fresh(snap)) return snap;
    std::unique_lock lock(rebuild_mu, std::try_to_lock);
    if (!lock.owns_lock()) {
      // Another reader is rebuilding: the previous snapshot answers meanwhile.
      if (snap != nullptr) return snap;
      lock.lock();
    }
    snap = snapshot.load(std::memory_order_acquire);
    if (fresh(snap)) return snap;
    invalidated.store(false, std::memory_order_release);
    snap = Build();
    snapshot.store(snap, std::memory_order_release);
    return snap;
  }

  const ItemCatalog* catalog;
  TrendingConfig config;
  std::array<Stripe, kStripes> stripes;
  StableSlots<std::atomic<double>> scores;
  alignas(64) std::atomic<uint32_t> item_bound{0};  // 1 + the largest item id ever added
  std::atomic<int64_t> anchor_ms{kNoAnchor};
  std::atomic<uint64_t> version{0};  // seqlock over (anchor, sums): odd while a rebase runs
  mutable std::mutex rebuild_mu;
  mutable std::atomic<std::shared_ptr<const Snapshot>> snapshot;
  mutable std::atomic<bool> invalidated{false};
};

Trending::Trending(const ItemCatalog* catalog, TrendingConfig config)
    : state_(std::make_unique<State>(catalog, config)) {}
Trending::~Trending() = default;

void Trending::Add(uint32_t item, EventType type, int64_t ts_ms) {
  State& s = *state_;
  const size_t t = static_cast<size_t>(type);
  if (t >= s.config.weights.size() || item == ItemCatalog::kNone) return;
  const double weight = s.config.weights[t];
  if (weight == 0) return;
  std::atomic<double>& slot = s.scores.Get(item);
  uint32_t bound = s.item_bound.load(std::memory_order_relaxed);
  while (item >= bound &&
         !s.item_bound.compare_exchange_weak(bound, item + 1, std::memory_order_release,
                                             std::memory_order_relaxed)) {
  }
  const int64_t half_life = s.config.half_life_ms;
  Stripe& stripe = s.stripes[item % kStripes];
  for (;;) {
    std::unique_lock lock(stripe.mu);
    // Acquire/release on the anchor so that a reader who sees this sum also sees its anchor.
    int64_t anchor = s.anchor_ms.load(std::memory_order_acquire);
    if (anchor == kNoAnchor) {
      // The first event fixes the anchor; a concurrent first event may have won the race.
      const int64_t mine = FloorDiv(ts_ms, half_life) * half_life;
      s.anchor_ms.compare_exchange_strong(anchor, mine, std::memory_order_acq_rel);
      anchor = s.anchor_ms.load(std::memory_order_acquire);
    }
    int64_t d;
    if (__builtin_sub_overflow(ts_ms, anchor, &d)) return;  // a timestamp no clock produces
    if (FloorDiv(d, half_life) > kRebaseHalfLives) {
      lock.unlock();
      s.Rebase(ts_ms);
      continue;
    }
    // Plain read-modify-write: the stripe lock serialises the writers of this slot.
    slot.store(slot.load(std::memory_order_relaxed) + weight * Growth(d, half_life),
               std::memory_order_release);
    stripe.events.store(stripe.events.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
    return;
  }
}

namespace {

// An anchored sum as "weighted events per half-life" at `now_ms`: the decayed sum M estimates
// rate * half_life / ln 2 for a steady rate, so M * ln 2 is the rate per half-life.
double ToScore(double anchored, int64_t anchor_ms, int64_t now_ms, int64_t half_life) {
  if (anchor_ms == kNoAnchor || anchored == 0) return 0;
  int64_t d;
  if (__builtin_sub_overflow(anchor_ms, now_ms, &d)) return 0;
  return anchored * Growth(d, half_life) * std::numbers::ln2;
}

}  // namespace

std::vector<Trending::Scored> Trending::Top(size_t k, uint32_t category, int64_t now_ms) const {
  const std::shared_ptr<const Snapshot> snap = state_->Current();
  const std::vector<Entry>* list = nullptr;
  if (category == ItemCatalog::kNone) {
    list = &snap->overall;
  } else if (category < snap->by_category.size()) {
    list = &snap->by_category[category];
  } else {
    return {};
  }
  std::vector<Scored> out;
  out.reserve(std::min(k, list->size()));
  for (size_t i = 0; i < list->size() && i < k; ++i) {
    const Entry& e = (*list)[i];
    out.push_back(
        {e.item, ToScore(e.anchored, snap->anchor_ms, now_ms, state_->config.half_life_ms)});
  }
  return out;
}

double Trending::Score(uint32_t item, int64_t now_ms) const {
  const State& s = *state_;
  const std::atomic<double>* slot = s.scores.Find(item);
  if (slot == nullptr) return 0;
  double anchored = 0;
  const int64_t anchor =
      s.ReadConsistent([&] { anchored = slot->load(std::memory_order_acquire); });
  return ToScore(anchored, anchor, now_ms, s.config.half_life_ms);
}

void Trending::Invalidate() { state_->invalidated.store(true, std::memory_order_release); }

uint64_t Trending::events() const {
  uint64_t n = 0;
  for (const Stripe& s : state_->stripes) n += s.events.load(std::memory_order_relaxed);
  return n;
}

}  // namespace persona


