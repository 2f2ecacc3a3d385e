// The generator's source of randomness: xoshiro256++ seeded through splitmix64, with the few
// distributions the generator needs written out here instead of taken from <random>.
//
// Why not std::mt19937_64 + std::*_distribution: the engines are portable but the distributions
// are not (libstdc++ and libc++ turn the same bits into different normals), and a seed must name
// the same stream everywhere. xoshiro256++ is also ~3x faster than mt19937_64 with 32 bytes of
// state instead of 2.5 KB, and passes BigCrush; the stream is a pure function of the seed.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace persona::gen {

class Rng {
 public:
  // Seeds the four state words from splitmix64(seed), as the xoshiro authors recommend; any seed,
  // including 0, gives a valid, distinct stream.
  explicit Rng(uint64_t seed);

  // The next 64 uniformly distributed bits.
  uint64_t Next() {
    const uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1]: safe to take the logarithm of.
  double UniformOpenZero() { return static_cast<double>((Next() >> 11) + 1) * 0x1.0p-53; }
  // Uniform integer in [0, n) by multiply-shift (Lemire); the bias is below 2^-32 for n < 2^32.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform integer in [lo, hi], lo <= hi.
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  bool Bernoulli(double p) { return Uniform() < p; }
  // Exponential with the given mean.
  double Exponential(double mean) { return -mean * std::log(UniformOpenZero()); }
  // Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double Normal();
  // exp(N(mu, sigma^2)): median exp(mu).
  double LogNormal(double mu, double sigma) { return std::exp(mu + sigma * Normal()); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t s_[4];
  double spare_normal_ = 0;
  bool has_spare_ = false;
};

// One step of splitmix64: a cheap, well-mixed 64-bit function, used to derive independent seeds
// (catalog, population, stream) from the user's seed.
uint64_t SplitMix64(uint64_t x);

// The standard normal quantile function (inverse CDF) for p in (0, 1), to about 1e-9 (Acklam's
// rational approximation): plain arithmetic, so the same on every platform.
double NormalQuantile(double p);

// Samples a fixed continuous distribution from a table of its quantiles at 4096 evenly spaced
// probabilities, interpolating linearly in between: one random draw and no transcendental
// function per sample, for distributions drawn once per event. The extreme tails are cut at the
// 1/8192 quantiles.
class QuantileSampler {
 public:
  QuantileSampler() = default;
  // `quantile` maps p in (0, 1) to the distribution's value at p; called 4097 times here.
  template <typename Quantile>
  explicit QuantileSampler(Quantile quantile) : table_(kSteps + 1) {
    for (int i = 0; i <= kSteps; ++i) {
      const double p = i == 0 ? 0.5 / kSteps : i == kSteps ? 1 - 0.5 / kSteps : 1.0 * i / kSteps;
      table_[i] = quantile(p);
    }
  }
  double Sample(Rng& rng) const {
    const uint64_t r = rng.Next();
    const uint64_t i = r >> 52;  // 12 bits: the step
    const double frac = static_cast<double>(r & ((uint64_t{1} << 52) - 1)) * 0x1.0p-52;
    return table_[i] + frac * (table_[i + 1] - table_[i]);
  }

 private:
  static constexpr int kSteps = 4096;
  std::vector<double> table_;
};

}  // namespace persona::gen
