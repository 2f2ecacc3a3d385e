// Next-category prediction: which categories a user is most likely to engage with next.
//
//   score(c) = alpha * P(c | recent categories) + (1 - alpha) * share(c)
//
// P(c | recent) mixes first-order transition probabilities from the last `context` distinct
// categories (the most recent weighted most, decay^j for the j-th before it), each smoothed
// towards the global category distribution (Dirichlet backoff):
//   P(c | a) = (n(a, c) + beta * P_global(c)) / (n(a) + beta)
// Transitions are counted between consecutive events of each user's time-ordered categorised
// events, same-category pairs included (count_repeats, the default), so P(a | a) is the chance of
// staying: the next event is most often in the category of the last one, and distinct-category
// transitions alone could never predict that (transitions-only accuracy@1 on taobao: 0.04 folded,
// 0.14 counting repeats). With count_repeats off, repeats are folded and only a return after the
// session gap counts as a self-transition. share(c) is the
// user's decayed direct interest in c over their direct category interests. alpha, beta and the
// decay are picked on a validation slice (accuracy@3, then @1).
//
// Categories are Event::category_key() values (the dotted path when there is one, else the id).
// Artifact file format: see docs/model_format.md ("Next-category model").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "predict/event_log.h"
#include "profile/profile.h"
#include "profile/profile_config.h"

namespace persona {

// One user's categorised events, oldest first.
struct CategorySequence {
  std::vector<std::pair<int64_t, std::string>> events;  // (ts_ms, category)
};

// The state of one user at a cutoff and what they did next.
struct NextCategoryExample {
  std::string user;
  std::vector<std::string> recent;  // distinct categories of the recent items, oldest first
  std::vector<std::pair<std::string, double>> interests;  // direct category interests, decayed
  std::vector<std::string> most_frequent;  // top 3 by event count up to the cutoff (baseline)
  std::string target;                      // category of the first event after the cutoff
};

// Everything the trainer and the evaluation need from one replay of `log` to `cutoff_ms`:
// `sequences` hold every categorised event at or before the cutoff; `examples` the users active
// at or before the cutoff who have a categorised event in (cutoff, label_end] (none when
// label_end <= cutoff). `recent` is built the way the server builds it: the categories of the
// last 20 items of the profile's sequence, consecutive repeats folded.
struct NextCategoryData {
  std::vector<CategorySequence> sequences;
  std::vector<NextCategoryExample> examples;
};
absl::StatusOr<NextCategoryData> BuildNextCategoryData(const EventLog& log, int64_t cutoff_ms,
                                                       int64_t label_end_ms,
                                                       const ProfileConfig& profile);

struct NextCategoryParams {
  double alpha = 0.5;    // weight of the transition term
  double beta = 4;       // backoff strength towards the global distribution
  double decay = 0.5;    // weight of the j-th most recent category: decay^j
  uint32_t context = 3;  // distinct recent categories used
};

struct NextCategoryTrainOptions {
  // Count every consecutive event pair, same-category pairs included (see the file comment).
  // When false, repeats are folded and only a return after `session_gap_ms` is a self-transition.
  bool count_repeats = true;
  int64_t session_gap_ms = 30 * 60 * 1000;
  // Transitions of events after this time are left out while tuning on `validation` (so the
  // validation targets are never in the counts); the final model counts every event. 0 = all.
  int64_t validation_cutoff_ms = 0;
  uint32_t max_successors = 64;  // kept per source category, by count
  std::string data_source;
};

class NextCategoryModel {
 public:
  // Learns transitions from `sequences` and picks alpha, beta and the decay on `validation`
  // (defaults when it is empty). FailedPrecondition when the sequences hold no category.
  static absl::StatusOr<NextCategoryModel> Train(std::span<const CategorySequence> sequences,
                                                 std::span<const NextCategoryExample> validation,
                                                 const NextCategoryTrainOptions& options);

  static absl::StatusOr<std::shared_ptr<const NextCategoryModel>> Load(const std::string& path);
  absl::Status Save(const std::string& path) const;

  // The k best categories with their scores, best first (ties by name). `recent` is oldest first;
  // `interests` should hold direct category interests only (their scores are normalised here).
  // Safe on any thread.
  std::vector<std::pair<std::string, double>> Predict(std::span<const std::string_view> recent,
                                                      std::span<const ScoredInterest> interests,
                                                      size_t k) const;
  // Predict with another alpha (1 = transitions only, 0 = interests only), for evaluation.
  std::vector<std::pair<std::string, double>> PredictWithAlpha(
      std::span<const std::string_view> recent, std::span<const ScoredInterest> interests, size_t k,
      double alpha) const;
  // Predict for an example (its recent categories and interests).
  std::vector<std::pair<std::string, double>> PredictExample(const NextCategoryExample& example,
                                                             size_t k, double alpha) const;

  const NextCategoryParams& params() const { return params_; }
  const std::string& version() const { return version_; }
  // Validation metrics and the chosen parameters, e.g. {"valid_accuracy_at3", 0.41}.
  const std::vector<std::pair<std::string, double>>& metrics() const { return metrics_; }
  const std::string& metadata_json() const { return metadata_json_; }
  size_t num_categories() const { return categories_.size(); }

 private:
  struct Successor {
    uint32_t category;
    uint32_t count;
  };
  struct Source {
    uint64_t total = 0;                 // all transitions out, including successors not kept
    std::vector<Successor> successors;  // by count, descending
  };

  struct Counts;  // transition and visit counts (next_category.cc)
  struct Candidate {
    std::string_view name;
    double transition = 0;  // P(c | recent)
    double share = 0;       // share of the direct interests
  };

  NextCategoryModel() = default;
  // A model with `counts`' transitions (dictionary, global distribution, top successors).
  static NextCategoryModel Fit(const Counts& counts, uint32_t max_successors);
  uint32_t Find(std::string_view category) const;  // kUnknown when absent
  // Every category worth ranking with both terms of its score.
  std::vector<Candidate> Candidates(std::span<const std::string_view> recent,
                                    std::span<const ScoredInterest> interests, double beta,
                                    double decay, uint32_t context) const;
  static std::vector<std::pair<std::string, double>> Top(std::span<const Candidate> candidates,
                                                         double alpha, size_t k);

  std::vector<std::string> categories_;  // id -> name
  std::vector<double> global_;           // id -> P_global
  std::vector<Source> sources_;          // id -> transitions out
  std::vector<uint32_t> global_top_;     // ids by P_global, descending (candidate fallback)
  absl::flat_hash_map<std::string, uint32_t> index_;  // name -> id
  NextCategoryParams params_;
  std::vector<std::pair<std::string, double>> metrics_;
  std::string version_;
  std::string metadata_json_;
};

struct NextCategoryEvalRow {
  std::string method;
  double accuracy_at1 = 0;
  double accuracy_at3 = 0;
  bool baseline = false;
};
// Accuracy@1/@3 on `test` of the model (its alpha), transitions only, interests only and the
// "most frequent categories up to the cutoff" baseline. Users whose target is their most frequent
// category count as hits for the baseline, as they should.
std::vector<NextCategoryEvalRow> EvaluateNextCategory(const NextCategoryModel& model,
                                                      std::span<const NextCategoryExample> test);

}  // namespace persona
