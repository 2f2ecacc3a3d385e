// The generated users: who is an ordinary browser and who is planted (an interest shift, a high
// spender, a bot), how active each one is, and the timing that activity implies. Built once from
// the options and the catalog; per-user state that changes while the stream is generated lives in
// the generator. Memory is O(users), independent of the number of events.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gen/catalog.h"
#include "gen/gen_options.h"
#include "gen/shape.h"

namespace persona::gen {

enum class UserRole : uint8_t { kBrowser, kShift, kHighSpender, kBot };

// "browser", "shift", "high_spender", "bot": the `kind` of a ground-truth record.
std::string_view UserRoleName(UserRole role);

struct PlannedUser {
  UserRole role = UserRole::kBrowser;
  uint8_t device = 0;  // index into kDeviceNames
  // Leaves an ordinary user returns to (see shape::kFavouriteShare).
  uint32_t favourite_leaves[shape::kFavouriteLeaves] = {};
  // kShift only: leaf A before shift_at_ms, leaf B (another top-level branch) from then on.
  uint32_t shift_from_leaf = 0;
  uint32_t shift_to_leaf = 0;
  int64_t shift_at_ms = 0;
  // Expected events over the span: options.events * activity / total activity.
  float expected_events = 0;
  // Mean time from the end of a session to the start of the next, beyond the 30-minute minimum.
  float mean_idle_ms = 0;
  // Mean time between session starts; also the mean wait for the first session.
  float mean_cycle_ms = 0;
  // Heavy users get sessions this many times longer, with gaps this many times shorter.
  float session_scale = 1;
  // kBot only: the bot's fixed inter-event period and its mean burst (session) length.
  uint32_t bot_period_ms = 0;
  uint32_t bot_burst = 0;
};

inline constexpr std::string_view kDeviceNames[] = {"android", "ios", "desktop", "mobile_web"};

// (Named SyntheticPopulation: profile/population.h already defines persona::Population.)
class SyntheticPopulation {
 public:
  // Draws every user's role, activity, favourites and plan from `options` (its seed, user count,
  // planted fractions, events and span) over `catalog`, which is only read here.
  SyntheticPopulation(const GenOptions& options, const SyntheticCatalog& catalog);
  SyntheticPopulation(const SyntheticPopulation&) = delete;
  SyntheticPopulation& operator=(const SyntheticPopulation&) = delete;

  uint32_t size() const { return static_cast<uint32_t>(users_.size()); }
  const PlannedUser& user(uint32_t u) const { return users_[u]; }
  // The public id of user u: its decimal number u + 1 (numeric, so taobao's format can carry it).
  static uint64_t UserNumber(uint32_t u) { return uint64_t{u} + 1; }

  // Appends user u's ground-truth record as one JSON line, or nothing for an ordinary browser:
  // {"user_id":"17","kind":"shift","from":"<A path>","to":"<B path>","at_ms":...},
  // {"user_id":"18","kind":"high_spender"}, {"user_id":"19","kind":"bot"}.
  void AppendGroundTruth(uint32_t u, const SyntheticCatalog& catalog, std::string* out) const;

  size_t MemoryBytes() const { return users_.capacity() * sizeof(PlannedUser); }

 private:
  std::vector<PlannedUser> users_;
};

}  // namespace persona::gen
