// Point-in-time training sets built by replay: for each cutoff T, every user seen at or before T
// gets one row whose features are computed from the profile exactly as it was at T (only events
// with ts <= T applied, "now" = T) and whose labels come only from events in (T, T + horizon].
// Several cutoffs stack into one set (one row per user per cutoff). This is what keeps training
// free of leakage: no feature can see an event after its row's cutoff.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "predict/event_log.h"
#include "profile/profile.h"
#include "profile/profile_config.h"
#include "profile/profile_context.h"

namespace persona {

struct PointInTimeOptions {
  std::vector<int64_t> cutoffs_ms;  // any order; each must lie within the log's time range
  int64_t horizon_ms = 0;           // > 0
  ProfileConfig profile;            // the profile settings used for the replay
  // Users seen only longer than this before the cutoff are left out (0 = keep everyone): they are
  // long gone, and the label (churned) would be trivial.
  int64_t active_within_ms = 0;
  // When set, a user for whom this returns true at the cutoff is left out of that cutoff's rows
  // (anomaly-flagged users are excluded from training).
  std::function<bool(const Profile&, const ProfileContext&, int64_t now_ms)> exclude;
  // Leaves out users the AnomalyDetector (default settings) flags at the cutoff, judged against
  // the population of all profiles at that cutoff: bots and scrapers do not teach the models.
  bool exclude_anomalous = true;
};

struct LabeledRow {
  std::string user;
  int64_t cutoff_ms = 0;
  std::vector<float> features;  // ProfileVectorNames() order
  bool purchased = false;       // at least one purchase in (cutoff, cutoff + horizon]
  bool churned = false;         // no event at all in (cutoff, cutoff + horizon]
  int64_t events_after = 0;     // events in the label window (for reporting)
};

struct PointInTimeSet {
  std::vector<std::string> feature_names;
  std::vector<LabeledRow> rows;  // by cutoff, then by user id
  uint64_t excluded = 0;         // rows left out by options.exclude
  uint64_t anomalous = 0;        // rows left out as anomaly-flagged (options.exclude_anomalous)
};

// Replays `log` once in time order, snapshotting features at each cutoff. InvalidArgument when
// there are no cutoffs, the horizon is not positive, or a cutoff is outside the log's range.
// `visit(profile, ctx, user, cutoff)` is optional and sees each kept profile at its cutoff (the
// next-category and segment trainers use it to collect their own views of the same snapshots).
absl::StatusOr<PointInTimeSet> BuildPointInTime(
    const EventLog& log, const PointInTimeOptions& options,
    const std::function<void(const Profile&, const ProfileContext&, std::string_view user,
                             int64_t cutoff_ms)>& visit = nullptr);

// Writes the set as CSV with a header: user,cutoff_ms,<features...>,purchased,churned.
std::string PointInTimeCsv(const PointInTimeSet& set);

}  // namespace persona
