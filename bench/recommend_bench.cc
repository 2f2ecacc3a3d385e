// Costs of the online recommenders on the ingest path and the read path, on a Zipf(1) item stream
// over 100k items (categories "d<k>.s<k>", 20 departments x 500 sections).
//
//   BM_CatalogInternHit      ItemCatalog::Intern of a known item with its known category.
//   BM_TrendingAdd           Trending::Add (a view) in event-time order.
//   BM_ItemCfAdd             ItemCf::Add with a window of 5 previous items. The previous items are
//                            the stream's preceding draws: no co-occurrence structure, so item
//                            lists fill up and churn (the Space-Saving worst case).
//   BM_ItemCfAddSessions     the same on a session-like stream: 80% of the time the next item is
//                            a random one of the previous item's 50 related ids.
//   .../threads:2            the same from two threads on one shared instance (partition writers).
//   BM_ItemCfSimilar         Similar(k=20) after 2M Adds.
//   BM_ItemCfRecommend       Recommend(history of 10, k=20) after 2M Adds.
//   BM_TrendingTop           Top(k=20) overall, served from the cached snapshot.
//   BM_TrendingTopRebuild    Top(k=20) after Invalidate: one snapshot rebuild over 100k items.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "recommend/item_catalog.h"
#include "recommend/item_cf.h"
#include "recommend/trending.h"

namespace persona {
namespace {

constexpr uint32_t kItems = 100000;
constexpr size_t kStream = 1 << 20;
constexpr int64_t kStartMs = 1700000000000;

// kStream Zipf(1) draws over [0, kItems) (rank = id, so id 0 is the most popular), and the same
// draws reversed: the `n` items before draw i, most recent first, are reversed[kStream - i ..].
struct ZipfStream {
  // `stay` > 0: a session-like stream where, with probability `stay`, the next item comes from
  // the previous item's group of 50 neighbouring ids (related products) instead of a fresh draw.
  explicit ZipfStream(double stay = 0) {
    std::vector<double> cdf(kItems);
    double total = 0;
    for (uint32_t r = 0; r < kItems; ++r) cdf[r] = total += 1.0 / (r + 1);
    std::mt19937_64 rng(20240501);
    std::uniform_real_distribution<double> unit(0.0, total);
    draws.resize(kStream);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    for (size_t i = 0; i < kStream; ++i) {
      if (i > 0 && coin(rng) < stay) {
        draws[i] = std::min<uint32_t>(kItems - 1, draws[i - 1] / 50 * 50 + rng() % 50);
      } else {
        draws[i] = static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), unit(rng)) -
                                         cdf.begin());
      }
    }
    reversed.assign(draws.rbegin(), draws.rend());
  }
  // The `n` draws before position i (i >= n), most recent first.
  std::span<const uint32_t> Before(size_t i, size_t n) const {
    return {reversed.data() + (kStream - i), n};
  }
  std::vector<uint32_t> draws;
  std::vector<uint32_t> reversed;
};

const ZipfStream& Stream() {
  static const ZipfStream stream;
  return stream;
}

const ZipfStream& SessionStream() {
  static const ZipfStream stream(/*stay=*/0.8);
  return stream;
}

struct Names {
  Names() {
    for (uint32_t i = 0; i < kItems; ++i) {
      items.push_back("sku-" + std::to_string(1000000 + 7 * i));
      categories.push_back("d" + std::to_string(i % 20) + ".s" + std::to_string(i % 500));
    }
  }
  std::vector<std::string> items, categories;
};

const Names& ItemNames() {
  static const Names names;
  return names;
}

// A catalogue holding every item, shared by the benchmarks (and their threads).
ItemCatalog& Catalog() {
  struct Warm {
    Warm() {
      const Names& names = ItemNames();
      for (uint32_t i = 0; i < kItems; ++i) catalog.Intern(names.items[i], names.categories[i]);
    }
    ItemCatalog catalog;
  };
  static Warm warm;
  return warm.catalog;
}

// Each thread reads its own stretch of the stream.
size_t StartOf(const benchmark::State& state) {
  return 16 + static_cast<size_t>(state.thread_index()) * (kStream / 4);
}

void BM_CatalogInternHit(benchmark::State& state) {
  const ZipfStream& z = Stream();
  const Names& names = ItemNames();
  ItemCatalog& catalog = Catalog();
  size_t i = StartOf(state);
  for (auto _ : state) {
    const uint32_t item = z.draws[i];
    benchmark::DoNotOptimize(catalog.Intern(names.items[item], names.categories[item]));
    if (++i == kStream) i = 16;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CatalogInternHit);
BENCHMARK(BM_CatalogInternHit)->Threads(2)->UseRealTime();

void BM_TrendingAdd(benchmark::State& state) {
  static Trending trending(&Catalog(), TrendingConfig{});
  const ZipfStream& z = Stream();
  size_t i = StartOf(state);
  int64_t ts = kStartMs;
  for (auto _ : state) {
    trending.Add(z.draws[i], EventType::kView, ts++);
    if (++i == kStream) i = 16;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrendingAdd);
BENCHMARK(BM_TrendingAdd)->Threads(2)->UseRealTime();

void BM_ItemCfAdd(benchmark::State& state) {
  static ItemCf cf(ItemCfConfig{});
  const ZipfStream& z = Stream();
  size_t i = StartOf(state);
  for (auto _ : state) {
    cf.Add(z.draws[i], z.Before(i, 5));
    if (++i == kStream) i = 16;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pairs"] = static_cast<double>(cf.pairs());
  state.counters["MiB"] = static_cast<double>(cf.MemoryBytes()) / (1 << 20);
}
BENCHMARK(BM_ItemCfAdd);
BENCHMARK(BM_ItemCfAdd)->Threads(2)->UseRealTime();

void BM_ItemCfAddSessions(benchmark::State& state) {
  static ItemCf cf(ItemCfConfig{});
  const ZipfStream& z = SessionStream();
  size_t i = StartOf(state);
  for (auto _ : state) {
    cf.Add(z.draws[i], z.Before(i, 5));
    if (++i == kStream) i = 16;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["MiB"] = static_cast<double>(cf.MemoryBytes()) / (1 << 20);
}
BENCHMARK(BM_ItemCfAddSessions);
BENCHMARK(BM_ItemCfAddSessions)->Threads(2)->UseRealTime();

// An item-CF model after 2M Adds of the stream (built once).
const ItemCf& WarmItemCf() {
  struct Warm {
    Warm() {
      const ZipfStream& z = Stream();
      for (size_t n = 0, i = 16; n < 2 * kStream; ++n) {
        cf.Add(z.draws[i], z.Before(i, 5));
        if (++i == kStream) i = 16;
      }
    }
    ItemCf cf;
  };
  static Warm warm;
  return warm.cf;
}

void BM_ItemCfSimilar(benchmark::State& state) {
  const ItemCf& cf = WarmItemCf();
  const ZipfStream& z = Stream();
  size_t i = 16;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cf.Similar(z.draws[i], 20));
    if (++i == kStream) i = 16;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ItemCfSimilar);

void BM_ItemCfRecommend(benchmark::State& state) {
  const ItemCf& cf = WarmItemCf();
  const ZipfStream& z = Stream();
  size_t i = 16;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cf.Recommend(z.Before(i, 10), 20));
    if (++i == kStream) i = 16;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ItemCfRecommend);

// Trending after one stream's worth of events over a day.
Trending& WarmTrending() {
  struct Warm {
    Warm() : trending(&Catalog(), TrendingConfig{}) {
      const ZipfStream& z = Stream();
      for (size_t i = 0; i < kStream; ++i) {
        trending.Add(z.draws[i], EventType::kView, kStartMs + static_cast<int64_t>(i) * 80);
      }
    }
    Trending trending;
  };
  static Warm warm;
  return warm.trending;
}

void BM_TrendingTop(benchmark::State& state) {
  const Trending& trending = WarmTrending();
  const int64_t now = kStartMs + 86400000;
  for (auto _ : state) benchmark::DoNotOptimize(trending.Top(20, ItemCatalog::kNone, now));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrendingTop);

void BM_TrendingTopRebuild(benchmark::State& state) {
  Trending& trending = WarmTrending();
  const int64_t now = kStartMs + 86400000;
  for (auto _ : state) {
    trending.Invalidate();
    benchmark::DoNotOptimize(trending.Top(20, ItemCatalog::kNone, now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrendingTopRebuild)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace persona
