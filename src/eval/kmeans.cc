#include "eval/kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "absl/status/status.h"

namespace persona {
namespace {

double SquaredDistance(const double* a, const double* b, size_t dim) {
  double sum = 0;
  for (size_t j = 0; j < dim; ++j) {
    const double d = a[j] - b[j];
    sum += d * d;
  }
  return sum;
}

// k-means++: the first centre uniformly, each next one with probability proportional to the
// squared distance to the nearest centre chosen so far. Spreads the seeds, which makes Lloyd's
// result O(log k)-competitive in expectation instead of arbitrarily bad.
std::vector<double> SeedPlusPlus(std::span<const double> points, size_t dim, size_t n, int k,
                                 std::mt19937_64& rng) {
  std::vector<double> centroids;
  centroids.reserve(static_cast<size_t>(k) * dim);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  const size_t first = pick(rng);
  centroids.insert(centroids.end(), points.begin() + first * dim,
                   points.begin() + (first + 1) * dim);
  std::vector<double> nearest(n);
  for (size_t i = 0; i < n; ++i) {
    nearest[i] = SquaredDistance(&points[i * dim], centroids.data(), dim);
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int c = 1; c < k; ++c) {
    const double total = std::accumulate(nearest.begin(), nearest.end(), 0.0);
    size_t chosen = pick(rng);  // all points coincide with a centre: any point will do
    if (total > 0) {
      double target = unit(rng) * total;
      for (size_t i = 0; i < n; ++i) {
        target -= nearest[i];
        if (target <= 0 && nearest[i] > 0) {
          chosen = i;
          break;
        }
      }
      if (target > 0) {  // rounding left a remainder: take the last point with weight
        for (size_t i = n; i-- > 0;) {
          if (nearest[i] > 0) {
            chosen = i;
            break;
          }
        }
      }
    }
    const double* row = &points[chosen * dim];
    centroids.insert(centroids.end(), row, row + dim);
    const double* centre = &centroids[static_cast<size_t>(c) * dim];
    for (size_t i = 0; i < n; ++i) {
      nearest[i] = std::min(nearest[i], SquaredDistance(&points[i * dim], centre, dim));
    }
  }
  return centroids;
}

KMeansResult Lloyd(std::span<const double> points, size_t dim, size_t n, int k,
                   std::vector<double> centroids, const KMeansOptions& options) {
  KMeansResult r;
  r.k = k;
  r.dim = dim;
  r.centroids = std::move(centroids);
  r.assignment.assign(n, -1);
  std::vector<double> sums(static_cast<size_t>(k) * dim);
  std::vector<size_t> counts(k);
  std::vector<double> distance(n);
  for (int iter = 1; iter <= std::max(1, options.max_iterations); ++iter) {
    r.iterations = iter;
    bool changed = false;
    for (size_t i = 0; i < n; ++i) {
      const int c = NearestCentroid(r.centroids, dim, points.subspan(i * dim, dim));
      distance[i] = SquaredDistance(&points[i * dim], &r.centroids[c * dim], dim);
      if (c != r.assignment[i]) {
        r.assignment[i] = c;
        changed = true;
      }
    }
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      const int c = r.assignment[i];
      ++counts[c];
      for (size_t j = 0; j < dim; ++j) sums[c * dim + j] += points[i * dim + j];
    }
    double max_shift = 0;
    for (int c = 0; c < k; ++c) {
      double* centre = &r.centroids[c * dim];
      if (counts[c] == 0) {
        // An empty cluster takes over the worst-served point, which lowers the inertia most.
        const size_t far = static_cast<size_t>(std::max_element(distance.begin(), distance.end()) -
                                               distance.begin());
        std::copy_n(&points[far * dim], dim, centre);
        distance[far] = 0;
        max_shift = std::numeric_limits<double>::infinity();
        changed = true;
        continue;
      }
      double shift = 0;
      for (size_t j = 0; j < dim; ++j) {
        const double next = sums[c * dim + j] / static_cast<double>(counts[c]);
        shift += (next - centre[j]) * (next - centre[j]);
        centre[j] = next;
      }
      max_shift = std::max(max_shift, std::sqrt(shift));
    }
    if (!changed || max_shift <= options.tolerance) break;
  }
  // Final assignment against the final centroids, so sizes and inertia describe what Assign does.
  r.sizes.assign(k, 0);
  r.inertia = 0;
  for (size_t i = 0; i < n; ++i) {
    const int c = NearestCentroid(r.centroids, dim, points.subspan(i * dim, dim));
    r.assignment[i] = c;
    ++r.sizes[c];
    r.inertia += SquaredDistance(&points[i * dim], &r.centroids[c * dim], dim);
  }
  return r;
}

}  // namespace

int NearestCentroid(std::span<const double> centroids, size_t dim, std::span<const double> point) {
  int best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  const size_t k = dim == 0 ? 0 : centroids.size() / dim;
  for (size_t c = 0; c < k; ++c) {
    const double d = SquaredDistance(&centroids[c * dim], point.data(), dim);
    if (d < best_distance) {
      best_distance = d;
      best = static_cast<int>(c);
    }
  }
  return best;
}

absl::StatusOr<KMeansResult> KMeans(std::span<const double> points, size_t dim, int k,
                                    const KMeansOptions& options) {
  if (dim == 0 || points.size() % dim != 0) {
    return absl::InvalidArgumentError("k-means: points must be rows of dim > 0 columns");
  }
  const size_t n = points.size() / dim;
  if (k < 1 || n < static_cast<size_t>(k)) {
    return absl::InvalidArgumentError("k-means: k = " + std::to_string(k) + " needs at least k " +
                                      "points, got " + std::to_string(n));
  }
  std::mt19937_64 rng(options.seed);
  KMeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  for (int run = 0; run < std::max(1, options.restarts); ++run) {
    KMeansResult r = Lloyd(points, dim, n, k, SeedPlusPlus(points, dim, n, k, rng), options);
    if (r.inertia < best.inertia) best = std::move(r);
  }
  return best;
}

double Silhouette(std::span<const double> points, size_t dim, std::span<const int> assignment,
                  size_t max_sample, uint64_t seed) {
  if (dim == 0) return 0;
  const size_t n = std::min(points.size() / dim, assignment.size());
  std::vector<size_t> sample(n);
  std::iota(sample.begin(), sample.end(), 0);
  if (max_sample > 0 && n > max_sample) {
    std::mt19937_64 rng(seed);
    // Partial Fisher-Yates: the first max_sample entries are a uniform sample.
    for (size_t i = 0; i < max_sample; ++i) {
      std::uniform_int_distribution<size_t> pick(i, n - 1);
      std::swap(sample[i], sample[pick(rng)]);
    }
    sample.resize(max_sample);
  }
  int k = 0;
  for (size_t i : sample) k = std::max(k, assignment[i] + 1);
  std::vector<size_t> cluster_size(k, 0);
  for (size_t i : sample) ++cluster_size[assignment[i]];
  if (std::count_if(cluster_size.begin(), cluster_size.end(), [](size_t s) { return s > 0; }) < 2) {
    return 0;
  }
  std::vector<double> sum_to(k);
  double total = 0;
  for (size_t a : sample) {
    std::fill(sum_to.begin(), sum_to.end(), 0.0);
    for (size_t b : sample) {
      if (a == b) continue;
      sum_to[assignment[b]] += std::sqrt(SquaredDistance(&points[a * dim], &points[b * dim], dim));
    }
    const int own = assignment[a];
    if (cluster_size[own] <= 1) continue;  // s = 0 for a point alone in its cluster
    const double within = sum_to[own] / static_cast<double>(cluster_size[own] - 1);
    double nearest_other = std::numeric_limits<double>::infinity();
    for (int c = 0; c < k; ++c) {
      if (c == own || cluster_size[c] == 0) continue;
      nearest_other = std::min(nearest_other, sum_to[c] / static_cast<double>(cluster_size[c]));
    }
    const double denom = std::max(within, nearest_other);
    if (denom > 0) total += (nearest_other - within) / denom;
  }
  return total / static_cast<double>(sample.size());
}

absl::StatusOr<KChoice> ChooseK(std::span<const double> points, size_t dim, int k_min, int k_max,
                                const KMeansOptions& options, size_t silhouette_sample) {
  if (dim == 0 || points.size() % dim != 0) {
    return absl::InvalidArgumentError("k-means: points must be rows of dim > 0 columns");
  }
  const size_t n = points.size() / dim;
  if (k_min < 2 || k_min > k_max) {
    return absl::InvalidArgumentError("k range must satisfy 2 <= k_min <= k_max, got " +
                                      std::to_string(k_min) + ".." + std::to_string(k_max));
  }
  if (n < static_cast<size_t>(k_min)) {
    return absl::InvalidArgumentError("k-means: " + std::to_string(n) +
                                      " points, fewer than k_min " + std::to_string(k_min));
  }
  k_max = static_cast<int>(std::min<size_t>(static_cast<size_t>(k_max), n));
  KChoice choice;
  choice.silhouette = -std::numeric_limits<double>::infinity();
  for (int k = k_min; k <= k_max; ++k) {
    auto r = KMeans(points, dim, k, options);
    if (!r.ok()) return r.status();
    const double s = Silhouette(points, dim, r->assignment, silhouette_sample, options.seed);
    choice.silhouettes.emplace_back(k, s);
    if (s > choice.silhouette) {
      choice.silhouette = s;
      choice.best = std::move(*r);
    }
  }
  return choice;
}

}  // namespace persona
