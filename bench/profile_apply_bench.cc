// Profile update and codec costs on taobao-shaped events.
//
//   BM_ProfileApply         ns per Profile::Apply on a synthetic stream shaped like the taobao
//                           UserBehavior log (behaviour mix pv 89.8% / cart 5.3% / fav 2.8% /
//                           buy 2.1%, Zipf item popularity, ~100 events per user, sessions with
//                           30-minute gaps), prebuilt in memory and merged in time order. The
//                           user's profile is found by index: the hash-map lookup the engine does
//                           is excluded. Includes interning item ids and category ids.
//   BM_ProfileApplyTaobao   the same on the real taobao slice (skipped when absent).
//   BM_EncodeProfile / BM_DecodeProfile   per profile of ~100 events.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/time_util.h"
#include "profile/profile.h"
#include "profile/profile_codec.h"
#include "profile/profile_context.h"

namespace persona {
namespace {

// An event as 24 bytes; the benchmark fills a reused Event from it (a few field stores).
struct CompactEvent {
  int64_t ts_ms;
  uint32_t user;
  uint32_t item;
  uint32_t category;
  EventType type;
};

struct Stream {
  std::vector<CompactEvent> events;
  std::vector<std::string> items, categories;
  uint32_t users = 0;
};

// Synthetic taobao-shaped stream, deterministic.
Stream MakeTaobaoShaped() {
  Stream stream;
  Stream* s = &stream;
  {
    constexpr uint32_t kUsers = 10000, kItems = 200000, kCategories = 5000, kPerUser = 100;
    std::mt19937_64 rng(20171125);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (uint32_t i = 0; i < kItems; ++i) s->items.push_back(std::to_string(1000000 + i * 13));
    for (uint32_t c = 0; c < kCategories; ++c)
      s->categories.push_back(std::to_string(2000000 + c * 7));
    // Log-uniform ranks: P(rank) ~ 1/rank, i.e. Zipf with exponent 1.
    auto zipf = [&](uint32_t n) {
      return std::min<uint32_t>(n - 1, static_cast<uint32_t>(std::pow(n, unit(rng))) - 1);
    };
    const int64_t start = 1511539200000;  // 2017-11-25
    s->users = kUsers;
    for (uint32_t u = 0; u < kUsers; ++u) {
      int64_t ts = start + static_cast<int64_t>(unit(rng) * kDayMs);
      for (uint32_t k = 0; k < kPerUser; ++k) {
        // Within a session events are ~1 minute apart; 20% of gaps start a new session.
        const double mean_gap = unit(rng) < 0.2 ? 6.0 * kHourMs : 1.0 * kMinuteMs;
        ts += static_cast<int64_t>(-std::log(1.0 - unit(rng)) * mean_gap);
        const double b = unit(rng);
        const EventType type = b < 0.898   ? EventType::kView
                               : b < 0.951 ? EventType::kCart
                               : b < 0.979 ? EventType::kFav
                                           : EventType::kPurchase;
        const uint32_t item = zipf(kItems);
        s->events.push_back(
            {ts, u, item, static_cast<uint32_t>((item * 2654435761u) % kCategories), type});
      }
    }
    std::sort(s->events.begin(), s->events.end(),
              [](const CompactEvent& a, const CompactEvent& b) { return a.ts_ms < b.ts_ms; });
  }
  return stream;
}

const Stream& TaobaoShaped() {
  static const Stream stream = MakeTaobaoShaped();
  return stream;
}

// The real taobao slice as a Stream (empty when the file is absent).
Stream MakeTaobaoReal() {
  Stream stream;
  Stream* s = &stream;
  {
    std::ifstream in(std::string(PERSONA_DATASETS) + "/taobao/UserBehavior-by-user.csv");
    std::string line;
    std::vector<std::string> users;
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      size_t begin = 0;
      for (size_t comma; (comma = line.find(',', begin)) != std::string::npos; begin = comma + 1) {
        f.push_back(line.substr(begin, comma - begin));
      }
      f.push_back(line.substr(begin));
      if (f.size() != 5) continue;
      const EventType type = f[3] == "pv"     ? EventType::kView
                             : f[3] == "cart" ? EventType::kCart
                             : f[3] == "fav"  ? EventType::kFav
                                              : EventType::kPurchase;
      if (users.empty() || users.back() != f[0]) users.push_back(f[0]);
      s->items.push_back(f[1]);
      s->categories.push_back(f[2]);
      const auto i = static_cast<uint32_t>(s->items.size() - 1);
      s->events.push_back(
          {std::stoll(f[4]) * 1000, static_cast<uint32_t>(users.size() - 1), i, i, type});
    }
    s->users = static_cast<uint32_t>(users.size());
  }
  return stream;
}

const Stream& TaobaoReal() {
  static const Stream stream = MakeTaobaoReal();
  return stream;
}

struct Partition {
  explicit Partition(const Stream& s) : profiles(s.users) {
    ctx.config = &config;
    ctx.population = &population;
  }
  ProfileConfig config;
  Population population;
  ProfileContext ctx;
  std::vector<Profile> profiles;
};

void ApplyStream(benchmark::State& state, const Stream& s) {
  if (s.events.empty()) {
    state.SkipWithError("dataset not found");
    return;
  }
  auto partition = std::make_unique<Partition>(s);
  Event e;
  e.user_id = "bench";
  size_t next = 0;
  for (auto _ : state) {
    if (next == s.events.size()) {
      // Start over with empty profiles so that every pass measures the same work. The partition's
      // pool and price statistics stay: a long-running partition has interned its ids already,
      // and its one-time growth is not a per-event cost.
      state.PauseTiming();
      partition->profiles.assign(s.users, Profile());
      next = 0;
      state.ResumeTiming();
    }
    const CompactEvent& c = s.events[next++];
    e.ts_ms = c.ts_ms;
    e.type = c.type;
    e.item_id = s.items[c.item];
    e.category_id = s.categories[c.category];
    partition->profiles[c.user].Apply(e, partition->ctx);
  }
  state.SetItemsProcessed(state.iterations());
  size_t bytes = 0, users = 0;
  for (const Profile& p : partition->profiles) {
    if (p.empty()) continue;
    bytes += p.MemoryBytes();
    ++users;
  }
  if (users > 0) state.counters["bytes_per_profile"] = static_cast<double>(bytes) / users;
}

void BM_ProfileApply(benchmark::State& state) { ApplyStream(state, TaobaoShaped()); }
BENCHMARK(BM_ProfileApply);

void BM_ProfileApplyTaobao(benchmark::State& state) { ApplyStream(state, TaobaoReal()); }
BENCHMARK(BM_ProfileApplyTaobao);

// Profiles of the first 2,000 synthetic users, fully built (~100 events each).
std::unique_ptr<Partition> BuildProfiles() {
  {
    const Stream& s = TaobaoShaped();
    auto p = std::make_unique<Partition>(s);
    p->profiles.resize(2000);
    Event e;
    e.user_id = "bench";
    for (const CompactEvent& c : s.events) {
      if (c.user >= 2000) continue;
      e.ts_ms = c.ts_ms;
      e.type = c.type;
      e.item_id = s.items[c.item];
      e.category_id = s.categories[c.category];
      p->profiles[c.user].Apply(e, p->ctx);
    }
    return p;
  }
}

const Partition& BuiltProfiles() {
  static const std::unique_ptr<Partition> built = BuildProfiles();
  return *built;
}

void BM_EncodeProfile(benchmark::State& state) {
  const Partition& p = BuiltProfiles();
  std::string blob;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    blob.clear();
    EncodeProfile(p.profiles[i], p.ctx, &blob);
    bytes += blob.size();
    benchmark::DoNotOptimize(blob.data());
    if (++i == p.profiles.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["blob_bytes"] = static_cast<double>(bytes) / state.iterations();
}
BENCHMARK(BM_EncodeProfile);

void BM_DecodeProfile(benchmark::State& state) {
  const Partition& built = BuiltProfiles();
  std::vector<std::string> blobs(built.profiles.size());
  for (size_t i = 0; i < blobs.size(); ++i) EncodeProfile(built.profiles[i], built.ctx, &blobs[i]);
  Partition target(TaobaoShaped());  // a different partition: strings are interned afresh
  Profile p;
  size_t i = 0;
  for (auto _ : state) {
    if (!DecodeProfile(blobs[i], target.ctx, &p).ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(&p);
    if (++i == blobs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeProfile);

}  // namespace
}  // namespace persona
