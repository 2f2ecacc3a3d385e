#include "eval/sequence_eval.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "eval/ranking_metrics.h"

namespace persona {
namespace {

// SplitMix64: a tiny generator whose output is fixed by its seed on every platform and standard
// library (std::shuffle and std::uniform_int_distribution are not), so sampled negatives and the
// max_users subsample are reproducible anywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) by multiply-shift; the bias is below 2^-32 for bound < 2^32.
  uint32_t Below(uint32_t bound) {
    return static_cast<uint32_t>((static_cast<unsigned __int128>(Next()) * bound) >> 64);
  }

 private:
  uint64_t state_;
};

// The negatives of (seed, user) depend on nothing else: not on the thread, the order users are
// processed in, or which other users are evaluated.
uint64_t NegativeSeed(uint64_t seed, uint32_t user) {
  SplitMix64 mix(seed ^ (uint64_t{user} << 32 | 0x5eedULL));
  mix.Next();
  return mix.Next() ^ seed;
}

// Per-worker scratch space, reused across users.
struct Scratch {
  std::vector<float> scores;
  std::vector<uint32_t> history;
  std::vector<uint32_t> user_items;  // the whole sequence, sorted, unique
  std::vector<uint32_t> others;      // user_items minus the target
  std::vector<uint32_t> negatives;
  std::vector<uint32_t> pool;  // dense fallback when few items are left to draw from
  std::vector<uint32_t> mark;  // mark[item] == epoch: item is taken for this draw
  uint32_t epoch = 0;
};

// Draws up to `count` distinct items from 1..num_items that are not in `user_items`, without
// replacement. Fewer when fewer are left.
void DrawNegatives(uint32_t num_items, std::span<const uint32_t> user_items, uint32_t count,
                   SplitMix64& rng, Scratch& s) {
  s.negatives.clear();
  const uint32_t available = num_items - static_cast<uint32_t>(user_items.size());
  if (count >= available / 2) {
    // Rejection would spin when most items are taken: shuffle the free items instead.
    s.pool.clear();
    size_t u = 0;
    for (uint32_t i = 1; i <= num_items; ++i) {
      while (u < user_items.size() && user_items[u] < i) ++u;
      if (u < user_items.size() && user_items[u] == i) continue;
      s.pool.push_back(i);
    }
    const uint32_t take = std::min<uint32_t>(count, static_cast<uint32_t>(s.pool.size()));
    for (uint32_t i = 0; i < take; ++i) {
      uint32_t j = i + rng.Below(static_cast<uint32_t>(s.pool.size()) - i);
      std::swap(s.pool[i], s.pool[j]);
      s.negatives.push_back(s.pool[i]);
    }
    return;
  }
  if (++s.epoch == 0) {  // wrapped: clear the stale marks
    std::fill(s.mark.begin(), s.mark.end(), 0);
    s.epoch = 1;
  }
  for (uint32_t item : user_items) s.mark[item] = s.epoch;
  while (s.negatives.size() < count) {
    uint32_t item = 1 + rng.Below(num_items);
    if (s.mark[item] == s.epoch) continue;
    s.mark[item] = s.epoch;
    s.negatives.push_back(item);
  }
}

double Mean(std::span<const double> v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

// Sample standard deviation (n - 1): with 5 seeds the population formula understates the spread.
double StdDev(std::span<const double> v) {
  if (v.size() < 2) return 0;
  double mean = Mean(v), sq = 0;
  for (double x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / static_cast<double>(v.size() - 1));
}

}  // namespace

const MetricsAtK* SequenceEvalResult::SampledAt(uint32_t k) const {
  for (const auto& m : sampled) {
    if (m.k == k) return &m;
  }
  return nullptr;
}

const MetricsAtK* SequenceEvalResult::FullAt(uint32_t k) const {
  for (const auto& m : full) {
    if (m.k == k) return &m;
  }
  return nullptr;
}

SequenceEvalResult EvaluateSequences(const SequenceDataset& data, const SequenceScorer& scorer,
                                     const SequenceEvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  SequenceEvalResult result;
  result.model = scorer.name();

  std::vector<uint32_t> users;
  for (uint32_t u = 0; u < data.sequences.size(); ++u) {
    if (data.sequences[u].size() >= 3) users.push_back(u);
  }
  if (options.max_users > 0 && options.max_users < users.size()) {
    SplitMix64 rng(1);
    for (uint32_t i = 0; i < options.max_users; ++i) {
      uint32_t j = i + rng.Below(static_cast<uint32_t>(users.size()) - i);
      std::swap(users[i], users[j]);
    }
    users.resize(options.max_users);
    std::sort(users.begin(), users.end());  // dataset order: friendlier to progress and caches
  }

  // No negatives means no sampled protocol (every target would trivially rank first).
  const size_t num_seeds = options.negatives == 0 ? 0 : options.seeds.size();
  const uint32_t n = data.num_items;
  // Ranks are stored per user and reduced afterwards in user order, so the sums (and thus the
  // reported numbers) are bit-identical whatever the thread count.
  std::vector<uint32_t> sampled_rank(users.size() * num_seeds);
  std::vector<uint32_t> full_rank(options.full_ranking ? users.size() : 0);

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0};
  constexpr size_t kChunk = 32;
  auto work = [&] {
    Scratch s;
    s.scores.resize(n + 1);
    s.mark.assign(n + 1, 0);
    for (;;) {
      size_t begin = next.fetch_add(kChunk);
      if (begin >= users.size()) break;
      size_t end = std::min(users.size(), begin + kChunk);
      for (size_t i = begin; i < end; ++i) {
        const uint32_t user = users[i];
        const std::vector<uint32_t>& sequence = data.sequences[user];
        LeaveOneOut split = SplitLeaveOneOut(sequence);
        s.history = std::move(split.train);
        uint32_t target = split.valid;
        if (!options.validation) {
          s.history.push_back(split.valid);
          target = split.test;
        }
        std::fill(s.scores.begin(), s.scores.end(), 0.0f);
        scorer.Score(s.history, s.scores);

        s.user_items.assign(sequence.begin(), sequence.end());
        std::sort(s.user_items.begin(), s.user_items.end());
        s.user_items.erase(std::unique(s.user_items.begin(), s.user_items.end()),
                           s.user_items.end());
        for (size_t k = 0; k < num_seeds; ++k) {
          SplitMix64 rng(NegativeSeed(options.seeds[k], user));
          DrawNegatives(n, s.user_items, options.negatives, rng, s);
          sampled_rank[i * num_seeds + k] = RankAmong(s.scores, target, s.negatives);
        }
        if (options.full_ranking) full_rank[i] = RankAmongAll(s.scores, target, s.user_items);
      }
      done.fetch_add(end - begin);
    }
  };

  const uint32_t threads = std::max<uint32_t>(
      1, std::min<uint32_t>(options.threads, static_cast<uint32_t>(users.size())));
  std::mutex mu;
  std::condition_variable cv;
  uint32_t finished = 0;
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (uint32_t t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      work();
      std::lock_guard<std::mutex> lock(mu);
      ++finished;
      cv.notify_one();
    });
  }
  // Progress is reported from the caller's thread only, so the callback needs no locking.
  {
    std::unique_lock<std::mutex> lock(mu);
    while (
        !cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return finished == threads; })) {
      if (options.progress) {
        lock.unlock();
        options.progress(done.load(), users.size());
        lock.lock();
      }
    }
  }
  for (auto& w : workers) w.join();
  if (options.progress) options.progress(users.size(), users.size());

  result.users = users.size();
  const double count = users.empty() ? 1.0 : static_cast<double>(users.size());
  for (uint32_t k : options.ks) {
    std::vector<double> hr(num_seeds, 0.0), ndcg(num_seeds, 0.0);
    for (size_t seed = 0; seed < num_seeds; ++seed) {
      for (size_t i = 0; i < users.size(); ++i) {
        uint32_t rank = sampled_rank[i * num_seeds + seed];
        hr[seed] += HitRate(rank, k);
        ndcg[seed] += Ndcg(rank, k);
      }
      hr[seed] /= count;
      ndcg[seed] /= count;
    }
    if (num_seeds > 0) {
      result.sampled.push_back({k, Mean(hr), Mean(ndcg), StdDev(hr), StdDev(ndcg)});
    }
    if (options.full_ranking) {
      MetricsAtK m;
      m.k = k;
      for (uint32_t rank : full_rank) {
        m.hr += HitRate(rank, k);
        m.ndcg += Ndcg(rank, k);
      }
      m.hr /= count;
      m.ndcg /= count;
      result.full.push_back(m);
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

PopularityScorer::PopularityScorer(const SequenceDataset& data) : counts_(data.num_items + 1, 0) {
  for (const auto& sequence : data.sequences) {
    LeaveOneOut split = SplitLeaveOneOut(sequence);
    for (uint32_t item : split.train) counts_[item] += 1.0f;
  }
}

void PopularityScorer::Score(std::span<const uint32_t>, std::span<float> scores) const {
  std::copy(counts_.begin(), counts_.end(), scores.begin());
}

}  // namespace persona
