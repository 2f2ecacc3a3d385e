// K-means clustering (Lloyd's algorithm with k-means++ seeding, Arthur & Vassilvitskii 2007) and
// the silhouette score (Rousseeuw 1987) used to choose k. Points are rows of a row-major array of
// doubles with `dim` columns. Everything is deterministic for a given seed, so a training run can
// be repeated exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace persona {

struct KMeansOptions {
  int restarts = 4;          // independent seedings; the lowest inertia wins
  int max_iterations = 100;  // Lloyd iterations per restart (a cap; most runs converge earlier)
  // A run has converged when no point changes cluster, or no centroid moves by more than this
  // (Euclidean).
  double tolerance = 1e-7;
  uint64_t seed = 1;
};

struct KMeansResult {
  int k = 0;
  size_t dim = 0;
  std::vector<double> centroids;  // k x dim, row-major
  std::vector<int> assignment;    // per point, in [0, k)
  std::vector<size_t> sizes;      // points per cluster
  double inertia = 0;             // sum of squared distances to the assigned centroid
  int iterations = 0;             // Lloyd iterations of the winning restart
};

// Clusters `points` (n x dim) into `k` clusters. InvalidArgument when dim is 0, points.size() is
// not a multiple of dim, k < 1, or there are fewer than k points. A cluster that empties during
// the iterations is re-seeded with the point farthest from its centroid, so every cluster of the
// result is non-empty unless the points have fewer than k distinct values.
absl::StatusOr<KMeansResult> KMeans(std::span<const double> points, size_t dim, int k,
                                    const KMeansOptions& options = {});

// Index of the centroid (k x dim, row-major) nearest to `point` (squared Euclidean; the lowest
// index on ties). Pure and allocation-free: safe on any thread.
int NearestCentroid(std::span<const double> centroids, size_t dim, std::span<const double> point);

// Mean silhouette of the clustering: for each point, (b - a) / max(a, b) with a the mean distance
// to the other points of its cluster and b the smallest mean distance to another cluster's points
// (0 for a point alone in its cluster). Exact over a seeded random sample of at most `max_sample`
// points (all points when there are fewer), distances measured within the sample. Returns 0 when
// fewer than 2 clusters are present in the sample.
double Silhouette(std::span<const double> points, size_t dim, std::span<const int> assignment,
                  size_t max_sample = 3000, uint64_t seed = 1);

struct KChoice {
  KMeansResult best;                                // the clustering of the chosen k
  std::vector<std::pair<int, double>> silhouettes;  // (k, silhouette) for every k tried
  double silhouette = 0;                            // of the chosen k
};

// Runs KMeans for each k in [k_min, k_max] (k_max is lowered to the number of points) and keeps
// the k with the highest silhouette (the smaller k on ties). InvalidArgument when k_min < 2,
// k_min > k_max, or there are fewer than k_min points.
absl::StatusOr<KChoice> ChooseK(std::span<const double> points, size_t dim, int k_min = 2,
                                int k_max = 8, const KMeansOptions& options = {},
                                size_t silhouette_sample = 3000);

}  // namespace persona
