// Customer segments: K-means on standardised profile features, k chosen by silhouette. Each
// segment is described by its centroid in human terms ("high spend, low frequency, electronics").
//
// Features (SegmentModel::FeatureNames order), all computed at now = profile.last_seen_ms(), so
// they are a function of the profile alone: the segment the server assigns when an event updates
// a profile equals an offline Assign of the same profile, whenever that runs.
//   monetary            log1p(purchase amount, all time)
//   orders              log1p(orders)
//   days_since_purchase days from the last purchase to the last event, capped at 30 (no purchase
//                       = the cap)
//   events_30d          log1p(events in the 30 UTC days ending with the last event)
//   sessions            log1p(sessions)
//   events_per_session  log1p(mean events per session); log, like the counts, so that a few bots
//                       with thousands of events per session do not claim a cluster of their own
//   price_index         mean price percentile in [0, 1]; 0.5 (neutral) when unknown
//   cart_rate           carts / views; 0 when there are no views
//   share:<category>    for each of the model's top-M top-level categories (the first dotted
//                       component; a flat id is its own top level; the M most common at training),
//                       the user's decayed interest share of it among top-level categories
// Each feature is standardised with the training mean and standard deviation.
//
// Artifact file format: see docs/model_format.md ("Segment model").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "eval/kmeans.h"
#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

// The model-independent inputs of one profile: the base features (before standardisation) and
// its shares of every top-level category. Training collects these (during a replay, where the
// profile does not outlive the visit) and picks the top categories from them.
struct SegmentObservation {
  static constexpr size_t kBaseFeatures = 8;
  std::array<double, kBaseFeatures> base{};
  std::vector<std::pair<std::string, double>> top_level_shares;  // share > 0 only
};
SegmentObservation ObserveSegmentInputs(const Profile& profile, const ProfileContext& ctx);

struct SegmentTrainOptions {
  int k_min = 2;
  int k_max = 8;
  uint64_t seed = 1;
  int restarts = 4;
  size_t top_categories = 8;  // M, at most 8
  size_t silhouette_sample = 3000;
  std::string data_source;  // stored in the metadata
};

class SegmentModel {
 public:
  static constexpr size_t kMaxTopCategories = 8;
  static constexpr size_t kMaxFeatures = SegmentObservation::kBaseFeatures + kMaxTopCategories;

  struct Segment {
    int id = 0;
    std::string description;  // e.g. "high spend, low frequency, electronics"
    size_t train_size = 0;    // training profiles assigned to it
    // The centroid in human units (feature name -> value: amounts, counts, days, shares).
    std::vector<std::pair<std::string, double>> centroid;
  };

  // Trains on `observations` (one per profile). InvalidArgument for a bad k range or M > 8;
  // FailedPrecondition when there are fewer profiles than k_min.
  static absl::StatusOr<SegmentModel> Train(std::span<const SegmentObservation> observations,
                                            const SegmentTrainOptions& options);

  // Reads an artifact; InvalidArgument/DataLoss naming what is wrong for a bad file.
  static absl::StatusOr<std::shared_ptr<const SegmentModel>> Load(const std::string& path);
  // Writes the artifact atomically (temp file + fsync + rename).
  absl::Status Save(const std::string& path) const;

  // The segment id (index into segments()) of `profile`. Allocation-free, reads the pool only
  // through Get: safe on reader and writer threads alike.
  int Assign(const Profile& profile, const ProfileContext& ctx) const;
  // The standardised feature vector; out.size() must be dim().
  void Features(const Profile& profile, const ProfileContext& ctx, std::span<double> out) const;
  // Standardised features from an observation (what Train clusters).
  void Features(const SegmentObservation& observation, std::span<double> out) const;

  size_t dim() const { return names_.size(); }
  const std::vector<std::string>& FeatureNames() const { return names_; }
  const std::vector<std::string>& top_categories() const { return top_categories_; }
  const std::vector<Segment>& segments() const { return segments_; }
  double silhouette() const { return silhouette_; }
  // (k, silhouette) for every k tried at training.
  const std::vector<std::pair<int, double>>& silhouette_by_k() const { return silhouette_by_k_; }
  const std::string& version() const { return version_; }
  // A JSON object: data source, training size, options, silhouettes, trained_at.
  const std::string& metadata_json() const { return metadata_json_; }

 private:
  SegmentModel() = default;
  void Describe(const std::vector<size_t>& sizes);

  std::vector<std::string> top_categories_;
  std::vector<std::string> names_;
  std::vector<double> mean_, stddev_;  // per feature
  std::vector<double> centroids_;      // k x dim, standardised
  std::vector<Segment> segments_;
  std::vector<std::pair<int, double>> silhouette_by_k_;
  double silhouette_ = 0;
  std::string version_;
  std::string metadata_json_;
};

}  // namespace persona
