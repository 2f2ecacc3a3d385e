#include "eval/kmeans.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

namespace persona {
namespace {

// n points per blob around each centre, Gaussian noise of `spread`.
std::vector<double> Blobs(const std::vector<std::vector<double>>& centres, size_t n, double spread,
                          uint64_t seed, std::vector<int>* truth) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, spread);
  std::vector<double> points;
  for (size_t i = 0; i < n; ++i) {
    for (size_t c = 0; c < centres.size(); ++c) {
      for (double x : centres[c]) points.push_back(x + noise(rng));
      truth->push_back(static_cast<int>(c));
    }
  }
  return points;
}

TEST(KMeansTest, RecoversPlantedWellSeparatedBlobs) {
  const std::vector<std::vector<double>> centres = {{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}};
  std::vector<int> truth;
  const std::vector<double> points = Blobs(centres, 200, 0.7, 7, &truth);
  auto r = KMeans(points, 3, 4, {.seed = 3});
  ASSERT_TRUE(r.ok()) << r.status();
  // Each planted blob maps to exactly one cluster, and different blobs to different clusters.
  std::vector<std::set<int>> clusters_of_blob(4);
  for (size_t i = 0; i < truth.size(); ++i) clusters_of_blob[truth[i]].insert(r->assignment[i]);
  std::set<int> used;
  for (const auto& s : clusters_of_blob) {
    ASSERT_EQ(s.size(), 1u);
    used.insert(*s.begin());
  }
  EXPECT_EQ(used.size(), 4u);
  for (size_t size : r->sizes) EXPECT_EQ(size, 200u);
  // Centroids land on the planted centres.
  for (size_t i = 0; i < truth.size(); i += 200) {
    const int c = r->assignment[i];
    for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(r->centroids[c * 3 + j], centres[truth[i]][j], 0.2);
  }
}

TEST(KMeansTest, ChooseKPicksThePlantedNumberOfBlobs) {
  for (int planted : {2, 3, 5}) {
    std::vector<std::vector<double>> centres;
    for (int c = 0; c < planted; ++c) centres.push_back({12.0 * c, (c % 2) * 12.0});
    std::vector<int> truth;
    const std::vector<double> points = Blobs(centres, 150, 1.0, 11 + planted, &truth);
    auto choice = ChooseK(points, 2, 2, 8, {.seed = 5});
    ASSERT_TRUE(choice.ok()) << choice.status();
    EXPECT_EQ(choice->best.k, planted);
    EXPECT_EQ(choice->silhouettes.size(), 7u);
    EXPECT_GT(choice->silhouette, 0.7);
  }
}

TEST(KMeansTest, SameSeedSameClusteringDifferentSeedStillValid) {
  std::vector<int> truth;
  const std::vector<double> points = Blobs({{0, 0}, {5, 5}, {0, 5}}, 100, 1.5, 1, &truth);
  auto a = KMeans(points, 2, 3, {.seed = 9});
  auto b = KMeans(points, 2, 3, {.seed = 9});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->assignment, b->assignment);
  EXPECT_EQ(a->centroids, b->centroids);
}

TEST(KMeansTest, MoreRestartsNeverRaiseInertia) {
  std::vector<int> truth;
  const std::vector<double> points =
      Blobs({{0, 0}, {3, 0}, {0, 3}, {3, 3}, {6, 6}}, 60, 1.2, 4, &truth);
  auto one = KMeans(points, 2, 5, {.restarts = 1, .seed = 2});
  auto many = KMeans(points, 2, 5, {.restarts = 8, .seed = 2});
  ASSERT_TRUE(one.ok() && many.ok());
  // The first restart of `many` is the same run as `one` (same seed, same stream).
  EXPECT_LE(many->inertia, one->inertia);
}

TEST(KMeansTest, SilhouetteMatchesHandComputedValues) {
  // Line points 0, 1 | 4, 5: s(0) = (4.5 - 1) / 4.5, s(1) = (3.5 - 1) / 3.5, symmetric for 4, 5.
  const std::vector<double> line = {0, 1, 4, 5};
  const std::vector<int> two_pairs = {0, 0, 1, 1};
  EXPECT_NEAR(Silhouette(line, 1, two_pairs), (3.5 / 4.5 + 2.5 / 3.5) / 2, 1e-12);
  // 0, 1 | 10: s(0) = 9/10, s(1) = 8/9, and the lone point counts 0.
  const std::vector<double> with_singleton = {0, 1, 10};
  const std::vector<int> pair_and_single = {0, 0, 1};
  EXPECT_NEAR(Silhouette(with_singleton, 1, pair_and_single), (0.9 + 8.0 / 9.0) / 3, 1e-12);
  // 2-D: a = distance within, b = mean distance to the other cluster.
  const std::vector<double> plane = {0, 0, 0, 3, 4, 0};  // (0,0), (0,3) | (4,0)
  const std::vector<int> plane_assign = {0, 0, 1};
  const double s0 = (4.0 - 3.0) / 4.0;  // a = 3, b = 4
  const double s1 = (5.0 - 3.0) / 5.0;  // a = 3, b = 5
  EXPECT_NEAR(Silhouette(plane, 2, plane_assign), (s0 + s1) / 3, 1e-12);
  // One cluster only: undefined, reported as 0.
  EXPECT_EQ(Silhouette(line, 1, std::vector<int>{0, 0, 0, 0}), 0.0);
}

TEST(KMeansTest, SilhouetteSampleIsSeededAndBounded) {
  std::vector<int> truth;
  const std::vector<double> points = Blobs({{0, 0}, {8, 8}}, 2000, 1.0, 3, &truth);
  const double a = Silhouette(points, 2, truth, 500, 42);
  EXPECT_EQ(a, Silhouette(points, 2, truth, 500, 42));
  EXPECT_NEAR(a, Silhouette(points, 2, truth, 1500, 7), 0.03);
}

TEST(KMeansTest, RejectsBadInput) {
  const std::vector<double> points = {0, 1, 2};
  EXPECT_FALSE(KMeans(points, 2, 1).ok());  // not a multiple of dim
  EXPECT_FALSE(KMeans(points, 1, 4).ok());  // fewer points than k
  EXPECT_FALSE(KMeans(points, 1, 0).ok());
  EXPECT_FALSE(ChooseK(points, 1, 1, 3).ok());
  EXPECT_FALSE(ChooseK(points, 1, 3, 2).ok());
  auto capped = ChooseK(points, 1, 2, 8);  // k_max lowered to the 3 points
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->silhouettes.back().first, 3);
}

}  // namespace
}  // namespace persona
