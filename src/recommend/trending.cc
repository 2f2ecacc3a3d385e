#include "recommend/trending.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <numbers>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/stable_slots.h"
#include "common/varint.h"

namespace persona {
namespace {

constexpr int64_t kNoAnchor = std::numeric_limits<int64_t>::min();
// Sums are rebased once an event lies this many half-lives after the anchor: 2^128 per unit of
// weight leaves 2^896 of headroom for the sums, and a rebase happens every 128 half-lives of
// event time (four months at the default one day).
constexpr int64_t kRebaseHalfLives = 128;
constexpr uint32_t kStripes = 64;
// Any shift beyond this underflows a double to zero; the clamp keeps it an int.
constexpr int64_t kMaxShift = 100000;

// SavePart's format (trending.h).
constexpr char kPartMagic = 'T';
constexpr uint64_t kPartVersion = 1;
constexpr size_t kChecksumBytes = 8;
// The smallest encoding of one item: an empty string (1 byte of length) and its 8-byte sum.
constexpr size_t kMinItemBytes = 1 + 8;

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
  return std::ldexp(fraction, static_cast<int>(std::clamp<int64_t>(whole, -kMaxShift, kMaxShift)));
}

// `anchored`, a sum relative to anchor `from`, relative to the later anchor `to` (both whole
// multiples of the half-life): a division by a power of two, exact unless it underflows.
double Rebased(double anchored, int64_t from, int64_t to, int64_t half_life) {
  if (from == to) return anchored;
  int64_t d;
  if (__builtin_sub_overflow(to, from, &d)) return 0;
  return std::ldexp(anchored, -static_cast<int>(std::min<int64_t>(d / half_life, kMaxShift)));
}

struct alignas(64) Stripe {
  std::mutex mu;
  std::atomic<uint64_t> events{0};  // updated under mu; atomic so events() may read it without
};

struct Entry {
  uint32_t item;
  double anchored;  // the item's sum relative to the snapshot's (or part's) anchor
};

// Best first: the larger sum, then the smaller item string (ids when there is no catalog, or for
// equal strings, which a catalog never holds twice).
struct Ranking {
  const ItemCatalog* catalog;
  bool operator()(const Entry& a, const Entry& b) const {
    if (a.anchored != b.anchored) return a.anchored > b.anchored;
    if (catalog != nullptr) {
      const std::string_view x = catalog->Item(a.item);
      const std::string_view y = catalog->Item(b.item);
      if (x != y) return x < y;
    }
    return a.item < b.item;
  }
};

struct Snapshot {
  std::chrono::steady_clock::time_point built;
  int64_t anchor_ms = kNoAnchor;
  std::vector<Entry> overall;
  std::vector<std::vector<Entry>> by_category;  // indexed by category node id
};

void KeepBest(std::vector<Entry>* list, size_t depth, Ranking better) {
  if (list->size() > depth) {
    std::nth_element(list->begin(), list->begin() + depth, list->end(), better);
    list->resize(depth);
    list->shrink_to_fit();
  }
  std::sort(list->begin(), list->end(), better);
}

}  // namespace

// One partition's sums: anchor, sums and their seqlock. Writers of an item serialise on its
// stripe; a rebase or a load takes every stripe.
struct Trending::Part {
  // Scales every sum to the anchor of `ts_ms` (a whole multiple of the half-life). Takes every
  // stripe, so no Add runs meanwhile; readers retry through `version`.
  void Rebase(int64_t ts_ms, int64_t half_life) {
    const auto locks = LockAll();
    const int64_t anchor = anchor_ms.load(std::memory_order_relaxed);
    // Another writer may have rebased while this one waited for the stripes.
    if (FloorDiv(ts_ms - anchor, half_life) <= kRebaseHalfLives) return;
    const int64_t new_anchor = FloorDiv(ts_ms, half_life) * half_life;
    const int shift =
        static_cast<int>(std::min<int64_t>((new_anchor - anchor) / half_life, kMaxShift));
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

  // Replaces anchor, sums and event count (LoadPart), with the same protocol as Rebase.
  void Replace(int64_t anchor, uint64_t events, const std::vector<Entry>& sums) {
    for (const Entry& e : sums) scores.Get(e.item);  // allocate before blocking the writers
    const auto locks = LockAll();
    const uint64_t v = version.load(std::memory_order_relaxed);
    version.store(v + 1, std::memory_order_relaxed);
    uint32_t bound = item_bound.load(std::memory_order_relaxed);
    for (uint32_t id = 0; id < bound; ++id) {
      if (std::atomic<double>* slot = scores.Find(id)) slot->store(0, std::memory_order_release);
    }
    for (const Entry& e : sums) {
      scores.Get(e.item).store(e.anchored, std::memory_order_release);
      bound = std::max(bound, e.item + 1);
    }
    item_bound.store(bound, std::memory_order_release);
    anchor_ms.store(anchor, std::memory_order_release);
    for (Stripe& stripe : stripes) stripe.events.store(0, std::memory_order_relaxed);
    stripes[0].events.store(events, std::memory_order_relaxed);
    version.store(v + 2, std::memory_order_release);
  }

  std::array<std::unique_lock<std::mutex>, kStripes> LockAll() {
    std::array<std::unique_lock<std::mutex>, kStripes> locks;
    for (uint32_t i = 0; i < kStripes; ++i) locks[i] = std::unique_lock(stripes[i].mu);
    return locks;
  }

  // Runs `read` (which loads sums with acquire) until no rebase or load overlapped it; returns
  // the anchor of the sums it read. Every sum is stored with release (by Add, Rebase or Replace),
  // so a reader that saw a sum written after the anchor moved also sees the version change. No
  // fences: they would be invisible to ThreadSanitizer.
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

  // The non-zero sums (ascending ids) and their anchor, consistent with each other.
  int64_t ReadSums(std::vector<Entry>* sums) const {
    return ReadConsistent([&] {
      sums->clear();
      const uint32_t bound = item_bound.load(std::memory_order_acquire);
      for (uint32_t id = 0; id < bound; ++id) {
        const std::atomic<double>* slot = scores.Find(id);
        if (slot == nullptr) continue;
        const double value = slot->load(std::memory_order_acquire);
        if (value != 0) sums->push_back({id, value});
      }
    });
  }

  uint64_t events() const {
    uint64_t n = 0;
    for (const Stripe& s : stripes) n += s.events.load(std::memory_order_relaxed);
    return n;
  }

  std::array<Stripe, kStripes> stripes;
  StableSlots<std::atomic<double>> scores;
  alignas(64) std::atomic<uint32_t> item_bound{0};  // 1 + the largest item id ever stored
  std::atomic<int64_t> anchor_ms{kNoAnchor};
  std::atomic<uint64_t> version{0};  // seqlock over (anchor, sums): odd while a rebase/load runs
};

struct Trending::State {
  State(ItemCatalog* c, TrendingConfig cfg, uint32_t n)
      : catalog(c),
        config(cfg),
        num_parts(std::max<uint32_t>(n, 1)),
        parts(std::make_unique<Part[]>(num_parts)) {
    config.half_life_ms = std::max<int64_t>(config.half_life_ms, 1);
  }

  // Sums every part at the latest anchor among them, in part order (see trending.h).
  std::shared_ptr<const Snapshot> Build() const {
    auto snap = std::make_shared<Snapshot>();
    const int64_t half_life = config.half_life_ms;
    std::vector<std::vector<Entry>> sums(num_parts);
    std::vector<int64_t> anchors(num_parts);
    int64_t anchor = kNoAnchor;
    uint32_t bound = 0;
    for (uint32_t p = 0; p < num_parts; ++p) {
      anchors[p] = parts[p].ReadSums(&sums[p]);
      anchor = std::max(anchor, anchors[p]);  // kNoAnchor is the smallest int64_t
      if (!sums[p].empty()) bound = std::max(bound, sums[p].back().item + 1);
    }
    std::vector<double> total(bound, 0.0);
    for (uint32_t p = 0; p < num_parts; ++p) {
      for (const Entry& e : sums[p]) {
        total[e.item] += Rebased(e.anchored, anchors[p], anchor, half_life);
      }
    }
    snap->anchor_ms = anchor;
    if (catalog != nullptr) snap->by_category.resize(catalog->category_count());
    for (uint32_t id = 0; id < bound; ++id) {
      const double value = total[id];
      if (!(value > 0)) continue;
      snap->overall.push_back({id, value});
      if (catalog == nullptr) continue;
      for (uint32_t node : catalog->CategoryLineage(catalog->CategoryOf(id))) {
        if (node >= snap->by_category.size()) snap->by_category.resize(node + 1);
        snap->by_category[node].push_back({id, value});
      }
    }
    const size_t depth = config.snapshot_depth;
    const Ranking better{catalog};
    KeepBest(&snap->overall, depth, better);
    for (std::vector<Entry>& list : snap->by_category) KeepBest(&list, depth, better);
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

  ItemCatalog* catalog;
  TrendingConfig config;
  uint32_t num_parts;
  std::unique_ptr<Part[]> parts;
  mutable std::mutex rebuild_mu;
  mutable std::atomic<std::shared_ptr<const Snapshot>> snapshot;
  mutable std::atomic<bool> invalidated{false};
};

Trending::Trending(ItemCatalog* catalog, TrendingConfig config, uint32_t parts)
    : state_(std::make_unique<State>(catalog, config, parts)) {}
Trending::~Trending() = default;

void Trending::Add(uint32_t part, uint32_t item, EventType type, int64_t ts_ms) {
  State& s = *state_;
  const size_t t = static_cast<size_t>(type);
  if (part >= s.num_parts || t >= s.config.weights.size() || item == ItemCatalog::kNone) return;
  const double weight = s.config.weights[t];
  if (weight == 0) return;
  Part& p = s.parts[part];
  std::atomic<double>& slot = p.scores.Get(item);
  uint32_t bound = p.item_bound.load(std::memory_order_relaxed);
  while (item >= bound &&
         !p.item_bound.compare_exchange_weak(bound, item + 1, std::memory_order_release,
                                             std::memory_order_relaxed)) {
  }
  const int64_t half_life = s.config.half_life_ms;
  Stripe& stripe = p.stripes[item % kStripes];
  for (;;) {
    std::unique_lock lock(stripe.mu);
    // Acquire/release on the anchor so that a reader who sees this sum also sees its anchor.
    int64_t anchor = p.anchor_ms.load(std::memory_order_acquire);
    if (anchor == kNoAnchor) {
      // The first event fixes the anchor; a concurrent first event may have won the race.
      const int64_t mine = FloorDiv(ts_ms, half_life) * half_life;
      p.anchor_ms.compare_exchange_strong(anchor, mine, std::memory_order_acq_rel);
      anchor = p.anchor_ms.load(std::memory_order_acquire);
    }
    int64_t d;
    if (__builtin_sub_overflow(ts_ms, anchor, &d)) return;  // a timestamp no clock produces
    if (FloorDiv(d, half_life) > kRebaseHalfLives) {
      lock.unlock();
      p.Rebase(ts_ms, half_life);
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
  const int64_t half_life = s.config.half_life_ms;
  if (s.num_parts == 1) {
    const Part& p = s.parts[0];
    const std::atomic<double>* slot = p.scores.Find(item);
    if (slot == nullptr) return 0;
    double anchored = 0;
    const int64_t anchor =
        p.ReadConsistent([&] { anchored = slot->load(std::memory_order_acquire); });
    return ToScore(anchored, anchor, now_ms, half_life);
  }
  // As Build: every part at the latest anchor among the parts, added in part order.
  std::vector<double> sums(s.num_parts, 0.0);
  std::vector<int64_t> anchors(s.num_parts, kNoAnchor);
  int64_t anchor = kNoAnchor;
  for (uint32_t p = 0; p < s.num_parts; ++p) {
    const Part& part = s.parts[p];
    const std::atomic<double>* slot = part.scores.Find(item);
    anchors[p] = part.ReadConsistent(
        [&] { sums[p] = slot == nullptr ? 0 : slot->load(std::memory_order_acquire); });
    anchor = std::max(anchor, anchors[p]);
  }
  double total = 0;
  for (uint32_t p = 0; p < s.num_parts; ++p) {
    if (sums[p] != 0) total += Rebased(sums[p], anchors[p], anchor, half_life);
  }
  return ToScore(total, anchor, now_ms, half_life);
}

void Trending::Invalidate() { state_->invalidated.store(true, std::memory_order_release); }

uint64_t Trending::events() const {
  uint64_t n = 0;
  for (uint32_t p = 0; p < state_->num_parts; ++p) n += state_->parts[p].events();
  return n;
}

uint32_t Trending::parts() const { return state_->num_parts; }

void Trending::SavePart(uint32_t part, std::string* out) const {
  const State& s = *state_;
  if (part >= s.num_parts || s.catalog == nullptr) return;
  const Part& p = s.parts[part];
  std::vector<Entry> sums;
  const int64_t anchor = p.ReadSums(&sums);
  const size_t start = out->size();
  out->push_back(kPartMagic);
  AppendVarint64(out, kPartVersion);
  AppendVarint64(out, static_cast<uint64_t>(s.config.half_life_ms));
  AppendVarint64(out, ZigZagEncode64(anchor));
  AppendVarint64(out, p.events());
  AppendVarint64(out, sums.size());
  for (const Entry& e : sums) {
    const std::string_view item = s.catalog->Item(e.item);
    AppendVarint64(out, item.size());
    out->append(item);
    AppendFixed64(out, std::bit_cast<uint64_t>(e.anchored));
  }
  AppendFixed64(out, Hash64(std::string_view(*out).substr(start)));
}

absl::Status Trending::LoadPart(uint32_t part, std::string_view in) {
  State& s = *state_;
  if (part >= s.num_parts) {
    return absl::InvalidArgumentError(absl::StrCat("trending: no part ", part));
  }
  if (s.catalog == nullptr) {
    return absl::FailedPreconditionError("trending: loading a part needs an item catalog");
  }
  const auto corrupt = [part](const char* what) {
    return absl::DataLossError(absl::StrCat("trending part ", part, ": ", what));
  };
  if (in.size() < 1 + kChecksumBytes) return corrupt("truncated");
  std::string_view body = in.substr(0, in.size() - kChecksumBytes);
  std::string_view tail = in.substr(body.size());
  uint64_t checksum = 0;
  ReadFixed64(&tail, &checksum);
  if (checksum != Hash64(body)) return corrupt("checksum mismatch");

  if (body.front() != kPartMagic) return corrupt("not a trending part");
  body.remove_prefix(1);
  uint64_t version, half_life, anchor_bits, events, count;
  if (!ReadVarint64(&body, &version) || version != kPartVersion) {
    return corrupt("unknown version");
  }
  if (!ReadVarint64(&body, &half_life) || !ReadVarint64(&body, &anchor_bits) ||
      !ReadVarint64(&body, &events) || !ReadVarint64(&body, &count)) {
    return corrupt("truncated header");
  }
  if (half_life != static_cast<uint64_t>(s.config.half_life_ms)) {
    return absl::FailedPreconditionError(
        absl::StrCat("trending part ", part, ": saved with half-life ", half_life,
                     " ms, configured ", s.config.half_life_ms, " ms"));
  }
  const int64_t anchor = ZigZagDecode64(anchor_bits);
  if (anchor != kNoAnchor && anchor % s.config.half_life_ms != 0) {
    return corrupt("anchor is not a whole number of half-lives");
  }
  if (count > body.size() / kMinItemBytes) return corrupt("item count exceeds the data");
  if (count > 0 && anchor == kNoAnchor) return corrupt("sums without an anchor");

  // Parse and check everything before touching the catalog or the part.
  std::vector<std::pair<std::string_view, double>> items;
  items.reserve(count);
  absl::flat_hash_set<std::string_view> seen;
  seen.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t size, bits;
    if (!ReadVarint64(&body, &size) || size > body.size()) return corrupt("truncated item");
    const std::string_view item = body.substr(0, size);
    body.remove_prefix(size);
    if (!ReadFixed64(&body, &bits)) return corrupt("truncated sum");
    const double value = std::bit_cast<double>(bits);
    if (!std::isfinite(value) || value == 0) return corrupt("invalid sum");
    if (!seen.insert(item).second) return corrupt("item listed twice");
    items.emplace_back(item, value);
  }
  if (!body.empty()) return corrupt("trailing bytes");

  std::vector<Entry> sums;
  sums.reserve(items.size());
  for (const auto& [item, value] : items) sums.push_back({s.catalog->Intern(item, {}), value});
  s.parts[part].Replace(anchor, events, sums);
  Invalidate();
  return absl::OkStatus();
}

}  // namespace persona
