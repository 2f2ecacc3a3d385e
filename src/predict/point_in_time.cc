#include "predict/point_in_time.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/csv_field.h"
#include "common/time_util.h"
#include "predict/anomaly_detector.h"
#include "predict/profile_vector.h"
#include "profile/population.h"

namespace persona {
namespace {

// The rows of one cutoff whose label window is still open, found by user as the replay goes on.
struct OpenWindow {
  int64_t cutoff_ms;
  absl::flat_hash_map<std::string, size_t> row_of_user;  // index into PointInTimeSet::rows
};

}  // namespace

absl::StatusOr<PointInTimeSet> BuildPointInTime(
    const EventLog& log, const PointInTimeOptions& options,
    const std::function<void(const Profile&, const ProfileContext&, std::string_view user,
                             int64_t cutoff_ms)>& visit) {
  if (options.cutoffs_ms.empty()) return absl::InvalidArgumentError("no cutoff given");
  if (options.horizon_ms <= 0) return absl::InvalidArgumentError("the horizon must be positive");
  const std::vector<const Event*>& events = log.events();
  for (int64_t cutoff : options.cutoffs_ms) {
    if (events.empty() || cutoff < log.min_ts_ms() || cutoff > log.max_ts_ms()) {
      return absl::InvalidArgumentError(
          events.empty()
              ? absl::StrCat("cutoff ", FormatIsoTime(cutoff), ": the log is empty")
              : absl::StrCat("cutoff ", FormatIsoTime(cutoff), " is outside the log's time range [",
                             FormatIsoTime(log.min_ts_ms()), ", ", FormatIsoTime(log.max_ts_ms()),
                             "]"));
    }
  }
  std::vector<int64_t> cutoffs = options.cutoffs_ms;
  std::sort(cutoffs.begin(), cutoffs.end());
  cutoffs.erase(std::unique(cutoffs.begin(), cutoffs.end()), cutoffs.end());

  // A private context: the replay must not touch any engine's pool, prices or population, and
  // the population it builds (RFM ranks) is the one that existed at each cutoff.
  auto population = std::make_unique<Population>();
  ProfileContext ctx;
  ctx.config = &options.profile;
  ctx.population = population.get();
  absl::flat_hash_map<std::string, Profile> profiles;

  PointInTimeSet set;
  set.feature_names = ProfileVectorNames();
  const size_t width = set.feature_names.size();
  std::vector<OpenWindow> open;  // oldest cutoff first
  size_t next_cutoff = 0;

  auto snapshot = [&](int64_t cutoff) {
    std::vector<std::pair<std::string_view, const Profile*>> users;
    users.reserve(profiles.size());
    for (const auto& [user, profile] : profiles) {
      if (options.active_within_ms > 0 &&
          cutoff - profile.last_seen_ms() > options.active_within_ms) {
        continue;
      }
      users.emplace_back(user, &profile);
    }
    std::sort(users.begin(), users.end());
    // The anomaly population of this cutoff: every profile seen so far, as the server's detector
    // would hold it at that moment.
    std::optional<AnomalyDetector> detector;
    if (options.exclude_anomalous) {
      detector.emplace();
      for (const auto& [user, profile] : profiles)
        detector->Add(AnomalyDetector::Snapshot(profile));
    }
    OpenWindow window{cutoff, {}};
    window.row_of_user.reserve(users.size());
    for (const auto& [user, profile] : users) {
      if (detector && detector->Evaluate(*profile) != 0) {
        ++set.anomalous;
        continue;
      }
      if (options.exclude && options.exclude(*profile, ctx, cutoff)) {
        ++set.excluded;
        continue;
      }
      LabeledRow row;
      row.user = std::string(user);
      row.cutoff_ms = cutoff;
      row.features.resize(width);
      ExtractProfileVector(*profile, ctx, cutoff, row.features);
      if (visit) visit(*profile, ctx, user, cutoff);
      window.row_of_user.emplace(row.user, set.rows.size());
      set.rows.push_back(std::move(row));
    }
    open.push_back(std::move(window));
  };

  for (const Event* e : events) {
    // Every cutoff strictly before this event is complete: all events with ts <= cutoff are in.
    while (next_cutoff < cutoffs.size() && e->ts_ms > cutoffs[next_cutoff]) {
      snapshot(cutoffs[next_cutoff++]);
    }
    // Label windows (cutoff, cutoff + horizon]: close the ones this event is past, then credit
    // the event to every window still open (windows of nearby cutoffs overlap).
    while (!open.empty() && e->ts_ms > open.front().cutoff_ms + options.horizon_ms) {
      open.erase(open.begin());
    }
    // Debian's abseil has its own string_view, which is what heterogeneous lookup takes.
    const absl::string_view user_key(e->user_id.data(), e->user_id.size());
    if (!open.empty()) {
      for (OpenWindow& w : open) {
        auto it = w.row_of_user.find(user_key);
        if (it == w.row_of_user.end()) continue;
        LabeledRow& row = set.rows[it->second];
        ++row.events_after;
        if (e->type == EventType::kPurchase) row.purchased = true;
      }
    }
    if (next_cutoff == cutoffs.size() && open.empty()) break;  // nothing left to learn
    auto it = profiles.find(user_key);
    if (it == profiles.end()) it = profiles.try_emplace(std::string(e->user_id)).first;
    it->second.Apply(*e, ctx);
  }
  // Cutoffs at the very last event time: that event is in, and the label window is empty.
  while (next_cutoff < cutoffs.size()) snapshot(cutoffs[next_cutoff++]);

  for (LabeledRow& row : set.rows) row.churned = row.events_after == 0;
  return set;
}

std::string PointInTimeCsv(const PointInTimeSet& set) {
  std::string out = "user,cutoff_ms";
  for (const std::string& name : set.feature_names) absl::StrAppend(&out, ",", name);
  out += ",purchased,churned\n";
  char buf[32];
  for (const LabeledRow& row : set.rows) {
    AppendCsvField(row.user, &out);
    absl::StrAppend(&out, ",", row.cutoff_ms);
    for (float v : row.features) {
      out += ',';
      // NaN is an empty cell (missing), which CSV readers such as pandas load as NaN.
      if (std::isnan(v)) continue;
      std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
      out += buf;
    }
    absl::StrAppend(&out, ",", row.purchased ? 1 : 0, ",", row.churned ? 1 : 0, "\n");
  }
  return out;
}

}  // namespace persona
