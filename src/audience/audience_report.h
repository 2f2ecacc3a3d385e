// Aggregate reports over an audience (size, spend, orders, lifecycle, segments, price tiers, top
// categories), optionally made differentially private with the Laplace mechanism so they can be
// shared outside the team.
//
// Privacy model (docs/audiences.md): neighbouring datasets differ by one user. With `epsilon`
// set, the budget is split evenly over the kReleasedStatistics statistics below, each released
// with Laplace noise of scale sensitivity / (epsilon / kReleasedStatistics):
//   size (1), spend sum (spend_clip), orders sum (orders_clip), lifecycle histogram (1), segment
//   histogram (1), price-tier histogram (1), category user counts (1), category share sums (1)
// Each user counts in exactly one bucket of each histogram (its lifecycle, segment, tier, top
// category), so a histogram's L1 sensitivity is 1. Means are ratios of noisy sums (post-
// processing). Noisy counts are rounded and clamped at 0; noisy sums are clamped at 0. A
// category is released only when its noisy count clears a threshold (5 noise scales), so a
// category held by a handful of users is unlikely to be named.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json_writer.h"
#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

struct ReportOptions {
  std::optional<double> epsilon;  // set (> 0): noisy report with this total budget
  double spend_clip = 1000;       // per-user cap on `monetary` in noisy reports
  double orders_clip = 20;        // per-user cap on `orders` in noisy reports
  size_t top_categories = 10;
  std::optional<uint64_t> seed;  // reproducible noise (tests); default std::random_device
  uint32_t threads = 0;          // scan threads, 0 = one per core
};

// Exact sums over the audience, collected by a scan (one per thread, then merged).
struct AudienceAggregates {
  static constexpr int kLifecycleStages = 4;  // LifecycleStage order
  static constexpr int kPriceTiers = 4;       // budget, mid, premium, none
  struct CategorySums {
    uint64_t users = 0;    // users whose top category this is
    double share_sum = 0;  // sum of those users' interest share of it
  };

  uint64_t size = 0;
  double spend = 0;          // sum of monetary
  double spend_clipped = 0;  // sum of min(monetary, spend_clip)
  double orders = 0;
  double orders_clipped = 0;
  std::array<uint64_t, kLifecycleStages> lifecycle{};
  std::array<uint64_t, kPriceTiers> price_tiers{};
  std::map<int, uint64_t> segments;  // -1 = none
  std::map<std::string, CategorySums> categories;

  // Adds one member. `top_category`/`top_share` are its top category key ("" = none) and share.
  // `segment` (when set) overrides the profile's stored segment (see CurrentSegment).
  void Add(const Profile& profile, const ProfileConfig& config, int64_t now_ms,
           std::string_view top_category, double top_share, const ReportOptions& options,
           std::optional<int> segment = std::nullopt);
  void Merge(const AudienceAggregates& other);
};

struct AudienceReport {
  static constexpr int kReleasedStatistics = 8;
  struct Bucket {
    std::string name;
    uint64_t users = 0;
  };
  struct SegmentBucket {
    int segment = -1;  // -1 = none
    uint64_t users = 0;
  };
  struct Category {
    std::string category;
    uint64_t users = 0;
    double mean_share = 0;
  };

  uint64_t size = 0;
  double spend_sum = 0;
  double spend_mean = 0;  // NaN (null) for an empty audience
  double orders_sum = 0;
  double orders_mean = 0;
  std::vector<Bucket> lifecycle;         // new, active, dormant, churned
  std::vector<SegmentBucket> segments;   // ascending segment, -1 (none) first
  std::vector<Bucket> price_tiers;       // budget, mid, premium, none
  std::vector<Category> top_categories;  // most users first

  bool noisy = false;
  double epsilon = 0;
  double epsilon_per_statistic = 0;
  double spend_clip = 0;
  double orders_clip = 0;

  uint64_t scanned = 0;
  int64_t as_of_ms = 0;
  double took_ms = 0;

  // {"size", "spend": {...}, "lifecycle": {...}, "segments": [...], "price_tiers": {...},
  //  "top_categories": [...], "privacy": {"noisy", "epsilon", "mechanism", "clip", ...},
  //  "scanned", "as_of", "took_ms"}. WriteMembers writes the same members into an open object.
  void WriteJson(JsonWriter& w) const;
  void WriteMembers(JsonWriter& w) const;
};

// The report of `aggregates`: exact when options.epsilon is unset, else noisy as described at
// the top of this file (spend and orders then use the clipped sums).
AudienceReport MakeAudienceReport(const AudienceAggregates& aggregates,
                                  const ReportOptions& options);

// The exact aggregates as JSON and back, for the instances of a cluster that combine their parts
// of one report (the noise, if any, is then added once, to the combined sums):
// {"size", "spend", "spend_clipped", "orders", "orders_clipped", "lifecycle": [4], "price_tiers":
//  [4], "segments": [[segment, users], ...], "categories": [[name, users, share_sum], ...]}.
void WriteAggregatesJson(JsonWriter& w, const AudienceAggregates& a);
// InvalidArgument for text that is not such an object.
absl::StatusOr<AudienceAggregates> ParseAggregatesJson(std::string_view json);

// One draw of Laplace(0, scale) noise from `uniform01` in (0, 1) (exposed for tests).
double LaplaceNoise(double scale, double uniform01);

}  // namespace persona
