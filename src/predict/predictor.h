// The serving side of Persona's predictive models. One Predictor per server:
//
//   at update time (a StreamOperator, engine/stream_operator.h, on the partition writer threads)
//     - anomaly flags from the user's activity rhythm against robust population statistics
//     - review sentiment (fastText) of `review` events with text, into the profile's satisfaction
//       and per-category sentiment (a rating without text counts as (rating - 1) / 4)
//     - the K-means segment of the updated profile
//     - category demand counters (forecasts) and the keyword -> category learner
//   at read time (any thread, from the live profile, so an event acknowledged a moment ago counts)
//     - purchase propensity and churn risk (gradient-boosted trees, calibrated), next categories
//     - segment sizes and descriptions, category demand forecasts, model versions and metrics
//
// Models are artifacts under <data>/models/<name>/ (propensity, churn: .pgbm; segments: .pseg;
// next_category: .pnc; sentiment: .pst); Reload() swaps in the newest file of each atomically
// and keeps the current model when a file is refused. A missing model leaves its output null
// (and its enrichment off) rather than failing the request.
//
// Per-partition state (the operator contract): each partition has its own anomaly population
// (histograms rebuilt from the loaded profiles, refresh schedule checkpointed), its own demand and
// keyword parts (checkpointed), combined at read time. Nothing a partition's enrichment computes
// depends on another partition, so recovery (checkpoint + log tail through the pipeline) yields
// exactly the flags, sentiment and segments of a run that never stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json_writer.h"
#include "engine/engine.h"
#include "engine/stream_operator.h"
#include "predict/anomaly_detector.h"
#include "predict/category_demand.h"
#include "predict/gbdt_model.h"
#include "predict/keyword_categories.h"
#include "predict/next_category.h"
#include "predict/segment_model.h"
#include "predict/sentiment_model.h"

namespace persona {

class Recommender;

class Predictor : public StreamOperator {
 public:
  // `recommender` (may be null) supplies item categories for next-category predictions. Loads the
  // newest artifacts; a refused one is reported by load_errors() and left out. Open the engine
  // with this operator in its pipeline, then Bind the engine for the read-side calls.
  Predictor(std::string data_dir, const Recommender* recommender);
  ~Predictor() override;
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  // Loads the newest artifact of every model. Models whose file is refused keep their current
  // version; the first refusal is returned (InvalidArgument naming the file).
  absl::Status Reload();
  // Messages of artifacts refused by the last Reload (empty when all loaded).
  std::vector<std::string> load_errors() const;

  // The engine whose profiles the read-side calls read; it must outlive the Predictor.
  void Bind(const Engine* engine) { engine_ = engine; }

  // StreamOperator: anomaly flags, sentiment, segment, demand and keyword learners.
  std::string_view name() const override { return "predict"; }
  void OpenPartitions(uint32_t partitions) override;
  void OnProfileLoaded(uint32_t partition, std::string_view user_id, const Profile& profile,
                       const ProfileContext& ctx) override;
  void BeforeApply(uint32_t partition, const Event& event, const Profile& profile) override;
  void OnEvent(const AppliedEvent& applied) override;
  // The segment is assigned once per changed profile and batch, not per event: it depends on the
  // profile alone, so the profile after its batch gets the same segment whatever the batching.
  void OnProfileChanged(const ChangedProfile& changed) override;
  void OnProfileErased(uint32_t partition, std::string_view user_id, const Profile& profile,
                       uint64_t membership) override;
  void SaveState(uint32_t partition, std::string* out) override;
  absl::Status LoadState(uint32_t partition, std::string_view blob) override;

  // Writes the predictions of one profile at `now_ms` as a JSON object (propensity, churn,
  // next_categories, segment, keyword categories, model versions). Reader-thread safe.
  void WritePredictions(JsonWriter& w, const Profile& profile, const ProfileContext& ctx,
                        int64_t now_ms) const;
  // The calibrated purchase propensity and churn risk of one profile at `now_ms` (one feature
  // vector for both), each nullopt when its model is not loaded. Reader-thread safe; ~2 us.
  struct Scores {
    std::optional<double> propensity;
    std::optional<double> churn;
  };
  Scores Score(const Profile& profile, const ProfileContext& ctx, int64_t now_ms) const;
  // The loaded segment model's segment of `profile` (-1 without a model), computed now.
  int Segment(const Profile& profile, const ProfileContext& ctx, int64_t now_ms) const;
  // {"user_id", "as_of", ...predictions}; nullopt for an unknown user.
  std::optional<std::string> PredictionsJson(std::string_view user_id) const;
  // Segments with descriptions, centroids and current sizes (counted over all live profiles at
  // most once every few seconds, off the caller's hot path only in the sense of being cached).
  std::string SegmentsJson() const;
  // The demand forecast of `category` ("" = all events) as JSON. NotFound for an unknown category,
  // InvalidArgument for a bad period/metric/horizon.
  absl::StatusOr<std::string> ForecastJson(std::string_view category, std::string_view period,
                                           int horizon, std::string_view metric) const;
  // Loaded model versions with their stored metrics.
  std::string ModelsJson() const;

  // For /metrics: users currently flagged, by flag bit index (from the cached population scan),
  // and events enriched since start.
  struct Counters {
    uint64_t flagged_users[kAnomalyFlagCount] = {};
    uint64_t flagged_transitions = 0;  // users newly flagged since start
    uint64_t reviews_scored = 0;
    uint64_t segment_assignments = 0;
    uint64_t profiles_scanned = 0;
  };
  Counters counters() const;

  const CategoryDemand& demand() const { return *demand_; }
  const KeywordCategories& keywords() const { return *keywords_; }

 private:
  struct PopulationScan;
  std::shared_ptr<const PopulationScan> Scan() const;
  void WritePredictionMembers(JsonWriter& w, const Profile& profile, const ProfileContext& ctx,
                              int64_t now_ms) const;

  // The artifact file in service per model (empty = none), guarded by reload_mu_.
  struct ArtifactPaths {
    std::string propensity, churn, segments, next_category, sentiment;
  };
  std::mutex reload_mu_;
  ArtifactPaths paths_;
  const Engine* engine_ = nullptr;
  const std::string data_dir_;
  const Recommender* const recommender_;

  std::atomic<std::shared_ptr<const GbdtModel>> propensity_;
  std::atomic<std::shared_ptr<const GbdtModel>> churn_;
  std::atomic<std::shared_ptr<const SegmentModel>> segments_;
  std::atomic<std::shared_ptr<const NextCategoryModel>> next_category_;
  std::atomic<std::shared_ptr<const SentimentModel>> sentiment_;

  // Writer-thread state of one partition.
  struct PartitionState {
    AnomalyDetector anomaly;
    RateSnapshot before;  // the rates before the event being applied (BeforeApply -> OnEvent)
  };
  std::vector<std::unique_ptr<PartitionState>> partitions_;
  std::unique_ptr<CategoryDemand> demand_;  // one part per partition
  std::unique_ptr<KeywordCategories> keywords_;

  mutable std::mutex mu_;  // guards errors_ and the scan cache
  std::vector<std::string> errors_;
  mutable std::shared_ptr<const PopulationScan> scan_;
  mutable int64_t scan_at_ms_ = 0;

  std::atomic<uint64_t> flagged_transitions_{0};
  std::atomic<uint64_t> reviews_scored_{0};
  std::atomic<uint64_t> segment_assignments_{0};
};

}  // namespace persona
