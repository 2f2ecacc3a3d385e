// The profile as JSON for the read API and the CLI. The schema is documented with an example in
// docs/profile.md; it is stable: fields are only ever added. Times are ISO-8601 UTC strings with a
// `_ms` twin (epoch ms); features undefined for a user (an average with no data) are null.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <functional>
#include <string_view>

#include "common/json_writer.h"
#include "profile/profile.h"
#include "profile/profile_context.h"

namespace persona {

enum ProfileSection : uint32_t {
  kIdentity = 1,
  kStats = 2,
  kSessions = 4,
  kInterests = 8,
  kConsumption = 16,
  kFunnel = 32,
  kLifecycle = 64,
  kSequence = 128,
  kTags = 256,
  kSignals = 512,      // review sentiment, segment, anomaly flags and the rates behind them
  kPredictions = 1024, // written by the caller's `extra` (model outputs live outside the profile)
  kAll = 0xffffffff,
};

// Parses a comma-separated list of section names ("stats,interests"; "all" for every section;
// spaces around names are ignored; an empty list means all). nullopt when a name is unknown.
std::optional<uint32_t> ParseSections(std::string_view comma_list);

// Writes the profile of `user_id` as one JSON object with the requested sections, features
// evaluated at `now_ms` (windows, decay, lifecycle, recency). `tag_names[i]` names bit i of
// p.tag_bits; bits without a name are not listed. Reads only thread-safe parts of `ctx` (the
// pool's Get, the population), so it may run on a reader thread under the profile's lock.
// `extra`, when given, is called before the object closes to add more members (the server adds
// `predictions` there).
void WriteProfileJson(JsonWriter& w, std::string_view user_id, const Profile& p,
                      const ProfileContext& ctx, int64_t now_ms, uint32_t sections,
                      std::span<const std::string> tag_names,
                      const std::function<void(JsonWriter&)>& extra = nullptr);

}  // namespace persona
